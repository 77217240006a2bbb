"""The training loop shared by all algorithms, and the :class:`Run` object.

::

    run = pgfast.train("ppo", "CartPole-v1", total_timesteps=100_000, seed=0,
                       device="cpu", num_envs=8)        # any Config field
    run.history                      # one dict per iteration
    run.evaluate(episodes=20)        # -> (mean, std) of episode returns
    run.save("run.pt");  run = pgfast.load("run.pt");  run.learn(50_000)

Each iteration: collect a rollout (:class:`pgfast.buffer.Collector`) -> advantages
(one C++ call on CPU) -> the algorithm's update -> observation statistics ->
a history row -> the optional callback.

Reproducibility: the network is initialised from ``seed``; action sampling and
minibatch shuffling use a dedicated ``torch.Generator`` seeded with ``seed``; the
env is reset with ``seed``. On CPU the same seed gives a bit-identical history
(apart from the wall-clock fields ``sps`` and ``time``).

Checkpoints (:meth:`Run.save`) hold the config, weights, optimiser state,
observation statistics, generator state, counters, history, episode trackers and
the env state, written atomically by :mod:`pgfast.checkpoint`. The env state is
captured exactly where the env allows (see :mod:`pgfast.checkpoint`): for the
native envs, gymnasium ``SyncVectorEnv`` s of picklable envs and gymnasium's
MuJoCo envs, ``save -> load -> learn`` continues exactly like an uninterrupted
run. For other envs (Box2D, ...) the checkpoint records that it is not exact and
:func:`load` warns (:class:`InexactResumeWarning`) and resets the env
deterministically.

Lifecycle (:mod:`pgfast.session`): :meth:`Run.learn` checks a stop flag at the end
of every iteration and follows a checkpoint schedule; SIGINT is deferred to the
end of the iteration (a second SIGINT interrupts at once). Evaluation episodes are
played by :mod:`pgfast.evaluation`.

Threads: small networks run fastest with one intra-op thread on CPU (op overhead
dominates), so :meth:`Run.learn` sets ``torch.set_num_threads(torch_threads)``
(default 1) for its duration and restores the previous value afterwards.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import warnings
from contextlib import nullcontext
from typing import (Any, Callable, ContextManager, Dict, List, Optional, Sequence, Tuple, Union,
                    overload)

import numpy as np
import torch

from pgfast import checkpoint, evaluation, numerics
from pgfast.algos import config_help, explained_variance, get_algo, make_config
from pgfast.buffer import Collector, RewardScaler, RolloutBuffer
from pgfast.envs import make_vec
from pgfast import spaces
from pgfast.session import CheckpointSchedule, SignalGuard, StopFlag

__all__ = ["train", "train_seeds", "load", "load_checkpoint", "Run", "InexactResumeWarning",
           "config_help"]  # config_help: re-exported

PathLike = Union[str, "os.PathLike[str]"]

_INIT_LOCK = threading.RLock()


def _resolve_device(device: Union[str, torch.device]) -> torch.device:
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise TypeError(f"device must be 'auto', 'cpu' or 'cuda[:i]', got {device!r}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} but CUDA is not available")
        return torch.device(device)
    raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:i]', got {device!r}")


# --------------------------------------------------------------------------- Run


def _check_memory(env_id: str, cfg: Any, env_kwargs: Dict[str, Any]) -> None:
    """MemoryError (one line, the estimated size) when the rollout buffers of ``cfg``
    cannot fit in the memory available; the spaces come from a one-env instance."""
    probe = make_vec(env_id, 1, seed=None, **env_kwargs)
    try:
        obs_size = int(np.prod(probe.single_observation_space.shape or (1,)))
        act_size = int(np.prod(probe.single_action_space.shape or (1,)))
    finally:
        probe.close()
    numerics.check_memory(cfg.num_steps, cfg.num_envs, obs_size, act_size)




class Run:
    """A training run: env, networks, algorithm state and history.

    Create with :func:`train` (or :func:`load`). Attributes: ``algo`` (name),
    ``env_id``, ``config`` (the algorithm's Config), ``seed``, ``device``,
    ``policy`` (:class:`pgfast.nn.ActorCritic`), ``history`` (list of per-iteration
    dicts), ``global_step``, ``iteration``, ``consistent`` (False only while an
    iteration is being computed: a run stopped there is half-updated and is not saved).
    """

    def __init__(self, algo: str, env_id: str, config: Any, seed: int = 0,
                 device: Union[str, torch.device] = "auto",
                 env_kwargs: Optional[Dict[str, Any]] = None,
                 _checkpoint: Optional[Dict[str, Any]] = None) -> None:
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise TypeError(f"seed must be an int, got {seed!r}")
        self.algo_cls = get_algo(algo)
        self.algo = self.algo_cls.name
        self.env_id = env_id
        self.config = config
        self.seed = int(seed)
        self.device = _resolve_device(device)
        self.env_kwargs = dict(env_kwargs or {})
        cfg = config
        if cfg.num_envs * cfg.num_steps > 2**22:  # large enough to fail: estimate before allocating
            _check_memory(env_id, cfg, self.env_kwargs)
        self.env = make_vec(env_id, cfg.num_envs, seed=None, autoreset_mode="same_step",
                            **self.env_kwargs)
        raw_obs_space = self.env.single_observation_space
        try:  # non-Box observations are flattened (pgfast.spaces); unsupported spaces raise here
            self.env = spaces.adapt_env(self.env)
        except (TypeError, ValueError):
            self.env.close()
            raise
        obs_space: Any = self.env.single_observation_space  # a Box now
        # The initialisation runs on one intra-op thread: the QR of orthogonal init can
        # differ in the last bits between thread counts, and a seed must give the same
        # network whatever the caller's torch.set_num_threads setting. torch's global
        # generator seeds it: one run at a time per process (runs built on several
        # threads, e.g. a study's stacked seeds, stay reproducible).
        with _INIT_LOCK:
            old_threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(self.seed)
                    self.policy = spaces.make_policy(obs_space, self.env.single_action_space, cfg,
                                                     raw_obs_space).to(self.device)
            finally:
                torch.set_num_threads(old_threads)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(self.seed)
        self.space_note = spaces.torch_path_reason(raw_obs_space, self.env.single_action_space)
        """Why the C++ paths cannot serve this env's spaces (None: they can)."""
        self.updater = self.algo_cls(self.policy, cfg, self.generator)
        self.buffer = RolloutBuffer(cfg.num_steps, cfg.num_envs, obs_space.shape,
                                    self.env.single_action_space, self.device)
        scaler = RewardScaler(cfg.num_envs, cfg.gamma, cfg.clip_reward) if cfg.norm_reward else None
        try:  # the paths (pgfast.backends): "native" that cannot apply raises here, with the reason
            update_path = self.updater.update_path
            # a native update computes its own forward: the rollout's log-probs and values then
            # come from the same C++ forward, so its first ratio is exactly 1
            self.collector = Collector(self.env, self.policy, self.buffer, self.generator, scaler,
                                       rollout_backend=cfg.rollout_backend,
                                       native_eval=update_path == "native", space_note=self.space_note)
        except ValueError:
            self.env.close()
            raise
        self.collector.reset(seed=self.seed)
        self.paths = {"rollout": "native" if self.collector.native else "torch", "update": update_path}
        """Which implementation serves the rollout and the update ("native": C++, or "torch"),
        as ``rollout_backend`` and ``update_backend`` chose (:mod:`pgfast.backends`)."""
        self.global_step = 0
        self.iteration = 0
        self.history: List[Dict[str, Any]] = []
        self.consistent = True
        self.resume_note: Optional[str] = None
        """Set by :func:`load` when the env state was not captured exactly (why, and what was done)."""
        self._own_files: set = set()  # checkpoint files this run came from or wrote
        self._warned_value_loss = False
        if _checkpoint is not None:
            self._load_state(_checkpoint, trust=bool(_checkpoint.pop("__trust__", False)))

    # ---- training -------------------------------------------------------------------
    def learn(self, more_timesteps: Optional[int] = None,
              callback: Optional[Callable[[Dict[str, Any]], Any]] = None,
              torch_threads: Optional[int] = 1, checkpoint_path: Optional[PathLike] = None,
              checkpoint_every: int = 0, stop: Optional[StopFlag] = None,
              schedule: Optional[CheckpointSchedule] = None, overwrite: bool = False) -> "Run":
        """Train until ``config.total_timesteps`` (or for ``more_timesteps`` more env steps).

        Args:
            more_timesteps: if given, the run's total becomes ``global_step +
                more_timesteps`` (the learning-rate schedule is stretched to it);
                if None, train up to ``config.total_timesteps`` (continues an
                interrupted or loaded run exactly where it stopped).
            callback: called as ``callback(row)`` after every iteration with the new
                history row; returning ``False`` stops training after that iteration.
            torch_threads: intra-op threads during training (restored afterwards);
                None leaves torch's setting alone.
            checkpoint_path: if given, :meth:`save` the run there every
                ``checkpoint_every`` iterations (if > 0) and when training ends or is
                interrupted by SIGINT (each write is atomic; an exception raised
                inside an iteration skips the final save).
            checkpoint_every: iterations between checkpoints (0: only at the end).
            stop: a :class:`pgfast.session.StopFlag` owned by the caller (who then
                handles signals): when it is set, training stops at the end of the
                iteration with KeyboardInterrupt. Without one, SIGINT in the main
                thread sets a flag of the run's own (unless the caller installed a
                SIGINT handler of its own).
            schedule: a :class:`pgfast.session.CheckpointSchedule` to follow instead
                of ``checkpoint_path``/``checkpoint_every``.
            overwrite: allow ``checkpoint_path`` to replace a checkpoint of another
                run (by default that raises FileExistsError before training; the
                run's own file, the one it was loaded from or saved to, is always
                written).

        Training stops with :class:`pgfast.numerics.NonFiniteError` as soon as the env
        returns a NaN or infinite observation or reward, or an update gives a
        non-finite loss, statistic or weight; the checkpoint on disk then stays the
        last finite one.

        A KeyboardInterrupt (SIGINT in the main thread) is deferred to the end of
        the current iteration, so the run stays consistent (it is saved by the
        schedule and can be continued); it then propagates. A second SIGINT
        interrupts at once, leaving a half-updated run that is not saved.
        """
        cfg = self.config
        if more_timesteps is not None:
            if not isinstance(more_timesteps, (int, np.integer)) or more_timesteps < 1:
                raise ValueError(f"more_timesteps must be a positive int, got {more_timesteps!r}")
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable or None")
        if not isinstance(checkpoint_every, int) or checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be an int >= 0, got {checkpoint_every!r}")
        if checkpoint_path is not None:
            if schedule is not None:
                raise ValueError("give checkpoint_path or schedule, not both")
            path = checkpoint_path
            self._check_overwrite(path, overwrite)
            schedule = CheckpointSchedule(lambda: self.save(path), every_iterations=checkpoint_every)
        if more_timesteps is not None:
            cfg.total_timesteps = self.global_step + int(more_timesteps)
        batch = cfg.batch_size
        n_iter = (cfg.total_timesteps - self.global_step) // batch
        if n_iter == 0 and self.global_step == 0:
            n_iter = 1
        if stop is None:  # no owner: SIGINT stops this call at the end of an iteration
            stop = StopFlag()
            guard: ContextManager[Any] = SignalGuard(stop, (signal.SIGINT,), only_if_default=True)
        else:
            guard = nullcontext()
        old_threads = torch.get_num_threads()
        if torch_threads is not None:
            torch.set_num_threads(int(torch_threads))
        try:
            with guard:
                t0 = time.perf_counter()
                steps0 = self.global_step
                for _ in range(max(0, n_iter)):
                    self.consistent = False
                    row = self._iterate()
                    self.consistent = True
                    elapsed = time.perf_counter() - t0
                    row["time"] = elapsed
                    row["sps"] = (self.global_step - steps0) / max(elapsed, 1e-9)
                    self.history.append(row)
                    halt = callback(row) is False if callback is not None else False
                    if schedule is not None:
                        schedule.after_iteration(self.iteration, self.global_step)
                    if stop.requested:
                        raise KeyboardInterrupt
                    if halt:
                        break
        finally:
            # an error inside an iteration leaves a half-updated run: not saved then
            if schedule is not None and self.consistent:
                schedule.final(self.global_step)
            if torch_threads is not None:
                torch.set_num_threads(old_threads)
        return self

    def _iterate(self) -> Dict[str, Any]:
        cfg, buf = self.config, self.buffer
        frac = max(0.0, 1.0 - self.global_step / cfg.total_timesteps) if cfg.anneal_lr else 1.0
        self.updater.set_lr_fraction(frac)
        self.collector.collect()
        numerics.check_rollout(buf.obs, buf.rewards, self.iteration + 1, self.global_step)
        adv, ret = self.updater.advantages(buf)
        stats = self.updater.update(buf, adv, ret)
        numerics.check_update(stats, self._params, lambda: self._param_names, self.iteration + 1,
                              self.global_step + cfg.batch_size)
        self._warn_value_loss(stats)
        if self.policy.obs_rms is not None:
            self.policy.obs_rms.update(buf.obs[1:])
        self.iteration += 1
        self.global_step += cfg.batch_size
        row: Dict[str, Any] = {
            "iteration": self.iteration,
            "global_step": self.global_step,
            "episodic_return": self.collector.mean_recent_return(),
            "episodic_length": self.collector.mean_recent_length(),
            "episodes": self.collector.episodes_finished,
            "learning_rate": frac * cfg.learning_rate,
            "explained_variance": explained_variance(buf.values, ret),
        }
        row.update(stats)
        return row

    # ---- evaluation -------------------------------------------------------------------
    def evaluate(self, episodes: int = 20, deterministic: bool = True,
                 seed: Optional[int] = None, num_envs: Optional[int] = None,
                 eval_max_steps: Optional[int] = evaluation.EVAL_MAX_STEPS) -> Tuple[float, float]:
        """Mean and std of the returns of ``episodes`` full episodes in a fresh env.

        Episodes are split evenly over ``num_envs`` (default min(episodes, 16))
        envs and each env contributes only its first episodes (no bias towards
        short episodes). ``deterministic`` takes the policy's mode (argmax /
        mean); otherwise actions are sampled from a generator seeded with
        ``seed``. Training state (generators, statistics) is not touched.
        Episodes end at the env's time limit; in an env without one they are cut after
        ``eval_max_steps`` steps (default 10 000; None: no cap) with one
        :class:`~pgfast.evaluation.EvalStepLimitWarning`.
        """
        if not isinstance(episodes, (int, np.integer)) or episodes < 1:
            raise ValueError(f"episodes must be a positive int, got {episodes!r}")
        n = int(num_envs) if num_envs is not None else min(int(episodes), 16)
        if n < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs!r}")
        seed = self.seed + 1_000_003 if seed is None else int(seed)
        env = spaces.adapt_env(make_vec(self.env_id, n, seed=None, autoreset_mode="same_step",
                                        **self.env_kwargs))
        try:
            returns = evaluation.vector_returns(self.policy, env, int(episodes), deterministic, seed,
                                                self.device, max_steps=eval_max_steps)
        finally:
            env.close()
        return evaluation.mean_std(returns)

    # ---- checkpoints --------------------------------------------------------------------
    @property
    def _params(self) -> List[torch.Tensor]:
        if getattr(self, "_param_list", None) is None:  # updates write in place: the list stays valid
            self._param_list = list(self.policy.parameters())
        return self._param_list

    @property
    def _param_names(self) -> List[str]:
        return [n for n, _ in self.policy.named_parameters()]

    def _warn_value_loss(self, stats: Dict[str, Any]) -> None:
        v = stats.get("value_loss")
        if not self._warned_value_loss and isinstance(v, float) and v > numerics.VALUE_LOSS_WARN:
            self._warned_value_loss = True
            hint = "" if self.config.norm_reward else "; rewards this large train better with norm_reward=True"
            warnings.warn(f"{self.env_id}: value loss {v:.3g} at step {self.global_step + self.config.batch_size}"
                          f"{hint}", numerics.LargeValueLossWarning, stacklevel=3)

    def _check_overwrite(self, path: PathLike, overwrite: bool) -> None:
        """Refuse to let this run's checkpoints replace another run's file."""
        p = os.path.realpath(os.fspath(path))
        if overwrite or p in self._own_files or not os.path.exists(p):
            return
        what = "a file"
        try:
            ck = checkpoint.read(p)
            what = f"a checkpoint of {ck.get('algo')} on {ck.get('env_id')} at step {ck.get('global_step')}"
        except Exception:  # noqa: BLE001 - any unreadable file is still not ours to replace
            pass
        raise FileExistsError(f"checkpoint_path {os.fspath(path)} already holds {what}; pass overwrite=True "
                              f"to replace it, or choose another path")

    def state_dict(self) -> Dict[str, Any]:
        """Everything needed to continue the run (see module docstring). Raises
        :class:`pgfast.numerics.NonFiniteError` when a weight is not finite."""
        bad = numerics.check_weights(self._params)
        if bad is not None:
            raise numerics.NonFiniteError(f"non-finite weight {self._param_names[bad]} at step {self.global_step}: "
                                          f"not saved (the last checkpoint is the last finite state)")
        env_state = checkpoint.capture_env(spaces.base_env(self.env))
        note = checkpoint.inexact_reason(env_state)
        return {
            "format": checkpoint.FORMAT,
            "algo": self.algo,
            "env_id": self.env_id,
            "env_kwargs": self.env_kwargs,
            "seed": self.seed,
            "device": str(self.device),
            "config": self.config.to_dict(),
            "policy": self.policy.state_dict(),
            "updater": self.updater.state_dict(),
            "generator": self.generator.get_state(),
            "generator_device": self.device.type,
            "global_step": self.global_step,
            "iteration": self.iteration,
            "history": [dict(r) for r in self.history],
            "collector": self.collector.state_dict(),
            "obs0": self.collector.current_obs().detach().cpu().clone(),
            "env_state": env_state,
            "env_exact": note is None,
            "env_note": note,
        }

    def save(self, path: PathLike) -> None:
        """Write a checkpoint atomically (:func:`pgfast.checkpoint.write`); a failed
        write raises :class:`pgfast.checkpoint.CheckpointWriteError`."""
        checkpoint.write(self.state_dict(), path)
        self._own_files.add(os.path.realpath(os.fspath(path)))

    def _load_state(self, ck: Dict[str, Any], trust: bool = False) -> None:
        self.policy.load_state_dict(ck["policy"])
        self.updater.load_state_dict(ck["updater"])
        if ck.get("generator_device", "cpu") == self.device.type:
            self.generator.set_state(ck["generator"])
        else:  # loaded on another device type: generator states differ in kind, re-seed
            self.generator.manual_seed(self.seed + int(ck["iteration"]))
        self.global_step = int(ck["global_step"])
        self.iteration = int(ck["iteration"])
        self.history = [dict(r) for r in ck["history"]]
        self.collector.load_state_dict(ck["collector"])
        captured = ck["env_state"]
        note = checkpoint.inexact_reason(captured)
        if note is not None and (captured is None or captured[0] != "state"):
            # the env state was not captured: reset deterministically (a stream of its
            # own per resumed iteration), with new episodes, and say so
            reset_seed = (self.seed + 1_000_003 * self.iteration) % 2**31
            self.collector.reset(seed=reset_seed)
            note += f"; the env was reset with seed {reset_seed} and new episodes"
        else:
            self.collector.set_current_obs(ck["obs0"].to(self.device))
            self.env = spaces.rebase_env(self.env, checkpoint.restore_env(spaces.base_env(self.env), captured,
                                                                          trust=trust))
            self.collector.env = self.env
            self.collector.step_into = getattr(self.env, "step_into", None)
        if note is not None:
            self.resume_note = (f"{self.env_id}: resumed run is not identical to an uninterrupted one: "
                                f"the env state was not captured exactly ({note})")

    def close(self) -> None:
        """Close the env."""
        self.env.close()

    def __repr__(self) -> str:
        return (f"Run(algo={self.algo!r}, env_id={self.env_id!r}, seed={self.seed}, "
                f"device={str(self.device)!r}, global_step={self.global_step})")


# --------------------------------------------------------------------------- public functions


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
          torch_threads: Optional[int] = 1, checkpoint_path: Optional[PathLike] = None,
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
        torch_threads: intra-op threads while training (see :meth:`Run.learn`).
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
    its learning curve is that of an independent run. The native rollout and PPO's native
    update release the GIL, so the runs use as many cores as the machine gives them.

    ``callback(row)`` receives each run's rows (with ``row["seed"]``) one at a time (a
    lock serialises the calls); returning False stops that run. ``checkpoint_path``
    becomes ``<root>-seed<s><ext>`` per run. Ctrl-C (SIGINT in the main thread) stops
    every run at the end of its current iteration, saves the checkpoints and raises
    KeyboardInterrupt. The first error of any run is raised after all runs ended.
    """
    if any(isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)) for s in seeds):
        raise TypeError(f"seed must be an int or a list of ints, got {list(seeds)!r}")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seed must be an int or a non-empty list of ints")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds}")
    n_threads = len(seeds) if threads is None else int(threads)
    if n_threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads!r}")
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable or None")
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

    old_threads = torch.get_num_threads()
    if torch_threads is not None:
        torch.set_num_threads(int(torch_threads))
    guard: ContextManager[Any] = (SignalGuard(stop, (signal.SIGINT,), only_if_default=True)
                                  if threading.current_thread() is threading.main_thread()
                                  else nullcontext())
    try:
        with guard:
            pool = [threading.Thread(target=worker, name=f"pgfast-seed-{i}", daemon=True)
                    for i in range(min(n_threads, len(runs)))]
            for t in pool:
                t.start()
            for t in pool:
                while t.is_alive():  # a timed join keeps the main thread responsive to SIGINT
                    t.join(0.1)
    finally:
        if torch_threads is not None:
            torch.set_num_threads(old_threads)
    if errors:
        raise errors[0]
    if stop.requested:
        raise KeyboardInterrupt
    return runs


class InexactResumeWarning(UserWarning):
    """A loaded run cannot continue exactly like an uninterrupted one: its env
    state was not captured (see :attr:`Run.resume_note`)."""


def _load(path: PathLike, device: Optional[Union[str, torch.device]], trust: bool = False) -> Run:
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
