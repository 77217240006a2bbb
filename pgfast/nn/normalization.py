"""Running statistics for normalising observations and scaling rewards.

Both users share one running-variance update, :func:`merge_moments` (Chan et al.'s
parallel merge of a batch's mean/variance/count into the running ones):

* :class:`RunningMeanStd` keeps per-feature observation statistics as float64
  torch buffers (saved with the model's ``state_dict``) and normalises ``[B, obs_dim]``
  observations.
* :class:`RewardScaler` keeps the statistics of the per-env discounted return as
  Python floats (it runs once per env step, where torch scalars would cost more
  than the arithmetic) and scales ``[N]`` rewards in place, as gymnasium's
  ``NormalizeReward``.

The two keep their historical rounding order (``ratio_first``; same formula in exact
arithmetic), so saved statistics and seeded runs are bit-identical to earlier releases.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Tuple, TypeVar

import numpy as np
import torch
from torch import nn

__all__ = ["merge_moments", "RunningMeanStd", "RewardScaler"]

Num = TypeVar("Num", float, torch.Tensor)


def merge_moments(mean: Num, var: Num, count: Num, b_mean: Num, b_var: Num, b_count: int,
                  ratio_first: bool) -> Tuple[Num, Num, Num]:
    """Fold a batch's moments into running ones: ``(mean, var, count)`` of the union.

    With ``delta = b_mean - mean`` and ``tot = count + b_count``::

        mean' = mean + delta * b_count / tot
        var'  = (var * count + b_var * b_count + delta^2 * count * b_count / tot) / tot

    Works elementwise on float64 tensors (per-feature statistics, e.g. ``[obs_dim]``)
    and on Python floats alike. ``ratio_first`` picks the rounding order of the
    products: ``delta * (b_count / tot)`` and ``delta^2 * (count * b_count / tot)``
    (True, observations) or strictly left to right as OpenAI baselines and gymnasium
    (False, rewards).
    """
    delta = b_mean - mean
    tot = count + b_count
    if ratio_first:
        new_mean = mean + delta * (b_count / tot)
        m2 = var * count + b_var * b_count + delta * delta * (count * b_count / tot)
    else:
        new_mean = mean + delta * b_count / tot
        m2 = var * count + b_var * b_count + delta * delta * count * b_count / tot
    return new_mean, m2 / tot, tot


class RunningMeanStd(nn.Module):
    """Running mean and variance of observations (parallel-variance update, float64).

    Stored as buffers, so they are saved with the model's ``state_dict``
    (``mean``, ``var``, ``count`` and the float32 forward-pass copies ``mean32``,
    ``inv_std32``). ``normalize(x) = clip((x - mean) / sqrt(var + eps), -clip, clip)``.
    """

    mean: torch.Tensor
    var: torch.Tensor
    count: torch.Tensor
    mean32: torch.Tensor
    inv_std32: torch.Tensor

    def __init__(self, shape: Tuple[int, ...], clip: float = 10.0, eps: float = 1e-8) -> None:
        """Statistics of observations of shape ``shape`` (prior: mean 0, var 1, count 1e-4)."""
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(1e-4, dtype=torch.float64))
        # float32 copies used in the forward pass (refreshed by update()).
        self.register_buffer("mean32", torch.zeros(shape, dtype=torch.float32))
        self.register_buffer("inv_std32", torch.ones(shape, dtype=torch.float32))
        self.clip = float(clip)
        self.eps = float(eps)
        self._refresh()

    def _refresh(self) -> None:
        """Recompute the float32 copies ``mean32``/``inv_std32`` ``[*shape]`` from the float64 state."""
        self.mean32.copy_(self.mean)
        self.inv_std32.copy_(1.0 / torch.sqrt(self.var + self.eps))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Fold a batch ``[B, *shape]`` (any leading dims, e.g. ``[T, N, *shape]``) into the statistics."""
        x = x.reshape(-1, *self.mean.shape).to(torch.float64)
        mean, var, count = merge_moments(self.mean, self.var, self.count, x.mean(0),
                                         x.var(0, unbiased=False), x.shape[0], ratio_first=True)
        self.mean.copy_(mean)
        self.var.copy_(var)
        self.count.copy_(count)
        self._refresh()

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised and clipped observations ``[B, *shape]`` (float32)."""
        return ((x - self.mean32) * self.inv_std32).clamp(-self.clip, self.clip)

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        """Load the buffers, then keep the float32 copies in sync."""
        super()._load_from_state_dict(*args, **kwargs)
        self._refresh()


class RewardScaler:
    """Reward scaling as gymnasium's ``NormalizeReward`` (vectorised over N envs).

    Keeps a per-env discounted return ``R <- gamma * R + r`` ``[N]`` (reset where an
    episode ended) and divides rewards by the running std of R (statistics over all
    envs and steps, :func:`merge_moments`); the result is clipped to ``[-clip, clip]``.
    State is numpy/Python float64 and saved in checkpoints.
    """

    def __init__(self, num_envs: int, gamma: float, clip: float = 10.0, eps: float = 1e-8) -> None:
        """Scaler for ``num_envs`` envs (prior: mean 0, var 1, count 1e-4)."""
        self.gamma, self.clip, self.eps = float(gamma), float(clip), float(eps)
        self.ret = np.zeros(num_envs, dtype=np.float64)
        self.mean, self.var, self.count = 0.0, 1.0, 1e-4

    def __call__(self, rewards: np.ndarray, done: np.ndarray) -> None:
        """Scale ``rewards`` ``[N]`` in place; ``done`` ``[N]`` marks episodes that ended."""
        self.ret *= self.gamma
        self.ret += rewards
        x = self.ret
        self.mean, self.var, self.count = merge_moments(
            self.mean, self.var, self.count, float(x.mean()), float(x.var()), x.shape[0],
            ratio_first=False)
        np.multiply(rewards, 1.0 / np.sqrt(self.var + self.eps), out=rewards, casting="unsafe")
        np.clip(rewards, -self.clip, self.clip, out=rewards)
        self.ret[done] = 0.0

    def scale_rollout(self, rewards: np.ndarray, dones: np.ndarray) -> None:
        """Scale a whole rollout's rewards ``[T, N]`` in place, row after row, as ``T`` calls
        of the scaler would (``dones`` ``[T, N]``). With one env the loop runs on Python
        floats (the per-step NumPy reductions cost ~25 us, more than a MuJoCo step); the
        statistics then equal the per-step ones exactly and the rewards to one float32
        rounding (the product is taken in float64)."""
        T, N = rewards.shape
        if N != 1:
            for t in range(T):
                self(rewards[t], dones[t])
            return
        g, eps, clip = self.gamma, self.eps, self.clip
        ret, mean, var, count = float(self.ret[0]), self.mean, self.var, self.count
        col = rewards[:, 0].astype(np.float64)
        done = dones[:, 0].tolist()
        out = np.empty(T, dtype=np.float64)
        for t, r in enumerate(col.tolist()):
            ret = ret * g + r
            # merge_moments(mean, var, count, ret, 0.0, 1, ratio_first=False), inlined
            delta = ret - mean
            tot = count + 1
            mean = mean + delta * 1 / tot
            var = (var * count + 0.0 * 1 + delta * delta * count * 1 / tot) / tot
            count = tot
            out[t] = r * (1.0 / math.sqrt(var + eps))
            if done[t]:
                ret = 0.0
        np.clip(out, -clip, clip, out=out)
        rewards[:, 0] = out
        self.ret[0], self.mean, self.var, self.count = ret, mean, var, count

    def state_dict(self) -> Dict[str, Any]:
        """State for checkpoints: ``ret`` ``[N]`` and the float statistics."""
        return {"ret": self.ret.copy(), "mean": self.mean, "var": self.var, "count": self.count}

    def load_state_dict(self, d: Dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""
        self.ret[:] = d["ret"]
        self.mean, self.var, self.count = d["mean"], d["var"], d["count"]
