"""The variance of policy-gradient estimators, measured (``pgfast experiment variance``).

Policy gradients are usually derived as a chain of variance reductions: weight
each step by its reward-to-go instead of the whole episode's return, subtract a
learned baseline V(s), then bootstrap from V (n-step returns, GAE). This module
measures each step of that chain. At fixed policies (the initial one and PPO
checkpoints at about 1/3 and 2/3 of the env's study budget) it estimates the
policy gradient ``g = mean_i(A_i * grad log pi(a_i|s_i))`` ``repeats`` times, each
from an independent rollout of the size training uses (``num_envs x num_steps``
of the env's PPO preset), for every estimator of :data:`ESTIMATORS`:

* ``total-return``: every step weighted by its episode's return, i.e. the
  rewards the episode collected before the step plus its (discounted)
  reward-to-go (with gamma = 1 this is the whole-episode return R(tau), the
  first form of the policy gradient; the past-rewards part has zero mean, so
  the expectation equals that of ``reward-to-go``);
* ``reward-to-go``: the Monte-Carlo reward-to-go G_t (not bootstrapped: an
  episode cut by the end of the rollout counts only the rewards seen);
* ``reward-to-go-baseline``: G_t - V(s_t) with V refitted to this policy's
  returns on separate rollouts first; as in VPG with a baseline (and Spinning
  Up's ``finish_path(V(s_T))``), an episode still running at the end of the
  rollout, or cut by a time limit, is completed by V there (so this estimator
  equals ``gae-1``, a consistency check);
* ``gae-<lambda>``: GAE(lambda) with the refitted V, lambda in 0, 0.5, 0.9, 0.95, 1;
* ``nstep-<n>``: G^(n)_t - V(s_t) (:func:`pgfast.nstep_returns`), n in 1, 5, 20.

Every rollout starts from freshly reset envs, so every episode starts inside it.
Per estimator it reports

* ``variance``: the trace of the covariance of g across repeats divided by the
  squared norm of their mean (the noise-to-signal ratio of one batch);
* ``cosine``: the cosine similarity of the mean of g to a reference gradient:
  ``ref_batches`` rollouts of the training size from the same start states,
  each run on for H more steps (``gamma**H < 1e-3``, :func:`reference_horizon`)
  so that its Monte-Carlo rewards-to-go see the discounted future that a
  training rollout cuts off; the gradient is taken over the first
  ``num_steps`` steps only. It estimates the true discounted policy gradient
  at the training rollouts' states, so a low cosine shows bias: from the
  truncation at the end of a short rollout (``total-return``,
  ``reward-to-go``) or from an imperfect V (the bootstrapping estimators).

The result is ``DIR/variance.csv`` (:data:`CSV_FIELDS`) and, with matplotlib,
``DIR/variance-ENV.png``.
"""

from __future__ import annotations

import copy
import csv
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy as np
import torch

from pgfast import algos
from pgfast.buffer import Collector, RolloutBuffer
from pgfast.envs import make_vec
from pgfast.returns import gae, nstep_returns, reward_to_go

__all__ = ["ESTIMATORS", "CSV_FIELDS", "Settings", "QUICK", "FULL", "gradient_stats", "estimator_weights",
           "run_variance", "write_csv", "plot_variance", "reference_horizon"]

GAE_LAMBDAS: Tuple[float, ...] = (0.0, 0.5, 0.9, 0.95, 1.0)
NSTEPS: Tuple[int, ...] = (1, 5, 20)
ESTIMATORS: Tuple[str, ...] = (("total-return", "reward-to-go", "reward-to-go-baseline")
                               + tuple(f"gae-{lam:g}" for lam in GAE_LAMBDAS)
                               + tuple(f"nstep-{n}" for n in NSTEPS))
"""Estimator names, in the order of the table."""

CSV_FIELDS: Tuple[str, ...] = ("env", "checkpoint", "estimator", "variance", "cosine", "repeats", "batch_steps")
"""Columns of ``variance.csv``."""

Log = Callable[[str], None]


@dataclass(frozen=True)
class Settings:
    """How much work one (env, checkpoint) measurement does."""

    repeats: int = 100
    """independent rollouts (gradient estimates) per estimator"""
    ref_batches: int = 200
    """the reference gradient's batch, in rollouts of the training size"""
    refit_rounds: int = 3
    """rounds of V refitting (collect rollouts, regress V on their returns)"""
    refit_batches: int = 8
    """rollouts of the training size per refit round"""
    refit_epochs: int = 10
    """epochs of Adam regression per refit round"""
    checkpoints: Tuple[str, ...] = ("init", "third", "two-thirds")
    """which policies: the initial one and PPO at 1/3 and 2/3 of the study budget"""
    budget_fraction: float = 1.0
    """fraction of the env's study budget the PPO checkpoints are trained on"""


QUICK = Settings(repeats=30, ref_batches=40, refit_rounds=2, refit_batches=4, refit_epochs=5,
                 checkpoints=("init",))
"""``--quick``: the initial policy only, fewer repeats (CartPole in about a minute)."""

FULL = Settings()
"""The full table."""


# --------------------------------------------------------------------------- gradients


def gradient_stats(grads: torch.Tensor, reference: torch.Tensor) -> Tuple[float, float]:
    """``(variance, cosine)`` of gradient estimates ``[R, P]``: the trace of their
    covariance over the squared norm of their mean, and the cosine of the mean to
    ``reference [P]``."""
    g = grads.double()
    mean = g.mean(0)
    trace = float(g.var(0, unbiased=True).sum())
    m2 = float(mean.square().sum())
    ref = reference.double()
    denom = math.sqrt(m2) * float(ref.norm())
    cos = float(mean @ ref) / denom if denom > 0 else float("nan")
    return (trace / m2 if m2 > 0 else float("inf")), cos


def _past_rewards(rewards: torch.Tensor, terminated: torch.Tensor, truncated: torch.Tensor) -> torch.Tensor:
    """Rewards an episode collected before each step ``[T, N]`` (0 at an episode's first step)."""
    done = (terminated | truncated).to(rewards.dtype)
    out = torch.zeros_like(rewards)
    for t in range(1, rewards.shape[0]):
        out[t] = (out[t - 1] + rewards[t - 1]) * (1.0 - done[t - 1])
    return out


def estimator_weights(buf: RolloutBuffer, gamma: float) -> torch.Tensor:
    """The per-step weights ``[len(ESTIMATORS), T, N]`` of every estimator for a filled
    buffer (its values / next_values from the refitted V)."""
    r, te, tr = buf.rewards, buf.terminated, buf.truncated
    v, nv = buf.values, buf.next_values
    g_mc = reward_to_go(r, te, tr, gamma)
    g_boot = reward_to_go(r, te, tr, gamma, nv)
    out = [_past_rewards(r, te, tr) + g_mc, g_mc, g_boot - v]
    out += [gae(r, v, nv, te, tr, gamma, lam)[0] for lam in GAE_LAMBDAS]
    out += [nstep_returns(r, nv, te, tr, gamma, n) - v for n in NSTEPS]
    return torch.stack(out)


def _grads(policy: Any, obs: torch.Tensor, actions: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``[K, P]`` gradients of ``mean(weights[k] * logp)`` w.r.t. the actor's parameters
    for ``weights [K, B]`` (one forward pass, one batched backward pass)."""
    params = [p for p in policy.actor_params_for_grad() if p.requires_grad]
    logp, _, _ = policy.evaluate_actions(obs, actions)
    B = logp.shape[0]
    gs = torch.autograd.grad(logp, params, grad_outputs=weights / B, is_grads_batched=True)
    return torch.cat([x.reshape(weights.shape[0], -1) for x in gs], 1)


def _collect(policy: Any, env_id: str, num_envs: int, num_steps: int, seed: int) -> RolloutBuffer:
    """One rollout of ``num_envs`` freshly reset envs (values/next_values from ``policy``)."""
    env = make_vec(env_id, num_envs, seed=None, autoreset_mode="same_step")
    try:
        buf = RolloutBuffer(num_steps, num_envs, tuple(env.single_observation_space.shape or ()),
                            env.single_action_space, "cpu")
        gen = torch.Generator()
        gen.manual_seed(seed)
        col = Collector(env, policy, buf, gen)
        col.reset(seed=seed)
        col.collect()
    finally:
        env.close()
    return buf


def _refit_value(policy: Any, env_id: str, cfg: Any, s: Settings, seed: int) -> None:
    """Regress ``policy``'s V on this policy's returns (rewards-to-go bootstrapped from
    the current V at cuts) over ``s.refit_rounds`` rounds of fresh rollouts."""
    params = [p for p in policy.critic_params_for_grad() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-3)
    gen = torch.Generator()
    gen.manual_seed(seed)
    for k in range(s.refit_rounds):
        buf = _collect(policy, env_id, cfg.num_envs * s.refit_batches, cfg.num_steps, seed + 1_000_000 * (k + 1))
        target = reward_to_go(buf.rewards, buf.terminated, buf.truncated, cfg.gamma, buf.next_values).reshape(-1)
        obs = buf.obs[:-1].reshape(-1, *buf.obs_shape)
        B = obs.shape[0]
        mb = max(64, B // 16)
        for _ in range(s.refit_epochs):
            perm = torch.randperm(B, generator=gen)
            for i in range(0, B, mb):
                idx = perm[i:i + mb]
                loss = 0.5 * (policy.value(obs[idx]) - target[idx]).square().mean()
                opt.zero_grad()
                loss.backward()
                opt.step()


def reference_horizon(gamma: float, tol: float = 1e-3, cap: int = 2000) -> int:
    """Extra steps H after a rollout with ``gamma**H < tol`` (at most ``cap``)."""
    if gamma <= 0.0:
        return 0
    if gamma >= 1.0:
        return cap
    return min(cap, int(math.ceil(math.log(tol) / math.log(gamma))))


def measure(policy: Any, env_id: str, cfg: Any, s: Settings, seed: int, log: Log) -> Dict[str, Tuple[float, float]]:
    """``estimator -> (variance, cosine)`` at one fixed policy (its critic is refitted
    first, on a copy)."""
    pol = copy.deepcopy(policy)
    t0 = time.perf_counter()
    _refit_value(pol, env_id, cfg, s, seed + 1)
    ne, T = cfg.num_envs, cfg.num_steps
    # the reference: rollouts of the training size, each followed by H more steps so that
    # their rewards-to-go see (almost) the whole discounted future (gamma^H < 1e-3)
    H = reference_horizon(cfg.gamma)
    ref = torch.zeros(())
    done = 0
    chunk = 50
    while done < s.ref_batches:
        k = min(chunk, s.ref_batches - done)
        buf = _collect(pol, env_id, ne * k, T + H, seed + 10_000_000 + done * ne)
        w = reward_to_go(buf.rewards, buf.terminated, buf.truncated, cfg.gamma)[:T].reshape(1, -1)
        ref = ref + _grads(pol, buf.obs[:T].reshape(-1, *buf.obs_shape),
                           buf.actions[:T].reshape(T * ne * k, *buf.actions.shape[2:]), w)[0] * k
        done += k
    ref = ref / s.ref_batches
    # the repeats: independent rollouts of the training size, all collected in one vector env
    grads = []
    done = 0
    while done < s.repeats:
        k = min(chunk, s.repeats - done)
        buf = _collect(pol, env_id, ne * k, T, seed + 20_000_000 + done * ne)
        W = estimator_weights(buf, cfg.gamma)  # [E, T, ne * k]
        for j in range(k):
            cols = slice(j * ne, (j + 1) * ne)
            obs = buf.obs[:-1, cols].reshape(T * ne, *buf.obs_shape)
            act = buf.actions[:, cols].reshape(T * ne, *buf.actions.shape[2:])
            grads.append(_grads(pol, obs, act, W[:, :, cols].reshape(len(ESTIMATORS), T * ne)))
        done += k
    G = torch.stack(grads, 1)  # [E, R, P]
    out = {name: gradient_stats(G[e], ref) for e, name in enumerate(ESTIMATORS)}
    log(f"    measured in {time.perf_counter() - t0:.1f}s")
    return out


# --------------------------------------------------------------------------- the experiment


def _policies(env_id: str, s: Settings, seed: int, log: Log) -> List[Tuple[str, Any, Any]]:
    """``(checkpoint name, policy, config)`` for the settings' checkpoints: the initial
    policy and PPO trained for 1/3 and 2/3 of the env's study budget."""
    from pgfast.trainer import Run

    budget = int(algos.study_timesteps(env_id) * s.budget_fraction)
    run = Run("ppo", env_id, algos.make_config("ppo", env_id, total_timesteps=max(1, budget)), seed=seed,
              device="cpu")
    out: List[Tuple[str, Any, Any]] = []
    if "init" in s.checkpoints:
        out.append(("init", copy.deepcopy(run.policy), run.config))
    for name, frac in (("third", 1 / 3), ("two-thirds", 2 / 3)):
        if name not in s.checkpoints:
            continue
        target = int(budget * frac)
        if run.global_step < target:
            t0 = time.perf_counter()
            log(f"  training PPO on {env_id} to {target} steps ...")
            run.learn(target - run.global_step)
            log(f"  ... {run.global_step} steps in {time.perf_counter() - t0:.1f}s, "
                f"mean return {run.collector.mean_recent_return():.1f}")
        out.append((name, copy.deepcopy(run.policy), run.config))
    run.close()
    return out


def run_variance(envs: Sequence[str], out: str | Path, settings: Settings = FULL, seed: int = 0,
                 log: Log = print) -> List[Dict[str, Any]]:
    """Measure every estimator on every env at every checkpoint of ``settings``;
    writes ``out/variance.csv`` (after each env) and the plots; returns the rows."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows: List[Dict[str, Any]] = []
    torch.manual_seed(seed)
    for env_id in envs:
        t_env = time.perf_counter()
        log(f"{env_id}: checkpoints {', '.join(settings.checkpoints)}; {settings.repeats} repeats, "
            f"reference of {settings.ref_batches} rollouts")
        for name, policy, cfg in _policies(env_id, settings, seed, log):
            log(f"  {name}: estimating {len(ESTIMATORS)} estimators ...")
            res = measure(policy, env_id, cfg, settings, seed, log)
            for est in ESTIMATORS:
                var, cos = res[est]
                rows.append(dict(env=env_id, checkpoint=name, estimator=est, variance=var, cosine=cos,
                                 repeats=settings.repeats, batch_steps=cfg.num_envs * cfg.num_steps))
            log("    " + "  ".join(f"{e}={res[e][0]:.3g}" for e in ESTIMATORS[:3]))
        write_csv(rows, out / "variance.csv")
        log(f"{env_id}: done in {time.perf_counter() - t_env:.1f}s")
    write_csv(rows, out / "variance.csv")
    plot_variance(rows, out, log)
    return rows


def write_csv(rows: Sequence[Dict[str, Any]], path: str | Path) -> None:
    """Write the rows with the columns of :data:`CSV_FIELDS`."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(CSV_FIELDS))
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k]) for k in CSV_FIELDS})


def plot_variance(rows: Sequence[Dict[str, Any]], out: str | Path, log: Log = print) -> List[Path]:
    """One PNG per env (``variance-ENV.png``): normalised variance (log scale) and
    cosine to the reference per estimator, one bar group per checkpoint. Without
    matplotlib prints a hint and returns ``[]``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log('plots skipped: matplotlib is not installed (pip install "pgfast-rl[plot]")')
        return []
    paths = []
    for env_id in dict.fromkeys(r["env"] for r in rows):
        er = [r for r in rows if r["env"] == env_id]
        cks = list(dict.fromkeys(r["checkpoint"] for r in er))
        ests = list(dict.fromkeys(r["estimator"] for r in er))
        fig, axes = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
        x = np.arange(len(ests))
        wd = 0.8 / len(cks)
        for i, ck in enumerate(cks):
            by = {r["estimator"]: r for r in er if r["checkpoint"] == ck}
            axes[0].bar(x + i * wd, [by[e]["variance"] for e in ests], wd, label=ck)
            axes[1].bar(x + i * wd, [by[e]["cosine"] for e in ests], wd, label=ck)
        axes[0].set_yscale("log")
        axes[0].set_ylabel("tr Cov(g) / |E g|^2")
        axes[0].set_title(f"{env_id}: policy-gradient estimators "
                          f"({er[0]['repeats']} repeats of {er[0]['batch_steps']} steps)")
        axes[0].legend(title="policy")
        axes[1].set_ylabel("cosine to reference")
        axes[1].set_ylim(min(0.0, min(r["cosine"] for r in er)), 1.0)
        axes[1].set_xticks(x + wd * (len(cks) - 1) / 2)
        axes[1].set_xticklabels(ests, rotation=35, ha="right")
        fig.tight_layout()
        p = Path(out) / f"variance-{env_id.replace('/', '_')}.png"
        fig.savefig(p, dpi=90)
        plt.close(fig)
        paths.append(p)
        log(f"plot: {p}")
    return paths
