"""Study reports: summary statistics over seeds, result tables and plots.

Everything here reads only the files a study leaves (``result.json`` and
``progress.csv`` per job), so tables and plots can be redrawn from the logs
alone (:func:`redraw`, ``pgfast plot``).
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from pgfast.logs import PROGRESS_NAME, read_progress
from pgfast.study.catalogue import JOB_NAME, RESULT_NAME, VARIANTS

__all__ = ["t_critical_975", "summarize", "SUMMARY_FIELDS", "write_summary", "format_summary",
           "format_summary_markdown", "seed_curves", "aggregate", "plot_env", "redraw"]

PathLike = Union[str, "os.PathLike[str]"]

# Two-sided 95% Student-t critical values t_{0.975, df}, df = 1..30.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)


def t_critical_975(df: int) -> float:
    """Two-sided 95% critical value of Student's t with ``df`` degrees of
    freedom (table for df <= 30, then 1.96 + 2.4/df, within 0.002)."""
    if df < 1:
        raise ValueError(f"df: must be >= 1, got {df}")
    if df <= 30:
        return _T975[df - 1]
    return 1.959964 + 2.4 / df


def _collect_results(root: Path) -> List[Dict[str, Any]]:
    out = []
    for p in sorted(root.glob(f"*/*/seed*/{RESULT_NAME}")):
        try:
            out.append(json.loads(p.read_text()))
        except (ValueError, OSError):
            continue
    return out


# Returns an episode can reach, where they are bounded and known: the 95% interval of the
# mean is clipped to them (with two seeds t = 12.7 and the interval can reach far outside).
# Pendulum: 200 steps of at most pi^2 + 0.1 * 8^2 + 0.001 * 2^2 cost each.
RETURN_RANGE: Dict[str, Tuple[float, float]] = {
    "CartPole-v1": (0.0, 500.0), "Acrobot-v1": (-500.0, 0.0), "MountainCar-v0": (-200.0, 0.0),
    "Pendulum-v1": (-200 * (math.pi ** 2 + 6.4 + 0.004), 0.0),
}


def summarize(results: Iterable[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """Per (env, variant): n seeds, mean and sample std of the final
    evaluation returns over seeds, and the 95% t-interval of the mean, clipped to
    :data:`RETURN_RANGE` where the env has one.

    ``results`` are the dicts stored in ``result.json``. With one seed the
    std and the interval are undefined (NaN, shown as n/a).
    """
    groups: Dict[Tuple[str, str], List[Mapping[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["env_id"], r["variant"]), []).append(r)
    order = {v: i for i, v in enumerate(VARIANTS)}
    rows = []
    for (env_id, variant), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 99), kv[0][1])):
        rs = sorted(rs, key=lambda r: r["seed"])
        x = np.array([r["eval_mean"] for r in rs], dtype=np.float64)
        xs = np.array([r.get("eval_stoch_mean", math.nan) for r in rs], dtype=np.float64)
        n = len(x)
        mean = float(x.mean())
        std = float(x.std(ddof=1)) if n > 1 else float("nan")
        half = t_critical_975(n - 1) * std / math.sqrt(n) if n > 1 else float("nan")
        lo, hi = RETURN_RANGE.get(env_id, (-math.inf, math.inf))
        rows.append(
            {
                "env_id": env_id,
                "variant": variant,
                "n": n,
                "total_timesteps": int(min(r["global_step"] for r in rs)),
                "eval_mean": mean,
                "eval_std": std,
                "ci95_low": max(mean - half, lo) if n > 1 else float("nan"),
                "ci95_high": min(mean + half, hi) if n > 1 else float("nan"),
                "stoch_mean": float(xs.mean()),
                "stoch_std": float(xs.std(ddof=1)) if n > 1 else float("nan"),
                "eval_episodes": int(min(int(r.get("eval_episodes", 0)) for r in rs)),
                "seeds": " ".join(str(r["seed"]) for r in rs),
                "per_seed": " ".join(f"{v:.1f}" for v in x),
                "per_seed_stoch": " ".join(f"{v:.1f}" for v in xs),
                "wall_s": float(sum(r.get("wall_s", 0.0) for r in rs)),
            }
        )
    return rows


SUMMARY_FIELDS = ["env_id", "variant", "n", "total_timesteps", "eval_mean", "eval_std", "ci95_low", "ci95_high",
                  "stoch_mean", "stoch_std", "eval_episodes", "seeds", "per_seed", "per_seed_stoch", "wall_s"]


def write_summary(rows: Sequence[Mapping[str, Any]], path: PathLike) -> Path:
    """Write :func:`summarize` rows to a CSV file (floats to 2 decimals)."""
    p = Path(path)
    with open(p, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=SUMMARY_FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.2f}" if isinstance(v, float) else v) for k, v in r.items()})
    return p


def _pm(mean: float, std: float) -> str:
    """``mean ± std``; "n/a" for results recorded without that evaluation, and for the std of one seed."""
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.1f} ± " + ("n/a" if math.isnan(std) else f"{std:.1f}")


def _ci_note(rows: Sequence[Mapping[str, Any]]) -> str:
    """What the 95% CI column means for these rows (one seed: none; two: t = 12.7; clipping)."""
    notes = ["the 95% CI is the t-interval of the mean over seeds"]
    if any(r["n"] == 1 for r in rows):
        notes.append("one seed has no spread (n/a)")
    if any(r["n"] == 2 for r in rows):
        notes.append("with two seeds t = 12.7, so it is wide")
    clipped = sorted({r["env_id"] for r in rows if r["env_id"] in RETURN_RANGE})
    if clipped:
        notes.append("clipped to the returns an episode can reach (" + ", ".join(
            f"{e} {RETURN_RANGE[e][0]:g}..{RETURN_RANGE[e][1]:g}" for e in clipped) + ")")
    return "; ".join(notes)


def format_summary(rows: Sequence[Mapping[str, Any]]) -> str:
    """A plain-text table of :func:`summarize` rows."""
    lines = [f"{'env':<16} {'variant':<14} {'n':>2} {'steps':>9} {'deterministic':>20} {'95% CI':>22} "
             f"{'stochastic':>20}"]
    for r in rows:
        ci = "n/a" if math.isnan(r["ci95_low"]) else f"[{r['ci95_low']:.1f}, {r['ci95_high']:.1f}]"
        lines.append(f"{r['env_id']:<16} {r['variant']:<14} {r['n']:>2} {r['total_timesteps']:>9} "
                     f"{_pm(r['eval_mean'], r['eval_std']):>20} {ci:>22} "
                     f"{_pm(r['stoch_mean'], r['stoch_std']):>20}")
    eps = min((r["eval_episodes"] for r in rows), default=0)
    lines.append(f"each seed's value: mean final eval return over {eps} episodes; ± and the 95% CI are over seeds")
    lines.append(_ci_note(rows))
    return "\n".join(lines)


def format_summary_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table of :func:`summarize` rows (for reports)."""
    out = ["| env | variant | seeds (n) | env steps | deterministic eval, mean ± std over seeds | 95% CI | "
           "per seed | stochastic eval, mean ± std over seeds |",
           "|---|---|---|---:|---:|---|---|---:|"]
    for r in rows:
        ci = "n/a" if math.isnan(r["ci95_low"]) else f"[{r['ci95_low']:.1f}, {r['ci95_high']:.1f}]"
        label = VARIANTS[r["variant"]].label if r["variant"] in VARIANTS else r["variant"]
        out.append(f"| {r['env_id']} | {label} | {r['seeds']} ({r['n']}) | {r['total_timesteps']:,} | "
                   f"{_pm(r['eval_mean'], r['eval_std'])} | {ci} | {r['per_seed']} | "
                   f"{_pm(r['stoch_mean'], r['stoch_std'])} |")
    eps = min((r["eval_episodes"] for r in rows), default=0)
    note = _ci_note(rows)
    out.append("")
    out.append(f"{note[0].upper() + note[1:]}. Each seed's value is its mean final evaluation return over {eps} "
               f"episodes; ± and the 95% CI are over seeds.")
    return "\n".join(out)


# --------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------


def seed_curves(variant_dir: PathLike, key: str = "episodic_return") -> List[Tuple[np.ndarray, np.ndarray]]:
    """(steps, values) per seed from ``VARIANT/seed*/progress.csv``, NaN
    rows (iterations without a finished episode) dropped."""
    out = []
    for p in sorted(Path(variant_dir).glob(f"seed*/{PROGRESS_NAME}")):
        rows = read_progress(p)
        xs = np.array([r["global_step"] for r in rows if not math.isnan(r.get(key, float("nan")))], dtype=np.float64)
        ys = np.array([r[key] for r in rows if not math.isnan(r.get(key, float("nan")))], dtype=np.float64)
        if len(xs):
            out.append((xs, ys))
    return out


def aggregate(curves: Sequence[Tuple[np.ndarray, np.ndarray]], points: int = 100
              ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Put per-seed curves on one step grid (linear interpolation, up to the
    shortest curve's last step) -> (grid [P], mean [P], std [P], n)."""
    if not curves:
        raise ValueError("curves: empty")
    lo = max(float(c[0][0]) for c in curves)
    hi = min(float(c[0][-1]) for c in curves)
    if hi <= lo:
        hi = lo
        grid = np.array([lo])
    else:
        grid = np.linspace(lo, hi, points)
    ys = np.stack([np.interp(grid, x, y) for x, y in curves])
    std = ys.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros_like(grid)
    return grid, ys.mean(axis=0), std, len(curves)


def have_matplotlib() -> bool:
    """Whether the optional plotting library (the ``plot`` extra) is importable."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def plot_env(env_dir: PathLike, path: Optional[PathLike] = None, env_id: Optional[str] = None,
             variants: Optional[Sequence[str]] = None) -> Any:
    """Plot mean training return vs env steps for every variant under
    ``env_dir`` (one line each, shaded band = ±1 std over seeds); saves a PNG
    to ``path`` when given and returns the matplotlib Figure."""
    import matplotlib  # optional dependency (the plot extra)

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    env_dir = Path(env_dir)
    env_id = env_id or env_dir.name
    names = [p.name for p in sorted(env_dir.iterdir()) if p.is_dir()] if variants is None else list(variants)
    order = {v: i for i, v in enumerate(VARIANTS)}
    names.sort(key=lambda v: (order.get(v, 99), v))
    fig = Figure(figsize=(6.4, 4.2), dpi=80)
    ax = fig.add_subplot(1, 1, 1)
    nseeds = []
    for name in names:
        curves = seed_curves(env_dir / name)
        if not curves:
            continue
        grid, mean, std, n = aggregate(curves)
        nseeds.append(n)
        label = (VARIANTS[name].label if name in VARIANTS else name) + f" (n={n})"
        (line,) = ax.plot(grid, mean, label=label, linewidth=1.6)
        ax.fill_between(grid, mean - std, mean + std, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episodic return (training, mean over seeds)")
    seeds_txt = f"{min(nseeds)}" if nseeds and min(nseeds) == max(nseeds) else "/".join(map(str, nseeds))
    ax.set_title(f"{env_id}: mean return over {seeds_txt} seeds, band = ±1 std")
    ax.grid(True, alpha=0.3)
    if ax.get_lines():
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(str(path), dpi=80, pil_kwargs={"optimize": True})
    return fig


def redraw(out: PathLike, log: Callable[[str], None] = print) -> Dict[str, Any]:
    """Rewrite ``summary.csv`` (and the same table as ``summary.md``) and one
    ``ENV.png`` per env directory from
    the logs under ``out``. Returns {"summary": path, "plots": [paths],
    "rows": summary rows}."""
    root = Path(out)
    if not root.is_dir():
        raise FileNotFoundError(f"out: {root} is not a directory")
    env_dirs = [p for p in sorted(root.iterdir()) if p.is_dir() and any(p.glob(f"*/seed*/{PROGRESS_NAME}"))]
    if not env_dirs:
        raise ValueError(f"out: no study logs (ENV/VARIANT/seedS/{PROGRESS_NAME}) under {root}")
    # results first: the summary never depends on the optional plotting library
    rows = summarize(_collect_results(root))
    summary = write_summary(rows, root / "summary.csv")
    (root / "summary.md").write_text(format_summary_markdown(rows) + "\n")
    log(format_summary(rows))
    log(f"summary: {summary}")
    plots = []
    if not have_matplotlib():
        log('plots skipped: matplotlib is not installed (pip install "pgfast-rl[plot]")')
        env_dirs = []
    for ed in env_dirs:
        png = root / f"{ed.name}.png"
        env_id = ed.name
        jobs = list(ed.glob(f"*/seed*/{JOB_NAME}"))
        if jobs:
            try:
                env_id = json.loads(jobs[0].read_text())["env_id"]
            except (ValueError, KeyError, OSError):
                pass
        plot_env(ed, png, env_id=env_id)
        plots.append(png)
    for p in plots:
        log(f"plot:    {p}")
    return {"summary": summary, "plots": plots, "rows": rows}
