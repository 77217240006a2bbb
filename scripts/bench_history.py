"""Every tracked benchmark ratio over the saved runs: one PNG and one table (``make bench-history``).

Each timed benchmark run saves its ratios against peers to ``.benchmarks/ratios/<time>.json``
(bench/conftest.py). A ratio falling below its floor fails ``make bench-check``; a slow drift
does not, so this draws the whole history: one small panel per tracked ratio (ratio per run,
in run order, with its accepted baseline and floor from bench/baseline.json; runs started on
a busy machine, load average >= 1, drawn hollow), and a table with the first, last, lowest and
highest value, the baseline and the change of the last three runs against the first three.

    python scripts/bench_history.py [--dir .benchmarks/ratios] [--out build/bench-history]
    -> build/bench-history.png, build/bench-history.md (also printed)
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TOLERANCE = 0.35  # as bench/conftest.py: floor = (1 - tolerance) * baseline

Point = Tuple[str, float, float]  # (run stamp, ratio, load average at the start)


def read_runs(folder: Path) -> Dict[str, List[Point]]:
    """ratio id -> [(run stamp, ratio, load)] in run order, from every readable run file."""
    series: Dict[str, List[Point]] = {}
    for f in sorted(folder.glob("*.json")):
        try:
            data = json.loads(f.read_text())
            load = float(data.get("machine", {}).get("load_at_start", 0.0) or 0.0)
            rows = data["ratios"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            print(f"bench-history: skipping unreadable {f}", file=sys.stderr)
            continue
        for r in rows:
            ratio = r.get("ratio") if isinstance(r, dict) else None
            if isinstance(ratio, (int, float)) and math.isfinite(ratio):
                series.setdefault(str(r["id"]), []).append((f.stem, float(ratio), load))
    return series


def read_baseline(path: Path) -> Dict[str, Dict[str, float]]:
    try:
        return dict(json.loads(path.read_text())["ratios"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _drift(values: Sequence[float]) -> Optional[float]:
    """Median of the last three runs over the median of the first three, minus 1 (None under 4 runs)."""
    if len(values) < 4:
        return None
    return statistics.median(values[-3:]) / statistics.median(values[:3]) - 1.0


def table(series: Dict[str, List[Point]], baseline: Dict[str, Dict[str, float]]) -> str:
    """A Markdown table, one row per tracked ratio."""
    lines = ["| ratio | runs | first | last | min | max | baseline | floor | last 3 vs first 3 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for key in sorted(series):
        vals = [v for _, v, _ in series[key]]
        base = baseline.get(key, {})
        b = base.get("ratio")
        floor = None if b is None else b * (1.0 - float(base.get("tolerance", DEFAULT_TOLERANCE)))
        d = _drift(vals)
        lines.append(f"| {key} | {len(vals)} | {vals[0]:.3g} | {vals[-1]:.3g} | {min(vals):.3g} | "
                     f"{max(vals):.3g} | {'-' if b is None else f'{b:.3g}'} | "
                     f"{'-' if floor is None else f'{floor:.3g}'} | {'-' if d is None else f'{100 * d:+.0f}%'} |")
    return "\n".join(lines) + "\n"


def plot(series: Dict[str, List[Point]], baseline: Dict[str, Dict[str, float]], png: Path) -> None:
    """One PNG: a panel per ratio (log scale when it spans more than 10x)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted(series)
    cols = min(4, max(1, len(keys)))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False)
    for ax in axes.flat[len(keys):]:
        ax.set_visible(False)
    for ax, key in zip(axes.flat, keys):
        pts = series[key]
        xs = list(range(len(pts)))
        vals = [v for _, v, _ in pts]
        ax.plot(xs, vals, "-", color="tab:blue", lw=1)
        idle = [(x, v) for x, (_, v, load) in zip(xs, pts) if load < 1.0]
        busy = [(x, v) for x, (_, v, load) in zip(xs, pts) if load >= 1.0]
        if idle:
            ax.plot(*zip(*idle), "o", color="tab:blue", ms=4, label="idle start")
        if busy:
            ax.plot(*zip(*busy), "o", mfc="none", color="tab:blue", ms=4, label="busy start")
        base = baseline.get(key, {})
        if base.get("ratio") is not None:
            b = float(base["ratio"])
            ax.axhline(b, color="tab:green", lw=0.8, ls="--", label="baseline")
            ax.axhline(b * (1 - float(base.get("tolerance", DEFAULT_TOLERANCE))), color="tab:red", lw=0.8,
                       ls=":", label="floor")
        if max(vals) > 10 * min(vals) > 0:
            ax.set_yscale("log")
        ax.set_title(key.replace("::", "\n", 1), fontsize=7)
        ax.set_xlabel("run", fontsize=7)
        ax.set_ylabel("ratio (x)", fontsize=7)
        ax.tick_params(labelsize=6)
    axes.flat[0].legend(fontsize=6)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=90)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", default=str(ROOT / ".benchmarks" / "ratios"), help="saved ratio runs")
    p.add_argument("--baseline", default=str(ROOT / "bench" / "baseline.json"))
    p.add_argument("--out", default=str(ROOT / "build" / "bench-history"), help="output path without suffix")
    a = p.parse_args(argv)
    series = read_runs(Path(a.dir))
    if not series:
        print(f"bench-history: no saved ratios in {a.dir} (run make bench or make bench-check first)",
              file=sys.stderr)
        return 1
    base = read_baseline(Path(a.baseline))
    out = Path(a.out)
    text = table(series, base)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(text)
    print(text, end="")
    runs = len({s for pts in series.values() for s, _, _ in pts})
    try:
        plot(series, base, out.with_suffix(".png"))
    except ImportError:
        print("bench-history: matplotlib is missing (pip install 'pgfast-rl[plot]'): table only", file=sys.stderr)
        return 0
    print(f"bench-history: {len(series)} ratios over {runs} runs: {out.with_suffix('.png')}, {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
