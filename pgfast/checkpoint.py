"""Checkpoint files: atomic writes, the previous-checkpoint fallback, env state capture.

A checkpoint is one ``torch.save``'d dict (:meth:`pgfast.Run.state_dict`: config,
weights, optimiser and generator state, counters, history, episode trackers and
the env state). :func:`write` is the only code that writes one: a temporary file
in the same folder, flushed and fsynced, then ``os.replace``; with
``keep_previous`` the file it replaces is renamed to that path first.

A run directory (``pgfast train``, every study job) keeps two::

    ckpt.pt         the latest checkpoint
    ckpt.prev.pt    the one before it (read when ckpt.pt is truncated or corrupt)

:func:`load_with_fallback` reads a checkpoint file or directory and falls back
to the previous checkpoint, saying so. :func:`read` loads the dict onto the CPU;
:func:`pgfast.load` builds the Run from it, on the saved device or the one given.

Env state (:func:`capture_env` / :func:`restore_env`) is captured as completely
as the env allows: a picklable env (the native classic-control and MuJoCo envs)
or a gymnasium ``SyncVectorEnv`` of picklable envs is pickled, so a resumed run
continues exactly; an env offering only ``get_state()``/``set_state()`` gets its
physics state back but fresh reset RNG and step counters; an env offering
neither (e.g. gymnasium's ``AsyncVectorEnv``) is captured as ``None`` and is reset
fresh on load. Checkpoints are pickles: load only files you trust.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, TypeVar, Union

import gymnasium as gym
import numpy as np
import torch

__all__ = ["FORMAT", "CKPT_NAME", "PREV_CKPT_NAME", "CheckpointError", "write", "save_rotating", "read",
           "load_with_fallback", "set_aside_newer", "capture_env", "restore_env"]

FORMAT = 1
"""Version of the checkpoint dict layout; :func:`read` refuses other versions."""

CKPT_NAME = "ckpt.pt"
PREV_CKPT_NAME = "ckpt.prev.pt"

PathLike = Union[str, "os.PathLike[str]"]
T = TypeVar("T")


class CheckpointError(RuntimeError):
    """A checkpoint could not be read (missing, truncated or corrupt)."""


# --------------------------------------------------------------------------- files


def write(state: Mapping[str, Any], path: PathLike, keep_previous: Optional[PathLike] = None) -> None:
    """Write ``state`` to ``path`` atomically (temporary file + fsync + ``os.replace``).

    With ``keep_previous``, an existing ``path`` is first renamed to it (the
    previous checkpoint). Nothing is left behind when writing fails.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".pgfast-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        if keep_previous is not None and os.path.exists(path):
            os.replace(path, os.fspath(keep_previous))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_rotating(state: Mapping[str, Any], directory: PathLike) -> Path:
    """Write ``directory/ckpt.pt``, keeping the one it replaces as ``ckpt.prev.pt``."""
    d = Path(directory)
    cur = d / CKPT_NAME
    write(state, cur, keep_previous=d / PREV_CKPT_NAME)
    return cur


def read(path: PathLike) -> Dict[str, Any]:
    """The checkpoint dict in ``path``, loaded onto the CPU.

    Raises ValueError when the file holds something else than a pgfast
    checkpoint of this :data:`FORMAT`.
    """
    ck = torch.load(os.fspath(path), map_location="cpu", weights_only=False)
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise ValueError(f"{path!r} is not a pgfast checkpoint (format {FORMAT})")
    return ck


def _paths(path: PathLike) -> Tuple[Path, Path]:
    """(checkpoint file, its previous checkpoint) for a file or a run directory."""
    p = Path(path)
    if p.is_dir():
        p = p / CKPT_NAME
    prev = p.with_name(PREV_CKPT_NAME) if p.name == CKPT_NAME else p.with_name(p.stem + ".prev" + p.suffix)
    return p, prev


def _load_one(path: Path, load: Callable[[Path], T]) -> T:
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (truncated write?)")
    try:
        return load(path)
    except Exception as e:  # torch raises several types for bad files
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(e).__name__}: {e})") from e


def load_with_fallback(path: PathLike, load: Callable[[Path], T],
                       log: Callable[[str], None] = print) -> Tuple[T, Path]:
    """``load(file)`` for a checkpoint file or a run directory (its ``ckpt.pt``).

    If the file is missing, truncated or corrupt (``load`` raises), says so
    through ``log`` and loads the previous checkpoint next to it
    (``ckpt.prev.pt``, or ``NAME.prev.EXT`` for another file name). Returns
    (the loaded object, the file it came from). Raises :class:`CheckpointError`
    with both reasons when neither can be read.
    """
    p, prev = _paths(path)
    try:
        return _load_one(p, load), p
    except CheckpointError as e:
        first = str(e)
    if prev.exists():
        log(f"warning: {first}; using the previous checkpoint {prev}")
        try:
            return _load_one(prev, load), prev
        except CheckpointError as e2:
            raise CheckpointError(f"{first}; and the previous one: {e2}") from None
    raise CheckpointError(first)


def set_aside_newer(loaded: Path, log: Callable[[str], None] = print) -> None:
    """After a fallback to ``ckpt.prev.pt``, move the unreadable ``ckpt.pt`` to
    ``ckpt.pt.corrupt``, so that the next rotating save does not turn it into
    the previous checkpoint over the good one."""
    if loaded.name == PREV_CKPT_NAME and (loaded.parent / CKPT_NAME).exists():
        bad = loaded.parent / (CKPT_NAME + ".corrupt")
        os.replace(loaded.parent / CKPT_NAME, bad)
        log(f"moved the unreadable checkpoint to {bad}")


# --------------------------------------------------------------------------- env state


def capture_env(env: Any) -> Optional[Tuple[str, Any]]:
    """The env's state for a checkpoint: ("pickle", bytes), ("sync", bytes),
    ("state", float64 array) or None when it cannot be captured."""
    try:
        return ("pickle", pickle.dumps(env))
    except Exception:  # noqa: BLE001 - any pickling failure means "not picklable"
        pass
    if isinstance(env, gym.vector.SyncVectorEnv):
        try:
            return ("sync", pickle.dumps({"envs": env.envs,
                                          "autoreset": np.array(env._autoreset_envs)}))
        except Exception:  # noqa: BLE001
            pass
    if hasattr(env, "get_state"):
        return ("state", np.array(env.get_state(), dtype=np.float64))
    return None


def restore_env(env: Any, captured: Optional[Tuple[str, Any]]) -> Any:
    """Apply a captured env state; returns the env to use (maybe a new object,
    in which case ``env`` is closed)."""
    if captured is None:
        return env
    kind, data = captured
    if kind == "pickle":
        new = pickle.loads(data)
        env.close()
        return new
    if kind == "sync":
        d = pickle.loads(data)
        for e in env.envs:
            e.close()
        env.envs = d["envs"]
        env._autoreset_envs = d["autoreset"]
        return env
    if kind == "state":
        env.set_state(data)
        return env
    raise ValueError(f"unknown env state kind {kind!r} in checkpoint")
