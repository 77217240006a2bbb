"""scripts/bench_history.py: every tracked ratio over the saved runs, as a table and one PNG."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "bench_history.py"


def _module():
    spec = importlib.util.spec_from_file_location("bench_history", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _runs(folder: Path) -> None:
    folder.mkdir(parents=True)
    for i, (a, b, load) in enumerate([(10.0, 4.0, 0.1), (11.0, 4.1, 2.0), (10.5, 3.0, 0.2), (9.0, 2.5, 0.3),
                                      (8.0, 2.4, 0.1)]):
        rows = [{"id": "bench_x.py::test_a:peer", "ratio": a}, {"id": "bench_x.py::test_b:peer", "ratio": b}]
        if i == 2:
            rows.append({"id": "bench_x.py::test_c:peer", "ratio": float("nan")})  # never tracked
        (folder / f"2026120{i}-000000.json").write_text(json.dumps({"machine": {"load_at_start": load},
                                                                    "ratios": rows}))
    (folder / "20261209-000000.json").write_text("{broken")


def test_table_and_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    mod = _module()
    _runs(tmp_path / "ratios")
    base = tmp_path / "baseline.json"
    base.write_text(json.dumps({"ratios": {"bench_x.py::test_a:peer": {"ratio": 10.0, "tolerance": 0.35}}}))
    assert mod.main(["--dir", str(tmp_path / "ratios"), "--baseline", str(base), "--out", str(tmp_path / "h")]) == 0
    out, err = capsys.readouterr()
    assert "skipping unreadable" in err
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in out.splitlines() if line.startswith("| bench_x")}
    assert set(rows) == {"bench_x.py::test_a:peer", "bench_x.py::test_b:peer"}
    a = rows["bench_x.py::test_a:peer"]
    assert a[:5] == ["5", "10", "8", "8", "11"] and a[5:7] == ["10", "6.5"]
    assert a[7] == "-14%"  # median of the last three (9.0) vs the first three (10.5): a drift, not yet a fall
    assert rows["bench_x.py::test_b:peer"][5] == "-"
    png = tmp_path / "h.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "h.md").read_text().count("| bench_x") == 2


def test_no_runs_is_one_line(tmp_path, capsys):
    mod = _module()
    assert mod.main(["--dir", str(tmp_path / "none"), "--out", str(tmp_path / "h")]) == 1
    assert "no saved ratios" in capsys.readouterr().err
