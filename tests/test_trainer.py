"""pgfast.train / Run / pgfast.load: determinism, checkpoints, callbacks, interrupts, errors."""

import inspect
import math
import multiprocessing
import os
import pickle
import signal
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import pgfast
from pgfast import checkpoint
from pgfast.envs import native_ids
from pgfast.evaluation import clip_actions
from pgfast.session import CheckpointSchedule, SignalGuard, StopFlag

SMALL = dict(num_envs=4, num_steps=32, num_minibatches=2, update_epochs=2)
WALL_CLOCK = ("sps", "time")


def _strip(history):
    return [{k: v for k, v in row.items() if k not in WALL_CLOCK} for row in history]


def _same_history(h1, h2):
    a, b = _strip(h1), _strip(h2)
    assert len(a) == len(b)
    for r1, r2 in zip(a, b):
        assert r1.keys() == r2.keys()
        for k in r1:
            x, y = r1[k], r2[k]
            both_nan = isinstance(x, float) and math.isnan(x) and isinstance(y, float) \
                and math.isnan(y)
            assert both_nan or x == y, (k, x, y)


def _params_equal(r1, r2):
    s1, s2 = r1.policy.state_dict(), r2.policy.state_dict()
    return s1.keys() == s2.keys() and all(torch.equal(s1[k], s2[k]) for k in s1)


BACKENDS = ["gymnasium"] + (["native"] if "CartPole-v1" in native_ids() else [])


@pytest.mark.parametrize("algo", ["ppo", "vpg", "trpo"])
def test_same_seed_gives_bit_identical_history(algo):
    kw = dict(total_timesteps=512, seed=3, device="cpu", **SMALL)
    r1 = pgfast.train(algo, "CartPole-v1", **kw)
    r2 = pgfast.train(algo, "CartPole-v1", **kw)
    assert len(r1.history) == 4
    _same_history(r1.history, r2.history)
    assert _params_equal(r1, r2)
    r3 = pgfast.train(algo, "CartPole-v1", **dict(kw, seed=4))
    assert not _params_equal(r1, r3)


def test_history_rows_hold_the_documented_fields():
    run = pgfast.train("ppo", "CartPole-v1", total_timesteps=256, seed=0, device="cpu", **SMALL)
    row = run.history[-1]
    for k in ("global_step", "episodic_return", "policy_loss", "value_loss", "entropy",
              "approx_kl", "clipfrac", "explained_variance", "sps", "learning_rate"):
        assert k in row, k
    assert row["global_step"] == 256 == run.global_step
    assert [r["global_step"] for r in run.history] == [128, 256]
    assert row["sps"] > 0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("algo", ["ppo", "trpo"])
def test_save_load_continue_equals_uninterrupted_run(tmp_path, algo, backend):
    if backend == "native":
        env = pgfast.make_vec("CartPole-v1", 2, seed=0, autoreset_mode="same_step")
        try:
            pickle.dumps(env)
        except Exception:  # noqa: BLE001
            pytest.skip("the native CartPole env cannot be pickled: its checkpoint holds the "
                        "physics state (get_state) but not the reset RNG and step counters, "
                        "so resumed runs are valid but not bit-identical continuations")
        finally:
            env.close()
    kw = dict(total_timesteps=1024, seed=1, device="cpu", env_kwargs={"backend": backend},
              anneal_lr=True, **SMALL) if algo == "ppo" else dict(
        total_timesteps=1024, seed=1, device="cpu", env_kwargs={"backend": backend}, **SMALL)
    full = pgfast.train(algo, "CartPole-v1", **kw)
    half = pgfast.train(algo, "CartPole-v1", callback=lambda row: row["iteration"] < 4, **kw)
    assert half.global_step == 512
    path = tmp_path / "ck.pt"
    half.save(path)
    half.close()
    resumed = pgfast.load(path)
    assert resumed.global_step == 512 and len(resumed.history) == 4
    resumed.learn()
    assert resumed.global_step == full.global_step == 1024
    _same_history(full.history, resumed.history)
    assert _params_equal(full, resumed)


def test_save_is_atomic_and_overwrites(tmp_path):
    run = pgfast.train("vpg", "CartPole-v1", total_timesteps=128, seed=0, device="cpu", **SMALL)
    path = tmp_path / "sub" / "run.pt"
    run.save(path)
    run.learn(128)
    run.save(path)  # overwrite via os.replace
    assert sorted(os.listdir(path.parent)) == ["run.pt"]  # no temporary file left
    loaded = pgfast.load(str(path))
    assert loaded.global_step == 256 and loaded.algo == "vpg"
    assert loaded.config.baseline is True


def test_load_rejects_non_checkpoint(tmp_path):
    p = tmp_path / "x.pt"
    torch.save({"hello": 1}, p)
    with pytest.raises(ValueError, match="not a pgfast checkpoint"):
        pgfast.load(p)


def test_learn_more_timesteps_and_callback_stop():
    rows = []
    run = pgfast.train("ppo", "CartPole-v1", total_timesteps=384, seed=0, device="cpu",
                       callback=rows.append, **SMALL)
    assert [r["iteration"] for r in rows] == [1, 2, 3]
    run.learn(256)
    assert run.global_step == 640 and run.config.total_timesteps == 640
    stopped = []
    run.learn(1024, callback=lambda r: stopped.append(r) or False)
    assert len(stopped) == 1 and run.global_step == 768
    with pytest.raises(ValueError, match="more_timesteps"):
        run.learn(0)
    with pytest.raises(TypeError, match="callback"):
        run.learn(128, callback=3)


def test_keyboard_interrupt_is_deferred_to_a_consistent_iteration_end(tmp_path):
    def interrupt(row):
        if row["iteration"] == 2:
            os.kill(os.getpid(), signal.SIGINT)

    kw = dict(total_timesteps=512, seed=2, device="cpu", tuned=False, **SMALL)
    cfg = pgfast.algos.make_config("ppo", total_timesteps=512, **SMALL)
    run = pgfast.Run("ppo", "CartPole-v1", cfg, seed=2, device="cpu")
    with pytest.raises(KeyboardInterrupt):
        run.learn(callback=interrupt)
    assert run.global_step == 256 and len(run.history) == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    run.learn()  # continues to the configured total, consistent with an uninterrupted run
    full = pgfast.train("ppo", "CartPole-v1", **kw)
    _same_history(full.history, run.history)


def test_evaluate_returns_mean_and_std_and_leaves_training_state_alone():
    run = pgfast.train("ppo", "CartPole-v1", total_timesteps=256, seed=0, device="cpu", **SMALL)
    g = run.generator.get_state()
    m1, s1 = run.evaluate(episodes=5)
    m2, s2 = run.evaluate(episodes=5)
    assert (m1, s1) == (m2, s2) and m1 >= 8 and s1 >= 0
    ms, _ = run.evaluate(episodes=3, deterministic=False, seed=1, num_envs=2)
    assert ms > 0
    assert torch.equal(run.generator.get_state(), g)
    with pytest.raises(ValueError, match="episodes"):
        run.evaluate(episodes=0)


def test_unknown_config_field_lists_valid_ones():
    with pytest.raises(ValueError, match=r"unknown config field\(s\).*'clip_cof'.*clip_coef"):
        pgfast.train("ppo", "CartPole-v1", total_timesteps=128, clip_cof=0.1)
    with pytest.raises(ValueError, match="baseline"):
        pgfast.train("ppo", "CartPole-v1", total_timesteps=128, baseline=True)


def test_bad_arguments():
    with pytest.raises(ValueError, match="algo"):
        pgfast.train("dqn", "CartPole-v1", total_timesteps=128)
    with pytest.raises(ValueError, match="device"):
        pgfast.train("ppo", "CartPole-v1", total_timesteps=128, device="tpu")
    with pytest.raises(TypeError, match="seed"):
        pgfast.train("ppo", "CartPole-v1", total_timesteps=128, seed="0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            pgfast.train("ppo", "CartPole-v1", total_timesteps=128, device="cuda")


def test_tuned_settings_apply_and_explicit_fields_win():
    run = pgfast.train("ppo", "CartPole-v1", total_timesteps=256, seed=0, device="cpu",
                       num_envs=4)
    assert run.config.update_epochs == 20 and run.config.num_envs == 4
    run2 = pgfast.train("ppo", "CartPole-v1", total_timesteps=512, seed=0, device="cpu",
                        tuned=False)
    assert run2.config.update_epochs == pgfast.trainer.get_algo("ppo").Config().update_epochs


def test_torch_threads_restored():
    # the caller's setting differs from the training one, whatever earlier tests left behind
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        pgfast.train("vpg", "CartPole-v1", total_timesteps=128, seed=0, device="cpu",
                     torch_threads=1, **SMALL)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_continuous_env_with_obs_and_reward_normalisation(tmp_path):
    kw = dict(total_timesteps=512, seed=0, device="cpu", norm_obs=True, norm_reward=True,
              num_envs=2, num_steps=128, num_minibatches=4, update_epochs=2)
    run = pgfast.train("ppo", "Pendulum-v1", **kw)
    rms = run.policy.obs_rms
    assert rms is not None and float(rms.count) > 500
    assert run.policy.continuous and run.buffer.actions.shape == (128, 2, 1)
    # scaled rewards: Pendulum's raw rewards are in [-16.3, 0]; scaled ones are clipped
    assert run.buffer.rewards.abs().max() <= 10.0
    path = tmp_path / "p.pt"
    run.save(path)
    loaded = pgfast.load(path)
    assert torch.equal(loaded.policy.obs_rms.mean, rms.mean)
    assert loaded.collector.reward_scaler.count == run.collector.reward_scaler.count
    m, s = loaded.evaluate(episodes=2)
    assert -2000 < m <= 0 and np.isfinite(s)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_matches_shapes_and_saves(tmp_path):
    run = pgfast.train("ppo", "CartPole-v1", total_timesteps=512, seed=0, device="cuda", **SMALL)
    assert run.buffer.obs.is_cuda and run.buffer.rewards.is_cuda
    assert next(run.policy.parameters()).is_cuda
    assert run.history[-1]["global_step"] == 512
    run.save(tmp_path / "c.pt")
    cpu = pgfast.load(tmp_path / "c.pt", device="cpu")
    assert cpu.device.type == "cpu"
    cpu.learn(128)
    for algo in ("vpg", "trpo"):
        r = pgfast.train(algo, "CartPole-v1", total_timesteps=256, seed=0, device="cuda", **SMALL)
        assert math.isfinite(r.history[-1]["approx_kl"])


MUJOCO_BACKENDS = ["gymnasium"] + (["native"] if "HalfCheetah-v5" in native_ids() else [])


@pytest.mark.parametrize("backend", MUJOCO_BACKENDS)
def test_halfcheetah_box_actions_both_backends(backend):
    pytest.importorskip("mujoco", reason="mujoco not installed")
    run = pgfast.train("ppo", "HalfCheetah-v5", total_timesteps=256, seed=0, device="cpu",
                       env_kwargs={"backend": backend}, num_envs=2, num_steps=64,
                       num_minibatches=2, update_epochs=1, norm_obs=True, norm_reward=True)
    assert run.buffer.obs.shape == (65, 2, 17) and run.buffer.actions.shape == (64, 2, 6)
    assert all(math.isfinite(run.history[-1][k]) for k in ("policy_loss", "value_loss"))
    # HalfCheetah never terminates; the 1000-step time limit is not reached in 128 steps
    assert not run.buffer.terminated.any()
    run.close()


@pytest.mark.skipif("HalfCheetah-v5" not in native_ids(), reason="native MuJoCo envs unavailable")
def test_native_mujoco_save_load_continue_keeps_time_limit_and_equals_uninterrupted(tmp_path):
    pytest.importorskip("mujoco", reason="mujoco not installed")
    kw = dict(total_timesteps=256, seed=0, device="cpu", num_envs=2, num_steps=32,
              num_minibatches=2, update_epochs=1, env_kwargs={"max_episode_steps": 40})
    full = pgfast.train("ppo", "HalfCheetah-v5", **kw)
    half = pgfast.train("ppo", "HalfCheetah-v5", callback=lambda row: row["iteration"] < 2, **kw)
    path = tmp_path / "ck.pt"
    half.save(path)
    half.close()
    resumed = pgfast.load(path)
    resumed.learn()
    # every episode ends at the 40-step time limit, also across the checkpoint
    assert set(resumed.collector.recent_lengths) == {40}
    _same_history(full.history, resumed.history)
    assert _params_equal(full, resumed)
    full.close()
    resumed.close()


def test_load_with_an_uncapturable_env_starts_from_its_fresh_reset(tmp_path):
    # gymnasium's AsyncVectorEnv can be neither pickled nor get_state'd: on load it is
    # reset deterministically (seed + 1_000_003 * iteration) and load says so, so the
    # rollout must start from that reset (not from the saved observations of the old
    # env) and the episode trackers from zero
    kw = dict(total_timesteps=64, seed=3, device="cpu", num_envs=2, num_steps=32,
              num_minibatches=2, update_epochs=1,
              env_kwargs={"backend": "gymnasium", "vectorization_mode": "async"})
    run = pgfast.train("ppo", "CartPole-v1", **kw)
    assert run.collector.ep_len.any()
    path = tmp_path / "ck.pt"
    run.save(path)
    run.close()
    assert checkpoint.read(path)["env_exact"] is False
    with pytest.warns(pgfast.trainer.InexactResumeWarning, match="reset with seed 1000006"):
        resumed = pgfast.load(path)
    ref = pgfast.make_vec("CartPole-v1", 2, autoreset_mode="same_step", backend="gymnasium",
                          vectorization_mode="async")
    try:
        obs, _ = ref.reset(seed=3 + 1_000_003 * run.iteration)
        np.testing.assert_array_equal(resumed.collector.current_obs().numpy(), obs)
        assert not resumed.collector.ep_len.any() and not resumed.collector.ep_ret.any()
        assert resumed.collector.episodes_finished == run.collector.episodes_finished
        resumed.learn(64)
        assert resumed.global_step == 128
    finally:
        ref.close()
        resumed.close()


def test_config_help_lists_every_field(capsys):
    pgfast.algos.config_help("trpo")
    out = capsys.readouterr().out
    for name in pgfast.algos.get_algo("trpo").Config.field_names():
        assert f"  {name} " in out
    assert "trust region" in out


def test_periodic_checkpoints_and_checkpoint_on_interrupt(tmp_path):
    path = tmp_path / "periodic.pt"
    seen = []

    def cb(row):
        if path.exists():
            seen.append((row["iteration"], pgfast.load(path).iteration))

    pgfast.train("vpg", "CartPole-v1", total_timesteps=640, seed=0, device="cpu",
                 callback=cb, checkpoint_path=path, checkpoint_every=2, **SMALL)
    # callbacks run before that iteration's checkpoint: the file lags by the period
    assert seen == [(3, 2), (4, 2), (5, 4)]
    assert pgfast.load(path).iteration == 5  # final checkpoint at the end

    def interrupt(row):
        if row["iteration"] == 1:
            os.kill(os.getpid(), signal.SIGINT)

    p2 = tmp_path / "interrupted.pt"
    with pytest.raises(KeyboardInterrupt):
        pgfast.train("vpg", "CartPole-v1", total_timesteps=640, seed=0, device="cpu",
                     callback=interrupt, checkpoint_path=p2, **SMALL)
    assert pgfast.load(p2).iteration == 1
    with pytest.raises(ValueError, match="checkpoint_every"):
        pgfast.train("vpg", "CartPole-v1", total_timesteps=128, checkpoint_every=-1)


def test_history_does_not_depend_on_the_callers_torch_threads():
    """Construction (network init) runs under the training thread count too, so the
    caller's torch.set_num_threads setting cannot change a seeded run."""
    before = torch.get_num_threads()
    hists = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            run = pgfast.train("trpo", "CartPole-v1", total_timesteps=4096, seed=0, device="cpu")
            hists.append([(r["global_step"], r["episodic_return"], r["policy_loss"])
                          for r in run.history])
    finally:
        torch.set_num_threads(before)
    assert hists[0] == hists[1]


# --------------------------------------------------------------------------- lifecycle


def test_signal_handlers_are_installed_in_one_module():
    root = Path(pgfast.__file__).parent
    users = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.py") if "signal.signal(" in p.read_text())
    assert users == ["session.py"]


def test_signal_guard_defers_the_first_sigint_and_raises_on_the_second():
    stop = StopFlag()
    with SignalGuard(stop):
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested and stop.reason() == "signal SIGINT"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_second_sigint_mid_iteration_leaves_the_last_consistent_checkpoint(tmp_path):
    path = tmp_path / "ck.pt"
    cfg = pgfast.algos.make_config("vpg", total_timesteps=512, **SMALL)
    run = pgfast.Run("vpg", "CartPole-v1", cfg, seed=0, device="cpu")
    update = run.updater.update

    def update_under_two_sigints(*args):
        if run.iteration == 1:
            os.kill(os.getpid(), signal.SIGINT)  # deferred to the end of the iteration
            os.kill(os.getpid(), signal.SIGINT)  # interrupts at once, mid-iteration
        return update(*args)

    run.updater.update = update_under_two_sigints
    with pytest.raises(KeyboardInterrupt):
        run.learn(checkpoint_path=path, checkpoint_every=1)
    assert not run.consistent and run.iteration == 1
    assert pgfast.load(path).iteration == 1  # not overwritten by the half-updated run
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_stop_flag_shares_requests_through_an_event():
    event = multiprocessing.get_context("spawn").Event()
    a, b = StopFlag(event), StopFlag(event)
    assert not b.requested
    a.request()
    assert b.requested and b.reason() == "stop requested"


def test_checkpoint_schedule_periods_and_no_second_save_of_a_step():
    saved = []
    s = CheckpointSchedule(lambda: saved.append("it"), every_iterations=2)
    for it in range(1, 6):
        s.after_iteration(it, 10 * it)
    s.final(50)
    s.final(50)
    assert saved == ["it"] * 3 and s.saved_step == 50  # iterations 2, 4 and the end
    t = CheckpointSchedule(lambda: saved.append("t0"), every_seconds=0)
    t.after_iteration(1, 10)
    t.final(10)
    assert saved.count("t0") == 1
    resumed = CheckpointSchedule(lambda: saved.append("r"), every_seconds=3600, saved_step=10)
    resumed.after_iteration(1, 20)
    resumed.final(20)
    assert saved.count("r") == 1
    with pytest.raises(ValueError, match="checkpoint_every"):
        CheckpointSchedule(lambda: None, every_iterations=-1)


def test_rotating_checkpoints_and_fallback(tmp_path):
    checkpoint.save_rotating({"format": checkpoint.FORMAT, "n": 1, "global_step": 1}, tmp_path)
    checkpoint.save_rotating({"format": checkpoint.FORMAT, "n": 2, "global_step": 2}, tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["ckpt.prev.pt", "ckpt.pt"]  # no temporary file left
    assert checkpoint.read(tmp_path / "ckpt.pt")["n"] == 2
    (tmp_path / "ckpt.pt").write_bytes(b"")
    msgs = []
    ck, used = checkpoint.load_with_fallback(tmp_path, checkpoint.read, msgs.append)
    assert ck["n"] == 1 and used.name == "ckpt.prev.pt"
    assert len(msgs) == 1 and "empty" in msgs[0] and "previous checkpoint" in msgs[0]
    checkpoint.set_aside_newer(used, msgs.append)
    assert (tmp_path / "ckpt.pt.corrupt").exists() and not (tmp_path / "ckpt.pt").exists()
    with pytest.raises(checkpoint.CheckpointError, match="does not exist"):
        checkpoint.load_with_fallback(tmp_path / "none.pt", checkpoint.read)


def test_box_actions_are_clipped_in_one_place():
    box = gym.spaces.Box(-2.0, 2.0, (1,), dtype=np.float32)
    out = clip_actions(np.array([[3.0], [-0.5]]), box)
    assert out.dtype == np.float32 and out.tolist() == [[2.0], [-0.5]]
    discrete = np.array([0, 1])
    assert clip_actions(discrete, gym.spaces.Discrete(2)) is discrete


# ------------------------------------------- issue 10: crash-safe checkpoints, double Ctrl-C ---


def _tiny_run(total=64):
    return pgfast.train("ppo", "CartPole-v1", total, seed=3, device="cpu", num_envs=2, num_steps=16,
                        hidden_sizes=(8,), update_epochs=1, num_minibatches=1)


def test_rotating_save_killed_between_renames_keeps_a_complete_ckpt(tmp_path, monkeypatch):
    run = _tiny_run()
    checkpoint.save_rotating(run.state_dict(), tmp_path)
    real = os.replace
    calls = []

    def dying(src, dst):
        calls.append(dst)
        if os.fspath(dst).endswith(checkpoint.CKPT_NAME):  # the rename that installs the new file
            raise SystemExit("killed")
        real(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", dying)
    run.learn(32)
    with pytest.raises(SystemExit):
        checkpoint.save_rotating(run.state_dict(), tmp_path)
    monkeypatch.undo()
    assert calls and (tmp_path / "ckpt.pt").is_file() and (tmp_path / "ckpt.prev.pt").is_file()
    assert pgfast.load(tmp_path / "ckpt.pt").global_step == 64  # the old one, complete


def test_sigint_during_a_save_is_held_back_until_it_is_complete(tmp_path, monkeypatch):
    run = _tiny_run()
    checkpoint.save_rotating(run.state_dict(), tmp_path)
    run.learn(32)
    real = os.replace

    def replace_and_signal(src, dst):
        os.kill(os.getpid(), signal.SIGINT)  # Python's default handler: KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", replace_and_signal)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save_rotating(run.state_dict(), tmp_path)
    monkeypatch.undo()
    assert pgfast.load(tmp_path / "ckpt.pt").global_step == 96  # the new one, complete
    assert pgfast.load(tmp_path / "ckpt.prev.pt").global_step == 64


def test_checkpoint_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        _tiny_run().save(tmp_path / "x.pt")
    finally:
        os.umask(old)
    assert (tmp_path / "x.pt").stat().st_mode & 0o777 == 0o644


def test_directory_named_ckpt_pt(tmp_path):
    run = _tiny_run()
    run.save(tmp_path / "ckpt.prev.pt")
    (tmp_path / "ckpt.pt").mkdir()
    logs = []
    loaded = pgfast.trainer.load_checkpoint(tmp_path / "ckpt.pt", log=logs.append)
    assert loaded.global_step == 64 and "is a directory" in logs[0]
    assert pgfast.trainer.load_checkpoint(tmp_path, log=logs.append).global_step == 64
    with pytest.raises(checkpoint.CheckpointError, match="is a directory"):
        checkpoint.save_rotating(run.state_dict(), tmp_path)


def _double_sigint_child(out_dir, delay, gap, q):
    import threading

    from pgfast.rundir import TrainSession
    from pgfast.session import Interrupted

    torch.set_num_threads(1)

    def fire():
        time.sleep(delay)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(gap)
        os.kill(os.getpid(), signal.SIGINT)

    sess = TrainSession(out_dir, "ppo", "CartPole-v1", 2048, seed=5, device="cpu", tensorboard=False,
                        checkpoint_interval=0, log=lambda m: None,
                        config=dict(num_envs=4, num_steps=32, hidden_sizes=(16,), update_epochs=2))
    threading.Thread(target=fire, daemon=True).start()
    try:
        sess.run_training()
        msg = "finished"
    except Interrupted as e:
        msg = str(e)
    except KeyboardInterrupt:  # landed before training started (the command reports it, exit 130)
        msg = "interrupted while starting: nothing saved"
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a late second signal must not lose the report
    q.put(msg)


def test_double_sigint_at_many_offsets_never_saves_an_inconsistent_state(tmp_path):
    """Two SIGINTs ``gap`` apart at many offsets: the run either stops after a
    consistent save or exits without saving (and says which); whatever is on disk
    then continues exactly like an uninterrupted run."""

    ref = pgfast.train("ppo", "CartPole-v1", 2048, seed=5, device="cpu", tuned=False, num_envs=4, num_steps=32,
                       hidden_sizes=(16,), update_epochs=2)
    ctx = multiprocessing.get_context("fork")
    outcomes = []
    for i, delay in enumerate([0.05, 0.15, 0.3, 0.45, 0.6, 0.8]):
        d = tmp_path / f"r{i}"
        q = ctx.Queue()
        p = ctx.Process(target=_double_sigint_child, args=(d, delay, 0.05, q))
        p.start()
        p.join(120)
        msg = q.get(timeout=5)
        saved = "checkpoint saved" in msg
        assert saved or "NOT saved" in msg or "nothing saved" in msg or msg == "finished", msg
        outcomes.append((delay, "saved" if saved else ("finished" if msg == "finished" else "not saved")))
        if (d / "ckpt.pt").exists():
            run = pgfast.trainer.load_checkpoint(d)
            n = len(run.history)
            _same_history(ref.history[:n], run.history)
            run.learn()
            _same_history(ref.history, run.history)
            assert _params_equal(ref, run)
    print("double SIGINT outcomes (delay, outcome):", outcomes)


class _SometimesEndless(gym.Env):
    """Reward 1 per step; an episode ends after 5 steps or (half the resets) never.
    Registered without a time limit."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, endless=0.5):
        self.endless = endless
        self.t = 0
        self.end = None

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.end = None if self.np_random.random() < self.endless else 5
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.zeros(2, np.float32), 1.0, self.end is not None and self.t >= self.end, False, {}


def test_evaluation_in_an_env_without_time_limit_ends_at_eval_max_steps():
    from pgfast import evaluation

    if "pgfast-test/Endless-v0" not in gym.registry:
        gym.register("pgfast-test/Endless-v0", entry_point=_SometimesEndless, kwargs={"endless": 1.0})
        gym.register("pgfast-test/SometimesEndless-v0", entry_point=_SometimesEndless)
    assert gym.spec("pgfast-test/Endless-v0").max_episode_steps is None
    assert evaluation.EVAL_MAX_STEPS == 10_000
    run = pgfast.train("ppo", "pgfast-test/Endless-v0", total_timesteps=64, seed=0, device="cpu",
                       num_envs=2, num_steps=32, num_minibatches=1, update_epochs=1)
    with pytest.warns(evaluation.EvalStepLimitWarning,
                      match=r"no time limit: 3 evaluation episode\(s\) cut at 40") as caught:
        assert run.evaluate(episodes=3, eval_max_steps=40) == (40.0, 0.0)
    assert len(caught) == 1  # one warning per evaluation
    for f in (pgfast.Run.evaluate, evaluation.vector_returns, evaluation.play_episode):  # the default cap
        assert [p.default for p in inspect.signature(f).parameters.values()][-1] == 10_000

    # some episodes end by themselves: those count as they are, the others are cut; every
    # counted episode starts at a reset
    env = pgfast.make_vec("pgfast-test/SometimesEndless-v0", 3, autoreset_mode="same_step")
    with pytest.warns(evaluation.EvalStepLimitWarning) as caught:
        rets = evaluation.vector_returns(run.policy, env, 12, True, 0, run.device, max_steps=20)
    env.close()
    assert len(rets) == 12 and set(rets) == {5.0, 20.0}
    assert f"{rets.count(20.0)} evaluation episode(s) cut at 20" in str(caught[0].message)

    single = gym.make("pgfast-test/Endless-v0")
    with pytest.warns(evaluation.EvalStepLimitWarning):
        assert evaluation.play_episode(run.policy, single, True, None, 0, run.device, max_steps=30) == 30.0
    single.close()

    # an env with a time limit ends at it, without a warning (warnings are errors here)
    capped = gym.make("pgfast-test/Endless-v0", max_episode_steps=25)
    assert evaluation.play_episode(run.policy, capped, True, None, 0, run.device, max_steps=10) == 25.0
    capped.close()
