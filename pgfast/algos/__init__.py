"""Policy-gradient algorithms: each module holds a Config dataclass and the update step.

``ALGOS`` maps the names accepted by :func:`pgfast.train` to algorithm classes.
An algorithm class has::

    Config                                  # dataclass of hyperparameters
    __init__(policy, config, generator)     # policy: pgfast.nn.ActorCritic
    advantages(buffer) -> (adv [T, N], returns [T, N])
    update(buffer, adv, returns) -> dict of floats (losses, approx_kl, ...)
    set_lr_fraction(frac)                   # learning-rate annealing
    state_dict() / load_state_dict(d)       # optimiser state
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import math
import textwrap
from dataclasses import dataclass
from typing import Dict, Tuple

import torch

from pgfast.returns import gae

__all__ = ["BaseConfig", "field_docs", "FastAdam", "make_adam", "explained_variance", "ALGOS", "get_algo"]


@dataclass
class BaseConfig:
    """Hyperparameters shared by every algorithm (CleanRL names)."""

    num_envs: int = 8
    """number of parallel environments"""
    num_steps: int = 128
    """steps per env per rollout (the rollout is num_envs x num_steps)"""
    total_timesteps: int = 100_000
    """total env steps of the run"""
    learning_rate: float = 3e-4
    """Adam learning rate (policy and value; TRPO: value function only)"""
    anneal_lr: bool = False
    """anneal the learning rate linearly to 0 over the run"""
    gamma: float = 0.99
    """discount factor"""
    gae_lambda: float = 0.95
    """lambda of generalised advantage estimation (1.0: returns minus baseline)"""
    num_minibatches: int = 4
    """minibatches per epoch of the (value-)update"""
    update_epochs: int = 4
    """epochs over the rollout per update"""
    norm_adv: bool = True
    """normalise advantages to zero mean and unit std"""
    ent_coef: float = 0.0
    """coefficient of the entropy bonus"""
    max_grad_norm: float = 0.5
    """clip of the global gradient norm (0 disables)"""
    hidden_sizes: Tuple[int, ...] = (64, 64)
    """hidden layer widths of the actor and the critic"""
    activation: str = "tanh"
    """activation of the hidden layers: tanh or relu"""
    ortho_init: bool = True
    """orthogonal initialisation of the networks"""
    log_std_init: float = 0.0
    """initial log-std of Gaussian policies (Box actions)"""
    norm_obs: bool = False
    """normalise observations with running mean/std (saved with the model)"""
    norm_reward: bool = False
    """scale rewards by the running std of the discounted return"""
    clip_obs: float = 10.0
    """clip of normalised observations"""
    clip_reward: float = 10.0
    """clip of scaled rewards"""

    def __post_init__(self):
        self.hidden_sizes = tuple(int(h) for h in self.hidden_sizes)
        for name in ("num_envs", "num_steps", "total_timesteps", "num_minibatches",
                     "update_epochs"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        for name in ("gamma", "gae_lambda"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 <= v <= 1.0):
                raise ValueError(f"{name} must be in [0, 1], got {v!r}")
        for name in ("learning_rate", "ent_coef", "max_grad_norm", "clip_obs", "clip_reward"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.activation not in ("tanh", "relu"):
            raise ValueError(f"activation must be 'tanh' or 'relu', got {self.activation!r}")
        if self.batch_size % self.num_minibatches:
            raise ValueError(f"num_envs * num_steps = {self.batch_size} must be divisible by "
                             f"num_minibatches = {self.num_minibatches}")

    # ---- derived values (computed here only) ----
    @property
    def batch_size(self) -> int:
        """Env steps per rollout: num_envs * num_steps."""
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        """batch_size // num_minibatches."""
        return self.batch_size // self.num_minibatches

    @property
    def num_iterations(self) -> int:
        """Rollouts in the run: total_timesteps // batch_size (at least 1)."""
        return max(1, self.total_timesteps // self.batch_size)

    @classmethod
    def field_names(cls):
        """Names of all config fields."""
        return [f.name for f in dataclasses.fields(cls)]

    def to_dict(self) -> Dict:
        """Plain dict of the fields."""
        return dataclasses.asdict(self)


def field_docs(cls) -> Dict[str, str]:
    """One-line docstring of every field of a Config dataclass (read from the source)."""
    docs: Dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        body = tree.body[0].body
        for node, nxt in zip(body, body[1:] + [None]):
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                doc = ""
                if (isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                        and isinstance(nxt.value.value, str)):
                    doc = nxt.value.value.strip()
                docs[node.target.id] = doc
    return docs


class FastAdam:
    """Adam over a fixed list of tensors, with global grad-norm clipping folded in.

    Same update as ``torch.optim.Adam(fused=True)`` (it calls the same fused kernel,
    ``torch._fused_adam_``) without the per-call Python bookkeeping of
    ``torch.optim`` (~70 us per step on CPU, as much as the kernel). Clipping
    ``max_grad_norm`` is applied as the kernel's gradient divisor
    ``max(1, ||g|| / max_grad_norm)``, i.e. ``g * min(1, max_grad_norm / ||g||)`` like
    ``torch.nn.utils.clip_grad_norm_``. Without the fused kernel (old torch, other
    devices) it falls back to ``torch.optim.Adam`` + ``clip_grad_norm_``.

    Gradients live in preallocated ``p.grad`` tensors (zeroed by :meth:`zero_grad`;
    hand-written gradients may overwrite them). ``param_groups[0]["lr"]`` is read
    at every step (for learning-rate annealing).
    """

    def __init__(self, params, lr: float, eps: float = 1e-5, betas=(0.9, 0.999)):
        self.params = list(params)
        for p in self.params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        self.param_groups = [{"lr": float(lr), "betas": tuple(betas), "eps": float(eps)}]
        devs = {p.device.type for p in self.params}
        self.fused = hasattr(torch, "_fused_adam_") and devs <= {"cpu", "cuda"} and all(
            p.dtype in (torch.float32, torch.float64) for p in self.params)
        if self.fused:
            self.exp_avg = [torch.zeros_like(p) for p in self.params]
            self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
            self.steps = [torch.zeros((), dtype=torch.float32, device=p.device)
                          for p in self.params]
        else:  # pragma: no cover - depends on the torch build
            self._opt = torch.optim.Adam(self.params, lr=lr, eps=eps, betas=betas, foreach=True)
            self.param_groups = self._opt.param_groups

    def zero_grad(self) -> None:
        """Zero all gradients in place."""
        torch._foreach_zero_([p.grad for p in self.params])

    def step(self, max_grad_norm: float = 0.0) -> None:
        """One Adam step on the current ``p.grad`` (clipped to ``max_grad_norm`` if > 0)."""
        grads = [p.grad for p in self.params]
        if not self.fused:  # pragma: no cover
            if max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(self.params, max_grad_norm, foreach=True)
            self._opt.step()
            return
        scale = None
        if max_grad_norm > 0:
            total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
            scale = (total.float() + 1e-6).div_(max_grad_norm).clamp_(min=1.0)
        g = self.param_groups[0]
        torch._foreach_add_(self.steps, 1)
        torch._fused_adam_(self.params, grads, self.exp_avg, self.exp_avg_sq, [], self.steps,
                           amsgrad=False, lr=g["lr"], beta1=g["betas"][0], beta2=g["betas"][1],
                           weight_decay=0.0, eps=g["eps"], maximize=False, grad_scale=scale,
                           found_inf=None)

    def state_dict(self) -> Dict:
        """Moments, step counts and hyperparameters."""
        if not self.fused:  # pragma: no cover
            return self._opt.state_dict()
        return {"param_groups": [dict(self.param_groups[0])],
                "exp_avg": [t.clone() for t in self.exp_avg],
                "exp_avg_sq": [t.clone() for t in self.exp_avg_sq],
                "steps": [t.clone() for t in self.steps]}

    def load_state_dict(self, d: Dict) -> None:
        """Restore from :meth:`state_dict` (tensors are moved to the parameters' device)."""
        if not self.fused:  # pragma: no cover
            self._opt.load_state_dict(d)
            return
        self.param_groups[0].update(d["param_groups"][0])
        for name in ("exp_avg", "exp_avg_sq", "steps"):
            for dst, src in zip(getattr(self, name), d[name]):
                dst.copy_(src)


def make_adam(params, lr: float, eps: float = 1e-5) -> FastAdam:
    """The optimiser every algorithm uses (:class:`FastAdam`, eps 1e-5 as CleanRL/SB3)."""
    return FastAdam(params, lr=lr, eps=eps)


def explained_variance(values: torch.Tensor, returns: torch.Tensor) -> float:
    """1 - Var(returns - values) / Var(returns) (NaN when Var(returns) = 0)."""
    var_y = returns.var()
    ev = 1.0 - (returns - values).var() / var_y
    return float(ev) if float(var_y) > 0 else float("nan")


class AlgoBase:
    """Shared pieces: GAE advantages, learning-rate annealing, optimiser state."""

    name = "base"
    Config = BaseConfig

    def __init__(self, policy, config, generator: torch.Generator):
        self.policy = policy
        self.cfg = config
        self.gen = generator
        self.optimizers: Dict[str, torch.optim.Optimizer] = {}
        self.base_lrs: Dict[str, float] = {}

    def advantages(self, buf):
        """GAE advantages and returns ``[T, N]`` from a filled buffer."""
        return gae(buf.rewards, buf.values, buf.next_values, buf.terminated, buf.truncated,
                   self.cfg.gamma, self.cfg.gae_lambda)

    def set_lr_fraction(self, frac: float) -> None:
        """Set every optimiser's lr to ``frac`` times its base lr."""
        for k, opt in self.optimizers.items():
            for g in opt.param_groups:
                g["lr"] = frac * self.base_lrs[k]

    def state_dict(self) -> Dict:
        """Optimiser states."""
        return {k: o.state_dict() for k, o in self.optimizers.items()}

    def load_state_dict(self, d: Dict) -> None:
        """Restore optimiser states."""
        for k, o in self.optimizers.items():
            o.load_state_dict(d[k])

    def fit_value(self, obs, returns, opt, params) -> torch.Tensor:
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


def flat_batch(buf):
    """Flatten a buffer's ``[T, N]`` tensors to ``[T*N]`` (views where possible)."""
    T, N = buf.num_steps, buf.num_envs
    B = T * N
    return (buf.obs[:-1].reshape(B, *buf.obs_shape), buf.actions.reshape(B, *buf.actions.shape[2:]),
            buf.logp.reshape(B), buf.values.reshape(B))


def get_algo(name: str):
    """Algorithm class for a name ("ppo", "trpo", "vpg")."""
    from pgfast.algos.ppo import PPO
    from pgfast.algos.trpo import TRPO
    from pgfast.algos.vpg import VPG

    algos = {"ppo": PPO, "trpo": TRPO, "vpg": VPG}
    if not isinstance(name, str) or name.lower() not in algos:
        raise ValueError(f"algo must be one of {sorted(algos)}, got {name!r}")
    return algos[name.lower()]


ALGOS = ("ppo", "trpo", "vpg")
