"""Networks and action distributions for the policy-gradient algorithms.

* :func:`mlp` builds a plain ``nn.Sequential`` multi-layer perceptron.
* :class:`CategoricalPolicy` (``Discrete`` actions) and :class:`GaussianPolicy`
  (``Box`` actions, diagonal Gaussian with a state-independent log-std) and
  :class:`ValueNet` are small stand-alone modules.
* :class:`ActorCritic` is what the trainer uses: actor and critic MLPs with the
  same hidden sizes stored as stacked ``[2, d_in, d_out]`` weights and evaluated
  together by batched matrix products, so one forward pass costs as many torch
  ops as one MLP (op overhead, not arithmetic, dominates these small nets).
* :class:`RunningMeanStd` keeps observation statistics for normalisation.

Log-probabilities, entropies, KL divergences and sampling are written with plain
torch ops (no ``torch.distributions`` objects and no argument validation in the
hot path). For ``Box`` actions the sample is *not* clipped here: log-probs are
those of the unclipped sample, and clipping to the action bounds happens only at
the env boundary (see :mod:`pgfast.buffer`).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import gymnasium as gym
import numpy as np
import torch
from torch import nn

__all__ = [
    "mlp",
    "activation_fn",
    "categorical_log_prob",
    "categorical_entropy",
    "categorical_sample",
    "categorical_kl",
    "gaussian_log_prob",
    "gaussian_entropy",
    "gaussian_sample",
    "gaussian_kl",
    "CategoricalPolicy",
    "GaussianPolicy",
    "ValueNet",
    "ActorCritic",
    "RunningMeanStd",
]

_ACTIVATIONS = {"tanh": (nn.Tanh, torch.tanh), "relu": (nn.ReLU, torch.relu)}
_LOG_2PI = math.log(2.0 * math.pi)


def activation_fn(name: str):
    """Return ``(module_class, function)`` for an activation name ("tanh" or "relu")."""
    if name not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {name!r}")
    return _ACTIVATIONS[name]


def _check_sizes(in_dim, hidden_sizes, out_dim):
    for name, v in (("in_dim", in_dim), ("out_dim", out_dim)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    hs = tuple(hidden_sizes)
    if any(not isinstance(h, (int, np.integer)) or isinstance(h, bool) or h < 1 for h in hs):
        raise ValueError(f"hidden_sizes must be positive ints, got {hidden_sizes!r}")
    return tuple(int(h) for h in hs)


def mlp(in_dim: int, hidden_sizes: Sequence[int], out_dim: int, activation: str = "tanh",
        ortho_init: bool = True, out_gain: float = 1.0) -> nn.Sequential:
    """Multi-layer perceptron ``in_dim -> hidden_sizes... -> out_dim``.

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
    layers = []
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


# --------------------------------------------------------------------------- distributions


def categorical_log_prob(logits: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """log pi(a) for logits ``[B, n]`` and integer actions ``[B]`` -> ``[B]``."""
    return logits.log_softmax(-1).gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)


def categorical_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the categorical with logits ``[B, n]`` -> ``[B]``."""
    logp = logits.log_softmax(-1)
    return -(logp.exp() * logp).sum(-1)


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
    """Entropy of the diagonal Gaussian (independent of the mean), expanded to ``[batch]``."""
    return (log_std.sum() + 0.5 * log_std.shape[-1] * (1.0 + _LOG_2PI)).expand(batch)


def gaussian_sample(mean: torch.Tensor, log_std: torch.Tensor,
                    generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Unclipped sample ``mean + exp(log_std) * eps`` of shape ``[B, D]``."""
    eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + log_std.exp() * eps


def gaussian_kl(mean_p, log_std_p, mean_q, log_std_q) -> torch.Tensor:
    """KL(p || q) between diagonal Gaussians, per row ``[B]``."""
    var_p = torch.exp(2.0 * log_std_p)
    var_q = torch.exp(2.0 * log_std_q)
    return (log_std_q - log_std_p + (var_p + (mean_p - mean_q) ** 2) / (2.0 * var_q) - 0.5).sum(-1)


# --------------------------------------------------------------------------- stand-alone modules


def _space_info(action_space) -> Tuple[bool, int]:
    if isinstance(action_space, gym.spaces.Discrete):
        if int(action_space.start) != 0:
            raise ValueError(f"Discrete action spaces must start at 0, got start={action_space.start}")
        return False, int(action_space.n)
    if isinstance(action_space, gym.spaces.Box):
        if len(action_space.shape) != 1:
            raise ValueError(f"Box action spaces must be 1-D, got shape {action_space.shape}")
        return True, int(action_space.shape[0])
    raise TypeError(f"action_space must be gymnasium Discrete or Box, got {type(action_space).__name__}")


class CategoricalPolicy(nn.Module):
    """Categorical policy for ``Discrete(n)`` actions: an MLP giving logits ``[B, n]``."""

    def __init__(self, obs_dim: int, n_actions: int, hidden_sizes=(64, 64), activation="tanh",
                 ortho_init: bool = True):
        super().__init__()
        self.net = mlp(obs_dim, hidden_sizes, n_actions, activation, ortho_init, out_gain=0.01)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, n]``."""
        return self.net(obs)

    def log_prob(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """log pi(a|s) ``[B]``."""
        return categorical_log_prob(self.net(obs), actions)

    def entropy(self, obs: torch.Tensor) -> torch.Tensor:
        """Entropy ``[B]``."""
        return categorical_entropy(self.net(obs))

    def sample(self, obs: torch.Tensor, deterministic: bool = False,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Actions ``[B]``: argmax if ``deterministic`` else a sample."""
        logits = self.net(obs)
        return logits.argmax(-1) if deterministic else categorical_sample(logits, generator)


class GaussianPolicy(nn.Module):
    """Diagonal Gaussian policy for ``Box`` actions with a state-independent log-std.

    The mean comes from an MLP, ``log_std`` is a free parameter ``[D]``. Samples are
    not clipped (clip them to the action bounds only when passing them to the env).
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden_sizes=(64, 64), activation="tanh",
                 ortho_init: bool = True, log_std_init: float = 0.0):
        super().__init__()
        self.net = mlp(obs_dim, hidden_sizes, act_dim, activation, ortho_init, out_gain=0.01)
        self.log_std = nn.Parameter(torch.full((act_dim,), float(log_std_init)))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Means ``[B, D]``."""
        return self.net(obs)

    def log_prob(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """log pi(a|s) ``[B]`` of unclipped actions ``[B, D]``."""
        return gaussian_log_prob(self.net(obs), self.log_std, actions)

    def entropy(self, obs: torch.Tensor) -> torch.Tensor:
        """Entropy ``[B]``."""
        return gaussian_entropy(self.log_std, obs.shape[0])

    def sample(self, obs: torch.Tensor, deterministic: bool = False,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Actions ``[B, D]``: the mean if ``deterministic`` else an unclipped sample."""
        mean = self.net(obs)
        return mean if deterministic else gaussian_sample(mean, self.log_std, generator)


class ValueNet(nn.Module):
    """State-value network V(s): an MLP with one output, returns ``[B]``."""

    def __init__(self, obs_dim: int, hidden_sizes=(64, 64), activation="tanh",
                 ortho_init: bool = True):
        super().__init__()
        self.net = mlp(obs_dim, hidden_sizes, 1, activation, ortho_init, out_gain=1.0)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Values ``[B]``."""
        return self.net(obs).squeeze(-1)


# --------------------------------------------------------------------------- observation statistics


class RunningMeanStd(nn.Module):
    """Running mean and variance of observations (parallel-variance update, float64).

    Stored as buffers, so they are saved with the model's ``state_dict``.
    ``normalize(x) = clip((x - mean) / sqrt(var + eps), -clip, clip)``.
    """

    def __init__(self, shape: Tuple[int, ...], clip: float = 10.0, eps: float = 1e-8):
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

    def _refresh(self):
        self.mean32.copy_(self.mean)
        self.inv_std32.copy_(1.0 / torch.sqrt(self.var + self.eps))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Fold a batch ``[B, *shape]`` into the statistics."""
        x = x.reshape(-1, *self.mean.shape).to(torch.float64)
        b_mean = x.mean(0)
        b_var = x.var(0, unbiased=False)
        b_count = x.shape[0]
        delta = b_mean - self.mean
        tot = self.count + b_count
        new_mean = self.mean + delta * (b_count / tot)
        m2 = self.var * self.count + b_var * b_count + delta * delta * (self.count * b_count / tot)
        self.mean.copy_(new_mean)
        self.var.copy_(m2 / tot)
        self.count.copy_(tot)
        self._refresh()

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised and clipped observations (float32)."""
        return ((x - self.mean32) * self.inv_std32).clamp(-self.clip, self.clip)

    def _load_from_state_dict(self, *args, **kwargs):  # keep the float32 copies in sync
        super()._load_from_state_dict(*args, **kwargs)
        self._refresh()


# --------------------------------------------------------------------------- fused actor-critic


class ActorCritic(nn.Module):
    """Actor and critic MLPs (same hidden sizes) evaluated together as one network.

    Layer ``i`` holds ``weight_i`` ``[2, d_i, d_{i+1}]`` and ``bias_i`` ``[2, 1, d_{i+1}]``;
    index 0 is the actor, index 1 the critic. The output layer has ``out_dim``
    columns (logits for ``Discrete(n)``, means for ``Box(D)``); the critic uses
    column 0 of its slice (the other critic output columns are unused, receive
    zero gradient and therefore never change under Adam/SGD).

    Forward with obs ``[B, obs_dim]`` -> ``(pi_out [B, out_dim], value [B])``.
    The gradient of an actor-only loss is exactly zero on the critic slices and
    vice versa, so actor and critic can also be optimised separately (VPG, TRPO).

    Args:
        obs_dim: flattened observation size.
        action_space: gymnasium ``Discrete`` or 1-D ``Box``.
        hidden_sizes: hidden widths shared by actor and critic.
        activation: "tanh" or "relu".
        ortho_init: orthogonal init (hidden gain sqrt(2), actor output 0.01, critic 1).
        log_std_init: initial log-std of a Gaussian policy.
        norm_obs: normalise observations by running statistics (see :class:`RunningMeanStd`).
        clip_obs: clip of normalised observations.
    """

    def __init__(self, obs_dim: int, action_space, hidden_sizes=(64, 64), activation="tanh",
                 ortho_init: bool = True, log_std_init: float = 0.0, norm_obs: bool = False,
                 clip_obs: float = 10.0):
        super().__init__()
        self.continuous, self.out_dim = _space_info(action_space)
        hs = _check_sizes(obs_dim, hidden_sizes, self.out_dim)
        self.obs_dim = int(obs_dim)
        self.activation = activation
        _, self._act = activation_fn(activation)
        dims = (self.obs_dim,) + hs + (self.out_dim,)
        self.num_layers = len(dims) - 1
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for i in range(self.num_layers):
            w = torch.empty(2, dims[i], dims[i + 1])
            last = i == self.num_layers - 1
            for k in range(2):
                if ortho_init:
                    gain = (0.01 if k == 0 else 1.0) if last else math.sqrt(2.0)
                    rows = dims[i + 1] if not (last and k == 1) else 1
                    m = torch.empty(rows, dims[i])
                    nn.init.orthogonal_(m, gain)
                else:
                    bound = 1.0 / math.sqrt(dims[i])
                    rows = dims[i + 1] if not (last and k == 1) else 1
                    m = torch.empty(rows, dims[i]).uniform_(-bound, bound)
                w[k].zero_()
                w[k, :, :rows] = m.t()
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(2, 1, dims[i + 1])))
        if self.continuous:
            self.log_std = nn.Parameter(torch.full((self.out_dim,), float(log_std_init)))
        else:
            self.log_std = None
        self.norm_obs = bool(norm_obs)
        self.obs_rms = RunningMeanStd((self.obs_dim,), clip=clip_obs) if norm_obs else None
        self._lists = None

    def layer_tensors(self):
        """``(weights, biases)`` as plain lists (cached: ParameterList indexing is slow)."""
        if self._lists is None:
            self._lists = (list(self.weights), list(self.biases))
        return self._lists

    def _apply(self, fn, *args, **kwargs):  # .to()/.double() may replace parameters
        self._lists = None
        return super()._apply(fn, *args, **kwargs)

    # ---- forward -------------------------------------------------------------------
    def forward(self, obs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(pi_out [B, out_dim], value [B])`` for observations ``[B, obs_dim]``."""
        w, b = self._lists or self.layer_tensors()
        x = obs if obs.dim() == 2 else obs.reshape(obs.shape[0], -1)
        if self.obs_rms is not None:
            x = self.obs_rms.normalize(x)
        if x.dtype != w[0].dtype:
            x = x.to(w[0].dtype)
        act = self._act
        h = torch.baddbmm(b[0], x.expand(2, *x.shape), w[0])
        for i in range(1, self.num_layers):
            h = torch.baddbmm(b[i], act(h), w[i])
        return h[0], h[1, :, 0]

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s) ``[B]``."""
        return self.forward(obs)[1]

    # ---- distribution helpers on pi_out ----------------------------------------------
    def log_prob(self, pi_out: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """log pi(a|s) ``[B]`` from the actor output."""
        if self.continuous:
            return gaussian_log_prob(pi_out, self.log_std, actions)
        return categorical_log_prob(pi_out, actions)

    def log_prob_entropy(self, pi_out: torch.Tensor, actions: torch.Tensor
                         ) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(log pi(a|s) [B], entropy [B])`` sharing the log-softmax for Discrete."""
        if self.continuous:
            return (gaussian_log_prob(pi_out, self.log_std, actions),
                    gaussian_entropy(self.log_std, pi_out.shape[0]))
        logp_all = pi_out.log_softmax(-1)
        logp = logp_all.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
        return logp, -(logp_all.exp() * logp_all).sum(-1)

    def entropy(self, pi_out: torch.Tensor) -> torch.Tensor:
        """Entropy ``[B]``."""
        if self.continuous:
            return gaussian_entropy(self.log_std, pi_out.shape[0])
        return categorical_entropy(pi_out)

    def sample(self, pi_out: torch.Tensor, deterministic: bool = False,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Actions from the actor output: mode if ``deterministic`` else a sample
        (Box: unclipped ``[B, D]`` float; Discrete: ``[B]`` int64)."""
        if self.continuous:
            return pi_out if deterministic else gaussian_sample(pi_out, self.log_std, generator)
        return pi_out.argmax(-1) if deterministic else categorical_sample(pi_out, generator)

    def rollout_noise(self, num_steps: int, num_envs: int,
                      generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Pre-drawn sampling noise for a whole rollout, ``[T, N, out_dim]``.

        Discrete: standard Gumbel noise ``-log(E)``, ``E ~ Exp(1)``, so that
        ``argmax(logits + noise)`` is a sample of the categorical (Gumbel-max trick).
        Box: standard normal noise, so that ``mean + exp(log_std) * noise`` is a sample.
        Drawing it once per rollout saves several torch ops per env step.
        """
        dev = self.weights[0].device
        shape = (num_steps, num_envs, self.out_dim)
        if self.continuous:
            return torch.randn(shape, generator=generator, device=dev)
        e = torch.empty(shape, device=dev).exponential_(generator=generator)
        return e.log_().neg_()

    def sample_with_noise(self, pi_out: torch.Tensor, noise: torch.Tensor,
                          std: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Actions from the actor output and one row of :meth:`rollout_noise`
        (Box: pass ``std = exp(log_std)``, computed once per rollout)."""
        if self.continuous:
            return torch.addcmul(pi_out, std, noise)
        return (pi_out + noise).argmax(-1)

    def kl(self, old_pi_out: torch.Tensor, old_log_std: Optional[torch.Tensor],
           pi_out: torch.Tensor) -> torch.Tensor:
        """KL(old || current) per row ``[B]`` (old_log_std is None for Discrete)."""
        if self.continuous:
            return gaussian_kl(old_pi_out, old_log_std, pi_out, self.log_std)
        return categorical_kl(old_pi_out, pi_out)

    def act(self, obs: torch.Tensor, deterministic: bool = False,
            generator: Optional[torch.Generator] = None):
        """``(actions, logp [B], value [B])`` for observations ``[B, obs_dim]``."""
        pi_out, v = self.forward(obs)
        a = self.sample(pi_out, deterministic, generator)
        return a, self.log_prob(pi_out, a), v

    # ---- parameter groups ------------------------------------------------------------
    def stacked_parameters(self):
        """The stacked ``[2, ...]`` weight and bias tensors (actor index 0, critic 1)."""
        return list(self.weights) + list(self.biases)

    def actor_flat(self, tensors) -> torch.Tensor:
        """Flatten the actor slices of per-parameter tensors ordered as
        ``stacked_parameters() + [log_std]`` (e.g. their gradients) into one vector."""
        n = len(self.weights) + len(self.biases)
        parts = [t[0].reshape(-1) for t in tensors[:n]]
        if self.continuous:
            parts.append(tensors[n].reshape(-1))
        return torch.cat(parts)

    def actor_params_for_grad(self):
        """Parameters an actor loss depends on (stacked tensors, plus log_std for Box)."""
        ps = self.stacked_parameters()
        return ps + [self.log_std] if self.continuous else ps

    @torch.no_grad()
    def actor_vector(self) -> torch.Tensor:
        """Current actor parameters as one flat vector."""
        return self.actor_flat(self.actor_params_for_grad())

    @torch.no_grad()
    def set_actor_vector(self, vec: torch.Tensor) -> None:
        """Overwrite the actor parameters from a flat vector (inverse of actor_vector)."""
        i = 0
        for p in self.stacked_parameters():
            n = p[0].numel()
            p[0].copy_(vec[i:i + n].view_as(p[0]))
            i += n
        if self.continuous:
            n = self.log_std.numel()
            self.log_std.copy_(vec[i:i + n])
            i += n
        if i != vec.numel():
            raise ValueError(f"vec has {vec.numel()} entries, the actor has {i}")
