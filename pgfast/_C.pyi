"""Type stub of the pgfast._C extension module (tested to match its exports)."""

from typing import Optional, Tuple

import numpy as np
import numpy.typing as npt

# ---------------------------------------------------------------- returns
# Arrays are C-contiguous time-major [T] or [T, N], float32 or float64; flags are
# bool/uint8 or the data's float dtype. num_threads=0 picks a count automatically.

def discounted_cumsum(
    x: npt.NDArray[np.floating], dones: npt.NDArray, gamma: float, num_threads: int = 0
) -> npt.NDArray[np.floating]: ...
def reward_to_go(
    rewards: npt.NDArray[np.floating],
    terminated: npt.NDArray,
    truncated: npt.NDArray,
    gamma: float,
    next_values: Optional[npt.NDArray[np.floating]] = None,
    num_threads: int = 0,
) -> npt.NDArray[np.floating]: ...
def gae(
    rewards: npt.NDArray[np.floating],
    values: npt.NDArray[np.floating],
    next_values: npt.NDArray[np.floating],
    terminated: npt.NDArray,
    truncated: npt.NDArray,
    gamma: float,
    lam: float,
    num_threads: int = 0,
) -> Tuple[npt.NDArray[np.floating], npt.NDArray[np.floating]]: ...
def plan_threads(T: int, N: int, num_threads: int = 0) -> int: ...

# ---------------------------------------------------------------- envs
