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

A kill at any instant of a rotating save leaves a complete ``ckpt.pt`` (the old
or the new one); a write interrupted by an older version (``ckpt.prev.pt`` and a
temporary file, no ``ckpt.pt``) is recovered by :func:`load_with_fallback`.

Env state (:func:`capture_env` / :func:`restore_env`) is captured exactly where
the env allows: a picklable env (the native classic-control and MuJoCo envs) is
pickled; a gymnasium ``SyncVectorEnv`` has its sub-envs pickled with their
wrappers' counters and, for gymnasium's MuJoCo envs (which pickle only their
constructor arguments), the whole ``MjData`` and ``np_random``. Then a resumed
run continues exactly. Where that is impossible (Box2D and other envs pickling
only their constructor arguments, ``AsyncVectorEnv``, envs offering only
``get_state()``), :func:`inexact_reason` says why; the checkpoint records it and
:func:`pgfast.load` warns and resets the env deterministically instead of
continuing silently from a different state. Checkpoints are pickles: load only
files you trust.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, TypeVar, Union, cast

import gymnasium as gym
import numpy as np
import torch

__all__ = ["FORMAT", "CKPT_NAME", "PREV_CKPT_NAME", "CheckpointError", "write", "save_rotating", "read",
           "load_with_fallback", "exists", "set_aside_newer", "capture_env", "inexact_reason", "restore_env"]

FORMAT = 1
"""Version of the checkpoint dict layout; :func:`read` refuses other versions."""

CKPT_NAME = "ckpt.pt"
PREV_CKPT_NAME = "ckpt.prev.pt"

PathLike = Union[str, "os.PathLike[str]"]
T = TypeVar("T")


class CheckpointError(RuntimeError):
    """A checkpoint could not be read (missing, truncated or corrupt)."""


# --------------------------------------------------------------------------- files


def _umask() -> int:
    old = os.umask(0o022)
    os.umask(old)
    return old


def _temp_prefix(path: str) -> str:
    return f".{os.path.basename(path)}."


TEMP_SUFFIX = ".new"


def write(state: Mapping[str, Any], path: PathLike, keep_previous: Optional[PathLike] = None) -> None:
    """Write ``state`` to ``path`` atomically (temporary file + fsync + ``os.replace``).

    With ``keep_previous``, the existing ``path`` becomes that file (the
    previous checkpoint) without ``path`` ever going missing: it is hard-linked
    (or copied) to a temporary name that replaces ``keep_previous``, then the
    new file replaces ``path``. Whatever instant the process is killed at,
    ``path`` is a complete checkpoint (the old or the new one). SIGINT/SIGTERM
    are held back until the write is complete (:func:`pgfast.session.deferred_signals`).
    The file gets the umask's permissions, like any other output. Nothing is
    left behind when writing fails.
    """
    from pgfast.session import deferred_signals  # session is independent of this module

    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise CheckpointError(f"cannot write the checkpoint {path}: it is a directory")
    os.makedirs(folder, exist_ok=True)
    with deferred_signals():
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=TEMP_SUFFIX, dir=folder)
        prev_tmp = None
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(state, f)
                f.flush()
                os.fchmod(f.fileno(), 0o666 & ~_umask())
                os.fsync(f.fileno())
            if keep_previous is not None and os.path.isfile(path):
                prev_tmp = tmp + ".prev"
                try:
                    os.link(path, prev_tmp)
                except OSError:  # no hard links on this file system: copy
                    shutil.copy2(path, prev_tmp)
                os.replace(prev_tmp, os.fspath(keep_previous))
                prev_tmp = None
            os.replace(tmp, path)
        except BaseException:
            for t in (tmp, prev_tmp):
                if t is not None and os.path.exists(t):
                    os.unlink(t)
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
    """Complete-looking temporary files of an interrupted write of ``p``, newest first
    (``.ckpt.pt.XXXX.new``; ``.pgfast-XXXX.tmp`` from older versions next to a ``ckpt.pt``)."""
    if not p.parent.is_dir():
        return []
    pats = [_temp_prefix(str(p)) + "*" + TEMP_SUFFIX] + ([".pgfast-*.tmp"] if p.name == CKPT_NAME else [])
    found = {q for pat in pats for q in p.parent.glob(pat) if q.is_file() and q.stat().st_size > 0}
    return sorted(found, key=lambda q: q.stat().st_mtime, reverse=True)


def _load_one(path: Path, load: Callable[[Path], T]) -> T:
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a directory, not a checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (truncated write?)")
    try:
        return load(path)
    except Exception as e:  # torch raises several types for bad files
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(e).__name__}: {e})") from e


def exists(path: PathLike) -> bool:
    """Whether :func:`load_with_fallback` has anything to try for ``path``."""
    p, prev = _paths(path)
    return p.is_file() or prev.is_file() or bool(_leftovers(p))


def load_with_fallback(path: PathLike, load: Callable[[Path], T],
                       log: Callable[[str], None] = print) -> Tuple[T, Path]:
    """``load(file)`` for a checkpoint file or a run directory (its ``ckpt.pt``).

    If the file is missing, truncated or corrupt (``load`` raises), says so
    through ``log`` and loads, in this order, the newest complete temporary
    file of a write that was interrupted before its last rename, then the
    previous checkpoint next to it (``ckpt.prev.pt``, or ``NAME.prev.EXT``
    for another file name). Returns (the loaded object, the file it came
    from). Raises :class:`CheckpointError` with the reasons when none can be read.
    """
    p, prev = _paths(path)
    try:
        return _load_one(p, load), p
    except CheckpointError as e:
        reasons = [str(e)]
    for cand in _leftovers(p) + ([prev] if prev.exists() else []):
        what = "the previous checkpoint" if cand == prev else "the file of an interrupted save"
        log(f"warning: {reasons[0]}; using {what} {cand}")
        try:
            return _load_one(cand, load), cand
        except CheckpointError as e2:
            reasons.append(str(e2))
    raise CheckpointError("; and ".join(reasons))


def set_aside_newer(loaded: Path, log: Callable[[str], None] = print) -> None:
    """Settle a run directory after a fallback: a checkpoint recovered from an
    interrupted save becomes ``ckpt.pt``; after a fallback to ``ckpt.prev.pt``,
    an unreadable ``ckpt.pt`` is moved to ``ckpt.pt.corrupt``, so that the next
    rotating save does not turn it into the previous checkpoint over the good one."""
    cur = loaded.parent / CKPT_NAME
    if loaded.name.endswith(TEMP_SUFFIX) or loaded.name.startswith(".pgfast-"):
        if cur.is_file():
            os.replace(cur, loaded.parent / (CKPT_NAME + ".corrupt"))
        if not cur.is_dir():
            os.replace(loaded, cur)
            log(f"recovered the interrupted save as {cur}")
    elif loaded.name == PREV_CKPT_NAME and cur.is_file():
        bad = loaded.parent / (CKPT_NAME + ".corrupt")
        os.replace(cur, bad)
        log(f"moved the unreadable checkpoint to {bad}")


# --------------------------------------------------------------------------- env state


INEXACT_NO_CAPTURE = "the env cannot be pickled and offers no get_state()"


def _is_mujoco(u: Any) -> bool:
    data = getattr(u, "data", None)
    return getattr(u, "model", None) is not None and type(data).__module__.startswith("mujoco")


def _capture_gym_sync(env: Any) -> Optional[Tuple[str, Any]]:
    """A gymnasium ``SyncVectorEnv``: its sub-envs pickled (wrappers with their
    counters: TimeLimit, OrderEnforcing, episode statistics, ...), plus, for an
    unwrapped env that pickles only its constructor arguments (gymnasium's
    ``EzPickle``), its real state: for MuJoCo the whole ``MjData`` (qpos, qvel,
    act, time, warm start, derived quantities) and the ``np_random`` generator.
    Any other ``EzPickle`` env (Box2D: its world cannot be captured) makes the
    capture inexact: ("gym", {"exact": False, "reason": ...})."""
    sims: List[Optional[bytes]] = []
    for e in env.envs:
        u = e.unwrapped
        if not isinstance(u, gym.utils.EzPickle):
            sims.append(None)  # pickled whole, with its RNG and state
        elif _is_mujoco(u):
            sims.append(pickle.dumps({"data": cast(Any, u).data, "np_random": getattr(u, "_np_random", None),
                                      "np_random_seed": getattr(u, "_np_random_seed", None)}))
        else:
            return ("gym", {"exact": False, "reason": (
                f"{type(u).__name__} pickles only its constructor arguments (gymnasium's EzPickle) "
                f"and its simulator state cannot be captured")})
    try:
        envs = pickle.dumps(env.envs)
    except Exception as ex:  # noqa: BLE001 - any pickling failure means "not picklable"
        return ("gym", {"exact": False, "reason": f"its sub-envs cannot be pickled ({type(ex).__name__})"})
    return ("gym", {"exact": True, "envs": envs, "sims": sims,
                    "autoreset": np.array(env._autoreset_envs)})


def capture_env(env: Any) -> Optional[Tuple[str, Any]]:
    """The env's state for a checkpoint: ("pickle", bytes) for a picklable env
    (the native envs), ("gym", dict) for a gymnasium ``SyncVectorEnv`` (see
    :func:`inexact_reason`), ("state", float64 array) for an env offering only
    ``get_state()``, or None when it cannot be captured."""
    if isinstance(env, gym.vector.SyncVectorEnv):
        return _capture_gym_sync(env)
    try:
        return ("pickle", pickle.dumps(env))
    except Exception:  # noqa: BLE001 - any pickling failure means "not picklable"
        pass
    if hasattr(env, "get_state"):
        return ("state", np.array(env.get_state(), dtype=np.float64))
    return None


def inexact_reason(captured: Optional[Tuple[str, Any]]) -> Optional[str]:
    """None when ``captured`` restores the env exactly (a resumed run continues
    like an uninterrupted one); otherwise why not."""
    if captured is None:
        return INEXACT_NO_CAPTURE
    kind, data = captured
    if kind == "gym" and not data["exact"]:
        return str(data["reason"])
    if kind == "state":
        return "only the physics state (get_state) was captured: reset RNG and step counters are fresh"
    return None


def restore_env(env: Any, captured: Optional[Tuple[str, Any]]) -> Any:
    """Apply a captured env state; returns the env to use (maybe a new object,
    in which case ``env`` is closed). An inexact capture (:func:`inexact_reason`)
    other than "state" leaves ``env`` as it is: the caller resets it."""
    if captured is None:
        return env
    kind, data = captured
    if kind == "pickle":
        new = pickle.loads(data)
        env.close()
        return new
    if kind in ("sync", "gym"):  # "sync": checkpoints written before "gym"
        if kind == "gym" and not data["exact"]:
            return env
        d = pickle.loads(data) if kind == "sync" else data
        envs = d["envs"] if kind == "sync" else pickle.loads(d["envs"])
        for e, sim in zip(envs, d.get("sims") or [None] * len(envs)):
            if sim is not None:
                import mujoco  # only MuJoCo sub-envs carry a simulator state

                u, s = e.unwrapped, pickle.loads(sim)
                mujoco.mj_copyData(u.data, u.model, s["data"])
                u._np_random = s["np_random"]
                u._np_random_seed = s["np_random_seed"]
        for e in env.envs:
            e.close()
        env.envs = envs
        env._autoreset_envs = d["autoreset"]
        return env
    if kind == "state":
        env.set_state(data)
        return env
    raise ValueError(f"unknown env state kind {kind!r} in checkpoint")
