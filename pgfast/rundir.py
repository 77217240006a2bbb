"""Training in a run directory: logs, rotating checkpoints, resume.

``pgfast train`` and every study job train through :class:`TrainSession`, which
writes into one directory::

    ckpt.pt         latest checkpoint (atomic, :mod:`pgfast.checkpoint`)
    ckpt.prev.pt    the checkpoint before it (read if ckpt.pt is unreadable)
    progress.csv    one row per iteration (:mod:`pgfast.logs`)
    tb/             TensorBoard event files (when tensorboard is importable)

The loop itself is :meth:`pgfast.Run.learn` under the lifecycle of
:mod:`pgfast.session`: checkpoints every ``checkpoint_interval`` seconds and at
the end, and SIGINT/SIGTERM stop training at the end of the current iteration
after a checkpoint (a second SIGINT stops at once).
"""

from __future__ import annotations

import math
import os
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, ContextManager, Dict, Mapping, Optional, Union

from tqdm import tqdm

from pgfast import checkpoint
from pgfast.algos import get_algo
from pgfast.logs import PROGRESS_NAME, CsvLog, TensorBoardLog, scalar
from pgfast.session import CheckpointSchedule, Interrupted, SignalGuard, StopFlag
from pgfast.trainer import Run, load

__all__ = ["TrainSession"]

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

    ``stop``: the :class:`~pgfast.session.StopFlag` of whoever runs this session
    (a study runner, which then owns the signal handling); without one, the
    session guards SIGINT/SIGTERM itself.
    """

    def __init__(
        self,
        out_dir: PathLike,
        algo: Optional[str] = None,
        env_id: Optional[str] = None,
        total_timesteps: Optional[int] = None,
        seed: int = 0,
        device: str = "cpu",
        config: Optional[Mapping[str, Any]] = None,
        resume: Optional[PathLike] = None,
        checkpoint_interval: float = 60.0,
        tensorboard: bool = True,
        progress_bar: bool = False,
        log: Callable[[str], None] = print,
        on_iteration: Optional[Callable[[Run, Mapping[str, Any]], None]] = None,
        stop: Optional[StopFlag] = None,
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
        self.run: Optional[Run] = None

    def _new_run(self) -> Run:
        assert self.algo is not None and self.env_id is not None and self.total_timesteps is not None
        fields = dict(self.config)
        fields["total_timesteps"] = self.total_timesteps
        cfg = get_algo(self.algo).Config(**fields)
        return Run(self.algo, self.env_id, cfg, seed=self.seed, device=self.device)

    def _save(self) -> None:
        assert self.run is not None
        checkpoint.save_rotating(self.run.state_dict(), self.out_dir)

    def run_training(self) -> Run:
        """Train to ``total_timesteps``; returns the Run. Raises
        :class:`~pgfast.session.Interrupted` when stopped by SIGINT/SIGTERM or
        by the stop flag (after saving the run's latest consistent state)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        start_step: Optional[int] = None
        if self.resume is not None:
            resumed, loaded = checkpoint.load_with_fallback(self.resume, load, self.log)
            checkpoint.set_aside_newer(loaded, self.log)
            self.run = resumed
            start_step = resumed.global_step
            if self.total_timesteps is None:
                self.total_timesteps = int(resumed.config.total_timesteps)
            self.log(f"resuming from {self.resume} at step {start_step}")
        assert self.total_timesteps is not None
        target = self.total_timesteps
        csv_log = CsvLog(self.out_dir / PROGRESS_NAME, resume_step=start_step)
        tb = TensorBoardLog(self.out_dir / "tb", self.tensorboard)
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
                    if self.run is None:
                        self.run = self._new_run()
                    run = self.run
                    if target > run.global_step:
                        # continue the original schedule exactly when the target is the run's own
                        more = None if int(run.config.total_timesteps) == target else target - run.global_step
                        run.learn(more, callback=callback, stop=stop, schedule=schedule)
                except (KeyboardInterrupt, Interrupted) as e:
                    self._stopped(schedule)
                    why = stop.reason() if stop.requested else type(e).__name__
                    raise Interrupted(f"interrupted ({why})") from None
            schedule.final(run.global_step)
        finally:
            if bar is not None:
                bar.close()
            tb.close()
        return run

    def _stopped(self, schedule: CheckpointSchedule) -> None:
        """Save (unless already saved) and report, after training stopped early."""
        run = self.run
        if run is None:
            self.log("stopped before the first iteration; nothing to save")
        elif run.consistent:
            schedule.final(run.global_step)  # usually done by Run.learn already
            self.log(f"stopped at step {run.global_step}; checkpoint saved to {self.out_dir / checkpoint.CKPT_NAME}")
        else:  # a second SIGINT in the middle of an iteration: the run is half-updated
            kept = "none" if schedule.saved_step is None else f"step {schedule.saved_step}"
            self.log(f"stopped in the middle of an iteration; not saved (latest checkpoint: {kept})")
