"""Trust region policy optimisation (Schulman et al. 2015).

Per iteration, on the whole rollout (advantages from GAE, normalised if ``norm_adv``):

1. ``g`` = gradient of the surrogate ``L(theta) = mean(exp(logp - logp_old) * A)``.
2. Solve ``(F + cg_damping I) x = g`` by conjugate gradient (``cg_iters``), where
   ``F v`` is the Fisher-vector product: the Hessian of the mean
   KL(pi_old || pi_theta) times v, by double backprop.
3. Scale to the trust region: ``step = sqrt(2 max_kl / (x^T F x)) x``.
4. Backtracking line search on ``backtrack_coeff^k * step``, ``k < backtrack_iters``:
   accept the first candidate with mean KL <= max_kl and a surrogate improvement;
   if none qualifies the policy is left unchanged.
5. Fit V separately by MSE (``update_epochs`` x ``num_minibatches`` Adam steps at
   ``learning_rate``).

``fvp_subsample < 1`` computes the Fisher-vector products on rows ``floor(i B / n)``,
``i < n = max(1, round(fvp_subsample B))`` of the batch (the gradient and the line search use
every row).

Where the C++ update applies (``update_backend``, :mod:`pgfast.backends`; CPU, float32 MLP)
steps 1-4 run in one C++ call (:func:`pgfast._C.trpo_step`: J v, the output distribution's
Fisher, J^T; either forward-mode J v and a backward per product, or, where it costs fewer
multiply-adds (few outputs: CartPole's 2 logits, a 6-dim Gaussian mean), through the rows of
the output Jacobian computed once per step, which leaves only the products with each layer's
input per vector) and step 5 in another
(:func:`pgfast._C.value_fit`); gradients and Fisher-vector products equal autograd's to
float rounding (tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, Optional, Tuple

import torch

from pgfast import _C
from pgfast.algos import native as nat
from pgfast.algos.base import AlgoBase, flat_batch, normalize_advantages
from pgfast.config import BaseConfig
from pgfast.nn import ActorCritic
from pgfast.optim import make_adam

if TYPE_CHECKING:  # pragma: no cover
    from pgfast.buffer import RolloutBuffer

__all__ = ["TRPOConfig", "TRPO", "conjugate_gradient", "line_search"]


@dataclass
class TRPOConfig(BaseConfig):
    """TRPO hyperparameters."""

    learning_rate: float = 1e-3
    """Adam learning rate of the value function (the policy step is set by max_kl)"""
    max_kl: float = 0.01
    """trust region: largest mean KL(old || new) of an accepted step"""
    cg_iters: int = 10
    """conjugate-gradient iterations"""
    cg_damping: float = 0.1
    """damping added to the Fisher matrix (F + damping I)"""
    backtrack_iters: int = 10
    """line-search candidates"""
    backtrack_coeff: float = 0.8
    """step shrink factor of the line search"""
    update_epochs: int = 10
    """epochs of value-function regression per iteration"""
    num_minibatches: int = 4
    """minibatches per epoch of value-function regression"""
    max_grad_norm: float = 0.0
    """clip of the value-gradient norm (0 disables)"""
    fvp_subsample: float = 1.0
    """fraction of the batch's rows the Fisher-vector products use (1.0: all)"""

    def __post_init__(self) -> None:
        """Check the fields (after the shared checks of BaseConfig)."""
        super().__post_init__()
        if not (self.max_kl > 0):
            raise ValueError(f"max_kl must be > 0, got {self.max_kl!r}")
        for name in ("cg_iters", "backtrack_iters"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if not (self.cg_damping >= 0):
            raise ValueError(f"cg_damping must be >= 0, got {self.cg_damping!r}")
        if not (0 < self.backtrack_coeff < 1):
            raise ValueError(f"backtrack_coeff must be in (0, 1), got {self.backtrack_coeff!r}")
        if not (0 < self.fvp_subsample <= 1):
            raise ValueError(f"fvp_subsample must be in (0, 1], got {self.fvp_subsample!r}")


def conjugate_gradient(Avp: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor,
                       iters: int = 10, tol: float = 1e-10) -> torch.Tensor:
    """Approximately solve ``A x = b`` for symmetric positive-definite A given only
    the product ``Avp(v) = A v``; stops early when the residual norm^2 < tol."""
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = r.dot(r)
    for _ in range(iters):
        if float(rr) < tol:
            break
        Ap = Avp(p)
        alpha = rr / p.dot(Ap)
        x += alpha * p
        r -= alpha * Ap
        rr_new = r.dot(r)
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def line_search(evaluate: Callable[[torch.Tensor], Tuple[float, float]], x0: torch.Tensor,
                full_step: torch.Tensor, surr0: float, max_kl: float, iters: int,
                coeff: float) -> Tuple[bool, torch.Tensor, int]:
    """Backtracking line search.

    ``evaluate(x) -> (surrogate, mean_kl)`` at parameters x. Tries
    ``x0 + coeff^k * full_step`` for k = 0..iters-1 and accepts the first with
    ``mean_kl <= max_kl`` and ``surrogate > surr0``. Returns
    ``(accepted, x, k)``; on rejection ``x`` is ``x0`` and ``k`` is ``iters``.
    """
    for k in range(iters):
        x = x0 + (coeff ** k) * full_step
        surr, kl = evaluate(x)
        if kl <= max_kl and surr > surr0:
            return True, x, k
    return False, x0, iters


class TRPO(AlgoBase):
    """TRPO update: natural-gradient policy step in a KL trust region + value regression."""

    name = "trpo"
    Config = TRPOConfig

    def __init__(self, policy: ActorCritic, config: TRPOConfig, generator: torch.Generator) -> None:
        """Optimisers for ``policy``; ``generator`` drives the minibatch shuffling."""
        super().__init__(policy, config, generator)
        self.pi_params = policy.actor_params_for_grad()
        self.v_params = policy.critic_params_for_grad()
        self.optimizers["v"] = make_adam(self.v_params, config.learning_rate)
        self.base_lrs["v"] = config.learning_rate

    def native_update_reason(self) -> Optional[str]:
        """Why :func:`pgfast._C.trpo_step` / :func:`pgfast._C.value_fit` cannot update this
        policy (None: they can); :func:`pgfast.algos.native.native_update_reason`."""
        return nat.native_update_reason(self.policy, list(self.optimizers.values()))

    def fvp_rows(self, B: int) -> Optional[torch.Tensor]:
        """The rows ``[n]`` the Fisher-vector products use (``fvp_subsample``), None for all."""
        if self.cfg.fvp_subsample >= 1:
            return None
        n = max(1, round(self.cfg.fvp_subsample * B))
        return torch.div(torch.arange(n) * B, n, rounding_mode="floor")

    def fisher_vector_product_fn(self, obs: torch.Tensor, old_pi_out: torch.Tensor,
                                 old_log_std: Optional[torch.Tensor]
                                 ) -> Callable[[torch.Tensor], torch.Tensor]:
        """``v -> (F + cg_damping I) v`` (v: flat actor vector ``[n_actor]``) with F the
        Hessian of the mean KL(old || theta) over obs ``[B, obs_dim]`` at theta = current
        parameters (old = current, so it is the Fisher matrix); ``old_pi_out``
        ``[B, out_dim]``, ``old_log_std`` ``[D]`` (None for Discrete)."""
        pol, params = self.policy, self.pi_params
        pi_out, _ = pol(obs)
        kl = pol.kl(old_pi_out, old_log_std, pi_out).mean()
        grads = torch.autograd.grad(kl, params, create_graph=True)
        flat = pol.actor_flat(grads)
        damping = self.cfg.cg_damping

        def fvp(v: torch.Tensor) -> torch.Tensor:
            """``(F + damping I) v`` for a flat actor vector ``[n_actor]``."""
            hv = torch.autograd.grad(flat.dot(v), params, retain_graph=True)
            return pol.actor_flat(hv) + damping * v

        return fvp

    def update(self, buf: RolloutBuffer, adv: torch.Tensor, returns: torch.Tensor) -> Dict[str, float]:
        """Policy step (CG + line search), then value regression."""
        cfg, pol = self.cfg, self.policy
        obs, act, logp_old, _ = flat_batch(buf)
        B = obs.shape[0]
        A = adv.reshape(B)
        if cfg.norm_adv:
            A = normalize_advantages(A)
        if self.update_path == "native":
            return self._update_native(obs, act, logp_old, A, returns.reshape(B))
        with torch.no_grad():
            old_pi_out = pol(obs)[0]
            old_log_std = pol.log_std.detach().clone() if pol.continuous else None

        def surrogate() -> torch.Tensor:
            """Mean importance-weighted advantage (+ entropy bonus) over the ``[B]`` batch."""
            logp, ent, _ = pol.evaluate_actions(obs, act)
            s = ((logp - logp_old).exp() * A).mean()
            return s + cfg.ent_coef * ent.mean() if cfg.ent_coef else s

        surr = surrogate()
        g = pol.actor_flat(torch.autograd.grad(surr, self.pi_params))
        rows = self.fvp_rows(B)
        fvp = self.fisher_vector_product_fn(obs if rows is None else obs[rows],
                                            old_pi_out if rows is None else old_pi_out[rows],
                                            old_log_std)
        x = conjugate_gradient(fvp, g, cfg.cg_iters)
        xfx = x.dot(fvp(x))  # the quadratic KL model of step a*x is a^2 x^T F x / 2
        full_step = torch.sqrt(2.0 * cfg.max_kl / xfx.clamp_min(1e-12)) * x
        x0 = pol.actor_vector()
        surr0 = float(surr.detach())

        def evaluate(theta: torch.Tensor) -> Tuple[float, float]:
            """``(surrogate, mean KL(old || theta))`` at actor vector ``theta`` ``[n_actor]``."""
            pol.set_actor_vector(theta)
            with torch.no_grad():
                s = surrogate()
                kl = pol.kl(old_pi_out, old_log_std, pol(obs)[0]).mean()
            return float(s), float(kl)

        accepted, theta, k = line_search(evaluate, x0, full_step, surr0, cfg.max_kl,
                                         cfg.backtrack_iters, cfg.backtrack_coeff)
        pol.set_actor_vector(theta)
        with torch.no_grad():
            pi_out = pol(obs)[0]
            kl = pol.kl(old_pi_out, old_log_std, pi_out).mean()
            ent = pol.entropy(pi_out).mean()
        v_loss = self.fit_value(obs, returns.reshape(B), self.optimizers["v"], self.v_params)
        vals = torch.stack([kl, ent, v_loss]).tolist()
        return {"policy_loss": -surr0, "value_loss": vals[2], "entropy": vals[1],
                "approx_kl": vals[0], "line_search_accepted": float(accepted),
                "backtracks": float(k)}

    def _update_native(self, obs: torch.Tensor, act: torch.Tensor, logp_old: torch.Tensor,
                       A: torch.Tensor, ret: torch.Tensor) -> Dict[str, float]:
        """:meth:`update` in C++: one :func:`pgfast._C.trpo_step` call, then one
        :func:`pgfast._C.value_fit` call; tensors ``[B]`` (obs ``[B, ...]``)."""
        cfg, pol = self.cfg, self.policy
        x = nat.policy_input(pol, obs)
        nv = nat.net_views(pol)
        a_np, lp_np, adv_np = (t.detach().contiguous().numpy() for t in (act, logp_old, A))
        surr0, kl, ent, accepted, k = _C.trpo_step(
            **nv, obs=x, actions=a_np, logp_old=lp_np, adv=adv_np, max_kl=cfg.max_kl,
            cg_iters=cfg.cg_iters, cg_damping=cfg.cg_damping, backtrack_iters=cfg.backtrack_iters,
            backtrack_coeff=cfg.backtrack_coeff, ent_coef=cfg.ent_coef,
            fvp_subsample=cfg.fvp_subsample, num_threads=cfg.threads)
        v_loss = nat.value_fit_native(pol, cfg, self.gen, self.optimizers["v"], x, ret)
        return {"policy_loss": -surr0, "value_loss": v_loss, "entropy": ent, "approx_kl": kl,
                "line_search_accepted": float(accepted), "backtracks": float(k)}
