"""Probe envs: one-step tasks that only a policy reading its observation space (or
acting in its action space) correctly can solve. Each episode is one step: the env shows
an observation, rewards the action (1 for the right answer, or the fraction of right
answers per dimension) and terminates. A uniformly random policy scores 1/n (see each
class); a policy that learned the task scores 1.

Registered with gymnasium when this module is imported (``pgfast.envs`` imports it):

=============================  ===============================================  ===========
id                             observation -> action                            random
=============================  ===============================================  ===========
pgfast/DiscreteObs-v0          Discrete(8) -> Discrete(8), the same index       1/8
pgfast/MultiDiscreteObs-v0     MultiDiscrete([3, 2]) -> Discrete(6), 2 o0 + o1  1/6
pgfast/MultiBinaryObs-v0       MultiBinary(3) -> Discrete(4), 2 b0 + b1 (b2 is  1/4
                               noise)
pgfast/TupleObs-v0             Tuple(Discrete(3), Discrete(2)) -> Discrete(6),  1/6
                               2 o0 + o1
pgfast/DictObs-v0              Dict(cue: Discrete(2), nested: Tuple(            1/8
                               MultiBinary(2), Box(1))) -> Discrete(8):
                               4 cue + 2 bit1 + (Box value > 0)
pgfast/ImageObs-v0             uint8 image 36x36x1 (``channels_first=True``:    1/2
                               1x36x36) with a bright 8x8 square -> Discrete(2),
                               the half it is in
pgfast/MultiDiscreteAction-v0  Box(9) one-hot targets -> MultiDiscrete([3, 3,   1/3
                               3]), reward = fraction of dimensions right
pgfast/MultiBinaryAction-v0    Box(4) of signs -> MultiBinary(4), bit = sign >  1/2
                               0, reward = fraction of bits right
=============================  ===============================================  ===========
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import gymnasium as gym
import numpy as np
from gymnasium import spaces as S

__all__ = ["ProbeEnv", "PROBES"]


class ProbeEnv(gym.Env):
    """Base of the one-step probes: subclasses set the spaces and define ``_draw()`` (a
    new observation from ``self.np_random``) and ``_reward(action)``."""

    metadata: Dict[str, Any] = {"render_modes": []}

    def __init__(self) -> None:
        self._obs: Any = None

    def _draw(self) -> Any:
        raise NotImplementedError

    def _reward(self, action: Any) -> float:
        raise NotImplementedError

    def reset(self, *, seed: Optional[int] = None, options: Optional[Dict[str, Any]] = None
              ) -> Tuple[Any, Dict[str, Any]]:
        super().reset(seed=seed)
        self._obs = self._draw()
        return self._obs, {}

    def step(self, action: Any) -> Tuple[Any, float, bool, bool, Dict[str, Any]]:
        r = self._reward(action)
        self._obs = self._draw()
        return self._obs, r, True, False, {}


class DiscreteObs(ProbeEnv):
    """Discrete(8) -> Discrete(8): reward 1 for the index shown."""

    observation_space = S.Discrete(8)
    action_space = S.Discrete(8)

    def _draw(self) -> Any:
        return int(self.np_random.integers(8))

    def _reward(self, action: Any) -> float:
        return float(int(action) == self._obs)


class MultiDiscreteObs(ProbeEnv):
    """MultiDiscrete([3, 2]) -> Discrete(6): reward 1 for 2 o0 + o1."""

    observation_space = S.MultiDiscrete([3, 2])
    action_space = S.Discrete(6)

    def _draw(self) -> Any:
        return self.np_random.integers([3, 2]).astype(np.int64)

    def _reward(self, action: Any) -> float:
        return float(int(action) == 2 * int(self._obs[0]) + int(self._obs[1]))


class MultiBinaryObs(ProbeEnv):
    """MultiBinary(3) -> Discrete(4): reward 1 for 2 b0 + b1 (bit 2 is noise)."""

    observation_space = S.MultiBinary(3)
    action_space = S.Discrete(4)

    def _draw(self) -> Any:
        return self.np_random.integers(2, size=3).astype(np.int8)

    def _reward(self, action: Any) -> float:
        return float(int(action) == 2 * int(self._obs[0]) + int(self._obs[1]))


class TupleObs(ProbeEnv):
    """Tuple(Discrete(3), Discrete(2)) -> Discrete(6): reward 1 for 2 o0 + o1."""

    observation_space = S.Tuple((S.Discrete(3), S.Discrete(2)))
    action_space = S.Discrete(6)

    def _draw(self) -> Any:
        return (int(self.np_random.integers(3)), int(self.np_random.integers(2)))

    def _reward(self, action: Any) -> float:
        return float(int(action) == 2 * self._obs[0] + self._obs[1])


class DictObs(ProbeEnv):
    """Dict(cue: Discrete(2), nested: Tuple(MultiBinary(2), Box(-1, 1, (1,)))) -> Discrete(8):
    reward 1 for 4 cue + 2 bit1 + (Box value > 0) (bit 0 is noise)."""

    observation_space = S.Dict({"cue": S.Discrete(2),
                                "nested": S.Tuple((S.MultiBinary(2), S.Box(-1.0, 1.0, (1,), np.float32)))})
    action_space = S.Discrete(8)

    def _draw(self) -> Any:
        g = self.np_random
        x = np.array([g.choice([-1.0, 1.0]) * g.uniform(0.2, 1.0)], dtype=np.float32)
        return {"cue": int(g.integers(2)), "nested": (g.integers(2, size=2).astype(np.int8), x)}

    def _reward(self, action: Any) -> float:
        o = self._obs
        want = 4 * o["cue"] + 2 * int(o["nested"][0][1]) + int(o["nested"][1][0] > 0)
        return float(int(action) == want)


class ImageObs(ProbeEnv):
    """uint8 image 36x36x1 (``channels_first``: 1x36x36), black with one 8x8 square of
    value 255 placed at random -> Discrete(2): reward 1 for the half (0 left, 1 right)."""

    action_space = S.Discrete(2)
    SIZE = 36

    def __init__(self, channels_first: bool = False) -> None:
        super().__init__()
        n = self.SIZE
        self.channels_first = bool(channels_first)
        shape = (1, n, n) if channels_first else (n, n, 1)
        self.observation_space = S.Box(0, 255, shape, np.uint8)
        self._side = 0

    def _draw(self) -> Any:
        n, g = self.SIZE, self.np_random
        self._side = int(g.integers(2))
        x0 = int(g.integers(0, n // 2 - 8 + 1)) + self._side * (n // 2)
        y0 = int(g.integers(0, n - 8 + 1))
        img = np.zeros((n, n), dtype=np.uint8)
        img[y0:y0 + 8, x0:x0 + 8] = 255
        return img[None] if self.channels_first else img[:, :, None]

    def _reward(self, action: Any) -> float:
        return float(int(action) == self._side)


class MultiDiscreteAction(ProbeEnv):
    """Box(9) (three one-hot targets of 3 values) -> MultiDiscrete([3, 3, 3]): reward is
    the fraction of dimensions equal to their target."""

    observation_space = S.Box(0.0, 1.0, (9,), np.float32)
    action_space = S.MultiDiscrete([3, 3, 3])

    def _draw(self) -> Any:
        self._target = self.np_random.integers(3, size=3)
        obs = np.zeros(9, dtype=np.float32)
        obs[np.arange(3) * 3 + self._target] = 1.0
        return obs

    def _reward(self, action: Any) -> float:
        return float(np.mean(np.asarray(action) == self._target))


class MultiBinaryAction(ProbeEnv):
    """Box(4) of signs (+-1) -> MultiBinary(4): reward is the fraction of bits equal to
    ``sign > 0``."""

    observation_space = S.Box(-1.0, 1.0, (4,), np.float32)
    action_space = S.MultiBinary(4)

    def _draw(self) -> Any:
        return self.np_random.choice([-1.0, 1.0], size=4).astype(np.float32)

    def _reward(self, action: Any) -> float:
        return float(np.mean(np.asarray(action) == (self._obs > 0)))


PROBES = {
    "pgfast/DiscreteObs-v0": DiscreteObs,
    "pgfast/MultiDiscreteObs-v0": MultiDiscreteObs,
    "pgfast/MultiBinaryObs-v0": MultiBinaryObs,
    "pgfast/TupleObs-v0": TupleObs,
    "pgfast/DictObs-v0": DictObs,
    "pgfast/ImageObs-v0": ImageObs,
    "pgfast/MultiDiscreteAction-v0": MultiDiscreteAction,
    "pgfast/MultiBinaryAction-v0": MultiBinaryAction,
}
"""Probe id -> env class."""

for _id, _cls in PROBES.items():
    if _id not in gym.registry:
        gym.register(_id, entry_point=f"{__name__}:{_cls.__name__}", disable_env_checker=True)
