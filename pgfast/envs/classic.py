"""Native vectorised classic-control envs: CartPole-v1, Pendulum-v1, MountainCar-v0,
MountainCarContinuous-v0 and Acrobot-v1, stepped in C++ (``pgfast._C``).

Each class mirrors gymnasium 1.x's env of the same id: dynamics and their
floating-point precision, rewards, termination, time limit (truncation after
``max_episode_steps``, gymnasium's TimeLimit count), reset distribution and
reset options, spaces and dtypes. Observations are float32, rewards float64.

Randomness: resets draw from a per-env random stream (xoshiro256++) seeded from
(seed, env index), not from numpy's generator. Trajectories are therefore
deterministic per (seed, index) and independent of ``num_threads``, but their
start states differ numerically from gymnasium's own seeding with the same seed.
(Parity with gymnasium is established by copying states, see ``set_state``.)

Reset options persist for later autoresets until the next ``reset`` (as in
gymnasium's ``CartPoleVectorEnv``).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control import utils as _cc_utils
from gymnasium.envs.classic_control.acrobot import AcrobotEnv
from gymnasium.envs.classic_control.cartpole import CartPoleEnv
from gymnasium.envs.classic_control.continuous_mountain_car import Continuous_MountainCarEnv
from gymnasium.envs.classic_control.mountain_car import MountainCarEnv
from gymnasium.envs.classic_control.pendulum import PendulumEnv

from pgfast import _C
from pgfast.envs.native import NativeVectorEnv

__all__ = [
    "ClassicControlVectorEnv",
    "CartPoleVectorEnv",
    "PendulumVectorEnv",
    "MountainCarVectorEnv",
    "MountainCarContinuousVectorEnv",
    "AcrobotVectorEnv",
]


class ClassicControlVectorEnv(NativeVectorEnv):
    """N copies of one classic-control env in one C++ object.

    Args:
        num_envs: N.
        seed: if given, ``reset(seed=seed)`` is called once (env i seeded from (seed, i)).
        autoreset_mode: ``"next_step"`` or ``"same_step"``.
        num_threads: threads stepping chunks of 1024 envs (at most one per
            2048 envs, so only N >= 4096 uses a second thread; results are
            bit-identical to one thread).
        max_episode_steps: time limit (default: gymnasium's registered value).
        **kwargs: the gymnasium env's constructor arguments (e.g. ``g`` for
            Pendulum, ``sutton_barto_reward`` for CartPole).
    """

    env_id: str = ""
    _gym_cls: Any = None
    _core_cls: Any = None
    _default_bounds: Tuple[float, float] = (0.0, 0.0)

    def __init__(self, num_envs: int = 1, seed: Optional[int] = None,
                 autoreset_mode: str = "next_step", num_threads: int = 1,
                 max_episode_steps: Optional[int] = None, render_mode: Optional[str] = None,
                 **kwargs: Any) -> None:
        if render_mode is not None:
            raise ValueError(f"native {self.env_id} does not render; got render_mode={render_mode!r}")
        if not isinstance(num_threads, (int, np.integer)) or isinstance(num_threads, bool) \
                or num_threads < 1:
            raise ValueError(f"num_threads must be a positive int, got {num_threads!r}")
        if max_episode_steps is None:
            max_episode_steps = gym.spec(self.env_id).max_episode_steps
        if not isinstance(max_episode_steps, (int, np.integer)) or max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be a positive int, got {max_episode_steps!r}")
        self._ctor = dict(num_envs=num_envs, autoreset_mode=autoreset_mode,
                          num_threads=int(num_threads), max_episode_steps=int(max_episode_steps),
                          **kwargs)
        # The gymnasium env validates kwargs and gives the exact spaces.
        ref = self._gym_cls(**kwargs)
        super().__init__(num_envs=num_envs, single_observation_space=ref.observation_space,
                         single_action_space=ref.action_space, autoreset_mode=autoreset_mode,
                         env_id=self.env_id,
                         spec_kwargs={**kwargs, "max_episode_steps": int(max_episode_steps)})
        params = {k: float(v) for k, v in self._params(kwargs).items()}
        core = self._core_cls(self.num_envs, self._same_step, int(num_threads),
                              int(max_episode_steps), params)
        core.bind_outputs(self._obs, self._rew, self._term, self._trunc,
                          self._final_obs, self._final_mask)
        self._c = core
        self.num_threads = int(num_threads)
        self.max_episode_steps = int(max_episode_steps)
        # Hot path: bound C++ methods, no Python frame in between.
        self._core_step = core.step
        self._core_step_into = core.step_into
        self._core_get_state = core.get_state
        self._core_set_state = core.set_state
        if seed is not None:
            self.reset(seed=seed)

    _BUFFERS = ("_obs", "_rew", "_term", "_trunc", "_final_obs", "_final_mask")

    def __getstate__(self) -> Dict[str, Any]:
        """Pickle support: the complete env (physics state, step counters, pending
        autoresets, random streams, reset bounds, output buffers), so an unpickled
        copy continues bit for bit like the original."""
        return {
            "ctor": self._ctor,
            "core": self._c.dump(),
            "buffers": {k: (None if getattr(self, k) is None else getattr(self, k).copy())
                        for k in self._BUFFERS},
            "ready": self._ready,
            "seeded": self._seeded,
            "closed": self.closed,
        }

    def __setstate__(self, state: Dict[str, Any]) -> None:
        type(self).__init__(self, **state["ctor"])
        self._c.load(state["core"])
        for k, v in state["buffers"].items():
            if v is not None:
                getattr(self, k)[...] = v
        self._ready = state["ready"]
        self._seeded = state["seeded"]
        self.closed = state["closed"]

    @property
    def threads_used(self) -> int:
        """Worker threads a step actually uses (1 when N is too small to split)."""
        return self._c.threads_used

    def _params(self, kwargs: Dict[str, Any]) -> Dict[str, Any]:
        return {}

    def _bounds(self, options: Dict[str, Any]) -> Tuple[float, float]:
        lo, hi = self._default_bounds
        return _cc_utils.maybe_parse_reset_bounds(options or None, lo, hi)

    def _core_reset(self, seeds: Optional[np.ndarray], mask: Optional[np.ndarray],
                    options: Dict[str, Any]) -> None:
        a, b = self._bounds(options)
        self._c.reset(seeds, mask, a, b)


class CartPoleVectorEnv(ClassicControlVectorEnv):
    """CartPole-v1: reset options ``low``/``high`` (default -0.05, 0.05); kwarg ``sutton_barto_reward``."""

    env_id = "CartPole-v1"
    _gym_cls = CartPoleEnv
    _core_cls = _C.CartPoleVec
    _default_bounds = (-0.05, 0.05)

    def _params(self, kwargs: Dict[str, Any]) -> Dict[str, Any]:
        return {"sutton_barto_reward": bool(kwargs.get("sutton_barto_reward", False))}


class PendulumVectorEnv(ClassicControlVectorEnv):
    """Pendulum-v1: reset options ``x_init``/``y_init`` (default pi, 1.0); kwarg ``g``."""

    env_id = "Pendulum-v1"
    _gym_cls = PendulumEnv
    _core_cls = _C.PendulumVec

    def _params(self, kwargs: Dict[str, Any]) -> Dict[str, Any]:
        return {"g": kwargs.get("g", 10.0)}

    def _bounds(self, options: Dict[str, Any]) -> Tuple[float, float]:
        x = options.get("x_init", np.pi)
        y = options.get("y_init", 1.0)
        return _cc_utils.verify_number_and_cast(x), _cc_utils.verify_number_and_cast(y)


class MountainCarVectorEnv(ClassicControlVectorEnv):
    """MountainCar-v0: reset options ``low``/``high`` (default -0.6, -0.4); kwarg ``goal_velocity``."""

    env_id = "MountainCar-v0"
    _gym_cls = MountainCarEnv
    _core_cls = _C.MountainCarVec
    _default_bounds = (-0.6, -0.4)

    def _params(self, kwargs: Dict[str, Any]) -> Dict[str, Any]:
        return {"goal_velocity": kwargs.get("goal_velocity", 0.0)}


class MountainCarContinuousVectorEnv(ClassicControlVectorEnv):
    """MountainCarContinuous-v0: reset options ``low``/``high`` (default -0.6, -0.4); kwarg ``goal_velocity``."""

    env_id = "MountainCarContinuous-v0"
    _gym_cls = Continuous_MountainCarEnv
    _core_cls = _C.MountainCarContinuousVec
    _default_bounds = (-0.6, -0.4)

    def _params(self, kwargs: Dict[str, Any]) -> Dict[str, Any]:
        return {"goal_velocity": kwargs.get("goal_velocity", 0.0)}


class AcrobotVectorEnv(ClassicControlVectorEnv):
    """Acrobot-v1: reset options ``low``/``high`` (default -0.1, 0.1)."""

    env_id = "Acrobot-v1"
    _gym_cls = AcrobotEnv
    _core_cls = _C.AcrobotVec
    _default_bounds = (-0.1, 0.1)


CLASSIC_ENVS = {
    cls.env_id: cls
    for cls in (CartPoleVectorEnv, PendulumVectorEnv, MountainCarVectorEnv,
                MountainCarContinuousVectorEnv, AcrobotVectorEnv)
}
