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
``pgfast train`` (:func:`describe`).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np

from pgfast import _C

__all__ = ["BACKENDS", "PATHS", "MAX_LAYERS", "ACTIVATIONS", "AUTO_CUDA_WIDTH", "check_backend", "choose",
           "mlp_native_reason", "space_reason", "rollout_native_reason", "auto_device", "describe", "describe_device"]

BACKENDS = ("auto", "native", "torch")
"""Values of the Config fields ``rollout_backend`` and ``update_backend``."""

PATHS = ("native", "torch")
"""What :func:`choose` returns: the path that runs."""

MAX_LAYERS: int = _C.MLP_MAX_LAYERS
"""Most layers the C++ MLP takes (defined once in C++, csrc/mlp.hpp)."""

ACTIVATIONS: Tuple[str, ...] = tuple(_C.MLP_ACTIVATIONS)
"""Activations the C++ MLP computes (defined once in C++, csrc/mlp.hpp)."""


AUTO_CUDA_WIDTH = 1024
"""``device="auto"`` trains on CUDA (when there is one) where the C++ paths cannot serve the run, or
where the widest hidden layer of the actor or critic has at least this many units (the products
then outweigh the cost of moving each rollout step to the GPU and back); on the CPU otherwise."""


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
    (wa, _), (wc, _) = policy.native_layers()
    if max(len(wa), len(wc)) > MAX_LAYERS:
        return (f"{serves}, of at most {MAX_LAYERS} layers; this policy's actor has {len(wa)}, "
                f"its critic {len(wc)}")
    bad = sorted({str(w.dtype) for w in wa + wc if w.dtype != np.float32})
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


def auto_device(config: Any, space_note: Optional[str], cuda_available: bool) -> Tuple[str, str]:
    """``device="auto"``'s choice for a run with ``config`` whose spaces need the torch path for
    ``space_note`` (None: they do not): ``(device, why)``, ``device`` "cpu" or "cuda".

    The rule: no CUDA device -> CPU. Spaces the C++ paths cannot serve (images through a CNN,
    Dict/Tuple observations, MultiDiscrete actions, ...), an activation or a depth the C++ MLP
    does not compute, or a hidden layer of :data:`AUTO_CUDA_WIDTH` units or more -> CUDA (the
    torch path runs there). Otherwise (the usual MLP of 64 to 512 units) -> CPU, where the
    rollout and the update run as C++."""
    if not cuda_available:
        return "cpu", "auto: no CUDA device"
    if space_note is not None:
        return "cuda", f"auto: the C++ paths cannot serve these spaces ({space_note})"
    activation = getattr(config, "activation", "tanh")
    if activation not in ACTIVATIONS:
        return "cuda", f"auto: the C++ MLP does not compute activation {activation!r}"
    sizes = [tuple(getattr(config, "hidden_sizes", ()) or ())]
    for field in ("actor_hidden_sizes", "critic_hidden_sizes"):
        extra = getattr(config, field, None)
        if extra is not None:
            sizes.append(tuple(extra))
    if max(len(h) for h in sizes) + 1 > MAX_LAYERS:
        return "cuda", f"auto: more layers than the C++ MLP takes ({MAX_LAYERS})"
    widest = max((int(w) for h in sizes for w in h), default=0)
    if widest >= AUTO_CUDA_WIDTH:
        return "cuda", f"auto: hidden layers of {widest} units (>= {AUTO_CUDA_WIDTH}) pay on CUDA"
    return "cpu", (f"auto: the C++ paths serve this MLP on CPU (widest hidden layer {widest} "
                   f"< {AUTO_CUDA_WIDTH} units)")


def describe_device(run: Any) -> str:
    """``"cpu"``, ``"cuda:0"``, or with ``device="auto"`` its reason: ``"cpu (auto: ...)"``."""
    note = getattr(run, "device_note", None)
    return str(run.device) + (f" ({note})" if note else "")


def describe(paths: Dict[str, str]) -> str:
    """``"rollout native, update torch"``: the paths as the settings line shows them."""
    return f"rollout {paths['rollout']}, update {paths['update']}"
