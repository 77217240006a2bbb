"""Guards that stop a run before anything non-finite spreads, and memory estimates.

:func:`check_rollout` (after each rollout: the env's observations and rewards) and
:func:`check_update` (after each update: the logged losses and statistics and every
weight) raise :class:`NonFiniteError` naming what was non-finite, the iteration and
the env step, and for env data the env index. :meth:`pgfast.Run.learn` calls both
every iteration, on every path, so a non-finite run stops before its next
checkpoint; :meth:`pgfast.Run.state_dict` refuses non-finite weights as a last line.
A value loss above :data:`VALUE_LOSS_WARN` warns once per run
(:class:`LargeValueLossWarning`): the returns are probably too large for the critic
without reward normalisation.
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Sequence

import numpy as np
import torch

__all__ = ["NonFiniteError", "LargeValueLossWarning", "VALUE_LOSS_WARN", "check_rollout", "check_update",
           "check_weights", "buffer_bytes", "available_memory", "check_memory"]

VALUE_LOSS_WARN = 1e12


class NonFiniteError(FloatingPointError):
    """Training met a NaN or infinity (env data, a loss or a weight) and stopped;
    the last checkpoint (if any) is the last finite state."""


class LargeValueLossWarning(RuntimeWarning):
    """The value loss is above :data:`VALUE_LOSS_WARN` (try norm_reward=True)."""


_ONE: Dict[torch.device, torch.Tensor] = {}  # device -> a scale of 1.0 for the fused check (read only)


def _all_finite_many(ts: Sequence[torch.Tensor]) -> bool:
    """Whether every element of the floating tensors ``ts`` (one device) is finite.

    One fused op checks them all: torch's AMP check ``_amp_foreach_non_finite_check_and_unscale_``
    with a scale of exactly 1.0 (it multiplies in place by 1.0, which leaves every value as it
    was); about 4 us for a policy's weights, where one NumPy call per tensor costs 3 us each."""
    if not ts:
        return True
    dev = ts[0].device
    try:
        one = _ONE.get(dev)
        if one is None:
            one = _ONE[dev] = torch.ones(1, device=dev)
        found = torch.zeros(1, device=dev)  # per call: runs on several threads share this module
        with torch.no_grad():
            torch._amp_foreach_non_finite_check_and_unscale_(
                [t if not t.requires_grad else t.detach() for t in ts], found, one)
        return not bool(found.item())
    except (RuntimeError, AttributeError, TypeError):  # a torch without this op for these tensors
        return all(_all_finite(t) for t in ts)


def _all_finite(t: torch.Tensor) -> bool:
    if t.device.type == "cpu":
        return bool(np.isfinite(t.detach().numpy()).all())
    return bool(torch.isfinite(t).all())


def _locate(t: torch.Tensor) -> tuple:
    bad = (~torch.isfinite(t.detach().cpu())).nonzero()
    first = bad[0].tolist()
    return tuple(first), t.detach().cpu()[tuple(first)].item()


def check_rollout(obs: torch.Tensor, rewards: torch.Tensor, iteration: int, step0: int) -> None:
    """Raise :class:`NonFiniteError` if the rollout's observations (``[T+1, N, ...]``,
    row 0 carried over from the previous rollout) or rewards (``[T, N]``) are not all
    finite; ``iteration`` is the iteration being computed, ``step0`` the env step count
    before it (row t is step ``step0 + (t + 1) * N``)."""
    if _all_finite_many([rewards, obs]):
        return
    for name, t, off in (("reward", rewards, 1), ("observation", obs, 0)):
        if not _all_finite(t):
            (row, env, *rest), value = _locate(t)
            n = t.shape[1]
            step = step0 + (row + off) * n
            where = f"[{', '.join(map(str, rest))}]" if rest else ""
            raise NonFiniteError(f"non-finite {name}{where} {value} from the env: env index {env}, "
                                 f"iteration {iteration}, step {step}")


def check_weights(params: Iterable[torch.Tensor]) -> Optional[int]:
    """Index of the first parameter tensor holding a NaN or infinity, or None."""
    ps = list(params)
    if _all_finite_many(ps):
        return None
    return next(i for i, p in enumerate(ps) if not bool(torch.isfinite(p).all()))


def check_update(stats: Mapping[str, Any], params: Sequence[torch.Tensor], names: Callable[[], Sequence[str]],
                 iteration: int, step: int) -> None:
    """Raise :class:`NonFiniteError` if a logged statistic of the update (losses,
    KL, ...) or a weight after it is not finite (``names()``: the weights' names,
    asked for only then)."""
    for k, v in stats.items():
        if isinstance(v, (float, int)) and not math.isfinite(v):
            raise NonFiniteError(f"non-finite {k.replace('_', ' ')} ({v}) in the update of iteration {iteration}, "
                                 f"step {step}")
    bad = check_weights(params)
    if bad is not None:
        raise NonFiniteError(f"non-finite weight {names()[bad]} after the update of iteration {iteration}, "
                             f"step {step}")


# --------------------------------------------------------------------------- memory


def buffer_bytes(num_steps: int, num_envs: int, obs_size: int, act_size: int) -> int:
    """Bytes the rollout buffer and the env's output arrays take (an estimate within a
    few percent: float32 observations twice (rows and final observations), actions,
    log-probabilities, values, rewards and flags, plus the env's own per-env arrays)."""
    per_row = num_envs * (4 * (2 * obs_size + act_size) + 4 * 5 + 2)
    env = num_envs * (8 * 4 * obs_size + 64)
    return (num_steps + 1) * per_row + env


def available_memory() -> Optional[int]:
    """Bytes of memory available to a new allocation (Linux MemAvailable), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def check_memory(num_steps: int, num_envs: int, obs_size: int, act_size: int) -> None:
    """Raise MemoryError (one line, the estimated size) when the buffers of this
    configuration cannot fit in the memory available now."""
    need = buffer_bytes(num_steps, num_envs, obs_size, act_size)
    have = available_memory()
    if have is not None and need > have:
        raise MemoryError(f"num_envs={num_envs} x num_steps={num_steps} needs about {_gib(need)} of rollout "
                          f"buffers, more than the {_gib(have)} of memory available; use fewer envs or steps")
