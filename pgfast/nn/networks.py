"""MLP builder, activations and layer-size checks shared by the networks.

:func:`mlp` builds a plain ``nn.Sequential`` multi-layer perceptron (the torch-path
networks of :mod:`pgfast.nn.modular`); :func:`activation_fn` maps "tanh"/"relu" to torch.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Sequence, Tuple, Type

import gymnasium as gym
import numpy as np
import torch
from torch import nn


__all__ = ["mlp", "activation_fn"]

Activation = Tuple[Type[nn.Module], Callable[[torch.Tensor], torch.Tensor]]
_ACTIVATIONS: Dict[str, Activation] = {"tanh": (nn.Tanh, torch.tanh), "relu": (nn.ReLU, torch.relu)}


def activation_fn(name: str) -> Activation:
    """Return ``(module_class, function)`` for an activation name ("tanh" or "relu")."""
    if name not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {name!r}")
    return _ACTIVATIONS[name]


def _check_sizes(in_dim: Any, hidden_sizes: Sequence[int], out_dim: Any,
                 name: str = "hidden_sizes") -> Tuple[int, ...]:
    """Validate layer sizes (``name``: the hidden widths' name in the message); returns the
    hidden widths as a tuple of ints."""
    for what, v in (("in_dim", in_dim), ("out_dim", out_dim)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{what} must be a positive int, got {v!r}")
    try:
        hs = tuple(hidden_sizes)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of positive ints, got {hidden_sizes!r}") from None
    if any(not isinstance(h, (int, np.integer)) or isinstance(h, bool) or h < 1 for h in hs):
        raise ValueError(f"{name} must be positive ints, got {hidden_sizes!r}")
    return tuple(int(h) for h in hs)


def _space_info(action_space: Any) -> Tuple[bool, int]:
    """``(continuous, out_dim)`` of a gymnasium ``Discrete(n)`` (n) or 1-D ``Box(D)`` (D)."""
    if isinstance(action_space, gym.spaces.Discrete):
        if int(action_space.start) != 0:
            raise ValueError(f"Discrete action spaces must start at 0, got start={action_space.start}")
        return False, int(action_space.n)
    if isinstance(action_space, gym.spaces.Box):
        if len(action_space.shape) != 1:
            raise ValueError(f"Box action spaces must be 1-D, got shape {action_space.shape}")
        return True, int(action_space.shape[0])
    raise TypeError(f"action_space must be gymnasium Discrete or Box, got {type(action_space).__name__}")


def mlp(in_dim: int, hidden_sizes: Sequence[int], out_dim: int, activation: str = "tanh",
        ortho_init: bool = True, out_gain: float = 1.0) -> nn.Sequential:
    """Multi-layer perceptron ``[B, in_dim] -> hidden_sizes... -> [B, out_dim]``.

    Args:
        in_dim: input features.
        hidden_sizes: widths of the hidden layers (may be empty: a linear map).
        out_dim: output features (no activation on the output).
        activation: "tanh" or "relu" between layers.
        ortho_init: orthogonal weights (gain sqrt(2) for hidden layers, ``out_gain``
            for the output layer) and zero biases, as in the PPO implementation
            details; otherwise torch's default init.
        out_gain: gain of the output layer when ``ortho_init``.
    """
    hs = _check_sizes(in_dim, hidden_sizes, out_dim)
    act_cls, _ = activation_fn(activation)
    dims = (int(in_dim),) + hs + (int(out_dim),)
    layers: List[nn.Module] = []
    for i in range(len(dims) - 1):
        lin = nn.Linear(dims[i], dims[i + 1])
        if ortho_init:
            gain = out_gain if i == len(dims) - 2 else math.sqrt(2.0)
            nn.init.orthogonal_(lin.weight, gain)
            nn.init.zeros_(lin.bias)
        layers.append(lin)
        if i < len(dims) - 2:
            layers.append(act_cls())
    return nn.Sequential(*layers)
