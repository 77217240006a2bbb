"""Python side shared by every native (C++-stepped) vector env.

:class:`NativeVectorEnv` is a :class:`gymnasium.vector.VectorEnv` that owns the
reusable output arrays, the spaces, the autoreset-mode metadata, seeding and
``reset`` option parsing, and forwards the per-step work to a *core* (for the
classic-control envs a C++ object from ``pgfast._C``). One ``step`` is one call
into the core for all ``N`` envs; no per-env Python runs anywhere.

Output arrays (``obs`` [N, *obs_shape], ``rewards`` [N] float64, ``terminated``
and ``truncated`` [N] bool, and in "same_step" mode ``info["final_obs"]`` /
``info["_final_obs"]``) are allocated once and overwritten by every later
``step``/``reset``: copy them if you need to keep them.

Writing a subclass (e.g. a batched MuJoCo env)
------------------------------------------------
Call ``super().__init__(num_envs=..., single_observation_space=...,
single_action_space=..., autoreset_mode=..., env_id=...)`` first (it allocates
``self._obs``, ``self._rew``, ``self._term``, ``self._trunc`` and, in
"same_step" mode, ``self._final_obs`` / ``self._final_mask``), then provide the
five core hooks below, either as methods or, to save a Python frame on the hot
path, as instance attributes bound straight to extension functions:

``_core_step(actions) -> None``
    ``actions`` is a numpy array as the user passed it (torch tensors are
    already converted to zero-copy numpy views). Validate shape, dtype and
    values (discrete range, finite floats) *before* changing any env, raising
    ``TypeError`` for a wrong type or dtype and ``ValueError`` for a wrong shape
    or value (pgfast._C's policy); clip continuous actions as the gymnasium env does; step all
    envs with autoreset and time-limit truncation; write ``self._obs``,
    ``self._rew``, ``self._term``, ``self._trunc`` (and in "same_step" mode
    ``self._final_obs`` rows plus the ``self._final_mask`` bool [N] mask).
``_core_step_into(actions, obs, rew, term, trunc) -> None``
    The same, writing into caller-given numpy arrays instead of the own
    buffers (the final-obs buffers stay the own ones). The core must check
    every array (shape [N, *obs_shape] / [N], dtype float32 or float64 for obs
    and rew, bool for flags, C-contiguous, writeable) so that nothing can make
    it write out of bounds.
``_core_reset(seeds, mask, options) -> None``
    ``seeds`` is ``None`` (continue each env's random stream) or a uint64 [N]
    array (env i derives its stream from (seeds[i], i)); ``mask`` is ``None``
    (reset all) or a bool [N] array (reset only where set; others keep their
    state, step counters and pending autoresets); ``options`` is the reset
    options dict without ``"reset_mask"``. Writes the current observation of
    *every* env into ``self._obs``.
``_core_get_state() -> np.ndarray``
    A fresh float64 [N, k] copy of the physics state.
``_core_set_state(states) -> None``
    ``states`` is a C-contiguous float64 [N, k] array; validate its shape and
    values (ValueError), set the physics state of all envs and cancel pending
    autoresets (step counters are kept).

The base class handles: spaces and their batched versions, metadata
(``autoreset_mode`` as :class:`gymnasium.vector.AutoresetMode`), seed parsing
(None / int / list), ``options["reset_mask"]``, torch-to-numpy conversion,
step-before-reset and use-after-close errors (RuntimeError), and the info dict.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

__all__ = ["NativeVectorEnv", "as_numpy"]

_MAX_SEED = 2**64 - 1
_AUTORESET_MODES = {
    "next_step": AutoresetMode.NEXT_STEP, AutoresetMode.NEXT_STEP: AutoresetMode.NEXT_STEP,
    "same_step": AutoresetMode.SAME_STEP, AutoresetMode.SAME_STEP: AutoresetMode.SAME_STEP,
}


def as_numpy(x: Any, name: str, writeable: bool = False) -> np.ndarray:
    """Return ``x`` as a numpy array without copying numpy arrays or CPU torch tensors.

    CPU torch tensors become views sharing their memory (``Tensor.numpy()``);
    CUDA tensors raise ValueError. Other objects go through ``np.asarray``
    (which may copy; refused for outputs, where a copy would lose the writes).
    """
    if type(x) is np.ndarray:
        return x
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        try:
            return x.numpy()  # shares memory; refuses CUDA tensors and grad-requiring ones
        except (TypeError, RuntimeError):
            if x.device.type != "cpu":
                raise ValueError(f"{name} must be a numpy array or a CPU tensor, "
                                 f"got a tensor on {x.device}") from None
            if writeable:
                raise ValueError(f"{name} must not require grad (it is written in place)") from None
            return x.detach().numpy()
    if isinstance(x, np.ndarray):
        return x
    if writeable:
        raise TypeError(f"{name} must be a numpy array or a CPU torch tensor, got {type(x).__name__}")
    return np.asarray(x)


class NativeVectorEnv(gym.vector.VectorEnv):
    """A :class:`gymnasium.vector.VectorEnv` stepped by a native core (see module docstring).

    Attributes:
        num_envs: number of envs N.
        single_observation_space / single_action_space: the spaces of one env.
        observation_space / action_space: their batched versions (``batch_space``).
        metadata["autoreset_mode"]: ``AutoresetMode.NEXT_STEP`` or ``AutoresetMode.SAME_STEP``.
    """

    metadata: Dict[str, Any] = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        *,
        num_envs: int,
        single_observation_space: gym.Space,
        single_action_space: gym.Space,
        autoreset_mode: Union[str, AutoresetMode] = "next_step",
        env_id: Optional[str] = None,
        spec_kwargs: Optional[Dict[str, Any]] = None,
    ) -> None:
        """Allocate the output buffers and set spaces and metadata.

        ``spec_kwargs`` (may hold ``max_episode_steps``) update the copy of the
        registered gymnasium spec of ``env_id`` stored as ``self.spec``.
        """
        if not isinstance(num_envs, (int, np.integer)) or isinstance(num_envs, bool) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        mode = _AUTORESET_MODES.get(autoreset_mode)
        if mode is None:
            raise ValueError(f"autoreset_mode must be 'next_step' or 'same_step', got {autoreset_mode!r}")
        self.num_envs = int(num_envs)
        self.single_observation_space = single_observation_space
        self.single_action_space = single_action_space
        self.observation_space = batch_space(single_observation_space, self.num_envs)
        self.action_space = batch_space(single_action_space, self.num_envs)
        self.metadata = dict(type(self).metadata)
        self.metadata["autoreset_mode"] = mode
        self.render_mode = None
        self.spec = None
        if env_id is not None and env_id in gym.registry:
            spec = gym.spec(env_id)
            extra = dict(spec_kwargs or {})
            max_steps = extra.pop("max_episode_steps", spec.max_episode_steps)
            self.spec = dataclasses.replace(spec, kwargs={**spec.kwargs, **extra},
                                            max_episode_steps=max_steps)
        self._env_id = env_id
        self._same_step = mode == AutoresetMode.SAME_STEP
        assert single_observation_space.shape is not None, "the observation space needs a shape"
        n, shape = self.num_envs, tuple(single_observation_space.shape)
        dtype = single_observation_space.dtype
        self._obs = np.zeros((n, *shape), dtype=dtype)
        self._rew = np.zeros(n, dtype=np.float64)
        self._term = np.zeros(n, dtype=np.bool_)
        self._trunc = np.zeros(n, dtype=np.bool_)
        self._final_obs = np.zeros((n, *shape), dtype=dtype) if self._same_step else None
        self._final_mask = np.zeros(n, dtype=np.bool_) if self._same_step else None
        self._ready = False     # True once reset() or set_state() ran
        self._seeded = False    # True once any reset seeded the random streams
        self.closed = False

    # ------------------------------------------------------------ hooks
    def _core_step(self, actions: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _core_step_into(self, actions: np.ndarray, obs: np.ndarray, rew: np.ndarray,
                        term: np.ndarray, trunc: np.ndarray) -> None:  # pragma: no cover
        raise NotImplementedError

    def _core_reset(self, seeds: Optional[np.ndarray], mask: Optional[np.ndarray],
                    options: Dict[str, Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _core_get_state(self) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _core_set_state(self, states: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------ API
    def step(self, actions: Any) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Dict[str, Any]]:
        """Step all N envs with ``actions`` ([N] ints for Discrete, [N, *shape] floats for Box).

        Returns ``(obs [N, *obs_shape], rewards float64 [N], terminated bool [N],
        truncated bool [N], info)``. The arrays are this env's own buffers,
        overwritten by the next call. In "next_step" mode an env that ended at
        the previous step is reset instead (its action is ignored; reward 0,
        flags False). In "same_step" mode an env that ends is reset in this
        call: ``obs`` holds its reset observation and ``info["final_obs"]``
        (dense [N, *obs_shape]; rows valid where ``info["_final_obs"]`` is set)
        its last one.
        """
        if not self._ready:
            self._raise_not_ready("step")
        if type(actions) is not np.ndarray:
            actions = as_numpy(actions, "actions")
        self._core_step(actions)
        if self._same_step:
            return self._obs, self._rew, self._term, self._trunc, \
                {"final_obs": self._final_obs, "_final_obs": self._final_mask}
        return self._obs, self._rew, self._term, self._trunc, {}

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
            the info dict, as :meth:`step` would return it.
        """
        if not self._ready:
            self._raise_not_ready("step_into")
        if type(actions) is not np.ndarray:
            actions = as_numpy(actions, "actions")
        if type(obs_out) is not np.ndarray:
            obs_out = as_numpy(obs_out, "obs_out", writeable=True)
        if type(rew_out) is not np.ndarray:
            rew_out = as_numpy(rew_out, "rew_out", writeable=True)
        if type(term_out) is not np.ndarray:
            term_out = as_numpy(term_out, "term_out", writeable=True)
        if type(trunc_out) is not np.ndarray:
            trunc_out = as_numpy(trunc_out, "trunc_out", writeable=True)
        self._core_step_into(actions, obs_out, rew_out, term_out, trunc_out)
        if self._same_step:
            return {"final_obs": self._final_obs, "_final_obs": self._final_mask}
        return {}

    def reset(self, *, seed: Union[int, Sequence[Optional[int]], None] = None,
              options: Optional[Dict[str, Any]] = None) -> Tuple[np.ndarray, Dict[str, Any]]:
        """Reset all envs (or those in ``options["reset_mask"]``).

        Args:
            seed: ``None`` continues each env's random stream (seeded from OS
                entropy on first use); an int ``s`` seeds env i from (s, i); a
                list of N ints/None seeds env i from (seed[i], i) (None: entropy).
            options: env-specific reset options (e.g. ``{"low": -0.1, "high": 0.1}``
                for CartPole, as in gymnasium) and optionally ``"reset_mask"``,
                a bool [N] numpy array selecting the envs to reset.

        Returns:
            ``(obs [N, *obs_shape], {})``; obs is the env's own buffer.
        """
        if self.closed:
            raise RuntimeError(f"{type(self).__name__}.reset() called after close()")
        seeds = self._parse_seed(seed)
        opts = dict(options) if options else {}
        mask = opts.pop("reset_mask", None)
        if mask is not None:
            if not isinstance(mask, np.ndarray):
                raise TypeError(f"options['reset_mask'] must be a numpy array, got {type(mask).__name__}")
            if mask.shape != (self.num_envs,):
                raise ValueError(f"options['reset_mask'] must have shape ({self.num_envs},), got {mask.shape}")
            if mask.dtype != np.bool_:
                raise TypeError(f"options['reset_mask'] must have dtype bool, got {mask.dtype}")
            if not mask.any():
                raise ValueError("options['reset_mask'] must contain at least one True value")
            if not self._ready:
                raise RuntimeError("reset with options['reset_mask'] needs a full reset() first")
            mask = np.ascontiguousarray(mask)
        if seeds is None and not self._seeded:
            seeds = _entropy_seeds(self.num_envs)
        self._core_reset(seeds, mask, opts)
        if seeds is not None:
            self._seeded = True
        self._ready = True
        return self._obs, {}

    def get_state(self) -> np.ndarray:
        """A float64 [N, k] copy of every env's physics state (gymnasium's ``unwrapped.state`` order)."""
        if self.closed:
            raise RuntimeError(f"{type(self).__name__}.get_state() called after close()")
        return self._core_get_state()

    def set_state(self, states: Any) -> None:
        """Set every env's physics state from a float [N, k] array.

        Pending autoresets are cancelled (the next step continues from
        ``states``); per-env elapsed-step counters are kept.
        """
        if self.closed:
            raise RuntimeError(f"{type(self).__name__}.set_state() called after close()")
        arr = as_numpy(states, "states")
        if arr.dtype.kind not in "fiu":
            raise TypeError(f"states must be a float array, got dtype {arr.dtype}")
        self._core_set_state(np.ascontiguousarray(arr, dtype=np.float64))
        self._ready = True

    def close_extras(self, **kwargs: Any) -> None:
        """Mark the env closed: later step/reset/get_state/set_state raise RuntimeError."""
        self._ready = False

    def __repr__(self) -> str:
        name = self._env_id if self._env_id is not None else "?"
        return f"{type(self).__name__}({name}, num_envs={self.num_envs})"

    # ------------------------------------------------------------ helpers
    def _raise_not_ready(self, what: str) -> None:
        if self.closed:
            raise RuntimeError(f"{type(self).__name__}.{what}() called after close()")
        raise RuntimeError(f"{type(self).__name__}.{what}() called before reset(); call reset() first")

    def _parse_seed(self, seed: Any) -> Optional[np.ndarray]:
        n = self.num_envs
        if seed is None:
            return None
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            if not 0 <= int(seed) <= _MAX_SEED:
                raise ValueError(f"seed must be a non-negative int below 2**64, got {seed!r}")
            return np.full(n, int(seed), dtype=np.uint64)
        if isinstance(seed, (list, tuple, np.ndarray)):
            if len(seed) != n:
                raise ValueError(f"a seed list must have num_envs={n} entries, got {len(seed)}")
            out = _entropy_seeds(n)
            for i, s in enumerate(seed):
                if s is None:
                    continue
                if not isinstance(s, (int, np.integer)) or isinstance(s, bool) or not 0 <= int(s) <= _MAX_SEED:
                    raise ValueError(f"seed[{i}] must be None or a non-negative int below 2**64, got {s!r}")
                out[i] = int(s)
            return out
        raise TypeError(f"seed must be None, an int or a list of ints, got {type(seed).__name__}")


def _entropy_seeds(n: int) -> np.ndarray:
    return np.frombuffer(os.urandom(8 * n), dtype=np.uint64).copy()
