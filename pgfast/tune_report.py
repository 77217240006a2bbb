"""The outputs of a ``pgfast tune`` search (:mod:`pgfast.tune`): ``trials.csv``, ``best.json``,
``best_preset.py`` and ``search.png``."""

from __future__ import annotations

import csv
import json
import pprint
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from pgfast.tune_space import TuneError, plain_params

__all__ = ["write_trials", "write_outputs", "at_budget"]


def at_budget(t: Any, budget: Optional[int]) -> bool:
    """Whether trial ``t`` ran at ``budget`` (None: any; trials without the attribute count)."""
    b = t.user_attrs.get("budget")
    return budget is None or b is None or int(b) == int(budget)


def write_trials(study: Any, algo: str, out: Path) -> List[Any]:
    """``trials.csv``: every trial with its state, value, budget, settings and failure reason."""
    trials = study.get_trials(deepcopy=False)
    with open(out / "trials.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["number", "state", "value", "params", "budget", "fail_reason"])
        for t in trials:
            w.writerow([t.number, t.state.name, "" if t.value is None else t.value,
                        json.dumps(plain_params(algo, t.params)), t.user_attrs.get("budget", ""),
                        t.user_attrs.get("fail_reason", "")])
    return trials


def write_outputs(study: Any, algo: str, env_id: str, out: Path, command: str, score: str, budget: int,
                   log: Callable[[str], None]) -> Dict[str, Any]:
    """Write the search's outputs under ``out`` (module doc) and return the best result: its value,
    trial, settings and the counts of finished, pruned and failed trials at ``budget``."""
    from optuna.trial import TrialState

    trials = write_trials(study, algo, out)
    here = [t for t in trials if at_budget(t, budget)]
    complete = [t for t in here if t.state == TrialState.COMPLETE]
    pruned = sum(t.state == TrialState.PRUNED for t in here)
    failed = sum(t.state == TrialState.FAIL for t in here)
    if not complete:
        raise TuneError(f"no trial finished at budget {budget}; nothing to report")
    best = max(complete, key=lambda t: float(t.value))
    params = plain_params(algo, best.params)
    result = {"algo": algo, "env_id": env_id, "value": best.value, "trial": best.number,
              "params": params, "user_attrs": dict(best.user_attrs), "trials": len(trials),
              "complete": len(complete), "pruned": pruned, "failed": failed, "budget": budget, "score": score}
    (out / "best.json").write_text(json.dumps(result, indent=1))
    body = pprint.pformat(params, width=100, sort_dicts=False)
    others = [f"{n} {what}" for n, what in ((pruned, "pruned"), (failed, "failed")) if n]
    snippet = (f"# {command}\n# best of {len(complete)} finished trials"
               + (f" ({', '.join(others)})" if others else "")
               + f": {score} deterministic eval over seeds {best.value:.1f} (trial {best.number})\n"
               f"PRESETS[{algo!r}][{env_id!r}] = dict(**{body})\n")
    (out / "best_preset.py").write_text(snippet)
    plot = _plot(complete, score, algo, env_id, out, log)
    if plot is not None:
        result["plot"] = plot
    log(snippet.rstrip())
    log(f"best: {out / 'best.json'}; snippet: {out / 'best_preset.py'}")
    return result


def _plot(complete: List[Any], score: str, algo: str, env_id: str, out: Path,
          log: Callable[[str], None]) -> Optional[str]:
    """``search.png``: each finished trial's value and the best so far (None without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure

        xs = [t.number for t in complete]
        ys = [float(t.value) for t in complete]
        fig = Figure(figsize=(6.4, 4.0), dpi=80)
        ax = fig.add_subplot(1, 1, 1)
        ax.plot(xs, ys, "o", label="trial")
        ax.plot(xs, [max(ys[: i + 1]) for i in range(len(ys))], "-", label="best so far")
        ax.set_xlabel("trial")
        ax.set_ylabel(f"{score} deterministic eval return over seeds")
        ax.set_title(f"pgfast tune {algo} {env_id}")
        ax.legend(loc="best")
        fig.tight_layout()
        fig.savefig(str(out / "search.png"))
        return str(out / "search.png")
    except ImportError:
        log('plot skipped: matplotlib is not installed (pip install "pgfast-rl[plot]")')
        return None
