"""What a checkpoint holds of a :class:`pgfast.trainer.Run`, and loading runs back.

:func:`capture` takes the config, weights, optimiser state, observation statistics,
generator state, counters, history, episode trackers and the env state (plain values and
tensors only, written atomically by :mod:`pgfast.checkpoint`); :func:`restore` puts them into
a new Run. The env state is captured exactly where the env allows (see
:mod:`pgfast.checkpoint`): for the native envs, gymnasium ``SyncVectorEnv`` s of picklable envs
and gymnasium's MuJoCo envs, ``save -> load -> learn`` continues exactly like an uninterrupted
run. For other envs (Box2D, ...) the checkpoint records that it is not exact and :func:`load`
warns (:class:`InexactResumeWarning`) and resets the env deterministically.

:func:`load` and :func:`load_checkpoint` (a file or a run directory, with fallback to the
previous valid checkpoint) never run code from the file unless told to trust it.
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Union

import torch

from pgfast import checkpoint, numerics, spaces
from pgfast.algos import get_algo

if TYPE_CHECKING:  # pragma: no cover
    from pgfast.trainer import Run

__all__ = ["capture", "restore", "check_overwrite", "load", "load_checkpoint", "InexactResumeWarning"]

PathLike = Union[str, "os.PathLike[str]"]


def capture(run: Run) -> Dict[str, Any]:
    """Everything needed to continue ``run`` (a :class:`pgfast.trainer.Run`; see the module
    docstring), plain values and tensors only. Raises :class:`pgfast.numerics.NonFiniteError`
    when a weight is not finite."""
    bad = numerics.check_weights(run._params)
    if bad is not None:
        raise numerics.NonFiniteError(f"non-finite weight {run._param_names[bad]} at step {run.global_step}: "
                                      f"not saved (the last checkpoint is the last finite state)")
    env_state = checkpoint.capture_env(spaces.base_env(run.env))
    note = checkpoint.inexact_reason(env_state)
    return {
        "format": checkpoint.FORMAT,
        "algo": run.algo,
        "env_id": run.env_id,
        "env_kwargs": run.env_kwargs,
        "seed": run.seed,
        "device": str(run.device),
        "config": run.config.to_dict(),
        "policy": run.policy.state_dict(),
        "updater": run.updater.state_dict(),
        "generator": run.generator.get_state(),
        "generator_device": run.device.type,
        "global_step": run.global_step,
        "iteration": run.iteration,
        "history": [dict(r) for r in run.history],
        "collector": run.collector.state_dict(),
        "obs0": run.collector.current_obs().detach().cpu().clone(),
        "env_state": env_state,
        "env_exact": note is None,
        "env_note": note,
    }


def restore(run: Run, ck: Dict[str, Any], trust: bool = False) -> None:
    """Put the state :func:`capture` took into a freshly made ``run`` of the same algorithm, env
    and config: weights, optimisers, generator, counters, history, trackers and the env (reset
    deterministically, with ``run.resume_note`` saying so, where its state was not captured)."""
    run.policy.load_state_dict(ck["policy"])
    run.updater.load_state_dict(ck["updater"])
    if ck.get("generator_device", "cpu") == run.device.type:
        run.generator.set_state(ck["generator"])
    else:  # loaded on another device type: generator states differ in kind, re-seed
        run.generator.manual_seed(run.seed + int(ck["iteration"]))
    run.global_step = int(ck["global_step"])
    run.iteration = int(ck["iteration"])
    run.history = [dict(r) for r in ck["history"]]
    run.collector.load_state_dict(ck["collector"])
    captured = ck["env_state"]
    note = checkpoint.inexact_reason(captured)
    if note is not None and (captured is None or captured[0] != "state"):
        # the env state was not captured: reset deterministically (a stream of its
        # own per resumed iteration), with new episodes, and say so
        reset_seed = (run.seed + 1_000_003 * run.iteration) % 2**31
        run.collector.reset(seed=reset_seed)
        note += f"; the env was reset with seed {reset_seed} and new episodes"
    else:
        run.collector.set_current_obs(ck["obs0"].to(run.device))
        restored = checkpoint.restore_env(spaces.base_env(run.env), captured, trust=trust)
        run.env = spaces.rebase_env(run.env, restored)
        run.collector.env = run.env
        run.collector.step_into = getattr(run.env, "step_into", None)
    if note is not None:
        run.resume_note = (f"{run.env_id}: resumed run is not identical to an uninterrupted one: "
                           f"the env state was not captured exactly ({note})")


def check_overwrite(run: Run, path: PathLike, overwrite: bool) -> None:
    """Refuse to let ``run``'s checkpoints replace another run's file (FileExistsError naming
    what the file holds) unless ``overwrite``; the run's own files are always written."""
    p = os.path.realpath(os.fspath(path))
    if overwrite or p in run._own_files or not os.path.exists(p):
        return
    what = "a file"
    try:
        ck = checkpoint.read(p)
        what = f"a checkpoint of {ck.get('algo')} on {ck.get('env_id')} at step {ck.get('global_step')}"
    except Exception:  # noqa: BLE001 - any unreadable file is still not ours to replace
        pass
    raise FileExistsError(f"checkpoint_path {os.fspath(path)} already holds {what}; pass overwrite=True "
                          f"to replace it, or choose another path")


class InexactResumeWarning(UserWarning):
    """A loaded run cannot continue exactly like an uninterrupted one: its env
    state was not captured (see :attr:`Run.resume_note`)."""


def _load(path: PathLike, device: Optional[Union[str, torch.device]], trust: bool = False) -> Run:
    from pgfast.trainer import Run  # (the Run's module imports this one)

    ck = checkpoint.read(path, trust=trust)
    ck["__trust__"] = trust
    algo_cls = get_algo(ck["algo"])
    cfg = algo_cls.Config.from_saved(ck["config"])
    dev = ck["device"] if device is None else device
    run = Run(ck["algo"], ck["env_id"], cfg, seed=ck["seed"], device=dev,
              env_kwargs=ck["env_kwargs"], _checkpoint=ck)
    run._own_files.add(os.path.realpath(os.fspath(path)))
    return run


def load(path: PathLike, device: Optional[Union[str, torch.device]] = None, trust: bool = False) -> Run:
    """Load a checkpoint written by :meth:`Run.save` and return the :class:`Run`.

    ``device`` overrides the saved device (a CUDA run loads on CPU with
    ``device="cpu"``). When the env state was not captured exactly (e.g. a
    Box2D env), the env is reset deterministically and an
    :class:`InexactResumeWarning` says so (also in ``run.resume_note``).

    Loading never runs code from the file: checkpoints hold tensors and plain
    values only (``torch.load(weights_only=True)``). A file that needs arbitrary
    unpickling (a checkpoint of pgfast's first format, or a crafted file) raises
    :class:`pgfast.checkpoint.UntrustedCheckpointError`; ``trust=True`` loads it
    anyway, for a file you made yourself (the run then saves in the current format).
    """
    run = _load(path, device, trust)
    if run.resume_note is not None:
        warnings.warn(run.resume_note, InexactResumeWarning, stacklevel=2)
    return run


def load_checkpoint(path: PathLike, log: Callable[[str], None] = print,
                    device: Optional[Union[str, torch.device]] = None, trust: bool = False) -> Run:
    """Load a Run from ``path``: a checkpoint file or a run directory (its ``ckpt.pt``).

    Of ``ckpt.pt``, ``ckpt.prev.pt`` and the complete files of an interrupted save,
    the valid one with the highest step wins (:func:`pgfast.checkpoint.load_with_fallback`;
    a fallback is said through ``log``); raises :class:`pgfast.checkpoint.CheckpointError`
    when none can be read. ``device`` and ``trust`` as in :func:`load`.
    """
    run = checkpoint.load_with_fallback(path, lambda p: _load(p, device, trust), log, trust=trust)[0]
    if run.resume_note is not None:
        log(f"note: {run.resume_note}")
    return run
