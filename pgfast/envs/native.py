"""Python side shared by every native (C++-stepped) vector env.

:class:`NativeVectorEnv` is a :class:`gymnasium.vector.VectorEnv` that owns the
reusable output arrays, the spaces, the autoreset-mode metadata, seeding and
``reset`` option parsing, and forwards the per-step work to a *core* (for the
classic-control envs a C++ object from ``pgfast._C``). One ``step`` is one call
into the core for all ``N`` envs; no per-env Python runs anywhere.

Output arrays (``obs`` [N, *obs_shape], ``rewards`` [N] float64, ``terminated``
and ``truncated`` [N] bool) are allocated once; ``step``/``reset`` return fresh
copies of them (gymnasium's ``copy=True``) unless the env was made with
``copy=False``, when they return the buffers themselves, overwritten by every
later call. ``step_into`` writes into caller-owned arrays (zero-copy).

Writing a subclass (e.g. a batched MuJoCo env)
------------------------------------------------
Set ``self.render_mode`` (if it renders), then call ``super().__init__(num_envs=...,
single_observation_space=..., single_action_space=..., autoreset_mode=..., env_id=...,
copy=...)`` (it allocates ``self._obs``, ``self._rew``, ``self._term``, ``self._trunc``
and, in "same_step" mode, ``self._final_obs`` / ``self._final_mask``), then provide
the core hooks below, either as methods or, to save a Python frame on the hot
path, as instance attributes bound straight to extension functions:

``_core_step(actions) -> None``
    ``actions`` is a numpy array of at least one dimension (torch tensors are
    already converted to zero-copy numpy views; with ``_CORE_ACTION_DTYPES`` set,
    other dtypes and layouts went through ``_coerce_actions`` first). Validate
    shape, dtype and values (discrete range, finite floats) *before* changing
    any env, raising ``TypeError`` for a wrong type or dtype and ``ValueError``
    for a wrong shape or value (pgfast._C's policy); clip continuous actions as
    the gymnasium env does; step all envs with autoreset (none in "disabled"
    mode) and time-limit truncation; write ``self._obs``, ``self._rew``,
    ``self._term``, ``self._trunc`` (and in "same_step" mode ``self._final_obs``
    rows plus the ``self._final_mask`` bool [N] mask).
``_core_step_into(actions, obs, rew, term, trunc) -> None``
    The same, writing into caller-given numpy arrays instead of the own
    buffers (the final-obs buffers stay the own ones). The core must check
    every array (shape [N, *obs_shape] / [N], dtype float32 or float64 for obs
    and rew, bool for flags, C-contiguous, writeable) so that nothing can make
    it write out of bounds.
``_parse_options(options) -> parsed``
    Validate the reset options (without ``"reset_mask"``) before anything changes.
``_core_seed(rows) -> None``
    Reseed the streams of the envs where ``rows.which`` (a :class:`SeedRows`):
    env i as gymnasium's ``np_random(rows.int_at(i))``.
``_core_reset(mask, parsed) -> None``
    ``mask`` is ``None`` (reset all) or a bool [N] array (reset only where set;
    others keep their state, step counters and pending autoresets). Draw from
    each env's stream; write the current observation of *every* env into ``self._obs``.
``_core_any_pending() -> bool``
    True if an env ended and was not reset yet (checked in "disabled" mode).
``_core_get_state() -> np.ndarray``
    A fresh float64 [N, k] copy of the physics state.
``_core_set_state(states) -> None``
    ``states`` is a C-contiguous float64 [N, k] array; validate its shape and
    values (ValueError), set the physics state of all envs and cancel pending
    autoresets (step counters are kept).

The base class handles: spaces and their batched versions, metadata
(``autoreset_mode`` as :class:`gymnasium.vector.AutoresetMode`), the spec (which
``gymnasium.make_vec(env.spec)`` rebuilds through this class), seed parsing as
gymnasium's vector envs (None / int s -> s + i / list) and ``np_random_seed``,
``options["reset_mask"]``, torch-to-numpy conversion, copies, gymnasium's
same_step info, and the lifecycle errors (:class:`ResetNeeded`,
:class:`ClosedEnvironmentError`, :class:`AutoresetNeeded`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from pgfast.envs.vector_attrs import VectorAttrs
from pgfast.envs.vector_support import (  # noqa: F401  (re-exported)
    AutoresetNeeded,
    ClosedEnvironmentError,
    ResetBoundsError,
    ResetNeeded,
    SeedError,
    SeedRows,
    _int_words,
    as_numpy,
    autoreset_needed,
    check_reset_mask,
    closed_error,
    parse_autoreset_mode,
    reset_needed,
)

__all__ = ["NativeVectorEnv", "as_numpy", "parse_autoreset_mode", "SeedRows", "ResetNeeded",
           "ClosedEnvironmentError", "SeedError", "ResetBoundsError", "AutoresetNeeded"]



class NativeVectorEnv(VectorAttrs, gym.vector.VectorEnv):
    """A :class:`gymnasium.vector.VectorEnv` stepped by a native core (see module docstring).

    Attributes:
        num_envs: number of envs N.
        single_observation_space / single_action_space: the spaces of one env.
        observation_space / action_space: their batched versions (``batch_space``).
        metadata["autoreset_mode"]: the :class:`gymnasium.vector.AutoresetMode`.
        copy: ``step``/``reset`` return fresh arrays (True, gymnasium's default)
            or this env's own buffers, overwritten by the next call (False).
    """

    metadata: Dict[str, Any] = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}
    # dtypes of the actions the core takes as they are (None: any)
    _CORE_ACTION_DTYPES: Optional[frozenset] = None

    def __init__(
        self,
        *,
        num_envs: int,
        single_observation_space: gym.Space,
        single_action_space: gym.Space,
        autoreset_mode: Union[str, AutoresetMode] = "next_step",
        env_id: Optional[str] = None,
        spec_kwargs: Optional[Dict[str, Any]] = None,
        copy: bool = True,
    ) -> None:
        """Allocate the output buffers and set spaces and metadata.

        ``spec_kwargs`` (may hold ``max_episode_steps``) update the copy of the
        registered gymnasium spec of ``env_id`` stored as ``self.spec``.
        """
        if not isinstance(num_envs, (int, np.integer)) or isinstance(num_envs, (bool, np.bool_)) \
                or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        mode = parse_autoreset_mode(autoreset_mode)
        self.num_envs = int(num_envs)
        self.copy = bool(copy)
        self.single_observation_space = single_observation_space
        self.single_action_space = single_action_space
        self.observation_space = batch_space(single_observation_space, self.num_envs)
        self.action_space = batch_space(single_action_space, self.num_envs)
        self.metadata = dict(type(self).metadata)
        self.metadata["autoreset_mode"] = mode
        if not hasattr(self, "render_mode"):
            self.render_mode = None
        self.spec = None
        self._env_id = env_id
        self._same_step = mode == AutoresetMode.SAME_STEP
        self._disabled = mode == AutoresetMode.DISABLED
        if env_id is not None and env_id in gym.registry:
            self.spec = self._make_spec(env_id, dict(spec_kwargs or {}))
        assert single_observation_space.shape is not None, "the observation space needs a shape"
        n, shape = self.num_envs, tuple(single_observation_space.shape)
        dtype = single_observation_space.dtype
        self._obs = np.zeros((n, *shape), dtype=dtype)
        self._rew = np.zeros(n, dtype=np.float64)
        self._term = np.zeros(n, dtype=np.bool_)
        self._trunc = np.zeros(n, dtype=np.bool_)
        self._final_obs = np.zeros((n, *shape), dtype=dtype) if self._same_step else None
        self._final_mask = np.zeros(n, dtype=np.bool_) if self._same_step else None
        self._ready = False     # True once every env was reset (or set_state() ran)
        self._was_reset = np.zeros(n, dtype=np.bool_)  # envs reset at least once
        self._seeded = False    # True once every env has a random stream
        self._has_stream = np.zeros(n, dtype=np.bool_)
        self._seed_rows: Optional[SeedRows] = None  # the seed of each env's current stream
        self.closed = False

    def _make_spec(self, env_id: str, extra: Dict[str, Any]) -> Any:
        """The registered spec with this env's arguments, so that
        ``gymnasium.make_vec(env.spec)`` builds an equivalent env (through this
        class as the spec's vector entry point)."""
        spec = gym.spec(env_id)
        max_steps = extra.pop("max_episode_steps", spec.max_episode_steps)
        kwargs = {**spec.kwargs, **extra}
        if max_steps != spec.max_episode_steps:
            kwargs["max_episode_steps"] = max_steps
        if self.num_envs != 1:
            kwargs["num_envs"] = self.num_envs
        kwargs["vectorization_mode"] = "vector_entry_point"
        kwargs["autoreset_mode"] = self.metadata["autoreset_mode"]
        if not self.copy:
            kwargs["copy"] = False
        if self.render_mode is not None:
            kwargs["render_mode"] = self.render_mode
        cls = type(self)
        return dataclasses.replace(spec, kwargs=kwargs, max_episode_steps=max_steps,
                                   vector_entry_point=f"{cls.__module__}:{cls.__qualname__}")

    # ------------------------------------------------------------ hooks
    def _core_step(self, actions: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _core_step_into(self, actions: np.ndarray, obs: np.ndarray, rew: np.ndarray,
                        term: np.ndarray, trunc: np.ndarray) -> None:  # pragma: no cover
        raise NotImplementedError

    def _parse_options(self, options: Dict[str, Any]) -> Any:
        """Validate reset options (before anything changes); the result goes to _core_reset."""
        return options

    def _core_seed(self, rows: SeedRows) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _core_reset(self, mask: Optional[np.ndarray], options: Any) -> None:  # pragma: no cover
        raise NotImplementedError

    def _core_any_pending(self) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def _core_pending_mask(self) -> Optional[np.ndarray]:
        """The bool [N] mask of envs that ended and were not reset (None: not known)."""
        return None

    def _core_get_state(self) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _core_set_state(self, states: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _coerce_actions(self, actions: np.ndarray) -> np.ndarray:
        """Actions of a dtype or layout the core does not take as they are (default: as is)."""
        return actions

    # ------------------------------------------------------------ API
    def _actions(self, actions: Any) -> np.ndarray:
        if type(actions) is not np.ndarray:
            actions = as_numpy(actions, "actions")
        if actions.ndim == 0:
            raise TypeError(f"actions must be a batch of {self.num_envs} actions (an array or "
                            f"list), got a scalar {actions!r}")
        ok = self._CORE_ACTION_DTYPES
        if ok is not None and (actions.dtype not in ok or not actions.flags.c_contiguous):
            actions = self._coerce_actions(actions)
        if self._disabled and self._core_any_pending():
            raise autoreset_needed(self._core_pending_mask())
        return actions

    def step(self, actions: Any) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Dict[str, Any]]:
        """Step all N envs with ``actions`` ([N] ints for Discrete, [N, *shape] floats for Box).

        Returns ``(obs [N, *obs_shape], rewards float64 [N], terminated bool [N],
        truncated bool [N], info)``, fresh arrays (with ``copy=False``: this
        env's own buffers, overwritten by the next call). In "next_step" mode
        an env that ended at the previous step is reset instead (its action is
        ignored; reward 0, flags False). In "same_step" mode an env that ends
        is reset in this call: ``obs`` holds its reset observation and the info
        is gymnasium's: ``info["final_obs"]`` an object array holding the last
        observation where ``info["_final_obs"]`` is set (None elsewhere),
        ``info["final_info"]`` ``{}`` with its mask ``info["_final_info"]``; no
        keys when no env ended. In "disabled" mode ended envs stay as they are
        until ``reset(options={"reset_mask": ...})``; stepping before that
        raises :class:`AutoresetNeeded`.
        """
        if not self._ready:
            self._raise_not_ready("step")
        self._core_step(self._actions(actions))
        info: Dict[str, Any] = {}
        if self._same_step:
            mask = self._final_mask
            assert mask is not None and self._final_obs is not None
            if mask.any():
                final = np.full(self.num_envs, None, dtype=object)
                for i in np.flatnonzero(mask).tolist():
                    final[i] = self._final_obs[i].copy()
                info = {"final_obs": final, "_final_obs": mask.copy(),
                        "final_info": {}, "_final_info": mask.copy()}
        self._after_step()
        if self.copy:
            return self._obs.copy(), self._rew.copy(), self._term.copy(), self._trunc.copy(), info
        return self._obs, self._rew, self._term, self._trunc, info

    def _after_step(self) -> None:
        """Runs after every step (rendering in "human" mode)."""

    def step_into(self, actions: Any, obs_out: Any, rew_out: Any, term_out: Any,
                  trunc_out: Any) -> Dict[str, Any]:
        """Step all envs and write the results straight into caller-owned arrays.

        Args:
            actions: as for :meth:`step`.
            obs_out: [N, *obs_shape] float32 or float64, C-contiguous, writeable.
            rew_out: [N] float32 or float64.
            term_out, trunc_out: [N] bool.
            Numpy arrays and CPU torch tensors are used in place (no copies).
            A tensor costs ~1 us per argument to view as numpy; a collector
            that steps every few microseconds should index numpy views of its
            buffers (``buffer.numpy()[t]``) instead.

        Returns:
            the info dict; in "same_step" mode always the dense form
            ``{"final_obs": [N, *obs_shape] array (rows valid where the mask is
            set), "_final_obs": bool [N] mask}``, both this env's own buffers
            (the zero-copy path; :meth:`step` returns gymnasium's form).
        """
        if not self._ready:
            self._raise_not_ready("step_into")
        actions = self._actions(actions)
        if type(obs_out) is not np.ndarray:
            obs_out = as_numpy(obs_out, "obs_out", writeable=True)
        if type(rew_out) is not np.ndarray:
            rew_out = as_numpy(rew_out, "rew_out", writeable=True)
        if type(term_out) is not np.ndarray:
            term_out = as_numpy(term_out, "term_out", writeable=True)
        if type(trunc_out) is not np.ndarray:
            trunc_out = as_numpy(trunc_out, "trunc_out", writeable=True)
        self._core_step_into(actions, obs_out, rew_out, term_out, trunc_out)
        self._after_step()
        if self._same_step:
            return {"final_obs": self._final_obs, "_final_obs": self._final_mask}
        return {}

    def reset(self, *, seed: Union[int, Sequence[Optional[int]], None] = None,
              options: Optional[Dict[str, Any]] = None) -> Tuple[np.ndarray, Dict[str, Any]]:
        """Reset all envs (or those in ``options["reset_mask"]``), as gymnasium's vector envs.

        Args:
            seed: ``None`` continues each env's random stream (an env never
                seeded gets a fresh 128-bit seed from the OS, as gymnasium's
                ``np_random()``); an int ``s`` seeds env i with ``s + i``; a list
                of N ints/None seeds env i with ``seed[i]`` (None: continue).
                Env i's stream is numpy's ``PCG64(SeedSequence(seed_i))``, the
                one gymnasium's env i gets, so resets draw the same numbers.
            options: env-specific reset options for this reset only (e.g.
                ``{"low": -0.1, "high": 0.1}`` for CartPole; later autoresets
                use the defaults, as gymnasium's envs do) and optionally
                ``"reset_mask"``, a bool [N] numpy array selecting the envs to
                reset (others keep state, step counters and pending autoresets).
                A first reset may be masked; stepping needs every env reset.

        Returns:
            ``(obs [N, *obs_shape], {})`` (a fresh array unless ``copy=False``).
        """
        if self.closed:
            raise closed_error(self)
        rows = self._parse_seed(seed)
        opts = dict(options) if options else {}
        mask = opts.pop("reset_mask", None)
        if mask is not None:
            mask = check_reset_mask(mask, self.num_envs)
        parsed = self._parse_options(opts)
        targets = np.ones(self.num_envs, dtype=np.bool_) if mask is None else mask
        if rows is not None:
            rows.which &= targets  # a masked reset seeds the masked envs only
        fresh = targets & ~self._has_stream
        if rows is not None:
            fresh &= ~rows.which
        if fresh.any():
            new = SeedRows.entropy(self.num_envs)
            new.which = fresh
            rows = new if rows is None else rows.merged(new)
        if rows is not None and rows.which.any():
            self._set_seeds(rows)
        self._core_reset(mask, parsed)
        self._was_reset |= targets
        self._ready = bool(self._was_reset.all())
        self._after_reset(targets)
        return (self._obs.copy() if self.copy else self._obs), {}

    def _after_reset(self, targets: np.ndarray) -> None:
        """Runs after every reset of the envs where ``targets`` (bool [N]) is set (rendering)."""

    def _set_seeds(self, rows: SeedRows) -> None:
        self._core_seed(rows)
        if self._seed_rows is None or rows.which.all():
            self._seed_rows = rows
        else:
            self._seed_rows = rows.merged(self._seed_rows)
        self._has_stream |= rows.which
        self._seeded = bool(self._has_stream.all())

    @property
    def np_random_seed(self) -> Tuple[int, ...]:  # type: ignore[override]
        """The seed of each env's random stream (gymnasium's ``np_random_seed`` of env i:
        ``s + i`` after ``reset(seed=s)``, a 128-bit OS seed for an env never seeded)."""
        if self.closed:
            raise closed_error(self)
        if not self._has_stream.all():
            new = SeedRows.entropy(self.num_envs)
            new.which = ~self._has_stream
            self._set_seeds(new)
        rows = self._seed_rows
        assert rows is not None
        return tuple(rows.int_at(i) for i in range(self.num_envs))

    def get_state(self) -> np.ndarray:
        """A float64 [N, k] copy of every env's physics state (gymnasium's ``unwrapped.state`` order)."""
        if self.closed:
            raise closed_error(self)
        return self._core_get_state()

    def set_state(self, states: Any) -> None:
        """Set every env's physics state from a float [N, k] array.

        Pending autoresets are cancelled (the next step continues from
        ``states``); per-env elapsed-step counters are kept.
        """
        if self.closed:
            raise closed_error(self)
        arr = as_numpy(states, "states")
        if arr.dtype.kind not in "fiu":
            raise TypeError(f"states must be a float array, got dtype {arr.dtype}")
        self._core_set_state(np.ascontiguousarray(arr, dtype=np.float64))
        self._was_reset[:] = True
        self._ready = True

    def close_extras(self, **kwargs: Any) -> None:
        """Mark the env closed: later step/reset/get_state/set_state raise
        :class:`ClosedEnvironmentError` (a RuntimeError), as gymnasium's
        AsyncVectorEnv does (its SyncVectorEnv keeps stepping after close())."""
        self._ready = False

    def __repr__(self) -> str:
        name = self._env_id if self._env_id is not None else "?"
        return f"{type(self).__name__}({name}, num_envs={self.num_envs})"

    # ------------------------------------------------------------ helpers
    def _raise_not_ready(self, what: str) -> None:
        if self.closed:
            raise closed_error(self)
        raise reset_needed(what)

    def _parse_seed(self, seed: Any) -> Optional[SeedRows]:
        n = self.num_envs
        if seed is None:
            return None
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)):
            if int(seed) < 0:
                raise SeedError(f"Seed must be greater or equal to zero, actual value: {seed}")
            return SeedRows.consecutive(int(seed), n)
        if isinstance(seed, (list, tuple, np.ndarray)):
            if len(seed) != n:
                raise ValueError(f"If seeds are passed as a list the length must match "
                                 f"num_envs={n} but got length={len(seed)}.")
            out: List[Optional[int]] = []
            for i, s in enumerate(seed):
                if s is None:
                    out.append(None)
                elif not isinstance(s, (int, np.integer)) or isinstance(s, (bool, np.bool_)):
                    raise SeedError(f"seed[{i}] must be a python integer or None, actual type: "
                                    f"{type(s)}")
                elif int(s) < 0:
                    raise SeedError(f"seed[{i}] must be greater or equal to zero, actual value: {s}")
                else:
                    out.append(int(s))
            return SeedRows.from_list(out)
        raise TypeError(f"seed must be None, an int or a list of ints, got {type(seed).__name__}")
