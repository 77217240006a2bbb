"""Training in a run directory: logs, rotating checkpoints, resume.

``pgfast train`` and every study job train through :class:`TrainSession`, which
writes into one directory::

    ckpt.pt         latest checkpoint (atomic, :mod:`pgfast.checkpoint`)
    ckpt.prev.pt    the checkpoint before it (read if ckpt.pt is unreadable)
    progress.csv    one row per iteration (:mod:`pgfast.logs`)
    tb/             TensorBoard event files (when tensorboard is importable)
    run.json        metadata: algo, env, seed, where the settings came from (preset
                    or defaults for the action space), the Config, pgfast version;
                    each resume appends its step and time to ``resumes``
    run.lock        the advisory lock of the run's one writer (``fcntl.flock``), with
                    the holder's PID; held for the whole session, released by the
                    kernel when the holder dies (so a dead holder's lock is taken over)

A directory that holds a run (a checkpoint) is never replaced unless asked
(``overwrite=True``): a new run there raises :class:`RunExistsError` naming the run
found and the ways on (resume, overwrite, another directory).

The loop itself is :meth:`pgfast.Run.learn` under the lifecycle of
:mod:`pgfast.session`: checkpoints every ``checkpoint_interval`` seconds and at
the end, and SIGINT/SIGTERM stop training at the end of the current iteration
after a checkpoint (a second SIGINT stops at once).
"""

from __future__ import annotations

import datetime
import fcntl
import json
import shutil
import math
import os
import sys
import tempfile
import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, ContextManager, Dict, Mapping, Optional, Union

from tqdm import tqdm

from pgfast import checkpoint
from pgfast.backends import describe as describe_paths
from pgfast.backends import describe_device
from pgfast.algos import get_algo
from pgfast.logs import PROGRESS_NAME, CsvLog, TensorBoardLog, scalar
from pgfast.session import CheckpointSchedule, Interrupted, SignalGuard, StopFlag
from pgfast.trainer import InexactResumeWarning, Run, load

__all__ = ["TrainSession", "META_NAME", "LOCK_NAME", "RunExistsError", "RunLockedError", "RunLock",
           "read_metadata", "describe_run"]

META_NAME = "run.json"
LOCK_NAME = "run.lock"


class RunExistsError(ValueError):
    """A new run was asked for in a directory that holds one (and no overwrite)."""


class RunLockedError(RuntimeError):
    """Another live process holds the run directory's lock."""


class RunLock:
    """The advisory lock of a run directory (``DIR/run.lock``, ``fcntl.flock``).

    :meth:`acquire` takes it without waiting or raises :class:`RunLockedError`
    naming the holder's PID (written into the file by the holder). The kernel
    releases a flock when its holder dies, so a lock left by a killed process is
    simply taken over. Held until :meth:`release` (or the process ends).
    """

    def __init__(self, directory: PathLike) -> None:
        self.path = Path(directory) / LOCK_NAME
        self._fd: Optional[int] = None

    def acquire(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                holder = os.pread(fd, 200, 0).decode(errors="replace").split()
            finally:
                os.close(fd)
            who = f"process {holder[0]}" if holder else "another process"
            raise RunLockedError(f"{self.path.parent} is in use by {who} ({self.path} is locked); "
                                 f"wait for it to finish or stop it, or use another directory") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {' '.join(sys.argv[:3])}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def describe_run(run_dir: PathLike) -> Optional[str]:
    """"ppo on CartPole-v1 at step 8192" for a directory holding a run (a readable
    checkpoint, or at least one checkpoint file), else None."""
    d = Path(run_dir)
    if not checkpoint.exists(d):
        return None
    try:
        found, _ = checkpoint.candidates(d)
    except checkpoint.CheckpointError:
        found = []
    meta = read_metadata(d) or {}
    step = f" at step {found[0][0]}" if found else " (checkpoint unreadable)"
    if found:
        try:
            ck = checkpoint.read(found[0][1])
            meta = {"algo": ck.get("algo"), "env_id": ck.get("env_id")}
        except (checkpoint.CheckpointError, ValueError, OSError):
            pass
    return f"{meta.get('algo', '?')} on {meta.get('env_id', '?')}{step}"

PathLike = Union[str, "os.PathLike[str]"]


class TrainSession:
    """Train one run with CSV/TensorBoard logs, periodic atomic checkpoints
    and signal handling; used by ``pgfast train`` and by every study job.

    Either ``resume`` names a checkpoint (file or directory) to continue, or
    a new run of ``algo`` on ``env_id`` is created (``config``: its Config
    fields, presets already merged). ``total_timesteps`` is the target env-step
    count of the whole run (resumed runs continue up to it; default: the
    checkpoint's). ``on_iteration(run, row)`` is called after each logged
    iteration; a KeyboardInterrupt or :class:`~pgfast.session.Interrupted`
    raised from it stops training after a checkpoint.

    ``device``: the training device; with ``resume``, None keeps the
    checkpoint's and a device given overrides it (a CUDA run continues on CPU).
    ``algo``/``env_id`` given with ``resume`` must be the checkpoint's.

    ``stop``: the :class:`~pgfast.session.StopFlag` of whoever runs this session
    (a study runner, which then owns the signal handling); without one, the
    session guards SIGINT/SIGTERM itself.

    ``settings``: where ``config`` came from (e.g. "preset ppo/Acrobot-v1",
    "defaults for Box actions"), recorded in the run's ``run.json``.

    ``overwrite``: a new run may replace the run found in ``out_dir`` (its
    checkpoints, logs and run.json are removed first); without it that raises
    :class:`RunExistsError`. ``trust``: load a resumed checkpoint that needs
    arbitrary unpickling (see :func:`pgfast.load`). ``budget_note``: say when the
    steps to go are not a multiple of the batch (study jobs, whose budgets come from
    the presets, do not). ``show_settings``: log the settings line
    (``settings: <settings>; paths: rollout native, update native``) once the run exists.

    The session holds ``out_dir``'s :class:`RunLock` from start to end: a second
    session on the same directory raises :class:`RunLockedError` at once.
    """

    def __init__(
        self,
        out_dir: PathLike,
        algo: Optional[str] = None,
        env_id: Optional[str] = None,
        total_timesteps: Optional[int] = None,
        seed: int = 0,
        device: Optional[str] = "cpu",
        config: Optional[Mapping[str, Any]] = None,
        resume: Optional[PathLike] = None,
        checkpoint_interval: float = 60.0,
        tensorboard: bool = True,
        progress_bar: bool = False,
        log: Callable[[str], None] = print,
        on_iteration: Optional[Callable[[Run, Mapping[str, Any]], None]] = None,
        stop: Optional[StopFlag] = None,
        settings: Optional[str] = None,
        overwrite: bool = False,
        trust: bool = False,
        budget_note: bool = True,
        show_settings: bool = False,
    ) -> None:
        if resume is None and (algo is None or env_id is None or total_timesteps is None):
            raise ValueError("algo, env_id and total_timesteps are required unless resume is given")
        if total_timesteps is not None and int(total_timesteps) <= 0:
            raise ValueError(f"total_timesteps: must be positive, got {total_timesteps}")
        if checkpoint_interval < 0:
            raise ValueError(f"checkpoint_interval: must be >= 0, got {checkpoint_interval}")
        self.out_dir = Path(out_dir)
        self.algo, self.env_id, self.seed, self.device = algo, env_id, int(seed), device
        self.config: Dict[str, Any] = dict(config or {})
        self.total_timesteps = None if total_timesteps is None else int(total_timesteps)
        self.resume = resume
        self.checkpoint_interval = float(checkpoint_interval)
        self.tensorboard = tensorboard
        self.progress_bar = progress_bar
        self.log = log
        self.on_iteration = on_iteration
        self.stop = stop
        self.settings = settings
        self.overwrite = overwrite
        self.trust = trust
        self.budget_note = budget_note
        self.show_settings = show_settings
        self.run: Optional[Run] = None

    def _new_run(self) -> Run:
        assert self.algo is not None and self.env_id is not None and self.total_timesteps is not None
        fields = dict(self.config)
        fields["total_timesteps"] = self.total_timesteps
        cfg = get_algo(self.algo).Config(**fields)
        return Run(self.algo, self.env_id, cfg, seed=self.seed, device=self.device or "auto")

    def _save(self) -> None:
        assert self.run is not None
        checkpoint.save_rotating(self.run.state_dict(), self.out_dir)

    def run_training(self) -> Run:
        """Train to ``total_timesteps`` under the run directory's lock (see :meth:`_train`)."""
        created = not self.out_dir.exists()
        lock = RunLock(self.out_dir).acquire()
        ok = False
        try:
            run = self._train()
            ok = True
            return run
        finally:
            lock.release()
            if not ok and created and self.run is None:  # failed before anything was written
                shutil.rmtree(self.out_dir, ignore_errors=True)

    def _show_settings(self) -> None:
        """The settings line (``show_settings``): where the config came from, the paths and the
        device (with ``device="auto"``'s reason)."""
        assert self.run is not None
        if self.show_settings:
            self.log(f"settings: {self.settings or 'as the run saved them'}; paths: {describe_paths(self.run.paths)}; "
                     f"device: {describe_device(self.run)}")

    def _existing(self, loaded: Optional[Path]) -> None:
        """Refuse (or, with overwrite, clear) a run found in ``out_dir`` that is not the one resumed."""
        if loaded is not None and loaded.parent.resolve() == self.out_dir.resolve():
            return
        found = describe_run(self.out_dir)
        if found is None:
            return
        if not self.overwrite:
            raise RunExistsError(
                f"{self.out_dir} holds a run ({found}); use --resume {self.out_dir} to continue it, "
                f"--overwrite to replace it, or another --out")
        self.log(f"replacing the run in {self.out_dir} ({found})")
        for name in (checkpoint.CKPT_NAME, checkpoint.PREV_CKPT_NAME, checkpoint.CKPT_NAME + ".corrupt",
                     PROGRESS_NAME, META_NAME):
            (self.out_dir / name).unlink(missing_ok=True)
        shutil.rmtree(self.out_dir / "tb", ignore_errors=True)
        checkpoint.remove_leftovers(self.out_dir)

    def _open_run(self) -> Optional[int]:
        """Build the new run or load the resumed one into ``self.run`` (everything that can
        fail on the arguments fails before the directory is written), settle the directory and
        say how training starts; returns the resumed step (None for a new run)."""
        if self.resume is None:
            self._existing(None)  # refused before anything is built: one line
            self.run = self._new_run()
            self._show_settings()
            self._prepare_dir()
            self._write_metadata(None)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", InexactResumeWarning)  # said through log below
                resumed, loaded = checkpoint.load_with_fallback(
                    self.resume, lambda p: load(p, device=self.device, trust=self.trust), self.log, trust=self.trust)
            for what, given, saved in (("ALGO", self.algo, resumed.algo), ("ENV_ID", self.env_id, resumed.env_id)):
                if given is not None and given != saved and not (what == "ALGO" and get_algo(given).name == saved):
                    resumed.close()
                    raise ValueError(f"--resume: {what} {given} differs from the checkpoint's {saved} "
                                     f"({loaded}); drop it or give {saved}")
            self.run = resumed
            if self.total_timesteps is None:
                self.total_timesteps = int(resumed.config.total_timesteps)
            self._show_settings()
            self._existing(loaded)
            self._prepare_dir()
            self._write_metadata(resumed.global_step)
            if loaded.parent.resolve() == self.out_dir.resolve():
                checkpoint.settle(loaded, self.log)
            self.log(f"resuming from {self.resume} at step {resumed.global_step}")
            if resumed.resume_note is not None:
                self.log(f"note: {resumed.resume_note}")
        assert self.total_timesteps is not None
        batch = int(self.run.config.batch_size)
        left = self.total_timesteps - self.run.global_step
        if self.budget_note and left > 0 and left % batch:
            n = max(left // batch, 1 if self.run.global_step == 0 else 0)
            self.log(f"note: {left} steps to go is not a multiple of the batch ({batch} steps per iteration): "
                     f"training runs {n} iteration(s), to step {self.run.global_step + n * batch}")
        return None if self.resume is None else self.run.global_step

    def _train(self) -> Run:
        """Train to ``total_timesteps``; returns the Run. Raises
        :class:`~pgfast.session.Interrupted` when stopped by SIGINT/SIGTERM or
        by the stop flag (after saving the run's latest consistent state)."""
        start_step = self._open_run()
        assert self.total_timesteps is not None and self.run is not None
        target = self.total_timesteps
        csv_log = CsvLog(self.out_dir / PROGRESS_NAME, resume_step=start_step)
        tb = TensorBoardLog(self.out_dir / "tb", self.tensorboard, resume_step=start_step)
        bar = None
        if self.progress_bar:
            bar = tqdm(total=target, initial=start_step or 0, unit="step", dynamic_ncols=True, file=sys.stderr)
        schedule = CheckpointSchedule(self._save, every_seconds=self.checkpoint_interval, saved_step=start_step)
        stop = self.stop if self.stop is not None else StopFlag()
        guard: ContextManager[Any] = SignalGuard(stop) if self.stop is None else nullcontext()
        state = {"step": start_step or 0, "ret": float("nan")}

        def callback(row: Mapping[str, Any]) -> None:
            step = int(row.get("global_step", state["step"]))
            csv_log.append(row)
            tb.append(row)
            r = scalar(row.get("episodic_return"))
            if r is not None and not math.isnan(r):
                state["ret"] = r
            if bar is not None:
                bar.update(max(0, step - int(state["step"])))
                sps = scalar(row.get("sps"))
                bar.set_postfix(sps=f"{sps:.0f}" if sps is not None else "?", ret=f"{state['ret']:.1f}", refresh=False)
            state["step"] = step
            if self.on_iteration is not None and self.run is not None:
                self.on_iteration(self.run, row)

        try:
            with guard:
                try:
                    run = self.run
                    if target > run.global_step:
                        # continue the original schedule exactly when the target is the run's own
                        more = None if int(run.config.total_timesteps) == target else target - run.global_step
                        run.learn(more, callback=callback, stop=stop, schedule=schedule)
                except (KeyboardInterrupt, Interrupted) as e:
                    saved = self._stopped(schedule)
                    why = stop.reason() if stop.requested else type(e).__name__
                    raise Interrupted(f"interrupted ({why}); {saved}", stop.signum) from None
            schedule.final(run.global_step)
        finally:
            if bar is not None:
                bar.close()
            tb.close()
        return run

    def _prepare_dir(self) -> None:
        """Create the output directory and check that checkpoints can be written there."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        cur = self.out_dir / checkpoint.CKPT_NAME
        if cur.is_dir():
            raise checkpoint.CheckpointError(f"{cur} is a directory: checkpoints cannot be written there")
        probe = tempfile.NamedTemporaryFile(dir=self.out_dir, prefix=".pgfast-probe-")
        probe.close()

    def _write_metadata(self, start_step: Optional[int]) -> None:
        """Write ``run.json`` (a new run) or append this resume to it (atomically)."""
        assert self.run is not None
        path = self.out_dir / META_NAME
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        meta = read_metadata(self.out_dir) if start_step is not None else None
        if meta is None:
            from pgfast import __version__

            cfg = self.run.config
            meta = {
                "algo": self.run.algo, "env_id": self.run.env_id, "seed": self.run.seed,
                "settings": self.settings or ("unknown (resumed from a checkpoint without run.json)"
                                              if start_step is not None else "as given"),
                "config": {k: getattr(cfg, k) for k in type(cfg).field_names()},
                "pgfast_version": __version__, "created": now, "resumes": [],
            }
        meta["paths"] = dict(self.run.paths)  # the latest start's (pgfast.backends)
        meta["device"] = describe_device(self.run)
        if start_step is not None:
            meta.setdefault("resumes", []).append({"step": int(start_step), "time": now,
                                                   "total_timesteps": self.total_timesteps,
                                                   "paths": dict(self.run.paths)})
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(meta, indent=1, default=str) + "\n")
        os.replace(tmp, path)

    def _stopped(self, schedule: CheckpointSchedule) -> str:
        """Save (unless already saved) after training stopped early; returns what was done."""
        run = self.run
        if run is None:
            msg = "stopped before the first iteration; nothing saved"
        elif run.consistent:
            schedule.final(run.global_step)  # usually done by Run.learn already
            msg = f"stopped at step {run.global_step}; checkpoint saved to {self.out_dir / checkpoint.CKPT_NAME}"
        else:  # a second SIGINT in the middle of an iteration: the run is half-updated
            kept = "none" if schedule.saved_step is None else f"step {schedule.saved_step}"
            msg = (f"stopped again in the middle of an iteration; that half-updated state was NOT saved "
                   f"(latest consistent checkpoint: {kept})")
        return msg  # the caller reports it once (with the resume hint), after the progress bar is closed


def read_metadata(run_dir: PathLike) -> Optional[Dict[str, Any]]:
    """The ``run.json`` of a run directory as a dict (None if absent or unreadable)."""
    try:
        data = json.loads((Path(run_dir) / META_NAME).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
