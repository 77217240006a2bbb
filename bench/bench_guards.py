"""What the non-finite guards cost: one PPO iteration on CartPole-v1 (CleanRL's 4 x 128,
4 epochs x 4 minibatches, one thread) with the guards of :mod:`pgfast.numerics` against the
same iteration with them replaced by no-ops, in alternating rounds of one run.

    cd bench && ../.venv/bin/python -m pytest -c ../pyproject.toml --rootdir .. -o testpaths=bench \\
        -o python_files='bench_*.py' -p no:cacheprovider -q bench_guards.py -s

The tracked ratio ``speedup_vs_unguarded`` is unguarded time / guarded time (1.0 = free);
the target is >= 0.98 (the guards cost under 2% of an iteration).
"""

from __future__ import annotations

import time

import torch

import pgfast
from pgfast import numerics

GUARD_TARGET = 0.98


def _disabled(request) -> bool:
    return bool(request.config.getoption("benchmark_disable", False))


def test_non_finite_guard_cost_per_ppo_iteration(benchmark, request, monkeypatch):
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = pgfast.train("ppo", "CartPole-v1", 4 * 128 * 2, seed=0, device="cpu", tuned=False, num_envs=4,
                           num_steps=128, num_minibatches=4, update_epochs=4)
        rounds, per_round = (2, 2) if _disabled(request) else (15, 20)
        guarded, bare = [], []
        real = (numerics.check_rollout, numerics.check_update)

        def timed() -> float:
            t0 = time.perf_counter()
            for _ in range(per_round):
                run._iterate()
            return (time.perf_counter() - t0) / per_round

        for _ in range(rounds):  # alternate, so that load from other processes hits both alike
            guarded.append(timed())
            monkeypatch.setattr(numerics, "check_rollout", lambda *a, **k: None)
            monkeypatch.setattr(numerics, "check_update", lambda *a, **k: None)
            bare.append(timed())
            monkeypatch.setattr(numerics, "check_rollout", real[0])
            monkeypatch.setattr(numerics, "check_update", real[1])
        benchmark.pedantic(run._iterate, rounds=1, iterations=1)
    finally:
        torch.set_num_threads(old)
    g, b = min(guarded), min(bare)
    ratio = b / g
    benchmark.extra_info.update({"pgfast_guarded_iteration_s": g, "unguarded_iteration_s": b,
                                 "speedup_vs_unguarded": ratio, "target_vs_unguarded": GUARD_TARGET})
    print(f"\nPPO CartPole 4x128 iteration: guarded {g * 1e3:.3f} ms, unguarded {b * 1e3:.3f} ms, "
          f"guards cost {100 * (g / b - 1):.2f}% (ratio {ratio:.3f}, target >= {GUARD_TARGET})")
    if not _disabled(request):
        assert ratio >= GUARD_TARGET - 0.02, "the non-finite guards cost well over 2% of an iteration"
