"""Action distributions as plain functions of the network outputs.

Categorical (``Discrete(n)``): logits ``[B, n]``, integer actions ``[B]``.
Diagonal Gaussian (``Box(D)``): means ``[B, D]``, a state-independent log-std ``[D]``,
actions ``[B, D]``.
Multi-categorical (``MultiDiscrete(nvec)``): one categorical per dimension, logits
``[B, sum(nvec)]`` (dimension d owns the ``nvec[d]`` columns after those of the dimensions
before it), integer actions ``[B, D]``; log-probs and entropies are sums over dimensions.
Independent Bernoullis (``MultiBinary(D)``): logits ``[B, D]``, actions ``[B, D]`` in {0, 1}.

Written with plain torch ops (no ``torch.distributions`` objects and no argument
validation in the hot path). Gaussian samples are *not* clipped: log-probs are
those of the unclipped sample; clipping to the action bounds happens only at the
env boundary (see :mod:`pgfast.buffer`).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

__all__ = [
    "categorical_log_prob",
    "categorical_entropy",
    "categorical_log_prob_entropy",
    "categorical_sample",
    "categorical_kl",
    "gaussian_log_prob",
    "gaussian_entropy",
    "gaussian_sample",
    "gaussian_kl",
    "multicategorical_log_prob",
    "multicategorical_entropy",
    "multicategorical_kl",
    "multicategorical_mode",
    "multicategorical_sample",
    "bernoulli_log_prob",
    "bernoulli_entropy",
    "bernoulli_kl",
    "bernoulli_sample",
]

_LOG_2PI = math.log(2.0 * math.pi)


def _log_prob_of(logp_all: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    return logp_all.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)


def _entropy_of(logp_all: torch.Tensor) -> torch.Tensor:
    return -(logp_all.exp() * logp_all).sum(-1)


def categorical_log_prob(logits: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """log pi(a) for logits ``[B, n]`` and integer actions ``[B]`` -> ``[B]``."""
    return _log_prob_of(logits.log_softmax(-1), actions)


def categorical_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the categorical with logits ``[B, n]`` -> ``[B]``."""
    return _entropy_of(logits.log_softmax(-1))


def categorical_log_prob_entropy(logits: torch.Tensor, actions: torch.Tensor
                                 ) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(categorical_log_prob, categorical_entropy)`` sharing one log-softmax (the same numbers)."""
    logp_all = logits.log_softmax(-1)
    return _log_prob_of(logp_all, actions), _entropy_of(logp_all)


def categorical_sample(logits: torch.Tensor, generator: Optional[torch.Generator] = None
                       ) -> torch.Tensor:
    """Sample actions ``[B]`` (int64) from logits ``[B, n]`` by inverting the CDF."""
    cdf = logits.softmax(-1).cumsum_(-1)
    u = torch.rand(cdf.shape[:-1] + (1,), generator=generator, device=cdf.device,
                   dtype=cdf.dtype)
    # first index with cdf >= u (= number of entries below u); the clamp guards a CDF
    # that sums to 1 - eps.
    return torch.searchsorted(cdf, u).squeeze_(-1).clamp_(max=logits.shape[-1] - 1)


def categorical_kl(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) per row for two logits tensors ``[B, n]`` -> ``[B]``."""
    lp = logits_p.log_softmax(-1)
    lq = logits_q.log_softmax(-1)
    return (lp.exp() * (lp - lq)).sum(-1)


def gaussian_log_prob(mean: torch.Tensor, log_std: torch.Tensor, actions: torch.Tensor
                      ) -> torch.Tensor:
    """log N(a; mean, diag(exp(log_std))^2), mean/actions ``[B, D]``, log_std ``[D]`` -> ``[B]``."""
    z = (actions - mean) * torch.exp(-log_std)
    return -0.5 * (z * z).sum(-1) - log_std.sum() - 0.5 * mean.shape[-1] * _LOG_2PI


def gaussian_entropy(log_std: torch.Tensor, batch: int) -> torch.Tensor:
    """Entropy of the diagonal Gaussian with log-std ``[D]`` (independent of the mean),
    expanded to ``[batch]``."""
    return (log_std.sum() + 0.5 * log_std.shape[-1] * (1.0 + _LOG_2PI)).expand(batch)


def gaussian_sample(mean: torch.Tensor, log_std: torch.Tensor,
                    generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Unclipped sample ``mean + exp(log_std) * eps`` of shape ``[B, D]`` (log_std ``[D]``)."""
    eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + log_std.exp() * eps


def gaussian_kl(mean_p: torch.Tensor, log_std_p: torch.Tensor, mean_q: torch.Tensor,
                log_std_q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) between diagonal Gaussians, means ``[B, D]``, log-stds ``[D]`` -> ``[B]``."""
    var_p = torch.exp(2.0 * log_std_p)
    var_q = torch.exp(2.0 * log_std_q)
    return (log_std_q - log_std_p + (var_p + (mean_p - mean_q) ** 2) / (2.0 * var_q) - 0.5).sum(-1)


def _split(logits: torch.Tensor, nvec: Sequence[int]) -> Tuple[torch.Tensor, ...]:
    """The per-dimension logits ``[B, nvec[d]]`` of a multi-categorical ``[B, sum(nvec)]``."""
    return torch.split(logits, list(nvec), dim=-1)


def multicategorical_log_prob(logits: torch.Tensor, actions: torch.Tensor, nvec: Sequence[int]
                              ) -> torch.Tensor:
    """Sum over dimensions of log pi(a_d): logits ``[B, sum(nvec)]``, actions ``[B, D]`` -> ``[B]``."""
    a = actions.long()
    return torch.stack([categorical_log_prob(lg, a[..., d]) for d, lg in enumerate(_split(logits, nvec))],
                       -1).sum(-1)


def multicategorical_entropy(logits: torch.Tensor, nvec: Sequence[int]) -> torch.Tensor:
    """Sum of the per-dimension entropies, logits ``[B, sum(nvec)]`` -> ``[B]``."""
    return torch.stack([categorical_entropy(lg) for lg in _split(logits, nvec)], -1).sum(-1)


def multicategorical_kl(logits_p: torch.Tensor, logits_q: torch.Tensor, nvec: Sequence[int]
                        ) -> torch.Tensor:
    """KL(p || q) per row (sum over dimensions) of two logits tensors ``[B, sum(nvec)]`` -> ``[B]``."""
    return torch.stack([categorical_kl(p, q) for p, q in zip(_split(logits_p, nvec), _split(logits_q, nvec))],
                       -1).sum(-1)


def multicategorical_mode(logits: torch.Tensor, nvec: Sequence[int]) -> torch.Tensor:
    """The most likely action ``[B, D]`` (int64) of logits ``[B, sum(nvec)]``."""
    return torch.stack([lg.argmax(-1) for lg in _split(logits, nvec)], -1)


def multicategorical_sample(logits: torch.Tensor, nvec: Sequence[int],
                            generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Sample actions ``[B, D]`` (int64) from logits ``[B, sum(nvec)]``, one dimension after another."""
    return torch.stack([categorical_sample(lg, generator) for lg in _split(logits, nvec)], -1)


def bernoulli_log_prob(logits: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Sum over bits of log p(a_d): logits ``[B, D]``, actions ``[B, D]`` in {0, 1} -> ``[B]``.

    ``log p(1) = -softplus(-l)``, ``log p(0) = -softplus(l)``, so ``log p(a) = a l - softplus(l)``."""
    return (actions.to(logits.dtype) * logits - F.softplus(logits)).sum(-1)


def bernoulli_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Sum of the bit entropies ``softplus(l) - l sigmoid(l)``, logits ``[B, D]`` -> ``[B]``."""
    return (F.softplus(logits) - logits * torch.sigmoid(logits)).sum(-1)


def bernoulli_kl(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) per row (sum over bits) of two logits tensors ``[B, D]`` -> ``[B]``."""
    p = torch.sigmoid(logits_p)
    lp1, lp0 = F.logsigmoid(logits_p), F.logsigmoid(-logits_p)
    lq1, lq0 = F.logsigmoid(logits_q), F.logsigmoid(-logits_q)
    return (p * (lp1 - lq1) + (1.0 - p) * (lp0 - lq0)).sum(-1)


def bernoulli_sample(logits: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Sample bits ``[B, D]`` (int64): 1 where ``u < sigmoid(l)``, ``u ~ U(0, 1)``."""
    u = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
    return (u < torch.sigmoid(logits)).long()
