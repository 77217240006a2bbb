"""The search space of ``pgfast tune``: :data:`SEARCH_SPACES` (the one place the ranges live)
and how a trial's settings are drawn from it (:func:`sample_params`) and read back
(:func:`plain_params`). The search itself is :mod:`pgfast.tune`."""

from __future__ import annotations

from typing import Any, Dict, Tuple

from pgfast import algos

__all__ = ["SEARCH_SPACES", "TuneError", "sample_params", "plain_params", "check_space"]


# name -> ("log", low, high) | ("float", low, high) | ("cat", [choices]).
_COMMON: Dict[str, Tuple[Any, ...]] = {
    "num_envs": ("cat", [1, 4, 8, 16]),
    "num_steps": ("cat", [32, 64, 128, 256, 512, 1024, 2048]),
    "gamma": ("cat", [0.9, 0.95, 0.98, 0.99, 0.995, 0.999]),
    "gae_lambda": ("cat", [0.8, 0.9, 0.92, 0.95, 0.98, 1.0]),
    "norm_obs": ("cat", [False, True]),
    "norm_reward": ("cat", [False, True]),
}
SEARCH_SPACES: Dict[str, Dict[str, Tuple[Any, ...]]] = {
    "ppo": {
        **_COMMON,
        "learning_rate": ("log", 1e-5, 3e-3),
        "anneal_lr": ("cat", [False, True]),
        "update_epochs": ("cat", [1, 4, 10, 20]),
        "num_minibatches": ("cat", [1, 4, 8, 32]),
        "clip_coef": ("cat", [0.1, 0.2, 0.3]),
        "ent_coef": ("log", 1e-8, 0.1),
        "vf_coef": ("float", 0.2, 1.0),
        "max_grad_norm": ("cat", [0.3, 0.5, 1.0, 5.0]),
    },
    "trpo": {
        **_COMMON,
        "max_kl": ("log", 1e-3, 0.1),
        "learning_rate": ("log", 1e-4, 3e-3),
        "update_epochs": ("cat", [5, 10, 20]),
        "num_minibatches": ("cat", [1, 4, 8, 32]),
    },
    "vpg": {
        **_COMMON,
        "learning_rate": ("log", 1e-4, 1e-2),
        "vf_learning_rate": ("log", 1e-4, 1e-2),
        "update_epochs": ("cat", [5, 10, 20]),
        "num_minibatches": ("cat", [1, 4, 8, 32]),
    },
}
"""algo -> Config field -> sampling range. Batches (num_envs x num_steps) larger than a
quarter of the budget are never sampled, and num_minibatches is capped at the batch."""


class TuneError(ValueError):
    """Bad arguments to :func:`tune` (unknown algo or env, impossible ranges)."""



def check_space(algo: str) -> Dict[str, Tuple[Any, ...]]:
    """``SEARCH_SPACES[algo]``, checked: every name a Config field, every range possible."""
    space = SEARCH_SPACES[algo]
    fields = set(algos.config_class(algo).field_names())
    unknown = sorted(set(space) - fields)
    if unknown:  # a programming error in SEARCH_SPACES, caught by the tests
        raise TuneError(f"search space of {algo} names unknown fields {unknown}")
    for name, spec in space.items():
        kind = spec[0]
        if kind in ("log", "float") and not (0 < spec[1] < spec[2] if kind == "log" else spec[1] < spec[2]):
            raise TuneError(f"search space of {algo}: {name} has an impossible range {spec}")
        if kind == "cat" and not spec[1]:
            raise TuneError(f"search space of {algo}: {name} has no choices")
    return space


def sample_params(trial: Any, algo: str, budget: int) -> Dict[str, Any]:
    """Config fields for one trial (``trial`` is an ``optuna.Trial``)."""
    space = check_space(algo)
    out: Dict[str, Any] = {}
    for name, spec in space.items():
        kind = spec[0]
        if name == "num_steps":
            envs = out.get("num_envs", 1)
            choices = [s for s in spec[1] if envs * s * 4 <= budget] or [min(spec[1])]
            # one name per set of choices (Optuna's distributions are fixed per name): the
            # choices depend on the budget, and a study may be resumed with another one
            key = f"{name}@{envs}" if len(choices) == len(spec[1]) else f"{name}@{envs}<={max(choices)}"
            out[name] = trial.suggest_categorical(key, choices)
        elif kind == "log":
            out[name] = trial.suggest_float(name, spec[1], spec[2], log=True)
        elif kind == "float":
            out[name] = trial.suggest_float(name, spec[1], spec[2])
        else:
            out[name] = trial.suggest_categorical(name, spec[1])
    if "num_minibatches" in out:
        batch = out.get("num_envs", 1) * out.get("num_steps", 1)
        out["num_minibatches"] = min(out["num_minibatches"], batch)
    return out


def plain_params(algo: str, trial_params: Dict[str, Any]) -> Dict[str, Any]:
    """A trial's Optuna parameters as Config fields (the ``num_steps@...`` names of
    :func:`sample_params` undone, num_minibatches capped at the batch)."""
    out = {k.split("@")[0]: v for k, v in trial_params.items()}
    if "num_minibatches" in out:
        out["num_minibatches"] = min(out["num_minibatches"], out.get("num_envs", 1) * out.get("num_steps", 1))
    return {k: out[k] for k in SEARCH_SPACES[algo] if k in out}
