"""``render_mode="rgb_array_list"`` of the native vector envs, as gymnasium gives it.

``gymnasium.make_vec(id, n, render_mode="rgb_array_list")`` with its SyncVectorEnv wraps
each env in :class:`gymnasium.wrappers.RenderCollection`: env i keeps a list of frames, one
appended after every reset and every step, cleared by each reset of env i (its autoresets
included: in "next_step" mode the step after an episode ended, in "same_step" mode the step
that ended it, so the list starts with the reset frame), and ``render()`` returns the N
lists and empties them.

:class:`FrameLog` keeps the same lists of *states* instead of frames (a float64 row per
env and step, far smaller than a frame) and draws them when ``render()`` asks: the frames
are those gymnasium's env draws from the same states.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Tuple

import numpy as np
from gymnasium.vector import AutoresetMode

__all__ = ["FrameLog"]


class FrameLog:
    """Per-env lists of the states to draw (see the module docstring).

    Args:
        num_envs: N.
        mode: the env's autoreset mode (which steps restart an env's list).
    """

    def __init__(self, num_envs: int, mode: AutoresetMode) -> None:
        self.mode = mode
        self.states: List[List[np.ndarray]] = [[] for _ in range(num_envs)]
        self._prev_done = np.zeros(num_envs, dtype=np.bool_)  # next_step: reset at the next step

    def after_reset(self, state: np.ndarray, targets: np.ndarray) -> None:
        """Envs where ``targets`` were reset: their lists restart with the reset state."""
        for i in np.flatnonzero(targets).tolist():
            self.states[i] = [state[i]]
        self._prev_done[targets] = False

    def after_step(self, state: np.ndarray, terminated: np.ndarray, truncated: np.ndarray) -> None:
        """One step of every env; ``state`` is a fresh [N, k] copy of the states after it."""
        done = np.logical_or(terminated, truncated)
        if self.mode == AutoresetMode.NEXT_STEP:
            restarted = self._prev_done.copy()
            self._prev_done = done
        elif self.mode == AutoresetMode.SAME_STEP:
            restarted = done
        else:  # DISABLED: ended envs wait for reset(options={"reset_mask": ...})
            restarted = np.zeros_like(done)
        for i, again in enumerate(restarted.tolist()):
            if again:
                self.states[i] = [state[i]]
            else:
                self.states[i].append(state[i])

    def pop(self, draw: Callable[[np.ndarray], Any]) -> Tuple[List[Any], ...]:
        """The frames of every env's list (``draw(state_row)`` each), lists emptied."""
        states, self.states = self.states, [[] for _ in self.states]
        return tuple([draw(s) for s in rows] for rows in states)


def new_log(render_mode: Optional[str], num_envs: int, mode: AutoresetMode) -> Optional[FrameLog]:
    """A :class:`FrameLog` for ``render_mode="rgb_array_list"``, None for other modes."""
    return FrameLog(num_envs, mode) if render_mode == "rgb_array_list" else None
