"""The algorithm registry: the one mapping of names to algorithm classes.

:data:`ALGOS` maps each name accepted by :func:`pgfast.train`, ``pgfast train``
and the studies to its class (:class:`pgfast.algos.base.AlgoBase` describes
what a class provides; each module holds its Config dataclass and update step).
To add an algorithm: write ``pgfast/algos/NAME.py`` and add one line to
:data:`ALGOS`.

The functions below resolve a name and combine the per-env settings of
:mod:`pgfast.presets` with user-given fields into a checked Config.
"""

from __future__ import annotations

import functools
import sys
from typing import IO, Any, Dict, Optional, Tuple, Type

from pgfast import presets
from pgfast.algos.base import AlgoBase, explained_variance, flat_batch
from pgfast.config import BaseConfig, check_fields, did_you_mean, field_docs, format_help
from pgfast.optim import FastAdam, make_adam
from pgfast.algos.ppo import PPO  # noqa: E402  (the modules above must be importable first)
from pgfast.algos.trpo import TRPO  # noqa: E402
from pgfast.algos.vpg import VPG  # noqa: E402

__all__ = ["ALGOS", "get_algo", "config_class", "get_preset", "resolve_settings", "action_space_kind",
           "study_timesteps", "make_config", "config_help", "AlgoBase", "BaseConfig", "FastAdam", "make_adam",
           "explained_variance", "flat_batch", "field_docs"]

ALGOS: Dict[str, Type[AlgoBase]] = {"vpg": VPG, "trpo": TRPO, "ppo": PPO}
"""Algorithm name -> class."""


def get_algo(name: str) -> Type[AlgoBase]:
    """The algorithm class for ``name`` (case-insensitive); ValueError with a hint otherwise."""
    if not isinstance(name, str) or name.lower() not in ALGOS:
        hint = did_you_mean(str(name).lower(), ALGOS)
        raise ValueError(f"algo must be one of {', '.join(ALGOS)}, got {name!r}{hint}")
    return ALGOS[name.lower()]


def config_class(name: str) -> Type[BaseConfig]:
    """The Config dataclass of algorithm ``name`` (e.g. :class:`pgfast.algos.ppo.PPOConfig`)."""
    return get_algo(name).Config


@functools.lru_cache(maxsize=None)
def action_space_kind(env_id: str) -> Optional[str]:
    """The type name of ``env_id``'s action space ("Box", "Discrete", ...), or None
    when gymnasium does not know the id (one env is made and closed to find out)."""
    import gymnasium as gym

    try:
        gym.spec(env_id)
    except gym.error.Error:
        return None
    env = gym.make(env_id)
    try:
        return type(env.action_space).__name__
    finally:
        env.close()


def resolve_settings(algo: str, env_id: Optional[str]) -> Tuple[Dict[str, Any], str]:
    """The starting Config fields for ``algo`` on ``env_id`` and where they come from.

    In order: the env's preset in :data:`pgfast.presets.PRESETS` ("preset ppo/Acrobot-v1"),
    else the defaults for its type of action space in
    :data:`pgfast.presets.DEFAULTS_BY_ACTION_SPACE` ("defaults for Box actions"), else the
    Config's own defaults ("PPOConfig defaults for Discrete actions (no preset for FrozenLake-v1)")."""
    cls = get_algo(algo)
    if env_id is None:
        return {}, f"{cls.Config.__name__} defaults"
    preset = presets.PRESETS.get(cls.name, {}).get(env_id)
    if preset is not None:
        return dict(preset), f"preset {cls.name}/{env_id}"
    kind = action_space_kind(env_id)
    by_space = presets.DEFAULTS_BY_ACTION_SPACE.get(kind or "", {}).get(cls.name)
    if by_space is not None:
        return dict(by_space), f"defaults for {kind} actions (no preset for {env_id})"
    return {}, f"{cls.Config.__name__} defaults" + (f" for {kind} actions" if kind else "") + \
        f" (no preset for {env_id})"


def get_preset(algo: str, env_id: str) -> Dict[str, Any]:
    """A fresh dict of the starting Config fields for ``algo`` on ``env_id``: its preset,
    else the defaults for its action space (see :func:`resolve_settings`; {} means the
    Config defaults apply)."""
    return resolve_settings(algo, env_id)[0]


def study_timesteps(env_id: str, default: int = 100_000) -> int:
    """The study's per-job step budget for ``env_id`` (``default`` if it has none)."""
    return int(presets.STUDY_TIMESTEPS.get(env_id, default))


def make_config(algo: str, env_id: Optional[str] = None, tuned: bool = True, **fields: Any) -> BaseConfig:
    """The checked Config of ``algo``: the env's preset (if ``tuned`` and ``env_id`` is
    given), then ``fields`` on top. Unknown field names raise ValueError with
    "did you mean" hints; invalid values raise the Config's own ValueError."""
    cls = config_class(algo)
    check_fields(cls, fields)
    merged = get_preset(algo, env_id) if (tuned and env_id is not None) else {}
    merged.update(fields)
    return cls.from_fields(merged)


def config_help(algo: str, env_id: Optional[str] = None, file: Optional[IO[str]] = None) -> None:
    """Print every Config field of ``algo`` with its type, default and meaning
    (defaults from ``env_id``'s preset where it has one, marked ``*``)."""
    defaults = get_preset(algo, env_id) if env_id is not None else None
    print(f"{get_algo(algo).name} config fields (set with pgfast.train(..., FIELD=VALUE) or --set FIELD=VALUE):",
          file=file or sys.stdout)
    print(format_help(config_class(algo), defaults), file=file or sys.stdout)
