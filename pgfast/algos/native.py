"""What the C++ updates of VPG and TRPO share on the Python side (csrc/pg_update.hpp,
bound as :func:`pgfast._C.vpg_step`, :func:`pgfast._C.value_fit`): whether they apply, numpy
views of the actor's and the critic's layers and of :class:`pgfast.optim.FastAdam`'s state, and
the value regression with the same permutations as :meth:`pgfast.algos.base.AlgoBase.fit_value`."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from pgfast import _C, backends
from pgfast.nn import ActorCritic
from pgfast.optim import FastAdam

__all__ = ["native_update_reason", "net_views", "critic_views", "adam_args", "set_steps",
           "policy_input", "value_fit_native"]


def native_update_reason(policy: Any, optimizers: Sequence[FastAdam]) -> Optional[str]:
    """Why the C++ updates of VPG and TRPO cannot serve ``policy`` (None: they can): an
    :class:`ActorCritic` of float32 tanh/ReLU layers (:func:`pgfast.backends.mlp_native_reason`)
    on CPU, log_std included, and optimisers on torch's fused Adam."""
    what = "the C++ update"
    params = list(policy.parameters())
    reason = backends.mlp_native_reason(policy, params[0].device, what)
    if reason is not None:
        return reason
    if not isinstance(policy, ActorCritic):
        return f"{what} takes pgfast.nn.ActorCritic; this policy is {type(policy).__name__}"
    bad = sorted({f"{p.dtype} on {p.device}" for p in params
                  if p.device.type != "cpu" or p.dtype != torch.float32})
    if bad:
        return f"{what} takes float32 parameters on CPU; this policy has {', '.join(bad)}"
    if not all(o.fused for o in optimizers):
        return f"{what} needs torch's fused Adam kernel (torch._fused_adam_), which this torch lacks"
    return None


def net_views(policy: ActorCritic) -> Dict[str, Any]:
    """``weights``, ``biases`` (numpy views of the actor's layers ``[d_in, d_out]`` / ``[d_out]``),
    ``log_std`` (view or None) and ``activation``: the actor arguments of the C++ updates."""
    (w, b), _ = policy.native_layers()
    log_std = policy.log_std.detach().numpy() if policy.log_std is not None else None
    return {"weights": w, "biases": b, "log_std": log_std, "activation": policy.activation}


def critic_views(policy: ActorCritic) -> Dict[str, Any]:
    """``weights``, ``biases`` (numpy views of the critic's layers, one output column) and
    ``activation``: the network arguments of :func:`pgfast._C.value_fit`."""
    _, (w, b) = policy.native_layers()
    return {"weights": w, "biases": b, "activation": policy.activation}


def adam_args(opt: FastAdam) -> Dict[str, Any]:
    """The optimiser's state as the C++ updates read it (moments are views, written in place)."""
    g: Dict[str, Any] = opt.param_groups[0]
    return {"exp_avg": [t.numpy() for t in opt.exp_avg],
            "exp_avg_sq": [t.numpy() for t in opt.exp_avg_sq],
            "step": int(opt.steps[0].item()), "lr": float(g["lr"]),
            "betas": tuple(float(x) for x in g["betas"]), "eps": float(g["eps"])}


def set_steps(opt: FastAdam, step: int) -> None:
    """Record the step count the C++ update returned in every tensor's counter."""
    for t in opt.steps:
        t.fill_(float(step))


def policy_input(policy: ActorCritic, obs: torch.Tensor) -> np.ndarray:
    """Observations ``[B, ...]`` as the network sees them (:meth:`ActorCritic.network_input`),
    float32 ``[B, d]`` for the C++ updates."""
    with torch.no_grad():
        return policy.network_input(obs).to(torch.float32).contiguous().numpy()


def value_fit_native(policy: ActorCritic, cfg: Any, gen: torch.Generator, opt: FastAdam,
                     x: np.ndarray, returns: torch.Tensor) -> float:
    """:meth:`AlgoBase.fit_value` in one C++ call: the same epochs, minibatches and
    permutations (drawn from ``gen`` in the same order); returns the last minibatch's loss.
    The clip's norm sums as the stacked layout of earlier releases did (``norm_width``: the
    actor's out_dim), so their seeded runs repeat bit for bit.
    ``x``: :func:`policy_input` ``[B, d]``; ``returns`` ``[B]``."""
    B = x.shape[0]
    nmb = cfg.num_minibatches
    perm = None
    if nmb > 1:
        perms: List[torch.Tensor] = [torch.randperm(B, generator=gen)
                                     for _ in range(cfg.update_epochs)]
        perm = torch.stack(perms).numpy()
    args = adam_args(opt)
    ret = returns.detach().to(torch.float32).contiguous().numpy()
    loss, step = _C.value_fit(**critic_views(policy), obs=x, ret=ret, perm=perm,
                              minibatch_size=B // nmb, epochs=cfg.update_epochs,
                              max_grad_norm=cfg.max_grad_norm, norm_width=policy.out_dim,
                              num_threads=cfg.threads, **args)
    set_steps(opt, step)
    return float(loss)
