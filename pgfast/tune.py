"""Hyperparameter search with Optuna: ``pgfast tune ALGO ENV_ID``.

Each trial samples Config fields from :data:`SEARCH_SPACES` (the one place the ranges
live, :mod:`pgfast.tune_space`), trains ``algo`` on ``env_id`` for ``budget`` env steps per seed and scores the
trial by the deterministic evaluation return over the seeds: their mean
(``score="mean"``) or their worst (``score="worst"``, for targets every seed must
meet). Optuna's TPE sampler proposes the settings; its median pruner stops a trial
whose learning curve (the mean recent training return, reported every iteration, seed
after seed) falls below the median of earlier trials at the same step (``prune=False``:
every trial runs to the end).

The study lives in SQLite (``--storage``, default ``OUT/tune.db``), so an interrupted
search resumes where it stopped: finished and pruned trials count towards ``--trials``,
a trial cut off mid-way is marked failed and not counted. Several ``pgfast tune``
processes may share one storage (Optuna's way to scale): each running trial records a
heartbeat every ``heartbeat_interval`` seconds (default 30); a trial whose heartbeat is
older than twice that is stale (its process died): it is marked failed and queued once
more with the same settings. No process fails a trial whose process is alive.

A search resumed with another ``budget`` works: ``trials`` then counts the trials at the
new budget, and only those are compared for the best; trials at other budgets still
inform the sampler and the pruner (which prunes only once two trials at the budget have
finished). A trial that raises or scores NaN/inf fails (the
reason is stored in its ``fail_reason`` user attribute and logged); after
``max_failures`` failed trials in a row (default 5) the search stops with
:class:`TuneFailed` naming the last failure. Pruned trials are logged with their step.

With ``backend="ray"`` the trials of one round (``workers`` of them) run as Ray tasks
in parallel (``address`` joins a cluster, otherwise a local Ray starts); Ray trials
report their curve only at the end, so they are not pruned.

Outputs under ``out``: ``best.json`` (value, settings, trial number), ``best_preset.py``
(a snippet ready to paste into :mod:`pgfast.presets`), ``trials.csv`` and
``search.png`` (value per trial and best so far; needs the ``plot`` extra).
"""

from __future__ import annotations

import csv
import json
import math
import pprint
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from pgfast import algos
from pgfast.trainer import train
from pgfast.tune_space import SEARCH_SPACES, TuneError, check_space, plain_params, sample_params

__all__ = ["SEARCH_SPACES", "SCORES", "TuneError", "TuneFailed", "sample_params", "evaluate_params", "tune",
           "HEARTBEAT_INTERVAL", "MAX_FAILURES"]

HEARTBEAT_INTERVAL = 30
"""Seconds between the heartbeats of a running trial; a trial without one for twice as long is stale."""

MAX_FAILURES = 5
"""Failed trials in a row after which a search stops."""

PathLike = Union[str, Path]

SCORES: Dict[str, Callable[[Sequence[float]], float]] = {
    "mean": lambda xs: float(sum(xs) / len(xs)),
    "worst": lambda xs: float(min(xs)),
}
"""How a trial's per-seed deterministic returns become its score."""


class TuneFailed(RuntimeError):
    """The search stopped: ``max_failures`` trials in a row failed (the message names the last)."""


class _TrialFailed(Exception):
    """A trial failed for the reason given (stored in its ``fail_reason`` user attribute)."""


def _check_env(env_id: str) -> None:
    """Refuse an id gymnasium does not know; gymnasium's ``module:EnvId-vN`` form imports the
    module first (which registers the env), as ``gymnasium.make`` does."""
    import importlib

    name = env_id
    if ":" in env_id:
        module, name = env_id.split(":", 1)
        try:
            importlib.import_module(module)
        except ImportError as ex:
            raise TuneError(f"environment {env_id!r}: cannot import module {module!r} ({ex})") from None
    if algos.action_space_kind(name) is None:
        raise TuneError(f"unknown environment id {env_id!r}")


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


def _storage(url: str, heartbeat_interval: int) -> Any:
    """Optuna's RDB storage at ``url`` with heartbeats: a RUNNING trial without a heartbeat
    for ``2 * heartbeat_interval`` seconds is failed and queued again once (same settings)."""
    import optuna

    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna; the names moved in 4.9
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", FutureWarning)
        retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
        if retry is not None:
            callback = {"heartbeat_stale_trial_callback": retry(max_retry=1)}
        else:
            callback = {"failed_trial_callback": optuna.storages.RetryFailedTrialCallback(max_retry=1)}
        # SQLite: several processes (and each one's heartbeat thread) write one file; a writer
        # waits up to a minute for the lock instead of failing after sqlite's default 5 s
        engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None
        return optuna.storages.RDBStorage(url, engine_kwargs=engine, heartbeat_interval=int(heartbeat_interval),
                                          grace_period=2 * int(heartbeat_interval), **callback)


def _fail_stale(study: Any) -> None:
    """Fail the trials whose heartbeat is stale (their process died) and queue them again."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


@contextmanager
def _heartbeats(study: Any, trials: Sequence[Any], interval: int) -> Iterator[None]:
    """Record a heartbeat for each of ``trials`` every ``interval`` seconds while inside
    (trials run elsewhere, e.g. as Ray tasks, are kept alive by this process)."""
    stop = threading.Event()

    def beat() -> None:
        while True:
            for t in trials:
                study._storage.record_heartbeat(t._trial_id)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name="pgfast-tune-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _at_budget(t: Any, budget: Optional[int]) -> bool:
    """Whether trial ``t`` ran at ``budget`` (None: any; trials without the attribute count)."""
    b = t.user_attrs.get("budget")
    return budget is None or b is None or int(b) == int(budget)


def _counted(study: Any, budget: Optional[int] = None) -> int:
    """Finished and pruned trials (at ``budget``): the ones that count towards ``trials``."""
    from optuna.trial import TrialState

    return sum(_at_budget(t, budget)
               for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def _one_line(ex: BaseException) -> str:
    text = f"{type(ex).__name__}: {ex}".strip().splitlines()
    return (text[0] if text else type(ex).__name__)[:300]


def _write_trials(study: Any, algo: str, out: Path) -> List[Any]:
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


def _write_outputs(study: Any, algo: str, env_id: str, out: Path, command: str, score: str, budget: int,
                   log: Callable[[str], None]) -> Dict[str, Any]:
    from optuna.trial import TrialState

    trials = _write_trials(study, algo, out)
    here = [t for t in trials if _at_budget(t, budget)]
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
         max_failures: int = MAX_FAILURES, heartbeat_interval: int = HEARTBEAT_INTERVAL,
         log: Callable[[str], None] = print) -> Dict[str, Any]:
    """Run (or resume) a search of ``trials`` trials at ``budget``; returns the best result (see
    module doc). Raises :class:`TuneFailed` after ``max_failures`` failed trials in a row."""
    try:
        import optuna
    except ImportError:
        raise TuneError('pgfast tune needs Optuna: pip install "pgfast-rl[tune]"') from None
    from optuna.trial import TrialState

    name = algos.get_algo(algo).name
    _check_env(env_id)
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
    if not isinstance(max_failures, int) or max_failures < 1:
        raise TuneError(f"max_failures must be a positive int, got {max_failures!r}")
    if not isinstance(heartbeat_interval, int) or heartbeat_interval < 1:
        raise TuneError(f"heartbeat_interval must be a positive int (seconds), got {heartbeat_interval!r}")
    check_space(name)
    outdir = Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    url = storage or f"sqlite:///{(outdir / 'tune.db').resolve()}"
    # ERROR: Optuna would print a traceback for a trial stopped by Ctrl-C; trials are logged here
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(
        # the score is part of the name: values scored differently never mix in one study
        study_name=f"{name}-{env_id}" + ("" if score == "mean" else f"-{score}"),
        storage=_storage(url, heartbeat_interval), load_if_exists=True, direction="maximize",
        pruner=(optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=budget // 4) if prune
                else optuna.pruners.NopPruner()))
    # a resumed search must not replay the random start-up trials it already ran
    study.sampler = optuna.samplers.TPESampler(seed=sampler_seed + len(study.trials), n_startup_trials=4)
    _fail_stale(study)  # trials of a killed process (stale heartbeat): failed, queued again
    everything = study.get_trials(deepcopy=False)
    done = _counted(study, budget)
    running = sum(t.state == TrialState.RUNNING for t in everything)
    failed = sum(t.state == TrialState.FAIL and _at_budget(t, budget) for t in everything)
    other_budgets = sorted({int(t.user_attrs["budget"]) for t in everything
                            if "budget" in t.user_attrs and not _at_budget(t, budget)})
    if everything:
        log(f"resuming {study.study_name} from {url}: {done} of {trials} trials counted (finished or "
            f"pruned)" + (f"; {failed} interrupted or failed trial(s) not counted, run again" if failed else "")
            + (f"; {running} trial(s) running in another process (or in one killed less than "
               f"{2 * heartbeat_interval} s ago)" if running else ""))
    if other_budgets:
        log(f"the study also holds trials at budget(s) {', '.join(map(str, other_budgets))}: they inform the "
            f"sampler and the pruner, but only trials at budget {budget} count and are compared")
    command = (f"pgfast tune {name} {env_id} --trials {trials} --budget {budget} --seeds "
               f"{' '.join(map(str, seeds))}" + ("" if score == "mean" else f" --score {score}")
               + (f" --sampler-seed {sampler_seed}" if sampler_seed else "")
               + ("" if prune else " --no-prune"))
    streak: List[Tuple[int, str]] = []  # this process's failed trials in a row: (number, reason)

    def outcome(number: int, state: Any, reason: Optional[str]) -> None:
        """Count a finished trial of this process; stop after ``max_failures`` failures in a row."""
        if state != TrialState.FAIL:
            streak.clear()
            return
        streak.append((number, reason or "unknown reason"))
        log(f"trial {number}: failed: {reason}")
        if len(streak) >= max_failures:
            _write_trials(study, name, outdir)
            raise TuneFailed(f"stopped after {len(streak)} failed trials in a row; the last, trial {number}: "
                             f"{streak[-1][1]} (all in {outdir / 'trials.csv'})")

    def checked(trial: Any, res: Dict[str, Any]) -> float:
        value = float(res["value"])
        if not math.isfinite(value):
            raise _TrialFailed(f"the score is {value} (deterministic returns per seed "
                               f"{', '.join(f'{v:.1f}' for v in res['deterministic'])})")
        return value

    current: List[int] = []  # the number of the trial this process runs

    def objective(trial: Any) -> float:
        current.append(trial.number)
        trial.set_user_attr("budget", budget)
        # as the pruner's start-up: no pruning before two trials at this budget have finished
        # (a study resumed with another budget holds finished trials at other budgets only)
        may_prune = sum(_at_budget(t, budget) for t in study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE,))) >= 2
        try:
            params = sample_params(trial, name, budget)

            def report(step: int, value: float) -> None:
                trial.report(value, step)
                if may_prune and trial.should_prune():
                    log(f"trial {trial.number}: pruned at step {step} (training return {value:.1f}, below "
                        f"the median of earlier trials at that step)")
                    raise optuna.TrialPruned()

            res = evaluate_params(name, env_id, params, budget, seeds, report=report, score=score)
            value = checked(trial, res)
        except optuna.TrialPruned:
            raise
        except _TrialFailed as ex:
            trial.set_user_attr("fail_reason", str(ex))
            raise
        except Exception as ex:  # a trial's failure (a setting that diverges, ...): recorded, not fatal
            trial.set_user_attr("fail_reason", _one_line(ex))
            raise _TrialFailed(_one_line(ex)) from ex
        trial.set_user_attr("stochastic", res["stochastic"])
        trial.set_user_attr("deterministic", res["deterministic"])
        log(f"trial {trial.number}: {res['value']:.1f} ({score} deterministic; per seed "
            f"{', '.join(f'{v:.1f}' for v in res['deterministic'])}), stochastic "
            f"{SCORES[score](res['stochastic']):.1f}; {params}")
        return value

    if backend == "local":
        while _counted(study, budget) < trials:
            current.clear()
            study.optimize(objective, n_trials=1, catch=(_TrialFailed,))
            for ft in study.get_trials(deepcopy=False):
                if current and ft.number == current[0]:
                    outcome(ft.number, ft.state, ft.user_attrs.get("fail_reason"))
    else:
        try:
            import ray
        except ImportError:
            raise TuneError('backend "ray" needs Ray: pip install "pgfast-rl[ray]"') from None
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        remote = ray.remote(num_cpus=1)(_remote_evaluate)
        while _counted(study, budget) < trials:
            _fail_stale(study)
            with warnings.catch_warnings():  # Optuna expects heartbeats from optimize(); _heartbeats sends them
                warnings.filterwarnings("ignore", "Heartbeat of storage", UserWarning)
                batch = [study.ask() for _ in range(min(workers, trials - _counted(study, budget)))]
            for t in batch:
                t.set_user_attr("budget", budget)
            params = [sample_params(t, name, budget) for t in batch]
            futures = [remote.remote(name, env_id, p, budget, list(seeds), score) for p in params]
            with _heartbeats(study, batch, heartbeat_interval):
                results: List[Any] = []
                for f in futures:
                    try:
                        results.append(ray.get(f))
                    except Exception as ex:  # the task raised (or its worker died)
                        results.append(ex)
            for t, p, res in zip(batch, params, results):
                try:
                    if isinstance(res, BaseException):
                        raise _TrialFailed(_one_line(res))
                    value = checked(t, res)
                except _TrialFailed as ex:
                    t.set_user_attr("fail_reason", str(ex))
                    study.tell(t, state=TrialState.FAIL)
                    outcome(t.number, TrialState.FAIL, str(ex))
                    continue
                t.set_user_attr("stochastic", res["stochastic"])
                t.set_user_attr("deterministic", res["deterministic"])
                study.tell(t, value)
                outcome(t.number, TrialState.COMPLETE, None)
                log(f"trial {t.number}: {value:.1f} ({score} deterministic); {p}")
    return _write_outputs(study, name, env_id, outdir, command, score, budget, log)
