"""A run you can trust: run folders are never replaced unless asked, one writer per
folder, nothing non-finite reaches a checkpoint, loading a checkpoint never runs
code from the file, interrupted saves leave nothing behind, and the errors on the
way are one line."""

from __future__ import annotations

import errno
import os
import pickle
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import pgfast
from pgfast import checkpoint, cli, numerics
from pgfast.logs import read_progress
from pgfast.rundir import RunExistsError, RunLock, RunLockedError, TrainSession
from pgfast.trainer import Run, load, load_checkpoint

TINY = dict(num_envs=2, num_steps=16, hidden_sizes=(8,), update_epochs=1, num_minibatches=1)
TINY_SET = ["num_envs=2", "num_steps=16", "update_epochs=1", "num_minibatches=1"]


def _train_cli(out, *extra, algo="ppo", env_id="CartPole-v1", steps=64):
    return cli.main(["train", algo, env_id, "--total-timesteps", str(steps), "--device", "cpu",
                     "--set", *TINY_SET, "--out", str(out), "--checkpoint-interval", "0",
                     "--eval-episodes", "0", "--no-progress", "--no-tensorboard", *extra])


# --------------------------------------------------------------- a gymnasium env that goes bad


class BadEnv(gym.Env):
    """A 3-dim observation, 2 actions; from step ``bad_at`` on (counted over the
    env's life) the reward (or the observation) is ``value``."""

    def __init__(self, bad_at=10**9, value=float("nan"), what="reward", scale=1.0):
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.bad_at, self.value, self.what, self.scale = bad_at, value, what, scale
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.np_random.normal(size=3).astype(np.float32), {}

    def step(self, action):
        self.t += 1
        obs = self.np_random.normal(size=3).astype(np.float32)
        rew = float(action) * self.scale
        if self.t >= self.bad_at:
            if self.what == "reward":
                rew = self.value
            else:
                obs[1] = self.value
        return obs, rew, bool(self.np_random.random() < 0.05), False, {}


gym.register(id="PgfastTrustBad-v0", entry_point=BadEnv, max_episode_steps=50, disable_env_checker=True)


# --------------------------------------------------------------- 1. a re-run never destroys a run


def test_rerun_refused_overwrite_replaces(tmp_path, capsys):
    out = tmp_path / "D"
    assert _train_cli(out, steps=128) == 0
    rows = len(read_progress(out / "progress.csv"))
    before = (out / "ckpt.pt").read_bytes()
    capsys.readouterr()
    assert _train_cli(out, algo="vpg", env_id="Acrobot-v1") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1  # one line, before the new run is even built
    assert "holds a run (ppo on CartPole-v1 at step 128)" in err[0]
    assert "--resume" in err[0] and "--overwrite" in err[0] and "another --out" in err[0]
    assert (out / "ckpt.pt").read_bytes() == before and len(read_progress(out / "progress.csv")) == rows
    assert _train_cli(out, "--overwrite", algo="vpg", env_id="Acrobot-v1") == 0
    ck = checkpoint.read(out / "ckpt.pt")
    assert (ck["algo"], ck["env_id"], ck["global_step"]) == ("vpg", "Acrobot-v1", 64)
    assert checkpoint.read(out / "ckpt.prev.pt")["algo"] == "vpg"  # the replaced run's files are gone
    assert [r["global_step"] for r in read_progress(out / "progress.csv")] == [32, 64]


def test_resume_refuses_identity_options(tmp_path, capsys):
    out = tmp_path / "D"
    assert _train_cli(out) == 0
    capsys.readouterr()
    for extra in (["--seed", "5"], ["--overwrite"]):
        rc = cli.main(["train", "--resume", str(out), "--total-timesteps", "128", *extra])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and extra[0] in err[0]
    assert checkpoint.read(out / "ckpt.pt")["global_step"] == 64


def test_api_checkpoint_path_not_replaced_unless_asked(tmp_path):
    path = tmp_path / "a.pt"
    pgfast.train("ppo", "CartPole-v1", 32, seed=0, checkpoint_path=path, **TINY)
    with pytest.raises(FileExistsError, match="ppo on CartPole-v1 at step 32.*overwrite=True"):
        pgfast.train("vpg", "CartPole-v1", 32, seed=1, checkpoint_path=path, **TINY)
    assert checkpoint.read(path)["algo"] == "ppo"
    pgfast.train("vpg", "CartPole-v1", 32, seed=1, checkpoint_path=path, overwrite=True, **TINY)
    assert checkpoint.read(path)["algo"] == "vpg"
    run = load(path)  # the run's own file: continuing writes it
    run.learn(32, checkpoint_path=path)
    assert checkpoint.read(path)["global_step"] == 64
    pgfast.train("ppo", "CartPole-v1", 32, seed=[0, 1], checkpoint_path=tmp_path / "b.pt", **TINY)
    with pytest.raises(FileExistsError, match="b-seed1.pt"):  # refused before any seed trains
        pgfast.train("ppo", "CartPole-v1", 64, seed=[2, 1], checkpoint_path=tmp_path / "b.pt", **TINY)
    assert not (tmp_path / "b-seed2.pt").exists()


def test_study_job_dir_is_never_replaced(tmp_path):
    out = tmp_path / "job"
    TrainSession(out, "ppo", "CartPole-v1", 32, config=TINY, tensorboard=False, log=lambda m: None).run_training()
    with pytest.raises(RunExistsError, match="holds a run"):
        TrainSession(out, "ppo", "CartPole-v1", 64, config=TINY, tensorboard=False,
                     log=lambda m: None).run_training()
    run = TrainSession(out, total_timesteps=64, resume=out, tensorboard=False, log=lambda m: None).run_training()
    assert run.global_step == 64


# --------------------------------------------------------------- 2. one writer per run folder

_HOLD = textwrap.dedent("""
    import sys, time
    from pgfast.rundir import RunLock
    RunLock(sys.argv[1]).acquire()
    print("locked", flush=True)
    time.sleep(60)
""")


def test_second_writer_fails_naming_the_holder_and_dead_lock_is_taken_over(tmp_path, child_env):
    out = tmp_path / "D"
    child = subprocess.Popen([sys.executable, "-c", _HOLD, str(out)], stdout=subprocess.PIPE, env=child_env,
                             text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "locked"
        sess = TrainSession(out, "ppo", "CartPole-v1", 32, config=TINY, tensorboard=False, log=lambda m: None)
        t0 = time.monotonic()
        with pytest.raises(RunLockedError, match=f"in use by process {child.pid}"):
            sess.run_training()
        assert time.monotonic() - t0 < 5  # at once, no waiting
        assert cli.main(["train", "ppo", "CartPole-v1", "--out", str(out), "--total-timesteps", "32"]) == 1
        assert not (out / "ckpt.pt").exists() and not (out / "progress.csv").exists()
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    run = TrainSession(out, "ppo", "CartPole-v1", 32, config=TINY, tensorboard=False,
                       log=lambda m: None).run_training()  # the dead holder's lock is taken over
    assert run.global_step == 32
    with RunLock(out):  # and released at the end of the session
        pass


# --------------------------------------------------------------- 4. interrupted saves

_SAVER = textwrap.dedent("""
    import sys, torch
    from pgfast import checkpoint
    from pgfast.rundir import RunLock
    RunLock(sys.argv[1]).acquire()
    step = int(sys.argv[2])
    big = torch.zeros(400_000)
    while True:
        step += 1
        checkpoint.save_rotating({"format": checkpoint.FORMAT, "global_step": step, "w": big}, sys.argv[1])
        print(step, flush=True)
""")


def test_fifty_saves_with_random_kills_leave_only_the_checkpoints(tmp_path, child_env):
    out = tmp_path / "D"
    rng = random.Random(0)
    saves, step, kills = 0, 0, 0
    while saves < 50:
        child = subprocess.Popen([sys.executable, "-c", _SAVER, str(out), str(step)], stdout=subprocess.PIPE,
                                 env=child_env, text=True)
        assert child.stdout is not None
        lines = [child.stdout.readline() for _ in range(rng.randint(1, 12))]  # complete saves, then
        time.sleep(rng.uniform(0.0, 0.02))  # a kill at a random instant (often in the middle of a save)
        child.kill()
        rest = child.stdout.read()
        child.wait()
        child.stdout.close()
        done = [int(x) for x in ("".join(lines) + rest).split()]
        saves += len(done)
        kills += 1
        if done:
            step = done[-1]
        found, _ = checkpoint.candidates(out)
        assert found and found[0][0] >= step  # the newest complete save is always readable
        step = found[0][0]
    left = {p.name for p in out.iterdir()}
    assert left <= {"ckpt.pt", "ckpt.prev.pt", "run.lock"} | {p for p in left if p.startswith(".ckpt.pt.")}
    checkpoint.save_rotating({"format": checkpoint.FORMAT, "global_step": step + 1}, out)  # the next save
    assert sorted(p.name for p in out.iterdir()) == ["ckpt.prev.pt", "ckpt.pt", "run.lock"]
    assert kills >= 3


def test_fallback_is_by_step_inside_the_file_not_by_name(tmp_path):
    d = tmp_path
    checkpoint.save_rotating({"format": checkpoint.FORMAT, "global_step": 10}, d)
    stale = d / ".ckpt.pt.abcd.new"  # an interrupted save older than ckpt.prev.pt, newest on disk
    checkpoint.write({"format": checkpoint.FORMAT, "global_step": 5}, stale)
    checkpoint.save_rotating({"format": checkpoint.FORMAT, "global_step": 20}, d)
    assert not stale.exists()  # the save removed it
    checkpoint.write({"format": checkpoint.FORMAT, "global_step": 5}, stale)
    os.utime(stale, (time.time() + 100, time.time() + 100))
    (d / "ckpt.pt").write_bytes(b"garbage")
    msgs = []
    ck, used = checkpoint.load_with_fallback(d, checkpoint.read, msgs.append)
    assert ck["global_step"] == 10 and used.name == "ckpt.prev.pt"
    assert len(msgs) == 1 and "previous checkpoint" in msgs[0] and "step 10" in msgs[0]
    newer = d / ".ckpt.pt.efgh.new"  # a complete save killed before its rename: the newest step wins
    checkpoint.write({"format": checkpoint.FORMAT, "global_step": 30}, newer)
    ck, used = checkpoint.load_with_fallback(d, checkpoint.read, msgs.append)
    assert ck["global_step"] == 30 and used == newer
    checkpoint.settle(used, msgs.append)
    assert checkpoint.read(d / "ckpt.pt")["global_step"] == 30
    assert not stale.exists() and not newer.exists()


# --------------------------------------------------------------- 5. non-finite data


@pytest.mark.parametrize("algo", ["ppo", "vpg", "trpo"])
@pytest.mark.parametrize("what", ["reward", "observation"])
def test_non_finite_env_data_stops_training_gymnasium_env(algo, what, tmp_path):
    out = tmp_path / "D"
    sess = TrainSession(out, algo, "PgfastTrustBad-v0", 320, config=TINY, checkpoint_interval=0, tensorboard=False,
                        log=lambda m: None)
    sess_env = {"bad_at": 40, "what": what, "value": float("inf") if what == "observation" else float("nan")}
    sess._new_run = _with_env_kwargs(sess, sess_env)  # type: ignore[method-assign]
    with pytest.raises(numerics.NonFiniteError, match=f"non-finite {what}.*env index [01], iteration 3, step"):
        sess.run_training()
    ck = checkpoint.read(out / "ckpt.pt")
    assert ck["global_step"] == 64  # the last finite checkpoint (iteration 2) stays ckpt.pt
    assert all(torch.isfinite(v).all() for v in ck["policy"].values() if v.is_floating_point())


def _with_env_kwargs(sess, kw):
    def make():
        cfg = pgfast.algos.get_algo(sess.algo).Config(**dict(sess.config, total_timesteps=sess.total_timesteps))
        return Run(sess.algo, sess.env_id, cfg, seed=0, device="cpu", env_kwargs=kw)
    return make


@pytest.mark.parametrize("algo", ["ppo", "vpg", "trpo"])
def test_non_finite_reward_native_env_and_rollout(algo):
    run = Run(algo, "CartPole-v1", pgfast.algos.make_config(algo, "CartPole-v1", True, total_timesteps=96, **TINY))
    real = run.collector.collect

    def collect():  # what a NaN reward from the env looks like in the native rollout's buffer
        real()
        if run.iteration == 1:
            run.buffer.rewards[5, 1] = float("nan")
    run.collector.collect = collect  # type: ignore[method-assign]
    with pytest.raises(numerics.NonFiniteError, match="non-finite reward nan from the env: env index 1, "
                                                      "iteration 2, step 44"):
        run.learn()
    assert run.global_step == 32


@pytest.mark.parametrize("algo", ["ppo", "vpg", "trpo"])
def test_non_finite_loss_or_weight_stops_training_and_is_never_saved(algo, tmp_path):
    run = pgfast.train(algo, "CartPole-v1", 32, seed=0, **TINY)
    real = run.updater.update
    run.updater.update = lambda *a: dict(real(*a), policy_loss=float("nan"))  # type: ignore[method-assign]
    with pytest.raises(numerics.NonFiniteError, match="non-finite policy loss .* iteration 2, step 64"):
        run.learn(32)
    run.updater.update = real  # type: ignore[method-assign]

    def poisoned(*a):
        stats = real(*a)
        with torch.no_grad():
            next(run.policy.parameters()).view(-1)[0] = float("inf")
        return stats
    run.updater.update = poisoned  # type: ignore[method-assign]
    with pytest.raises(numerics.NonFiniteError, match="non-finite weight"):
        run.learn(32)
    with pytest.raises(numerics.NonFiniteError, match="not saved"):
        run.save(tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


def test_huge_rewards_warn_once_then_inf_loss_stops(tmp_path):
    kw = {"scale": 1e8}
    with pytest.warns(numerics.LargeValueLossWarning, match="norm_reward=True") as rec:
        run = pgfast.train("ppo", "PgfastTrustBad-v0", 96, seed=0, env_kwargs=kw, norm_reward=False, **TINY)
    assert len([w for w in rec if w.category is numerics.LargeValueLossWarning]) == 1
    assert run.global_step == 96
    with pytest.raises(numerics.NonFiniteError, match="non-finite value loss"):
        pgfast.train("ppo", "PgfastTrustBad-v0", 96, seed=0, env_kwargs={"scale": 1e30}, norm_reward=False, **TINY)


def test_cli_non_finite_is_one_line_exit_1_and_progress_writes_nan(tmp_path, capsys, monkeypatch):
    out = tmp_path / "D"
    real = Run._iterate

    def iterate(self):
        row = real(self)
        row["episodic_return"] = float("nan")
        row["approx_kl"] = float("inf") if self.iteration == 1 else row["approx_kl"]
        if self.iteration == 2:
            self.buffer.rewards[0, 0] = float("nan")
            numerics.check_rollout(self.buffer.obs, self.buffer.rewards, 3, self.global_step)
        return row
    monkeypatch.setattr(Run, "_iterate", iterate)
    assert _train_cli(out, steps=128) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("pgfast train: error: non-finite reward nan") and "Traceback" not in "".join(err)
    text = (out / "progress.csv").read_text().splitlines()
    header = text[0].split(",")
    first = dict(zip(header, text[1].split(",")))
    assert first["episodic_return"] == "nan" and first["approx_kl"] == "inf"
    assert checkpoint.read(out / "ckpt.pt")["global_step"] == 32


# --------------------------------------------------------------- 6. checkpoints cannot run code


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _plant(path: Path, marker: Path, base: dict) -> None:
    ck = dict(base)
    ck["evil"] = _Evil(marker)
    with open(path, "wb") as f:
        torch.save(ck, f)


def test_no_way_in_runs_code_from_a_checkpoint(tmp_path, capsys):
    marker = tmp_path / "PWNED"
    good = tmp_path / "good"
    assert _train_cli(good) == 0
    base = checkpoint.read(good / "ckpt.pt")
    evil = tmp_path / "evil"
    evil.mkdir()
    _plant(evil / "ckpt.pt", marker, base)
    ways = [
        lambda: load(evil / "ckpt.pt"),
        lambda: load_checkpoint(evil, log=lambda m: None),
        lambda: checkpoint.read(evil / "ckpt.pt"),
        lambda: TrainSession(evil, total_timesteps=128, resume=evil, tensorboard=False,
                             log=lambda m: None).run_training(),  # how a study job resumes
    ]
    for way in ways:
        with pytest.raises(checkpoint.UntrustedCheckpointError, match="trust"):
            way()
    capsys.readouterr()
    for argv in (["eval", str(evil), "--episodes", "1"], ["train", "--resume", str(evil), "--no-progress"]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--trust-checkpoint" in err[0]
    # a fallback candidate: ckpt.pt unreadable, a planted "interrupted save" beside a good previous one
    fb = tmp_path / "fb"
    fb.mkdir()
    (fb / "ckpt.pt").write_bytes(b"garbage")
    (fb / "ckpt.prev.pt").write_bytes((good / "ckpt.pt").read_bytes())
    _plant(fb / ".ckpt.pt.zzzz.new", marker, base)
    with pytest.raises(checkpoint.UntrustedCheckpointError):
        load_checkpoint(fb, log=lambda m: None)
    assert not marker.exists()


def test_first_format_checkpoint_loads_only_with_trust(tmp_path):
    run = pgfast.train("ppo", "CartPole-v1", 32, seed=0, **TINY)
    ck = run.state_dict()
    ck["format"] = 1
    ck["env_state"] = ("pickle", pickle.dumps(run.env))  # how the first format stored env state
    old = tmp_path / "old.pt"
    with open(old, "wb") as f:
        torch.save(ck, f)
    with pytest.raises(checkpoint.UntrustedCheckpointError, match="trust=True"):
        load(old)
    loaded = load(old, trust=True)
    assert loaded.global_step == 32
    loaded.learn(32)
    full = pgfast.train("ppo", "CartPole-v1", 64, seed=0, **TINY)
    assert [r["policy_loss"] for r in loaded.history] == [r["policy_loss"] for r in full.history]
    loaded.save(tmp_path / "new.pt")  # saved in the current format: loads without trust
    assert load(tmp_path / "new.pt").global_step == 64


def test_plain_state_round_trip():
    from pgfast import envstate

    gen = np.random.default_rng(3)
    gen.random(5)
    obj = {"a": np.arange(6, dtype=np.uint64).reshape(2, 3), "g": gen, "s": np.float32(1.5), "t": (1, None, "x"),
           "tensor": torch.ones(2)}
    back = envstate.decode(envstate.encode(obj))
    assert back["a"].dtype == np.uint64 and (back["a"] == obj["a"]).all()
    assert back["g"].random() == gen.random() and back["s"] == 1.5 and back["t"] == (1, None, "x")
    with pytest.raises(TypeError, match="no plain form"):
        envstate.encode({"x": object()})
    with pytest.raises(ValueError, match="refused"):
        envstate.decode({"__ndarray__": b"", "dtype": "|O", "shape": [0]})
    with pytest.raises(ValueError, match="bit generator"):
        envstate.decode({"__np_random__": {"bit_generator": "os.system"}})


# --------------------------------------------------------------- 9. clear errors


def test_disk_full_is_one_line_previous_checkpoint_intact_no_retry(tmp_path, capsys, monkeypatch):
    out = tmp_path / "D"
    assert _train_cli(out) == 0
    before = (out / "ckpt.pt").read_bytes()
    calls = []

    def full(obj, f, *a, **k):
        calls.append(1)
        raise RuntimeError("[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed writing "
                           "file data/0: file write failed")
    monkeypatch.setattr(checkpoint.torch, "save", full)
    capsys.readouterr()
    assert cli.main(["train", "--resume", str(out), "--total-timesteps", "128", "--no-progress",
                     "--checkpoint-interval", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("pgfast train: error: cannot write the checkpoint") and "intact" in err[-1]
    assert "Traceback" not in "\n".join(err) and len(calls) == 1
    assert (out / "ckpt.pt").read_bytes() == before
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []

    def enospc(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.undo()
    monkeypatch.setattr(checkpoint.os, "fsync", enospc)
    with pytest.raises(checkpoint.CheckpointWriteError, match="no space left on device"):
        checkpoint.write({"format": checkpoint.FORMAT}, out / "ckpt.pt")
    assert (out / "ckpt.pt").read_bytes() == before


def test_buffers_too_large_are_refused_with_the_size(capsys):
    with pytest.raises(MemoryError, match=r"num_envs=100000000 x num_steps=128 needs about [0-9.]+ GiB"):
        pgfast.train("ppo", "CartPole-v1", 10**9, num_envs=10**8, num_steps=128)
    assert cli.main(["train", "ppo", "CartPole-v1", "--set", "num_envs=100000000", "num_steps=128",
                     "--out", "/nonexistent-dir/x"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "GiB of rollout buffers" in err[-1] and len([e for e in err if "error" in e]) == 1


def test_module_colon_env_id(tmp_path, monkeypatch, capsys):
    mod = tmp_path / "pgfast_trust_mod.py"
    mod.write_text(textwrap.dedent("""
        import gymnasium as gym
        gym.register(id="TrustModCartPole-v0", entry_point="gymnasium.envs.classic_control:CartPoleEnv",
                     max_episode_steps=50)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _train_cli(tmp_path / "D", env_id="pgfast_trust_mod:TrustModCartPole-v0") == 0
    assert checkpoint.read(tmp_path / "D" / "ckpt.pt")["env_id"] == "pgfast_trust_mod:TrustModCartPole-v0"
    capsys.readouterr()
    assert _train_cli(tmp_path / "E", env_id="no_such_module_x:Foo-v0") == 2
    assert "cannot import module 'no_such_module_x'" in capsys.readouterr().err
    for argv in (["experiment", "ppo-vs-vpg", "--envs", "CartPole-v1", "no_such_module_x:Foo-v0"],
                 ["tune", "ppo", "no_such_module_x:Foo-v0"]):
        assert cli.main(argv + ["--out", str(tmp_path / "F")]) == 2
        assert "cannot import module 'no_such_module_x'" in capsys.readouterr().err
        assert not (tmp_path / "F").exists()
