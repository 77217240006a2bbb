"""Tests of pgfast.study and pgfast.logs: job model, logs, summary statistics,
plots and running jobs."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from pgfast import study
from pgfast.logs import PROGRESS_NAME, CsvLog, read_progress
from pgfast.presets import PRESETS


# ---------------------------------------------------------------- helpers ---


def _write_job_logs(root: Path, env_id: str, variant: str, seed: int, steps, returns, eval_mean=None):
    """Write a job directory the way run_job does (CsvLog + result.json)."""
    d = root / env_id / variant / f"seed{seed}"
    d.mkdir(parents=True, exist_ok=True)
    log = CsvLog(d / PROGRESS_NAME)
    for s, r in zip(steps, returns):
        log.append({"global_step": s, "episodic_return": r, "loss": 0.5, "sps": 1000.0})
    if eval_mean is not None:
        (d / study.RESULT_NAME).write_text(json.dumps({
            "key": f"{env_id}/{variant}/seed{seed}", "env_id": env_id, "variant": variant, "algo": "ppo",
            "seed": seed, "global_step": int(steps[-1]), "total_timesteps": int(steps[-1]), "eval_episodes": 5,
            "eval_mean": float(eval_mean), "eval_std": 0.0, "wall_s": 1.0, "status": "done"}))
    return d


# ------------------------------------------------------------- statistics ---


def test_t_critical_matches_known_values():
    assert study.t_critical_975(1) == pytest.approx(12.706)
    assert study.t_critical_975(2) == pytest.approx(4.303)
    assert study.t_critical_975(30) == pytest.approx(2.042)
    # beyond the table: close to the true values (t_{.975,60} = 2.000, t_{.975,120} = 1.980)
    assert study.t_critical_975(60) == pytest.approx(2.000, abs=0.002)
    assert study.t_critical_975(120) == pytest.approx(1.980, abs=0.002)
    with pytest.raises(ValueError, match="df"):
        study.t_critical_975(0)


def test_summarize_mean_std_ci(tmp_path):
    results = []
    for seed, v in zip([0, 1, 2], [100.0, 200.0, 300.0]):
        results.append({"env_id": "CartPole-v1", "variant": "ppo", "seed": seed, "eval_mean": v,
                        "eval_stoch_mean": v / 2, "eval_episodes": 20, "global_step": 1000 + seed})
    results.append({"env_id": "CartPole-v1", "variant": "vpg", "seed": 0, "eval_mean": 50.0, "global_step": 900})
    rows = study.summarize(results)
    # variant order follows VARIANTS (vpg before ppo)
    assert [r["variant"] for r in rows] == ["vpg", "ppo"]
    ppo = rows[1]
    assert ppo["n"] == 3
    assert ppo["eval_mean"] == pytest.approx(200.0)
    assert ppo["eval_std"] == pytest.approx(100.0)  # sample std (ddof=1)
    half = 4.303 * 100.0 / math.sqrt(3)
    assert ppo["ci95_low"] == 0.0 and 200.0 - half < 0  # clipped to the returns CartPole can reach
    assert ppo["ci95_high"] == pytest.approx(200.0 + half)
    assert ppo["total_timesteps"] == 1000
    assert ppo["per_seed"] == "100.0 200.0 300.0"
    assert ppo["stoch_mean"] == pytest.approx(100.0) and ppo["stoch_std"] == pytest.approx(50.0)
    assert ppo["per_seed_stoch"] == "50.0 100.0 150.0" and ppo["eval_episodes"] == 20
    one = rows[0]
    assert one["n"] == 1 and math.isnan(one["eval_std"]) and math.isnan(one["ci95_low"])  # shown as n/a
    assert math.isnan(one["stoch_mean"])  # a result from before stochastic evaluation was recorded
    p = study.write_summary(rows, tmp_path / "summary.csv")
    with open(p, newline="") as f:
        got = list(csv.DictReader(f))
    assert got[1]["variant"] == "ppo" and float(got[1]["eval_mean"]) == 200.0 and got[1]["n"] == "3"
    text = study.format_summary(rows)
    assert "ppo" in text and "stochastic" in text and "± and the 95% CI are over seeds" in text
    assert "stochastic eval, mean ± std over seeds" in study.format_summary_markdown(rows)


# ------------------------------------------------------------------- logs ---


def test_csvlog_roundtrip_and_resume_truncation(tmp_path):
    p = tmp_path / "progress.csv"
    log = CsvLog(p)
    log.append({"global_step": 64, "episodic_return": float("nan"), "loss": 1.5, "name": "skipped-non-scalar"})
    log.append({"global_step": 128, "episodic_return": 20.0, "loss": np.float32(0.25)})
    log.append({"global_step": 192, "episodic_return": 30.0, "loss": 0.125})
    rows = read_progress(p)
    assert [r["global_step"] for r in rows] == [64, 128, 192]
    assert math.isnan(rows[0]["episodic_return"]) and rows[1]["episodic_return"] == 20.0
    assert rows[1]["loss"] == 0.25
    assert "name" not in rows[0]
    # resuming from a checkpoint at step 128 drops the rows after it
    log2 = CsvLog(p, resume_step=128)
    assert [r["global_step"] for r in read_progress(p)] == [64, 128]
    log2.append({"global_step": 192, "episodic_return": 31.0, "loss": 0.1})
    assert [r["episodic_return"] for r in read_progress(p)][1:] == [20.0, 31.0]
    # a fresh (non-resumed) log starts over
    CsvLog(p)
    assert read_progress(p) == []
    assert read_progress(tmp_path / "missing.csv") == []


def test_fresh_csvlog_takes_its_header_from_the_new_run(tmp_path):
    # a new run written over an old log (other algorithm, other columns) loses none
    # of its own columns to the old header
    p = tmp_path / "progress.csv"
    old = CsvLog(p)
    old.append({"global_step": 64, "policy_loss": 1.0})
    new = CsvLog(p)
    new.append({"global_step": 32, "policy_loss": 0.5, "clipfrac": 0.25})
    rows = read_progress(p)
    assert len(rows) == 1 and rows[0]["global_step"] == 32
    assert rows[0]["policy_loss"] == 0.5 and rows[0]["clipfrac"] == 0.25


def test_aggregate_interpolates_to_common_grid():
    c1 = (np.array([0.0, 10.0]), np.array([0.0, 10.0]))
    c2 = (np.array([0.0, 5.0, 8.0]), np.array([2.0, 7.0, 10.0]))
    grid, mean, std, n = study.aggregate([c1, c2], points=5)
    assert n == 2
    assert grid[0] == 0.0 and grid[-1] == 8.0  # up to the shortest curve
    np.testing.assert_allclose(mean[0], 1.0)
    np.testing.assert_allclose(mean[-1], 9.0)
    np.testing.assert_allclose(std[0], np.std([0.0, 2.0], ddof=1))
    with pytest.raises(ValueError, match="curves"):
        study.aggregate([])


# ------------------------------------------------------------------ plots ---


def test_plot_one_line_per_variant_and_redraw(tmp_path):
    steps = [100, 200, 300, 400]
    for variant, base in [("vpg", 10.0), ("vpg-baseline", 20.0), ("ppo", 40.0)]:
        for seed in (0, 1):
            _write_job_logs(tmp_path, "CartPole-v1", variant, seed, steps,
                            [base + seed, float("nan"), base * 2 + seed, base * 3], eval_mean=base * 3 + seed)
    _write_job_logs(tmp_path, "Pendulum-v1", "ppo", 0, steps, [-1000, -800, -500, -300], eval_mean=-250.0)

    fig = study.plot_env(tmp_path / "CartPole-v1", tmp_path / "cp.png", env_id="CartPole-v1")
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 3
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["VPG (no baseline) (n=2)", "VPG + baseline (n=2)", "PPO-clip (n=2)"]
    assert ax.get_xlabel() == "environment steps" and "return" in ax.get_ylabel()
    assert "CartPole-v1" in ax.get_title() and "2 seeds" in ax.get_title()
    assert len(ax.collections) == 3  # one error band per variant
    ppo = ax.get_lines()[2]
    # mean over seeds of the non-NaN points, interpolated (step 100: 40, 41 -> 40.5)
    assert ppo.get_ydata()[0] == pytest.approx(40.5)
    assert ppo.get_xdata()[-1] == 400
    assert (tmp_path / "cp.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    out = study.redraw(tmp_path, log=lambda m: None)
    assert sorted(p.name for p in out["plots"]) == ["CartPole-v1.png", "Pendulum-v1.png"]
    for p in out["plots"]:
        assert p.stat().st_size < 100_000
    with open(out["summary"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["env_id"], r["variant"], r["n"]) for r in rows] == [
        ("CartPole-v1", "vpg", "2"), ("CartPole-v1", "vpg-baseline", "2"), ("CartPole-v1", "ppo", "2"),
        ("Pendulum-v1", "ppo", "1")]
    assert float(rows[2]["eval_mean"]) == pytest.approx(120.5)
    md = (tmp_path / "summary.md").read_text().splitlines()
    assert md[0].startswith("| env | variant |") and len(md) == 2 + 4 + 2
    assert md[-1].endswith("± and the 95% CI are over seeds.") and md[2].endswith("| n/a |")
    assert md[4].startswith("| CartPole-v1 | PPO-clip | 0 1 (2) | 400 | 120.5 ± 0.7 |")


def test_redraw_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="out"):
        study.redraw(tmp_path / "nope")
    with pytest.raises(ValueError, match="no study logs"):
        study.redraw(tmp_path)


# ---------------------------------------------------------------- presets ---


def test_make_jobs_layout_and_errors(tmp_path):
    jobs = study.make_jobs(["vpg", "vpg-baseline"], ["CartPole-v1"], [0, 1], tmp_path, total_timesteps=1000,
                        overrides={"num_envs": 2})
    assert [j.key for j in jobs] == ["CartPole-v1/vpg/seed0", "CartPole-v1/vpg/seed1",
                                     "CartPole-v1/vpg-baseline/seed0", "CartPole-v1/vpg-baseline/seed1"]
    assert jobs[0].config_dict()["baseline"] is False and jobs[2].config_dict()["baseline"] is True
    assert all(j.config_dict()["num_envs"] == 2 for j in jobs)  # --set wins over the preset
    assert jobs[0].config_dict()["learning_rate"] == PRESETS["vpg"]["CartPole-v1"]["learning_rate"]
    assert Path(jobs[3].out_dir) == tmp_path / "CartPole-v1" / "vpg-baseline" / "seed1"
    default = study.make_jobs(["ppo"], ["Pendulum-v1"], [0], tmp_path)
    assert default[0].total_timesteps == 300_000
    with pytest.raises(ValueError, match="variant"):
        study.make_jobs(["a2c"], ["CartPole-v1"], [0], tmp_path)
    with pytest.raises(ValueError, match="seeds"):
        study.make_jobs(["ppo"], ["CartPole-v1"], [1, 1], tmp_path)
    with pytest.raises(ValueError, match="clip_cof"):
        study.make_jobs(["ppo"], ["CartPole-v1"], [0], tmp_path, overrides={"clip_cof": 0.1})
    with pytest.raises(ValueError, match="backend"):
        study.run_experiment(jobs, backend="slurm")


def test_experiments_carry_their_envs_and_budgets():
    assert study.EXPERIMENTS["mujoco"] == ("ppo", "trpo")
    assert study.experiment_envs("mujoco") == study.MUJOCO_ENVS == (
        "HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5", "Humanoid-v5", "Swimmer-v5", "Reacher-v5",
        "InvertedPendulum-v5", "InvertedDoublePendulum-v5")
    assert study.experiment_timesteps("mujoco") == 1_000_000
    assert study.EXPERIMENT_NEEDS["mujoco"] == ("mujoco",)
    # the other experiments: the default envs, each env's study budget, no optional package
    assert study.EXPERIMENTS["baseline"] == ("vpg-raw", "vpg", "vpg-baseline")
    assert study.EXPERIMENTS["ppo-vs-vpg"] == ("vpg-baseline", "ppo")
    assert study.EXPERIMENTS["all-algos"] == ("vpg", "vpg-baseline", "trpo", "ppo")
    for name in ("baseline", "ppo-vs-vpg", "all-algos", "variance"):
        assert study.experiment_envs(name) == study.DEFAULT_ENVS == ("CartPole-v1", "Pendulum-v1", "HalfCheetah-v5")
        assert study.experiment_timesteps(name) is None
        assert name not in study.EXPERIMENT_NEEDS


def test_job_with_partial_last_rollout_counts_as_done(tmp_path):
    # 100 steps with 64-step rollouts: the run stops at 64, the job is finished
    (job,) = study.make_jobs(["ppo"], ["CartPole-v1"], [0], tmp_path, total_timesteps=100,
                          overrides={"num_envs": 2, "num_steps": 32, "num_minibatches": 1, "update_epochs": 1},
                          eval_episodes=1, tensorboard=False)
    assert study.job_status(job) == "new"
    r = study.run_job(job, log=lambda m: None)
    assert r["status"] == "done" and r["global_step"] == 64 and r["total_timesteps"] == 100
    assert {"eval_mean", "eval_stoch_mean", "eval_stoch_std"} <= set(r)
    assert r["settings"].startswith("preset ppo/CartPole-v1; --set num_envs=2")
    assert json.loads((Path(job.out_dir) / "run.json").read_text())["settings"] == r["settings"]
    assert study.job_status(job) == "done"
    again = study.run_job(job, log=lambda m: None)
    assert again["status"] == "skipped" and again["eval_mean"] == r["eval_mean"]


def test_run_experiment_in_process_leaves_torch_threads_alone(tmp_path):
    (job,) = study.make_jobs(["ppo"], ["CartPole-v1"], [0], tmp_path, total_timesteps=64,
                             overrides={"num_envs": 2, "num_steps": 32, "num_minibatches": 1, "update_epochs": 1},
                             eval_episodes=1, tensorboard=False)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)  # not the jobs' one thread
        (r,) = study.run_experiment([job], workers=1, log=lambda m: None)
        assert r["status"] == "done"
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_stack_seeds_runs_each_group_in_one_process_with_the_same_results(tmp_path):
    small = {"num_envs": 2, "num_steps": 32, "num_minibatches": 1, "update_epochs": 1}

    def jobs(out):
        return study.make_jobs(["ppo", "vpg"], ["CartPole-v1"], [0, 1], out, total_timesteps=128,
                               overrides=small, eval_episodes=2, tensorboard=False)

    groups = study.runner.stack_groups(jobs(tmp_path / "g"))
    assert [[j.key for j in g] for g in groups] == [
        ["CartPole-v1/ppo/seed0", "CartPole-v1/ppo/seed1"], ["CartPole-v1/vpg/seed0", "CartPole-v1/vpg/seed1"]]
    logs = []
    stacked = study.run_experiment(jobs(tmp_path / "a"), workers=2, stack_seeds=True, log=logs.append)
    alone = study.run_experiment(jobs(tmp_path / "b"), workers=1, log=lambda m: None)
    assert [r["status"] for r in stacked] == ["done"] * 4
    for s, a in zip(stacked, alone):
        assert (s["key"], s["global_step"], s["eval_mean"], s["eval_stoch_mean"]) == \
            (a["key"], a["global_step"], a["eval_mean"], a["eval_stoch_mean"])
        sp = (tmp_path / "a" / s["key"] / "progress.csv").read_text().splitlines()
        ap = (tmp_path / "b" / a["key"] / "progress.csv").read_text().splitlines()
        assert len(sp) == len(ap) > 1
    with pytest.raises(ValueError, match="stack_seeds"):
        study.run_experiment(jobs(tmp_path / "c"), backend="ray", stack_seeds=True)


# ------------------------------------------------------- orphan workers ---


def _proc_table():
    """pid -> (ppid, start time, state) of every process, read from /proc."""
    import os

    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        table[int(name)] = (int(fields[1]), fields[19], fields[0])
    return table


def _descendants(root):
    """{(pid, start time)} of the live descendants of ``root``."""
    table = _proc_table()
    found, todo = set(), [root]
    while todo:
        parent = todo.pop()
        for pid, (ppid, start, state) in table.items():
            if ppid == parent and state not in "ZX" and (pid, start) not in found:
                found.add((pid, start))
                todo.append(pid)
    return found


def _alive(procs):
    table = _proc_table()
    return sorted(pid for pid, start in procs if pid in table and table[pid][1] == start
                  and table[pid][2] not in "ZX")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
def test_sigkill_of_the_experiment_leaves_no_worker_alive(tmp_path):
    """SIGKILL of `pgfast experiment` while two spawned workers train: 5 s later none of its
    descendants (workers, multiprocessing's resource tracker) is alive."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "s"
    cmd = [sys.executable, "-m", "pgfast.cli", "experiment", "ppo-vs-vpg", "--envs", "CartPole-v1", "--seeds", "0",
           "--workers", "2", "--total-timesteps", "100000000", "--eval-episodes", "1", "--no-tensorboard",
           "--out", str(out), "--set", "num_envs=2", "num_steps=32", "num_minibatches=1", "update_epochs=1"]
    with open(tmp_path / "log", "w") as log:
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    procs = set()
    try:
        deadline = time.monotonic() + 120
        progress = [out / "CartPole-v1" / v / "seed0" / PROGRESS_NAME for v in ("ppo", "vpg-baseline")]
        while time.monotonic() < deadline and p.poll() is None:  # until both workers train
            procs |= _descendants(p.pid)
            if all(f.exists() and f.read_text().count("\n") >= 2 for f in progress):
                break
            time.sleep(0.05)
        procs |= _descendants(p.pid)
        assert p.poll() is None, (tmp_path / "log").read_text()
        assert len(procs) >= 2, procs  # the two workers (and the resource tracker)
        p.kill()
        p.wait()
        deadline = time.monotonic() + 5
        while _alive(procs) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _alive(procs) == [], (tmp_path / "log").read_text()
    finally:
        p.kill()
        p.wait()
        for pid in _alive(procs):  # clean up what the old behaviour left behind
            os.kill(pid, signal.SIGKILL)
