"""Benchmark plumbing: ratio table, machine record and the regression check.

Every benchmark stores its ratios against peers measured in the same run in
``benchmark.extra_info`` as ``speedup_vs_<peer>`` (or ``speedup_<what>``), its
target as ``target_vs_<peer>`` / ``target_speedup``. Absolute times do not transfer
between machines; ratios do (roughly), so they are what is tracked:

* every timed run prints one table: benchmark, ours, peer, ratio, target, baseline;
* the ratios and the machine (CPU model, cores) are saved to
  ``.benchmarks/ratios/<time>.json``;
* ``--bench-check`` fails the run when a ratio falls below its accepted value in
  ``bench/baseline.json`` by more than that entry's tolerance (``make bench-check``);
* ``--bench-best-of FILE`` keeps the best ratio of each benchmark seen so far in FILE
  and checks that one: ``make bench-check`` measures up to three times, so a ratio
  fails only when it stays below its floor in every attempt (a burst of load from
  another tenant of a shared machine does not fail CI; a real regression does);
* ``--bench-update-baseline`` writes the measured ratios into ``bench/baseline.json``
  (keeping existing tolerances), to accept a new level after a deliberate change. It
  refuses when the machine was busy as the run started (1-minute load average >= 1):
  the peers lose more to other processes than pgfast does (EnvPool hands each step to
  a worker thread; gymnasium's SyncVectorEnv makes 25 ms Python calls), so ratios
  measured under load come out 2-3x high, and a baseline taken then fails every idle
  run afterwards (Pendulum vs EnvPool was once accepted at 64x; idle runs measure
  21-29x). ``PGFAST_BENCH_ACCEPT_LOAD=1`` overrides.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import platform
import sys
from typing import Any, Dict, List

import pytest

# Benchmarks import their shared peers module (_peers.py) from this folder.
HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))

BASELINE = HERE / "baseline.json"
DEFAULT_TOLERANCE = 0.35  # floor = 65% of the baseline: a 2x slowdown (50%) is caught
MAX_BASELINE_LOAD = 1.0
_LOAD_AT_START = pytest.StashKey[float]()
_RESULTS = pytest.StashKey[List[Dict[str, Any]]]()


def load_average() -> float:
    """The 1-minute load average (0.0 where the system does not report one)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return 0.0


def machine() -> Dict[str, Any]:
    """CPU model and core count of this machine (what every saved run records)."""
    model = platform.processor() or "unknown"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}


def ratio_rows(name: str, info: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The tracked ratios of one benchmark's ``extra_info`` (one row per peer)."""
    rows = []
    for key, value in info.items():
        if not key.startswith("speedup_") or not isinstance(value, (int, float)):
            continue
        peer = key[len("speedup_vs_"):] if key.startswith("speedup_vs_") else key[len("speedup_"):]
        ours = next((v for k, v in info.items() if k.startswith("pgfast_") and isinstance(v, (int, float))), None)
        theirs = next((v for k, v in info.items() if k.startswith(peer + "_") and isinstance(v, (int, float))),
                      None)
        target = next((info[k] for k in (f"target_vs_{peer}", f"target_speedup_{peer}", "target_speedup")
                       if k in info), None)
        rows.append({"id": f"{name}:{peer}", "ours": ours, "peer": theirs, "ratio": float(value),
                     "target": target})
    return rows


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pgfast ratios")
    group.addoption("--bench-check", action="store_true",
                    help="fail when a ratio drops below bench/baseline.json beyond its tolerance")
    group.addoption("--bench-best-of", default=None, metavar="FILE",
                    help="check the best ratio per benchmark over the attempts recorded in FILE (and add this one)")
    group.addoption("--bench-update-baseline", action="store_true",
                    help="write the measured ratios into bench/baseline.json")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_RESULTS] = []
    config.stash[_LOAD_AT_START] = load_average()


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    """Learning checks (``@pytest.mark.learning``) run only when ``-m`` names them."""
    if "learning" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="learning check: run with -m learning (minutes to an hour)")
    for item in items:
        if item.get_closest_marker("learning") is not None:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    yield
    bm = getattr(item, "funcargs", {}).get("benchmark")
    if bm is None or getattr(bm, "disabled", True):
        return
    name = item.nodeid.split("/")[-1]
    item.config.stash[_RESULTS].extend(ratio_rows(name, dict(bm.extra_info)))


def _load_baseline() -> Dict[str, Dict[str, float]]:
    if not BASELINE.exists():
        return {}
    return json.loads(BASELINE.read_text())["ratios"]


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.3e}"
    return str(v)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    rows = config.stash[_RESULTS]
    if not rows:
        return
    base = _load_baseline()
    tr = terminalreporter
    m = machine()
    m["load_at_start"] = config.stash[_LOAD_AT_START]
    tr.write_sep("=", f"ratios vs peers (same run) on {m['cpu']}, {m['cores']} cores, "
                      f"load average {m['load_at_start']:.2f} at the start")
    header = ("benchmark:peer", "ours", "peer", "ratio", "target", "baseline")
    table = [header] + [(r["id"], _fmt(r["ours"]), _fmt(r["peer"]), f"{r['ratio']:.2f}x",
                         _fmt(r["target"]), _fmt(base.get(r["id"], {}).get("ratio"))) for r in rows]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for row in table:
        tr.write_line("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                                for i, (c, w) in enumerate(zip(row, widths))))
    out = pathlib.Path(config.rootpath) / ".benchmarks" / "ratios"
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    (out / f"{stamp}.json").write_text(json.dumps({"machine": m, "ratios": rows}, indent=1))
    busy = m["load_at_start"] >= MAX_BASELINE_LOAD and os.environ.get("PGFAST_BENCH_ACCEPT_LOAD") != "1"
    if config.getoption("bench_update_baseline") and busy:
        tr.write_line(f"baseline NOT updated: the load average was {m['load_at_start']:.2f} as the run started "
                      f"(other processes running): ratios measured then are too high (see bench/conftest.py); "
                      f"rerun on an idle machine, or set PGFAST_BENCH_ACCEPT_LOAD=1")
    elif config.getoption("bench_update_baseline"):
        data = json.loads(BASELINE.read_text()) if BASELINE.exists() else {"ratios": {}}
        for r in rows:
            old = data["ratios"].get(r["id"], {})
            data["ratios"][r["id"]] = {"ratio": round(r["ratio"], 3),
                                       "tolerance": old.get("tolerance", DEFAULT_TOLERANCE)}
        data["machine"] = m
        BASELINE.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        tr.write_line(f"baseline updated: {BASELINE}")


def regressions(rows: List[Dict[str, Any]], base: Dict[str, Dict[str, float]]) -> List[str]:
    """Messages for every ratio below ``baseline * (1 - tolerance)``."""
    bad = []
    for r in rows:
        b = base.get(r["id"])
        if b is None:
            continue
        floor = b["ratio"] * (1.0 - b.get("tolerance", DEFAULT_TOLERANCE))
        if r["ratio"] < floor:
            bad.append(f"{r['id']}: {r['ratio']:.2f}x < {floor:.2f}x (baseline {b['ratio']:.2f}x, "
                       f"tolerance {b.get('tolerance', DEFAULT_TOLERANCE):.0%})")
    return bad


def best_of(rows: List[Dict[str, Any]], path: pathlib.Path) -> List[Dict[str, Any]]:
    """Merge ``rows`` with the best ratio per id stored in ``path`` (earlier attempts),
    write the merged best back and return it."""
    best: Dict[str, Dict[str, Any]] = {}
    if path.exists():
        try:
            best = {r["id"]: r for r in json.loads(path.read_text())}
        except (ValueError, KeyError, TypeError):
            best = {}
    for r in rows:
        if r["id"] not in best or r["ratio"] > best[r["id"]]["ratio"]:
            best[r["id"]] = r
    path.write_text(json.dumps(list(best.values()), indent=1))
    return list(best.values())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if not config.getoption("bench_check"):
        return
    rows = config.stash[_RESULTS]
    base = _load_baseline()
    if not rows:
        print("\nbench-check: no ratios were measured (benchmarks disabled or all skipped)", file=sys.stderr)
        session.exitstatus = 1
        return
    best_file = config.getoption("bench_best_of")
    if best_file:
        rows = best_of(rows, pathlib.Path(best_file))
    checked = [r for r in rows if r["id"] in base]
    bad = regressions(rows, base)
    print(f"\nbench-check: {len(checked)} ratios compared with {BASELINE.name}; {len(bad)} regressions",
          file=sys.stderr)
    for msg in bad:
        print("  REGRESSION " + msg, file=sys.stderr)
    if bad or not checked:
        session.exitstatus = 1
