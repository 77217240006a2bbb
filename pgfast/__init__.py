"""pgfast: fast policy-gradient reinforcement learning.

C++ kernels for returns and advantages, vectorised native environments, and
VPG / TRPO / PPO on PyTorch.
"""

__version__ = "0.1.0"

from pgfast.returns import discounted_cumsum, gae, nstep_returns, reward_to_go
from pgfast.envs import make_vec
from pgfast.trainer import Run, load, train

__all__ = ["__version__", "discounted_cumsum", "gae", "nstep_returns", "reward_to_go", "make_vec", "train", "load",
           "Run"]
