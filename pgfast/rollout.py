"""The rollout collector: runs the policy in a vector env and fills a
:class:`pgfast.buffer.RolloutBuffer`, by one of two strategies.

* The env writes each step's observations, rewards and flags straight into the
  buffer row (``env.step_into`` when the env offers it; otherwise ``env.step``
  followed by one copy into the row). On CPU the buffer rows themselves are
  handed to the env (no copies at all). On CUDA the env writes into pinned host
  staging arrays: observations go host->device once per step, actions go
  device->host once per step, and rewards/flags (kept in pinned ``[T, N]`` host
  arrays) go to the device once per rollout.
* The policy runs under ``torch.inference_mode``; each step only samples actions
  (with noise drawn once per rollout: Gumbel-max for Discrete, Gaussian for Box).
  Log-probabilities and values of the whole rollout (and V(obs[T])) come from one
  batched forward pass after the last step (the policy does not change during a
  rollout), which saves several torch ops per step.
* Envs run with ``autoreset_mode="same_step"``: an episode that ends at step t is
  reset inside the same call, ``obs[t+1]`` is the first observation of the next
  episode and ``info["final_obs"]`` holds the last observation of the ended one
  (a dense ``[N, *obs_shape]`` array for native envs, gymnasium's object array
  for the gymnasium fallback; rows valid where ``info["_final_obs"]`` is set).
* Bootstrapping (Spinning Up's ``finish_path(last_val)``): ``next_values[t]`` is
  V(obs[t+1]); where step t was truncated by a time limit it is replaced by
  V(final obs of that episode), because obs[t+1] already belongs to the next
  episode. Where step t terminated, next_values is ignored by the advantage
  kernels (no bootstrap). The last row uses V(obs[T]), so a rollout that stops
  mid-episode is bootstrapped.
* Strategies (``rollout_backend``, chosen by :mod:`pgfast.backends`): :class:`TorchRollout`
  (the loop in Python; any device and policy) and :class:`NativeRollout` (where the policy
  is a float32 tanh/ReLU MLP :class:`pgfast.nn.ActorCritic` on CPU and the env offers
  ``step_into``: the whole T-step loop in one C++ call, ``pgfast._C.rollout_mlp``; the
  actor's forward reads the torch parameters in place, observations normalised in C++ with
  the same float32 operations as ``RunningMeanStd.normalize``, sampling from the same
  pre-drawn noise, the GIL released). The float32 forward agrees with torch's to rounding,
  so actions are the torch loop's except where two noisy logits tie to within rounding
  (tested).
* Log-probabilities and values of the batch come from the batched torch forward, or
  (``native_eval=True``, set by the trainer when the update's path is native) from
  ``pgfast._C.policy_evaluate``, the forward of that update, so the update's first ratio
  is exactly 1 either way.
* Episode returns and lengths (of the raw, unscaled rewards) are computed once
  per rollout from the ``[T, N]`` rewards and flags
  (:func:`pgfast.buffer.episode_stats`), with no per-env or per-step Python.
"""

from __future__ import annotations

import collections
from typing import Any, Deque, Dict, Optional

import gymnasium as gym
import numpy as np
import torch

from pgfast import _C, backends
from pgfast.buffer import RolloutBuffer, _np, episode_stats
from pgfast.nn.normalization import RewardScaler
from pgfast.spaces import clip_actions

__all__ = ["Collector", "TorchRollout", "NativeRollout"]


class TorchRollout:
    """The torch loop: T steps in Python, each a policy forward and a sample from that step's
    noise, the env stepped through ``step_into`` (or ``step`` and one copy into the row);
    CPU or CUDA (pinned staging arrays), any policy. Rewards are scaled step by step."""

    def __init__(self, col: "Collector") -> None:
        self.col = col

    def run(self, noise: torch.Tensor, std: Optional[torch.Tensor]) -> bool:
        """Fill rows 1..T of the buffer (noise ``[T, N, out_dim]``, ``std`` ``[D]`` for Box);
        returns True if some step truncated an episode."""
        col = self.col
        buf, pol, env, scaler = col.buf, col.policy, col.env, col.reward_scaler
        forward, sample = pol.forward, pol.sample_with_noise
        noise_rows = noise.unbind(0)
        obs_rows, act_rows = col._obs_rows, col._act_rows
        trunc_any = False
        for t in range(buf.num_steps):
            a = sample(forward(obs_rows[t])[0], noise_rows[t], std)
            act_rows[t].copy_(a)
            if col.on_cpu:
                a_np = col.actions_np[t]
                obs_dst = col.obs_np[t + 1]
            else:
                a_np = a.cpu().numpy()  # device -> host once per step
                obs_dst = col.obs_stage_np
            if col.continuous:  # clip only at the env boundary
                a_np = clip_actions(a_np, col.action_space, out=col.env_actions)
            rew, term, trunc = col.rew_np[t], col.term_np[t], col.trunc_np[t]
            if col.step_into is not None:
                info = col.step_into(a_np, obs_dst, rew, term, trunc)
            else:
                o, r, te, tr, info = env.step(a_np)
                np.copyto(obs_dst, o, casting="unsafe")
                np.copyto(rew, r, casting="unsafe")
                np.copyto(term, te)
                np.copyto(trunc, tr)
            if not col.on_cpu:
                buf.obs[t + 1].copy_(col.obs_stage, non_blocking=True)
            if trunc.any():
                trunc_any = True
                col.store_final_obs(t, trunc, info)
            if scaler is not None:
                col.raw_rew[t] = rew
                scaler(rew, term | trunc)
        return trunc_any


class NativeRollout:
    """The native rollout: the T-step loop in one C++ call (:func:`pgfast._C.rollout_mlp`), the
    GIL released. It steps a native env's C++ core directly (``env.native_core()``, a
    :class:`pgfast._C.RolloutEnv`: the classic envs' and the MuJoCo envs' C++ engine; no
    Python frame per step) and any other ``step_into`` env through that method (one Python call
    per step); the two differ only in the stepper handed to the same call. Rewards are scaled
    after the rollout, in the same order as step by step."""

    def __init__(self, col: "Collector") -> None:
        self.col = col

    def stepper(self) -> Any:
        """What the C++ loop steps: the env's C++ core where it has one, else its ``step_into``
        (asked at every rollout: a resumed run's env is another object)."""
        env = self.col.env
        core = env.native_core() if hasattr(env, "native_core") else None
        return self.col.step_into if core is None else core

    def run(self, noise: torch.Tensor, std: Optional[torch.Tensor]) -> bool:
        """As :meth:`TorchRollout.run`, in one C++ call."""
        col = self.col
        (ws, bs), _ = col.policy.native_layers()
        assert col.step_into is not None
        extra: Dict[str, Any] = {}
        if col.continuous:
            assert std is not None
            extra.update(std=std.numpy(), low=col.low, high=col.high, env_actions=col.env_actions)
        rms = col.policy.obs_rms
        if rms is not None:
            extra.update(obs_mean=rms.mean32.numpy(), obs_inv_std=rms.inv_std32.numpy(),
                         obs_clip=float(rms.clip))
        trunc_any = bool(_C.rollout_mlp(
            step_into=self.stepper(), weights=ws, biases=bs, activation=col.policy.activation,
            noise=noise.numpy(), obs=col.obs_np, actions=col.actions_np, rewards=col.rew_np,
            terminated=col.term_np, truncated=col.trunc_np, final_obs=_np(col.buf.final_obs),
            num_threads=col.num_threads, **extra))
        if col.reward_scaler is not None:  # the same sequence of updates as step by step
            np.copyto(col.raw_rew, col.rew_np)
            col.reward_scaler.scale_rollout(col.rew_np, col.term_np | col.trunc_np)
        return trunc_any


class Collector:
    """Runs the policy in a vector env and fills a :class:`RolloutBuffer`.

    Args:
        env: a ``gymnasium.vector.VectorEnv`` in ``same_step`` autoreset mode.
        policy: a :class:`pgfast.nn.ActorCritic` (or any object with its
            ``forward(obs) -> (pi_out, value)``, ``rollout_noise``,
            ``sample_with_noise``, ``log_prob`` methods, ``continuous``/``log_std``
            attributes and ``__call__`` = ``forward``).
        buffer: the buffer to fill (its device is the training device).
        generator: torch generator for action sampling (on the buffer's device).
        reward_scaler: optional :class:`RewardScaler`.
        stats_window: number of recent finished episodes kept for statistics.
        rollout_backend: "auto" | "native" | "torch": the native rollout (see the module
            docstring) or the torch loop, chosen by :func:`pgfast.backends.choose` ("native"
            raises ValueError with the reason where it cannot apply; :attr:`native` says
            which runs).
        native_eval: compute the rollout's log-probs and values with
            :func:`pgfast._C.policy_evaluate` (CPU float32 tanh/ReLU MLPs), the forward of
            the native update, so that update's first ratio is exactly 1 (ValueError where
            it cannot apply).
        space_note: why the env's spaces need the torch path
            (:func:`pgfast.spaces.torch_path_reason`), for the reason "native" cannot apply.
        num_threads: threads of the C++ forward's products (rollout and ``native_eval``;
            the same actions and values for any count).
    """

    def __init__(self, env: Any, policy: Any, buffer: RolloutBuffer, generator: torch.Generator,
                 reward_scaler: Optional[RewardScaler] = None, stats_window: int = 100,
                 rollout_backend: str = "torch", native_eval: bool = False,
                 space_note: Optional[str] = None, num_threads: int = 1) -> None:
        """Check the env against the buffer and make the ``[N]`` row views and trackers."""
        mode = env.metadata.get("autoreset_mode")
        if mode != gym.vector.AutoresetMode.SAME_STEP:
            raise ValueError(f"env must use autoreset_mode='same_step', got {mode!r}")
        if env.num_envs != buffer.num_envs:
            raise ValueError(f"env has {env.num_envs} envs, buffer has {buffer.num_envs}")
        self.env, self.policy, self.buf, self.gen = env, policy, buffer, generator
        self.reward_scaler = reward_scaler
        self.num_threads = int(num_threads)
        self.step_into = getattr(env, "step_into", None)
        self.device = buffer.device
        self.on_cpu = self.device.type == "cpu"
        N = env.num_envs
        space = self.action_space = env.single_action_space
        self.continuous = isinstance(space, gym.spaces.Box)
        if self.continuous:
            self.low = np.asarray(space.low, dtype=np.float32)  # float32 bounds: the C++ rollout clips
            self.high = np.asarray(space.high, dtype=np.float32)
            self.env_actions = np.zeros((N,) + space.shape, dtype=space.dtype)
        pin = self.device.type == "cuda"
        if not self.on_cpu:
            self.obs_stage = torch.zeros((N,) + buffer.obs_shape, dtype=torch.float32,
                                         pin_memory=pin)
            self.obs_stage_np = _np(self.obs_stage)
        self._obs_rows = list(buffer.obs.unbind(0))  # row views, made once
        self._act_rows = list(buffer.actions.unbind(0))
        # CPU only (None on other devices): numpy views of the buffer rows the env writes into
        self.obs_np: Any = _np(buffer.obs) if self.on_cpu else None
        self.actions_np: Any = _np(buffer.actions) if self.on_cpu else None
        self.rew_np = _np(buffer.host_rewards)
        self.term_np = _np(buffer.host_terminated)
        self.trunc_np = _np(buffer.host_truncated)
        self.raw_rew: Any = np.zeros((buffer.num_steps, N), dtype=np.float32) \
            if reward_scaler is not None else None
        self.ep_ret = np.zeros(N, dtype=np.float64)
        self.ep_len = np.zeros(N, dtype=np.int64)
        self.recent_returns: Deque[float] = collections.deque(maxlen=stats_window)
        self.recent_lengths: Deque[int] = collections.deque(maxlen=stats_window)
        self.episodes_finished = 0
        self._carry = False  # True once obs[T] holds the current observations
        reason = backends.rollout_native_reason(env, policy, self.device, buffer.obs_shape, space_note)
        self.native = backends.choose("rollout_backend", rollout_backend, reason) == "native"
        """Whether the native rollout runs (else the torch loop)."""
        self.steps: Any = NativeRollout(self) if self.native else TorchRollout(self)
        """The strategy that steps the rollout (:class:`NativeRollout` or :class:`TorchRollout`)."""
        if native_eval:
            eval_reason = backends.mlp_native_reason(policy, self.device, "pgfast._C.policy_evaluate")
            if eval_reason is not None:
                raise ValueError(f"native_eval: {eval_reason}")
        self.native_eval = bool(native_eval)
        """Whether the rollout's log-probs and values come from :func:`pgfast._C.policy_evaluate`."""

    def _evaluate(self, obs: torch.Tensor, actions: Optional[torch.Tensor], values: torch.Tensor,
                  logp: Optional[torch.Tensor]) -> None:
        """Values (and log-probs of ``actions``) of observations ``[B, *obs_shape]`` into the
        float32 ``[B]`` views ``values`` / ``logp`` with :func:`pgfast._C.policy_evaluate`."""
        pol = self.policy
        x = pol.network_input(obs)
        (aw, ab), (cw, cb) = pol.native_layers()
        log_std = pol.log_std.detach().numpy() if pol.log_std is not None else None
        _C.policy_evaluate(actor_weights=aw, actor_biases=ab, critic_weights=cw, critic_biases=cb,
                           log_std=log_std, activation=pol.activation, obs=x.contiguous().numpy(),
                           actions=None if actions is None else actions.contiguous().numpy(),
                           values=values.numpy(), logp=None if logp is None else logp.numpy(),
                           num_threads=self.num_threads)

    # ---- start ----------------------------------------------------------------------
    def reset(self, seed: Optional[int] = None) -> None:
        """Reset the env (seeded) and put the first observations in ``buffer.obs[0]``."""
        obs, _ = self.env.reset(seed=seed)
        self.set_current_obs(torch.as_tensor(np.asarray(obs, dtype=np.float32)))
        self.ep_ret[:] = 0.0
        self.ep_len[:] = 0

    # ---- one rollout ------------------------------------------------------------------
    def collect(self) -> None:
        """Fill every row of the buffer (T env steps), then compute ``next_values``.

        The current observations (from :meth:`reset` or the previous rollout's last
        row ``obs[T]``, copied to row 0 here) start the rollout; the buffer keeps
        its rows unchanged after this call, for the update. The steps are the strategy's
        (:class:`NativeRollout` or :class:`TorchRollout`), the log-probs and values of the
        batch one batched pass (:meth:`_values_native` or :meth:`_values_torch`).
        """
        buf, pol = self.buf, self.policy
        T = buf.num_steps
        if self._carry:
            buf.obs[0].copy_(buf.obs[T])
        self._carry = True
        with torch.inference_mode():
            noise = pol.rollout_noise(T, buf.num_envs, self.gen)
            std = pol.log_std.exp() if pol.continuous else None
            trunc_any = self.steps.run(noise, std)
            buf.sync_to_device()
            self._finish_episodes(self.raw_rew if self.reward_scaler is not None else self.rew_np,
                                  self.term_np | self.trunc_np)
            # log-probs and values of the whole rollout in one batched pass (the policy did
            # not change during the rollout). The batch is exactly the [T * N] batch a
            # single-minibatch update evaluates, so that update's first ratio
            # exp(logp - logp_old) is exactly 1.
            (self._values_native if self.native_eval else self._values_torch)(trunc_any)

    def _values_torch(self, trunc_any: bool) -> None:
        """``values``, ``logp`` and ``next_values`` of the filled rows by the torch forward:
        V(obs[t+1]), and V(final obs) where step t truncated."""
        buf, pol = self.buf, self.policy
        T, N = buf.num_steps, buf.num_envs
        pi_all, v_all = pol(buf.obs[:T].reshape(T * N, *buf.obs_shape))
        buf.values.copy_(v_all.view(T, N))
        acts = buf.actions.reshape(T * N, *buf.actions.shape[2:])
        buf.logp.copy_(pol.log_prob(pi_all, acts).view(T, N))
        nv = buf.next_values
        nv[:-1] = buf.values[1:]
        nv[-1] = pol(buf.obs[T])[1]
        if trunc_any:
            m = buf.truncated
            nv[m] = pol.value(buf.final_obs[m])

    def _values_native(self, trunc_any: bool) -> None:
        """As :meth:`_values_torch`, by :func:`pgfast._C.policy_evaluate` (the native update's
        forward)."""
        buf = self.buf
        T, N = buf.num_steps, buf.num_envs
        self._evaluate(buf.obs[:T].reshape(T * N, *buf.obs_shape),
                       buf.actions.reshape(T * N, *buf.actions.shape[2:]),
                       buf.values.view(T * N), buf.logp.view(T * N))
        nv = buf.next_values
        nv[:-1] = buf.values[1:]
        self._evaluate(buf.obs[T], None, nv[-1], None)
        if trunc_any:
            m = buf.truncated
            fin = torch.empty(int(m.sum()))
            self._evaluate(buf.final_obs[m], None, fin, None)
            nv[m] = fin

    def current_obs(self) -> torch.Tensor:
        """The observations ``[N, *obs_shape]`` the next rollout starts from (a view)."""
        return self.buf.obs[self.buf.num_steps] if self._carry else self.buf.obs[0]

    def set_current_obs(self, obs: torch.Tensor) -> None:
        """Set the observations the next rollout starts from."""
        self.buf.obs[0].copy_(obs)
        self._carry = False

    def _finish_episodes(self, rewards: np.ndarray, dones: np.ndarray) -> None:
        """Record the episodes that ended in the rollout (rewards, dones ``[T, N]``)."""
        rets, lens = episode_stats(rewards, dones, self.ep_ret, self.ep_len)
        self.recent_returns.extend(rets.tolist())
        self.recent_lengths.extend(lens.tolist())
        self.episodes_finished += len(rets)

    def store_final_obs(self, t: int, trunc: np.ndarray, info: dict) -> None:
        """Copy the last observations of the episodes truncated at step t (``trunc`` ``[N]``)
        into ``final_obs[t]`` ``[N, *obs_shape]``."""
        mask = info.get("_final_obs")
        if mask is None:
            raise RuntimeError("env reported a truncation without info['final_obs'] "
                               "(is it in same_step autoreset mode?)")
        fo = info["final_obs"]
        sel = np.asarray(mask, dtype=bool) & trunc
        if fo.dtype == object:  # gymnasium fallback: object array of per-env observations
            rows = np.stack([np.asarray(x, dtype=np.float32) for x in fo[sel]])
        else:
            rows = np.asarray(fo[sel], dtype=np.float32)
        idx = torch.as_tensor(np.flatnonzero(sel), device=self.device)
        self.buf.final_obs[t].index_copy_(0, idx, torch.as_tensor(rows).to(self.device))

    # ---- statistics / state ------------------------------------------------------------
    def mean_recent_return(self) -> float:
        """Mean return of the recent finished episodes (NaN if none yet)."""
        return float(np.mean(self.recent_returns)) if self.recent_returns else float("nan")

    def mean_recent_length(self) -> float:
        """Mean length of the recent finished episodes (NaN if none yet)."""
        return float(np.mean(self.recent_lengths)) if self.recent_lengths else float("nan")

    def state_dict(self) -> Dict:
        """Episode trackers and reward-scaler state (for checkpoints)."""
        d = {"ep_ret": self.ep_ret.copy(), "ep_len": self.ep_len.copy(),
             "recent_returns": list(self.recent_returns),
             "recent_lengths": list(self.recent_lengths),
             "episodes_finished": self.episodes_finished}
        if self.reward_scaler is not None:
            d["reward_scaler"] = self.reward_scaler.state_dict()
        return d

    def load_state_dict(self, d: Dict) -> None:
        """Restore from :meth:`state_dict`."""
        self.ep_ret[:] = d["ep_ret"]
        self.ep_len[:] = d["ep_len"]
        self.recent_returns.clear()
        self.recent_returns.extend(d["recent_returns"])
        self.recent_lengths.clear()
        self.recent_lengths.extend(d["recent_lengths"])
        self.episodes_finished = d["episodes_finished"]
        if self.reward_scaler is not None and "reward_scaler" in d:
            self.reward_scaler.load_state_dict(d["reward_scaler"])
