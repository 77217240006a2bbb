"""What the native vector envs share besides the base class: the autoreset-mode parser,
gymnasium-compatible error types, gymnasium-style seed rows and array conversion.
(:mod:`pgfast.envs.native` re-exports every name.)"""

from __future__ import annotations

import os
import sys
from typing import Any, Dict, List, Optional, Sequence

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

__all__ = ["as_numpy", "parse_autoreset_mode", "SeedRows", "ResetNeeded",
           "ClosedEnvironmentError", "SeedError", "ResetBoundsError", "AutoresetNeeded",
           "check_reset_mask", "reset_needed", "closed_error", "autoreset_needed"]

_AUTORESET_MODES: Dict[Any, AutoresetMode] = {
    "next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP,
    "disabled": AutoresetMode.DISABLED,
    **{m.value: m for m in AutoresetMode}, **{m: m for m in AutoresetMode},
}


def parse_autoreset_mode(mode: Any) -> AutoresetMode:
    """``"next_step"``/``"same_step"``/``"disabled"``, gymnasium's values
    (``"NextStep"``, ...) or an :class:`AutoresetMode` -> the enum (ValueError otherwise)."""
    try:
        found = _AUTORESET_MODES.get(mode)
    except TypeError:  # unhashable
        found = None
    if found is None:
        raise ValueError(f"autoreset_mode must be 'next_step', 'same_step', 'disabled' or a "
                         f"gymnasium.vector.AutoresetMode, got {mode!r}")
    return found


# Exceptions: each is the type gymnasium raises in that case and the type of
# pgfast's own policy (RuntimeError for misuse of the lifecycle, ValueError for
# bad values), so code written against either catches it.
class ResetNeeded(gym.error.ResetNeeded, RuntimeError):
    """step() before every env was reset (gymnasium: ResetNeeded)."""


class ClosedEnvironmentError(gym.error.ClosedEnvironmentError, RuntimeError):
    """Use after close() (as gymnasium's AsyncVectorEnv; its SyncVectorEnv keeps working)."""


class SeedError(gym.error.Error, ValueError):
    """A seed that is not a non-negative int (gymnasium's np_random raises Error)."""


class ResetBoundsError(ValueError, OverflowError):
    """Reset bounds whose range is not finite (numpy's Generator.uniform raises OverflowError)."""


class AutoresetNeeded(RuntimeError, AssertionError):
    """autoreset_mode=DISABLED: step() while an ended env was not reset with a reset_mask
    (gymnasium's SyncVectorEnv asserts)."""


# The errors of the lifecycle and of partial resets, with gymnasium's messages (its
# SyncVectorEnv's; AsyncVectorEnv's for use after close, where SyncVectorEnv keeps working).
def check_reset_mask(mask: Any, num_envs: int) -> np.ndarray:
    """``options["reset_mask"]`` checked as gymnasium's vector envs check it (the same
    exception types and messages); returns it C-contiguous."""
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"`options['reset_mask']` must be a numpy array, got {type(mask)}")
    if mask.shape != (num_envs,):
        raise ValueError(f"`options['reset_mask']` must have shape `({num_envs},)`, got {mask.shape}")
    if mask.dtype != np.bool_:
        raise TypeError(f"`options['reset_mask']` must have `dtype=np.bool_`, got {mask.dtype}")
    if not np.any(mask):
        raise ValueError("`options['reset_mask']` must contain a boolean array with at least one True "
                         f"value, got reset_mask={mask}")
    return np.ascontiguousarray(mask)


def reset_needed(what: str) -> ResetNeeded:
    """``what`` ("step", "step_into") before every env was reset (gymnasium's OrderEnforcing message)."""
    return ResetNeeded(f"Cannot call env.{what}() before calling env.reset()")


def closed_error(env: Any) -> ClosedEnvironmentError:
    """Use of ``env`` after close() (gymnasium's AsyncVectorEnv message)."""
    return ClosedEnvironmentError(f"Trying to operate on `{type(env).__name__}`, after a call to `close()`.")


def autoreset_needed(pending: Optional[np.ndarray]) -> AutoresetNeeded:
    """autoreset_mode=DISABLED: a step while the envs in ``pending`` (bool [N]) ended and were
    not reset: gymnasium's SyncVectorEnv message (``self._autoreset_envs=array([...])``), then how
    to fix it."""
    head = f"self._autoreset_envs={pending!r}; " if pending is not None else ""
    return AutoresetNeeded(f"{head}autoreset_mode=DISABLED: an env ended and was not reset; call "
                           "reset(options={'reset_mask': terminated | truncated}) before the next step")


def _int_words(x: int) -> List[int]:
    """numpy's _int_to_uint32_array: little-endian uint32 words of x >= 0 (0 -> [0])."""
    words = [x & 0xFFFFFFFF]
    x >>= 32
    while x:
        words.append(x & 0xFFFFFFFF)
        x >>= 32
    return words


class SeedRows:
    """Seed integers of N envs as numpy's SeedSequence reads them.

    ``words`` uint32 [N, W] (W >= 4, little-endian words, zero-padded),
    ``nwords`` int64 [N] (word counts; None when W == 4, where zero padding
    does not change the seed), ``which`` bool [N] (envs that get a seed).
    """

    __slots__ = ("words", "nwords", "which")

    def __init__(self, words: np.ndarray, nwords: Optional[np.ndarray], which: np.ndarray) -> None:
        self.words, self.nwords, self.which = words, nwords, which

    @classmethod
    def consecutive(cls, seed: int, n: int) -> "SeedRows":
        """Env i gets seed + i (gymnasium's vector envs)."""
        if seed + n - 1 < 2**64:
            v = np.arange(n, dtype=np.uint64) + np.uint64(seed)
            words = np.zeros((n, 4), dtype=np.uint32)
            words[:, 0] = v & np.uint64(0xFFFFFFFF)
            words[:, 1] = v >> np.uint64(32)
            return cls(words, None, np.ones(n, dtype=np.bool_))
        return cls.from_list([seed + i for i in range(n)])

    @classmethod
    def from_list(cls, seeds: Sequence[Optional[int]]) -> "SeedRows":
        n = len(seeds)
        rows = [_int_words(s) if s is not None else [0] for s in seeds]
        width = max(4, max(len(r) for r in rows))
        words = np.zeros((n, width), dtype=np.uint32)
        nwords = np.empty(n, dtype=np.int64)
        for i, r in enumerate(rows):
            words[i, :len(r)] = r
            nwords[i] = len(r)
        which = np.array([s is not None for s in seeds], dtype=np.bool_)
        return cls(words, nwords if width > 4 else None, which)

    @classmethod
    def entropy(cls, n: int) -> "SeedRows":
        """Fresh 128-bit seeds from the OS (numpy's SeedSequence() with no argument)."""
        words = np.frombuffer(os.urandom(16 * n), dtype=np.uint32).reshape(n, 4).copy()
        return cls(words, None, np.ones(n, dtype=np.bool_))

    def counts(self) -> np.ndarray:
        if self.nwords is not None:
            return self.nwords
        return np.full(len(self.words), self.words.shape[1], dtype=np.int64)

    def int_at(self, i: int) -> int:
        return sum(int(w) << (32 * k) for k, w in enumerate(self.words[i, :int(self.counts()[i])]))

    def merged(self, other: "SeedRows") -> "SeedRows":
        """These rows where ``which``, else ``other``'s (``which`` is the union)."""
        width = max(self.words.shape[1], other.words.shape[1])

        def padded(w: np.ndarray) -> np.ndarray:
            return w if w.shape[1] == width else np.pad(w, ((0, 0), (0, width - w.shape[1])))
        words = np.where(self.which[:, None], padded(self.words), padded(other.words))
        nw = np.where(self.which, self.counts(), other.counts())
        return SeedRows(words, nw if width > 4 else None, self.which | other.which)


def as_numpy(x: Any, name: str, writeable: bool = False) -> np.ndarray:
    """Return ``x`` as a numpy array without copying numpy arrays or CPU torch tensors.

    CPU torch tensors become views sharing their memory (``Tensor.numpy()``);
    CUDA tensors raise ValueError. Other objects go through ``np.asarray``
    (which may copy; refused for outputs, where a copy would lose the writes).
    """
    if type(x) is np.ndarray:
        return x
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        try:
            return x.numpy()  # shares memory; refuses CUDA tensors and grad-requiring ones
        except (TypeError, RuntimeError):
            if x.device.type != "cpu":
                raise ValueError(f"{name} must be a numpy array or a CPU tensor, "
                                 f"got a tensor on {x.device}") from None
            if writeable:
                raise ValueError(f"{name} must not require grad (it is written in place)") from None
            return x.detach().numpy()
    if isinstance(x, np.ndarray):
        return x
    if writeable:
        raise TypeError(f"{name} must be a numpy array or a CPU torch tensor, got {type(x).__name__}")
    return np.asarray(x)
