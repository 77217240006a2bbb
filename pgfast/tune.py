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
a trial cut off mid-way is marked failed and not counted (Ctrl-C ends
the running trial at the end of its training iteration, so the storage is never left
mid-write; a second Ctrl-C stops at once). Several ``pgfast tune``
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

import math
import signal
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from pgfast import algos
from pgfast.session import SignalGuard, StopFlag
from pgfast.trainer import train
from pgfast.tune_report import at_budget, write_outputs, write_trials
from pgfast.tune_space import SEARCH_SPACES, TuneError, check_space, sample_params

__all__ = ["SEARCH_SPACES", "SCORES", "TuneError", "TuneFailed", "TrialInterrupted", "sample_params",
           "evaluate_params", "tune",
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


class TrialInterrupted(Exception):
    """A trial stopped by Ctrl-C at the end of a training iteration (it fails, is not counted,
    and the search stops)."""


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
                    eval_episodes: int = 10, score: str = "mean",
                    stop: Optional[StopFlag] = None) -> Dict[str, Any]:
    """Train ``params`` for ``budget`` steps on each seed; returns the scores
    (``value`` is the ``score`` entry of :data:`SCORES` applied to the per-seed deterministic
    returns).

    ``report(step, value)`` gets the mean recent training return after every
    iteration (``step`` counts the steps of all seeds so far) and may raise to stop.
    ``stop``: once requested, training ends at the end of its iteration and
    :class:`TrialInterrupted` is raised."""
    det, sto = [], []
    done = 0
    for seed in seeds:
        def cb(row: Dict[str, Any], offset: int = done) -> bool:
            value = row.get("episodic_return")
            if report is not None and value is not None and math.isfinite(float(value)):
                report(offset + int(row["global_step"]), float(value))
            return not (stop is not None and stop.requested)

        run = train(algo, env_id, total_timesteps=budget, seed=int(seed), device="cpu", callback=cb,
                    **params)
        if stop is not None and stop.requested:
            run.close()
            raise TrialInterrupted("interrupted (Ctrl-C)")
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


def _counted(study: Any, budget: Optional[int] = None) -> int:
    """Finished and pruned trials (at ``budget``): the ones that count towards ``trials``."""
    from optuna.trial import TrialState

    return sum(at_budget(t, budget)
               for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def _one_line(ex: BaseException) -> str:
    text = f"{type(ex).__name__}: {ex}".strip().splitlines()
    return (text[0] if text else type(ex).__name__)[:300]


def _check_args(name: str, env_id: str, trials: Any, budget: Any, seeds: Sequence[int], backend: str,
                workers: int, score: str, max_failures: Any, heartbeat_interval: Any) -> None:
    """Refuse bad arguments of :func:`tune` with a :class:`TuneError` naming the argument."""
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


def _open_study(name: str, env_id: str, url: str, heartbeat_interval: int, score: str, prune: bool,
                budget: int, sampler_seed: int) -> Any:
    """Create or load the Optuna study (maximising, TPE sampler, median pruner unless ``prune`` is
    off) and fail the stale trials of killed processes (queued again)."""
    import optuna

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
    return study


def _log_resume(study: Any, url: str, trials: int, budget: int, heartbeat_interval: int,
                log: Callable[[str], None]) -> None:
    """Say what a resumed study already holds: counted, failed and running trials, other budgets."""
    from optuna.trial import TrialState

    everything = study.get_trials(deepcopy=False)
    done = _counted(study, budget)
    running = sum(t.state == TrialState.RUNNING for t in everything)
    failed = sum(t.state == TrialState.FAIL and at_budget(t, budget) for t in everything)
    other_budgets = sorted({int(t.user_attrs["budget"]) for t in everything
                            if "budget" in t.user_attrs and not at_budget(t, budget)})
    if everything:
        log(f"resuming {study.study_name} from {url}: {done} of {trials} trials counted (finished or "
            f"pruned)" + (f"; {failed} interrupted or failed trial(s) not counted, run again" if failed else "")
            + (f"; {running} trial(s) running in another process (or in one killed less than "
               f"{2 * heartbeat_interval} s ago)" if running else ""))
    if other_budgets:
        log(f"the study also holds trials at budget(s) {', '.join(map(str, other_budgets))}: they inform the "
            f"sampler and the pruner, but only trials at budget {budget} count and are compared")


class _Search:
    """The trial loop of one :func:`tune` call: runs trials until ``trials`` count at ``budget``,
    locally (one at a time, pruned) or as Ray tasks (``workers`` per round, not pruned)."""

    def __init__(self, study: Any, name: str, env_id: str, budget: int, seeds: Sequence[int], score: str,
                 max_failures: int, outdir: Path, log: Callable[[str], None]) -> None:
        self.study, self.name, self.env_id, self.budget = study, name, env_id, budget
        self.seeds, self.score, self.max_failures, self.outdir, self.log = seeds, score, max_failures, outdir, log
        self.streak: List[Tuple[int, str]] = []  # this process's failed trials in a row: (number, reason)
        self.current: Optional[int] = None  # the number of the local trial this process runs
        self.stop = StopFlag()  # Ctrl-C (local backend): the trial ends with its iteration

    def outcome(self, number: int, failed: bool, reason: Optional[str]) -> None:
        """Count a finished trial of this process; stop after ``max_failures`` failures in a row."""
        if not failed:
            self.streak.clear()
            return
        self.streak.append((number, reason or "unknown reason"))
        self.log(f"trial {number}: failed: {reason}")
        if len(self.streak) >= self.max_failures:
            write_trials(self.study, self.name, self.outdir)
            raise TuneFailed(f"stopped after {len(self.streak)} failed trials in a row; the last, trial {number}: "
                             f"{self.streak[-1][1]} (all in {self.outdir / 'trials.csv'})")

    @staticmethod
    def checked(res: Dict[str, Any]) -> float:
        """The trial's score; a non-finite one fails the trial."""
        value = float(res["value"])
        if not math.isfinite(value):
            raise _TrialFailed(f"the score is {value} (deterministic returns per seed "
                               f"{', '.join(f'{v:.1f}' for v in res['deterministic'])})")
        return value

    def objective(self, trial: Any) -> float:
        """Optuna's objective for a local trial: train, report the curve (pruning), score."""
        import optuna
        from optuna.trial import TrialState

        self.current = trial.number
        trial.set_user_attr("budget", self.budget)
        # as the pruner's start-up: no pruning before two trials at this budget have finished
        # (a study resumed with another budget holds finished trials at other budgets only)
        may_prune = sum(at_budget(t, self.budget) for t in self.study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE,))) >= 2
        try:
            params = sample_params(trial, self.name, self.budget)

            def report(step: int, value: float) -> None:
                trial.report(value, step)
                if may_prune and trial.should_prune():
                    self.log(f"trial {trial.number}: pruned at step {step} (training return {value:.1f}, "
                             f"below the median of earlier trials at that step)")
                    raise optuna.TrialPruned()

            res = evaluate_params(self.name, self.env_id, params, self.budget, self.seeds, report=report,
                                  score=self.score, stop=self.stop)
            value = self.checked(res)
        except optuna.TrialPruned:
            raise
        except TrialInterrupted as ex:  # not caught by optimize(): the trial fails, the search stops
            trial.set_user_attr("fail_reason", str(ex))
            raise
        except _TrialFailed as ex:
            trial.set_user_attr("fail_reason", str(ex))
            raise
        except Exception as ex:  # a trial's failure (a setting that diverges, ...): recorded, not fatal
            trial.set_user_attr("fail_reason", _one_line(ex))
            raise _TrialFailed(_one_line(ex)) from ex
        self._record(trial, res)
        self.log(f"trial {trial.number}: {res['value']:.1f} ({self.score} deterministic; per seed "
                 f"{', '.join(f'{v:.1f}' for v in res['deterministic'])}), stochastic "
                 f"{SCORES[self.score](res['stochastic']):.1f}; {params}")
        return value

    @staticmethod
    def _record(trial: Any, res: Dict[str, Any]) -> None:
        trial.set_user_attr("stochastic", res["stochastic"])
        trial.set_user_attr("deterministic", res["deterministic"])

    def run_local(self, trials: int) -> None:
        """Run trials one at a time in this process until ``trials`` count."""
        from optuna.trial import TrialState

        # Ctrl-C sets self.stop instead of raising in the middle of a storage write (which could
        # leave SQLite locked): the running trial ends with its training iteration and is
        # recorded as failed, then KeyboardInterrupt stops the search; a second Ctrl-C raises at once
        with SignalGuard(self.stop, (signal.SIGINT,), only_if_default=True):
            while _counted(self.study, self.budget) < trials and not self.stop.requested:
                self.current = None
                try:
                    self.study.optimize(self.objective, n_trials=1, catch=(_TrialFailed,))
                except TrialInterrupted:
                    break
                for ft in self.study.get_trials(deepcopy=False):
                    if ft.number == self.current:
                        self.outcome(ft.number, ft.state == TrialState.FAIL, ft.user_attrs.get("fail_reason"))
        if self.stop.requested:
            raise KeyboardInterrupt

    def run_ray(self, trials: int, workers: int, address: Optional[str], heartbeat_interval: int) -> None:
        """Run ``workers`` trials per round as Ray tasks until ``trials`` count."""
        try:
            import ray
        except ImportError:
            raise TuneError('backend "ray" needs Ray: pip install "pgfast-rl[ray]"') from None
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        remote = ray.remote(num_cpus=1)(_remote_evaluate)
        study, budget = self.study, self.budget
        while _counted(study, budget) < trials:
            _fail_stale(study)
            with warnings.catch_warnings():  # Optuna expects heartbeats from optimize(); _heartbeats sends them
                warnings.filterwarnings("ignore", "Heartbeat of storage", UserWarning)
                batch = [study.ask() for _ in range(min(workers, trials - _counted(study, budget)))]
            for t in batch:
                t.set_user_attr("budget", budget)
            params = [sample_params(t, self.name, budget) for t in batch]
            futures = [remote.remote(self.name, self.env_id, p, budget, list(self.seeds), self.score)
                       for p in params]
            with _heartbeats(study, batch, heartbeat_interval):
                results: List[Any] = []
                for f in futures:
                    try:
                        results.append(ray.get(f))
                    except Exception as ex:  # the task raised (or its worker died)
                        results.append(ex)
            for t, p, res in zip(batch, params, results):
                self._tell(t, p, res)

    def _tell(self, t: Any, params: Dict[str, Any], res: Any) -> None:
        """Record a Ray trial's result (or its failure) in the study."""
        from optuna.trial import TrialState

        try:
            if isinstance(res, BaseException):
                raise _TrialFailed(_one_line(res))
            value = self.checked(res)
        except _TrialFailed as ex:
            t.set_user_attr("fail_reason", str(ex))
            self.study.tell(t, state=TrialState.FAIL)
            self.outcome(t.number, True, str(ex))
            return
        self._record(t, res)
        self.study.tell(t, value)
        self.outcome(t.number, False, None)
        self.log(f"trial {t.number}: {value:.1f} ({self.score} deterministic); {params}")


def tune(algo: str, env_id: str, trials: int, budget: int, out: PathLike, seeds: Sequence[int] = (0,),
         backend: str = "local", address: Optional[str] = None, storage: Optional[str] = None,
         workers: int = 2, sampler_seed: int = 0, score: str = "mean", prune: bool = True,
         max_failures: int = MAX_FAILURES, heartbeat_interval: int = HEARTBEAT_INTERVAL,
         log: Callable[[str], None] = print) -> Dict[str, Any]:
    """Run (or resume) a search of ``trials`` trials at ``budget``; returns the best result (see
    module doc). Raises :class:`TuneFailed` after ``max_failures`` failed trials in a row."""
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise TuneError('pgfast tune needs Optuna: pip install "pgfast-rl[tune]"') from None

    name = algos.get_algo(algo).name
    _check_args(name, env_id, trials, budget, seeds, backend, workers, score, max_failures, heartbeat_interval)
    outdir = Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    url = storage or f"sqlite:///{(outdir / 'tune.db').resolve()}"
    study = _open_study(name, env_id, url, heartbeat_interval, score, prune, budget, sampler_seed)
    _log_resume(study, url, trials, budget, heartbeat_interval, log)
    command = (f"pgfast tune {name} {env_id} --trials {trials} --budget {budget} --seeds "
               f"{' '.join(map(str, seeds))}" + ("" if score == "mean" else f" --score {score}")
               + (f" --sampler-seed {sampler_seed}" if sampler_seed else "")
               + ("" if prune else " --no-prune"))
    search = _Search(study, name, env_id, budget, seeds, score, max_failures, outdir, log)
    if backend == "local":
        search.run_local(trials)
    else:
        search.run_ray(trials, workers, address, heartbeat_interval)
    return write_outputs(study, name, env_id, outdir, command, score, budget, log)
