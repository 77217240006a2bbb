"""Rollout storage: :class:`RolloutBuffer` holds one rollout of ``T = num_steps`` steps of
``N = num_envs`` envs as time-major ``[T, N]`` tensors on the training device;
:func:`episode_stats` turns a rollout's rewards and flags into finished episodes' returns and
lengths. The collector that fills the buffer is :class:`pgfast.rollout.Collector` (re-exported
here).
"""

from __future__ import annotations

from typing import Any, Sequence, Tuple, Union

import gymnasium as gym
import numpy as np
import torch

from pgfast.nn.normalization import RewardScaler
from pgfast.spaces import action_buffer_spec

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


# the collector lives in pgfast.rollout (it imports this module)
from pgfast.rollout import Collector  # noqa: E402
