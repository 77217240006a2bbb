"""The public entry points that make and train runs: :func:`train` (one seed, or several in
one process) and :func:`train_seeds`.

::

    run = pgfast.train("ppo", "CartPole-v1", total_timesteps=100_000, seed=0,
                       device="cpu", num_envs=8)        # any Config field
    runs = pgfast.train("ppo", "CartPole-v1", seed=[0, 1, 2])   # one thread per seed
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import nullcontext
from typing import Any, Callable, ContextManager, Dict, List, Optional, Sequence, Tuple, Union, overload

import numpy as np
import torch

from pgfast.algos import get_algo, make_config
from pgfast.session import SignalGuard, StopFlag
from pgfast.trainer import Run

__all__ = ["train", "train_seeds"]

PathLike = Union[str, "os.PathLike[str]"]


@overload
def train(algo: str, env_id: str, total_timesteps: Optional[int] = ..., seed: int = ...,
          device: Union[str, torch.device] = ..., tuned: bool = ...,
          env_kwargs: Optional[Dict[str, Any]] = ...,
          callback: Optional[Callable[[Dict[str, Any]], Any]] = ...,
          torch_threads: Optional[int] = ..., checkpoint_path: Optional[PathLike] = ...,
          checkpoint_every: int = ..., overwrite: bool = ..., **config_fields: Any) -> Run: ...


@overload
def train(algo: str, env_id: str, total_timesteps: Optional[int] = ...,
          seed: Sequence[int] = ...,
          device: Union[str, torch.device] = ..., tuned: bool = ...,
          env_kwargs: Optional[Dict[str, Any]] = ...,
          callback: Optional[Callable[[Dict[str, Any]], Any]] = ...,
          torch_threads: Optional[int] = ..., checkpoint_path: Optional[PathLike] = ...,
          checkpoint_every: int = ..., overwrite: bool = ..., **config_fields: Any) -> List[Run]: ...


def train(algo: str, env_id: str, total_timesteps: Optional[int] = None,
          seed: Union[int, Sequence[int]] = 0,
          device: Union[str, torch.device] = "auto", tuned: bool = True,
          env_kwargs: Optional[Dict[str, Any]] = None,
          callback: Optional[Callable[[Dict[str, Any]], Any]] = None,
          torch_threads: Optional[int] = 0, checkpoint_path: Optional[PathLike] = None,
          checkpoint_every: int = 0, overwrite: bool = False, **config_fields: Any) -> Union[Run, List[Run]]:
    """Train ``algo`` ("ppo", "trpo" or "vpg") on ``env_id`` and return the :class:`Run`
    (a list of runs, one per seed, when ``seed`` is a list).

    Args:
        algo: algorithm name.
        env_id: environment id for :func:`pgfast.make_vec` (native or gymnasium).
        total_timesteps: env steps to train for (default: the Config's).
        seed: seeds the network init, the action/minibatch generator and the env. A list of
            K distinct seeds trains K independent runs in one process, one thread each (the
            native rollout and update release the GIL, so the runs share the machine's
            cores); each run equals ``train(..., seed=s)`` bit for bit. Their rows reach
            ``callback`` (serialised, with a ``"seed"`` key), a checkpoint path gets
            ``-seed<s>`` before its suffix, and Ctrl-C stops every run at the end of its
            iteration. See :func:`train_seeds`.
        device: "auto" (CUDA if available), "cpu" or "cuda".
        tuned: start from the per-env settings in :data:`pgfast.presets.PRESETS` for
            (algo, env_id) when there are any; explicit ``config_fields`` override them.
        env_kwargs: extra keyword arguments for the env constructor.
        callback: ``callback(row)`` after every iteration (see :meth:`Run.learn`).
        torch_threads: intra-op threads while training (see :meth:`Run.learn`; 0, the default:
            the config's ``num_threads``, or 1 for several seeds).
        checkpoint_path, checkpoint_every: periodic checkpoints (see :meth:`Run.learn`).
        overwrite: let ``checkpoint_path`` replace an existing checkpoint (see :meth:`Run.learn`).
        **config_fields: any field of the algorithm's Config (e.g. ``num_envs=8``);
            an unknown name raises ValueError listing the valid ones.
    """
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer, list, tuple)):
        raise TypeError(f"seed must be an int or a list of ints, got {type(seed).__name__}")
    if not isinstance(seed, (int, np.integer)):
        return train_seeds(algo, env_id, total_timesteps, seed, device=device, tuned=tuned,
                           env_kwargs=env_kwargs, callback=callback, torch_threads=torch_threads,
                           checkpoint_path=checkpoint_path, checkpoint_every=checkpoint_every, overwrite=overwrite,
                           **config_fields)
    run = _new_run(algo, env_id, total_timesteps, int(seed), device, tuned, env_kwargs, config_fields)
    return run.learn(callback=callback, torch_threads=torch_threads,
                     checkpoint_path=checkpoint_path, checkpoint_every=checkpoint_every, overwrite=overwrite)


def _new_run(algo: str, env_id: str, total_timesteps: Optional[int], seed: int,
             device: Union[str, torch.device], tuned: bool, env_kwargs: Optional[Dict[str, Any]],
             config_fields: Dict[str, Any]) -> Run:
    algo_cls = get_algo(algo)
    fields: Dict[str, Any] = dict(config_fields)
    if total_timesteps is not None:
        fields["total_timesteps"] = total_timesteps
    cfg = make_config(algo_cls.name, env_id, tuned, **fields)
    return Run(algo_cls.name, env_id, cfg, seed=seed, device=device, env_kwargs=env_kwargs)


def _seed_path(path: PathLike, seed: int) -> str:
    root, ext = os.path.splitext(os.fspath(path))
    return f"{root}-seed{seed}{ext}"


def _check_seeds(seeds: Sequence[Any], threads: Optional[int],
                 callback: Optional[Callable[..., Any]]) -> Tuple[List[int], int]:
    """:func:`train_seeds`' seeds as ints (distinct, non-empty) and its thread count (default:
    one per seed); TypeError/ValueError on bad input."""
    if any(isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)) for s in seeds):
        raise TypeError(f"seed must be an int or a list of ints, got {list(seeds)!r}")
    out = [int(s) for s in seeds]
    if not out:
        raise ValueError("seed must be an int or a non-empty list of ints")
    if len(set(out)) != len(out):
        raise ValueError(f"seeds must be distinct, got {out}")
    n_threads = len(out) if threads is None else int(threads)
    if n_threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads!r}")
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable or None")
    return out, n_threads


def _run_threads(worker: Callable[[], None], n: int, stop: StopFlag, torch_threads: Optional[int]) -> None:
    """Run ``worker`` on ``n`` threads until all return, with torch's intra-op threads set to
    ``torch_threads`` (restored afterwards); in the main thread, Ctrl-C sets ``stop`` instead
    of raising (the runs stop at the end of their iteration)."""
    old_threads = torch.get_num_threads()
    if torch_threads is not None:
        torch.set_num_threads(int(torch_threads) or 1)  # 0: one (the runs share the cores)
    guard: ContextManager[Any] = (SignalGuard(stop, (signal.SIGINT,), only_if_default=True)
                                  if threading.current_thread() is threading.main_thread()
                                  else nullcontext())
    try:
        with guard:
            pool = [threading.Thread(target=worker, name=f"pgfast-seed-{i}", daemon=True) for i in range(n)]
            for t in pool:
                t.start()
            for t in pool:
                while t.is_alive():  # a timed join keeps the main thread responsive to SIGINT
                    t.join(0.1)
    finally:
        if torch_threads is not None:
            torch.set_num_threads(old_threads)


def train_seeds(algo: str, env_id: str, total_timesteps: Optional[int], seeds: Sequence[int],
                device: Union[str, torch.device] = "auto", tuned: bool = True,
                env_kwargs: Optional[Dict[str, Any]] = None,
                callback: Optional[Callable[[Dict[str, Any]], Any]] = None,
                torch_threads: Optional[int] = 1, checkpoint_path: Optional[PathLike] = None,
                checkpoint_every: int = 0, threads: Optional[int] = None, overwrite: bool = False,
                **config_fields: Any) -> List[Run]:
    """Train one independent run per seed in this process; returns the runs in seed order.

    The runs are built one after the other in the calling thread (network init draws from
    torch's global generator under a fixed seed), then trained on ``threads`` threads
    (default: one per seed). Nothing is shared between runs but the process, so run k
    equals ``train(algo, env_id, total_timesteps, seed=seeds[k], ...)`` bit for bit, and
    its learning curve is that of an independent run. The native rollout and the native
    update release the GIL, so the runs use as many cores as the machine gives them.

    ``callback(row)`` receives each run's rows (with ``row["seed"]``) one at a time (a
    lock serialises the calls); returning False stops that run. ``checkpoint_path``
    becomes ``<root>-seed<s><ext>`` per run. Ctrl-C (SIGINT in the main thread) stops
    every run at the end of its current iteration, saves the checkpoints and raises
    KeyboardInterrupt. The first error of any run is raised after all runs ended.
    """
    seeds, n_threads = _check_seeds(seeds, threads, callback)
    runs = [_new_run(algo, env_id, total_timesteps, s, device, tuned, env_kwargs, config_fields)
            for s in seeds]
    if checkpoint_path is not None:  # refuse before any run starts
        for run, s in zip(runs, seeds):
            run._check_overwrite(_seed_path(checkpoint_path, s), overwrite)
    stop = StopFlag()
    lock = threading.Lock()
    errors: List[BaseException] = []
    todo = list(range(len(runs)))

    def cb_for(s: int) -> Optional[Callable[[Dict[str, Any]], Any]]:
        if callback is None:
            return None

        def cb(row: Dict[str, Any]) -> Any:
            with lock:
                return callback(dict(row, seed=s))
        return cb

    def worker() -> None:
        while True:
            with lock:
                if not todo or errors:
                    return
                k = todo.pop(0)
            run, s = runs[k], seeds[k]
            path = None if checkpoint_path is None else _seed_path(checkpoint_path, s)
            try:
                run.learn(callback=cb_for(s), torch_threads=None, checkpoint_path=path,
                          checkpoint_every=checkpoint_every, stop=stop, overwrite=overwrite)
            except KeyboardInterrupt:
                return
            except BaseException as e:  # re-raised in the calling thread
                with lock:
                    errors.append(e)
                stop.request()
                return

    _run_threads(worker, min(n_threads, len(runs)), stop, torch_threads)
    if errors:
        raise errors[0]
    if stop.requested:
        raise KeyboardInterrupt
    return runs
