"""Learning check of the reproduced study: every claim the README and docs/STUDY.md make.

    make bench BENCH_ARGS="-m learning -k study"        # the whole study (~10 min on 2 idle cores)
    PGFAST_STUDY_DIR=runs/study3 make bench BENCH_ARGS="-m learning -k study"   # check a study already run

Runs ``pgfast experiment all-algos --seeds 0 1 2 --workers 2`` (the command of the README:
every variant on CartPole-v1, Pendulum-v1 and HalfCheetah-v5 with its preset and study
budget) once per session, then checks each claim in its own test, whose failure message
names the claim and gives the numbers. ``PGFAST_STUDY_DIR`` points the check at a study
folder instead of a fresh temporary one: finished jobs there are read, not rerun (a rerun
of the study skips them), so a published run can be checked as it stands. Without
``-m learning`` the cases are skipped (bench/conftest.py).
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import time
from typing import Dict, List, Tuple

import pytest

from pgfast.study import DEFAULT_ENVS, EXPERIMENTS, make_jobs, run_experiment

SEEDS = (0, 1, 2)
WORKERS = 2
MUJOCO = importlib.util.find_spec("mujoco") is not None
Returns = Dict[Tuple[str, str], List[float]]  # (env id, variant) -> eval return per seed, in seed order

# The study's claims (README, docs/STUDY.md): (claim id, env id, kind, variant(s), threshold).
#   every_seed: the variant's final deterministic eval return >= threshold on every seed
#   mean:       the mean over seeds >= threshold
#   above:      the first variant's mean over seeds > the second's
CLAIMS = [
    ("cartpole-ppo-475-every-seed", "CartPole-v1", "every_seed", ("ppo",), 475.0),
    ("cartpole-trpo-475-every-seed", "CartPole-v1", "every_seed", ("trpo",), 475.0),
    ("cartpole-baseline-above-vpg", "CartPole-v1", "above", ("vpg-baseline", "vpg"), None),
    ("pendulum-ppo-mean-200", "Pendulum-v1", "mean", ("ppo",), -200.0),
    ("pendulum-trpo-mean-200", "Pendulum-v1", "mean", ("trpo",), -200.0),
    ("pendulum-baseline-above-vpg", "Pendulum-v1", "above", ("vpg-baseline", "vpg"), None),
    ("halfcheetah-ppo-mean-5000", "HalfCheetah-v5", "mean", ("ppo",), 5000.0),
    ("halfcheetah-ppo-mean-5500", "HalfCheetah-v5", "mean", ("ppo",), 5500.0),
    ("halfcheetah-baseline-above-vpg", "HalfCheetah-v5", "above", ("vpg-baseline", "vpg"), None),
]


@pytest.fixture(scope="module")
def study_returns(tmp_path_factory) -> Returns:
    """Run (or read) the study once; its final deterministic eval returns by (env, variant)."""
    out = os.environ.get("PGFAST_STUDY_DIR") or str(tmp_path_factory.mktemp("study"))
    envs = [e for e in DEFAULT_ENVS if MUJOCO or not e.endswith("-v5")]
    jobs = make_jobs(EXPERIMENTS["all-algos"], envs, SEEDS, out, tensorboard=False)
    t0 = time.monotonic()
    results = run_experiment(jobs, workers=WORKERS)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nstudy in {out}: {len(jobs)} jobs in {time.monotonic() - t0:.0f} s of wall-clock "
          f"(1-min load average at the end {load:.1f})")
    bad = [r.get("key") for r in results if r.get("status") not in ("done", "skipped")]
    assert not bad, f"study jobs did not finish: {bad}"
    got: Returns = {}
    for r in sorted(results, key=lambda r: int(r["seed"])):
        got.setdefault((r["env_id"], r["variant"]), []).append(float(r["eval_mean"]))
    return got


def _fmt(xs: List[float]) -> str:
    return " / ".join(f"{x:.1f}" for x in xs)


@pytest.mark.learning
@pytest.mark.parametrize("claim,env_id,kind,variants,threshold", CLAIMS,
                         ids=[c[0] if isinstance(c, tuple) else c.id for c in CLAIMS])
def test_study_claim_holds(study_returns, claim, env_id, kind, variants, threshold):
    if env_id.endswith("-v5") and not MUJOCO:
        pytest.skip('needs MuJoCo: pip install "pgfast-rl[mujoco]"')
    vals = [study_returns[(env_id, v)] for v in variants]
    for v, xs in zip(variants, vals):
        assert len(xs) == len(SEEDS), f"claim {claim}: {env_id}/{v} has {len(xs)} seeds, expected {len(SEEDS)}"
    if kind == "every_seed":
        (xs,) = vals
        print(f"\n[{claim}] {env_id} {variants[0]} per seed {_fmt(xs)} (>= {threshold} on each)")
        assert min(xs) >= threshold, (f"study claim '{claim}' fails: {env_id} {variants[0]} per seed "
                                      f"{_fmt(xs)}, below {threshold} on seed(s) "
                                      f"{[s for s, x in zip(SEEDS, xs) if x < threshold]}")
    elif kind == "mean":
        (xs,) = vals
        m = statistics.mean(xs)
        print(f"\n[{claim}] {env_id} {variants[0]} mean {m:.1f} over seeds ({_fmt(xs)}; >= {threshold})")
        assert m >= threshold, (f"study claim '{claim}' fails: {env_id} {variants[0]} mean {m:.1f} "
                                f"({_fmt(xs)}) < {threshold}")
    elif kind == "above":
        a, b = (statistics.mean(xs) for xs in vals)
        print(f"\n[{claim}] {env_id} {variants[0]} {a:.1f} ({_fmt(vals[0])}) vs {variants[1]} {b:.1f} "
              f"({_fmt(vals[1])})")
        assert a > b, (f"study claim '{claim}' fails: {env_id} {variants[0]} mean {a:.1f} ({_fmt(vals[0])}) is "
                       f"not above {variants[1]} mean {b:.1f} ({_fmt(vals[1])})")
    else:  # pragma: no cover - a typo in CLAIMS
        raise AssertionError(f"unknown claim kind {kind!r}")
