"""Returns and advantages: rewards-to-go, GAE, n-step returns and discounted cumulative sums.

All functions take time-major arrays: ``[T, N]`` (T steps of N parallel envs)
or ``[T]`` (one env). Inputs may be numpy arrays or torch tensors; the result
has the input's type, dtype and device. numpy arrays and CPU tensors go to the
C++ kernels in :mod:`pgfast._C` without copies (CPU tensors share memory with
numpy); CUDA tensors are handled by a torch implementation on the device that
is vectorised over N and loops over T.

Episode boundaries
------------------
``terminated[t]`` marks a true end of an episode at step t: nothing after it
counts, and no value is bootstrapped. ``truncated[t]`` marks a cut by a time
limit: the episode could have gone on, so its tail is estimated by
``next_values[t]``, which must then hold V(final observation) of that episode
(not V of the first observation of the next one). The last row ``t = T-1`` is
always treated as cut: a rollout that stops mid-episode bootstraps from
``next_values[T-1]``, exactly as Spinning Up's ``finish_path(last_val)`` does.

Flags may be bool, uint8 or float (nonzero means set). Non-contiguous inputs
are made contiguous (copied) before the kernel runs; contiguous ones are never
copied.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Sequence, Tuple

import numpy as np

from pgfast import _C

try:  # torch is a hard dependency, but keep numpy-only use importable.
    import torch
except ImportError:  # pragma: no cover - exercised only without torch
    torch = None  # type: ignore[assignment]

__all__ = [
    "discounted_cumsum",
    "reward_to_go",
    "gae",
    "nstep_returns",
    "discounted_cumsum_reference",
    "reward_to_go_reference",
    "gae_reference",
    "nstep_returns_reference",
]

_FLOAT_NP = (np.dtype(np.float32), np.dtype(np.float64))


# --------------------------------------------------------------------------- validation


def _is_tensor(x: Any) -> bool:
    return torch is not None and isinstance(x, torch.Tensor)


def _check_coeff(value: Any, name: str) -> float:
    if _is_tensor(value) and value.numel() == 1:
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v) or v < 0.0 or v > 1.0:
        raise ValueError(f"{name} must be a finite number in [0, 1], got {value!r}")
    return v


def _check_inputs(named: Sequence[Tuple[str, Any]], flag_names: Sequence[str]):
    """Validate a set of named arrays. Returns ("numpy" | "torch", device)."""
    first_name, first = named[0]
    is_t = _is_tensor(first)
    if not is_t and not isinstance(first, np.ndarray):
        raise TypeError(
            f"{first_name} must be a numpy array or a torch tensor, got {type(first).__name__}"
        )
    for name, a in named:
        if _is_tensor(a) != is_t or (not is_t and not isinstance(a, np.ndarray)):
            kind = "torch tensor" if is_t else "numpy array"
            raise TypeError(
                f"{name} must be a {kind} like {first_name}, got {type(a).__name__}"
            )
    shape = tuple(first.shape)
    if len(shape) not in (1, 2):
        raise ValueError(f"{first_name} must be 1-D [T] or 2-D [T, N], got shape {shape}")
    if shape[0] == 0:
        raise ValueError(f"{first_name} has T = 0 steps; need at least one")
    dtype = first.dtype
    if is_t:
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"{first_name} must be float32 or float64, got {dtype}")
    elif dtype not in _FLOAT_NP:
        raise TypeError(f"{first_name} must be float32 or float64, got {dtype}")
    device = first.device if is_t else None
    for name, a in named[1:]:
        if tuple(a.shape) != shape:
            raise ValueError(
                f"{name} has shape {tuple(a.shape)} but {first_name} has shape {shape}"
            )
        if is_t and a.device != device:
            raise ValueError(f"{name} is on {a.device} but {first_name} is on {device}")
        if name in flag_names:
            ok = a.dtype in (torch.bool, torch.uint8, torch.float32, torch.float64) if is_t \
                else (a.dtype == np.bool_ or a.dtype == np.uint8 or a.dtype in _FLOAT_NP)
            if not ok:
                raise TypeError(f"{name} must be bool, uint8 or float, got {a.dtype}")
        elif a.dtype != dtype:
            raise TypeError(f"{name} has dtype {a.dtype} but {first_name} has dtype {dtype}")
    return ("torch" if is_t else "numpy"), device


def _np_data(a: Any) -> np.ndarray:
    """A C-contiguous numpy view of a float array or CPU tensor (copy only if strided)."""
    if _is_tensor(a):
        a = a.detach().numpy()
    return np.ascontiguousarray(a)


def _np_flags(a: Any, data_dtype: np.dtype) -> np.ndarray:
    """Flags as a C-contiguous bool/uint8 or data-dtype array the kernel accepts."""
    if _is_tensor(a):
        a = a.detach().numpy()
    if a.dtype == np.bool_ or a.dtype == np.uint8 or a.dtype == data_dtype:
        return np.ascontiguousarray(a)
    return np.ascontiguousarray(a != 0)


def _wrap(out: np.ndarray, like: Any) -> Any:
    return torch.from_numpy(out) if _is_tensor(like) else out


# --------------------------------------------------------------------------- torch (CUDA) path


def _t_flag(a, dtype):
    return (a != 0).to(dtype)


def _discounted_cumsum_torch(x, dones, gamma: float):
    d = _t_flag(dones, x.dtype)
    y = torch.empty_like(x)
    nxt = torch.zeros_like(x[0])
    for t in range(x.shape[0] - 1, -1, -1):
        nxt = x[t] + gamma * (1.0 - d[t]) * nxt
        y[t] = nxt
    return y


def _reward_to_go_torch(rewards, terminated, truncated, gamma: float, next_values):
    # torch.where (not multiplication by 0/1 flags): next_values that are not used
    # (non-cut or terminal steps) never reach the result, even if not finite
    te = terminated != 0
    cut = te | (truncated != 0)
    cut[-1] = True
    nv = torch.zeros_like(rewards) if next_values is None else next_values
    zero = torch.zeros((), dtype=rewards.dtype, device=rewards.device)
    out = torch.empty_like(rewards)
    nxt = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0] - 1, -1, -1):
        follow = torch.where(cut[t], nv[t], nxt)
        nxt = rewards[t] + torch.where(te[t], zero, gamma * follow)
        out[t] = nxt
    return out


def _gae_torch(rewards, values, next_values, terminated, truncated, gamma: float, lam: float):
    te = terminated != 0
    not_done = 1.0 - (te | (truncated != 0)).to(rewards.dtype)
    not_done[-1] = 0.0
    # torch.where: a non-finite next value at a terminal step is ignored
    zero = torch.zeros((), dtype=rewards.dtype, device=rewards.device)
    deltas = rewards + torch.where(te, zero, gamma * next_values) - values
    adv = torch.empty_like(rewards)
    nxt = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0] - 1, -1, -1):
        nxt = deltas[t] + gamma * lam * not_done[t] * nxt
        adv[t] = nxt
    return adv, adv + values


def _nstep_returns_torch(rewards, next_values, terminated, truncated, gamma: float, n: int):
    # G^(1), then n - 1 passes G^(m)[:-1] = r + gamma * G^(m-1)[1:] on the rows that are
    # not cut (cut rows bootstrap at once and never change); n >= T is one backward sweep
    te = terminated != 0
    cut = te | (truncated != 0)
    cut[-1] = True
    zero = torch.zeros((), dtype=rewards.dtype, device=rewards.device)
    T = rewards.shape[0]
    if n >= T:
        out = torch.empty_like(rewards)
        nxt = torch.zeros_like(rewards[0])
        for t in range(T - 1, -1, -1):
            follow = torch.where(cut[t], next_values[t], nxt)
            nxt = rewards[t] + torch.where(te[t], zero, gamma * follow)
            out[t] = nxt
        return out
    g = rewards + torch.where(te, zero, gamma * next_values)
    for _ in range(n - 1):
        g = torch.cat([torch.where(cut[:-1], g[:-1], rewards[:-1] + gamma * g[1:]), g[-1:]])
    return g


def _check_n(n: Any) -> int:
    if _is_tensor(n) and n.numel() == 1 and not n.is_floating_point():
        n = n.item()
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if int(n) < 1:
        raise ValueError(f"n must be >= 1, got {n!r}")
    return int(n)


# --------------------------------------------------------------------------- public API


def discounted_cumsum(x, dones, gamma: float, *, num_threads: int = 0):
    """Discounted cumulative sum backwards in time, reset at episode ends.

    ``y[t] = x[t] + gamma * (1 - dones[t]) * y[t+1]`` with ``y[T] = 0``.

    Args:
        x: float32/float64 ``[T]`` or ``[T, N]``, numpy array or torch tensor.
        dones: flags of the same shape (bool, uint8 or float); a set flag at t
            stops the sum from reaching past t.
        gamma: discount in [0, 1].
        num_threads: C++ worker threads (0 = automatic; results are identical
            for every value).

    Returns:
        ``y`` with the type, dtype, shape and device of ``x``.
    """
    kind, device = _check_inputs([("x", x), ("dones", dones)], ("dones",))
    g = _check_coeff(gamma, "gamma")
    if kind == "torch" and device.type != "cpu":
        return _discounted_cumsum_torch(x, dones, g)
    xa = _np_data(x)
    return _wrap(_C.discounted_cumsum(xa, _np_flags(dones, xa.dtype), g, num_threads), x)


def reward_to_go(rewards, terminated, truncated, gamma: float = 0.99, next_values=None,
                 *, num_threads: int = 0):
    """Rewards-to-go with correct handling of terminated vs truncated episodes.

    ``G[t] = r[t] + gamma * (1 - terminated[t]) * (next_values[t] if cut at t else G[t+1])``
    where step t is cut if it terminated, was truncated, or is the last row.
    A terminated step never bootstraps; a truncated step (or the last row of an
    unfinished rollout) bootstraps from ``next_values[t]``.

    Args:
        rewards: float32/float64 ``[T]`` or ``[T, N]``.
        terminated, truncated: flags of the same shape.
        gamma: discount in [0, 1].
        next_values: optional ``[T, N]`` of the rewards' dtype: V(s_{t+1}), or
            V(final observation) where step t was truncated. ``None`` means zeros,
            i.e. pure Monte-Carlo returns.
        num_threads: C++ worker threads (0 = automatic).

    Returns:
        ``G`` with the type, dtype, shape and device of ``rewards``.
    """
    named = [("rewards", rewards), ("terminated", terminated), ("truncated", truncated)]
    if next_values is not None:
        named.append(("next_values", next_values))
    kind, device = _check_inputs(named, ("terminated", "truncated"))
    g = _check_coeff(gamma, "gamma")
    if kind == "torch" and device.type != "cpu":
        return _reward_to_go_torch(rewards, terminated, truncated, g, next_values)
    r = _np_data(rewards)
    te, tr = _np_flags(terminated, r.dtype), _np_flags(truncated, r.dtype)
    if te.dtype != tr.dtype:
        te, tr = np.ascontiguousarray(te != 0), np.ascontiguousarray(tr != 0)
    nv = None if next_values is None else _np_data(next_values)
    return _wrap(_C.reward_to_go(r, te, tr, g, nv, num_threads), rewards)


def gae(rewards, values, next_values, terminated, truncated, gamma: float = 0.99,
        lam: float = 0.95, *, num_threads: int = 0):
    """Generalised advantage estimation (Schulman et al. 2016).

    ``delta[t] = r[t] + gamma * (1 - terminated[t]) * next_values[t] - values[t]``
    ``A[t] = delta[t] + gamma * lam * (1 - done[t]) * A[t+1]`` with ``A[T] = 0``,
    ``done[t] = terminated[t] or truncated[t]`` and the last row always done.

    Args:
        rewards: float32/float64 ``[T]`` or ``[T, N]``.
        values: V(s_t), same shape and dtype.
        next_values: V(s_{t+1}); where step t was truncated, V(final observation).
            Ignored where step t terminated.
        terminated, truncated: flags of the same shape (bool, uint8 or float).
        gamma: discount in [0, 1]. lam: GAE lambda in [0, 1].
        num_threads: C++ worker threads (0 = automatic).

    Returns:
        ``(advantages, returns)`` with ``returns = advantages + values``, each with
        the type, dtype, shape and device of ``rewards``.
    """
    kind, device = _check_inputs(
        [("rewards", rewards), ("values", values), ("next_values", next_values),
         ("terminated", terminated), ("truncated", truncated)],
        ("terminated", "truncated"),
    )
    g = _check_coeff(gamma, "gamma")
    lm = _check_coeff(lam, "lam")
    if kind == "torch" and device.type != "cpu":
        return _gae_torch(rewards, values, next_values, terminated, truncated, g, lm)
    r = _np_data(rewards)
    te, tr = _np_flags(terminated, r.dtype), _np_flags(truncated, r.dtype)
    if te.dtype != tr.dtype:
        te, tr = np.ascontiguousarray(te != 0), np.ascontiguousarray(tr != 0)
    adv, ret = _C.gae(r, _np_data(values), _np_data(next_values), te, tr, g, lm, num_threads)
    return _wrap(adv, rewards), _wrap(ret, rewards)


def nstep_returns(rewards, next_values, terminated, truncated, gamma: float = 0.99, n: int = 5,
                  *, num_threads: int = 0):
    """n-step bootstrapped returns: the next ``n`` rewards, then V after ``n`` steps.

    ``G1[t] = r[t] + gamma * (1 - terminated[t]) * next_values[t]`` and
    ``Gn[t] = r[t] + gamma * (1 - terminated[t]) * (next_values[t] if cut at t else G(n-1)[t+1])``
    where step t is cut if it terminated, was truncated, or is the last row. The
    sum stops early at a termination (no bootstrap) or at a truncation / the end
    of the rollout (bootstrap there). ``n=1`` is the TD(0) target; ``n >= T`` is
    :func:`reward_to_go` with ``next_values``.

    Args:
        rewards: float32/float64 ``[T]`` or ``[T, N]``.
        next_values: V(s_{t+1}) of the same shape and dtype; where step t was
            truncated, V(final observation). Ignored where step t terminated.
        terminated, truncated: flags of the same shape (bool, uint8 or float).
        gamma: discount in [0, 1].
        n: steps before bootstrapping, an int >= 1.
        num_threads: C++ worker threads (0 = automatic; results are identical
            for every value).

    Returns:
        ``G`` with the type, dtype, shape and device of ``rewards``.
    """
    kind, device = _check_inputs(
        [("rewards", rewards), ("next_values", next_values), ("terminated", terminated),
         ("truncated", truncated)],
        ("terminated", "truncated"),
    )
    g = _check_coeff(gamma, "gamma")
    steps = _check_n(n)
    if kind == "torch" and device.type != "cpu":
        return _nstep_returns_torch(rewards, next_values, terminated, truncated, g, steps)
    r = _np_data(rewards)
    te, tr = _np_flags(terminated, r.dtype), _np_flags(truncated, r.dtype)
    if te.dtype != tr.dtype:
        te, tr = np.ascontiguousarray(te != 0), np.ascontiguousarray(tr != 0)
    return _wrap(_C.nstep_returns(r, _np_data(next_values), te, tr, g, steps, num_threads), rewards)


# --------------------------------------------------------------------------- references
# Plain-Python loops, one env (column) and one step at a time, in float64 Python
# arithmetic. They define the semantics the kernels are tested against.


def _columns(a) -> list:
    a = np.asarray(a)
    return [a] if a.ndim == 1 else [a[:, n] for n in range(a.shape[1])]


def _stack(cols: list, like) -> np.ndarray:
    like = np.asarray(like)
    out = np.array(cols, dtype=np.float64)
    return out[0] if like.ndim == 1 else out.T.copy()


def discounted_cumsum_reference(x, dones, gamma: float) -> np.ndarray:
    """Reference for :func:`discounted_cumsum` (numpy in, float64 numpy out)."""
    cols = []
    for xc, dc in zip(_columns(x), _columns(dones)):
        y, nxt = [0.0] * len(xc), 0.0
        for t in reversed(range(len(xc))):
            nxt = float(xc[t]) + (0.0 if dc[t] else gamma) * nxt
            y[t] = nxt
        cols.append(y)
    return _stack(cols, x)


def reward_to_go_reference(rewards, terminated, truncated, gamma: float = 0.99,
                           next_values=None) -> np.ndarray:
    """Reference for :func:`reward_to_go` (numpy in, float64 numpy out)."""
    nv_cols = _columns(np.zeros(np.shape(rewards)) if next_values is None else next_values)
    cols = []
    for rc, tec, trc, nvc in zip(_columns(rewards), _columns(terminated),
                                 _columns(truncated), nv_cols):
        T = len(rc)
        g, nxt = [0.0] * T, 0.0
        for t in reversed(range(T)):
            cut = bool(tec[t]) or bool(trc[t]) or t == T - 1
            follow = float(nvc[t]) if cut else nxt
            nxt = float(rc[t]) + (0.0 if tec[t] else gamma * follow)
            g[t] = nxt
        cols.append(g)
    return _stack(cols, rewards)


def gae_reference(rewards, values, next_values, terminated, truncated, gamma: float = 0.99,
                  lam: float = 0.95) -> Tuple[np.ndarray, np.ndarray]:
    """Reference for :func:`gae` (numpy in, float64 numpy out)."""
    adv_cols = []
    for rc, vc, nvc, tec, trc in zip(_columns(rewards), _columns(values),
                                     _columns(next_values), _columns(terminated),
                                     _columns(truncated)):
        T = len(rc)
        a, nxt = [0.0] * T, 0.0
        for t in reversed(range(T)):
            done = bool(tec[t]) or bool(trc[t]) or t == T - 1
            boot = 0.0 if tec[t] else gamma * float(nvc[t])
            delta = float(rc[t]) + boot - float(vc[t])
            nxt = delta + (0.0 if done else gamma * lam * nxt)
            a[t] = nxt
        adv_cols.append(a)
    adv = _stack(adv_cols, rewards)
    return adv, adv + np.asarray(values, dtype=np.float64)


def nstep_returns_reference(rewards, next_values, terminated, truncated, gamma: float = 0.99,
                            n: int = 5) -> np.ndarray:
    """Reference for :func:`nstep_returns` (numpy in, float64 numpy out): for each
    step, walk forward to the first cut or the n-th step, then sum back."""
    cols = []
    for rc, nvc, tec, trc in zip(_columns(rewards), _columns(next_values), _columns(terminated),
                                 _columns(truncated)):
        T = len(rc)
        g = [0.0] * T
        for t in range(T):
            s = t
            while not (tec[s] or trc[s] or s == T - 1 or s == t + n - 1):
                s += 1
            acc = float(rc[s]) + (0.0 if tec[s] else gamma * float(nvc[s]))
            for j in range(s - 1, t - 1, -1):
                acc = float(rc[j]) + gamma * acc
            g[t] = acc
        cols.append(g)
    return _stack(cols, rewards)
