"""Peer implementations and timing helpers shared by the benchmark files."""

from __future__ import annotations

import time

import numpy as np
import torch


def best_time(fn, min_time: float = 0.2, max_repeat: int = 1000) -> float:
    """Best-of-k wall time of fn() in seconds (k chosen to fill about min_time)."""
    fn()  # warm up
    best = float("inf")
    start = time.perf_counter()
    for _ in range(max_repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        if time.perf_counter() - start > min_time:
            break
    return best


def interleaved_best(fns, rounds: int = 3, min_time: float = 0.1):
    """Best seconds per call of each fn over ``rounds`` rounds in which the fns take
    turns: a burst of load or a change of clock speed then falls on every fn alike,
    which keeps their ratios steady where separate timings would not be."""
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            best[name] = min(best[name], best_time(fn, min_time))
    return best


def gae_numpy_loop(rewards, values, next_values, terminated, truncated, gamma, lam):
    """GAE as Stable-Baselines3's RolloutBuffer computes it: a Python loop over T,
    vectorised over N with NumPy (with the truncation bootstrap folded into
    next_values as SB3 folds it into the rewards)."""
    T = rewards.shape[0]
    adv = np.zeros_like(rewards)
    last = np.zeros_like(rewards[0])
    not_term = 1.0 - terminated.astype(rewards.dtype)
    not_done = 1.0 - np.logical_or(terminated, truncated).astype(rewards.dtype)
    not_done[-1] = 0.0
    for t in reversed(range(T)):
        delta = rewards[t] + gamma * not_term[t] * next_values[t] - values[t]
        last = delta + gamma * lam * not_done[t] * last
        adv[t] = last
    return adv, adv + values


def gae_torch_loop(rewards, values, next_values, terminated, truncated, gamma, lam):
    """GAE as a straightforward torch loop over T (CleanRL style), on CPU tensors."""
    T = rewards.shape[0]
    adv = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[0])
    not_term = 1.0 - terminated.to(rewards.dtype)
    not_done = 1.0 - (terminated | truncated).to(rewards.dtype)
    not_done[-1] = 0.0
    for t in reversed(range(T)):
        delta = rewards[t] + gamma * not_term[t] * next_values[t] - values[t]
        last = delta + gamma * lam * not_done[t] * last
        adv[t] = last
    return adv, adv + values
