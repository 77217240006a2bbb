"""Multi-seed studies: jobs, checkpoints, logs, result tables and plots.

A study is a set of independent jobs, one per (variant, env, seed). Each job
lives in its own directory ``OUT/ENV_ID/VARIANT/seedS/``::

    job.json        what the job is (algo, env, seed, steps, config)
    progress.csv    one row per training iteration (``Run.history`` rows)
    ckpt.pt         latest checkpoint (written atomically)
    ckpt.prev.pt    the checkpoint before it (used if ckpt.pt is unreadable)
    result.json     written last: final evaluation return; its presence marks
                    the job as finished
    tb/             TensorBoard event files (when tensorboard is importable)

Rerunning a study skips finished jobs and resumes interrupted ones from their
latest readable checkpoint. ``summary.csv`` and one PNG per environment are
written at the end, and can be redrawn from the logs alone with
:func:`redraw`.

Backends: ``"local"`` (a process pool, one torch thread per worker) and
``"ray"`` (Ray tasks; joins a cluster at ``address`` or starts a local one).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    "Variant",
    "VARIANTS",
    "EXPERIMENTS",
    "Job",
    "CheckpointError",
    "TrainSession",
    "make_jobs",
    "job_status",
    "check_job_dir",
    "run_job",
    "run_experiment",
    "load_checkpoint",
    "save_checkpoint",
    "read_progress",
    "summarize",
    "write_summary",
    "plot_env",
    "redraw",
    "t_critical_975",
]

CKPT_NAME = "ckpt.pt"
PREV_CKPT_NAME = "ckpt.prev.pt"
PROGRESS_NAME = "progress.csv"
RESULT_NAME = "result.json"
JOB_NAME = "job.json"


# --------------------------------------------------------------------------
# Variants and experiments
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """One line in a study's plot: an algorithm plus fixed config overrides."""

    name: str
    """Short identifier, used in directory names and summary rows."""
    algo: str
    """Algorithm passed to ``pgfast.train``: "vpg", "trpo" or "ppo"."""
    overrides: Tuple[Tuple[str, Any], ...] = ()
    """Config fields that define the variant (applied over the env preset)."""
    label: str = ""
    """Legend label."""


VARIANTS: Dict[str, Variant] = {
    "vpg": Variant("vpg", "vpg", (("baseline", False),), "VPG (no baseline)"),
    "vpg-baseline": Variant("vpg-baseline", "vpg", (("baseline", True),), "VPG + baseline"),
    "trpo": Variant("trpo", "trpo", (), "TRPO"),
    "ppo": Variant("ppo", "ppo", (), "PPO-clip"),
}
"""All variants known to the experiments, by name."""

EXPERIMENTS: Dict[str, Tuple[str, ...]] = {
    "baseline": ("vpg", "vpg-baseline"),
    "ppo-vs-vpg": ("vpg-baseline", "ppo"),
    "all-algos": ("vpg", "vpg-baseline", "trpo", "ppo"),
}
"""Shipped experiments: name -> variant names (one plotted line each)."""

DEFAULT_ENVS: Tuple[str, ...] = ("CartPole-v1", "Pendulum-v1", "HalfCheetah-v5")


# --------------------------------------------------------------------------
# Jobs
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One independent training run of a study: (variant, env, seed).

    ``config`` holds the Config fields passed to ``pgfast.train`` (the env
    preset, the variant's overrides and the user's ``--set`` values, in that
    order of precedence, lowest first).
    """

    variant: str
    """Variant name (a key of :data:`VARIANTS` or a custom one)."""
    algo: str
    """Algorithm name for ``pgfast.train``."""
    env_id: str
    """Environment id."""
    seed: int
    """Seed for torch, numpy and the environments."""
    total_timesteps: int
    """Environment steps to train for."""
    out_dir: str
    """Directory of this job (``OUT/ENV_ID/VARIANT/seedS``)."""
    config: Tuple[Tuple[str, Any], ...] = ()
    """Config fields as sorted (name, value) pairs (hashable, picklable)."""
    device: str = "cpu"
    """Training device: "cpu", "cuda" or "auto"."""
    eval_episodes: int = 20
    """Episodes of the final deterministic evaluation."""
    checkpoint_interval: float = 60.0
    """Seconds between periodic checkpoints (0: after every iteration)."""
    tensorboard: bool = True
    """Write TensorBoard event files when tensorboard is importable."""

    @property
    def key(self) -> str:
        """Human-readable id: ``ENV_ID/VARIANT/seedS``."""
        return f"{self.env_id}/{self.variant}/seed{self.seed}"

    def config_dict(self) -> Dict[str, Any]:
        """The job's Config fields as a dict."""
        return dict(self.config)

    def to_json(self) -> Dict[str, Any]:
        """A JSON-serialisable description (written to ``job.json``)."""
        d = dataclasses.asdict(self)
        d["config"] = self.config_dict()
        return d


def _env_dirname(env_id: str) -> str:
    return env_id.replace("/", "_")


def make_jobs(
    variants: Sequence[str],
    envs: Sequence[str],
    seeds: Sequence[int],
    out: str | os.PathLike,
    total_timesteps: Optional[int] = None,
    overrides: Optional[Mapping[str, Any]] = None,
    device: str = "cpu",
    eval_episodes: int = 20,
    checkpoint_interval: float = 60.0,
    tensorboard: bool = True,
) -> List[Job]:
    """Build the job list of a study: every (variant, env, seed) combination.

    ``total_timesteps=None`` takes each env's study budget from
    :mod:`pgfast.presets`. ``overrides`` (from ``--set``) apply to every job
    and win over presets and variant settings; fields that an algorithm's
    Config does not have raise ValueError naming them.
    """
    from pgfast import algos
    from pgfast.config import check_fields

    if not variants:
        raise ValueError("variants: need at least one variant")
    if not envs:
        raise ValueError("envs: need at least one environment id")
    if not seeds:
        raise ValueError("seeds: need at least one seed")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds: duplicates in {list(seeds)}")
    if total_timesteps is not None and int(total_timesteps) <= 0:
        raise ValueError(f"total_timesteps: must be positive, got {total_timesteps}")
    if eval_episodes <= 0:
        raise ValueError(f"eval_episodes: must be positive, got {eval_episodes}")
    overrides = dict(overrides or {})
    jobs = []
    for vname in variants:
        if vname not in VARIANTS:
            raise ValueError(f"variants: unknown variant {vname!r}; known: {', '.join(VARIANTS)}")
        v = VARIANTS[vname]
        for env_id in envs:
            cfg = algos.get_preset(v.algo, env_id)
            cfg.update(dict(v.overrides))
            cfg.update(overrides)
            check_fields(algos.config_class(v.algo), cfg)
            steps = int(total_timesteps) if total_timesteps is not None else algos.study_timesteps(env_id)
            for seed in seeds:
                d = Path(out) / _env_dirname(env_id) / vname / f"seed{int(seed)}"
                jobs.append(
                    Job(
                        variant=vname,
                        algo=v.algo,
                        env_id=env_id,
                        seed=int(seed),
                        total_timesteps=steps,
                        out_dir=str(d),
                        config=tuple(sorted(cfg.items())),
                        device=device,
                        eval_episodes=int(eval_episodes),
                        checkpoint_interval=float(checkpoint_interval),
                        tensorboard=tensorboard,
                    )
                )
    return jobs


def job_status(job: Job) -> str:
    """``"done"`` (result.json for at least the job's steps), ``"partial"``
    (a checkpoint or log exists) or ``"new"``."""
    d = Path(job.out_dir)
    res = d / RESULT_NAME
    if res.exists():
        try:
            r = json.loads(res.read_text())
            # a run stops at the last whole rollout <= total_timesteps
            if int(r.get("total_timesteps", -1)) >= job.total_timesteps:
                return "done"
        except (ValueError, OSError):
            pass
        return "partial"
    if (d / CKPT_NAME).exists() or (d / PREV_CKPT_NAME).exists():
        return "partial"
    return "new"


def check_job_dir(job: Job) -> None:
    """Raise ValueError if ``job.out_dir`` holds a job with another algorithm,
    env, seed or config (a rerun would otherwise mix two different runs)."""
    f = Path(job.out_dir) / JOB_NAME
    if not f.exists():
        return
    try:
        old = json.loads(f.read_text())
    except (ValueError, OSError):
        return
    new = json.loads(json.dumps(job.to_json(), default=str))
    diff = [k for k in ("algo", "env_id", "seed") if old.get(k) != new.get(k)]
    oc, nc = old.get("config", {}), new.get("config", {})
    diff += [f"config.{k}" for k in sorted(set(oc) | set(nc)) if oc.get(k) != nc.get(k)]
    if diff:
        raise ValueError(f"{job.out_dir} holds a job with different settings ({', '.join(diff)}); "
                         f"use another --out or delete that directory")


# --------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------


class CheckpointError(RuntimeError):
    """A checkpoint could not be read (missing, truncated or corrupt)."""


def _load_one(path: Path):
    import pgfast

    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (truncated write?)")
    try:
        return pgfast.load(str(path))
    except Exception as e:  # torch raises several types for bad files
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(e).__name__}: {e})") from e


def _load_checkpoint_path(path, log):
    p = Path(path)
    if p.is_dir():
        p = p / CKPT_NAME
    prev = p.with_name(PREV_CKPT_NAME) if p.name == CKPT_NAME else p.with_name(p.stem + ".prev" + p.suffix)
    try:
        return _load_one(p), p
    except CheckpointError as e:
        first = str(e)
    if prev.exists():
        log(f"warning: {first}; using the previous checkpoint {prev}")
        try:
            return _load_one(prev), prev
        except CheckpointError as e2:
            raise CheckpointError(f"{first}; and the previous one: {e2}") from None
    raise CheckpointError(first)


def load_checkpoint(path: str | os.PathLike, log: Callable[[str], None] = print):
    """Load a Run from ``path`` (a checkpoint file or a job directory).

    If the file is truncated or corrupt, says so through ``log`` and falls
    back to the previous checkpoint next to it (``ckpt.prev.pt``). Raises
    :class:`CheckpointError` with both reasons when neither can be read.
    """
    return _load_checkpoint_path(path, log)[0]


def save_checkpoint(run, directory: str | os.PathLike) -> Path:
    """Save ``run`` to ``directory/ckpt.pt`` atomically, keeping the last
    one as ``ckpt.prev.pt``. Returns the path of the new checkpoint."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    cur, prev, tmp = d / CKPT_NAME, d / PREV_CKPT_NAME, d / (CKPT_NAME + ".new")
    run.save(str(tmp))
    if cur.exists():
        os.replace(cur, prev)
    os.replace(tmp, cur)
    return cur


# --------------------------------------------------------------------------
# Logs
# --------------------------------------------------------------------------


def _scalar(v) -> Optional[float]:
    """A history value as a float, or None for non-scalars."""
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v)
    try:  # 0-d tensors / arrays
        import torch

        if isinstance(v, torch.Tensor) and v.numel() == 1:
            return float(v.item())
    except ImportError:  # pragma: no cover
        pass
    if isinstance(v, np.ndarray) and v.size == 1:
        return float(v.reshape(()))
    return None


class CsvLog:
    """Append-only CSV of history rows; the header is fixed by the first row.

    On resume, rows past the checkpoint's ``global_step`` are dropped so that
    the log matches the state training continues from.
    """

    def __init__(self, path: str | os.PathLike, resume_step: Optional[int] = None):
        self.path = Path(path)
        self.fields: Optional[List[str]] = None
        if resume_step is None:  # a new run: its first row fixes the header
            self.path.unlink(missing_ok=True)
        elif self.path.exists() and self.path.stat().st_size > 0:
            rows = read_progress(self.path)
            with open(self.path, newline="") as f:
                header = next(csv.reader(f), None)
            self.fields = header
            keep = [r for r in rows if r.get("global_step", 0) <= resume_step]
            if len(keep) != len(rows):
                self._rewrite(header, keep)
        elif self.path.exists():
            self.path.unlink()

    def _rewrite(self, header, rows):
        tmp = self.path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            for r in rows:
                w.writerow(["" if r.get(k) is None or (isinstance(r.get(k), float) and math.isnan(r[k])) else r[k] for k in header])
        os.replace(tmp, self.path)

    def append(self, row: Mapping[str, Any]) -> None:
        """Write one history row (non-scalar values are skipped)."""
        flat = {k: _scalar(v) for k, v in row.items()}
        flat = {k: v for k, v in flat.items() if v is not None}
        new = self.fields is None
        if new:
            self.fields = ["global_step"] + sorted(k for k in flat if k != "global_step")
        with open(self.path, "a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(self.fields)
            out = []
            for k in self.fields:
                v = flat.get(k)
                if v is None or math.isnan(v):
                    out.append("")
                elif k == "global_step":
                    out.append(str(int(v)))
                else:
                    out.append(repr(v))
            w.writerow(out)


def read_progress(path: str | os.PathLike) -> List[Dict[str, float]]:
    """Read a ``progress.csv`` into a list of dicts of floats (empty cells are
    NaN; ``global_step`` is an int). Returns [] for a missing file."""
    p = Path(path)
    if not p.exists():
        return []
    rows = []
    with open(p, newline="") as f:
        for r in csv.DictReader(f):
            row: Dict[str, float] = {}
            for k, v in r.items():
                if k is None:
                    continue
                if v is None or v == "":
                    row[k] = float("nan")
                else:
                    try:
                        row[k] = float(v)
                    except ValueError:
                        row[k] = float("nan")
            if "global_step" in row and not math.isnan(row["global_step"]):
                row["global_step"] = int(row["global_step"])
                rows.append(row)
    return rows


class _TBLog:
    """TensorBoard scalars, or nothing when tensorboard is not importable."""

    def __init__(self, logdir: Path, enabled: bool):
        self.writer = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except Exception:  # tensorboard missing or broken: logs are optional
                return
            self.writer = SummaryWriter(str(logdir))

    def append(self, row: Mapping[str, Any]) -> None:
        if self.writer is None:
            return
        step = int(row.get("global_step", 0))
        for k, v in row.items():
            if k == "global_step":
                continue
            f = _scalar(v)
            if f is not None and not math.isnan(f):
                tag = ("charts/" if k in ("episodic_return", "episodic_length", "sps", "learning_rate") else "losses/") + k
                self.writer.add_scalar(tag, f, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


# --------------------------------------------------------------------------
# The trainer API, in one place
# --------------------------------------------------------------------------


class _TrainerAPI:
    """Thin adapter over ``pgfast.Run`` used by the training sessions."""

    @staticmethod
    def new_run(algo, env_id, total_timesteps, seed, device, config):
        """An untrained Run (presets already merged into ``config``)."""
        import pgfast
        from pgfast.algos import get_algo

        fields = dict(config)
        fields["total_timesteps"] = int(total_timesteps)
        cfg = get_algo(algo).Config(**fields)
        return pgfast.Run(algo, env_id, cfg, seed=int(seed), device=device)

    @staticmethod
    def learn(run, target_timesteps, callback):
        """Train ``run`` up to ``target_timesteps`` env steps in total."""
        more = int(target_timesteps) - int(run.global_step)
        if more <= 0:
            return run
        if int(run.config.total_timesteps) == int(target_timesteps):
            return run.learn(callback=callback)  # continue the original schedule exactly
        return run.learn(more, callback=callback)

    @staticmethod
    def global_step(run) -> int:
        return int(run.global_step)

    @staticmethod
    def configured_timesteps(run) -> int:
        return int(run.config.total_timesteps)

    @staticmethod
    def evaluate(run, episodes):
        return run.evaluate(episodes=int(episodes), deterministic=True)


# --------------------------------------------------------------------------
# Training with logs, checkpoints and signals

# --------------------------------------------------------------------------


class Interrupted(Exception):
    """Training was stopped by a signal (SIGINT/SIGTERM) or a stop request;
    a checkpoint has been saved."""


class _StopRequested(Exception):
    pass


_IN_WORKER = False  # True in pool / Ray worker processes
_WORKER_STOP: Optional[int] = None  # signal that asked this worker process to stop


class _SignalGuard:
    """Turns SIGINT/SIGTERM into a stop request checked between iterations,
    so the run is saved in a consistent state. A second SIGINT raises
    KeyboardInterrupt at once. No-op outside the main thread."""

    def __init__(self):
        self.requested: Optional[int] = None
        self._old: Dict[int, Any] = {}

    def _handler(self, signum, frame):
        global _WORKER_STOP
        if self.requested is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = signum
        if _IN_WORKER:
            _WORKER_STOP = signum

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                try:
                    self._old[s] = signal.signal(s, self._handler)
                except (ValueError, OSError):  # pragma: no cover
                    pass
        return self

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)
        self._old.clear()
        return False


class TrainSession:
    """Train one run with CSV/TensorBoard logs, periodic atomic checkpoints
    and signal handling; used by ``pgfast train`` and by every study job.

    Either ``resume`` names a checkpoint (file or directory) to continue, or
    a new run of ``algo`` on ``env_id`` is created. ``total_timesteps`` is
    the target env-step count of the whole run (resumed runs continue up to
    it). ``on_iteration(run, row)`` is called after each logged iteration;
    raising from it stops training (after a checkpoint is saved for
    :class:`Interrupted`/``KeyboardInterrupt``).
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        algo: Optional[str] = None,
        env_id: Optional[str] = None,
        total_timesteps: Optional[int] = None,
        seed: int = 0,
        device: str = "cpu",
        config: Optional[Mapping[str, Any]] = None,
        resume: Optional[str | os.PathLike] = None,
        checkpoint_interval: float = 60.0,
        tensorboard: bool = True,
        progress_bar: bool = False,
        log: Callable[[str], None] = print,
        on_iteration: Optional[Callable[[Any, Mapping[str, Any]], None]] = None,
    ):
        if resume is None and (algo is None or env_id is None or total_timesteps is None):
            raise ValueError("algo, env_id and total_timesteps are required unless resume is given")
        if total_timesteps is not None and int(total_timesteps) <= 0:
            raise ValueError(f"total_timesteps: must be positive, got {total_timesteps}")
        if checkpoint_interval < 0:
            raise ValueError(f"checkpoint_interval: must be >= 0, got {checkpoint_interval}")
        self.out_dir = Path(out_dir)
        self.algo, self.env_id, self.seed, self.device = algo, env_id, int(seed), device
        self.config = dict(config or {})
        self.total_timesteps = None if total_timesteps is None else int(total_timesteps)
        self.resume = resume
        self.checkpoint_interval = float(checkpoint_interval)
        self.tensorboard = tensorboard
        self.progress_bar = progress_bar
        self.log = log
        self.on_iteration = on_iteration
        self.run = None

    # -- helpers ----------------------------------------------------------
    def _save(self) -> None:
        step = int(self.run.global_step)
        if step == getattr(self, "_saved_step", None):
            return  # ckpt.pt already holds this state; keep ckpt.prev.pt as the one before
        save_checkpoint(self.run, self.out_dir)
        self._last_save = time.monotonic()
        self._saved_step = step

    def run_training(self):
        """Train to ``total_timesteps``; returns the Run. Raises
        :class:`Interrupted` after saving a checkpoint on SIGINT/SIGTERM."""
        api = _TrainerAPI
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.resume is not None:
            self.run, loaded = _load_checkpoint_path(self.resume, self.log)
            if loaded.name == PREV_CKPT_NAME and (loaded.parent / CKPT_NAME).exists():
                # the newer file is unreadable: move it aside so that the next save
                # does not rotate it into ckpt.prev.pt over the good one
                bad = loaded.parent / (CKPT_NAME + ".corrupt")
                os.replace(loaded.parent / CKPT_NAME, bad)
                self.log(f"moved the unreadable checkpoint to {bad}")
            start_step = api.global_step(self.run)
            if self.total_timesteps is None:
                self.total_timesteps = api.configured_timesteps(self.run)
            self.log(f"resuming from {self.resume} at step {start_step}")
        else:
            self.run = None
            start_step = 0
        csv_log = CsvLog(self.out_dir / PROGRESS_NAME, resume_step=start_step if self.run is not None else None)
        tb = _TBLog(self.out_dir / "tb", self.tensorboard)
        bar = None
        if self.progress_bar:
            from tqdm import tqdm

            bar = tqdm(total=self.total_timesteps, initial=start_step, unit="step", dynamic_ncols=True, file=sys.stderr)
        self._last_save = time.monotonic()
        self._saved_step = start_step if self.run is not None else None
        guard = _SignalGuard()
        state = {"step": start_step, "ret": float("nan")}

        def callback(row):
            run = self.run
            step = int(row.get("global_step", state["step"]))
            csv_log.append(row)
            tb.append(row)
            r = _scalar(row.get("episodic_return"))
            if r is not None and not math.isnan(r):
                state["ret"] = r
            if bar is not None:
                bar.update(max(0, step - state["step"]))
                sps = _scalar(row.get("sps"))
                bar.set_postfix(sps=f"{sps:.0f}" if sps is not None else "?", ret=f"{state['ret']:.1f}", refresh=False)
            state["step"] = step
            if self.on_iteration is not None:
                self.on_iteration(run, row)
            if guard.requested is not None:
                raise _StopRequested
            if self.checkpoint_interval == 0 or time.monotonic() - self._last_save >= self.checkpoint_interval:
                self._save()

        try:
            with guard:
                try:
                    if self.run is None:
                        self.run = api.new_run(
                            self.algo, self.env_id, self.total_timesteps, self.seed, self.device, self.config
                        )
                    api.learn(self.run, self.total_timesteps, callback)
                except (_StopRequested, KeyboardInterrupt, Interrupted) as e:
                    if self.run is not None:
                        self._save()
                        self.log(f"stopped at step {api.global_step(self.run)}; checkpoint saved to {self.out_dir / CKPT_NAME}")
                    else:
                        self.log("stopped before the first iteration; nothing to save")
                    why = "signal " + signal.Signals(guard.requested).name if guard.requested else type(e).__name__
                    raise Interrupted(f"interrupted ({why})") from None
            self._save()
        finally:
            if bar is not None:
                bar.close()
            tb.close()
        return self.run


# --------------------------------------------------------------------------
# Running jobs
# --------------------------------------------------------------------------


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


def _stamp(t0: Optional[float] = None) -> str:
    now = time.strftime("%H:%M:%S")
    return now if t0 is None else f"{now} +{time.monotonic() - t0:7.1f}s"


def run_job(job: Job, on_iteration=None, log: Callable[[str], None] = None, progress_interval: float = 60.0) -> Dict[str, Any]:
    """Run one job to completion (or resume it) and write ``result.json``.

    Returns a dict with ``key``, ``status`` ("done", "skipped" or
    "interrupted"), ``eval_mean``, ``eval_std``, ``global_step`` and
    ``wall_s``. Finished jobs are skipped (their stored result is returned).
    """
    api = _TrainerAPI
    if log is None:
        def log(msg):
            print(msg, flush=True)
    t0 = time.monotonic()
    d = Path(job.out_dir)
    status = job_status(job)
    if status == "done":
        r = json.loads((d / RESULT_NAME).read_text())
        r.update(status="skipped", key=job.key)
        return r
    d.mkdir(parents=True, exist_ok=True)
    (d / JOB_NAME).write_text(json.dumps(job.to_json(), indent=1, default=str))
    resume = None
    if status == "partial" and ((d / CKPT_NAME).exists() or (d / PREV_CKPT_NAME).exists()):
        resume = d
        (d / RESULT_NAME).unlink(missing_ok=True)
    log(f"[{_stamp()}] start  {job.key} ({'resume' if resume else 'new'}, {job.total_timesteps} steps)")
    last = {"t": time.monotonic()}

    def on_iter(run, row):
        if progress_interval and time.monotonic() - last["t"] >= progress_interval:
            last["t"] = time.monotonic()
            r = _scalar(row.get("episodic_return"))
            log(f"[{_stamp()}]   ... {job.key} step {int(row.get('global_step', 0))}/{job.total_timesteps}"
                f" return {r if r is None else round(r, 1)}")
        if on_iteration is not None:
            on_iteration(run, row)

    sess = TrainSession(
        d,
        algo=job.algo,
        env_id=job.env_id,
        total_timesteps=job.total_timesteps,
        seed=job.seed,
        device=job.device,
        config=job.config_dict(),
        resume=resume,
        checkpoint_interval=job.checkpoint_interval,
        tensorboard=job.tensorboard,
        log=log,
        on_iteration=on_iter,
    )
    try:
        run = sess.run_training()
    except Interrupted as e:
        log(f"[{_stamp()}] stop   {job.key}: {e}")
        return {"key": job.key, "status": "interrupted", "wall_s": time.monotonic() - t0}
    mean, std = api.evaluate(run, job.eval_episodes)
    result = {
        "key": job.key,
        "env_id": job.env_id,
        "variant": job.variant,
        "algo": job.algo,
        "seed": job.seed,
        "global_step": api.global_step(run),
        "total_timesteps": job.total_timesteps,
        "eval_episodes": job.eval_episodes,
        "eval_mean": float(mean),
        "eval_std": float(std),
        "wall_s": time.monotonic() - t0,
        "status": "done",
    }
    tmp = d / (RESULT_NAME + ".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, d / RESULT_NAME)
    log(f"[{_stamp()}] done   {job.key}: eval {mean:.1f} ± {std:.1f} ({time.monotonic() - t0:.1f}s)")
    return result


def _worker_stop_handler(signum, frame):
    global _WORKER_STOP
    _WORKER_STOP = signum


def _run_job_in_worker(job: Job, own_signals: bool = True) -> Dict[str, Any]:
    """Process-pool / Ray entry point: one torch thread, then :func:`run_job`.

    Once the worker process got SIGINT/SIGTERM (during a job or between
    jobs), queued jobs return "interrupted" without starting. With
    ``own_signals=False`` (Ray workers) the process's handlers are left to
    the host outside of training.
    """
    global _IN_WORKER
    _worker_init()
    if own_signals and not _IN_WORKER:
        _IN_WORKER = True
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                signal.signal(s, _worker_stop_handler)
    if _WORKER_STOP is not None:
        return {"key": job.key, "status": "interrupted", "error": "worker was asked to stop"}
    try:
        return run_job(job)
    except Exception as e:  # report, don't kill the whole study
        import traceback

        traceback.print_exc()
        return {"key": job.key, "status": "failed", "error": f"{type(e).__name__}: {e}"}


def _ensure_importable_env() -> Dict[str, str]:
    """PYTHONPATH that makes this pgfast importable in fresh worker processes."""
    root = str(Path(__file__).resolve().parent.parent)
    pp = os.environ.get("PYTHONPATH", "")
    parts = [p for p in pp.split(os.pathsep) if p]
    if root not in parts:
        parts.insert(0, root)
    return {"PYTHONPATH": os.pathsep.join(parts)}


def run_experiment(
    jobs: Sequence[Job],
    workers: Optional[int] = None,
    backend: str = "local",
    address: Optional[str] = None,
    log: Callable[[str], None] = None,
    on_iteration=None,
) -> List[Dict[str, Any]]:
    """Run every job (skipping finished ones, resuming interrupted ones).

    ``workers``: parallel jobs (default: CPU count; with Ray, CPUs of the
    local cluster it starts). ``backend``: "local" or "ray". With
    ``workers == 1`` and the local backend, jobs run in this process (and
    ``on_iteration`` is honoured). Returns one result dict per job. Raises
    :class:`Interrupted` when stopped by SIGINT/SIGTERM (running jobs save a
    checkpoint first).
    """
    if backend not in ("local", "ray"):
        raise ValueError(f"backend: expected 'local' or 'ray', got {backend!r}")
    if workers is not None and int(workers) < 1:
        raise ValueError(f"workers: must be >= 1, got {workers}")
    if address is not None and backend != "ray":
        raise ValueError("address: only valid with backend='ray'")
    if log is None:
        def log(msg):
            print(msg, flush=True)
    workers = int(workers or os.cpu_count() or 1)
    t0 = time.monotonic()
    pending, results = [], {}
    for j in jobs:
        check_job_dir(j)
    for j in jobs:
        st = job_status(j)
        if st == "done":
            results[j.key] = run_job(j, log=log)
            log(f"[{_stamp(t0)}] skip   {j.key} (finished: eval {results[j.key]['eval_mean']:.1f})")
        else:
            pending.append(j)
    log(f"[{_stamp(t0)}] {len(jobs)} jobs: {len(jobs) - len(pending)} finished, {len(pending)} to run "
        f"on {backend} with {workers} worker(s)")
    # longest jobs first (shorter makespan on a pool; ties keep the given order)
    pending.sort(key=lambda j: -j.total_timesteps)
    if pending:
        if backend == "local" and workers == 1:
            _worker_init()
            for j in pending:
                try:
                    r = run_job(j, on_iteration=on_iteration, log=log)
                except KeyboardInterrupt:
                    raise Interrupted(f"interrupted during {j.key}") from None
                results[j.key] = r
                if r["status"] == "interrupted":
                    raise Interrupted(f"interrupted during {j.key}; rerun the same command to resume")
        elif backend == "local":
            results.update(_run_pool(pending, workers, log, t0))
        else:
            results.update(_run_ray(pending, workers, address, log, t0))
    out = [results[j.key] for j in jobs]
    bad = [r for r in out if r["status"] not in ("done", "skipped")]
    log(f"[{_stamp(t0)}] finished {len(out) - len(bad)}/{len(out)} jobs in {time.monotonic() - t0:.1f}s")
    if any(r["status"] == "interrupted" for r in bad):
        raise Interrupted("some jobs were interrupted; rerun the same command to resume them")
    if bad:
        raise RuntimeError("jobs failed: " + "; ".join(f"{r['key']}: {r.get('error', r['status'])}" for r in bad))
    return out


def _run_pool(pending: Sequence[Job], workers: int, log, t0) -> Dict[str, Dict[str, Any]]:
    import concurrent.futures as cf
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    results = {}
    old_pp = os.environ.get("PYTHONPATH")
    os.environ.update(_ensure_importable_env())
    stop = _SignalGuard()
    try:
        with stop, cf.ProcessPoolExecutor(max_workers=min(workers, len(pending)), mp_context=ctx,
                                          initializer=_worker_init) as ex:
            futs = {ex.submit(_run_job_in_worker, j): j for j in pending}
            not_done = set(futs)
            while not_done:
                done, not_done = cf.wait(not_done, timeout=0.5, return_when=cf.FIRST_COMPLETED)
                for f in done:
                    j = futs[f]
                    try:
                        results[j.key] = f.result()
                    except Exception as e:  # e.g. a worker process crashed (BrokenProcessPool)
                        results[j.key] = {"key": j.key, "status": "failed", "error": f"{type(e).__name__}: {e}"}
                        log(f"[{_stamp(t0)}] failed {j.key}: {type(e).__name__}: {e}")
                if stop.requested is not None:
                    for f in not_done:
                        f.cancel()
                    # running workers received the same signal (same process
                    # group) or get it forwarded here; they checkpoint and return
                    for p in list(getattr(ex, "_processes", {}).values()):
                        try:
                            os.kill(p.pid, signal.SIGTERM)
                        except (ProcessLookupError, OSError):
                            pass
                    for f in not_done:
                        if not f.cancelled():
                            try:
                                results[futs[f].key] = f.result()
                            except Exception as e:
                                results[futs[f].key] = {"key": futs[f].key, "status": "interrupted",
                                                        "error": f"{type(e).__name__}: {e}"}
                    for f in not_done:
                        if f.cancelled():
                            results[futs[f].key] = {"key": futs[f].key, "status": "interrupted"}
                    not_done = set()
    finally:
        if old_pp is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old_pp
    return results


def _run_ray(pending: Sequence[Job], workers: int, address: Optional[str], log, t0) -> Dict[str, Dict[str, Any]]:
    try:
        import ray
    except ImportError as e:
        raise RuntimeError("backend 'ray' needs ray: pip install 'pgfast[ray]'") from e
    started_here = False
    if not ray.is_initialized():
        runtime_env = {"env_vars": _ensure_importable_env()}
        if address is not None:
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=True)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, runtime_env=runtime_env, log_to_driver=True)
        started_here = True
    results = {}
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(_run_job_in_worker)
        refs = {task.remote(j, False): j for j in pending}
        not_done = list(refs)
        while not_done:
            done, not_done = ray.wait(not_done, num_returns=1, timeout=None)
            for ref in done:
                j = refs[ref]
                try:
                    results[j.key] = ray.get(ref)
                except Exception as e:  # task crashed (e.g. worker died)
                    results[j.key] = {"key": j.key, "status": "failed", "error": f"{type(e).__name__}: {e}"}
                r = results[j.key]
                if r["status"] != "done":
                    log(f"[{_stamp(t0)}] {r['status']} {j.key}: {r.get('error', '')}")
                else:
                    log(f"[{_stamp(t0)}] done   {j.key}: eval {r['eval_mean']:.1f} (ray)")
    finally:
        if started_here:
            ray.shutdown()
    return results


# --------------------------------------------------------------------------
# Summary statistics
# --------------------------------------------------------------------------

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


def summarize(results: Iterable[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """Per (env, variant): n seeds, mean and sample std of the final
    evaluation returns over seeds, and the 95% t-interval of the mean.

    ``results`` are the dicts stored in ``result.json``. With one seed the
    std is 0 and the interval is undefined (NaN bounds).
    """
    groups: Dict[Tuple[str, str], List[Mapping[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["env_id"], r["variant"]), []).append(r)
    order = {v: i for i, v in enumerate(VARIANTS)}
    rows = []
    for (env_id, variant), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 99), kv[0][1])):
        rs = sorted(rs, key=lambda r: r["seed"])
        x = np.array([r["eval_mean"] for r in rs], dtype=np.float64)
        n = len(x)
        mean = float(x.mean())
        std = float(x.std(ddof=1)) if n > 1 else 0.0
        half = t_critical_975(n - 1) * std / math.sqrt(n) if n > 1 else float("nan")
        rows.append(
            {
                "env_id": env_id,
                "variant": variant,
                "n": n,
                "total_timesteps": int(min(r["global_step"] for r in rs)),
                "eval_mean": mean,
                "eval_std": std,
                "ci95_low": mean - half,
                "ci95_high": mean + half,
                "seeds": " ".join(str(r["seed"]) for r in rs),
                "per_seed": " ".join(f"{v:.1f}" for v in x),
                "wall_s": float(sum(r.get("wall_s", 0.0) for r in rs)),
            }
        )
    return rows


SUMMARY_FIELDS = ["env_id", "variant", "n", "total_timesteps", "eval_mean", "eval_std", "ci95_low", "ci95_high",
                  "seeds", "per_seed", "wall_s"]


def write_summary(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Write :func:`summarize` rows to a CSV file (floats to 2 decimals)."""
    p = Path(path)
    with open(p, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=SUMMARY_FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.2f}" if isinstance(v, float) else v) for k, v in r.items()})
    return p


def format_summary(rows: Sequence[Mapping[str, Any]]) -> str:
    """A plain-text table of :func:`summarize` rows."""
    lines = [f"{'env':<16} {'variant':<14} {'n':>2} {'steps':>9} {'eval mean ± std':>20} {'95% CI':>22}"]
    for r in rows:
        ci = "n/a" if math.isnan(r["ci95_low"]) else f"[{r['ci95_low']:.1f}, {r['ci95_high']:.1f}]"
        lines.append(f"{r['env_id']:<16} {r['variant']:<14} {r['n']:>2} {r['total_timesteps']:>9} "
                     f"{r['eval_mean']:>10.1f} ± {r['eval_std']:<7.1f} {ci:>22}")
    return "\n".join(lines)


def format_summary_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table of :func:`summarize` rows (for reports)."""
    out = ["| env | variant | seeds (n) | env steps | final eval return, mean ± std | 95% CI | per seed |",
           "|---|---|---|---:|---:|---|---|"]
    for r in rows:
        ci = "n/a" if math.isnan(r["ci95_low"]) else f"[{r['ci95_low']:.1f}, {r['ci95_high']:.1f}]"
        label = VARIANTS[r["variant"]].label if r["variant"] in VARIANTS else r["variant"]
        out.append(f"| {r['env_id']} | {label} | {r['seeds']} ({r['n']}) | {r['total_timesteps']:,} | "
                   f"{r['eval_mean']:.1f} ± {r['eval_std']:.1f} | {ci} | {r['per_seed']} |")
    return "\n".join(out)


# --------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------


def seed_curves(variant_dir: str | os.PathLike, key: str = "episodic_return") -> List[Tuple[np.ndarray, np.ndarray]]:
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


def aggregate(curves: Sequence[Tuple[np.ndarray, np.ndarray]], points: int = 100):
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


def plot_env(env_dir: str | os.PathLike, path: Optional[str | os.PathLike] = None, env_id: Optional[str] = None,
             variants: Optional[Sequence[str]] = None):
    """Plot mean training return vs env steps for every variant under
    ``env_dir`` (one line each, shaded band = ±1 std over seeds); saves a PNG
    to ``path`` when given and returns the matplotlib Figure."""
    import matplotlib

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


def redraw(out: str | os.PathLike, log: Callable[[str], None] = print) -> Dict[str, Any]:
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
    plots = []
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
    rows = summarize(_collect_results(root))
    summary = write_summary(rows, root / "summary.csv")
    (root / "summary.md").write_text(format_summary_markdown(rows) + "\n")
    log(format_summary(rows))
    log(f"summary: {summary}")
    for p in plots:
        log(f"plot:    {p}")
    return {"summary": summary, "plots": plots, "rows": rows}
