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

The loop itself is :meth:`pgfast.Run.learn` under the lifecycle of
:mod:`pgfast.session`: checkpoints every ``checkpoint_interval`` seconds and at
the end, and SIGINT/SIGTERM stop training at the end of the current iteration
after a checkpoint (a second SIGINT stops at once).
"""

from __future__ import annotations

import datetime
import json
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
from pgfast.algos import get_algo
from pgfast.logs import PROGRESS_NAME, CsvLog, TensorBoardLog, scalar
from pgfast.session import CheckpointSchedule, Interrupted, SignalGuard, StopFlag
from pgfast.trainer import InexactResumeWarning, Run, load

__all__ = ["TrainSession", "META_NAME", "read_metadata"]

META_NAME = "run.json"

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
        """Train to ``total_timesteps``; returns the Run. Raises
        :class:`~pgfast.session.Interrupted` when stopped by SIGINT/SIGTERM or
        by the stop flag (after saving the run's latest consistent state)."""
        # everything that can fail on the arguments fails before the directory is touched
        start_step: Optional[int] = None
        if self.resume is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", InexactResumeWarning)  # said through log below
                resumed, loaded = checkpoint.load_with_fallback(
                    self.resume, lambda p: load(p, device=self.device), self.log)
            for what, given, saved in (("ALGO", self.algo, resumed.algo), ("ENV_ID", self.env_id, resumed.env_id)):
                if given is not None and given != saved and not (what == "ALGO" and get_algo(given).name == saved):
                    resumed.close()
                    raise ValueError(f"--resume: {what} {given} differs from the checkpoint's {saved} "
                                     f"({loaded}); drop it or give {saved}")
            self.run = resumed
            start_step = resumed.global_step
            if self.total_timesteps is None:
                self.total_timesteps = int(resumed.config.total_timesteps)
        else:
            self.run = self._new_run()
        assert self.total_timesteps is not None
        self._prepare_dir()
        self._write_metadata(start_step)
        if self.resume is not None:
            checkpoint.set_aside_newer(loaded, self.log)
            self.log(f"resuming from {self.resume} at step {start_step}")
            if self.run.resume_note is not None:
                self.log(f"note: {self.run.resume_note}")
        target = self.total_timesteps
        batch = int(self.run.config.batch_size)
        left = target - self.run.global_step
        if left > 0 and left % batch:
            n = max(left // batch, 1 if self.run.global_step == 0 else 0)
            self.log(f"note: {left} steps to go is not a multiple of the batch ({batch} steps per iteration): "
                     f"training runs {n} iteration(s), to step {self.run.global_step + n * batch}")
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
        if start_step is not None:
            meta.setdefault("resumes", []).append({"step": int(start_step), "time": now,
                                                   "total_timesteps": self.total_timesteps})
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
        self.log(msg)
        return msg


def read_metadata(run_dir: PathLike) -> Optional[Dict[str, Any]]:
    """The ``run.json`` of a run directory as a dict (None if absent or unreadable)."""
    try:
        data = json.loads((Path(run_dir) / META_NAME).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
