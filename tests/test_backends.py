"""Path selection (pgfast.backends): rollout_backend and update_backend, auto | native | torch, for
every algorithm; "native" refused with the reason where it cannot apply; the chosen paths on the
Run, in run.json and in the settings line; the deprecated fields and checkpoints of earlier
releases."""

from __future__ import annotations

import json
import warnings

import gymnasium as gym
import pytest
import torch

import pgfast
from pgfast import backends, checkpoint
from pgfast.algos import make_config
from pgfast.algos.ppo import PPOConfig
from pgfast.config import BaseConfig
from pgfast.trainer import Run

SMALL = dict(num_envs=2, num_steps=16, num_minibatches=1, update_epochs=1, total_timesteps=32)


def _run(algo: str, env_id: str = "CartPole-v1", device: str = "cpu", **fields) -> Run:
    run = Run(algo, env_id, make_config(algo, env_id, **{**SMALL, **fields}), seed=0, device=device)
    run.close()
    return run


@pytest.mark.parametrize("algo", ["ppo", "vpg", "trpo"])
def test_auto_native_torch_on_cpu(algo):
    auto = _run(algo)
    assert auto.paths == {"rollout": "native", "update": "native"}  # PPO, VPG and TRPO have a C++ update
    assert auto.collector.native and auto.collector.native_eval
    torch_ = _run(algo, rollout_backend="torch", update_backend="torch")
    assert torch_.paths == {"rollout": "torch", "update": "torch"} and not torch_.collector.native_eval
    assert _run(algo, rollout_backend="native", update_backend="torch").paths["rollout"] == "native"
    assert _run(algo, update_backend="native").paths["update"] == "native"  # every algorithm has a C++ update


@pytest.mark.parametrize("algo", ["ppo", "vpg", "trpo"])
def test_torch_and_native_paths_train(algo):
    for rollout in ("native", "torch"):
        run = pgfast.train(algo, "CartPole-v1", seed=0, device="cpu", rollout_backend=rollout,
                           update_backend="torch", **SMALL)
        assert run.paths == {"rollout": rollout, "update": "torch"}
        assert len(run.history) == 1 and run.history[0]["global_step"] == 32
        run.close()


def test_native_refused_with_the_reason_for_a_dict_observation_env():
    run = _run("ppo", "pgfast/DictObs-v0")
    assert run.paths == {"rollout": "torch", "update": "torch"}
    with pytest.raises(ValueError, match=r"^rollout_backend='native': the C\+\+ rollout serves Box observations "
                                         r"with Discrete or Box actions \(not here: Dict observations"):
        _run("ppo", "pgfast/DictObs-v0", rollout_backend="native")
    with pytest.raises(ValueError, match=r"^update_backend='native': the C\+\+ update serves Box observations "
                                         r"with Discrete or Box actions \(not here: Dict observations"):
        _run("ppo", "pgfast/DictObs-v0", update_backend="native")


def test_native_refused_for_a_gymnasium_env_without_step_into():
    # an id pgfast does not implement: gymnasium's own vector env, which has no step_into
    gym.register("PgfastBackendsCartPole-v0", entry_point="gymnasium.envs.classic_control:CartPoleEnv",
                 max_episode_steps=50)
    run = _run("vpg", "PgfastBackendsCartPole-v0")
    assert run.paths == {"rollout": "torch", "update": "native"}
    with pytest.raises(ValueError, match=r"^rollout_backend='native': the C\+\+ rollout needs an env with step_into"):
        _run("vpg", "PgfastBackendsCartPole-v0", rollout_backend="native")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("algo", ["ppo", "vpg"])
def test_native_refused_on_cuda(algo):
    run = _run(algo, device="cuda")
    assert run.paths == {"rollout": "torch", "update": "torch"}
    with pytest.raises(ValueError, match=r"rollout_backend='native': the C\+\+ rollout .* on CPU.*this run is on cuda"):
        _run(algo, device="cuda", rollout_backend="native")
    if algo == "ppo":
        with pytest.raises(ValueError, match=r"update_backend='native': the C\+\+ update .*this run is on cuda"):
            _run(algo, device="cuda", update_backend="native")


def test_choose_is_the_rule():
    assert backends.choose("f", "auto", None) == "native"
    assert backends.choose("f", "auto", "why") == "torch"
    assert backends.choose("f", "torch", None) == "torch"
    assert backends.choose("f", "native", None) == "native"
    with pytest.raises(ValueError, match="^f='native': why$"):
        backends.choose("f", "native", "why")
    with pytest.raises(ValueError, match="update_backend must be one of auto, native, torch"):
        make_config("ppo", update_backend="cpp")


def test_config_fields_are_documented():
    from pgfast.config import field_docs

    docs = field_docs(PPOConfig)
    for name in ("rollout_backend", "update_backend", "native_rollout", "native_update"):
        assert docs[name], name


def test_deprecated_fields_still_work_and_warn():
    with pytest.warns(DeprecationWarning, match="native_rollout is deprecated: use rollout_backend"):
        cfg = make_config("ppo", native_rollout=False)
    assert cfg.rollout_backend == "torch" and cfg.native_rollout is None
    with pytest.warns(DeprecationWarning, match="native_update is deprecated: use update_backend"):
        cfg = make_config("ppo", native_update=False)
    assert cfg.update_backend == "torch" and cfg.native_update is None
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="contradicts"):
        make_config("ppo", native_update=False, update_backend="native")
    with pytest.raises(ValueError, match=r"'fast_grads' \(removed: the torch update is autograd"):
        make_config("ppo", fast_grads=False)


def test_configs_of_earlier_releases_load_silently():
    old = dict(PPOConfig().to_dict(), native_rollout=False, native_update=True, fast_grads=True)
    del old["rollout_backend"], old["update_backend"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = PPOConfig.from_saved(old)
    assert (cfg.rollout_backend, cfg.update_backend) == ("torch", "auto")
    assert BaseConfig.from_saved({"native_rollout": True}).rollout_backend == "auto"


def test_checkpoint_keeps_the_backends_and_an_old_checkpoint_loads(tmp_path):
    run = pgfast.train("ppo", "CartPole-v1", seed=0, device="cpu", rollout_backend="torch", **SMALL)
    run.save(tmp_path / "a.pt")
    back = pgfast.load(tmp_path / "a.pt")
    assert back.paths == {"rollout": "torch", "update": "native"} and back.config.rollout_backend == "torch"
    back.learn(32)
    # the same checkpoint as an earlier release wrote it: native_rollout/native_update/fast_grads
    ck = checkpoint.read(tmp_path / "a.pt")
    cfg = dict(ck["config"])
    del cfg["rollout_backend"], cfg["update_backend"]
    cfg.update(native_rollout=False, native_update=False, fast_grads=True)
    ck["config"] = cfg
    checkpoint.write(ck, tmp_path / "old.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        old = pgfast.load(tmp_path / "old.pt")
    assert old.paths == {"rollout": "torch", "update": "torch"}
    old.learn(32)
    for r in (run, back, old):
        r.close()


def test_run_json_and_the_settings_line_carry_the_paths(tmp_path, capsys):
    from pgfast import cli

    out = tmp_path / "r"
    argv = ["train", "vpg", "CartPole-v1", "--total-timesteps", "64", "--set", "num_envs=2", "num_steps=16",
            "rollout_backend=torch", "update_backend=torch", "--out", str(out), "--no-progress", "--no-tensorboard",
            "--eval-episodes", "0", "--device", "cpu"]
    assert cli.main(argv) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("settings: preset vpg/CartPole-v1; --set num_envs=2, num_steps=16, rollout_backend=torch, "
                             "update_backend=torch")
    assert err[0].endswith("; paths: rollout torch, update torch; device: cpu")
    meta = json.loads((out / "run.json").read_text())
    assert meta["paths"] == {"rollout": "torch", "update": "torch"}
    assert meta["config"]["rollout_backend"] == "torch"
    assert cli.main(["train", "--resume", str(out), "--total-timesteps", "96", "--no-progress",
                     "--no-tensorboard", "--eval-episodes", "0"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "settings: as the run saved them; paths: rollout torch, update torch; device: cpu"
    meta = json.loads((out / "run.json").read_text())
    assert meta["resumes"][0]["paths"] == meta["paths"] == {"rollout": "torch", "update": "torch"}


# ---- device="auto" -----------------------------------------------------------------------


def test_auto_device_rule():
    from types import SimpleNamespace

    from pgfast.backends import AUTO_CUDA_WIDTH, auto_device

    small = SimpleNamespace(hidden_sizes=(64, 64), activation="tanh")
    assert auto_device(small, None, cuda_available=False) == ("cpu", "auto: no CUDA device")
    dev, why = auto_device(small, None, cuda_available=True)
    assert dev == "cpu" and "C++ paths serve" in why and "64" in why
    wide = SimpleNamespace(hidden_sizes=(64, AUTO_CUDA_WIDTH), activation="relu")
    dev, why = auto_device(wide, None, cuda_available=True)
    assert dev == "cuda" and str(AUTO_CUDA_WIDTH) in why
    # a wide critic alone is enough (separate actor and critic sizes)
    critic = SimpleNamespace(hidden_sizes=(64,), critic_hidden_sizes=(2048,), activation="tanh")
    assert auto_device(critic, None, cuda_available=True)[0] == "cuda"
    # spaces the C++ paths cannot serve train on CUDA, and the reason is passed on
    dev, why = auto_device(small, "Dict observations", cuda_available=True)
    assert dev == "cuda" and "Dict observations" in why
    assert auto_device(SimpleNamespace(hidden_sizes=(64,), activation="elu"), None, True)[0] == "cuda"
    deep = SimpleNamespace(hidden_sizes=(8,) * 12, activation="tanh")
    assert auto_device(deep, None, cuda_available=True)[0] == "cuda"


def test_auto_device_in_run_and_settings_line(tmp_path, capsys, monkeypatch):
    import torch

    from pgfast import cli

    run = Run("ppo", "CartPole-v1", make_config("ppo", "CartPole-v1", num_envs=2, num_steps=8), device="auto")
    if not torch.cuda.is_available():
        assert run.device.type == "cpu" and run.device_note == "auto: no CUDA device"
    run.close()
    # with a CUDA device present the rule still keeps this small MLP on the CPU (its C++ paths)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    out = tmp_path / "r"
    argv = ["train", "ppo", "CartPole-v1", "--total-timesteps", "32", "--set", "num_envs=2", "num_steps=16",
            "--out", str(out), "--no-progress", "--no-tensorboard", "--eval-episodes", "0", "--device", "auto"]
    assert cli.main(argv) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].endswith("; paths: rollout native, update native; device: cpu (auto: the C++ paths serve "
                           "this MLP on CPU (widest hidden layer 64 < 1024 units))")
    assert json.loads((out / "run.json").read_text())["device"].startswith("cpu (auto: ")
