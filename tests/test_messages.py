"""What a new user reads: install hints name the distribution (pgfast-rl), a missing optional
package is one line in every command, eval runs on one torch thread and video recording
reports progress without library noise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import pgfast
from pgfast import cli
from pgfast.algos import resolve_settings

PKG = Path(pgfast.__file__).resolve().parent


def test_install_hints_name_the_distribution():
    """`pip install 'pgfast[...]'` installs another project: every hint says pgfast-rl."""
    offenders = [f"{p.relative_to(PKG.parent)}:{k + 1}" for p in sorted(PKG.rglob("*.py"))
                 for k, line in enumerate(p.read_text().splitlines()) if "pgfast[" in line]
    assert offenders == []
    assert any('pgfast-rl[' in p.read_text() for p in PKG.rglob("*.py"))


def _pgfast(args, tmp_path, block=()):
    """`pgfast ARGS` in a child process in which the modules in ``block`` cannot be imported."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text("import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in block))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(PKG.parent)]), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "pgfast.cli", *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("args", [
    ["train", "ppo", "Hopper-v5", "--total-timesteps", "2048", "--no-progress", "--out", "run"],
    ["experiment", "ppo-vs-vpg", "--envs", "Hopper-v5", "--seeds", "0", "--total-timesteps", "2048", "--out", "study"],
    ["tune", "ppo", "Hopper-v5", "--trials", "1", "--budget", "2048", "--out", "tune"],
], ids=["train", "experiment", "tune"])
def test_missing_mujoco_is_one_line(args, tmp_path):
    p = _pgfast(args, tmp_path, block=["mujoco"])
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    errors = [line for line in p.stderr.splitlines() if "error" in line]
    assert errors == [errors[-1]] and errors[0].startswith(f"pgfast {args[0]}: error: ")
    assert "pgfast-rl[mujoco]" in errors[0] and "gymnasium[" not in errors[0]


def test_missing_ray_is_one_line(tmp_path):
    p = _pgfast(["experiment", "ppo-vs-vpg", "--envs", "CartPole-v1", "--seeds", "0", "--backend", "ray",
                 "--total-timesteps", "512", "--out", "study"], tmp_path, block=["ray"])
    assert p.returncode == 2, p.stderr
    last = p.stderr.splitlines()[-1]
    assert last == "pgfast experiment: error: backend 'ray' needs Ray: pip install 'pgfast-rl[ray]'"
    assert "Traceback" not in p.stderr


def test_error_names_the_command_once(capsys, tmp_path):
    assert cli.main(["train", "ppo", "CartPole-v1", "--resume", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"pgfast train: error: --resume: no checkpoint at {tmp_path / 'missing'}"


def test_message_adds_the_extra_for_a_bare_missing_module():
    ex = ModuleNotFoundError("No module named 'optuna'", name="optuna")
    assert cli._message(ex, "tune") == "No module named 'optuna' (pip install \"pgfast-rl[tune]\")"


def test_settings_line_names_the_missing_preset_for_any_action_space(box_env_without_preset):
    for algo in ("ppo", "trpo", "vpg"):  # FrozenLake-v1: Discrete actions, no preset
        assert resolve_settings(algo, "FrozenLake-v1")[1].endswith("(no preset for FrozenLake-v1)")
    env = box_env_without_preset
    assert resolve_settings("ppo", env)[1] == f"defaults for Box actions (no preset for {env})"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    run = pgfast.train("ppo", "CartPole-v1", total_timesteps=512, seed=0, device="cpu", num_envs=2, num_steps=64)
    path = tmp_path_factory.mktemp("ckpt") / "ckpt.pt"
    run.save(path)
    return path


@pytest.mark.parametrize("omp", [None, "2"])
def test_eval_runs_on_one_torch_thread_unless_asked(checkpoint, monkeypatch, capsys, omp):
    import torch

    from pgfast.trainer import Run

    seen = []
    evaluate = Run.evaluate

    def spy(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return evaluate(self, *args, **kwargs)

    monkeypatch.setattr(Run, "evaluate", spy)
    if omp is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", omp)
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert cli.main(["eval", str(checkpoint), "--episodes", "1"]) == 0
    finally:
        torch.set_num_threads(old)
    assert seen == [1 if omp is None else 2]
    assert "eval deterministic" in capsys.readouterr().out


def test_video_reports_progress_without_library_noise(checkpoint, tmp_path, capfd):
    pytest.importorskip("pygame")
    pytest.importorskip("imageio_ffmpeg")
    assert cli.main(["eval", str(checkpoint), "--episodes", "2", "--video", str(tmp_path / "v")]) == 0
    out, err = capfd.readouterr()
    first = f"video: {tmp_path / 'v'}/ppo-CartPole-v1-episode-0.mp4"
    assert out.splitlines()[:2] == ["video: recording episode 1 of 2", first]
    assert "XDG_RUNTIME_DIR" not in out + err and "macro_block_size" not in out + err


def test_warnings_are_one_line_without_colour_codes():
    from pgfast.cli import format_warning

    text = format_warning("\x1b[33mWARN: the obs\nis odd\x1b[0m", UserWarning, "f.py", 3)
    assert text == "warning: WARN: the obs is odd (UserWarning)\n"


def test_interrupt_message_is_said_once_and_study_jobs_skip_the_budget_note(tmp_path):
    from pgfast.rundir import TrainSession
    from pgfast.session import Interrupted

    logs = []

    def stop(run, row):
        raise KeyboardInterrupt

    tiny = dict(num_envs=2, num_steps=16, update_epochs=1, num_minibatches=1)
    sess = TrainSession(tmp_path / "a", "ppo", "CartPole-v1", 100, config=tiny, tensorboard=False,
                        log=logs.append, on_iteration=stop)
    with pytest.raises(Interrupted, match="stopped at step 32; checkpoint saved"):
        sess.run_training()
    assert not any("stopped at step" in m for m in logs)  # the caller prints the Interrupted message
    assert any("not a multiple of the batch" in m for m in logs)
    logs.clear()
    TrainSession(tmp_path / "b", "ppo", "CartPole-v1", 100, config=tiny, tensorboard=False, log=logs.append,
                 budget_note=False).run_training()
    assert not any("not a multiple" in m for m in logs)


def test_ctrl_c_inside_a_destructor_is_not_printed_again(capsys):
    import gc

    from pgfast import cli

    class Interrupting:
        def __del__(self):
            raise KeyboardInterrupt

    class Failing:
        def __del__(self):
            raise ValueError("a real error in a destructor")

    def run(argv):
        Interrupting()
        Failing()
        gc.collect()
        return 0

    old = cli._main
    cli._main = run
    try:
        assert cli.main(["plot", "x"]) == 0
    finally:
        cli._main = old
    err = capsys.readouterr().err
    assert "KeyboardInterrupt" not in err and "a real error in a destructor" in err
