"""Tests of pgfast.tune (Optuna search): search spaces, outputs, resume, bad input, Ray."""

from __future__ import annotations

import json

import pytest

optuna = pytest.importorskip("optuna", reason="optuna not installed (pip install pgfast-rl[tune])")

from pgfast import algos, tune  # noqa: E402

TINY = 512  # env steps per seed (the smallest budget the search spaces allow is 4 x 32)


@pytest.mark.parametrize("algo", list(algos.ALGOS))
def test_search_space_names_real_fields_and_samples_valid_configs(algo):
    space = tune.SEARCH_SPACES[algo]
    assert set(space) <= set(algos.config_class(algo).field_names())
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(30):
        trial = study.ask()
        params = tune.sample_params(trial, algo, budget=4096)
        cfg = algos.make_config(algo, **params)  # every sample is a valid Config
        assert cfg.num_envs * cfg.num_steps * 4 <= 4096
        for name, spec in space.items():
            if spec[0] in ("log", "float"):
                assert spec[1] <= params[name] <= spec[2]
            elif name != "num_minibatches":
                assert params[name] in spec[1]
        study.tell(trial, 0.0)


def test_local_search_writes_outputs_and_resumes(tmp_path):
    logs = []
    res = tune.tune("ppo", "CartPole-v1", trials=2, budget=TINY, out=tmp_path, seeds=[0], log=logs.append)
    assert res["complete"] == 2 and res["trials"] == 2
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["params"] == res["params"] and set(best["params"]) <= set(tune.SEARCH_SPACES["ppo"])
    namespace = {"PRESETS": {"ppo": {}}}
    exec((tmp_path / "best_preset.py").read_text(), namespace)  # the snippet is valid Python
    preset = namespace["PRESETS"]["ppo"]["CartPole-v1"]
    assert algos.make_config("ppo", **preset).num_envs == best["params"]["num_envs"]
    assert (tmp_path / "trials.csv").read_text().count("\n") == 3

    # an interrupted search: a trial left RUNNING is marked failed, then the search goes on
    storage = f"sqlite:///{(tmp_path / 'tune.db').resolve()}"
    study = optuna.load_study(study_name="ppo-CartPole-v1", storage=storage)
    study.ask()  # never told: as if the process was killed mid-trial
    logs.clear()
    res = tune.tune("ppo", "CartPole-v1", trials=3, budget=TINY, out=tmp_path, seeds=[0], log=logs.append)
    assert any("resuming" in m and "2 of 3 trials counted" in m and "1 interrupted or failed" in m for m in logs)
    states = [t.state.name for t in optuna.load_study(study_name="ppo-CartPole-v1", storage=storage).trials]
    assert states.count("FAIL") == 1 and states.count("COMPLETE") + states.count("PRUNED") == 3
    assert res["trials"] == 4


@pytest.mark.parametrize("kwargs,match", [
    (dict(algo="a2c"), "algo must be one of"),
    (dict(env_id="NoSuchEnv-v9"), "unknown environment"),
    (dict(trials=0), "trials must be"),
    (dict(budget=100), "budget must be at least"),
    (dict(seeds=[0, 0]), "seeds must be distinct"),
    (dict(backend="slurm"), "backend must be"),
])
def test_bad_input_is_one_clear_error(tmp_path, kwargs, match):
    args = dict(algo="ppo", env_id="CartPole-v1", trials=1, budget=TINY, out=tmp_path, seeds=[0])
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        tune.tune(**args)
    assert not (tmp_path / "tune.db").exists()


@pytest.mark.slow
def test_ray_backend_with_a_local_ray(tmp_path):
    ray = pytest.importorskip("ray", reason="ray not installed (pip install pgfast-rl[ray])")
    try:
        res = tune.tune("ppo", "CartPole-v1", trials=2, budget=TINY, out=tmp_path, seeds=[0], backend="ray",
                        workers=2, log=lambda m: None)
    finally:
        ray.shutdown()
    assert res["complete"] == 2 and (tmp_path / "best.json").exists()


def test_ctrl_c_stops_the_cli_cleanly_and_the_rerun_resumes(tmp_path):
    """SIGINT in the middle of a search: one line on stderr (no traceback) that says how to
    resume; the unfinished trial is not counted and the rerun completes the search."""
    import os
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    out = tmp_path / "t"
    cmd = [sys.executable, "-m", "pgfast.cli", "tune", "ppo", "CartPole-v1", "--trials", "6", "--budget",
           "4096", "--workers", "1", "--out", str(out)]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    deadline = time.monotonic() + 120
    storage = f"sqlite:///{(out / 'tune.db').resolve()}"
    db = out / "tune.db"
    while time.monotonic() < deadline:  # until a trial has started (trials take ~0.1-1 s)
        # read the file with sqlite3 itself: opening it with optuna while the child creates
        # the schema would race the child's CREATE TABLE
        if db.exists():
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
            try:
                if con.execute("SELECT count(*) FROM trials").fetchone()[0] > 0:
                    break
            except sqlite3.OperationalError:  # the schema is not created yet
                pass
            finally:
                con.close()
        time.sleep(0.02)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "Traceback" not in err and "rerun the same command to resume" in err
    counted = tune._counted(optuna.load_study(study_name="ppo-CartPole-v1", storage=storage))
    assert counted < 6
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"{counted} of 6 trials counted" in done.stdout + done.stderr
    assert (out / "best.json").exists()
