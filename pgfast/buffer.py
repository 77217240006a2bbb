"""Rollout storage and the rollout collector.

:class:`RolloutBuffer` holds one rollout of ``T = num_steps`` steps of ``N = num_envs``
envs as time-major ``[T, N]`` tensors on the training device.
:class:`Collector` fills it:

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
* Native rollout (``rollout_backend``, :attr:`Collector.native`): where the policy is a
  float32 tanh/ReLU MLP :class:`pgfast.nn.ActorCritic` on CPU and the env offers
  ``step_into``, the whole T-step loop runs in one C++ call
  (``pgfast._C.rollout_mlp``): the actor's forward reads the torch parameters in
  place (observations normalised in C++ with the same float32 operations as
  ``RunningMeanStd.normalize``) and samples with the same pre-drawn noise, with the
  GIL released; the env writes into the same rows (a native classic env's C++ core
  is stepped directly, without a Python frame per step). Reward scaling runs after
  the rollout, step by step in the same order. The float32 forward agrees with
  torch's to rounding, so actions are the torch path's except where two noisy
  logits tie to within rounding (tested).
* Log-probabilities and values of the batch come from the batched torch forward
  below, or (``native_eval=True``, set by the trainer when the update's path is
  native) from ``pgfast._C.policy_evaluate``, the forward of that update, so the
  update's first ratio is exactly 1 either way.
* Episode returns and lengths (of the raw, unscaled rewards) are computed once
  per rollout from the ``[T, N]`` rewards and flags (:func:`episode_stats`), with
  no per-env or per-step Python.
"""

from __future__ import annotations

import collections
from typing import Any, Deque, Dict, Optional, Sequence, Tuple, Union

import gymnasium as gym
import numpy as np
import torch

from pgfast import _C, backends
from pgfast.nn.normalization import RewardScaler
from pgfast.spaces import action_buffer_spec, clip_actions

__all__ = ["RolloutBuffer", "Collector", "RewardScaler", "episode_stats"]


def _np(t: torch.Tensor) -> np.ndarray:
    """numpy view of a CPU tensor (shares memory)."""
    return t.numpy()


def episode_stats(rewards: np.ndarray, dones: np.ndarray, carry_ret: np.ndarray,
                  carry_len: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Returns and lengths of the episodes that end inside a rollout, vectorised.

    Args:
        rewards: ``[T, N]`` rewards of the rollout.
        dones: ``[T, N]`` bool, an episode ended at (t, i).
        carry_ret, carry_len: ``[N]`` return and length of each env's episode so far
            at the start of the rollout (updated in place to the state at its end).

    Returns:
        ``(returns, lengths)`` of the finished episodes, ordered by step t and then
        env index (the order in which a step-by-step loop would see them).
    """
    T, N = dones.shape
    csum = np.cumsum(rewards, axis=0, dtype=np.float64)
    ts, envs = np.nonzero(dones)
    steps = np.arange(T)[:, None]
    last = np.maximum.accumulate(np.where(dones, steps, -1), axis=0)  # last end <= t
    prev = np.full(ts.shape, -1, dtype=np.int64)
    inner = ts > 0
    prev[inner] = last[ts[inner] - 1, envs[inner]]
    first = prev < 0  # first end of this env in the rollout: add the carried episode
    base = np.where(first, -carry_ret[envs], csum[np.maximum(prev, 0), envs])
    returns = csum[ts, envs] - base
    lengths = np.where(first, ts + 1 + carry_len[envs], ts - prev)
    end = last[-1]
    ended = end >= 0
    tail = csum[-1] - np.where(ended, csum[np.maximum(end, 0), np.arange(N)], 0.0)
    carry_ret[:] = np.where(ended, tail, carry_ret + csum[-1])
    carry_len[:] = np.where(ended, T - 1 - end, carry_len + T)
    return returns, lengths


class RolloutBuffer:
    """One rollout: ``[T, N]`` tensors on ``device``.

    Attributes (T = num_steps, N = num_envs):
        obs: ``[T + 1, N, *obs_shape]`` float32; row t is the observation the
            policy acted on at step t, row T the observation after the rollout
            (row 0 of the next rollout).
        actions: ``[T, N]`` int64 (Discrete), ``[T, N, D]`` float32 (Box, unclipped) or
            ``[T, N, D]`` int64 (MultiDiscrete, MultiBinary).
        logp, values, next_values: ``[T, N]`` float32.
        rewards: ``[T, N]`` float32 (after reward scaling, if enabled).
        terminated, truncated: ``[T, N]`` bool.
        final_obs: ``[T, N, *obs_shape]`` float32; row (t, i) valid where
            ``truncated[t, i]`` (last observation of the truncated episode).
    """

    def __init__(self, num_steps: int, num_envs: int, obs_shape: Sequence[int], action_space: Any,
                 device: Union[str, torch.device] = "cpu") -> None:
        """Allocate the ``[T, N]`` tensors (``[T + 1, N, *obs_shape]`` observations)."""
        if not isinstance(num_steps, int) or num_steps < 1:
            raise ValueError(f"num_steps must be a positive int, got {num_steps!r}")
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        self.device = torch.device(device)
        T, N = num_steps, num_envs
        self.num_steps, self.num_envs = T, N
        self.obs_shape = tuple(obs_shape)
        self.continuous = isinstance(action_space, gym.spaces.Box)
        dev = self.device
        f32 = torch.float32
        self.obs = torch.zeros((T + 1, N) + self.obs_shape, dtype=f32, device=dev)
        a_shape, a_dtype = action_buffer_spec(action_space)
        self.actions = torch.zeros((T, N) + a_shape, dtype=a_dtype, device=dev)
        self.logp = torch.zeros((T, N), dtype=f32, device=dev)
        self.values = torch.zeros((T, N), dtype=f32, device=dev)
        self.next_values = torch.zeros((T, N), dtype=f32, device=dev)
        self.final_obs = torch.zeros((T, N) + self.obs_shape, dtype=f32, device=dev)
        if dev.type == "cpu":
            self.rewards = torch.zeros((T, N), dtype=f32)
            self.terminated = torch.zeros((T, N), dtype=torch.bool)
            self.truncated = torch.zeros((T, N), dtype=torch.bool)
            # host views the env writes into (same memory)
            self.host_rewards, self.host_terminated, self.host_truncated = (
                self.rewards, self.terminated, self.truncated)
        else:
            pin = dev.type == "cuda"
            self.host_rewards = torch.zeros((T, N), dtype=f32, pin_memory=pin)
            self.host_terminated = torch.zeros((T, N), dtype=torch.bool, pin_memory=pin)
            self.host_truncated = torch.zeros((T, N), dtype=torch.bool, pin_memory=pin)
            self.rewards = torch.zeros((T, N), dtype=f32, device=dev)
            self.terminated = torch.zeros((T, N), dtype=torch.bool, device=dev)
            self.truncated = torch.zeros((T, N), dtype=torch.bool, device=dev)

    def sync_to_device(self) -> None:
        """Copy the host-side rewards/flags to the device (once per rollout; no-op on CPU)."""
        if self.device.type != "cpu":
            self.rewards.copy_(self.host_rewards, non_blocking=True)
            self.terminated.copy_(self.host_terminated, non_blocking=True)
            self.truncated.copy_(self.host_truncated, non_blocking=True)


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
    """

    def __init__(self, env: Any, policy: Any, buffer: RolloutBuffer, generator: torch.Generator,
                 reward_scaler: Optional[RewardScaler] = None, stats_window: int = 100,
                 rollout_backend: str = "torch", native_eval: bool = False,
                 space_note: Optional[str] = None) -> None:
        """Check the env against the buffer and make the ``[N]`` row views and trackers."""
        mode = env.metadata.get("autoreset_mode")
        if mode != gym.vector.AutoresetMode.SAME_STEP:
            raise ValueError(f"env must use autoreset_mode='same_step', got {mode!r}")
        if env.num_envs != buffer.num_envs:
            raise ValueError(f"env has {env.num_envs} envs, buffer has {buffer.num_envs}")
        self.env, self.policy, self.buf, self.gen = env, policy, buffer, generator
        self.reward_scaler = reward_scaler
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
        ws, bs = pol.native_layers()
        log_std = pol.log_std.detach().numpy() if pol.log_std is not None else None
        _C.policy_evaluate(ws, bs, log_std, pol.activation, x.contiguous().numpy(),
                           None if actions is None else actions.contiguous().numpy(),
                           values.numpy(), None if logp is None else logp.numpy())

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
        its rows unchanged after this call, for the update.
        """
        buf, pol, env = self.buf, self.policy, self.env
        T = buf.num_steps
        if self._carry:
            buf.obs[0].copy_(buf.obs[T])
        self._carry = True
        trunc_any = False
        with torch.inference_mode():
            forward, sample = pol.forward, pol.sample_with_noise
            noise_all = pol.rollout_noise(T, buf.num_envs, self.gen)
            noise = noise_all.unbind(0)
            std = pol.log_std.exp() if pol.continuous else None
            obs_rows, act_rows = self._obs_rows, self._act_rows
            scaler = self.reward_scaler
            if self.native:
                trunc_any = self._collect_native(noise_all, std)
                if scaler is not None:  # the same sequence of updates as step by step below
                    np.copyto(self.raw_rew, self.rew_np)
                    scaler.scale_rollout(self.rew_np, self.term_np | self.trunc_np)
            for t in range(0 if self.native else T):
                a = sample(forward(obs_rows[t])[0], noise[t], std)
                act_rows[t].copy_(a)
                if self.on_cpu:
                    a_np = self.actions_np[t]
                    obs_dst = self.obs_np[t + 1]
                else:
                    a_np = a.cpu().numpy()  # device -> host once per step
                    obs_dst = self.obs_stage_np
                if self.continuous:  # clip only at the env boundary
                    a_np = clip_actions(a_np, self.action_space, out=self.env_actions)
                rew, term, trunc = self.rew_np[t], self.term_np[t], self.trunc_np[t]
                if self.step_into is not None:
                    info = self.step_into(a_np, obs_dst, rew, term, trunc)
                else:
                    o, r, te, tr, info = env.step(a_np)
                    np.copyto(obs_dst, o, casting="unsafe")
                    np.copyto(rew, r, casting="unsafe")
                    np.copyto(term, te)
                    np.copyto(trunc, tr)
                if not self.on_cpu:
                    buf.obs[t + 1].copy_(self.obs_stage, non_blocking=True)
                if trunc.any():
                    trunc_any = True
                    self._store_final_obs(t, trunc, info)
                if scaler is not None:
                    self.raw_rew[t] = rew
                    scaler(rew, term | trunc)
            buf.sync_to_device()
            self._finish_episodes(self.raw_rew if scaler is not None else self.rew_np,
                                  self.term_np | self.trunc_np)
            # log-probs and values of the whole rollout in one batched forward pass
            # (the policy did not change during the rollout). The batch is exactly the
            # [T * N] batch a single-minibatch update evaluates, so that update's
            # first ratio exp(logp - logp_old) is exactly 1.
            N = buf.num_envs
            if self.native_eval:
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
                return
            pi_all, v_all = pol(buf.obs[:T].reshape(T * N, *buf.obs_shape))
            buf.values.copy_(v_all.view(T, N))
            acts = buf.actions.reshape(T * N, *buf.actions.shape[2:])
            buf.logp.copy_(pol.log_prob(pi_all, acts).view(T, N))
            # bootstrap values: V(obs[t+1]), and V(final obs) where truncated
            nv = buf.next_values
            nv[:-1] = buf.values[1:]
            nv[-1] = pol(buf.obs[T])[1]
            if trunc_any:
                m = buf.truncated
                nv[m] = pol.value(buf.final_obs[m])

    def _collect_native(self, noise: torch.Tensor, std: Optional[torch.Tensor]) -> bool:
        """The T-step loop of :meth:`collect` in one C++ call (noise ``[T, N, out_dim]``,
        ``std`` ``[D]`` for Box); returns True if some step truncated an episode."""
        ws, bs = self.policy.native_layers()
        buf = self.buf
        assert self.step_into is not None
        # a native classic env's core is stepped from C++ (no Python frame per step)
        core = self.env.native_core() if hasattr(self.env, "native_core") else None
        stepper: Any = self.step_into if core is None else core
        extra: Dict[str, Any] = {}
        if self.continuous:
            assert std is not None
            extra.update(std=std.numpy(), low=self.low, high=self.high,
                         env_actions=self.env_actions)
        rms = self.policy.obs_rms
        if rms is not None:
            extra.update(obs_mean=rms.mean32.numpy(), obs_inv_std=rms.inv_std32.numpy(),
                         obs_clip=float(rms.clip))
        return bool(_C.rollout_mlp(
            stepper, ws, bs, self.policy.activation, noise.numpy(), self.obs_np,
            self.actions_np, self.rew_np, self.term_np, self.trunc_np, _np(buf.final_obs),
            **extra))

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

    def _store_final_obs(self, t: int, trunc: np.ndarray, info: dict) -> None:
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
