"""What every algorithm shares: advantages (GAE, n-step or Monte-Carlo), learning-rate annealing, optimiser
state, the value-function fit, and flattening of a ``[T, N]`` rollout.

An algorithm class (see :data:`pgfast.algos.ALGOS`) derives from :class:`AlgoBase`::

    name                                    # the registry name ("ppo", ...)
    Config                                  # dataclass of hyperparameters (pgfast.config.BaseConfig)
    __init__(policy, config, generator)     # policy: pgfast.nn.ActorCritic
    advantages(buffer) -> (adv [T, N], returns [T, N])
    update(buffer, adv, returns) -> dict of floats (losses, approx_kl, ...)
    native_update_reason() -> None or why a C++ update cannot serve the run
    update_path                             # "native" | "torch" (update_backend, pgfast.backends)
    set_lr_fraction(frac)                   # learning-rate annealing
    state_dict() / load_state_dict(d)       # optimiser state
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import torch

from pgfast import backends
from pgfast.config import BaseConfig
from pgfast.optim import FastAdam
from pgfast.returns import gae, nstep_returns, reward_to_go

__all__ = ["AlgoBase", "explained_variance", "flat_batch", "normalize_advantages"]


def normalize_advantages(adv: torch.Tensor) -> torch.Tensor:
    """``(A - mean(A)) / (std(A) + 1e-8)`` over a ``[B]`` batch of advantages (``norm_adv``; the
    torch home of this step, the C++ update has its own)."""
    return (adv - adv.mean()) / (adv.std() + 1e-8)


def explained_variance(values: torch.Tensor, returns: torch.Tensor) -> float:
    """1 - Var(returns - values) / Var(returns) (NaN when Var(returns) = 0)."""
    var_y = returns.var()
    ev = 1.0 - (returns - values).var() / var_y
    return float(ev) if float(var_y) > 0 else float("nan")


class AlgoBase:
    """Shared pieces: advantages, learning-rate annealing, optimiser state."""

    name = "base"
    Config = BaseConfig

    def __init__(self, policy: Any, config: Any, generator: torch.Generator) -> None:
        self.policy = policy
        self.cfg = config
        self.gen = generator
        self.optimizers: Dict[str, FastAdam] = {}
        self.base_lrs: Dict[str, float] = {}
        self._update_path: Optional[str] = None
        self.space_note: Optional[str] = None
        """Why the env's spaces need the torch path (:func:`pgfast.spaces.torch_path_reason`;
        set by the Run): the reason a C++ update cannot apply, where it is set."""

    def native_update_reason(self) -> Optional[str]:
        """Why a C++ update cannot serve this run (None: it can). Algorithms with a C++ update
        override it; here: none."""
        return f"{self.name} has no C++ update"

    @property
    def update_path(self) -> str:
        """The update's path, "native" (C++) or "torch", as ``cfg.update_backend`` asks
        (:func:`pgfast.backends.choose`; decided at the first call: ValueError with the
        reason when "native" cannot apply)."""
        if self._update_path is None:
            reason = self.native_update_reason()
            if reason is not None and self.space_note is not None:
                reason = backends.space_reason("the C++ update", self.space_note)
            self._update_path = backends.choose("update_backend", getattr(self.cfg, "update_backend", "auto"),
                                                reason)
        return self._update_path

    def advantages(self, buf: Any) -> Tuple[torch.Tensor, torch.Tensor]:
        """Advantages and value targets ``[T, N]`` from a filled buffer, by ``cfg.advantage``:

        * ``"gae"``: GAE(``gae_lambda``); returns = A + V.
        * ``"nstep"``: A = G^(n) - V with the ``nstep``-step bootstrapped return G^(n).
        * ``"mc"``: A = G - V with the rewards-to-go G (bootstrapped from V only at
          truncations and the end of the rollout).

        For nstep and mc the value targets are G itself.
        """
        cfg = self.cfg
        kind = getattr(cfg, "advantage", "gae")
        if kind == "gae":
            return gae(buf.rewards, buf.values, buf.next_values, buf.terminated, buf.truncated,
                       cfg.gamma, cfg.gae_lambda)
        if kind == "nstep":
            g = nstep_returns(buf.rewards, buf.next_values, buf.terminated, buf.truncated, cfg.gamma,
                              cfg.nstep)
        elif kind == "mc":
            g = reward_to_go(buf.rewards, buf.terminated, buf.truncated, cfg.gamma, buf.next_values)
        else:
            raise ValueError(f"unknown advantage estimator {kind!r}")
        return g - buf.values, g

    def update(self, buf: Any, adv: torch.Tensor, returns: torch.Tensor) -> Dict[str, float]:
        """One update from a filled buffer and its ``[T, N]`` advantages and returns;
        returns the statistics to log (losses, approx_kl, ...)."""
        raise NotImplementedError

    def set_lr_fraction(self, frac: float) -> None:
        """Set every optimiser's lr to ``frac`` times its base lr."""
        for k, opt in self.optimizers.items():
            for g in opt.param_groups:
                g["lr"] = frac * self.base_lrs[k]

    def state_dict(self) -> Dict[str, Any]:
        """Optimiser states."""
        return {k: o.state_dict() for k, o in self.optimizers.items()}

    def load_state_dict(self, d: Dict[str, Any]) -> None:
        """Restore optimiser states, also those of the stacked actor-critic layout of earlier
        releases (their moments converted: :meth:`pgfast.nn.ActorCritic.legacy_moments`)."""
        for k, o in self.optimizers.items():
            st = d[k]
            if _stacked_moments(st):
                convert = getattr(self.policy, "legacy_moments", None)
                if convert is None:
                    raise ValueError(f"optimiser state {k!r} has the stacked layout of earlier "
                                     f"releases, which {type(self.policy).__name__} does not read")
                steps = st["steps"]
                st = dict(st, exp_avg=convert(st["exp_avg"], o.params),
                          exp_avg_sq=convert(st["exp_avg_sq"], o.params),
                          steps=[steps[0].clone() for _ in o.params] if steps else steps)
            o.load_state_dict(st)

    def fit_value(self, obs: torch.Tensor, returns: torch.Tensor, opt: FastAdam, params: Any) -> torch.Tensor:
        """Regress V(s) on ``returns`` by MSE: update_epochs x num_minibatches Adam steps.

        Returns the last minibatch's loss (a tensor)."""
        cfg = self.cfg
        B = obs.shape[0]
        mb = B // cfg.num_minibatches
        loss = torch.zeros(())
        for _ in range(cfg.update_epochs):
            if cfg.num_minibatches > 1:
                perm = torch.randperm(B, generator=self.gen, device=obs.device)
                o, r = obs[perm], returns[perm]
            else:
                o, r = obs, returns
            for s in range(0, B, mb):
                v = self.policy.value(o[s:s + mb])
                loss = 0.5 * (v - r[s:s + mb]).square().mean()
                opt.zero_grad()
                loss.backward()
                opt.step(cfg.max_grad_norm)
        return loss.detach()


def _stacked_moments(state: Any) -> bool:
    """Whether a saved :class:`FastAdam` state holds moments of the stacked ``[2, d_in, d_out]``
    layers of earlier releases."""
    m = state.get("exp_avg") if isinstance(state, dict) else None
    return isinstance(m, list) and any(getattr(t, "dim", lambda: 0)() == 3 for t in m)


def flat_batch(buf: Any) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flatten a buffer's ``[T, N]`` tensors to ``[T*N]`` (views where possible)."""
    T, N = buf.num_steps, buf.num_envs
    B = T * N
    return (buf.obs[:-1].reshape(B, *buf.obs_shape), buf.actions.reshape(B, *buf.actions.shape[2:]),
            buf.logp.reshape(B), buf.values.reshape(B))
