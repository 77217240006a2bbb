"""Hyperparameter search with Optuna: ``pgfast tune ALGO ENV_ID``.

Each trial samples Config fields from :data:`SEARCH_SPACES` (the one place the ranges
live), trains ``algo`` on ``env_id`` for ``budget`` env steps per seed and scores the
trial by the deterministic evaluation return over the seeds: their mean
(``score="mean"``) or their worst (``score="worst"``, for targets every seed must
meet). Optuna's TPE sampler proposes the settings; its median pruner stops a trial
whose learning curve (the mean recent training return, reported every iteration, seed
after seed) falls below the median of earlier trials at the same step (``prune=False``:
every trial runs to the end).

The study lives in SQLite (``--storage``, default ``OUT/tune.db``), so an interrupted
search resumes where it stopped: finished and pruned trials count towards ``--trials``,
a trial cut off mid-way is marked failed and not counted. With ``backend="ray"`` the
trials of one round (``workers`` of them) run as Ray tasks in parallel (``address``
joins a cluster, otherwise a local Ray starts); Ray trials report their curve only at
the end, so they are not pruned.

Outputs under ``out``: ``best.json`` (value, settings, trial number), ``best_preset.py``
(a snippet ready to paste into :mod:`pgfast.presets`), ``trials.csv`` and
``search.png`` (value per trial and best so far; needs the ``plot`` extra).
"""

from __future__ import annotations

import csv
import json
import math
import pprint
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

from pgfast import algos
from pgfast.trainer import train

__all__ = ["SEARCH_SPACES", "SCORES", "TuneError", "sample_params", "evaluate_params", "tune"]

PathLike = Union[str, Path]

# name -> ("log", low, high) | ("float", low, high) | ("cat", [choices]).
_COMMON: Dict[str, Tuple[Any, ...]] = {
    "num_envs": ("cat", [1, 4, 8, 16]),
    "num_steps": ("cat", [32, 64, 128, 256, 512, 1024, 2048]),
    "gamma": ("cat", [0.9, 0.95, 0.98, 0.99, 0.995, 0.999]),
    "gae_lambda": ("cat", [0.8, 0.9, 0.92, 0.95, 0.98, 1.0]),
    "norm_obs": ("cat", [False, True]),
    "norm_reward": ("cat", [False, True]),
}
SEARCH_SPACES: Dict[str, Dict[str, Tuple[Any, ...]]] = {
    "ppo": {
        **_COMMON,
        "learning_rate": ("log", 1e-5, 3e-3),
        "anneal_lr": ("cat", [False, True]),
        "update_epochs": ("cat", [1, 4, 10, 20]),
        "num_minibatches": ("cat", [1, 4, 8, 32]),
        "clip_coef": ("cat", [0.1, 0.2, 0.3]),
        "ent_coef": ("log", 1e-8, 0.1),
        "vf_coef": ("float", 0.2, 1.0),
        "max_grad_norm": ("cat", [0.3, 0.5, 1.0, 5.0]),
    },
    "trpo": {
        **_COMMON,
        "max_kl": ("log", 1e-3, 0.1),
        "learning_rate": ("log", 1e-4, 3e-3),
        "update_epochs": ("cat", [5, 10, 20]),
        "num_minibatches": ("cat", [1, 4, 8, 32]),
    },
    "vpg": {
        **_COMMON,
        "learning_rate": ("log", 1e-4, 1e-2),
        "vf_learning_rate": ("log", 1e-4, 1e-2),
        "update_epochs": ("cat", [5, 10, 20]),
        "num_minibatches": ("cat", [1, 4, 8, 32]),
    },
}
"""algo -> Config field -> sampling range. Batches (num_envs x num_steps) larger than a
quarter of the budget are never sampled, and num_minibatches is capped at the batch."""


SCORES: Dict[str, Callable[[Sequence[float]], float]] = {
    "mean": lambda xs: float(sum(xs) / len(xs)),
    "worst": lambda xs: float(min(xs)),
}
"""How a trial's per-seed deterministic returns become its score."""


class TuneError(ValueError):
    """Bad arguments to :func:`tune` (unknown algo or env, impossible ranges)."""


def _check_space(algo: str) -> Dict[str, Tuple[Any, ...]]:
    space = SEARCH_SPACES[algo]
    fields = set(algos.config_class(algo).field_names())
    unknown = sorted(set(space) - fields)
    if unknown:  # a programming error in SEARCH_SPACES, caught by the tests
        raise TuneError(f"search space of {algo} names unknown fields {unknown}")
    for name, spec in space.items():
        kind = spec[0]
        if kind in ("log", "float") and not (0 < spec[1] < spec[2] if kind == "log" else spec[1] < spec[2]):
            raise TuneError(f"search space of {algo}: {name} has an impossible range {spec}")
        if kind == "cat" and not spec[1]:
            raise TuneError(f"search space of {algo}: {name} has no choices")
    return space


def sample_params(trial: Any, algo: str, budget: int) -> Dict[str, Any]:
    """Config fields for one trial (``trial`` is an ``optuna.Trial``)."""
    space = _check_space(algo)
    out: Dict[str, Any] = {}
    for name, spec in space.items():
        kind = spec[0]
        if name == "num_steps":
            envs = out.get("num_envs", 1)
            choices = [s for s in spec[1] if envs * s * 4 <= budget] or [min(spec[1])]
            out[name] = trial.suggest_categorical(f"{name}@{envs}", choices)
        elif kind == "log":
            out[name] = trial.suggest_float(name, spec[1], spec[2], log=True)
        elif kind == "float":
            out[name] = trial.suggest_float(name, spec[1], spec[2])
        else:
            out[name] = trial.suggest_categorical(name, spec[1])
    if "num_minibatches" in out:
        batch = out.get("num_envs", 1) * out.get("num_steps", 1)
        out["num_minibatches"] = min(out["num_minibatches"], batch)
    return out


def evaluate_params(algo: str, env_id: str, params: Dict[str, Any], budget: int, seeds: Sequence[int],
                    report: Optional[Callable[[int, float], None]] = None,
                    eval_episodes: int = 10, score: str = "mean") -> Dict[str, Any]:
    """Train ``params`` for ``budget`` steps on each seed; returns the scores
    (``value`` is the ``score`` entry of :data:`SCORES` applied to the per-seed deterministic
    returns).

    ``report(step, value)`` gets the mean recent training return after every
    iteration (``step`` counts the steps of all seeds so far) and may raise to stop."""
    det, sto = [], []
    done = 0
    for seed in seeds:
        def cb(row: Dict[str, Any], offset: int = done) -> None:
            value = row.get("episodic_return")
            if report is not None and value is not None and math.isfinite(float(value)):
                report(offset + int(row["global_step"]), float(value))

        run = train(algo, env_id, total_timesteps=budget, seed=int(seed), device="cpu", callback=cb,
                    **params)
        det.append(run.evaluate(episodes=eval_episodes, deterministic=True)[0])
        sto.append(run.evaluate(episodes=eval_episodes, deterministic=False)[0])
        done += int(run.global_step)
        run.close()
    return {"value": SCORES[score](det), "deterministic": det, "stochastic": sto}


def _remote_evaluate(algo: str, env_id: str, params: Dict[str, Any], budget: int,
                     seeds: Sequence[int], score: str) -> Dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    return evaluate_params(algo, env_id, params, budget, seeds, score=score)


def _mark_stale_running(study: Any) -> int:
    """Trials left RUNNING by an interrupted search are marked failed (not counted)."""
    from optuna.trial import TrialState

    stale = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        stale += 1
    return stale


def _counted(study: Any) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def _plain_params(algo: str, trial_params: Dict[str, Any]) -> Dict[str, Any]:
    out = {k.split("@")[0]: v for k, v in trial_params.items()}
    if "num_minibatches" in out:
        out["num_minibatches"] = min(out["num_minibatches"], out.get("num_envs", 1) * out.get("num_steps", 1))
    return {k: out[k] for k in SEARCH_SPACES[algo] if k in out}


def _write_outputs(study: Any, algo: str, env_id: str, out: Path, command: str, score: str,
                   log: Callable[[str], None]) -> Dict[str, Any]:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    with open(out / "trials.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["number", "state", "value", "params"])
        for t in trials:
            w.writerow([t.number, t.state.name, "" if t.value is None else t.value,
                        json.dumps(_plain_params(algo, t.params))])
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        raise TuneError("no trial finished; nothing to report")
    best = study.best_trial
    params = _plain_params(algo, best.params)
    result = {"algo": algo, "env_id": env_id, "value": best.value, "trial": best.number,
              "params": params, "user_attrs": dict(best.user_attrs), "trials": len(trials),
              "complete": len(complete), "score": score}
    (out / "best.json").write_text(json.dumps(result, indent=1))
    body = pprint.pformat(params, width=100, sort_dicts=False)
    snippet = (f"# {command}\n# best of {len(complete)} finished trials: {score} deterministic eval "
               f"over seeds {best.value:.1f} (trial {best.number})\n"
               f"PRESETS[{algo!r}][{env_id!r}] = dict(**{body})\n")
    (out / "best_preset.py").write_text(snippet)
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
        result["plot"] = str(out / "search.png")
    except ImportError:
        log('plot skipped: matplotlib is not installed (pip install "pgfast-rl[plot]")')
    log(snippet.rstrip())
    log(f"best: {out / 'best.json'}; snippet: {out / 'best_preset.py'}")
    return result


def tune(algo: str, env_id: str, trials: int, budget: int, out: PathLike, seeds: Sequence[int] = (0,),
         backend: str = "local", address: Optional[str] = None, storage: Optional[str] = None,
         workers: int = 2, sampler_seed: int = 0, score: str = "mean", prune: bool = True,
         log: Callable[[str], None] = print) -> Dict[str, Any]:
    """Run (or resume) a search of ``trials`` trials; returns the best result (see module doc)."""
    try:
        import optuna
    except ImportError:
        raise TuneError('pgfast tune needs Optuna: pip install "pgfast-rl[tune]"') from None
    name = algos.get_algo(algo).name
    if algos.action_space_kind(env_id) is None:
        raise TuneError(f"unknown environment id {env_id!r}")
    if not isinstance(trials, int) or trials < 1:
        raise TuneError(f"trials must be a positive int, got {trials!r}")
    min_batch = min(SEARCH_SPACES[name]["num_envs"][1]) * min(SEARCH_SPACES[name]["num_steps"][1])
    if not isinstance(budget, int) or budget < 4 * min_batch:
        raise TuneError(f"budget must be at least {4 * min_batch} env steps (four of the smallest "
                        f"rollouts), got {budget!r}")
    if not seeds or len(set(seeds)) != len(seeds):
        raise TuneError(f"seeds must be distinct and non-empty, got {list(seeds)}")
    if backend not in ("local", "ray"):
        raise TuneError(f"backend must be 'local' or 'ray', got {backend!r}")
    if workers < 1:
        raise TuneError(f"workers must be >= 1, got {workers}")
    if score not in SCORES:
        raise TuneError(f"score must be one of {sorted(SCORES)}, got {score!r}")
    _check_space(name)
    outdir = Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    storage = storage or f"sqlite:///{(outdir / 'tune.db').resolve()}"
    # ERROR: Optuna would print a traceback for a trial stopped by Ctrl-C; trials are logged here
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(
        # the score is part of the name: values scored differently never mix in one study
        study_name=f"{name}-{env_id}" + ("" if score == "mean" else f"-{score}"), storage=storage,
        load_if_exists=True, direction="maximize",
        pruner=(optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=budget // 4) if prune
                else optuna.pruners.NopPruner()))
    # a resumed search must not replay the random start-up trials it already ran
    study.sampler = optuna.samplers.TPESampler(seed=sampler_seed + len(study.trials), n_startup_trials=4)
    _mark_stale_running(study)  # trials left RUNNING by a killed process: failed, not counted
    done = _counted(study)
    failed = len(study.trials) - done
    if done or failed:
        log(f"resuming {study.study_name} from {storage}: {done} of {trials} trials counted (finished or "
            f"pruned)" + (f"; {failed} interrupted or failed trial(s) not counted, run again" if failed else ""))
    command = (f"pgfast tune {name} {env_id} --trials {trials} --budget {budget} --seeds "
               f"{' '.join(map(str, seeds))}" + ("" if score == "mean" else f" --score {score}")
               + (f" --sampler-seed {sampler_seed}" if sampler_seed else "")
               + ("" if prune else " --no-prune"))

    def objective(trial: Any) -> float:
        params = sample_params(trial, name, budget)

        def report(step: int, value: float) -> None:
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()

        res = evaluate_params(name, env_id, params, budget, seeds, report=report, score=score)
        trial.set_user_attr("stochastic", res["stochastic"])
        trial.set_user_attr("deterministic", res["deterministic"])
        log(f"trial {trial.number}: {res['value']:.1f} ({score} deterministic; per seed "
            f"{', '.join(f'{v:.1f}' for v in res['deterministic'])}), stochastic "
            f"{SCORES[score](res['stochastic']):.1f}; {params}")
        return res["value"]

    if backend == "local":
        while _counted(study) < trials:
            study.optimize(objective, n_trials=1, catch=())
    else:
        try:
            import ray
        except ImportError:
            raise TuneError('backend "ray" needs Ray: pip install "pgfast-rl[ray]"') from None
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        remote = ray.remote(num_cpus=1)(_remote_evaluate)
        while _counted(study) < trials:
            batch = [study.ask() for _ in range(min(workers, trials - _counted(study)))]
            params = [sample_params(t, name, budget) for t in batch]
            futures = [remote.remote(name, env_id, p, budget, list(seeds), score) for p in params]
            for t, p, res in zip(batch, params, ray.get(futures)):
                t.set_user_attr("stochastic", res["stochastic"])
                t.set_user_attr("deterministic", res["deterministic"])
                study.tell(t, res["value"])
                log(f"trial {t.number}: {res['value']:.1f} ({score} deterministic); {p}")
    return _write_outputs(study, name, env_id, outdir, command, score, log)
