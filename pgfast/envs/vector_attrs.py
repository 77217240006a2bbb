"""``call``, ``get_attr`` and ``set_attr`` of the native vector envs, as gymnasium's
``SyncVectorEnv`` offers them.

A native env has no sub-env objects; these methods answer, for each of the N envs, what a
``SyncVectorEnv`` of ``gymnasium.make(env_id, **kwargs)`` copies answers:

* ``render_mode``, ``spec`` (the single env's spec with this env's constructor arguments and
  time limit), ``metadata`` (the single env class's), ``np_random_seed``, ``np_random``,
  ``max_episode_steps`` and each constructor parameter that gymnasium's env keeps as a public
  attribute (e.g. Pendulum's ``g``: the value given, or gymnasium's default);
* ``call("render")``: the N frames of :meth:`render`;
* ``set_attr`` stores values of names that no native core reads (the attributes a wrapper
  keeps on its envs); the names above describe the core and cannot be changed after
  construction (AttributeError saying so; make a new env instead).
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import TYPE_CHECKING, Any, Dict, List, Tuple

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator

__all__ = ["VectorAttrs"]

_FIXED = ("render_mode", "spec", "metadata", "np_random_seed", "np_random", "max_episode_steps")


class VectorAttrs:
    """Mixin of :class:`pgfast.envs.native.NativeVectorEnv` (see the module docstring)."""

    num_envs: int
    render_mode: Any
    spec: Any

    if TYPE_CHECKING:  # the env's own (declared for type checkers only: never shadows it)
        def render(self, *args: Any, **kwargs: Any) -> Any: ...

    def _creator(self) -> Any:
        env_id = getattr(self, "_env_id", None)
        if env_id is None or env_id not in gym.registry:
            return None
        ep = gym.spec(env_id).entry_point
        return load_env_creator(ep) if isinstance(ep, str) else ep

    def _ctor_params(self) -> Dict[str, Any]:
        """The single env's constructor parameters that gymnasium's env keeps as public
        attributes (read from one instance made with this env's arguments, made once)."""
        cached = vars(self).get("_attr_params")
        if cached is not None:
            return cached
        params: Dict[str, Any] = {}
        creator = self._creator()
        if creator is not None:
            names = [p.name for p in inspect.signature(creator).parameters.values()
                     if p.name != "render_mode" and p.kind is not inspect.Parameter.VAR_KEYWORD]
            single = creator(**(getattr(self, "_ref_kwargs", {}) or {}))
            params = {k: getattr(single, k) for k in names if hasattr(single, k)}
            single.close()
        vars(self)["_attr_params"] = params
        return params

    def _single_spec(self) -> Any:
        env_id = getattr(self, "_env_id", None)
        if env_id is None or env_id not in gym.registry:
            return None
        spec = gym.spec(env_id)
        kwargs = {**spec.kwargs, **(getattr(self, "_ref_kwargs", {}) or {})}
        if self.render_mode is not None:
            kwargs["render_mode"] = self.render_mode
        steps = getattr(self, "max_episode_steps", spec.max_episode_steps)
        return dataclasses.replace(spec, kwargs=kwargs, max_episode_steps=steps)

    def _per_env(self, name: str) -> Tuple[Any, ...]:
        n = self.num_envs
        if name == "render_mode":
            return (self.render_mode,) * n
        if name == "spec":
            return (self._single_spec(),) * n
        if name == "metadata":
            creator = self._creator()
            return (dict(getattr(creator, "metadata", {}) or {}),) * n
        if name in ("np_random_seed", "np_random"):
            return tuple(getattr(self, name))
        if name == "max_episode_steps":
            return (getattr(self, "max_episode_steps", None),) * n
        params = self._ctor_params()
        if name in params:
            return (params[name],) * n
        stored = vars(self).get("_set_attrs", {})
        if name in stored:
            return tuple(stored[name])
        raise AttributeError(f"{type(self).__name__}'s envs have no attribute {name!r}")

    def call(self, name: str, *args: Any, **kwargs: Any) -> Tuple[Any, ...]:
        """For each env, ``getattr(env, name)``, called with the arguments if it is callable."""
        if name == "render":
            frames = self.render(*args, **kwargs)
            return tuple(frames) if frames is not None else (None,) * self.num_envs
        return tuple(v(*args, **kwargs) if callable(v) else v for v in self._per_env(name))

    def get_attr(self, name: str) -> Tuple[Any, ...]:
        """The attribute ``name`` of each env (``call(name)``)."""
        return self.call(name)

    def set_attr(self, name: str, values: Any) -> None:
        """Set ``name`` on each env: ``values`` is one value for all or a list/tuple of N."""
        if not isinstance(values, (list, tuple)):
            values = [values] * self.num_envs
        if len(values) != self.num_envs:
            raise ValueError("Values must be a list or tuple with length equal to the number of environments. "
                             f"Got `{len(values)}` values for {self.num_envs} environments.")
        if name in _FIXED or name in self._ctor_params():
            raise AttributeError(f"{name!r} of a native {type(self).__name__} is fixed at construction; "
                                 f"make a new env with the value instead")
        store: Dict[str, List[Any]] = vars(self).setdefault("_set_attrs", {})
        store[name] = list(values)
