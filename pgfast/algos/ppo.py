"""PPO-clip (Schulman et al. 2017), following the 37 implementation details.

Loss per minibatch (advantages normalised per minibatch if ``norm_adv``)::

    ratio   = exp(logp - logp_old)                       # not logp / logp_old
    pg_loss = mean(max(-A * ratio, -A * clip(ratio, 1 - eps, 1 + eps)))
    v_loss  = 0.5 * mean((V - R)^2)        (or the clipped variant, clip_vloss)
    loss    = pg_loss - ent_coef * entropy + vf_coef * v_loss

``update_epochs`` epochs of ``num_minibatches`` minibatches, global grad-norm
clipping, optional early stop of the epochs when the approximate KL of the last
minibatch exceeds ``target_kl``. Actor and critic (:class:`pgfast.nn.ActorCritic`, separate
networks) share one optimiser over the joint loss: each minibatch is one forward and one
backward pass and one fused Adam step.

Two implementations (``update_backend``, chosen by :mod:`pgfast.backends`): torch autograd
(:func:`ppo_minibatch_loss`, the reference; CUDA, float64 and every policy), and on CPU for
float32 MLP policies each epoch's minibatch steps in one C++ call (:func:`pgfast._C.ppo_epoch`):
the same forward, loss derivatives, backward, clipping and Adam (equal to autograd to float
rounding, tested), without torch's per-operation overhead, which dominates these small
networks. The shuffling draws the same permutations from the same generator either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

import torch

from pgfast import _C, backends
from pgfast.algos.base import AlgoBase, flat_batch, normalize_advantages
from pgfast.config import BaseConfig
from pgfast.optim import make_adam
from pgfast.nn import ActorCritic

if TYPE_CHECKING:  # pragma: no cover
    from pgfast.buffer import RolloutBuffer

__all__ = ["PPOConfig", "PPO", "ppo_clip_loss", "ppo_value_loss", "ppo_minibatch_loss"]


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
    native_update: Optional[bool] = None
    """deprecated: use update_backend (True: "auto", False: "torch")"""

    def __post_init__(self) -> None:
        """Check the fields (after the shared checks of BaseConfig)."""
        super().__post_init__()
        self._migrate("native_update", "update_backend")
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


def ppo_minibatch_loss(policy: ActorCritic, obs: torch.Tensor, actions: torch.Tensor,
                       logp_old: torch.Tensor, v_old: torch.Tensor, adv: torch.Tensor,
                       returns: torch.Tensor, clip_coef: float, clip_vloss: bool, ent_coef: float,
                       vf_coef: float
                       ) -> Tuple[torch.Tensor, Tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                      torch.Tensor]]:
    """Autograd reference of one minibatch: ``(loss, (logp [B], pg_loss, v_loss, entropy))``.

    ``loss = pg_loss + vf_coef * v_loss - ent_coef * entropy`` with the clipped
    surrogate (:func:`ppo_clip_loss`) and value loss (:func:`ppo_value_loss`);
    obs ``[B, obs_dim]``, actions ``[B]`` / ``[B, D]``, the other tensors ``[B]``."""
    logp, ent, v = policy.evaluate_actions(obs, actions)
    ent = ent.mean()
    pg_loss = ppo_clip_loss(logp, logp_old, adv, clip_coef)
    v_loss = ppo_value_loss(v, v_old, returns, clip_coef if clip_vloss else None)
    loss = pg_loss + vf_coef * v_loss - ent_coef * ent
    return loss, (logp, pg_loss, v_loss, ent)


class PPO(AlgoBase):
    """PPO-clip update on a filled :class:`pgfast.buffer.RolloutBuffer`."""

    name = "ppo"
    Config = PPOConfig

    def __init__(self, policy: ActorCritic, config: PPOConfig, generator: torch.Generator) -> None:
        """Optimisers for ``policy``; ``generator`` drives the minibatch shuffling."""
        super().__init__(policy, config, generator)
        self.params = list(policy.parameters())
        self.optimizers["ac"] = make_adam(self.params, config.learning_rate)
        self.base_lrs["ac"] = config.learning_rate

    def _native_order(self) -> Optional[List[int]]:
        """Indices into ``self.params`` in :func:`pgfast._C.ppo_epoch`'s order (the actor's
        weights..., biases..., log_std, then the critic's weights..., biases...), or None if
        ``self.params`` is not exactly the policy's parameters."""
        pol = self.policy
        want = pol.actor_params_for_grad() + pol.critic_params_for_grad()
        ids = [id(p) for p in self.params]
        if len(want) != len(ids) or any(id(p) not in ids for p in want):
            return None
        return [ids.index(id(p)) for p in want]

    def native_update_reason(self) -> Optional[str]:
        """Why :func:`pgfast._C.ppo_epoch` cannot update this policy (None: it can): it takes an
        :class:`pgfast.nn.ActorCritic` of float32 tanh/ReLU layers on CPU, and torch's fused Adam."""
        pol, opt = self.policy, self.optimizers["ac"]
        what = "the C++ update"
        reason = backends.mlp_native_reason(pol, self.params[0].device, what)
        if reason is not None:
            return reason
        bad = sorted({f"{p.dtype} on {p.device}" for p in self.params
                      if p.device.type != "cpu" or p.dtype != torch.float32})
        if bad:
            return f"{what} takes float32 parameters on CPU; this policy has {', '.join(bad)}"
        if not opt.fused:
            return f"{what} needs torch's fused Adam kernel (torch._fused_adam_), which this torch lacks"
        if not isinstance(pol, ActorCritic) or self._native_order() is None:
            return f"{what} needs the optimiser to hold exactly the policy's layers"
        return None

    def update(self, buf: RolloutBuffer, adv: torch.Tensor, returns: torch.Tensor) -> Dict[str, float]:
        """Run the epochs of minibatch updates; returns statistics of the last minibatch."""
        cfg, pol, opt = self.cfg, self.policy, self.optimizers["ac"]
        obs, act, logp_old, v_old = flat_batch(buf)
        B = obs.shape[0]
        adv = adv.reshape(B)
        ret = returns.reshape(B)
        nmb, mb = cfg.num_minibatches, cfg.minibatch_size
        c = cfg.clip_coef
        ent_coef, vf_coef, clip_vloss = cfg.ent_coef, cfg.vf_coef, cfg.clip_vloss
        clip_norm = cfg.max_grad_norm
        if cfg.norm_adv and nmb == 1:  # one minibatch: the normalised advantages never change
            adv = normalize_advantages(adv)
        if self.update_path == "native":
            return self._update_native(obs, act, logp_old, v_old, adv, ret)
        data = (obs, act, logp_old, v_old, adv, ret)
        epochs_done = 0
        stats: Optional[Tuple[torch.Tensor, ...]] = None
        mbs: Sequence[Tuple[torch.Tensor, ...]]
        check_kl = cfg.target_kl is not None
        last_epoch = cfg.update_epochs - 1
        for epoch in range(cfg.update_epochs):
            if nmb > 1:
                perm = torch.randperm(B, generator=self.gen, device=obs.device)
                shuffled = [x[perm] for x in data]
                mbs = [tuple(x[s:s + mb] for x in shuffled) for s in range(0, B, mb)]
            else:  # the whole batch: no indexing at all
                mbs = (data,)
            for k, (o, a, lp0, v0, A, r) in enumerate(mbs):
                if cfg.norm_adv and nmb > 1:
                    A = normalize_advantages(A)
                want = k == nmb - 1 and (check_kl or epoch == last_epoch)
                loss, out = ppo_minibatch_loss(pol, o, a, lp0, v0, A, r, c, clip_vloss, ent_coef, vf_coef)
                opt.zero_grad()
                loss.backward()
                if want:
                    stats = (out[0].detach(), lp0) + tuple(t.detach() for t in out[1:])
                opt.step(clip_norm)
            epochs_done += 1
            if check_kl:
                assert stats is not None and cfg.target_kl is not None
                lr_ = stats[0] - stats[1]
                if float((lr_.exp() - 1 - lr_).mean()) > cfg.target_kl:
                    break
        assert stats is not None  # the last epoch's last minibatch always reports
        with torch.no_grad():
            logp, lp0, pg_loss, v_loss, ent = stats
            vals = torch.stack([pg_loss, v_loss, ent]).tolist()
        return _stats(logp, lp0, c, vals, epochs_done)

    def _native_state(self) -> Dict[str, Any]:
        """The network and optimiser arguments of :func:`pgfast._C.ppo_epoch` (numpy views:
        the actor's and the critic's layers, log_std, exp_avg, exp_avg_sq in ppo_epoch's order),
        made again only when a tensor was replaced (``.to()``, a new optimiser state)."""
        pol, opt = self.policy, self.optimizers["ac"]
        tensors = list(self.params) + list(opt.exp_avg) + list(opt.exp_avg_sq)
        key = tuple(t.data_ptr() for t in tensors)
        if getattr(self, "_native_key", None) != key:
            order = self._native_order()
            assert order is not None
            (aw, ab), (cw, cb) = pol.native_layers()
            log_std = pol.log_std.detach().numpy() if pol.log_std is not None else None
            self._native_views = {
                "actor_weights": aw, "actor_biases": ab, "critic_weights": cw, "critic_biases": cb,
                "log_std": log_std, "exp_avg": [opt.exp_avg[i].numpy() for i in order],
                "exp_avg_sq": [opt.exp_avg_sq[i].numpy() for i in order]}
            self._native_key = key
        return self._native_views

    def _update_native(self, obs: torch.Tensor, act: torch.Tensor, logp_old: torch.Tensor,
                       v_old: torch.Tensor, adv: torch.Tensor, ret: torch.Tensor) -> Dict[str, float]:
        """:meth:`update` in :func:`pgfast._C.ppo_epoch` calls: all epochs in one call (their
        permutations drawn first, in the same order as the torch path draws them), or one
        call per epoch when ``target_kl`` may stop the epochs early."""
        cfg, pol, opt = self.cfg, self.policy, self.optimizers["ac"]
        B = obs.shape[0]
        nmb, mb = cfg.num_minibatches, cfg.minibatch_size
        with torch.no_grad():
            x_np = pol.network_input(obs).contiguous().numpy()
            batch = [t.detach().contiguous() for t in (act, logp_old, v_old, adv, ret)]
        a_np, lp_np, v_np, adv_np, ret_np = (t.numpy() for t in batch)
        nets = self._native_state()
        g: Dict[str, Any] = opt.param_groups[0]
        lr, eps = float(g["lr"]), float(g["eps"])
        beta1, beta2 = (float(x) for x in g["betas"])
        step = int(opt.steps[0].item())
        n_mb = -(-B // mb)
        last = B - mb * (n_mb - 1)
        logp_last = torch.empty(last)
        lp_np_last = logp_last.numpy()
        epochs_done = 0
        vals: List[float] = []
        lp0_last = logp_old[B - last:]
        early_stop = cfg.target_kl is not None
        calls = cfg.update_epochs if early_stop else 1
        per_call = 1 if early_stop else cfg.update_epochs
        for _ in range(calls):
            perm = None
            if nmb > 1:
                perms = [torch.randperm(B, generator=self.gen) for _ in range(per_call)]
                perm = perms[0] if per_call == 1 else torch.stack(perms)
            pg, vl, ent, done = _C.ppo_epoch(
                **nets, step=step, lr=lr,
                beta1=beta1, beta2=beta2, eps=eps, obs=x_np, actions=a_np, logp_old=lp_np, v_old=v_np,
                adv=adv_np, ret=ret_np, perm=None if perm is None else perm.numpy(), minibatch_size=mb,
                clip_coef=cfg.clip_coef, ent_coef=cfg.ent_coef, vf_coef=cfg.vf_coef,
                max_grad_norm=cfg.max_grad_norm, clip_vloss=cfg.clip_vloss, norm_adv=cfg.norm_adv and nmb > 1,
                activation=pol.activation, logp_last=lp_np_last, epochs=per_call,
                num_threads=cfg.threads)
            step += done
            epochs_done += per_call
            vals = [pg, vl, ent]
            last_perm = None if perm is None else perm.reshape(-1, B)[-1]
            lp0_last = logp_old[B - last:] if last_perm is None else logp_old[last_perm[B - last:]]
            if early_stop:
                lr_ = logp_last - lp0_last
                if float((lr_.exp() - 1 - lr_).mean()) > cfg.target_kl:
                    break
        for t in opt.steps:
            t.fill_(float(step))
        return _stats(logp_last, lp0_last, cfg.clip_coef, vals, epochs_done)


def _stats(logp: torch.Tensor, logp_old: torch.Tensor, clip_coef: float, vals: List[float],
           epochs: int) -> Dict[str, float]:
    """The update's report from the last minibatch: its log-probs before and after,
    ``vals = [pg_loss, v_loss, entropy]``."""
    with torch.no_grad():
        logratio = logp - logp_old
        ratio = logratio.exp()
        approx_kl = float(((ratio - 1) - logratio).mean())
        clipfrac = float(((ratio - 1.0).abs() > clip_coef).float().mean())
    return {"policy_loss": vals[0], "value_loss": vals[1], "entropy": vals[2],
            "approx_kl": approx_kl, "clipfrac": clipfrac, "epochs": epochs}
