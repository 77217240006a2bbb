"""Vanilla policy gradient (REINFORCE), with or without a learned baseline.

Policy loss on the whole rollout (one gradient step per iteration)::

    loss = -mean(logp(a|s) * A) - ent_coef * entropy

* ``baseline=False``: ``A`` = discounted rewards-to-go ``G_t`` (pure Monte Carlo:
  an episode cut by the end of the rollout or by a time limit contributes only the
  rewards seen, as Spinning Up's ``finish_path(0)``).
* ``baseline=True``: ``A = G_t - V(s_t)`` with ``G_t`` bootstrapped from V at cuts
  (``gae_lambda=1``), or GAE(lambda) for ``gae_lambda < 1``, or the estimator
  that ``advantage`` names (n-step returns or rewards-to-go minus V); V is refitted every
  iteration by MSE on the latest returns (``update_epochs`` x ``num_minibatches``
  Adam steps at ``vf_learning_rate``).
* ``norm_adv`` normalises A over the rollout.

Where the C++ update applies (``update_backend``, :mod:`pgfast.backends`; CPU, float32 MLP) the
policy step and the value regression each run in one C++ call (:func:`pgfast._C.vpg_step`,
:func:`pgfast._C.value_fit`): the same gradients as autograd to float rounding (tested), the
same minibatch permutations from the same generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, Optional, Tuple

import torch

from pgfast import _C
from pgfast.algos import native as nat
from pgfast.algos.base import AlgoBase, flat_batch, normalize_advantages
from pgfast.config import BaseConfig
from pgfast.nn import ActorCritic
from pgfast.optim import make_adam
from pgfast.returns import reward_to_go

if TYPE_CHECKING:  # pragma: no cover
    from pgfast.buffer import RolloutBuffer

__all__ = ["VPGConfig", "VPG", "vpg_loss"]


@dataclass
class VPGConfig(BaseConfig):
    """VPG / REINFORCE hyperparameters."""

    baseline: bool = True
    """subtract a learned value baseline V(s) from the rewards-to-go"""
    learning_rate: float = 1e-3
    """Adam learning rate of the policy"""
    vf_learning_rate: float = 1e-3
    """Adam learning rate of the value function (baseline=True)"""
    gae_lambda: float = 1.0
    """GAE lambda with a baseline (1.0: rewards-to-go minus V)"""
    update_epochs: int = 10
    """epochs of value-function regression per iteration"""
    num_minibatches: int = 1
    """minibatches per epoch of value-function regression"""
    max_grad_norm: float = 0.0
    """clip of the global gradient norm (0 disables)"""

    def __post_init__(self) -> None:
        """Check the fields (after the shared checks of BaseConfig)."""
        super().__post_init__()
        if not (self.vf_learning_rate >= 0):
            raise ValueError(f"vf_learning_rate must be >= 0, got {self.vf_learning_rate!r}")
        if not self.baseline and self.advantage != "gae":
            raise ValueError(f"advantage={self.advantage!r} needs a value baseline (baseline=True); "
                             "without one VPG uses the plain rewards-to-go")


def vpg_loss(logp: torch.Tensor, adv: torch.Tensor) -> torch.Tensor:
    """REINFORCE loss ``-mean(logp * A)`` for ``[B]`` tensors (A carries no gradient)."""
    return -(logp * adv.detach()).mean()


class VPG(AlgoBase):
    """REINFORCE / VPG update."""

    name = "vpg"
    Config = VPGConfig

    def __init__(self, policy: ActorCritic, config: VPGConfig, generator: torch.Generator) -> None:
        """Optimisers for ``policy``; ``generator`` drives the minibatch shuffling."""
        super().__init__(policy, config, generator)
        self.pi_params = policy.actor_params_for_grad()
        self.optimizers["pi"] = make_adam(self.pi_params, config.learning_rate)
        self.base_lrs["pi"] = config.learning_rate
        if config.baseline:
            self.v_params = policy.critic_params_for_grad()
            self.optimizers["v"] = make_adam(self.v_params, config.vf_learning_rate)
            self.base_lrs["v"] = config.vf_learning_rate

    def advantages(self, buf: RolloutBuffer) -> Tuple[torch.Tensor, torch.Tensor]:
        """Rewards-to-go (no baseline) or the ``advantage`` estimator with the learned V
        (:meth:`AlgoBase.advantages`); ``[T, N]`` each."""
        cfg = self.cfg
        if cfg.baseline:
            return super().advantages(buf)
        g = reward_to_go(buf.rewards, buf.terminated, buf.truncated, cfg.gamma)
        return g, g

    def native_update_reason(self) -> Optional[str]:
        """Why :func:`pgfast._C.vpg_step` / :func:`pgfast._C.value_fit` cannot update this
        policy (None: they can); :func:`pgfast.algos.native.native_update_reason`."""
        return nat.native_update_reason(self.policy, list(self.optimizers.values()))

    def update(self, buf: RolloutBuffer, adv: torch.Tensor, returns: torch.Tensor) -> Dict[str, float]:
        """One policy-gradient step, then (baseline) the value regression."""
        cfg, pol = self.cfg, self.policy
        obs, act, logp_old, _ = flat_batch(buf)
        B = obs.shape[0]
        A = adv.reshape(B)
        if cfg.norm_adv:
            A = normalize_advantages(A)
        if self.update_path == "native":
            return self._update_native(obs, act, logp_old, A, returns.reshape(B))
        opt = self.optimizers["pi"]
        logp, ent, _ = pol.evaluate_actions(obs, act)
        ent = ent.mean()
        pg_loss = vpg_loss(logp, A)
        loss = pg_loss - cfg.ent_coef * ent if cfg.ent_coef else pg_loss
        opt.zero_grad()
        loss.backward()
        opt.step(cfg.max_grad_norm)
        stats = [pg_loss.detach(), ent.detach()]
        with torch.no_grad():
            lr_ = pol.log_prob(pol(obs)[0], act) - logp_old
            stats.append((lr_.exp() - 1 - lr_).mean())
        if cfg.baseline:
            stats.append(self.fit_value(obs, returns.reshape(B), self.optimizers["v"],
                                        self.v_params))
        vals = torch.stack(stats).tolist()
        out = {"policy_loss": vals[0], "entropy": vals[1], "approx_kl": vals[2]}
        if cfg.baseline:
            out["value_loss"] = vals[3]
        return out

    def _update_native(self, obs: torch.Tensor, act: torch.Tensor, logp_old: torch.Tensor,
                       A: torch.Tensor, ret: torch.Tensor) -> Dict[str, float]:
        """:meth:`update` in C++: one :func:`pgfast._C.vpg_step` call, then (baseline) one
        :func:`pgfast._C.value_fit` call; tensors ``[B]`` (obs ``[B, ...]``)."""
        cfg, pol = self.cfg, self.policy
        x = nat.policy_input(pol, obs)
        opt = self.optimizers["pi"]
        nv = nat.net_views(pol)
        a_np, lp_np, adv_np = (t.detach().contiguous().numpy() for t in (act, logp_old, A))
        pg, ent, kl, step = _C.vpg_step(**nv, obs=x, actions=a_np, logp_old=lp_np, adv=adv_np,
                                        ent_coef=cfg.ent_coef, max_grad_norm=cfg.max_grad_norm,
                                        num_threads=cfg.threads, **nat.adam_args(opt))
        nat.set_steps(opt, step)
        out = {"policy_loss": pg, "entropy": ent, "approx_kl": kl}
        if cfg.baseline:
            out["value_loss"] = nat.value_fit_native(pol, cfg, self.gen, self.optimizers["v"], x,
                                                     ret)
        return out
