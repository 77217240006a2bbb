"""Which implementation runs each phase of a run: the C++ path ("native") or torch.

Two Config fields ask (:class:`pgfast.config.BaseConfig`):

* ``rollout_backend``: the T-step rollout loop (policy forward, sampling, env steps) in one
  C++ call (:func:`pgfast._C.rollout_mlp`) or the torch loop of :class:`pgfast.rollout.Collector`.
* ``update_backend``: the algorithm's update in C++ (PPO: :func:`pgfast._C.ppo_epoch`; VPG and
  TRPO: :mod:`pgfast.algos.native`) or with torch autograd (the reference, which also serves
  CUDA, float64 and every other policy).

Each takes ``"auto"`` (native where it applies, torch otherwise), ``"native"`` (native, and a
ValueError with the reason where it cannot apply: never a silent fallback) or ``"torch"``.
:func:`choose` is the one rule; :func:`rollout_native_reason` and the algorithms'
``native_update_reason`` say why the C++ path cannot serve a run (None: it can). The chosen
paths are the Run's ``paths``, run.json's ``"paths"`` and part of the settings line of
``pgfast train`` (:func:`describe`), with ``"env"``, how the rollout steps the env
(:func:`env_path`: ``"core"``, a native env's C++ core stepped inside the C++ rollout with no
Python per step; ``"step_into"`` or ``"step"``, one Python call per step).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np

from pgfast import _C

__all__ = ["BACKENDS", "PATHS", "ENV_PATHS", "env_path",
           "MAX_LAYERS", "ACTIVATIONS", "check_backend", "choose", "mlp_native_reason",
           "space_reason", "rollout_native_reason", "describe"]

BACKENDS = ("auto", "native", "torch")
"""Values of the Config fields ``rollout_backend`` and ``update_backend``."""

PATHS = ("native", "torch")
"""What :func:`choose` returns: the path that runs."""

ENV_PATHS = ("core", "step_into", "step")
"""What :func:`env_path` returns: how the rollout steps the env."""

MAX_LAYERS: int = _C.MLP_MAX_LAYERS
"""Most layers the C++ MLP takes (defined once in C++, csrc/mlp.hpp)."""

ACTIVATIONS: Tuple[str, ...] = tuple(_C.MLP_ACTIVATIONS)
"""Activations the C++ MLP computes (defined once in C++, csrc/mlp.hpp)."""


def check_backend(field: str, value: Any) -> None:
    """ValueError naming ``field`` unless ``value`` is one of :data:`BACKENDS`."""
    if value not in BACKENDS:
        raise ValueError(f"{field} must be one of {', '.join(BACKENDS)}, got {value!r}")


def choose(field: str, requested: str, reason: Optional[str]) -> str:
    """The path ("native" or "torch") for ``requested`` ("auto" | "native" | "torch") given
    ``reason``, why the native path cannot apply (None: it can). ``requested="native"``
    with a reason raises ValueError: ``"<field>='native': <reason>"``."""
    check_backend(field, requested)
    if requested == "torch":
        return "torch"
    if reason is None:
        return "native"
    if requested == "native":
        raise ValueError(f"{field}='native': {reason}")
    return "torch"


def mlp_native_reason(policy: Any, device: Any, what: str) -> Optional[str]:
    """Why the C++ MLP cannot run ``policy`` on ``device`` (None: it can); ``what`` names the
    C++ path in the message ("the C++ rollout", "the C++ update")."""
    serves = f"{what} serves MLP policies (tanh or ReLU, float32) on CPU with Box observations"
    dev = getattr(device, "type", str(device))
    if dev != "cpu":
        return f"{serves}; this run is on {device}"
    if not hasattr(policy, "native_layers"):
        return f"{serves}; this policy is {type(policy).__name__}"
    if getattr(policy, "activation", None) not in ACTIVATIONS:
        return f"{serves}; this policy's activation is {getattr(policy, 'activation', None)!r}"
    ws, _ = policy.native_layers()
    if len(ws) > MAX_LAYERS:
        return f"{serves}, of at most {MAX_LAYERS} layers; this policy has {len(ws)}"
    bad = sorted({str(w.dtype) for w in ws if w.dtype != np.float32})
    if bad:
        return f"{serves}; this policy's parameters are {', '.join(bad)}"
    return None


def space_reason(what: str, space_note: str) -> str:
    """The reason ``what`` (a C++ path) cannot serve an env whose spaces need the torch path."""
    return f"{what} serves Box observations with Discrete or Box actions (not here: {space_note})"


def rollout_native_reason(env: Any, policy: Any, device: Any, obs_shape: Any = None,
                          space_note: Optional[str] = None) -> Optional[str]:
    """Why the C++ rollout (:func:`pgfast._C.rollout_mlp`) cannot collect from ``env`` with
    ``policy`` on ``device`` (None: it can). ``obs_shape``: the buffer's per-env observation
    shape (flat observations only); ``space_note``: why the env's spaces need the torch path
    (:func:`pgfast.spaces.torch_path_reason`), said first where given."""
    what = "the C++ rollout"
    if space_note is not None:
        return space_reason(what, space_note)
    reason = mlp_native_reason(policy, device, what)
    if reason is not None:
        return reason
    if getattr(env, "step_into", None) is None:
        return f"{what} needs an env with step_into (pgfast's native envs); {type(env).__name__} has none"
    if obs_shape is not None and len(tuple(obs_shape)) != 1:
        return f"{what} takes flat observations; this env's are {tuple(obs_shape)}"
    space = env.single_action_space
    if getattr(space, "dtype", None) is not None and np.issubdtype(space.dtype, np.floating) \
            and space.dtype != np.float32:
        return f"{what} writes float32 actions; this env's Box actions are {space.dtype}"
    return None


def env_path(native_rollout: bool, env: Any) -> str:
    """How the rollout steps ``env``: ``"core"`` (the native rollout steps the env's C++ core,
    ``env.native_core()``, from C++: no Python per step), ``"step_into"`` (one call of the env's
    ``step_into`` per step) or ``"step"`` (``env.step`` and a copy per step)."""
    core = env.native_core() if native_rollout and hasattr(env, "native_core") else None
    if isinstance(core, _C.RolloutEnv):
        return "core"
    return "step_into" if getattr(env, "step_into", None) is not None else "step"


def describe(paths: Dict[str, str]) -> str:
    """``"rollout native, update torch, env core"``: the paths as the settings line shows them
    (``env`` where recorded)."""
    env = f", env {paths['env']}" if "env" in paths else ""
    return f"rollout {paths['rollout']}, update {paths['update']}{env}"
