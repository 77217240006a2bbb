"""Action heads: one object per kind of action space, turning the actor's output into a
distribution (log-probs, entropies, KL divergences, samples, modes).

====================  ==================  =================  =======================
action space          actor output        actions            distribution
====================  ==================  =================  =======================
``Discrete(n)``       logits ``[B, n]``   ``[B]`` int64      categorical
``Box(D)``            means ``[B, D]``    ``[B, D]`` float   diagonal Gaussian, free
                                                             log-std ``[D]``
``MultiDiscrete(v)``  logits              ``[B, D]`` int64   one categorical per
                      ``[B, sum(v)]``                        dimension
``MultiBinary(D)``    logits ``[B, D]``   ``[B, D]`` int64   independent Bernoullis
====================  ==================  =================  =======================

The math lives in :mod:`pgfast.nn.distributions`; a head only picks the functions and
knows its output width. :class:`PolicyBase` gives every actor-critic (the C++-served
:class:`pgfast.nn.ActorCritic` and the torch-only :class:`pgfast.nn.modular.ModularActorCritic`)
its distribution methods through its head: the one Python home of sampling and log-probs.
Rollouts draw their noise once per rollout (:meth:`ActionHead.noise`) and turn it into actions
per step (:meth:`ActionHead.sample_with_noise`): Gumbel-max for categoricals, logistic noise for
Bernoullis (``l + log(u) - log(1-u) > 0`` with probability ``sigmoid(l)``), Gaussian
noise for Box.
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

import gymnasium as gym
import torch
from torch import nn

from pgfast.nn.distributions import (bernoulli_entropy, bernoulli_kl, bernoulli_log_prob,
                                     bernoulli_sample, categorical_entropy, categorical_kl,
                                     categorical_log_prob, categorical_log_prob_entropy,
                                     categorical_sample, gaussian_entropy,
                                     gaussian_kl, gaussian_log_prob, gaussian_sample,
                                     multicategorical_entropy, multicategorical_kl,
                                     multicategorical_log_prob, multicategorical_mode,
                                     multicategorical_sample)

__all__ = ["ActionHead", "CategoricalHead", "GaussianHead", "MultiCategoricalHead", "BernoulliHead",
           "PolicyBase", "make_head"]


def _gumbel(shape: Tuple[int, ...], generator: Optional[torch.Generator], device: torch.device
            ) -> torch.Tensor:
    """Standard Gumbel noise ``-log(E)``, ``E ~ Exp(1)``."""
    return torch.empty(shape, device=device).exponential_(generator=generator).log_().neg_()


class ActionHead:
    """The distribution of one kind of action space (see the module docstring).

    ``continuous`` is True for Box actions only; ``out_dim`` is the width of the actor's
    output. Every method takes the actor output ``out`` ``[B, out_dim]``; ``log_std`` is
    the Gaussian's ``[D]`` (ignored by the others)."""

    continuous = False
    out_dim: int

    def log_prob(self, out: torch.Tensor, actions: torch.Tensor,
                 log_std: Optional[torch.Tensor] = None) -> torch.Tensor:
        """log pi(a|s) ``[B]``."""
        raise NotImplementedError

    def entropy(self, out: torch.Tensor, log_std: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Entropy ``[B]``."""
        raise NotImplementedError

    def log_prob_entropy(self, out: torch.Tensor, actions: torch.Tensor,
                         log_std: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(log pi(a|s) [B], entropy [B])``."""
        return self.log_prob(out, actions, log_std), self.entropy(out, log_std)

    def kl(self, old: torch.Tensor, old_log_std: Optional[torch.Tensor], out: torch.Tensor,
           log_std: Optional[torch.Tensor] = None) -> torch.Tensor:
        """KL(old || current) per row ``[B]``."""
        raise NotImplementedError

    def mode(self, out: torch.Tensor) -> torch.Tensor:
        """The most likely action."""
        raise NotImplementedError

    def sample(self, out: torch.Tensor, log_std: Optional[torch.Tensor] = None,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """A sampled action."""
        raise NotImplementedError

    def noise(self, shape: Tuple[int, ...], generator: Optional[torch.Generator],
              device: torch.device) -> torch.Tensor:
        """Sampling noise ``[*shape, out_dim]`` for :meth:`sample_with_noise`."""
        raise NotImplementedError

    def sample_with_noise(self, out: torch.Tensor, noise: torch.Tensor,
                          std: Optional[torch.Tensor] = None) -> torch.Tensor:
        """An action from the actor output and one row of :meth:`noise` (Box: ``std`` ``[D]``)."""
        raise NotImplementedError


class CategoricalHead(ActionHead):
    """``Discrete(n)``: logits ``[B, n]``, actions ``[B]``."""

    def __init__(self, n: int) -> None:
        self.out_dim = int(n)

    def log_prob(self, out: torch.Tensor, actions: torch.Tensor,
                 log_std: Optional[torch.Tensor] = None) -> torch.Tensor:
        return categorical_log_prob(out, actions)

    def entropy(self, out: torch.Tensor, log_std: Optional[torch.Tensor] = None) -> torch.Tensor:
        return categorical_entropy(out)

    def log_prob_entropy(self, out: torch.Tensor, actions: torch.Tensor,
                         log_std: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        return categorical_log_prob_entropy(out, actions)

    def kl(self, old: torch.Tensor, old_log_std: Optional[torch.Tensor], out: torch.Tensor,
           log_std: Optional[torch.Tensor] = None) -> torch.Tensor:
        return categorical_kl(old, out)

    def mode(self, out: torch.Tensor) -> torch.Tensor:
        return out.argmax(-1)

    def sample(self, out: torch.Tensor, log_std: Optional[torch.Tensor] = None,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return categorical_sample(out, generator)

    def noise(self, shape: Tuple[int, ...], generator: Optional[torch.Generator],
              device: torch.device) -> torch.Tensor:
        return _gumbel(shape + (self.out_dim,), generator, device)

    def sample_with_noise(self, out: torch.Tensor, noise: torch.Tensor,
                          std: Optional[torch.Tensor] = None) -> torch.Tensor:
        return (out + noise).argmax(-1)


class GaussianHead(ActionHead):
    """``Box(D)``: means ``[B, D]`` and a state-independent log-std ``[D]``; samples unclipped."""

    continuous = True

    def __init__(self, d: int) -> None:
        self.out_dim = int(d)

    def log_prob(self, out: torch.Tensor, actions: torch.Tensor,
                 log_std: Optional[torch.Tensor] = None) -> torch.Tensor:
        assert log_std is not None
        return gaussian_log_prob(out, log_std, actions)

    def entropy(self, out: torch.Tensor, log_std: Optional[torch.Tensor] = None) -> torch.Tensor:
        assert log_std is not None
        return gaussian_entropy(log_std, out.shape[0])

    def kl(self, old: torch.Tensor, old_log_std: Optional[torch.Tensor], out: torch.Tensor,
           log_std: Optional[torch.Tensor] = None) -> torch.Tensor:
        assert old_log_std is not None and log_std is not None
        return gaussian_kl(old, old_log_std, out, log_std)

    def mode(self, out: torch.Tensor) -> torch.Tensor:
        return out

    def sample(self, out: torch.Tensor, log_std: Optional[torch.Tensor] = None,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
        assert log_std is not None
        return gaussian_sample(out, log_std, generator)

    def noise(self, shape: Tuple[int, ...], generator: Optional[torch.Generator],
              device: torch.device) -> torch.Tensor:
        return torch.randn(shape + (self.out_dim,), generator=generator, device=device)

    def sample_with_noise(self, out: torch.Tensor, noise: torch.Tensor,
                          std: Optional[torch.Tensor] = None) -> torch.Tensor:
        assert std is not None
        return torch.addcmul(out, std, noise)


class MultiCategoricalHead(ActionHead):
    """``MultiDiscrete(nvec)``: one categorical per dimension, logits ``[B, sum(nvec)]``,
    actions ``[B, D]``."""

    def __init__(self, nvec: List[int]) -> None:
        self.nvec = [int(n) for n in nvec]
        self.out_dim = sum(self.nvec)

    def log_prob(self, out: torch.Tensor, actions: torch.Tensor,
                 log_std: Optional[torch.Tensor] = None) -> torch.Tensor:
        return multicategorical_log_prob(out, actions, self.nvec)

    def entropy(self, out: torch.Tensor, log_std: Optional[torch.Tensor] = None) -> torch.Tensor:
        return multicategorical_entropy(out, self.nvec)

    def kl(self, old: torch.Tensor, old_log_std: Optional[torch.Tensor], out: torch.Tensor,
           log_std: Optional[torch.Tensor] = None) -> torch.Tensor:
        return multicategorical_kl(old, out, self.nvec)

    def mode(self, out: torch.Tensor) -> torch.Tensor:
        return multicategorical_mode(out, self.nvec)

    def sample(self, out: torch.Tensor, log_std: Optional[torch.Tensor] = None,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return multicategorical_sample(out, self.nvec, generator)

    def noise(self, shape: Tuple[int, ...], generator: Optional[torch.Generator],
              device: torch.device) -> torch.Tensor:
        return _gumbel(shape + (self.out_dim,), generator, device)

    def sample_with_noise(self, out: torch.Tensor, noise: torch.Tensor,
                          std: Optional[torch.Tensor] = None) -> torch.Tensor:
        return multicategorical_mode(out + noise, self.nvec)


class BernoulliHead(ActionHead):
    """``MultiBinary(D)``: independent Bernoullis, logits ``[B, D]``, actions ``[B, D]``."""

    def __init__(self, d: int) -> None:
        self.out_dim = int(d)

    def log_prob(self, out: torch.Tensor, actions: torch.Tensor,
                 log_std: Optional[torch.Tensor] = None) -> torch.Tensor:
        return bernoulli_log_prob(out, actions)

    def entropy(self, out: torch.Tensor, log_std: Optional[torch.Tensor] = None) -> torch.Tensor:
        return bernoulli_entropy(out)

    def kl(self, old: torch.Tensor, old_log_std: Optional[torch.Tensor], out: torch.Tensor,
           log_std: Optional[torch.Tensor] = None) -> torch.Tensor:
        return bernoulli_kl(old, out)

    def mode(self, out: torch.Tensor) -> torch.Tensor:
        return (out > 0).long()

    def sample(self, out: torch.Tensor, log_std: Optional[torch.Tensor] = None,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return bernoulli_sample(out, generator)

    def noise(self, shape: Tuple[int, ...], generator: Optional[torch.Generator],
              device: torch.device) -> torch.Tensor:
        u = torch.rand(shape + (self.out_dim,), generator=generator, device=device)
        u.clamp_(1e-7, 1.0 - 1e-7)
        return u.log() - (-u).log1p_()  # standard logistic

    def sample_with_noise(self, out: torch.Tensor, noise: torch.Tensor,
                          std: Optional[torch.Tensor] = None) -> torch.Tensor:
        return (out + noise > 0).long()


class PolicyBase(nn.Module):
    """What every actor-critic offers on top of ``forward(obs) -> (pi_out [B, out_dim], value [B])``:
    its distribution, through its action head (``self.head``, an :class:`ActionHead`) and the
    Gaussian log-std ``self.log_std`` ``[D]`` (None for other heads). The one Python home of
    log-probs, entropies, KL divergences, modes and samples of the policies
    (:class:`pgfast.nn.ActorCritic` and :class:`pgfast.nn.modular.ModularActorCritic`)."""

    head: ActionHead
    log_std: Optional[nn.Parameter]

    def evaluate_actions(self, obs: torch.Tensor, actions: torch.Tensor
                         ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(log pi(a|s) [B], entropy [B], value [B])`` for observations ``[B, ...]`` and
        actions ``[B]`` / ``[B, D]``, differentiable by autograd."""
        pi_out, v = self(obs)
        logp, ent = self.log_prob_entropy(pi_out, actions)
        return logp, ent, v

    def log_prob(self, pi_out: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """log pi(a|s) ``[B]`` from the actor output ``[B, out_dim]``."""
        return self.head.log_prob(pi_out, actions, self.log_std)

    def log_prob_entropy(self, pi_out: torch.Tensor, actions: torch.Tensor
                         ) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(log pi(a|s) [B], entropy [B])`` from the actor output ``[B, out_dim]``."""
        return self.head.log_prob_entropy(pi_out, actions, self.log_std)

    def entropy(self, pi_out: torch.Tensor) -> torch.Tensor:
        """Entropy ``[B]`` from the actor output ``[B, out_dim]``."""
        return self.head.entropy(pi_out, self.log_std)

    def sample(self, pi_out: torch.Tensor, deterministic: bool = False,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """The mode (``deterministic``) or a sample from the actor output ``[B, out_dim]``
        (Box: unclipped)."""
        if deterministic:
            return self.head.mode(pi_out)
        return self.head.sample(pi_out, self.log_std, generator)

    def rollout_noise(self, num_steps: int, num_envs: int,
                      generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Sampling noise of a whole rollout ``[T, N, out_dim]``, drawn once per rollout
        (:meth:`ActionHead.noise`: Gumbel for categoricals, so that ``argmax(logits + noise)`` is
        a sample; standard normal for Box, so that ``mean + exp(log_std) * noise`` is one)."""
        return self.head.noise((num_steps, num_envs), generator, next(self.parameters()).device)

    def sample_with_noise(self, pi_out: torch.Tensor, noise: torch.Tensor,
                          std: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Actions from the actor output ``[N, out_dim]`` and one row ``[N, out_dim]`` of
        :meth:`rollout_noise` (Box: ``std = exp(log_std)`` ``[D]``, computed once per rollout)."""
        return self.head.sample_with_noise(pi_out, noise, std)

    def kl(self, old_pi_out: torch.Tensor, old_log_std: Optional[torch.Tensor],
           pi_out: torch.Tensor) -> torch.Tensor:
        """KL(old || current) per row ``[B]`` from actor outputs ``[B, out_dim]``
        (``old_log_std`` ``[D]`` for Box, else None)."""
        return self.head.kl(old_pi_out, old_log_std, pi_out, self.log_std)

    def act(self, obs: torch.Tensor, deterministic: bool = False,
            generator: Optional[torch.Generator] = None
            ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(actions, logp [B], value [B])`` for observations ``[B, ...]``."""
        pi_out, v = self(obs)
        a = self.sample(pi_out, deterministic, generator)
        return a, self.log_prob(pi_out, a), v


def make_head(action_space: Any) -> ActionHead:
    """The head of a (checked, see :func:`pgfast.spaces.check_action_space`) action space."""
    if isinstance(action_space, gym.spaces.Discrete):
        return CategoricalHead(int(action_space.n))
    if isinstance(action_space, gym.spaces.Box):
        return GaussianHead(int(action_space.shape[0]))
    if isinstance(action_space, gym.spaces.MultiDiscrete):
        return MultiCategoricalHead([int(n) for n in action_space.nvec])
    if isinstance(action_space, gym.spaces.MultiBinary):
        return BernoulliHead(int(action_space.shape[0]))
    raise TypeError(f"no action head for {type(action_space).__name__}")
