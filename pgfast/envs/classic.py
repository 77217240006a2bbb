"""Native vectorised classic-control envs, stepped in C++ (``pgfast._C``).

One class per env registered in ``csrc/envs/registry.hpp`` (CartPole-v1,
Pendulum-v1, MountainCar-v0, ... : ``CLASSIC_ENVS`` maps each gymnasium id to
its class, e.g. ``CartPoleVectorEnv``). The classes are made from the
extension's registry (``pgfast._C.classic_envs()``): nothing here is written
per env.

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

from typing import Any, Dict, List, Optional, Tuple, Type

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control import utils as _cc_utils
from gymnasium.envs.registration import load_env_creator

from pgfast import _C
from pgfast.envs.native import NativeVectorEnv

__all__ = ["ClassicControlVectorEnv", "CLASSIC_ENVS"]


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

    Subclasses set ``env_id`` only; everything else comes from the registry.
    """

    env_id: str = ""
    _info: Dict[str, Any] = {}  # the registry's entry: pgfast._C.classic_envs()[env_id]
    _BUFFERS = ("_obs", "_rew", "_term", "_trunc", "_final_obs", "_final_mask")

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
        entry_point = gym.spec(self.env_id).entry_point
        creator = load_env_creator(entry_point) if isinstance(entry_point, str) else entry_point
        assert creator is not None, f"{self.env_id} has no gymnasium entry point"
        ref = creator(**kwargs)
        super().__init__(num_envs=num_envs, single_observation_space=ref.observation_space,
                         single_action_space=ref.action_space, autoreset_mode=autoreset_mode,
                         env_id=self.env_id,
                         spec_kwargs={**kwargs, "max_episode_steps": int(max_episode_steps)})
        # The core converts each parameter by its kind (float() or bool()) and
        # rejects names it does not know.
        core: Any = _C.ClassicVecEnv(self.env_id, self.num_envs, self._same_step, int(num_threads),
                                int(max_episode_steps), dict(kwargs))
        core.bind_outputs(self._obs, self._rew, self._term, self._trunc,
                          self._final_obs, self._final_mask)
        self._c = core
        self.num_threads = int(num_threads)
        self.max_episode_steps = int(max_episode_steps)
        # Hot path: the hooks are the bound C++ methods, no Python frame in between.
        vars(self).update(_core_step=core.step, _core_step_into=core.step_into,
                          _core_get_state=core.get_state, _core_set_state=core.set_state)
        if seed is not None:
            self.reset(seed=seed)

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
        return int(self._c.threads_used)

    def _bounds(self, options: Dict[str, Any]) -> Tuple[float, float]:
        """The reset distribution from reset options, parsed as gymnasium's env does."""
        info = self._info
        (name_a, name_b), (default_a, default_b) = info["reset_options"], info["reset_defaults"]
        if (name_a, name_b) == ("low", "high"):  # checked low <= high
            return _cc_utils.maybe_parse_reset_bounds(options or None, default_a, default_b)
        return (_cc_utils.verify_number_and_cast(options.get(name_a, default_a)),
                _cc_utils.verify_number_and_cast(options.get(name_b, default_b)))

    def _core_reset(self, seeds: Optional[np.ndarray], mask: Optional[np.ndarray],
                    options: Dict[str, Any]) -> None:
        a, b = self._bounds(options)
        self._c.reset(seeds, mask, a, b)


def _describe(env_id: str, info: Dict[str, Any]) -> str:
    (name_a, name_b), (default_a, default_b) = info["reset_options"], info["reset_defaults"]
    params: List[str] = info["params"]
    kwargs = f"; kwargs {', '.join(f'``{p}``' for p in params)}" if params else ""
    return (f"{env_id}: reset options ``{name_a}``/``{name_b}`` (default {default_a:g}, "
            f"{default_b:g}){kwargs}.")


def _make_class(env_id: str, info: Dict[str, Any]) -> Type[ClassicControlVectorEnv]:
    """``CartPole-v1`` -> ``CartPoleVectorEnv`` (picklable: a module attribute)."""
    name = env_id.split("-")[0] + "VectorEnv"
    cls = type(name, (ClassicControlVectorEnv,),
               {"env_id": env_id, "_info": info, "__doc__": _describe(env_id, info),
                "__module__": __name__})
    globals()[name] = cls
    __all__.append(name)
    return cls


CLASSIC_ENVS: Dict[str, Type[ClassicControlVectorEnv]] = {
    env_id: _make_class(env_id, info) for env_id, info in _C.classic_envs().items()
}
"""gymnasium id -> native VectorEnv class, in registry order."""
