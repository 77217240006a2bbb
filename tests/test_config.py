"""Tests of pgfast.config (Config base, field docs, parsing) and the registry in pgfast.algos."""

from __future__ import annotations

import dataclasses
import json
from typing import Optional, Tuple

import pytest

import pgfast
from pgfast import algos, config
from pgfast.presets import PRESETS, STUDY_TIMESTEPS


def test_parse_value_types():
    assert config.parse_value("true", bool) is True
    assert config.parse_value("No", bool) is False
    assert config.parse_value("1e5", int) == 100000
    assert config.parse_value("3e-4", float) == 3e-4
    assert config.parse_value("none", Optional[float]) is None
    assert config.parse_value("0.02", Optional[float]) == 0.02
    assert config.parse_value("64,64", Tuple[int, ...]) == (64, 64)
    with pytest.raises(ValueError, match="lr"):
        config.parse_value("abc", float, name="lr")
    with pytest.raises(ValueError, match="integer"):
        config.parse_value("1.5", int)
    with pytest.raises(ValueError, match="boolean"):
        config.parse_value("maybe", bool)


def test_study_budgets_and_unknown_env():
    assert algos.study_timesteps("CartPole-v1") == 100_000
    assert algos.study_timesteps("Pendulum-v1") == 300_000
    assert algos.study_timesteps("HalfCheetah-v5") == 1_000_000
    assert algos.study_timesteps("NoSuchEnv-v0", default=7) == 7
    assert algos.get_preset("ppo", "NoSuchEnv-v0") == {}
    with pytest.raises(ValueError, match="algo"):
        algos.get_preset("a2c", "CartPole-v1")


def test_one_registry_of_algorithm_names():
    assert set(algos.ALGOS) == {"vpg", "trpo", "ppo"}
    assert set(PRESETS) <= set(algos.ALGOS)
    for name, cls in algos.ALGOS.items():
        assert cls.name == name
        assert algos.get_algo(name.upper()) is cls
        assert issubclass(cls.Config, config.BaseConfig)
    with pytest.raises(ValueError, match="did you mean ppo"):
        algos.get_algo("ppp")


def test_presets_hold_only_valid_fields():
    for algo, per_env in PRESETS.items():
        for env_id, fields in per_env.items():
            cfg = algos.make_config(algo, env_id)
            for k, v in fields.items():
                assert getattr(cfg, k) == (tuple(v) if isinstance(v, list) else v), (algo, env_id, k)
    assert set(STUDY_TIMESTEPS) >= {"CartPole-v1", "Pendulum-v1", "HalfCheetah-v5"}


def test_make_config_merges_preset_then_fields():
    cfg = algos.make_config("ppo", "CartPole-v1", num_envs=3, num_minibatches=1)
    assert cfg.num_envs == 3 and cfg.num_steps == PRESETS["ppo"]["CartPole-v1"]["num_steps"]
    untuned = algos.make_config("ppo", "CartPole-v1", tuned=False)
    assert untuned == algos.config_class("ppo")()
    assert algos.make_config("ppo") == algos.config_class("ppo")()


@pytest.mark.parametrize("call", [
    lambda: algos.make_config("ppo", "CartPole-v1", lerning_rate=1e-3),
    lambda: algos.config_class("trpo").from_fields({"max_kll": 0.1}),
    lambda: config.parse_overrides(["lerning_rate=1"], {"ppo": algos.config_class("ppo")}),
    lambda: pgfast.train("ppo", "CartPole-v1", 64, lerning_rate=1e-3),
])
def test_unknown_field_says_did_you_mean(call):
    pattern = r"'lerning_rate' \(did you mean learning_rate\?\)|max_kll.*did you mean max_kl"
    with pytest.raises(ValueError, match=pattern):
        call()


def test_parse_overrides_scopes_and_errors():
    cfgs = {"ppo": algos.config_class("ppo"), "vpg": algos.config_class("vpg")}
    out = config.parse_overrides(["gamma=0.9", "ppo.clip_coef=0.1", "vpg.baseline=false"], cfgs)
    assert out == {"ppo": {"gamma": 0.9, "clip_coef": 0.1}, "vpg": {"gamma": 0.9, "baseline": False}}
    with pytest.raises(ValueError, match="clip_coef"):  # not a VPG field
        config.parse_overrides(["clip_coef=0.1"], cfgs)
    with pytest.raises(ValueError, match="its own option"):
        config.parse_overrides(["seed=3"], cfgs)
    with pytest.raises(ValueError, match="field=value"):
        config.parse_overrides(["gamma"], cfgs)
    with pytest.raises(ValueError, match="does not run"):
        config.parse_overrides(["trpo.max_kl=0.1"], cfgs)
    with pytest.raises(ValueError, match="expected a number"):
        config.parse_overrides(["gamma=high"], cfgs)


@pytest.mark.parametrize("algo", list(algos.ALGOS))
def test_every_field_documented_and_listed(algo):
    cls = algos.config_class(algo)
    docs = config.field_docs(cls)
    assert list(docs) == [f.name for f in dataclasses.fields(cls)]
    assert all(docs.values()), [k for k, v in docs.items() if not v]
    text = config.format_help(cls, {"num_envs": 3})
    lines = text.splitlines()
    assert len(lines) == len(docs)
    assert any(line.split()[0] == "num_envs" and "= 3*" in line for line in lines)
    assert not any("= 3*" in line for line in lines if line.split()[0] != "num_envs")


def test_cli_train_help_lists_fields(capsys):
    from pgfast import cli

    with pytest.raises(SystemExit) as e:
        cli.main(["train", "trpo", "CartPole-v1", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name, doc in config.field_docs(algos.config_class("trpo")).items():
        assert name in out and doc in out
    assert "max_kl" in out and "0.02*" in out  # CartPole's TRPO preset value, marked


def test_cli_unknown_set_field_one_line_error(capsys):
    from pgfast import cli

    assert cli.main(["train", "ppo", "CartPole-v1", "--set", "lerning_rate=1", "--out", "/nonexistent/x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did you mean learning_rate" in err[0]


def test_cli_version(capsys):
    from pgfast import cli

    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"pgfast {pgfast.__version__}"


def test_train_prints_which_settings_it_uses(tmp_path, capsys, box_env_without_preset):
    from pgfast import cli

    argv = ["train", "ppo", "CartPole-v1", "--total-timesteps", "64", "--set", "num_envs=2", "num_steps=16",
            "num_minibatches=1", "update_epochs=1", "--out", str(tmp_path / "r"), "--no-progress",
            "--no-tensorboard", "--eval-episodes", "0", "--device", "cpu"]
    assert cli.main(argv) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == ("settings: preset ppo/CartPole-v1; --set num_envs=2, num_steps=16, num_minibatches=1, "
                      "update_epochs=1; paths: rollout native, update native, env core; device: cpu")
    meta = json.loads((tmp_path / "r" / "run.json").read_text())
    assert "settings: " + meta["settings"] + "; paths: rollout native, update native, env core; device: cpu" == err[0]
    assert meta["device"] == "cpu"
    assert (meta["algo"], meta["env_id"], meta["seed"]) == ("ppo", "CartPole-v1", 0)
    assert meta["config"]["num_envs"] == 2 and meta["config"]["total_timesteps"] == 64
    assert meta["resumes"] == [] and meta["pgfast_version"] == pgfast.__version__
    # a resume keeps the original record and appends itself
    assert cli.main(["train", "--resume", str(tmp_path / "r"), "--total-timesteps", "128", "--no-progress",
                     "--no-tensorboard", "--eval-episodes", "0"]) == 0
    meta2 = json.loads((tmp_path / "r" / "run.json").read_text())
    assert meta2["settings"] == meta["settings"] and meta2["created"] == meta["created"]
    assert [r["step"] for r in meta2["resumes"]] == [64] and meta2["resumes"][0]["total_timesteps"] == 128
    assert algos.resolve_settings("ppo", box_env_without_preset)[1].startswith("defaults for Box actions")
    assert algos.resolve_settings("ppo", box_env_without_preset)[0]["num_steps"] == 2048


@pytest.mark.parametrize("name", ["hidden_sizes", "actor_hidden_sizes", "critic_hidden_sizes"])
def test_hidden_sizes_fields_are_checked(name):
    for bad in ((64, 0), (64, -3), (2.5,), 7, ("64",), (True,)):
        with pytest.raises(ValueError, match=name):
            algos.make_config("ppo", **{name: bad})
    assert getattr(algos.make_config("ppo", **{name: [32, 16.0]}), name) == (32, 16)
    assert getattr(algos.make_config("ppo", **{name: ()}), name) == ()


def test_actor_and_critic_sizes_flow_from_the_command_line_to_the_policy():
    types = {"ppo": algos.ALGOS["ppo"].Config}
    got = config.parse_overrides(["critic_hidden_sizes=32,16", "actor_hidden_sizes=none",
                                  "hidden_sizes=8"], types)["ppo"]
    assert got == {"critic_hidden_sizes": (32, 16), "actor_hidden_sizes": None, "hidden_sizes": (8,)}
    assert config.parse_value("()", config.field_types(types["ppo"])["actor_hidden_sizes"]) == ()
    cfg = algos.make_config("ppo", "Pendulum-v1", **got)
    assert cfg.to_dict()["critic_hidden_sizes"] == (32, 16)  # what run.json and checkpoints keep
    assert cfg.actor_hidden_sizes is None
    for algo in ("ppo", "vpg", "trpo"):
        run = pgfast.trainer.Run(algo, "Pendulum-v1", algos.make_config(algo, "Pendulum-v1", **got),
                                 seed=0, device="cpu")
        (aw, _), (cw, _) = run.policy.layer_tensors()
        assert [tuple(w.shape) for w in aw] == [(3, 8), (8, 1)]
        assert [tuple(w.shape) for w in cw] == [(3, 32), (32, 16), (16, 1)]
        assert run.paths == {"rollout": "native", "update": "native", "env": "core"}
        run.learn(run.config.num_envs * run.config.num_steps)
        run.close()
    # a saved config of an earlier release (no such fields) still loads
    old = {k: v for k, v in cfg.to_dict().items() if "_hidden_sizes" not in k}
    assert types["ppo"].from_saved(old).critic_hidden_sizes is None


def test_every_mujoco_task_has_a_ppo_and_a_trpo_preset():
    from pgfast import presets

    assert len(presets.MUJOCO_TASKS) == 11 and len(set(presets.MUJOCO_TASKS)) == 11
    for env_id in presets.MUJOCO_TASKS:
        for algo in ("ppo", "trpo"):
            fields, source = algos.resolve_settings(algo, env_id)
            assert source == f"preset {algo}/{env_id}"
            algos.make_config(algo, **fields)  # every preset is a valid Config
    # the zoo's per-env changes and the exceptions chosen on seeds 0-2 (docs/PRESETS.md)
    trpo = presets.PRESETS["trpo"]
    assert trpo["HalfCheetah-v5"]["max_kl"] == 0.04 and trpo["Swimmer-v5"]["gamma"] == 0.9999
    assert trpo["Humanoid-v5"] == presets.ZOO_TRPO_MUJOCO
    assert trpo["Hopper-v5"] == dict(presets.ZOO_TRPO_MUJOCO, gamma=0.995)
    assert trpo["Walker2d-v5"] == dict(presets.BOX_TRPO, gamma=0.995, num_minibatches=16)
    assert trpo["Swimmer-v5"]["num_envs"] * trpo["Swimmer-v5"]["num_steps"] == 2048
    assert trpo["InvertedPendulum-v5"] == presets.BOX_TRPO == presets.DEFAULTS_BY_ACTION_SPACE["Box"]["trpo"]
