"""PPO-clip (Schulman et al. 2017), following the 37 implementation details.

Loss per minibatch (advantages normalised per minibatch if ``norm_adv``)::

    ratio   = exp(logp - logp_old)                       # not logp / logp_old
    pg_loss = mean(max(-A * ratio, -A * clip(ratio, 1 - eps, 1 + eps)))
    v_loss  = 0.5 * mean((V - R)^2)        (or the clipped variant, clip_vloss)
    loss    = pg_loss - ent_coef * entropy + vf_coef * v_loss

``update_epochs`` epochs of ``num_minibatches`` minibatches, global grad-norm
clipping, optional early stop of the epochs when the approximate KL of the last
minibatch exceeds ``target_kl``. Actor and critic are one fused network
(:class:`pgfast.nn.ActorCritic`), so each minibatch is one forward and one
backward pass and one fused Adam step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

import torch

from pgfast.algos import AlgoBase, BaseConfig, flat_batch, make_adam

__all__ = ["PPOConfig", "PPO", "ppo_clip_loss", "ppo_value_loss"]


@dataclass
class PPOConfig(BaseConfig):
    """PPO hyperparameters (CleanRL's ppo.py defaults unless noted)."""

    learning_rate: float = 2.5e-4
    """Adam learning rate of actor and critic"""
    anneal_lr: bool = True
    """anneal the learning rate linearly to 0 over the run"""
    num_steps: int = 128
    """steps per env per rollout"""
    num_envs: int = 4
    """number of parallel environments"""
    clip_coef: float = 0.2
    """surrogate clipping coefficient epsilon"""
    clip_vloss: bool = True
    """clip the value loss around the old values (PPO paper's variant)"""
    ent_coef: float = 0.01
    """coefficient of the entropy bonus"""
    vf_coef: float = 0.5
    """coefficient of the value loss"""
    target_kl: Optional[float] = None
    """stop the epochs early when the approximate KL exceeds this (None: never)"""

    def __post_init__(self):
        super().__post_init__()
        if not (self.clip_coef > 0):
            raise ValueError(f"clip_coef must be > 0, got {self.clip_coef!r}")
        if self.target_kl is not None and not (self.target_kl > 0):
            raise ValueError(f"target_kl must be > 0 or None, got {self.target_kl!r}")
        if not (self.vf_coef >= 0):
            raise ValueError(f"vf_coef must be >= 0, got {self.vf_coef!r}")


def ppo_clip_loss(logp: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor,
                  clip_coef: float) -> torch.Tensor:
    """Clipped surrogate loss ``mean(max(-A r, -A clip(r, 1-eps, 1+eps)))`` with
    ``r = exp(logp - logp_old)``; all inputs ``[B]``."""
    ratio = (logp - logp_old).exp()
    return torch.min(adv * ratio, adv * ratio.clamp(1.0 - clip_coef, 1.0 + clip_coef)).neg_().mean()


def ppo_value_loss(v: torch.Tensor, v_old: torch.Tensor, returns: torch.Tensor,
                   clip_coef: Optional[float]) -> torch.Tensor:
    """``0.5 * mean((v - R)^2)``; with ``clip_coef`` the clipped variant
    ``0.5 * mean(max((v - R)^2, (v_old + clip(v - v_old, -c, c) - R)^2))``."""
    if clip_coef is None:
        return 0.5 * (v - returns).square().mean()
    unclipped = (v - returns).square()
    v_clip = v_old + (v - v_old).clamp(-clip_coef, clip_coef)
    return 0.5 * torch.max(unclipped, (v_clip - returns).square()).mean()


class PPO(AlgoBase):
    """PPO-clip update on a filled :class:`pgfast.buffer.RolloutBuffer`."""

    name = "ppo"
    Config = PPOConfig

    def __init__(self, policy, config: PPOConfig, generator: torch.Generator):
        super().__init__(policy, config, generator)
        self.params = list(policy.parameters())
        self.optimizers["ac"] = make_adam(self.params, config.learning_rate)
        self.base_lrs["ac"] = config.learning_rate

    def update(self, buf, adv: torch.Tensor, returns: torch.Tensor) -> Dict[str, float]:
        """Run the epochs of minibatch updates; returns statistics of the last minibatch."""
        cfg, pol, opt = self.cfg, self.policy, self.optimizers["ac"]
        obs, act, logp_old, v_old = flat_batch(buf)
        B = obs.shape[0]
        adv = adv.reshape(B)
        ret = returns.reshape(B)
        nmb, mb = cfg.num_minibatches, cfg.minibatch_size
        c = cfg.clip_coef
        ent_coef, vf_coef = cfg.ent_coef, cfg.vf_coef
        vclip = c if cfg.clip_vloss else None
        params, clip_norm = self.params, cfg.max_grad_norm
        if cfg.norm_adv and nmb == 1:  # one minibatch: the normalised advantages never change
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        data = (obs, act, logp_old, v_old, adv, ret)
        epochs_done = 0
        last = None
        for _ in range(cfg.update_epochs):
            if nmb > 1:
                perm = torch.randperm(B, generator=self.gen, device=obs.device)
                o, a, lp0, v0, ad, r = (x[perm] for x in data)
            else:
                o, a, lp0, v0, ad, r = data
            for s in range(0, B, mb):
                e = s + mb
                pi_out, v = pol(o[s:e])
                if ent_coef:
                    logp, ent = pol.log_prob_entropy(pi_out, a[s:e])
                else:
                    logp, ent = pol.log_prob(pi_out, a[s:e]), None
                A = ad[s:e]
                if cfg.norm_adv and nmb > 1:
                    A = (A - A.mean()) / (A.std() + 1e-8)
                pg_loss = ppo_clip_loss(logp, lp0[s:e], A, c)
                v_loss = ppo_value_loss(v, v0[s:e], r[s:e], vclip)
                loss = pg_loss + vf_coef * v_loss
                if ent is not None:
                    ent = ent.mean()
                    loss = loss - ent_coef * ent
                opt.zero_grad(set_to_none=False)
                loss.backward()
                if clip_norm > 0:
                    torch.nn.utils.clip_grad_norm_(params, clip_norm, foreach=True)
                opt.step()
                last = (logp, lp0[s:e], pg_loss, v_loss, ent)
            epochs_done += 1
            if cfg.target_kl is not None:
                with torch.no_grad():
                    lr_ = last[0] - last[1]
                    if float((lr_.exp() - 1 - lr_).mean()) > cfg.target_kl:
                        break
        with torch.no_grad():
            logp, lp0, pg_loss, v_loss, ent = last
            logratio = logp - lp0
            ratio = logratio.exp()
            approx_kl = ((ratio - 1) - logratio).mean()
            clipfrac = ((ratio - 1.0).abs() > c).float().mean()
            if ent is None:
                ent = pol.entropy(pi_out.detach()).mean()
            vals = torch.stack([pg_loss.detach(), v_loss.detach(), ent.detach(), approx_kl,
                                clipfrac]).tolist()
        return {"policy_loss": vals[0], "value_loss": vals[1], "entropy": vals[2],
                "approx_kl": vals[3], "clipfrac": vals[4], "epochs": epochs_done}
