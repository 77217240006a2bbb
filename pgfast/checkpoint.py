"""Checkpoint files: atomic writes, safe loading, the newest-valid fallback.

A checkpoint is one ``torch.save``'d dict (:meth:`pgfast.Run.state_dict`: config,
weights, optimiser and generator state, counters, history, episode trackers and
the env state) holding only tensors and plain values (:mod:`pgfast.envstate`), so
that :func:`read` loads it with ``torch.load(weights_only=True)``: loading a
checkpoint never runs code from the file. A file that would need arbitrary
unpickling (a crafted file, or a checkpoint of the first format, which stored
pickles) is refused with :class:`UntrustedCheckpointError`, unless the caller
passes ``trust=True`` (``--trust-checkpoint`` on the command line) for a file it
made; the run then saves in the current format.

:func:`write` is the only code that writes one: a temporary file in the same
folder, flushed and fsynced, then ``os.replace``; with ``keep_previous`` the file
it replaces becomes that path first. A write that fails (disk full, ...) raises
:class:`CheckpointWriteError` and leaves the previous file as it was. A run
directory (``pgfast train``, every study job) keeps two::

    ckpt.pt         the latest checkpoint
    ckpt.prev.pt    the one before it

:func:`load_with_fallback` reads a checkpoint file or directory: of ``ckpt.pt``,
``ckpt.prev.pt`` and complete temporaries of an interrupted save, the valid file
with the highest step recorded inside it wins (never the file name or time), and
a fallback is said through ``log``. :func:`settle` then makes the chosen file
``ckpt.pt`` and removes the leftovers of interrupted saves (as does every
rotating save), so a run directory holds only ``ckpt.pt``, ``ckpt.prev.pt`` and
the run's own files.
"""

from __future__ import annotations

import errno
import os
import pickle
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, TypeVar, Union

import torch

from pgfast.envstate import capture_env, decode, encode, inexact_reason, restore_env

__all__ = ["FORMAT", "CKPT_NAME", "PREV_CKPT_NAME", "CheckpointError", "CheckpointWriteError",
           "UntrustedCheckpointError", "write", "save_rotating", "read", "load_with_fallback", "exists",
           "settle", "remove_leftovers", "candidates", "capture_env", "inexact_reason", "restore_env"]

FORMAT = 2
"""Version of the checkpoint dict layout (1: pickles, read only with ``trust=True``)."""
LEGACY_FORMATS = (1,)

CKPT_NAME = "ckpt.pt"
PREV_CKPT_NAME = "ckpt.prev.pt"

PathLike = Union[str, "os.PathLike[str]"]
T = TypeVar("T")

TRUST_HINT = ("pass trust=True (pgfast.load) or --trust-checkpoint (pgfast eval/train), "
              "only for a file you made yourself")


class CheckpointError(RuntimeError):
    """A checkpoint could not be read (missing, truncated or corrupt)."""


class UntrustedCheckpointError(CheckpointError):
    """A checkpoint that only arbitrary unpickling could load, refused (see ``trust``)."""


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written (disk full, ...); the previous one is intact."""


# --------------------------------------------------------------------------- files


def _umask() -> int:
    old = os.umask(0o022)
    os.umask(old)
    return old


def _temp_prefix(path: str) -> str:
    return f".{os.path.basename(path)}."


TEMP_SUFFIX = ".new"


def _write_failure(path: str, e: BaseException) -> CheckpointWriteError:
    if isinstance(e, OSError):
        why = e.strerror or str(e)
        if e.errno == errno.ENOSPC:
            why = "no space left on device"
    else:  # torch's serializer reports a failed write as a RuntimeError
        why = f"the write failed ({str(e).splitlines()[0] if str(e) else type(e).__name__}; disk full?)"
    return CheckpointWriteError(f"cannot write the checkpoint {path}: {why}; the previous checkpoint is intact")


def write(state: Mapping[str, Any], path: PathLike, keep_previous: Optional[PathLike] = None) -> None:
    """Write ``state`` to ``path`` atomically (temporary file + fsync + ``os.replace``).

    ``state`` is stored in plain form (:func:`pgfast.envstate.encode`). With
    ``keep_previous``, the existing ``path`` becomes that file (the previous
    checkpoint) without ``path`` ever going missing: it is hard-linked (or
    copied) to a temporary name that replaces ``keep_previous``, then the new file
    replaces ``path``. Whatever instant the process is killed at, ``path`` is a
    complete checkpoint (the old or the new one). SIGINT/SIGTERM are held back
    until the write is complete (:func:`pgfast.session.deferred_signals`). The
    file gets the umask's permissions, like any other output. Nothing is left
    behind when writing fails; a failed write (disk full, ...) raises
    :class:`CheckpointWriteError` and leaves the files as they were.
    """
    from pgfast.session import deferred_signals  # session is independent of this module

    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise CheckpointError(f"cannot write the checkpoint {path}: it is a directory")
    plain = encode(dict(state))
    os.makedirs(folder, exist_ok=True)
    with deferred_signals():
        tmp = prev_tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=TEMP_SUFFIX, dir=folder)
            with os.fdopen(fd, "wb") as f:
                torch.save(plain, f)
                f.flush()
                os.fchmod(f.fileno(), 0o666 & ~_umask())
                os.fsync(f.fileno())
            if keep_previous is not None and os.path.isfile(path):
                prev_tmp = tmp + ".prev"
                try:
                    os.link(path, prev_tmp)
                except OSError:  # no hard links on this file system: copy
                    shutil.copy2(path, prev_tmp)
                # rename() between two links of one file does nothing (a kill between the two
                # renames below leaves ckpt.prev.pt == ckpt.pt): the finally block unlinks it then
                os.replace(prev_tmp, os.fspath(keep_previous))
            os.replace(tmp, path)
            tmp = None
        except (OSError, RuntimeError) as e:
            raise _write_failure(path, e) from e
        finally:
            for t in (tmp, prev_tmp):
                if t is not None and os.path.exists(t):
                    os.unlink(t)


def remove_leftovers(directory: PathLike, name: str = CKPT_NAME) -> List[Path]:
    """Remove the temporaries of interrupted saves of ``directory/name`` (and, for a
    run directory, of its probe and ``run.json`` writes); returns what was removed.
    Only for the folder's one writer (the holder of its lock)."""
    d = Path(directory)
    if not d.is_dir():
        return []
    pats = [_temp_prefix(name) + "*" + TEMP_SUFFIX + "*"]
    if name == CKPT_NAME:
        pats += [".pgfast-*.tmp", ".pgfast-probe-*", "run.json.tmp"]
    gone = []
    for pat in pats:
        for q in d.glob(pat):
            if q.is_file():
                try:
                    q.unlink()
                    gone.append(q)
                except FileNotFoundError:
                    pass
    return gone


def save_rotating(state: Mapping[str, Any], directory: PathLike) -> Path:
    """Write ``directory/ckpt.pt``, keeping the one it replaces as ``ckpt.prev.pt``;
    leftovers of interrupted saves are removed first."""
    d = Path(directory)
    remove_leftovers(d)
    cur = d / CKPT_NAME
    write(state, cur, keep_previous=d / PREV_CKPT_NAME)
    return cur


def read(path: PathLike, trust: bool = False) -> Dict[str, Any]:
    """The checkpoint dict in ``path``, loaded onto the CPU without running code
    from the file (``weights_only``); with ``trust``, a file that needs arbitrary
    unpickling (an earlier format) is loaded too.

    Raises :class:`UntrustedCheckpointError` for such a file without ``trust``, and
    ValueError when the file holds something else than a pgfast checkpoint.
    """
    if not zipfile.is_zipfile(os.fspath(path)):  # every checkpoint is a zip archive (torch.save)
        raise ValueError(f"{os.fspath(path)!r} is not a pgfast checkpoint (not a torch.save archive)")
    try:
        ck = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if not trust:
            raise UntrustedCheckpointError(
                f"{os.fspath(path)} needs arbitrary unpickling to load (a checkpoint of an earlier pgfast, or "
                f"not a pgfast checkpoint), which can run code; refused: {TRUST_HINT}") from e
        ck = torch.load(os.fspath(path), map_location="cpu", weights_only=False)
    if not isinstance(ck, dict) or (ck.get("format") != FORMAT and not (trust and ck.get("format") in LEGACY_FORMATS)):
        raise ValueError(f"{os.fspath(path)!r} is not a pgfast checkpoint (format {FORMAT})")
    out: Dict[str, Any] = decode(ck)
    return out


def _paths(path: PathLike) -> Tuple[Path, Path]:
    """(checkpoint file, its previous checkpoint) for a file or a run directory.

    A directory is a run directory, except one named ``ckpt.pt`` holding no
    checkpoint: that is a checkpoint path which happens to be a directory (its
    previous checkpoint is still looked for next to it)."""
    p = Path(path)
    if p.is_dir() and not (p.name == CKPT_NAME and not (p / CKPT_NAME).exists()
                           and not (p / PREV_CKPT_NAME).exists()):
        p = p / CKPT_NAME
    prev = p.with_name(PREV_CKPT_NAME) if p.name == CKPT_NAME else p.with_name(p.stem + ".prev" + p.suffix)
    return p, prev


def _leftovers(p: Path) -> List[Path]:
    """Complete-looking temporary files of an interrupted write of ``p``
    (``.ckpt.pt.XXXX.new``; ``.pgfast-XXXX.tmp`` from older versions next to a ``ckpt.pt``)."""
    if not p.parent.is_dir():
        return []
    pats = [_temp_prefix(str(p)) + "*" + TEMP_SUFFIX] + ([".pgfast-*.tmp"] if p.name == CKPT_NAME else [])
    found = {q for pat in pats for q in p.parent.glob(pat) if q.is_file() and q.stat().st_size > 0}
    return sorted(found)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a directory, not a checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (truncated write?)")


def _load_one(path: Path, load: Callable[[Path], T]) -> T:
    _check_file(path)
    try:
        return load(path)
    except (UntrustedCheckpointError, ImportError):  # an optional package the env needs: its own one line
        raise
    except Exception as e:  # torch raises several types for bad files
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(e).__name__}: {e})") from e


def _step_of(path: Path, trust: bool) -> int:
    """The step recorded inside a checkpoint file (CheckpointError if unreadable)."""
    ck = _load_one(path, lambda q: read(q, trust))
    try:
        return int(ck["global_step"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} records no step") from e


def exists(path: PathLike) -> bool:
    """Whether :func:`load_with_fallback` has anything to try for ``path``."""
    p, prev = _paths(path)
    return p.is_file() or prev.is_file() or bool(_leftovers(p))


def candidates(path: PathLike, trust: bool = False) -> Tuple[List[Tuple[int, Path]], List[str]]:
    """The readable checkpoints for ``path`` as (step, file), newest step first (the
    named file first among equal steps), and the reasons the others were skipped."""
    p, prev = _paths(path)
    found: List[Tuple[int, int, Path]] = []
    reasons: List[str] = []
    for rank, cand in enumerate([p, prev] + _leftovers(p)):
        if cand != p and not cand.exists():
            continue
        try:
            found.append((_step_of(cand, trust), -rank, cand))
        except UntrustedCheckpointError:
            raise
        except CheckpointError as e:
            reasons.append(str(e))
    found.sort(key=lambda x: (x[0], x[1]), reverse=True)
    return [(step, c) for step, _, c in found], reasons


def load_with_fallback(path: PathLike, load: Callable[[Path], T], log: Callable[[str], None] = print,
                       trust: bool = False) -> Tuple[T, Path]:
    """``load(file)`` for a checkpoint file or a run directory (its ``ckpt.pt``).

    Of the file, its previous checkpoint (``ckpt.prev.pt``, or ``NAME.prev.EXT``
    for another file name) and the complete temporary files of a save that was
    interrupted before its last rename, loads the valid one with the highest step
    recorded inside it (the named file among equal steps); when that is not the
    named file, says why through ``log``. Returns (the loaded object, the file it
    came from). Raises :class:`CheckpointError` with the reasons when none can be
    read, and :class:`UntrustedCheckpointError` at once for a file that needs
    arbitrary unpickling (unless ``trust``).
    """
    p, prev = _paths(path)
    found, reasons = candidates(path, trust)
    for step, cand in found:
        if cand != p:
            what = (f"the previous checkpoint {cand}" if cand == prev
                    else f"the file of an interrupted save {cand}")
            why = "; ".join(reasons) if reasons else f"{p} holds an older step"
            log(f"warning: {why}; using {what} (step {step})")
        try:
            return _load_one(cand, load), cand
        except CheckpointError as e:
            reasons.append(str(e))
    raise CheckpointError("; and ".join(reasons) or f"checkpoint {p} does not exist")


def settle(loaded: Path, log: Callable[[str], None] = print) -> None:
    """Settle a run directory after :func:`load_with_fallback` (by its one writer):
    a checkpoint recovered from an interrupted save becomes ``ckpt.pt`` (the older
    ``ckpt.pt`` becoming ``ckpt.prev.pt``); after a fallback to ``ckpt.prev.pt``,
    an unreadable ``ckpt.pt`` is moved to ``ckpt.pt.corrupt``, so that the next
    rotating save does not turn it into the previous checkpoint over the good one;
    then the leftovers of interrupted saves are removed."""
    d = loaded.parent
    cur, prev = d / CKPT_NAME, d / PREV_CKPT_NAME
    if loaded.name.endswith(TEMP_SUFFIX) or loaded.name.startswith(".pgfast-"):
        if cur.is_file():
            os.replace(cur, prev)
        if not cur.is_dir():
            os.replace(loaded, cur)
            log(f"recovered the interrupted save as {cur}")
    elif loaded.name == PREV_CKPT_NAME and cur.is_file():
        bad = d / (CKPT_NAME + ".corrupt")
        os.replace(cur, bad)
        log(f"moved the unreadable checkpoint to {bad}")
    remove_leftovers(d)


set_aside_newer = settle  # the name of earlier versions
