"""Classic-control env-steps/s: pgfast's native vector envs vs gymnasium and EnvPool,
random actions, in the same run. Ratios go to extra_info.

    make bench BENCH_ARGS="-k bench_envs"

Peers: CartPole-v1 against gymnasium's NumPy ``CartPoleVectorEnv``
(``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")``),
Pendulum-v1 against gymnasium's ``SyncVectorEnv`` (it has no vector entry point),
both against EnvPool (1 thread, batch_size = num_envs; skipped with a message
when EnvPool is not installed). num_envs 1, 64, 1024, 16384. Implementations
are timed in interleaved rounds (best of each), since this machine's load varies.

Targets on the 2-core reference machine: CartPole at 1024 envs, 1 thread,
>= 4x gymnasium's CartPoleVectorEnv and >= 50x EnvPool; Pendulum at 1024 envs
>= 30x EnvPool; at 16384 envs 2 threads >= 1.7x one thread; at num_envs=1 a
step <= 3 us and >= 5x gymnasium's single-env ``env.step``.
Set PGFAST_BENCH_STRICT=1 to turn missed targets into failures. Under
--benchmark-disable (CI smoke run) each case steps a few times and checks
shapes only.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

import gymnasium as gym

import pgfast
from _peers import interleaved_best

NUM_ENVS = [1, 64, 1024, 16384]
ENV_IDS = ["CartPole-v1", "Pendulum-v1"]
GYM_MODE = {"CartPole-v1": "vector_entry_point", "Pendulum-v1": "sync"}
TARGET_VS_GYM = {("CartPole-v1", 1024): 4.0}
TARGET_VS_ENVPOOL = {("CartPole-v1", 1024): 50.0, ("Pendulum-v1", 1024): 30.0}
TARGET_THREADS = 1.7
TARGET_SINGLE_US = 3.0
TARGET_SINGLE_VS_GYM = 5.0
STRICT = os.environ.get("PGFAST_BENCH_STRICT") == "1"
MIN_TIME = 0.1  # seconds of timing per implementation, case and round
ROUNDS = 3      # rounds, interleaving the implementations


def _steps_per_call(n):
    return max(4, 16384 // n)


def _actions(env_id, n, k, seed=0, dtype=np.int64):
    rng = np.random.default_rng(seed)
    if env_id == "CartPole-v1":
        return [rng.integers(0, 2, n).astype(dtype) for _ in range(k)]
    return [rng.uniform(-2, 2, (n, 1)).astype(np.float32) for _ in range(k)]


def _stepper(step, actions):
    def run():
        for a in actions:
            step(a)
    return run


def _interleaved_best(fns, min_time=MIN_TIME):
    """Best seconds per call of each fn over ROUNDS rounds taking turns."""
    return interleaved_best(fns, ROUNDS, min_time)


def _gymnasium_env(env_id, n):
    env = gym.make_vec(env_id, num_envs=n, vectorization_mode=GYM_MODE[env_id])
    env.reset(seed=0)
    return env


def _envpool_env(env_id, n):
    try:
        import envpool
    except ImportError as e:
        return None, f"envpool not installed: {e}"
    with warnings.catch_warnings():
        # EnvPool builds its gymnasium Box spaces from float64 bounds; gymnasium
        # warns that it casts them to float32. That is EnvPool's business.
        warnings.filterwarnings("ignore", message=".*precision lowered by casting to float32",
                                category=UserWarning)
        env = envpool.make(env_id, env_type="gymnasium", num_envs=n, batch_size=n,
                           num_threads=1, seed=0)
        env.reset()  # builds the spaces lazily
    return env, None


def _smoke(benchmark, env_id, n, threads=1):
    env = pgfast.make_vec(env_id, num_envs=n, seed=0, num_threads=threads)
    actions = _actions(env_id, n, 3)
    benchmark(_stepper(env.step, actions))
    obs, rew, term, trunc, _ = env.step(actions[0])
    assert obs.shape == (n, *env.single_observation_space.shape) and rew.shape == (n,)
    assert np.isfinite(obs).all()
    env.close()


@pytest.mark.parametrize("n", NUM_ENVS, ids=[f"{n}envs" for n in NUM_ENVS])
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_classic_steps_per_s(benchmark, env_id, n):
    """pgfast (1 thread) vs gymnasium's vector env and EnvPool at num_envs n."""
    if benchmark.disabled:
        _smoke(benchmark, env_id, n)
        return
    env = pgfast.make_vec(env_id, num_envs=n, seed=0)
    k = _steps_per_call(n)
    run = _stepper(env.step, _actions(env_id, n, k))
    benchmark.pedantic(run, rounds=5, warmup_rounds=1)

    # Peers take their own number of steps per timed call (gymnasium's
    # SyncVectorEnv needs ~25 us per env and step); rates are per env-step.
    key = f"gymnasium_{GYM_MODE[env_id]}"
    gym_env = _gymnasium_env(env_id, n)
    k_gym = k if GYM_MODE[env_id] != "sync" else max(2, 256 // n)
    fns = {"pgfast": (run, k), key: (_stepper(gym_env.step, _actions(env_id, n, k_gym)), k_gym)}
    pool, why = _envpool_env(env_id, n)
    if pool is not None:
        k_pool = max(2, min(k, 4096 // n))
        fns["envpool"] = (_stepper(pool.step, _actions(env_id, n, k_pool, dtype=np.int32)), k_pool)
    best = _interleaved_best({name: fn for name, (fn, _) in fns.items()},
                             min_time=MIN_TIME if n < 16384 else 0.0)
    sps = {name: n * fns[name][1] / best[name] for name in fns}
    env.close()
    gym_env.close()
    if pool is not None:
        pool.close()

    ours, gym_sps = sps["pgfast"], sps[key]
    info = benchmark.extra_info
    info.update(env_id=env_id, num_envs=n, num_threads=1, pgfast_steps_per_s=ours,
                **{f"{key}_steps_per_s": gym_sps, f"speedup_vs_{key}": ours / gym_sps})
    pool_sps = sps.get("envpool")
    if pool_sps is not None:
        info.update(envpool_steps_per_s=pool_sps, speedup_vs_envpool=ours / pool_sps)
    else:
        info["envpool_skipped"] = why
    t_gym = TARGET_VS_GYM.get((env_id, n))
    t_pool = TARGET_VS_ENVPOOL.get((env_id, n))
    if t_gym is not None:
        info[f"target_vs_{key}"] = t_gym
    if t_pool is not None:
        info["target_vs_envpool"] = t_pool
    print(f"\n[{env_id} {n} envs] pgfast {ours:,.0f} steps/s; {ours / gym_sps:.1f}x {key} "
          f"({gym_sps:,.0f})" + (f"; {ours / pool_sps:.1f}x envpool ({pool_sps:,.0f})"
                                 if pool_sps else f"; {why}"))
    if STRICT:
        if t_gym is not None:
            assert ours / gym_sps >= t_gym
        if t_pool is not None and pool_sps is not None:
            assert ours / pool_sps >= t_pool


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_classic_threads_16384(benchmark, env_id):
    """num_threads=2 vs 1 at 16384 envs (same results, see the tests)."""
    n = 16384
    if benchmark.disabled:
        _smoke(benchmark, env_id, n, threads=2)
        return
    one = pgfast.make_vec(env_id, num_envs=n, seed=0, num_threads=1)
    two = pgfast.make_vec(env_id, num_envs=n, seed=0, num_threads=2)
    assert two.threads_used == 2
    actions = _actions(env_id, n, 8)
    benchmark.pedantic(_stepper(two.step, actions), rounds=5, warmup_rounds=1)
    best = _interleaved_best({1: _stepper(one.step, actions), 2: _stepper(two.step, actions)})
    sps1, sps2 = n * len(actions) / best[1], n * len(actions) / best[2]
    one.close()
    two.close()
    info = benchmark.extra_info
    info.update(env_id=env_id, num_envs=n, steps_per_s_1_thread=sps1, steps_per_s_2_threads=sps2,
                speedup_2_threads=sps2 / sps1, target_speedup_2_threads=TARGET_THREADS)
    print(f"\n[{env_id} {n} envs] 1 thread {sps1:,.0f} steps/s; 2 threads {sps2:,.0f} "
          f"({sps2 / sps1:.2f}x)")
    if STRICT:
        assert sps2 / sps1 >= TARGET_THREADS


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_classic_single_env_step_latency(benchmark, env_id):
    """One env: a pgfast step vs gymnasium's ``gym.make(env_id).step`` (with its
    default wrappers, as a user calls it)."""
    if benchmark.disabled:
        _smoke(benchmark, env_id, 1)
        return
    k = 2000
    env = pgfast.make_vec(env_id, num_envs=1, seed=0)
    actions = _actions(env_id, 1, k)
    benchmark.pedantic(_stepper(env.step, actions), rounds=5, warmup_rounds=1)
    ref = gym.make(env_id)
    ref.reset(seed=0)
    single = [int(a[0]) if env_id == "CartPole-v1" else a[0] for a in actions]

    def ref_run():
        for a in single:
            _, _, te, tr, _ = ref.step(a)
            if te or tr:  # a single gymnasium env must be reset by hand
                ref.reset()

    best = _interleaved_best({"pgfast": _stepper(env.step, actions), "gymnasium": ref_run})
    t_ours, t_gym = best["pgfast"] / k, best["gymnasium"] / k
    env.close()
    ref.close()
    info = benchmark.extra_info
    info.update(env_id=env_id, pgfast_step_us=t_ours * 1e6, gymnasium_single_step_us=t_gym * 1e6,
                speedup_vs_gymnasium_single=t_gym / t_ours, target_step_us=TARGET_SINGLE_US,
                target_vs_gymnasium_single=TARGET_SINGLE_VS_GYM)
    print(f"\n[{env_id} 1 env] pgfast {t_ours * 1e6:.2f} us/step; gymnasium env.step "
          f"{t_gym * 1e6:.2f} us ({t_gym / t_ours:.1f}x)")
    if STRICT:
        assert t_ours * 1e6 <= TARGET_SINGLE_US
        assert t_gym / t_ours >= TARGET_SINGLE_VS_GYM


RESET_ENVS = 1024


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("seeded", [True, False], ids=["seeded", "unseeded"])
def test_classic_reset_1024(benchmark, env_id, seeded):
    """Reset cost at 1024 envs: ``reset(seed=0)`` (each env's numpy PCG64 stream
    seeded through SeedSequence with seed + i, then the reset draws) or ``reset()``
    (draws only), pgfast vs gymnasium's ``SyncVectorEnv`` reset the same way
    (the vector env pgfast reproduces bit for bit) and, for CartPole, gymnasium's
    NumPy ``CartPoleVectorEnv`` (one stream for all envs, so not the same draws)."""
    n = RESET_ENVS
    env = pgfast.make_vec(env_id, num_envs=n, seed=0)
    kw = {"seed": 0} if seeded else {}
    if benchmark.disabled:
        benchmark(lambda: env.reset(**kw))
        obs, _ = env.reset(**kw)
        assert obs.shape == (n, *env.single_observation_space.shape)
        return
    benchmark.pedantic(lambda: env.reset(**kw), rounds=20, warmup_rounds=2)
    fns = {"pgfast": lambda: env.reset(**kw)}
    sync = gym.make_vec(env_id, num_envs=n, vectorization_mode="sync")
    sync.reset(seed=0)
    fns["gymnasium_sync"] = lambda: sync.reset(**kw)
    if env_id == "CartPole-v1":
        vec = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point")
        vec.reset(seed=0)
        fns["gymnasium_vector"] = lambda: vec.reset(**kw)
    best = _interleaved_best(fns)
    info = benchmark.extra_info
    info.update(env_id=env_id, num_envs=n, seeded=seeded, pgfast_reset_us=best["pgfast"] * 1e6)
    line = f"\n[{env_id} reset {n} envs {'seeded' if seeded else 'unseeded'}] pgfast " \
           f"{best['pgfast'] * 1e6:.1f} us"
    for peer in fns:
        if peer == "pgfast":
            continue
        info[f"{peer}_reset_us"] = best[peer] * 1e6
        info[f"speedup_vs_{peer}"] = best[peer] / best["pgfast"]
        line += f"; {peer} {best[peer] * 1e6:.1f} us ({best[peer] / best['pgfast']:.1f}x)"
    print(line)
    env.close()
    sync.close()
