"""Training logs: ``progress.csv`` (one row per iteration) and TensorBoard scalars.

Rows are :attr:`pgfast.Run.history` rows; non-scalar values are skipped. Written
by ``pgfast train`` and every study job (:mod:`pgfast.rundir`), read back by the
study reports and plots (:func:`read_progress`).
"""

from __future__ import annotations

import csv
import math
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch

__all__ = ["PROGRESS_NAME", "scalar", "CsvLog", "read_progress", "TensorBoardLog"]

PROGRESS_NAME = "progress.csv"

PathLike = Union[str, "os.PathLike[str]"]


def scalar(v: Any) -> Optional[float]:
    """A history value as a float, or None for non-scalars."""
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v)
    if isinstance(v, torch.Tensor) and v.numel() == 1:  # 0-d tensors / arrays
        return float(v.item())
    if isinstance(v, np.ndarray) and v.size == 1:
        return float(v.reshape(()))
    return None


class CsvLog:
    """Append-only CSV of history rows; the header is fixed by the first row.

    ``resume_step=None`` starts a new log (an old file is removed; the new run's
    first row fixes the header). On resume, rows past the checkpoint's
    ``global_step`` are dropped so that the log matches the state training
    continues from.
    """

    def __init__(self, path: PathLike, resume_step: Optional[int] = None) -> None:
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
            if len(keep) != len(rows) and header is not None:
                self._rewrite(header, keep)
        elif self.path.exists():
            self.path.unlink()

    def _rewrite(self, header: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
        tmp = self.path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            for r in rows:
                w.writerow(["" if r.get(k) is None else r[k] for k in header])
        os.replace(tmp, self.path)

    def append(self, row: Mapping[str, Any]) -> None:
        """Write one history row (non-scalar values are skipped)."""
        flat = {k: scalar(v) for k, v in row.items()}
        values = {k: v for k, v in flat.items() if v is not None}
        if self.fields is None:
            self.fields = ["global_step"] + sorted(k for k in values if k != "global_step")
            write_header = True
        else:
            write_header = False
        with open(self.path, "a", newline="") as f:
            w = csv.writer(f)
            if write_header:
                w.writerow(self.fields)
            out = []
            for k in self.fields:
                v = values.get(k)
                if v is None:  # not logged this iteration; NaN and infinities are written as nan / inf
                    out.append("")
                elif k == "global_step":
                    out.append(str(int(v)))
                else:
                    out.append(repr(v))
            w.writerow(out)


def read_progress(path: PathLike) -> List[Dict[str, float]]:
    """Read a ``progress.csv`` into a list of dicts of floats (empty cells and
    ``nan`` are NaN; ``global_step`` is an int). Returns [] for a missing file."""
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


_CHARTS = ("episodic_return", "episodic_length", "sps", "learning_rate")


_HINTED = False  # the missing-tensorboard hint is printed once per process


class TensorBoardLog:
    """TensorBoard scalars (``charts/`` and ``losses/`` tags), or nothing when
    ``enabled`` is false or tensorboard is not importable.

    ``resume_step``: a resumed run's checkpoint step. Events logged after it by
    the interrupted run are purged (TensorBoard's ``purge_step``), and steps up
    to it are not written again, so a resumed run's charts hold each step once.
    """

    def __init__(self, logdir: PathLike, enabled: bool = True, resume_step: Optional[int] = None) -> None:
        self.resume_step = resume_step
        self.writer: Any = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter  # optional: needs tensorboard
            except Exception:  # tensorboard missing or broken: logs are optional
                global _HINTED
                if not _HINTED:
                    _HINTED = True
                    print('TensorBoard logs skipped: tensorboard is not installed '
                          '(pip install "pgfast-rl[tensorboard]"; --no-tensorboard hides this)',
                          file=sys.stderr)
                return
            purge = None if resume_step is None else int(resume_step) + 1
            self.writer = SummaryWriter(str(logdir), purge_step=purge)

    def append(self, row: Mapping[str, Any]) -> None:
        """Write one history row's scalars at its ``global_step``."""
        if self.writer is None:
            return
        step = int(row.get("global_step", 0))
        if self.resume_step is not None and step <= self.resume_step:
            return
        for k, v in row.items():
            if k == "global_step":
                continue
            f = scalar(v)
            if f is not None and not math.isnan(f):
                self.writer.add_scalar(("charts/" if k in _CHARTS else "losses/") + k, f, step)

    def close(self) -> None:
        """Flush and close the event file."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
