"""pgfast.study.variance: the statistics, the estimators' weights, and the
variance ordering of the blog's reductions on CartPole at the initial policy."""

import builtins
import csv

import numpy as np
import pytest
import torch

import pgfast
from pgfast.study import variance as V


def test_gradient_stats():
    g = torch.tensor([[1.0, 0.0], [3.0, 0.0], [2.0, 2.0], [2.0, -2.0]])
    var, cos = V.gradient_stats(g, torch.tensor([1.0, 0.0]))
    # mean (2, 0); per-coordinate unbiased variances 2/3 and 8/3
    assert var == pytest.approx((2 / 3 + 8 / 3) / 4)
    assert cos == pytest.approx(1.0)
    _, cos = V.gradient_stats(g, torch.tensor([0.0, 1.0]))
    assert cos == pytest.approx(0.0)


class _Buf:
    def __init__(self):
        T, N = 6, 2
        self.rewards = torch.ones(T, N)
        self.values = torch.full((T, N), 0.5)
        self.next_values = torch.full((T, N), 0.5)
        self.terminated = torch.zeros(T, N, dtype=torch.bool)
        self.truncated = torch.zeros(T, N, dtype=torch.bool)
        self.terminated[2, 0] = True  # column 0: episodes [0..2] and [3..5]


def test_estimator_weights():
    b = _Buf()
    W = V.estimator_weights(b, 1.0)
    assert W.shape == (len(V.ESTIMATORS), 6, 2)
    w = dict(zip(V.ESTIMATORS, W))
    # gamma = 1: total-return is the episode's return at every step
    np.testing.assert_array_equal(w["total-return"][:, 0].numpy(), [3, 3, 3, 3, 3, 3])
    np.testing.assert_array_equal(w["total-return"][:, 1].numpy(), [6] * 6)
    np.testing.assert_array_equal(w["reward-to-go"][:, 0].numpy(), [3, 2, 1, 3, 2, 1])
    np.testing.assert_array_equal(w["reward-to-go-baseline"][:, 0].numpy(), [2.5, 1.5, 0.5, 3.0, 2.0, 1.0])
    # gae-0 is the TD error, nstep-1 the same; gae-1 bootstraps at the rollout end
    np.testing.assert_array_equal(w["gae-0"][:, 1].numpy(), [1.0] * 6)
    np.testing.assert_array_equal(w["nstep-1"].numpy(), w["gae-0"].numpy())
    np.testing.assert_array_equal(w["gae-1"][:, 0].numpy(), [2.5, 1.5, 0.5, 3.0, 2.0, 1.0])


def test_write_csv_and_plot_hint_without_matplotlib(tmp_path, monkeypatch, capsys):
    rows = [dict(env="CartPole-v1", checkpoint="init", estimator=e, variance=1.0 + i, cosine=0.5,
                 repeats=3, batch_steps=8) for i, e in enumerate(V.ESTIMATORS)]
    V.write_csv(rows, tmp_path / "variance.csv")
    with open(tmp_path / "variance.csv") as f:
        got = list(csv.DictReader(f))
    assert list(got[0]) == list(V.CSV_FIELDS) and len(got) == len(V.ESTIMATORS)
    real_import = builtins.__import__

    def no_mpl(name, *a, **k):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_mpl)
    assert V.plot_variance(rows, tmp_path) == []
    assert 'pip install "pgfast-rl[plot]"' in capsys.readouterr().out


def test_reductions_lower_the_variance_on_cartpole(tmp_path):
    """At the initial policy: total-return > reward-to-go > reward-to-go-baseline."""
    s = V.Settings(repeats=20, ref_batches=20, refit_rounds=2, refit_batches=4, refit_epochs=5, checkpoints=("init",))
    rows = V.run_variance(["CartPole-v1"], tmp_path, s, seed=0, log=lambda m: None)
    var = {r["estimator"]: r["variance"] for r in rows}
    assert set(var) == set(V.ESTIMATORS)
    assert var["total-return"] > var["reward-to-go"] > var["reward-to-go-baseline"]
    cos = {r["estimator"]: r["cosine"] for r in rows}
    assert cos["reward-to-go"] > 0.5  # unbiased: close to the reference
    with open(tmp_path / "variance.csv") as f:
        got = list(csv.DictReader(f))
    assert {r["checkpoint"] for r in got} == {"init"} and {r["repeats"] for r in got} == {"20"}


def test_cli_variance_quick(tmp_path, monkeypatch):
    calls = {}

    def fake(envs, out, settings, seed, log):
        calls.update(envs=envs, out=out, settings=settings, seed=seed)
        return []

    monkeypatch.setattr(V, "run_variance", fake)
    from pgfast import cli

    assert cli.main(["experiment", "variance", "--envs", "CartPole-v1", "--quick", "--out", str(tmp_path)]) == 0
    assert calls["envs"] == ["CartPole-v1"] and calls["settings"] is V.QUICK and calls["seed"] == 0
    assert pgfast.nstep_returns is not None
