"""Native vectorised classic-control envs, stepped in C++ (``pgfast._C``).

One class per env registered in ``csrc/envs/registry.hpp`` (CartPole-v1,
Pendulum-v1, MountainCar-v0, ... : ``CLASSIC_ENVS`` maps each gymnasium id to
its class, e.g. ``CartPoleVectorEnv``). The classes are made from the
extension's registry (``pgfast._C.classic_envs()``): nothing here is written
per env.

Each class mirrors gymnasium 1.x's env of the same id: dynamics and their
floating-point precision, rewards, termination, time limit (truncation after
``max_episode_steps``, gymnasium's TimeLimit count), reset distribution and
reset options, spaces and dtypes. Observations are float32, rewards float64.

Randomness: env i draws its resets from numpy's ``PCG64(SeedSequence(seed_i))``
(ported to C++, csrc/envs/rng.hpp) with seed_i = s + i after ``reset(seed=s)``,
exactly what ``gymnasium.make_vec(id, n, vectorization_mode="sync")`` gives its
env i: seeded trajectories (observations, rewards, flags, infos, autoresets)
equal gymnasium's bit for bit, ``np_random_seed`` and ``np_random`` too, for any
``num_threads``.

Reset options apply to the reset they are passed to only; autoresets use the
default distribution (as gymnasium's single envs inside its vector envs).
Bounds whose range is not finite raise :class:`ResetBoundsError` (a ValueError
and OverflowError, what numpy's ``uniform`` raises in gymnasium).

Rendering: ``render_mode="rgb_array"`` returns a tuple of N frames (uint8
[H, W, 3]) drawn by gymnasium's own env of the same id, kept only for drawing,
into which env i's state is copied; "human" shows env 0 in a window after every
step and reset (as a gymnasium env in human mode) and ``render()`` returns N
Nones; with no render mode ``render()`` warns and returns N Nones (gymnasium's
SyncVectorEnv). ``"rgb_array_list"``: ``render()`` returns N lists, env i's frames since
its last reset (autoresets included) or the last ``render()``, as gymnasium's SyncVectorEnv
of envs wrapped in RenderCollection (:mod:`pgfast.envs.frame_log`). Pendulum frames lack the
torque arrow (the last action is not kept).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple, Type

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control import utils as _cc_utils
from gymnasium.envs.registration import load_env_creator

from pgfast import _C
from pgfast.envs.frame_log import new_log
from pgfast.envs.native import NativeVectorEnv, ResetBoundsError, SeedRows, as_numpy

__all__ = ["ClassicControlVectorEnv", "CLASSIC_ENVS"]


class ClassicControlVectorEnv(NativeVectorEnv):
    """N copies of one classic-control env in one C++ object.

    Args:
        num_envs: N.
        seed: if given, ``reset(seed=seed)`` is called once (env i seeded with seed + i).
        autoreset_mode: ``"next_step"``, ``"same_step"``, ``"disabled"`` or a
            :class:`gymnasium.vector.AutoresetMode`.
        num_threads: threads stepping chunks of 1024 envs (at most one per
            2048 envs, so only N >= 4096 uses a second thread; results are
            bit-identical to one thread).
        max_episode_steps: time limit (default: gymnasium's registered value).
        render_mode: None, ``"rgb_array"`` or ``"human"`` (see the module docstring).
        copy: ``step``/``reset`` return fresh arrays (default, as gymnasium) or,
            with False, this env's own buffers overwritten by the next call.
        **kwargs: the gymnasium env's constructor arguments (e.g. ``g`` for
            Pendulum, ``sutton_barto_reward`` for CartPole).

    Subclasses set ``env_id`` only; everything else comes from the registry.
    """

    PLAIN_STATE = True  # __getstate__ holds arrays and plain values only (pgfast.envstate)

    env_id: str = ""
    _info: Dict[str, Any] = {}  # the registry's entry: pgfast._C.classic_envs()[env_id]
    _BUFFERS = ("_obs", "_rew", "_term", "_trunc", "_final_obs", "_final_mask")
    metadata: Dict[str, Any] = {"render_modes": ["human", "rgb_array", "rgb_array_list"],
                                "autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, seed: Optional[int] = None,
                 autoreset_mode: Any = "next_step", num_threads: int = 1,
                 max_episode_steps: Optional[int] = None, render_mode: Optional[str] = None,
                 copy: bool = True, **kwargs: Any) -> None:
        if render_mode not in (None, "rgb_array", "rgb_array_list", "human"):
            raise ValueError(f"render_mode must be None, 'rgb_array', 'rgb_array_list' or 'human', "
                             f"got {render_mode!r}")
        self.render_mode = render_mode
        self._renderer: Any = None
        if not isinstance(num_threads, (int, np.integer)) or isinstance(num_threads, bool) \
                or num_threads < 1:
            raise ValueError(f"num_threads must be a positive int, got {num_threads!r}")
        if max_episode_steps is None:
            max_episode_steps = gym.spec(self.env_id).max_episode_steps
        if not isinstance(max_episode_steps, (int, np.integer)) or max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be a positive int, got {max_episode_steps!r}")
        self._ctor = dict(num_envs=num_envs, autoreset_mode=autoreset_mode,
                          num_threads=int(num_threads), max_episode_steps=int(max_episode_steps),
                          render_mode=render_mode, copy=copy, **kwargs)
        # The gymnasium env validates kwargs and gives the exact spaces.
        entry_point = gym.spec(self.env_id).entry_point
        creator = load_env_creator(entry_point) if isinstance(entry_point, str) else entry_point
        assert creator is not None, f"{self.env_id} has no gymnasium entry point"
        ref = creator(**kwargs)
        self.metadata = {**type(self).metadata, "render_fps": ref.metadata.get("render_fps")}
        spec_kwargs: Dict[str, Any] = {**kwargs, "max_episode_steps": int(max_episode_steps)}
        if num_threads != 1:
            spec_kwargs["num_threads"] = int(num_threads)
        super().__init__(num_envs=num_envs, single_observation_space=ref.observation_space,
                         single_action_space=ref.action_space, autoreset_mode=autoreset_mode,
                         env_id=self.env_id, spec_kwargs=spec_kwargs, copy=copy)
        self.metadata["render_fps"] = ref.metadata.get("render_fps")
        self._ref_kwargs = dict(kwargs)
        self._frames = new_log(render_mode, self.num_envs, self.metadata["autoreset_mode"])
        self._step_flags: Tuple[Any, Any] = (self._term, self._trunc)  # where a step wrote its flags
        if self._frames is not None:
            vars(self)["step_into"] = self._step_into_logged
        # The core converts each parameter by its kind (float() or bool()) and
        # rejects names it does not know.
        core: Any = _C.ClassicVecEnv(self.env_id, self.num_envs, self._same_step, int(num_threads),
                                int(max_episode_steps), dict(kwargs))
        core.bind_outputs(self._obs, self._rew, self._term, self._trunc,
                          self._final_obs, self._final_mask)
        self._c = core
        kinds = (np.int64, np.int32) if self._info["discrete"] else (np.float32, np.float64)
        self._CORE_ACTION_DTYPES = frozenset(np.dtype(k) for k in kinds)
        self.num_threads = int(num_threads)
        self.max_episode_steps = int(max_episode_steps)
        # Hot path: the hooks are the bound C++ methods, no Python frame in between.
        vars(self).update(_core_step=core.step, _core_step_into=core.step_into,
                          _core_get_state=core.get_state, _core_set_state=core.set_state,
                          _core_any_pending=core.any_pending)
        if seed is not None:
            self.reset(seed=seed)

    def __getstate__(self) -> Dict[str, Any]:
        """Pickle support: the complete env (physics state, step counters, pending
        autoresets, random streams, reset bounds, output buffers), so an unpickled
        copy continues bit for bit like the original."""
        return {
            "ctor": self._ctor,
            "core": self._c.dump(),
            "buffers": {k: (None if getattr(self, k) is None else getattr(self, k).copy())
                        for k in self._BUFFERS},
            "ready": self._ready,
            "seeded": self._seeded,
            "closed": self.closed,
            "was_reset": self._was_reset.copy(),
            "has_stream": self._has_stream.copy(),
            "seed_rows": None if self._seed_rows is None else
            (self._seed_rows.words, self._seed_rows.nwords, self._seed_rows.which),
        }

    def __setstate__(self, state: Dict[str, Any]) -> None:
        type(self).__init__(self, **state["ctor"])
        self._c.load(state["core"])
        for k, v in state["buffers"].items():
            if v is not None:
                getattr(self, k)[...] = v
        self._ready = state["ready"]
        self._seeded = state["seeded"]
        self.closed = state["closed"]
        self._was_reset[:] = state["was_reset"]
        self._has_stream[:] = state["has_stream"]
        rows = state["seed_rows"]
        self._seed_rows = None if rows is None else SeedRows(*rows)

    @property
    def threads_used(self) -> int:
        """Worker threads a step actually uses (1 when N is too small to split)."""
        return int(self._c.threads_used)

    def _parse_options(self, options: Dict[str, Any]) -> Tuple[float, float]:
        """The reset distribution from reset options, parsed as gymnasium's env does;
        a range that is not finite raises ResetBoundsError (numpy's OverflowError)."""
        info = self._info
        (name_a, name_b), (default_a, default_b) = info["reset_options"], info["reset_defaults"]
        if (name_a, name_b) == ("low", "high"):  # checked low <= high
            a, b = _cc_utils.maybe_parse_reset_bounds(options or None, default_a, default_b)
            ranges = [b - a]
        else:  # symmetric bounds [-x, x], [-y, y] (Pendulum)
            a = _cc_utils.verify_number_and_cast(options.get(name_a, default_a))
            b = _cc_utils.verify_number_and_cast(options.get(name_b, default_b))
            ranges = [a - (-a), b - (-b)]
        if not all(np.isfinite(r) for r in ranges):
            raise ResetBoundsError(
                f"{self.env_id}: reset options {name_a}={a!r}, {name_b}={b!r} give a range that is "
                f"not finite (high - low range exceeds valid bounds)")
        return a, b

    def _core_seed(self, rows: SeedRows) -> None:
        self._c.seed(rows.words, rows.nwords, rows.which)

    def _core_reset(self, mask: Optional[np.ndarray], options: Tuple[float, float]) -> None:
        self._c.reset(mask, options[0], options[1])

    def _core_any_pending(self) -> bool:  # replaced by the bound core method in __init__
        return bool(self._c.any_pending())

    def _core_pending_mask(self) -> np.ndarray:
        return self._c.dump()["pending"].astype(np.bool_)

    def _coerce_actions(self, actions: np.ndarray) -> np.ndarray:
        """Any integer dtype (discrete) or real dtype (Box) and any layout, as gymnasium takes."""
        if self._info["discrete"]:
            if actions.dtype.kind not in "iu":
                raise TypeError(f"actions must be an integer array of shape ({self.num_envs},), "
                                f"got dtype {actions.dtype}")
            if actions.dtype.kind == "u" and actions.size and actions.max() > np.iinfo(np.int64).max:
                raise ValueError(f"actions must be in the action space {self.single_action_space}")
            return np.ascontiguousarray(actions, dtype=np.int64)
        if actions.dtype.kind not in "fiu":
            raise TypeError(f"actions must be a real array, got dtype {actions.dtype}")
        if actions.dtype.kind in "iu" or actions.dtype.itemsize not in (4, 8):
            return np.ascontiguousarray(actions, dtype=np.float64)
        return np.ascontiguousarray(actions, dtype=actions.dtype.newbyteorder("="))

    @property  # type: ignore[misc]
    def np_random(self) -> Tuple[np.random.Generator, ...]:  # type: ignore[override]
        """Copies of each env's random generator (numpy Generators with the env's
        current PCG64 state; drawing from them does not advance the env)."""
        _ = self.np_random_seed  # gives unseeded envs a stream, as gymnasium does
        rng = self._c.dump()["rng"]
        out = []
        for hs, ls, hi, li in rng.tolist():
            bg = np.random.PCG64()
            bg.state = {"bit_generator": "PCG64", "state": {"state": hs << 64 | ls, "inc": hi << 64 | li},
                        "has_uint32": 0, "uinteger": 0}
            out.append(np.random.Generator(bg))
        return tuple(out)

    # ------------------------------------------------------------ rendering
    def _render_env(self) -> Any:
        if self._renderer is None:
            mode = "rgb_array" if self.render_mode == "rgb_array_list" else self.render_mode
            self._renderer = gym.make(self.env_id, render_mode=mode, **self._ref_kwargs).unwrapped
        return self._renderer

    def _draw(self, i: int, state: np.ndarray) -> Any:
        return self._draw_row(state[i])

    def _draw_row(self, row: np.ndarray) -> Any:
        env = self._render_env()
        env.state = row.copy()
        if self.env_id.startswith("Pendulum"):
            env.last_u = None  # the torque arrow is not drawn (the last action is not kept)
        return env.render()

    def render(self) -> Optional[Tuple[Any, ...]]:
        """The frames of all N envs (gymnasium's SyncVectorEnv.render): a tuple of uint8
        [H, W, 3] arrays in "rgb_array" mode; in "rgb_array_list" mode a tuple of N lists,
        env i's frames since its last reset or the last render() (pgfast.envs.frame_log);
        of None otherwise."""
        if self.render_mode is None:
            gym.logger.warn("You are calling render method without specifying any render mode. "
                            "You can specify the render_mode at initialization, "
                            f'e.g. pgfast.make_vec("{self.env_id}", render_mode="rgb_array")')
            return tuple(None for _ in range(self.num_envs))
        if self.render_mode == "human":
            self._after_step()
            return tuple(None for _ in range(self.num_envs))
        if self._frames is not None:
            return self._frames.pop(self._draw_row)
        state = self.get_state()
        return tuple(self._draw(i, state) for i in range(self.num_envs))

    def native_core(self) -> Any:
        """The C++ core (``pgfast._C.ClassicVecEnv``) a native rollout may step directly,
        skipping this wrapper's per-step Python: only in "same_step" mode without a
        "human" window or frame lists (which the wrapper keeps after every step), else None."""
        if self._same_step and self.render_mode not in ("human", "rgb_array_list") and not self.closed:
            return self._c
        return None

    def _after_step(self) -> None:
        if self.render_mode == "human":
            self._draw(0, self.get_state())
        elif self._frames is not None:
            self._frames.after_step(self.get_state(), *self._step_flags)

    def _after_reset(self, targets: np.ndarray) -> None:
        if self.render_mode == "human":
            self._draw(0, self.get_state())
        elif self._frames is not None:
            self._frames.after_reset(self.get_state(), targets)

    def _step_into_logged(self, actions: Any, obs_out: Any, rew_out: Any, term_out: Any,
                          trunc_out: Any) -> Dict[str, Any]:
        """step_into in "rgb_array_list" mode: the frame lists read the flags it writes."""
        self._step_flags = (as_numpy(term_out, "term_out"), as_numpy(trunc_out, "trunc_out"))
        try:
            return NativeVectorEnv.step_into(self, actions, obs_out, rew_out, term_out, trunc_out)
        finally:
            self._step_flags = (self._term, self._trunc)

    def close_extras(self, **kwargs: Any) -> None:
        super().close_extras(**kwargs)
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


def _describe(env_id: str, info: Dict[str, Any]) -> str:
    (name_a, name_b), (default_a, default_b) = info["reset_options"], info["reset_defaults"]
    params: List[str] = info["params"]
    kwargs = f"; kwargs {', '.join(f'``{p}``' for p in params)}" if params else ""
    return (f"{env_id}: reset options ``{name_a}``/``{name_b}`` (default {default_a:g}, "
            f"{default_b:g}){kwargs}.")


def _make_class(env_id: str, info: Dict[str, Any]) -> Type[ClassicControlVectorEnv]:
    """``CartPole-v1`` -> ``CartPoleVectorEnv`` (picklable: a module attribute)."""
    name = env_id.split("-")[0] + "VectorEnv"
    cls = type(name, (ClassicControlVectorEnv,),
               {"env_id": env_id, "_info": info, "__doc__": _describe(env_id, info),
                "__module__": __name__})
    globals()[name] = cls
    __all__.append(name)
    return cls


CLASSIC_ENVS: Dict[str, Type[ClassicControlVectorEnv]] = {
    env_id: _make_class(env_id, info) for env_id, info in _C.classic_envs().items()
}
"""gymnasium id -> native VectorEnv class, in registry order."""
