"""Vectorised environments: ``make_vec`` and the native VectorEnv classes.

``make_vec(env_id, num_envs, ...)`` returns a :class:`gymnasium.vector.VectorEnv`.
Ids with a native implementation get it; any other registered id falls back to
``gymnasium.make_vec``.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

import gymnasium as gym

__all__ = ["make_vec", "register_native", "native_ids"]

# env_id -> factory(num_envs, seed, autoreset_mode, num_threads, **kwargs) -> VectorEnv
_NATIVE: Dict[str, Callable[..., gym.vector.VectorEnv]] = {}

_AUTORESET_MODES = ("next_step", "same_step")


def register_native(env_id: str, factory: Callable[..., gym.vector.VectorEnv]) -> None:
    """Register a native vectorised implementation for ``env_id``."""
    _NATIVE[env_id] = factory


def native_ids() -> list:
    """Ids that have a native vectorised implementation."""
    return sorted(_NATIVE)


def make_vec(
    env_id: str,
    num_envs: int = 1,
    seed: Optional[int] = None,
    autoreset_mode: str = "next_step",
    num_threads: int = 1,
    backend: str = "auto",
    vectorization_mode: str = "sync",
    **kwargs: Any,
) -> gym.vector.VectorEnv:
    """Make ``num_envs`` copies of ``env_id`` stepped as one vector env.

    Args:
        env_id: a gymnasium id, e.g. ``"CartPole-v1"``.
        num_envs: number of parallel copies (>= 1).
        seed: if given, the env is reset once with this seed (env i gets a
            stream derived deterministically from (seed, i)).
        autoreset_mode: ``"next_step"`` (gymnasium's default) or ``"same_step"``.
        num_threads: worker threads of a native env (results do not depend on it).
        backend: ``"auto"`` (native where available), ``"native"`` (error if not
            available) or ``"gymnasium"`` (always gymnasium's vector env).
        vectorization_mode: for the gymnasium fallback, ``"sync"`` or ``"async"``.
        **kwargs: passed to the env constructor.

    Native envs (``native_ids()``) step all N copies in one C++ call and match
    gymnasium's dynamics, rewards, termination, time limits, spaces and reset
    distributions. Their resets draw from a per-env random stream (xoshiro256++
    seeded from (seed, env index)), not from numpy's generator: trajectories
    are deterministic per (seed, index) and identical for any ``num_threads``,
    but start states differ numerically from gymnasium's own seeding with the
    same seed (parity with gymnasium is checked by copying states with
    ``set_state``). Output arrays are reused by every step (copy to keep);
    ``step_into`` writes into caller-owned numpy arrays or CPU torch tensors;
    ``get_state()``/``set_state()`` expose the float64 [N, k] physics state.
    In "same_step" mode ``info["final_obs"]`` is a dense [N, *obs_shape] array
    with ``info["_final_obs"]`` the bool [N] mask of envs that ended this step
    (gymnasium stores an object array there).
    """
    if not isinstance(num_envs, int) or isinstance(num_envs, bool) or num_envs < 1:
        raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
    if autoreset_mode not in _AUTORESET_MODES:
        raise ValueError(f"autoreset_mode must be one of {_AUTORESET_MODES}, got {autoreset_mode!r}")
    if not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(f"num_threads must be a positive int, got {num_threads!r}")
    if backend not in ("auto", "native", "gymnasium"):
        raise ValueError(f"backend must be 'auto', 'native' or 'gymnasium', got {backend!r}")
    if backend != "gymnasium" and env_id in _NATIVE:
        env = _NATIVE[env_id](num_envs=num_envs, seed=seed, autoreset_mode=autoreset_mode,
                              num_threads=num_threads, **kwargs)
        return env
    if backend == "native":
        raise ValueError(f"no native implementation of {env_id!r}; native ids: {native_ids()}")
    if vectorization_mode not in ("sync", "async"):
        raise ValueError(f"vectorization_mode must be 'sync' or 'async', got {vectorization_mode!r}")
    mode = gym.vector.AutoresetMode.NEXT_STEP if autoreset_mode == "next_step" \
        else gym.vector.AutoresetMode.SAME_STEP
    env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=vectorization_mode,
                       vector_kwargs={"autoreset_mode": mode}, **kwargs)
    if seed is not None:
        env.reset(seed=seed)
    return env


# Native batched MuJoCo ids (HalfCheetah-v5, ...); mujoco itself is imported lazily.
from pgfast.envs import mujoco as _mujoco_envs  # noqa: E402,F401


# Native classic-control envs (C++ cores in pgfast._C).
from pgfast.envs.classic import CLASSIC_ENVS as _CLASSIC_ENVS  # noqa: E402

for _id, _cls in _CLASSIC_ENVS.items():
    register_native(_id, _cls)
