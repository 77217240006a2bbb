"""End-to-end training speed of TRPO and VPG: pgfast TRPO against sb3-contrib's TRPO with
identical settings, pgfast VPG and TRPO against pgfast PPO on the same rollouts, and where
each iteration's time goes (rollout, advantages, update) with the C++ update and with
autograd.

Run (full size, a few minutes)::

    .venv/bin/python -m pytest -c pyproject.toml -o python_files='bench_*.py' \\
        bench/bench_train_pg.py -p no:cacheprovider -s

Every ratio is measured in one test, both sides one after the other, torch on one intra-op
thread. sb3-contrib missing: the comparison is skipped with a message. Under
``--benchmark-disable`` (CI's smoke run) the step counts shrink and nothing is asserted.

Settings shared by both TRPOs (issue 21): 8 envs x 128 steps, value regression 10 epochs x
4 minibatches with Adam 1e-3, CG 10 iterations, damping 0.1, max KL 0.01, 10 backtracks x
0.8, 64x64 tanh, gamma 0.99, GAE lambda 0.95, normalised advantages.
"""

from __future__ import annotations

import time
from typing import Any, Dict

import pytest
import torch
from torch import nn

import pgfast
from pgfast.algos import make_config
from pgfast.trainer import Run

TRPO_SETTINGS = dict(num_envs=8, num_steps=128, update_epochs=10, num_minibatches=4,
                     learning_rate=1e-3, anneal_lr=False, cg_iters=10, cg_damping=0.1,
                     max_kl=0.01, backtrack_iters=10, backtrack_coeff=0.8, hidden_sizes=(64, 64),
                     activation="tanh", gamma=0.99, gae_lambda=0.95, norm_adv=True, ent_coef=0.0,
                     norm_obs=False, norm_reward=False)
# PPO with CleanRL's default epochs and minibatches, on the same 8 x 128 rollouts
PPO_SETTINGS = dict(num_envs=8, num_steps=128, update_epochs=4, num_minibatches=4,
                    hidden_sizes=(64, 64), activation="tanh")
VPG_SETTINGS = dict(num_envs=8, num_steps=128, hidden_sizes=(64, 64), activation="tanh",
                    baseline=True)
TARGET_VS_SB3_CONTRIB = 10.0
TARGET_VS_PPO = 0.5


def _disabled(request) -> bool:
    return bool(request.config.getoption("benchmark_disable"))


def _one_thread(fn):
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn()
    finally:
        torch.set_num_threads(old)


def _sb3_contrib_trpo(env_id: str, steps: int, seed: int = 0) -> float:
    from sb3_contrib import TRPO
    from stable_baselines3.common.env_util import make_vec_env

    env = make_vec_env(env_id, n_envs=8, seed=seed)
    model = TRPO("MlpPolicy", env, learning_rate=1e-3, n_steps=128, batch_size=256, gamma=0.99,
                 cg_max_steps=10, cg_damping=0.1, line_search_shrinking_factor=0.8,
                 line_search_max_iter=10, n_critic_updates=10, gae_lambda=0.95,
                 normalize_advantage=True, target_kl=0.01, sub_sampling_factor=1,
                 policy_kwargs=dict(net_arch=dict(pi=[64, 64], vf=[64, 64]),
                                    activation_fn=nn.Tanh),
                 seed=seed, device="cpu", verbose=0)
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps)
    seconds = time.perf_counter() - t0
    env.close()
    return seconds


def _ours(algo: str, env_id: str, steps: int, **fields: Any) -> Dict[str, Any]:
    t0 = time.perf_counter()
    run = pgfast.train(algo, env_id, total_timesteps=steps, seed=0, device="cpu", tuned=False,
                       **fields)
    seconds = time.perf_counter() - t0
    out = {"seconds": seconds, "paths": dict(run.paths), "steps": run.global_step,
           "return": run.history[-1]["episodic_return"]}
    run.close()
    return out


@pytest.mark.parametrize("env_id,steps", [("CartPole-v1", 100_000), ("HalfCheetah-v5", 40_960)])
def test_trpo_vs_sb3_contrib(benchmark, request, env_id, steps):
    """TRPO, identical settings: wall-clock of pgfast (C++ update; and autograd, same run) vs
    sb3-contrib's TRPO."""
    pytest.importorskip("sb3_contrib", reason="sb3_contrib not installed: no peer for the TRPO "
                        "comparison (pip install pgfast-rl[bench])")
    if env_id.startswith("HalfCheetah"):
        pytest.importorskip("mujoco", reason="mujoco not installed: no HalfCheetah-v5")
    if _disabled(request):
        steps = 2048
    res: Dict[str, Any] = {}

    def measure():
        res["sb3_contrib"] = _sb3_contrib_trpo(env_id, steps)
        res["torch"] = _ours("trpo", env_id, steps, update_backend="torch", **TRPO_SETTINGS)
        res["ours"] = _ours("trpo", env_id, steps, **TRPO_SETTINGS)

    benchmark.pedantic(lambda: _one_thread(measure), rounds=1, iterations=1)
    ours, autograd = res["ours"], res["torch"]
    assert ours["paths"]["update"] == "native" and autograd["paths"]["update"] == "torch"
    speedup = res["sb3_contrib"] / ours["seconds"]
    benchmark.extra_info.update({
        "timesteps": steps, "pgfast_seconds": ours["seconds"],
        "sb3_contrib_seconds": res["sb3_contrib"], "pgfast_autograd_seconds": autograd["seconds"],
        "speedup_vs_sb3_contrib": speedup,
        "speedup_native_update_vs_autograd": autograd["seconds"] / ours["seconds"],
        "target_vs_sb3_contrib": TARGET_VS_SB3_CONTRIB})
    print(f"\nTRPO {env_id} {steps} steps: pgfast {ours['seconds']:.2f}s (autograd update "
          f"{autograd['seconds']:.2f}s) vs sb3-contrib {res['sb3_contrib']:.2f}s: {speedup:.2f}x")


def test_vpg_and_trpo_vs_ppo_steps_per_s(benchmark, request):
    """Steps/s of VPG and TRPO relative to PPO (CleanRL's 4 epochs x 4 minibatches) on the
    same 8 x 128 CartPole-v1 rollouts, 100k steps each."""
    steps = 2048 if _disabled(request) else 100_352
    res: Dict[str, Dict[str, Any]] = {}

    def measure():
        res["ppo"] = _ours("ppo", "CartPole-v1", steps, **PPO_SETTINGS)
        res["vpg"] = _ours("vpg", "CartPole-v1", steps, **VPG_SETTINGS)
        res["trpo"] = _ours("trpo", "CartPole-v1", steps, **TRPO_SETTINGS)

    benchmark.pedantic(lambda: _one_thread(measure), rounds=1, iterations=1)
    sps = {k: v["steps"] / v["seconds"] for k, v in res.items()}
    benchmark.extra_info.update({
        "timesteps": steps, **{f"{k}_steps_per_s": v for k, v in sps.items()},
        "speedup_vpg_vs_ppo": sps["vpg"] / sps["ppo"],
        "speedup_trpo_vs_ppo": sps["trpo"] / sps["ppo"], "target_vs_ppo": TARGET_VS_PPO})
    print(f"\nCartPole 8x128, {steps} steps: PPO {sps['ppo']:.0f}/s, VPG {sps['vpg']:.0f}/s "
          f"({sps['vpg'] / sps['ppo']:.2f}x), TRPO {sps['trpo']:.0f}/s "
          f"({sps['trpo'] / sps['ppo']:.2f}x)")


def _phases(algo: str, fields: Dict[str, Any], iterations: int) -> Dict[str, float]:
    """Mean ms per iteration of the rollout, the advantages and the update (the learn loop's
    three calls, timed in place), after one warm-up iteration."""
    cfg = dict(fields)
    n = cfg["num_envs"] * cfg["num_steps"]
    run = Run(algo, "CartPole-v1", make_config(algo, total_timesteps=n * (iterations + 1), **cfg),
              seed=0, device="cpu")
    times = {"rollout": 0.0, "advantages": 0.0, "update": 0.0}
    counting = [False]

    def timed(name, fn):
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            out = fn(*a, **k)
            if counting[0]:
                times[name] += time.perf_counter() - t0
            return out
        return wrapper

    run.collector.collect = timed("rollout", run.collector.collect)
    run.updater.advantages = timed("advantages", run.updater.advantages)
    run.updater.update = timed("update", run.updater.update)
    run.learn(n)  # warm-up
    counting[0] = True
    run.learn(n * iterations)
    path = run.paths["update"]
    run.close()
    out = {k: 1e3 * v / iterations for k, v in times.items()}
    out["path"] = path  # type: ignore[assignment]
    return out


def test_phase_breakdown(benchmark, request):
    """ms per 8 x 128 CartPole iteration in rollout / advantages / update for PPO, VPG and
    TRPO, with the C++ update (native) and with autograd (torch), in the same run."""
    iters = 2 if _disabled(request) else 20
    table: Dict[str, Dict[str, Any]] = {}

    def measure():
        for algo, fields in (("ppo", PPO_SETTINGS), ("vpg", VPG_SETTINGS),
                             ("trpo", TRPO_SETTINGS)):
            for backend in ("torch", "native"):
                table[f"{algo}/{backend}"] = _phases(algo, dict(fields, update_backend=backend),
                                                     iters)

    benchmark.pedantic(lambda: _one_thread(measure), rounds=1, iterations=1)
    print("\nms per 8x128 CartPole iteration (rollout, advantages, update):")
    for key, row in table.items():
        assert row["path"] == key.split("/")[1]
        print(f"  {key:14s} {row['rollout']:7.2f} {row['advantages']:7.2f} {row['update']:8.2f}")
        benchmark.extra_info.update({f"{key}_{k}_ms": v for k, v in row.items() if k != "path"})
    for algo in ("ppo", "vpg", "trpo"):
        benchmark.extra_info[f"speedup_{algo}_update_native_vs_torch"] = (
            table[f"{algo}/torch"]["update"] / table[f"{algo}/native"]["update"])
