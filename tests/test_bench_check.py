"""The benchmark regression check (bench/conftest.py): floors, tolerance and best-of attempts."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def plumbing():
    spec = importlib.util.spec_from_file_location("pgfast_bench_conftest", ROOT / "bench" / "conftest.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _row(i, ratio):
    return {"id": i, "ours": 1.0, "peer": 1.0, "ratio": ratio, "target": None}


def test_regressions_use_the_tolerance_of_each_entry(plumbing):
    base = {"a": {"ratio": 10.0, "tolerance": 0.5}, "b": {"ratio": 10.0, "tolerance": 0.2}, "c": {"ratio": 10.0}}
    rows = [_row("a", 5.1), _row("b", 7.9), _row("c", 4.9), _row("new", 0.1)]
    bad = plumbing.regressions(rows, base)
    assert [m.split(":")[0] for m in bad] == ["b", "c"]  # "new" has no baseline entry
    assert "7.90x < 8.00x" in bad[0]


def test_best_of_keeps_the_best_ratio_over_attempts(plumbing, tmp_path):
    f = tmp_path / "best.json"
    first = plumbing.best_of([_row("a", 3.0), _row("b", 9.0)], f)
    assert {r["id"]: r["ratio"] for r in first} == {"a": 3.0, "b": 9.0}
    second = plumbing.best_of([_row("a", 6.0), _row("b", 2.0)], f)
    assert {r["id"]: r["ratio"] for r in second} == {"a": 6.0, "b": 9.0}
    assert {r["id"]: r["ratio"] for r in json.loads(f.read_text())} == {"a": 6.0, "b": 9.0}
    base = {"a": {"ratio": 10.0, "tolerance": 0.5}, "b": {"ratio": 10.0, "tolerance": 0.5}}
    assert [m.split(":")[0] for m in plumbing.regressions(first, base)] == ["a"]
    assert plumbing.regressions(second, base) == []
    f.write_text("not json")  # a damaged file counts as no earlier attempt
    assert {r["id"]: r["ratio"] for r in plumbing.best_of([_row("a", 1.0)], f)} == {"a": 1.0}


def test_ratio_rows_read_extra_info(plumbing):
    info = {"pgfast_steps_per_s": 100.0, "numpy_loop_steps_per_s": 10.0, "speedup_vs_numpy_loop": 10.0,
            "target_vs_numpy_loop": 4.0, "shape": "2x3"}
    (row,) = plumbing.ratio_rows("bench_x.py::t", info)
    assert row == {"id": "bench_x.py::t:numpy_loop", "ours": 100.0, "peer": 10.0, "ratio": 10.0, "target": 4.0}


def test_committed_baseline_is_well_formed(plumbing):
    data = json.loads((ROOT / "bench" / "baseline.json").read_text())
    assert {"cpu", "cores"} <= set(data["machine"])
    assert data["ratios"]
    for key, entry in data["ratios"].items():
        assert ":" in key and entry["ratio"] > 0 and 0 < entry.get("tolerance", 0.5) < 1, key


def test_gate_entries_catch_a_2x_slowdown_and_allow_run_to_run_noise(plumbing):
    """Each ratio that ``make bench-check`` compares fails at half its baseline (a tracked kernel
    twice as slow) and passes at 70% of it (the spread of healthy runs on the 2-core reference
    machine stays within that)."""
    base = json.loads((ROOT / "bench" / "baseline.json").read_text())["ratios"]
    gate = {k: v for k, v in base.items()
            if "test_gae_pgfast_vs_peers" in k or ("test_classic_steps_per_s" in k and "1024envs" in k)}
    assert len(gate) == 12
    for key, entry in gate.items():
        assert plumbing.regressions([_row(key, entry["ratio"] / 2)], base), key
        assert plumbing.regressions([_row(key, entry["ratio"] * 0.7)], base) == [], key


def test_baseline_update_refuses_a_busy_machine(plumbing, tmp_path, monkeypatch):
    """Ratios measured while other processes run come out too high (the peers lose more to them),
    so --bench-update-baseline leaves bench/baseline.json alone when the run started under load."""
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({"machine": {}, "ratios": {"a": {"ratio": 10.0, "tolerance": 0.35}}}))
    monkeypatch.setattr(plumbing, "BASELINE", baseline)
    monkeypatch.delenv("PGFAST_BENCH_ACCEPT_LOAD", raising=False)

    class Config:
        stash = pytest.Stash()
        rootpath = tmp_path

        @staticmethod
        def getoption(name):
            return name == "bench_update_baseline"

    class Reporter:
        lines: list = []

        def write_sep(self, sep, text):
            self.lines.append(text)

        def write_line(self, text):
            self.lines.append(text)

    for load, updated in ((3.5, False), (0.2, True)):
        Config.stash[plumbing._RESULTS] = [_row("a", 30.0)]
        Config.stash[plumbing._LOAD_AT_START] = load
        Reporter.lines = []
        plumbing.pytest_terminal_summary(Reporter(), 0, Config)
        ratio = json.loads(baseline.read_text())["ratios"]["a"]["ratio"]
        assert (ratio == 30.0) is updated, (load, Reporter.lines)
        assert any(("NOT updated" in line) is not updated for line in Reporter.lines)
