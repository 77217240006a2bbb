"""The training loop shared by all algorithms, and the :class:`Run` object.

::

    run = pgfast.train("ppo", "CartPole-v1", total_timesteps=100_000, seed=0,
                       device="cpu", num_envs=8)        # any Config field
    run.history                      # one dict per iteration
    run.evaluate(episodes=20)        # -> (mean, std) of episode returns
    run.save("run.pt");  run = pgfast.load("run.pt");  run.learn(50_000)

Each iteration: collect a rollout (:class:`pgfast.rollout.Collector`) -> advantages
(one C++ call on CPU) -> the algorithm's update -> observation statistics ->
a history row -> the optional callback.

Reproducibility: the network is initialised from ``seed``; action sampling and
minibatch shuffling use a dedicated ``torch.Generator`` seeded with ``seed``; the
env is reset with ``seed``. On CPU the same seed gives a bit-identical history
(apart from the wall-clock fields ``sps`` and ``time``).

Checkpoints (:meth:`Run.save`, :func:`load`): what they hold and how a run is rebuilt from one
is :mod:`pgfast.runstate`'s business; :func:`train` and :func:`train_seeds` live in
:mod:`pgfast.training` (all re-exported here).

Lifecycle (:mod:`pgfast.session`): :meth:`Run.learn` checks a stop flag at the end
of every iteration and follows a checkpoint schedule; SIGINT is deferred to the
end of the iteration (a second SIGINT interrupts at once). Evaluation episodes are
played by :mod:`pgfast.evaluation`.

Threads: one run uses ``config.num_threads`` CPU threads (default 1; 0: all the machine's):
the C++ update and rollout split their matrix products into row blocks across csrc/parallel.hpp's
one worker pool, a native env steps its envs on them, and where a phase runs on the torch path
:meth:`Run.learn` sets ``torch.set_num_threads`` to it for its duration (else to 1: the native
paths' torch ops are tiny; the previous value is restored afterwards). The C++ results are
bit-identical for every thread count.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import warnings
from contextlib import nullcontext
from typing import Any, Callable, ContextManager, Dict, List, Optional, Tuple, Union

import numpy as np
import torch

from pgfast import backends, checkpoint, evaluation, numerics, runstate
from pgfast.algos import config_help, explained_variance, get_algo
from pgfast.buffer import RewardScaler, RolloutBuffer
from pgfast.rollout import Collector
from pgfast.envs import make_vec
from pgfast import spaces
from pgfast.session import CheckpointSchedule, SignalGuard, StopFlag

__all__ = ["train", "train_seeds", "load", "load_checkpoint", "Run", "InexactResumeWarning",
           "config_help"]  # config_help: re-exported

PathLike = Union[str, "os.PathLike[str]"]

_INIT_LOCK = threading.RLock()


def _resolve_device(device: Union[str, torch.device]) -> Optional[torch.device]:
    """The device asked for; None for "auto" (chosen once the run's spaces are known:
    :func:`pgfast.backends.auto_device`). ValueError/TypeError on anything else."""
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise TypeError(f"device must be 'auto', 'cpu' or 'cuda[:i]', got {device!r}")
    if device == "auto":
        return None
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
        asked = _resolve_device(device)
        self.env_kwargs = dict(env_kwargs or {})
        cfg = config
        if cfg.num_envs * cfg.num_steps > 2**22:  # large enough to fail: estimate before allocating
            _check_memory(env_id, cfg, self.env_kwargs)
        # a native env steps on the run's threads (at most one per env; env_kwargs may say otherwise)
        env_threads = {"num_threads": min(cfg.threads, cfg.num_envs)}
        self.env = make_vec(env_id, cfg.num_envs, seed=None, autoreset_mode="same_step",
                            **{**env_threads, **self.env_kwargs})
        raw_obs_space = self.env.single_observation_space
        try:  # non-Box observations are flattened (pgfast.spaces); unsupported spaces raise here
            self.env = spaces.adapt_env(self.env)
        except (TypeError, ValueError):
            self.env.close()
            raise
        obs_space: Any = self.env.single_observation_space  # a Box now
        self.space_note = spaces.torch_path_reason(raw_obs_space, self.env.single_action_space)
        """Why the C++ paths cannot serve this env's spaces (None: they can)."""
        self.device_note: Optional[str] = None
        """Why ``device="auto"`` chose this device (None: the device was asked for)."""
        if asked is None:
            dev, self.device_note = backends.auto_device(cfg, self.space_note, torch.cuda.is_available())
            asked = torch.device(dev)
        self.device = asked
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
        self.updater = self.algo_cls(self.policy, cfg, self.generator)
        self.updater.space_note = self.space_note
        self.buffer = RolloutBuffer(cfg.num_steps, cfg.num_envs, obs_space.shape,
                                    self.env.single_action_space, self.device)
        scaler = RewardScaler(cfg.num_envs, cfg.gamma, cfg.clip_reward) if cfg.norm_reward else None
        try:  # the paths (pgfast.backends): "native" that cannot apply raises here, with the reason
            update_path = self.updater.update_path
            # a native update computes its own forward: the rollout's log-probs and values then
            # come from the same C++ forward, so its first ratio is exactly 1
            self.collector = Collector(self.env, self.policy, self.buffer, self.generator, scaler,
                                       rollout_backend=cfg.rollout_backend,
                                       native_eval=update_path == "native", space_note=self.space_note,
                                       num_threads=cfg.threads)
        except ValueError:
            self.env.close()
            raise
        self.collector.reset(seed=self.seed)
        self.paths = {"rollout": "native" if self.collector.native else "torch", "update": update_path,
                      "env": backends.env_path(self.collector.native, self.env)}
        """Which implementation serves the rollout and the update ("native": C++, or "torch"),
        as ``rollout_backend`` and ``update_backend`` chose, and how the env is stepped
        (``"env"``: :func:`pgfast.backends.env_path`) (:mod:`pgfast.backends`)."""
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
              torch_threads: Optional[int] = 0, checkpoint_path: Optional[PathLike] = None,
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
            torch_threads: intra-op threads during training (restored afterwards); 0 (the
                default): the run's ``config.num_threads`` (resolved) where a phase runs on the
                torch path, else 1; None leaves torch's setting alone.
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
        self.collector.num_threads = cfg.threads  # the C++ forward's threads (config may have changed)
        if torch_threads is not None:
            torch.set_num_threads(int(torch_threads) or self._torch_threads())
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

    def _torch_threads(self) -> int:
        """torch's intra-op threads for this run: ``config.threads`` where a phase runs on the
        torch path, else 1 (the native paths' torch ops are tiny, and idle intra-op threads that
        spin would take the cores of the C++ workers)."""
        return self.config.threads if "torch" in self.paths.values() else 1

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
        if getattr(self, "_param_list", None) is None:  # updates write in place: the views stay valid
            self._param_list = [p.detach() for p in self.policy.parameters()]
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
        """Refuse to let this run's checkpoints replace another run's file
        (:func:`pgfast.runstate.check_overwrite`)."""
        runstate.check_overwrite(self, path, overwrite)

    def state_dict(self) -> Dict[str, Any]:
        """Everything needed to continue the run (:func:`pgfast.runstate.capture`). Raises
        :class:`pgfast.numerics.NonFiniteError` when a weight is not finite."""
        return runstate.capture(self)

    def save(self, path: PathLike) -> None:
        """Write a checkpoint atomically (:func:`pgfast.checkpoint.write`); a failed
        write raises :class:`pgfast.checkpoint.CheckpointWriteError`."""
        checkpoint.write(self.state_dict(), path)
        self._own_files.add(os.path.realpath(os.fspath(path)))

    def _load_state(self, ck: Dict[str, Any], trust: bool = False) -> None:
        runstate.restore(self, ck, trust)

    def close(self) -> None:
        """Close the env."""
        self.env.close()

    def __repr__(self) -> str:
        return (f"Run(algo={self.algo!r}, env_id={self.env_id!r}, seed={self.seed}, "
                f"device={str(self.device)!r}, global_step={self.global_step})")


# the entry points, re-exported from the modules that hold them (they import Run from here)
from pgfast.runstate import InexactResumeWarning, load, load_checkpoint  # noqa: E402
from pgfast.training import train, train_seeds  # noqa: E402
