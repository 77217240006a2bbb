"""Observation and action spaces: what trains, how observations reach the network, and
which policy (and so which path) serves them.

Observations (the rollout buffer stores float32 rows):

* ``Box`` (any shape, non-image): as they are (flattened by the network).
* image ``Box`` (uint8, 3 axes ``HxWxC`` or ``CxHxW``, bounds 0 and 255): as they are; the
  network scales them to [0, 1] (:class:`pgfast.nn.encoders.NatureCNN` with
  ``encoder="auto"|"cnn"``, or a flat MLP with ``encoder="mlp"``); never normalised.
* ``Discrete`` -> one-hot; ``MultiDiscrete`` -> one one-hot per dimension, concatenated;
  ``MultiBinary`` -> its bits; ``Tuple``/``Dict`` (nested too) -> the flattening of each
  part, concatenated in the space's order: exactly ``gymnasium.spaces.flatten``
  (:func:`batch_flatten`, applied to the vector env's batched observations by
  :class:`FlattenObservations`).

Actions: ``Discrete`` (start 0), 1-D ``Box``, 1-D ``MultiDiscrete`` (start 0; one
categorical per dimension) and 1-D ``MultiBinary`` (independent Bernoullis).

Paths: :class:`pgfast.nn.ActorCritic`, which the C++ rollout and updates read, serves
non-image Box observations with Discrete or Box actions; every other combination (and
``encoder="cnn"``) gets :class:`pgfast.nn.modular.ModularActorCritic` on the torch path
(:func:`torch_path_reason` says why).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import gymnasium as gym
import numpy as np
from gymnasium import spaces as S

__all__ = ["SUPPORTED_OBSERVATIONS", "SUPPORTED_ACTIONS", "check_observation_space", "check_action_space",
           "is_image_space", "batch_flatten", "FlattenObservations", "adapt_env", "base_env",
           "rebase_env", "clip_actions", "action_buffer_spec", "resolve_encoder", "torch_path_reason", "make_policy",
           "ENCODERS"]

SUPPORTED_OBSERVATIONS = ("Box (flat or image), Discrete, MultiDiscrete, MultiBinary, and Tuple/Dict "
                          "of these")
SUPPORTED_ACTIONS = "Discrete, Box (1-D), MultiDiscrete (1-D), MultiBinary (1-D)"
ENCODERS = ("auto", "mlp", "cnn")
"""Values of the Config field ``encoder``."""


def _unsupported(role: str, space: Any, inside: Optional[Any] = None) -> TypeError:
    where = f" (inside {type(inside).__name__})" if inside is not None else ""
    supported = SUPPORTED_OBSERVATIONS if role == "observation" else SUPPORTED_ACTIONS
    return TypeError(f"{role} space {type(space).__name__}{where} is not supported; supported "
                     f"{role} spaces: {supported}")


def check_observation_space(space: Any, _outer: Optional[Any] = None) -> None:
    """Raise TypeError (one line naming the space and the supported ones) unless every part
    of ``space`` is a Box, Discrete, MultiDiscrete, MultiBinary, Tuple or Dict."""
    if isinstance(space, (S.Box, S.Discrete, S.MultiDiscrete, S.MultiBinary)):
        return
    if isinstance(space, S.Tuple):
        for s in space.spaces:
            check_observation_space(s, space)
        return
    if isinstance(space, S.Dict):
        for s in space.spaces.values():
            check_observation_space(s, space)
        return
    raise _unsupported("observation", space, _outer)


def check_action_space(space: Any) -> None:
    """Raise TypeError (unsupported kind) or ValueError (unsupported shape/start) unless
    ``space`` is a Discrete/MultiDiscrete starting at 0, a 1-D Box or a 1-D MultiBinary."""
    if isinstance(space, S.Discrete):
        if int(space.start) != 0:
            raise ValueError(f"Discrete action spaces must start at 0, got start={space.start}")
        return
    if isinstance(space, (S.Box, S.MultiBinary, S.MultiDiscrete)):
        name = type(space).__name__
        if len(space.shape) != 1:
            raise ValueError(f"{name} action spaces must be 1-D, got shape {space.shape}")
        if isinstance(space, S.MultiDiscrete) and np.any(space.start != 0):
            raise ValueError(f"MultiDiscrete action spaces must start at 0, got start={space.start}")
        return
    raise _unsupported("action", space)


def is_image_space(space: Any) -> bool:
    """A uint8 Box with 3 axes and bounds 0 and 255 (``HxWxC`` or ``CxHxW``)."""
    return (isinstance(space, S.Box) and space.dtype == np.uint8 and len(space.shape) == 3
            and bool(np.all(space.low == 0)) and bool(np.all(space.high == 255)))


# ---------------------------------------------------------------- flattening


def batch_flatten(space: Any, x: Any, n: int) -> np.ndarray:
    """``n`` batched observations of ``space`` (as a gymnasium vector env returns them:
    arrays with a leading ``[n]`` axis, tuples/dicts of those) -> float32 ``[n, flatdim]``,
    row i equal to ``gymnasium.spaces.flatten(space, x[i])``."""
    if isinstance(space, S.Box):
        return np.asarray(x, dtype=np.float32).reshape(n, -1)
    if isinstance(space, S.Discrete):
        out = np.zeros((n, int(space.n)), dtype=np.float32)
        out[np.arange(n), np.asarray(x, dtype=np.int64).reshape(n) - int(space.start)] = 1.0
        return out
    if isinstance(space, S.MultiDiscrete):
        idx = (np.asarray(x, dtype=np.int64) - space.start).reshape(n, -1)
        nvec = space.nvec.reshape(-1).astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(nvec)[:-1]])
        out = np.zeros((n, int(nvec.sum())), dtype=np.float32)
        np.put_along_axis(out, idx + offsets, 1.0, axis=1)
        return out
    if isinstance(space, S.MultiBinary):
        return np.asarray(x, dtype=np.float32).reshape(n, -1)
    if isinstance(space, S.Tuple):
        return np.concatenate([batch_flatten(s, xi, n) for s, xi in zip(space.spaces, x)], axis=1)
    if isinstance(space, S.Dict):
        return np.concatenate([batch_flatten(s, x[k], n) for k, s in space.spaces.items()], axis=1)
    raise _unsupported("observation", space)


def _flat_box(space: Any) -> S.Box:
    """The float32 Box of the flattened ``space`` (gymnasium's ``flatten_space`` bounds)."""
    fs: Any = S.flatten_space(space)
    return S.Box(fs.low.astype(np.float32), fs.high.astype(np.float32), dtype=np.float32)


class FlattenObservations(gym.vector.VectorWrapper):
    """A vector env whose observations are :func:`batch_flatten`'d to float32 ``[N, flatdim]``
    (a ``Box`` single observation space), ``info["final_obs"]`` (same_step autoreset) too:
    a dense ``[N, flatdim]`` array, rows valid where ``info["_final_obs"]``."""

    def __init__(self, env: gym.vector.VectorEnv) -> None:
        super().__init__(env)
        self._space = env.single_observation_space
        self.single_observation_space = _flat_box(self._space)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, env.num_envs)

    def _flat(self, obs: Any) -> np.ndarray:
        return batch_flatten(self._space, obs, self.num_envs)

    def _info(self, info: Dict[str, Any]) -> Dict[str, Any]:
        mask = info.get("_final_obs")
        if mask is None or "final_obs" not in info:
            return info
        dense = np.zeros((self.num_envs, S.flatdim(self._space)), dtype=np.float32)
        for i in np.flatnonzero(mask):
            dense[i] = np.asarray(S.flatten(self._space, info["final_obs"][i]), dtype=np.float32)
        return {**info, "final_obs": dense}

    def reset(self, *, seed: Any = None, options: Optional[Dict[str, Any]] = None) -> Tuple[Any, Dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        return self._flat(obs), info

    def step(self, actions: Any) -> Tuple[Any, Any, Any, Any, Dict[str, Any]]:
        obs, rew, term, trunc, info = self.env.step(actions)
        return self._flat(obs), rew, term, trunc, self._info(info)


def adapt_env(env: gym.vector.VectorEnv) -> gym.vector.VectorEnv:
    """Check ``env``'s spaces (TypeError/ValueError naming an unsupported one) and return it,
    wrapped in :class:`FlattenObservations` unless its observations are a Box."""
    space = env.single_observation_space
    check_observation_space(space)
    check_action_space(env.single_action_space)
    return env if isinstance(space, S.Box) else FlattenObservations(env)


def base_env(env: Any) -> Any:
    """The env under :class:`FlattenObservations` (the env itself otherwise): the one whose
    state a checkpoint captures."""
    return env.env if isinstance(env, FlattenObservations) else env


# ---------------------------------------------------------------- buffers and policies


def clip_actions(actions: np.ndarray, space: Any, out: Optional[np.ndarray] = None) -> np.ndarray:
    """``actions`` as the env takes them: clipped to a ``Box`` space's bounds, in its dtype
    (written into ``out`` where given, an array of the space's dtype and the actions' shape);
    actions of other spaces are returned unchanged. The policy never clips (its log-probs are
    those of the unclipped sample): this is the one place in Python that does, at the env
    boundary (the C++ rollout clips in C++)."""
    if not isinstance(space, S.Box):
        return actions
    if out is None:
        out = np.empty(np.shape(actions), dtype=space.dtype)
    return np.clip(actions, space.low, space.high, out=out, casting="unsafe")


def action_buffer_spec(space: Any) -> Tuple[Tuple[int, ...], Any]:
    """``(per-env shape, torch dtype)`` of the rollout buffer's actions for ``space``:
    ``((), int64)`` for Discrete, ``((D,), float32)`` for Box, ``((D,), int64)`` for
    MultiDiscrete and MultiBinary."""
    import torch

    if isinstance(space, S.Box):
        return tuple(space.shape), torch.float32
    if isinstance(space, (S.MultiDiscrete, S.MultiBinary)):
        return tuple(space.shape), torch.int64
    return (), torch.int64


def resolve_encoder(obs_space: Any, encoder: str) -> str:
    """"mlp" or "cnn" for ``encoder`` ("auto": cnn for image Box observations, mlp otherwise);
    ValueError for "cnn" on observations that are not images, or an unknown value."""
    if encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}, got {encoder!r}")
    image = is_image_space(obs_space)
    if encoder == "cnn" and not image:
        raise ValueError(f"encoder='cnn' needs image observations (a uint8 Box HxWxC or CxHxW with bounds "
                         f"0 and 255), got {obs_space}")
    return "cnn" if (encoder == "auto" and image) else ("mlp" if encoder == "auto" else encoder)


def torch_path_reason(obs_space: Any, action_space: Any) -> Optional[str]:
    """Why the C++ rollout and update cannot serve these spaces (``obs_space`` as the env
    gives it, before flattening), or None when they can (non-image Box observations with
    Discrete or Box actions and the MLP encoder)."""
    if not isinstance(obs_space, S.Box):
        return f"{type(obs_space).__name__} observations are flattened in Python"
    if is_image_space(obs_space):
        return "image observations"
    if not isinstance(action_space, (S.Discrete, S.Box)):
        return f"{type(action_space).__name__} actions"
    return None


def make_policy(obs_space: Any, action_space: Any, cfg: Any, raw_obs_space: Optional[Any] = None) -> Any:
    """The actor-critic for a (checked) ``obs_space`` as the buffer stores it (after
    :class:`FlattenObservations`) and ``action_space``, from the Config fields
    ``hidden_sizes, actor_hidden_sizes, critic_hidden_sizes, activation, ortho_init, log_std_init,
    norm_obs, clip_obs, encoder, share_encoder``: :class:`pgfast.nn.ActorCritic` where
    :func:`torch_path_reason` is None,
    :class:`pgfast.nn.modular.ModularActorCritic` otherwise. ``raw_obs_space``: the env's
    own space (defaults to ``obs_space``)."""
    from pgfast.nn import ActorCritic
    from pgfast.nn.modular import ModularActorCritic

    raw = obs_space if raw_obs_space is None else raw_obs_space
    encoder = resolve_encoder(raw, getattr(cfg, "encoder", "auto"))
    sizes = dict(actor_hidden_sizes=getattr(cfg, "actor_hidden_sizes", None),
                 critic_hidden_sizes=getattr(cfg, "critic_hidden_sizes", None))
    if torch_path_reason(raw, action_space) is None:
        return ActorCritic(int(np.prod(obs_space.shape)), action_space, cfg.hidden_sizes, cfg.activation,
                           cfg.ortho_init, cfg.log_std_init, cfg.norm_obs, cfg.clip_obs, **sizes)
    return ModularActorCritic(obs_space.shape, action_space, cfg.hidden_sizes, cfg.activation,
                              cfg.ortho_init, cfg.log_std_init, cfg.norm_obs, cfg.clip_obs,
                              encoder=encoder, share_encoder=getattr(cfg, "share_encoder", True),
                              image=is_image_space(raw), **sizes)


def rebase_env(env: Any, inner: Any) -> Any:
    """``env`` with its base env (:func:`base_env`) replaced by ``inner`` (a restored one)."""
    if isinstance(env, FlattenObservations):
        env.env = inner
        return env
    return inner
