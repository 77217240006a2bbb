"""Tests of pgfast.tune (Optuna search): search spaces, outputs, resume, bad input, Ray."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import warnings

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

    # an interrupted search: a trial whose process died (its heartbeat stopped) is marked
    # failed and queued again, then the search goes on
    storage = f"sqlite:///{(tmp_path / 'tune.db').resolve()}"
    study = optuna.load_study(study_name="ppo-CartPole-v1", storage=tune._storage(storage, 1))
    with pytest.warns(UserWarning, match="Heartbeat"):  # Optuna expects heartbeats from optimize()
        killed = study.ask()  # never told: as if the process was killed mid-trial
    study._storage.record_heartbeat(killed._trial_id)
    time.sleep(3.1)  # older than the grace period (2 s, in whole seconds) of heartbeat_interval=1
    logs.clear()
    res = tune.tune("ppo", "CartPole-v1", trials=3, budget=TINY, out=tmp_path, seeds=[0], log=logs.append,
                    heartbeat_interval=1)
    assert any("resuming" in m and "2 of 3 trials counted" in m and "1 interrupted or failed" in m for m in logs)
    trials = optuna.load_study(study_name="ppo-CartPole-v1", storage=storage).trials
    states = [t.state.name for t in trials]
    assert states.count("FAIL") == 1 and states.count("COMPLETE") + states.count("PRUNED") == 3
    assert [t.system_attrs.get("failed_trial") for t in trials].count(killed.number) == 1  # the retry
    assert res["trials"] == 4


@pytest.mark.parametrize("kwargs,match", [
    (dict(algo="a2c"), "algo must be one of"),
    (dict(env_id="NoSuchEnv-v9"), "unknown environment"),
    (dict(env_id="no_such_module:CartPole-v1"), "cannot import module 'no_such_module'"),
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
    study = optuna.load_study(study_name="ppo-CartPole-v1", storage=storage)
    counted = tune._counted(study)
    assert counted < 6
    # the interrupted trial ended with its training iteration and was recorded (storage left clean:
    # nothing RUNNING, and the only failure, if any, is the interruption)
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert optuna.trial.TrialState.RUNNING not in states, states
    assert all(t.user_attrs.get("fail_reason") == "interrupted (Ctrl-C)" for t in study.get_trials(deepcopy=False)
               if t.state == optuna.trial.TrialState.FAIL)
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"{counted} of 6 trials counted" in done.stdout + done.stderr
    assert (out / "best.json").exists()


def _fake_evaluate(outcomes):
    """An evaluate_params stand-in (no training) that plays ``outcomes`` in order: a float
    score, an exception to raise, or a list of (step, value) reports then a score."""
    queue = list(outcomes)

    def fake(algo, env_id, params, budget, seeds, report=None, eval_episodes=10, score="mean", stop=None):
        what = queue.pop(0) if queue else float(params["learning_rate"]) * 1000
        if isinstance(what, BaseException):
            raise what
        if isinstance(what, tuple):
            curve, what = what
            for step, value in curve:
                report(step, value)
        return {"value": what, "deterministic": [what] * len(seeds), "stochastic": [what] * len(seeds)}

    return fake


def test_failed_trials_are_recorded_and_stop_the_search_after_max_failures(tmp_path, monkeypatch):
    """Exceptions and NaN scores fail a trial (reason stored and logged); a success resets the
    count; max_failures failures in a row end the search with one line naming the last."""
    monkeypatch.setattr(tune, "evaluate_params", _fake_evaluate(
        [RuntimeError("diverged\nsecond line"), math.nan, 10.0, RuntimeError("boom"), math.inf, math.nan]))
    logs = []
    with pytest.raises(tune.TuneFailed, match=r"^stopped after 3 failed trials in a row; the last, trial 5: "
                                              r"the score is nan \(deterministic returns per seed nan\)") as ex:
        tune.tune("ppo", "CartPole-v1", trials=10, budget=TINY, out=tmp_path, max_failures=3, log=logs.append)
    assert "\n" not in str(ex.value)
    study = optuna.load_study(study_name="ppo-CartPole-v1", storage=f"sqlite:///{tmp_path / 'tune.db'}")
    assert [t.state.name for t in study.trials] == ["FAIL", "FAIL", "COMPLETE", "FAIL", "FAIL", "FAIL"]
    reasons = [t.user_attrs.get("fail_reason") for t in study.trials]
    assert reasons[0] == "RuntimeError: diverged" and reasons[2] is None
    assert reasons[1].startswith("the score is nan") and reasons[4].startswith("the score is inf")
    assert "trial 3: failed: RuntimeError: boom" in logs
    assert (tmp_path / "trials.csv").read_text().count("RuntimeError: boom") == 1


def test_cli_max_failures_prints_one_line(tmp_path, monkeypatch, capsys):
    from pgfast import cli

    monkeypatch.setattr(tune, "evaluate_params", _fake_evaluate([ValueError("bad setting")] * 2))
    code = cli.main(["tune", "ppo", "CartPole-v1", "--trials", "5", "--budget", str(TINY), "--max-failures", "2",
                     "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1] == ("pgfast tune: stopped after 2 failed trials in a row; the last, trial 1: ValueError: bad "
                       f"setting (all in {tmp_path / 'trials.csv'})")
    assert not any("Traceback" in line for line in err)


def test_pruned_trials_are_listed_and_the_summary_counts_them(tmp_path, monkeypatch):
    good = [(TINY // 2, 100.0)]
    bad = [(TINY // 2, 1.0)]
    monkeypatch.setattr(tune, "evaluate_params", _fake_evaluate([(good, 50.0), (good, 60.0), (bad, 0.0)]))
    logs = []
    res = tune.tune("ppo", "CartPole-v1", trials=3, budget=TINY, out=tmp_path, log=logs.append)
    assert f"trial 2: pruned at step {TINY // 2} (training return 1.0, below the median of earlier trials at " \
           "that step)" in logs
    assert sum(m.startswith("trial ") for m in logs) == 3
    assert res["complete"] == 2 and res["pruned"] == 1 and res["value"] == 60.0
    assert "# best of 2 finished trials (1 pruned): mean deterministic eval over seeds 60.0 (trial 1)" in \
        (tmp_path / "best_preset.py").read_text()

    # resumed with another budget: no pruning before two trials at that budget have finished
    monkeypatch.setattr(tune, "evaluate_params", _fake_evaluate([(bad, 5.0)]))
    logs.clear()
    res = tune.tune("ppo", "CartPole-v1", trials=1, budget=2 * TINY, out=tmp_path, log=logs.append)
    assert res["complete"] == 1 and res["value"] == 5.0 and not any(": pruned at" in m for m in logs)


def test_resume_with_another_budget(tmp_path, monkeypatch):
    """The budget shapes the choices of num_steps; a search resumed with another budget runs
    (Optuna cannot mix choice sets under one name) and counts and compares only its own trials."""
    monkeypatch.setattr(tune, "evaluate_params", _fake_evaluate([]))
    first = tune.tune("ppo", "CartPole-v1", trials=6, budget=TINY, out=tmp_path, log=lambda m: None)
    logs = []
    res = tune.tune("ppo", "CartPole-v1", trials=8, budget=8 * TINY, out=tmp_path, log=logs.append)
    assert first["complete"] == 6 and res["complete"] == 8 and res["trials"] == 14 and res["budget"] == 8 * TINY
    assert any("holds trials at budget(s) 512" in m for m in logs)
    study = optuna.load_study(study_name="ppo-CartPole-v1", storage=f"sqlite:///{tmp_path / 'tune.db'}")
    assert [t.user_attrs["budget"] for t in study.trials] == [TINY] * 6 + [8 * TINY] * 8
    assert study.trials[res["trial"]].user_attrs["budget"] == 8 * TINY


def test_two_processes_share_one_storage(tmp_path):
    """A second `pgfast tune` on the storage of a live search neither fails its running trial nor
    counts it; the first process can still report it."""
    storage = f"sqlite:///{(tmp_path / 'tune.db').resolve()}"
    tune.tune("ppo", "CartPole-v1", trials=1, budget=TINY, out=tmp_path, log=lambda m: None)  # creates the study
    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        live_storage = optuna.storages.RDBStorage(storage, heartbeat_interval=30)
    study = optuna.load_study(study_name="ppo-CartPole-v1", storage=live_storage)
    with pytest.warns(UserWarning, match="Heartbeat"):  # this process plays a live search's trial
        live = study.ask()
    study._storage.record_heartbeat(live._trial_id)
    cmd = [sys.executable, "-m", "pgfast.cli", "tune", "ppo", "CartPole-v1", "--trials", "3", "--budget", str(TINY),
           "--out", str(tmp_path)]
    other = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                           env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert other.returncode == 0, other.stderr
    assert "1 of 3 trials counted" in other.stderr and "1 trial(s) running in another process" in other.stderr
    study.tell(live, 1.0)  # still RUNNING: the old start-up marked it failed ("Cannot tell a FAIL trial")
    states = [t.state.name for t in optuna.load_study(study_name="ppo-CartPole-v1", storage=storage).trials]
    assert "FAIL" not in states and states[1] == "COMPLETE"
    assert states.count("COMPLETE") + states.count("PRUNED") == 4


def test_module_env_id_form(tmp_path, monkeypatch):
    """gymnasium's module:EnvId-vN form: the module is imported, as gymnasium.make does."""
    monkeypatch.setattr(tune, "evaluate_params", _fake_evaluate([]))
    res = tune.tune("ppo", "gymnasium.envs.classic_control:CartPole-v1", trials=1, budget=TINY, out=tmp_path,
                    log=lambda m: None)
    assert res["complete"] == 1 and res["env_id"] == "gymnasium.envs.classic_control:CartPole-v1"
