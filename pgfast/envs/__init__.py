"""Vectorised environments: ``make_vec`` and the native VectorEnv classes.

``make_vec(env_id, num_envs, ...)`` returns a :class:`gymnasium.vector.VectorEnv`.
Ids with a native implementation get it; any other registered id falls back to
``gymnasium.make_vec``.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec

from pgfast.envs.native import parse_autoreset_mode

__all__ = ["make_vec", "register_native", "native_ids"]

# env_id -> factory(num_envs, seed, autoreset_mode, num_threads, **kwargs) -> VectorEnv
_NATIVE: Dict[str, Callable[..., gym.vector.VectorEnv]] = {}

# vector_kwargs a native env takes itself (gymnasium's SyncVectorEnv arguments)
_NATIVE_VECTOR_KWARGS = ("autoreset_mode", "copy")


def register_native(env_id: str, factory: Callable[..., gym.vector.VectorEnv]) -> None:
    """Register a native vectorised implementation for ``env_id``."""
    _NATIVE[env_id] = factory


def native_ids() -> list:
    """Ids that have a native vectorised implementation."""
    return sorted(_NATIVE)


def _unpack_spec(spec: EnvSpec, num_envs: Any, autoreset_mode: Any, num_threads: Any,
                 vectorization_mode: Optional[str], vector_kwargs: Optional[Dict[str, Any]],
                 wrappers: Any, kwargs: Dict[str, Any]) -> Tuple[Any, ...]:
    """:func:`make_vec`'s arguments with an ``EnvSpec`` (e.g. another vector env's ``env.spec``)
    in place of an id: the spec's ``num_envs``, ``vector_kwargs``, ``wrappers``, mode, time
    limit and constructor arguments apply unless given here. Returns ``(env_id, num_envs,
    autoreset_mode, num_threads, vectorization_mode, vector_kwargs, wrappers, kwargs)``."""
    spec_kwargs = dict(spec.kwargs)
    num_envs = spec_kwargs.pop("num_envs", num_envs)
    spec_mode = spec_kwargs.pop("vectorization_mode", None)
    vector_kwargs = spec_kwargs.pop("vector_kwargs", vector_kwargs)
    wrappers = spec_kwargs.pop("wrappers", wrappers)
    if vectorization_mode is None and spec_mode in ("sync", "async"):
        vectorization_mode = spec_mode
    if spec.max_episode_steps != gym.spec(spec.id).max_episode_steps:
        spec_kwargs.setdefault("max_episode_steps", spec.max_episode_steps)
    if "autoreset_mode" in spec_kwargs:
        spec_mode_ = spec_kwargs.pop("autoreset_mode")
        if autoreset_mode is None:
            autoreset_mode = spec_mode_
    kwargs = {**spec_kwargs, **kwargs}
    if "num_threads" in kwargs:
        num_threads = kwargs.pop("num_threads")
    return (spec.id, num_envs, autoreset_mode, num_threads, vectorization_mode, vector_kwargs, wrappers,
            kwargs)


def make_vec(
    env_id: Any,
    num_envs: int = 1,
    seed: Optional[int] = None,
    autoreset_mode: Any = None,
    num_threads: int = 1,
    backend: str = "auto",
    vectorization_mode: Optional[str] = None,
    vector_kwargs: Optional[Dict[str, Any]] = None,
    wrappers: Optional[Sequence[Callable[[gym.Env], gym.Wrapper]]] = None,
    **kwargs: Any,
) -> gym.vector.VectorEnv:
    """Make ``num_envs`` copies of ``env_id`` stepped as one vector env.

    Takes what ``gymnasium.make_vec`` takes, plus pgfast's own arguments.

    Args:
        env_id: a gymnasium id, e.g. ``"CartPole-v1"``, or an ``EnvSpec``
            (e.g. another vector env's ``env.spec``; its ``num_envs``,
            ``vector_kwargs`` and ``wrappers`` apply unless given here).
        num_envs: number of parallel copies (>= 1).
        seed: if given, the env is reset once with this seed (env i is seeded
            with ``seed + i``, as gymnasium's vector envs).
        autoreset_mode: ``"next_step"`` (the default), ``"same_step"``,
            ``"disabled"`` or a :class:`gymnasium.vector.AutoresetMode`; may
            also come in ``vector_kwargs`` as for gymnasium.
        num_threads: worker threads of a native env (results do not depend on it).
        backend: ``"auto"`` (native where available), ``"native"`` (error if not
            available) or ``"gymnasium"`` (always gymnasium's vector env).
        vectorization_mode: for the gymnasium fallback, ``"sync"`` (default) or
            ``"async"``; native envs ignore it.
        vector_kwargs: gymnasium's vector env arguments: ``autoreset_mode`` and
            ``copy`` are taken by native envs; any other key (or ``wrappers``,
            which wrap each single env) makes ``backend="auto"`` use gymnasium's
            vector env, and ``backend="native"`` raise ValueError.
        wrappers: wrappers applied to each single env (gymnasium's vector env only).
        **kwargs: the env's constructor arguments (e.g. ``render_mode``,
            ``max_episode_steps``, ``g`` for Pendulum).

    Native envs (``native_ids()``) step all N copies in one C++ call and match
    gymnasium's dynamics, rewards, termination, time limits, spaces, reset
    distributions and seeding: a seeded native classic env reproduces
    ``gymnasium.make_vec(id, n, vectorization_mode="sync")`` reset with the same
    seed bit for bit (each env draws from numpy's PCG64 seeded with seed + i).
    ``step``/``reset`` return fresh arrays (``copy=False`` returns the env's own
    buffers, overwritten by the next call); ``step_into`` writes into
    caller-owned numpy arrays or CPU torch tensors (zero-copy);
    ``get_state()``/``set_state()`` expose the float64 [N, k] physics state.
    In "same_step" mode ``step``'s info is gymnasium's (``final_obs`` object
    array, ``final_info``, with masks); ``step_into``'s holds a dense
    [N, *obs_shape] ``final_obs`` and its ``_final_obs`` mask.
    """
    if isinstance(env_id, EnvSpec):
        env_id, num_envs, autoreset_mode, num_threads, vectorization_mode, vector_kwargs, wrappers, kwargs = \
            _unpack_spec(env_id, num_envs, autoreset_mode, num_threads, vectorization_mode, vector_kwargs,
                         wrappers, kwargs)
    if not isinstance(num_envs, (int, np.integer)) or isinstance(num_envs, (bool, np.bool_)) \
            or num_envs < 1:
        raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
    num_envs = int(num_envs)
    vkw = dict(vector_kwargs or {})
    if "autoreset_mode" in vkw:
        if autoreset_mode is not None and parse_autoreset_mode(autoreset_mode) != \
                parse_autoreset_mode(vkw["autoreset_mode"]):
            raise ValueError("autoreset_mode given twice (argument and vector_kwargs) with "
                             "different values")
        autoreset_mode = vkw.pop("autoreset_mode")
    mode = parse_autoreset_mode("next_step" if autoreset_mode is None else autoreset_mode)
    if not isinstance(num_threads, (int, np.integer)) or isinstance(num_threads, bool) \
            or num_threads < 1:
        raise ValueError(f"num_threads must be a positive int, got {num_threads!r}")
    if backend not in ("auto", "native", "gymnasium"):
        raise ValueError(f"backend must be 'auto', 'native' or 'gymnasium', got {backend!r}")
    wrappers = list(wrappers or [])
    foreign = sorted(k for k in vkw if k not in _NATIVE_VECTOR_KWARGS)
    native_ok = not wrappers and not foreign
    if backend == "native" and env_id in _NATIVE and not native_ok:
        raise ValueError(f"native {env_id} takes neither wrappers nor vector_kwargs {foreign}; "
                         f"use backend='gymnasium'")
    if backend != "gymnasium" and env_id in _NATIVE and native_ok:
        if "copy" in vkw:
            kwargs["copy"] = vkw["copy"]
        return _NATIVE[env_id](num_envs=num_envs, seed=seed, autoreset_mode=mode,
                               num_threads=int(num_threads), **kwargs)
    if backend == "native":
        raise ValueError(f"no native implementation of {env_id!r}; native ids: {native_ids()}")
    vmode = "sync" if vectorization_mode is None else vectorization_mode
    if vmode not in ("sync", "async"):
        raise ValueError(f"vectorization_mode must be 'sync' or 'async', got {vectorization_mode!r}")
    env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=vmode,
                       vector_kwargs={**vkw, "autoreset_mode": mode},
                       wrappers=wrappers or None, **kwargs)
    if seed is not None:
        env.reset(seed=seed)
    return env


# Native batched MuJoCo ids (HalfCheetah-v5, Ant-v5, ...); mujoco itself is imported lazily.
from pgfast.envs import mujoco as _mujoco_envs  # noqa: E402,F401
from pgfast.envs import mujoco_tasks as _mujoco_tasks  # noqa: E402,F401


# Native classic-control envs (C++ cores in pgfast._C).
from pgfast.envs.classic import CLASSIC_ENVS as _CLASSIC_ENVS  # noqa: E402

for _id, _cls in _CLASSIC_ENVS.items():
    register_native(_id, _cls)

# Probe envs for every supported observation/action space (gymnasium ids pgfast/...-v0).
from pgfast.envs import probes as _probes  # noqa: E402,F401
