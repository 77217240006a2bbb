"""Smoke tests of the ``pgfast`` command: train / resume / eval / experiment /
plot, signals, corrupt checkpoints and the Ray backend (tiny budgets)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pgfast import cli, study
from pgfast.logs import read_progress
from pgfast.session import Interrupted
from pgfast.trainer import load_checkpoint

# Subprocesses must import the same pgfast as this process (the installed wheel in CI,
# the source tree with an in-place build in development), never a source tree without _C.
ROOT = Path(cli.__file__).resolve().parent.parent
TINY_PPO = ["num_envs=4", "num_steps=16", "update_epochs=1", "num_minibatches=1"]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def _train(tmp_path, *sets, steps=256, out="run"):
    argv = ["train", "ppo", "CartPole-v1", "--total-timesteps", str(steps), "--seed", "3", "--device", "cpu",
            "--set", *TINY_PPO, *sets, "--out", str(tmp_path / out), "--checkpoint-interval", "0",
            "--eval-episodes", "2", "--no-progress"]
    return cli.main(argv)


# ------------------------------------------------------------------- help ---


@pytest.mark.parametrize("sub", [[], ["train"], ["eval"], ["experiment"], ["plot"]])
def test_help_everywhere(sub, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(sub + ["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: pgfast")
    if sub == ["experiment"]:
        assert "all-algos" in out and "--backend" in out


def test_bad_set_field_and_value(tmp_path, capsys):
    rc = cli.main(["train", "ppo", "CartPole-v1", "--set", "learning_rat=1e-3", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "unknown config field" in err and "PPO" in err
    assert "learning_rat" in err and "did you mean learning_rate" in err
    rc = cli.main(["train", "ppo", "CartPole-v1", "--set", "num_envs=four", "--out", str(tmp_path / "x")])
    assert rc == 2 and "num_envs" in capsys.readouterr().err
    rc = cli.main(["train", "ppo", "CartPole-v1", "--set", "seed=3"])
    assert rc == 2 and "--seed" in capsys.readouterr().err
    rc = cli.main(["train", "a2c", "CartPole-v1"])
    err = capsys.readouterr().err
    assert rc == 2 and "algo must be one of" in err.lower() and "a2c" in err
    assert not (tmp_path / "x").exists()


def test_set_values_reach_the_run(tmp_path, capsys):
    assert _train(tmp_path, "learning_rate=5e-4", "anneal_lr=false", steps=64) == 0
    run = load_checkpoint(tmp_path / "run")
    assert run.config.learning_rate == 5e-4 and run.config.anneal_lr is False
    assert run.config.num_envs == 4 and run.config.num_steps == 16


# ------------------------------------------------- train / resume / eval ---


def test_train_resume_eval(tmp_path, capsys):
    assert _train(tmp_path) == 0
    out = capsys.readouterr().out
    d = tmp_path / "run"
    assert "eval deterministic (mode): " in out and "eval stochastic (sampled): " in out
    assert out.count("(mean ± std over 2 episodes)") == 2
    rows = read_progress(d / "progress.csv")
    assert [r["global_step"] for r in rows] == [64, 128, 192, 256]
    assert {"episodic_return", "sps"} <= set(rows[0])
    assert (d / "ckpt.pt").exists() and (d / "ckpt.prev.pt").exists()
    assert any((d / "tb").iterdir())  # TensorBoard event file
    assert load_checkpoint(d).global_step == 256

    # resume to 384 steps: the log continues where the checkpoint was
    rc = cli.main(["train", "--resume", str(d / "ckpt.pt"), "--total-timesteps", "384", "--no-progress",
                   "--eval-episodes", "0"])
    assert rc == 0
    assert "resuming from" in capsys.readouterr().err
    rows = read_progress(d / "progress.csv")
    assert [r["global_step"] for r in rows] == [64, 128, 192, 256, 320, 384]
    assert load_checkpoint(d).global_step == 384

    rc = cli.main(["eval", str(d / "ckpt.pt"), "--episodes", "3"])
    assert rc == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("eval deterministic (mode): ") and line.endswith("(mean ± std over 3 episodes)")
    mean = float(line.split(":")[1].split("±")[0])
    assert 8.0 <= mean <= 500.0  # CartPole returns lie in [8, 500]

    # the same policy in gymnasium's CartPole: a deterministic policy from the
    # same kind of start states scores in the same range
    rc = cli.main(["eval", str(d / "ckpt.pt"), "--episodes", "3", "--reference"])
    assert rc == 0
    ref = capsys.readouterr().out.strip().splitlines()[-1]
    assert ref.startswith("eval deterministic (mode) in gymnasium's CartPole-v1:")
    assert 8.0 <= float(ref.split(":")[1].split("±")[0]) <= 500.0


def test_eval_video(tmp_path, capsys):
    assert _train(tmp_path, steps=64) == 0
    vdir = tmp_path / "videos"
    capsys.readouterr()
    rc = cli.main(["eval", str(tmp_path / "run"), "--episodes", "1", "--video", str(vdir)])
    captured = capsys.readouterr()
    try:
        import pygame  # noqa: F401  (classic-control rendering)
    except ImportError:
        # no renderer here: a clear error naming the missing piece, not a traceback
        assert rc == 2
        assert "--video" in captured.err and "CartPole-v1" in captured.err and "pygame" in captured.err
        return
    assert rc == 0, captured.err
    files = [p for p in vdir.iterdir() if p.suffix in (".mp4", ".gif")]
    assert len(files) == 1 and files[0].stat().st_size > 1000
    assert f"video: {files[0]}" in captured.out


def test_corrupt_checkpoint_uses_previous(tmp_path, capsys):
    assert _train(tmp_path) == 0
    d = tmp_path / "run"
    good_prev = load_checkpoint(d / "ckpt.prev.pt").global_step
    data = (d / "ckpt.pt").read_bytes()
    (d / "ckpt.pt").write_bytes(data[: len(data) // 2])  # truncated write
    capsys.readouterr()
    msgs = []
    run = load_checkpoint(d, log=msgs.append)
    assert run.global_step == good_prev == 192
    assert len(msgs) == 1 and "ckpt.pt" in msgs[0] and "previous checkpoint" in msgs[0]

    # eval of the directory falls back too, and says so
    assert cli.main(["eval", str(d), "--episodes", "1"]) == 0
    assert "previous checkpoint" in capsys.readouterr().err

    # resume from the corrupt file continues from the previous one
    rc = cli.main(["train", "--resume", str(d / "ckpt.pt"), "--total-timesteps", "256", "--no-progress",
                   "--eval-episodes", "0"])
    assert rc == 0
    err = capsys.readouterr().err
    assert "previous checkpoint" in err and "at step 192" in err
    assert [r["global_step"] for r in read_progress(d / "progress.csv")] == [64, 128, 192, 256]
    # the corrupt file was moved aside, not rotated into ckpt.prev.pt
    assert (d / "ckpt.pt.corrupt").exists()
    assert load_checkpoint(d / "ckpt.prev.pt").global_step == 192
    assert load_checkpoint(d / "ckpt.pt").global_step == 256

    # garbage with no previous copy: a clear error, exit status 2
    bad = tmp_path / "garbage.pt"
    bad.write_bytes(b"not a checkpoint")
    assert cli.main(["eval", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "garbage.pt" in err and "unreadable" in err
    (tmp_path / "empty.pt").write_bytes(b"")
    assert cli.main(["eval", str(tmp_path / "empty.pt")]) == 2
    assert "empty" in capsys.readouterr().err


def test_sigterm_saves_checkpoint(tmp_path):
    d = tmp_path / "sig"
    cmd = [sys.executable, "-m", "pgfast.cli", "train", "ppo", "CartPole-v1", "--total-timesteps", "100000000",
           "--device", "cpu", "--set", *TINY_PPO, "--out", str(d), "--checkpoint-interval", "100000",
           "--no-progress", "--no-tensorboard"]
    p = subprocess.Popen(cmd, env=_env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(read_progress(d / "progress.csv")) < 3:
            assert p.poll() is None, p.communicate()
            time.sleep(0.1)
        assert not (d / "ckpt.pt").exists()  # the interval is too long for a periodic save
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 143, err  # 128 + SIGTERM
    assert "SIGTERM" in err and "checkpoint saved" in err
    run = load_checkpoint(d)
    rows = read_progress(d / "progress.csv")
    assert run.global_step == rows[-1]["global_step"] >= 3 * 64


# ------------------------------------------------------------ experiments ---


def _exp_argv(out, backend, workers):
    return ["experiment", "ppo-vs-vpg", "--envs", "CartPole-v1", "--seeds", "0", "1", "--total-timesteps", "128",
            "--workers", str(workers), "--backend", backend, "--out", str(out), "--eval-episodes", "2",
            "--set", "num_envs=2", "num_steps=32", "ppo.update_epochs=1", "ppo.num_minibatches=1",
            "--no-tensorboard"]


def _check_study(out: Path):
    for v in ("vpg-baseline", "ppo"):
        for s in (0, 1):
            d = out / "CartPole-v1" / v / f"seed{s}"
            r = json.loads((d / "result.json").read_text())
            assert r["status"] == "done" and r["global_step"] == 128 and r["seed"] == s
            assert [x["global_step"] for x in read_progress(d / "progress.csv")] == [64, 128]
            assert json.loads((d / "job.json").read_text())["config"]["num_envs"] == 2
    import csv

    with open(out / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["variant"], r["n"]) for r in rows] == [("vpg-baseline", "2"), ("ppo", "2")]
    assert (out / "CartPole-v1.png").stat().st_size > 1000
    fig = study.plot_env(out / "CartPole-v1")
    assert len(fig.axes[0].get_lines()) == 2  # one line per variant


def test_experiment_local_pool_and_skip(tmp_path, capsys):
    out = tmp_path / "study"
    assert cli.main(_exp_argv(out, "local", 2)) == 0
    text = capsys.readouterr().out
    assert "4 jobs: 0 finished, 4 to run on local with 2 worker(s)" in text
    assert "summary:" in text and "CartPole-v1.png" in text
    _check_study(out)
    before = {p: p.stat().st_mtime_ns for p in out.glob("*/*/seed*/*")}
    # a rerun skips every finished job and rewrites nothing in them
    assert cli.main(_exp_argv(out, "local", 2)) == 0
    assert "4 jobs: 4 finished, 0 to run" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/*/seed*/*")} == before
    # a rerun with other settings into the same directory is refused
    changed = _exp_argv(out, "local", 2) + ["--set", "vpg.learning_rate=0.1"]
    assert cli.main(changed) == 2
    err = capsys.readouterr().err
    assert "config.learning_rate" in err and "vpg-baseline" in err
    # plot redraws from the logs alone
    (out / "CartPole-v1.png").unlink()
    (out / "summary.csv").unlink()
    assert cli.main(["plot", str(out)]) == 0
    _check_study(out)


def test_interrupted_experiment_resumes(tmp_path):
    out = tmp_path / "study"
    jobs = study.make_jobs(["ppo"], ["CartPole-v1"], [0, 1], out, total_timesteps=256,
                        overrides={"num_envs": 2, "num_steps": 32, "update_epochs": 1, "num_minibatches": 1},
                        eval_episodes=2, checkpoint_interval=0, tensorboard=False)
    seen = []

    def stop_in_second_job(run, row):
        seen.append(row["global_step"])
        if len(seen) == 4 + 2:  # job 1: 4 iterations; job 2: interrupted after 2
            raise KeyboardInterrupt

    msgs = []
    with pytest.raises(Interrupted):
        study.run_experiment(jobs, workers=1, log=msgs.append, on_iteration=stop_in_second_job)
    j1, j2 = (Path(j.out_dir) for j in jobs)
    assert study.job_status(jobs[0]) == "done" and study.job_status(jobs[1]) == "partial"
    assert load_checkpoint(j2).global_step == 128
    first_done = {p: p.stat().st_mtime_ns for p in j1.iterdir()}

    seen.clear()
    msgs.clear()
    results = study.run_experiment(jobs, workers=1, log=msgs.append,
                                   on_iteration=lambda run, row: seen.append(row["global_step"]))
    assert [r["status"] for r in results] == ["skipped", "done"]
    assert seen == [192, 256]  # only the rest of job 2 was trained
    assert any("resuming from" in m and "at step 128" in m for m in msgs)
    assert {p: p.stat().st_mtime_ns for p in j1.iterdir()} == first_done
    assert [r["global_step"] for r in read_progress(j2 / "progress.csv")] == [64, 128, 192, 256]


def test_experiment_ray_backend(tmp_path, capsys):
    ray = pytest.importorskip("ray", reason="ray not installed: pip install 'pgfast[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": study.importable_env()},
             log_to_driver=False)
    try:
        out = tmp_path / "study"
        assert cli.main(_exp_argv(out, "ray", 2)) == 0
        assert "to run on ray with 2 worker(s)" in capsys.readouterr().out
        _check_study(out)
    finally:
        ray.shutdown()


def test_sigterm_stops_a_pool_study_cleanly(tmp_path):
    out = tmp_path / "study"
    cmd = [sys.executable, "-m", "pgfast.cli", "experiment", "baseline", "--envs", "CartPole-v1", "--seeds", "0", "1",
           "2", "--total-timesteps", "100000000", "--workers", "2", "--out", str(out), "--checkpoint-interval",
           "100000", "--no-tensorboard", "--set", "num_envs=2", "num_steps=32", "update_epochs=1",
           "num_minibatches=1"]
    p = subprocess.Popen(cmd, env=_env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            logs = list(out.glob("*/*/seed*/progress.csv"))
            if len(logs) == 2 and all(len(read_progress(f)) >= 2 for f in logs):
                break
            assert p.poll() is None, p.communicate()
            time.sleep(0.2)
        else:
            pytest.fail("the two first jobs did not start")
        p.send_signal(signal.SIGTERM)
        stdout, stderr = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 143, stderr  # 128 + SIGTERM
    started = sorted(d.parent.relative_to(out).as_posix() for d in out.glob("*/*/seed*/job.json"))
    first = study.EXPERIMENTS["baseline"][0]  # the first variant's two seeds; no queued job started after
    assert started == [f"CartPole-v1/{first}/seed0", f"CartPole-v1/{first}/seed1"]
    for key in started:
        d = out / key
        assert load_checkpoint(d).global_step == read_progress(d / "progress.csv")[-1]["global_step"]
    assert "rerun the same command" in stderr


# ------------------------------------------------------ the mujoco experiment ---


def _planned_jobs(monkeypatch, argv):
    """The jobs `pgfast experiment ...` hands to the runner (which is replaced: nothing trains)."""
    planned = []
    monkeypatch.setattr(study, "run_experiment", lambda jobs, **kw: planned.extend(jobs) or [])
    monkeypatch.setattr(study, "redraw", lambda out, **kw: {})
    assert cli.main(argv) == 0
    return planned


def test_mujoco_experiment_jobs(tmp_path, monkeypatch, capsys):
    pytest.importorskip("mujoco")  # the envs without a preset are made once to read their action space
    from pgfast.presets import CLEANRL_PPO_CONTINUOUS, ZOO_TRPO_MUJOCO

    jobs = _planned_jobs(monkeypatch, ["experiment", "mujoco", "--out", str(tmp_path / "m")])
    envs = ["HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5", "Humanoid-v5", "Swimmer-v5", "Reacher-v5",
            "InvertedPendulum-v5", "InvertedDoublePendulum-v5"]
    assert len(jobs) == 9 * 2 * 3
    assert [j.key for j in jobs] == [f"{e}/{v}/seed{s}" for v in ("ppo", "trpo") for e in envs for s in (0, 1, 2)]
    assert {j.total_timesteps for j in jobs} == {1_000_000}
    assert {j.algo for j in jobs} == {"ppo", "trpo"}
    assert f"experiment mujoco: variants ppo, trpo; envs {', '.join(envs)}; seeds 0 1 2" in capsys.readouterr().out
    # settings: the env's preset where it has one, else the defaults for Box actions
    by = {(j.variant, j.env_id): j for j in jobs}
    assert by["ppo", "Hopper-v5"].settings == "preset ppo/Hopper-v5"
    assert by["ppo", "Walker2d-v5"].config_dict()["gamma"] == 0.995
    assert by["trpo", "HalfCheetah-v5"].settings == "preset trpo/HalfCheetah-v5"
    assert by["ppo", "Ant-v5"].settings == "preset ppo/Ant-v5"
    assert by["ppo", "Ant-v5"].config_dict() == dict(CLEANRL_PPO_CONTINUOUS, log_std_init=-1.0)
    assert by["ppo", "Reacher-v5"].config_dict() == dict(CLEANRL_PPO_CONTINUOUS)
    assert by["trpo", "Humanoid-v5"].settings == "preset trpo/Humanoid-v5"
    assert by["trpo", "Humanoid-v5"].config_dict() == ZOO_TRPO_MUJOCO
    assert by["trpo", "HalfCheetah-v5"].config_dict() == dict(ZOO_TRPO_MUJOCO, max_kl=0.04)
    assert Path(jobs[-1].out_dir) == tmp_path / "m" / "InvertedDoublePendulum-v5" / "trpo" / "seed2"

    # --envs, --seeds and --total-timesteps override the experiment's own
    jobs = _planned_jobs(monkeypatch, ["experiment", "mujoco", "--envs", "Swimmer-v5", "Hopper-v5", "--seeds", "4",
                                       "--total-timesteps", "5000", "--out", str(tmp_path / "o")])
    assert [(j.key, j.total_timesteps) for j in jobs] == [
        ("Swimmer-v5/ppo/seed4", 5000), ("Hopper-v5/ppo/seed4", 5000),
        ("Swimmer-v5/trpo/seed4", 5000), ("Hopper-v5/trpo/seed4", 5000)]
    jobs = _planned_jobs(monkeypatch, ["experiment", "mujoco", "--envs", "Hopper-v5", "--seeds", "0",
                                       "--out", str(tmp_path / "p")])
    assert [(j.key, j.total_timesteps) for j in jobs] == [("Hopper-v5/ppo/seed0", 1_000_000),
                                                           ("Hopper-v5/trpo/seed0", 1_000_000)]


@pytest.mark.parametrize("name", ["baseline", "ppo-vs-vpg", "all-algos"])
def test_other_experiments_keep_their_envs_and_budgets(name, tmp_path, monkeypatch, capsys):
    out = tmp_path / name
    jobs = _planned_jobs(monkeypatch, ["experiment", name, "--seeds", "0", "1", "--out", str(out)])
    # exactly the jobs of the study's variants on CartPole, Pendulum and HalfCheetah at their study budgets
    assert jobs == study.make_jobs(study.EXPERIMENTS[name], ["CartPole-v1", "Pendulum-v1", "HalfCheetah-v5"],
                                   [0, 1], out)
    steps = {j.env_id: j.total_timesteps for j in jobs}
    assert steps == {"CartPole-v1": 100_000, "Pendulum-v1": 300_000, "HalfCheetah-v5": 1_000_000}
    assert "envs CartPole-v1, Pendulum-v1, HalfCheetah-v5; seeds 0 1" in capsys.readouterr().out
    jobs = _planned_jobs(monkeypatch, ["experiment", name, "--envs", "CartPole-v1", "--seeds", "0",
                                       "--total-timesteps", "640", "--out", str(tmp_path / "o")])
    assert {(j.env_id, j.total_timesteps) for j in jobs} == {("CartPole-v1", 640)}
    assert len(jobs) == len(study.EXPERIMENTS[name])


def test_variance_experiment_keeps_its_envs(tmp_path, monkeypatch):
    from pgfast.study import variance

    seen = []
    monkeypatch.setattr(variance, "run_variance", lambda envs, out, settings, **kw: seen.append(list(envs)))
    assert cli.main(["experiment", "variance", "--quick", "--out", str(tmp_path / "v")]) == 0
    assert cli.main(["experiment", "variance", "--quick", "--envs", "Acrobot-v1", "--out", str(tmp_path / "w")]) == 0
    assert seen == [["CartPole-v1", "Pendulum-v1", "HalfCheetah-v5"], ["Acrobot-v1"]]


def test_mujoco_experiment_end_to_end(tmp_path, capsys):
    pytest.importorskip("mujoco")
    import csv

    out = tmp_path / "study"
    rc = cli.main(["experiment", "mujoco", "--envs", "InvertedPendulum-v5", "--seeds", "0",
                   "--total-timesteps", "2048", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0
    assert "2 jobs: 0 finished, 2 to run" in text
    for v in ("ppo", "trpo"):
        d = out / "InvertedPendulum-v5" / v / "seed0"
        r = json.loads((d / "result.json").read_text())
        assert r["status"] == "done" and r["global_step"] == 2048 and r["total_timesteps"] == 2048
        assert r["algo"] == v and math.isfinite(r["eval_mean"]) and 1.0 <= r["eval_mean"] <= 1000.0
        assert [x["global_step"] for x in read_progress(d / "progress.csv")] == [2048]
    with open(out / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["env_id"], r["variant"], r["n"]) for r in rows) == [
        ("InvertedPendulum-v5", "ppo", "1"), ("InvertedPendulum-v5", "trpo", "1")]
    md = (out / "summary.md").read_text()
    assert "| InvertedPendulum-v5 | PPO-clip |" in md and "| InvertedPendulum-v5 | TRPO |" in md
    png = out / "InvertedPendulum-v5.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    assert len(study.plot_env(out / "InvertedPendulum-v5").axes[0].get_lines()) == 2  # one line per variant


def test_mujoco_experiment_without_mujoco_is_one_line(tmp_path):
    """In a process where mujoco cannot be imported (as tests/test_messages.py blocks a package),
    the experiment stops before anything is created, with the extra to install."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import sys\nsys.modules['mujoco'] = None\n")
    env = _env()
    env["PYTHONPATH"] = str(site) + os.pathsep + env["PYTHONPATH"]
    p = subprocess.run([sys.executable, "-m", "pgfast.cli", "experiment", "mujoco", "--seeds", "0", "--out", "study"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip() == ("pgfast experiment: error: the mujoco experiment needs the 'mujoco' package: "
                                "pip install 'pgfast-rl[mujoco]'")
    assert not (tmp_path / "study").exists()


# ------------------------------------------- issue 10: one-line errors, edges ---


def _one_line_error(capsys, rc):
    # `pgfast train` names its settings first (one informative line); the error is one line
    lines = [x for x in capsys.readouterr().err.strip().splitlines() if not x.startswith("settings: ")]
    err = "\n".join(lines)
    assert rc == 2, err
    assert "Traceback" not in err and len(lines) == 1, err
    return err


def test_unknown_env_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc = cli.main(["train", "ppo", "Acrobot-v9", "--total-timesteps", "64", "--no-progress"])
    assert "Acrobot-v9" in _one_line_error(capsys, rc)
    assert list(tmp_path.iterdir()) == []  # no runs/... left behind


def test_bad_out_dirs_are_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    for out in ("/proc/x", str(tmp_path / "file" / "x")):
        rc = cli.main(["train", "ppo", "CartPole-v1", "--total-timesteps", "64", "--device", "cpu",
                       "--set", *TINY_PPO, "--out", out, "--no-progress"])
        _one_line_error(capsys, rc)


def test_device_cuda_without_cuda_fails_before_the_out_dir(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    rc = cli.main(["train", "ppo", "CartPole-v1", "--device", "cuda", "--out", str(tmp_path / "c")])
    assert "CUDA is not available" in _one_line_error(capsys, rc)
    assert not (tmp_path / "c").exists()


def test_resume_into_unwritable_dir_is_one_line(tmp_path, capsys, monkeypatch):
    assert _train(tmp_path, steps=64) == 0
    capsys.readouterr()

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied", str(tmp_path / "run"))

    monkeypatch.setattr("pgfast.rundir.tempfile.NamedTemporaryFile", denied)  # root ignores chmod
    rc = cli.main(["train", "--resume", str(tmp_path / "run"), "--total-timesteps", "128", "--no-progress"])
    assert "Permission denied" in _one_line_error(capsys, rc)


def test_resume_with_algo_and_env(tmp_path, capsys):
    assert _train(tmp_path, steps=64) == 0
    ck = str(tmp_path / "run" / "ckpt.pt")
    assert cli.main(["train", "ppo", "CartPole-v1", "--resume", ck, "--total-timesteps", "128",
                     "--no-progress", "--eval-episodes", "0"]) == 0
    assert load_checkpoint(ck).global_step == 128
    capsys.readouterr()
    rc = cli.main(["train", "vpg", "CartPole-v1", "--resume", ck, "--total-timesteps", "192", "--no-progress"])
    err = _one_line_error(capsys, rc)
    assert "vpg" in err and "ppo" in err
    rc = cli.main(["train", "ppo", "Pendulum-v1", "--resume", ck, "--total-timesteps", "192", "--no-progress"])
    err = _one_line_error(capsys, rc)
    assert "Pendulum-v1" in err and "CartPole-v1" in err


def test_budget_not_a_multiple_of_the_batch_is_announced(tmp_path, capsys):
    assert _train(tmp_path, steps=100) == 0  # batch 64: one iteration, to step 64
    err = capsys.readouterr().err
    assert "not a multiple of the batch" in err and "to step 64" in err


def test_ctrl_c_during_final_evaluation(tmp_path, capsys, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("pgfast.trainer.Run.evaluate", interrupted)
    rc = _train(tmp_path, steps=64)
    err = capsys.readouterr().err
    assert rc == 130 and "interrupted during the final evaluation" in err and "Traceback" not in err
    assert load_checkpoint(tmp_path / "run").global_step == 64


def _as_cuda_checkpoint(src, dst):
    import torch

    ck = torch.load(src, map_location="cpu", weights_only=False)
    ck["device"], ck["generator_device"] = "cuda", "cuda"
    torch.save(ck, dst)


def test_cuda_checkpoint_on_a_cpu_machine(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _train(tmp_path, steps=64) == 0
    cdir = tmp_path / "cudarun"
    cdir.mkdir()
    _as_cuda_checkpoint(tmp_path / "run" / "ckpt.pt", cdir / "ckpt.pt")
    capsys.readouterr()
    rc = cli.main(["eval", str(cdir), "--episodes", "1"])
    assert "CUDA is not available" in _one_line_error(capsys, rc)
    assert cli.main(["eval", str(cdir), "--episodes", "1", "--device", "cpu"]) == 0
    assert cli.main(["train", "--resume", str(cdir), "--device", "cpu", "--total-timesteps", "128",
                     "--no-progress", "--eval-episodes", "0"]) == 0
    run = load_checkpoint(cdir)
    assert run.global_step == 128 and str(run.device) == "cpu"


def test_resume_after_a_kill_between_the_renames(tmp_path, capsys):
    # what an interrupted rotating save of earlier versions left: ckpt.prev.pt and
    # the complete temporary file of the newer checkpoint, no ckpt.pt
    assert _train(tmp_path, steps=64) == 0
    d = tmp_path / "run"
    assert cli.main(["train", "--resume", str(d), "--total-timesteps", "128", "--no-progress",
                     "--eval-episodes", "0"]) == 0
    os.replace(d / "ckpt.pt", d / ".pgfast-abcd.tmp")
    capsys.readouterr()
    assert cli.main(["train", "--resume", str(d / "ckpt.pt"), "--total-timesteps", "192", "--no-progress",
                     "--eval-episodes", "0"]) == 0
    assert "interrupted save" in capsys.readouterr().err
    assert load_checkpoint(d).global_step == 192
    assert not list(d.glob(".pgfast-*"))


def test_tensorboard_events_not_duplicated_after_resume(tmp_path, capsys):
    ea = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    assert _train(tmp_path, steps=192) == 0
    d = tmp_path / "run"
    # the interrupted run had logged past its last checkpoint: resume from an older one
    os.replace(d / "ckpt.prev.pt", d / "ckpt.pt")
    start = load_checkpoint(d).global_step
    assert start < 192
    assert cli.main(["train", "--resume", str(d), "--total-timesteps", "256", "--no-progress",
                     "--eval-episodes", "0"]) == 0
    acc = ea.EventAccumulator(str(d / "tb"))
    acc.Reload()
    steps = [e.step for e in acc.Scalars("charts/episodic_length")]
    assert steps == sorted(set(steps)) == [64, 128, 192, 256], steps
