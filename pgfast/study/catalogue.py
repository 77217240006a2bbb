"""What a study is: variants, the shipped experiments, and jobs with their directories.

A job is one independent training run (variant, env, seed) living in
``OUT/ENV_ID/VARIANT/seedS/`` (see :mod:`pgfast.study` for the files there).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from pgfast import algos
from pgfast.checkpoint import CKPT_NAME, PREV_CKPT_NAME
from pgfast.config import check_fields

__all__ = ["Variant", "VARIANTS", "EXPERIMENTS", "DEFAULT_ENVS", "MUJOCO_ENVS", "EXPERIMENT_ENVS",
           "EXPERIMENT_TIMESTEPS", "EXPERIMENT_NEEDS", "experiment_envs", "experiment_timesteps", "RESULT_NAME",
           "JOB_NAME", "Job", "make_jobs", "job_status", "check_job_dir"]

RESULT_NAME = "result.json"
JOB_NAME = "job.json"

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class Variant:
    """One line in a study's plot: an algorithm plus fixed config overrides."""

    name: str
    """Short identifier, used in directory names and summary rows."""
    algo: str
    """Algorithm passed to ``pgfast.train``: "vpg", "trpo" or "ppo"."""
    overrides: Tuple[Tuple[str, Any], ...] = ()
    """Config fields that define the variant (applied over the env preset)."""
    label: str = ""
    """Legend label."""


VARIANTS: Dict[str, Variant] = {
    # the literal REINFORCE: raw rewards-to-go, neither a baseline nor the per-rollout
    # normalisation (which subtracts the batch mean, i.e. a constant baseline)
    "vpg-raw": Variant("vpg-raw", "vpg", (("baseline", False), ("norm_adv", False)), "VPG (raw rewards-to-go)"),
    "vpg": Variant("vpg", "vpg", (("baseline", False),), "VPG (no baseline)"),
    "vpg-baseline": Variant("vpg-baseline", "vpg", (("baseline", True),), "VPG + baseline"),
    "trpo": Variant("trpo", "trpo", (), "TRPO"),
    "ppo": Variant("ppo", "ppo", (), "PPO-clip"),
}
"""All variants known to the experiments, by name."""

EXPERIMENTS: Dict[str, Tuple[str, ...]] = {
    "baseline": ("vpg-raw", "vpg", "vpg-baseline"),
    "ppo-vs-vpg": ("vpg-baseline", "ppo"),
    "all-algos": ("vpg", "vpg-baseline", "trpo", "ppo"),
    "mujoco": ("ppo", "trpo"),
}
"""Shipped experiments: name -> variant names (one plotted line each)."""

DEFAULT_ENVS: Tuple[str, ...] = ("CartPole-v1", "Pendulum-v1", "HalfCheetah-v5")
"""The envs of an experiment without its own list in :data:`EXPERIMENT_ENVS`."""

MUJOCO_ENVS: Tuple[str, ...] = (
    "HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5", "Humanoid-v5", "Swimmer-v5", "Reacher-v5",
    "InvertedPendulum-v5", "InvertedDoublePendulum-v5",
)
"""The MuJoCo benchmark envs of the ``mujoco`` experiment (docs/MUJOCO.md)."""

EXPERIMENT_ENVS: Dict[str, Tuple[str, ...]] = {"mujoco": MUJOCO_ENVS}
"""Experiments with their own env list: name -> env ids (the others run :data:`DEFAULT_ENVS`;
``--envs`` overrides either)."""

EXPERIMENT_TIMESTEPS: Dict[str, int] = {"mujoco": 1_000_000}
"""Experiments with one step budget for every job: name -> env steps (the others take each env's
study budget, :data:`pgfast.presets.STUDY_TIMESTEPS`; ``--total-timesteps`` overrides either)."""

EXPERIMENT_NEEDS: Dict[str, Tuple[str, ...]] = {"mujoco": ("mujoco",)}
"""Experiments that cannot run without optional packages: name -> import names."""


def experiment_envs(name: str) -> Tuple[str, ...]:
    """The env ids experiment ``name`` runs when no ``--envs`` is given."""
    return EXPERIMENT_ENVS.get(name, DEFAULT_ENVS)


def experiment_timesteps(name: str) -> Optional[int]:
    """The per-job step budget of experiment ``name`` when no ``--total-timesteps`` is given
    (None: each env's study budget, as :func:`make_jobs` takes it)."""
    return EXPERIMENT_TIMESTEPS.get(name)


@dataclass(frozen=True)
class Job:
    """One independent training run of a study: (variant, env, seed).

    ``config`` holds the Config fields passed to ``pgfast.train`` (the env
    preset, the variant's overrides and the user's ``--set`` values, in that
    order of precedence, lowest first).
    """

    variant: str
    """Variant name (a key of :data:`VARIANTS` or a custom one)."""
    algo: str
    """Algorithm name for ``pgfast.train``."""
    env_id: str
    """Environment id."""
    seed: int
    """Seed for torch, numpy and the environments."""
    total_timesteps: int
    """Environment steps to train for."""
    out_dir: str
    """Directory of this job (``OUT/ENV_ID/VARIANT/seedS``)."""
    config: Tuple[Tuple[str, Any], ...] = ()
    """Config fields as sorted (name, value) pairs (hashable, picklable)."""
    device: str = "cpu"
    """Training device: "cpu", "cuda" or "auto"."""
    eval_episodes: int = 20
    """Episodes of the final deterministic evaluation."""
    checkpoint_interval: float = 60.0
    """Seconds between periodic checkpoints (0: after every iteration)."""
    tensorboard: bool = True
    """Write TensorBoard event files when tensorboard is importable."""
    settings: str = ""
    """Where ``config`` came from (preset or action-space defaults, variant, --set); in run.json."""

    @property
    def key(self) -> str:
        """Human-readable id: ``ENV_ID/VARIANT/seedS``."""
        return f"{self.env_id}/{self.variant}/seed{self.seed}"

    def config_dict(self) -> Dict[str, Any]:
        """The job's Config fields as a dict."""
        return dict(self.config)

    def to_json(self) -> Dict[str, Any]:
        """A JSON-serialisable description (written to ``job.json``)."""
        d = dataclasses.asdict(self)
        d["config"] = self.config_dict()
        return d


def env_dirname(env_id: str) -> str:
    """The directory name of an env id (``/`` replaced)."""
    return env_id.replace("/", "_")


def make_jobs(
    variants: Sequence[str],
    envs: Sequence[str],
    seeds: Sequence[int],
    out: PathLike,
    total_timesteps: Optional[int] = None,
    overrides: Optional[Mapping[str, Any]] = None,
    device: str = "cpu",
    eval_episodes: int = 20,
    checkpoint_interval: float = 60.0,
    tensorboard: bool = True,
) -> List[Job]:
    """Build the job list of a study: every (variant, env, seed) combination.

    ``total_timesteps=None`` takes each env's study budget from
    :mod:`pgfast.presets`. ``overrides`` (from ``--set``) apply to every job
    and win over presets and variant settings; fields that an algorithm's
    Config does not have raise ValueError naming them.
    """
    if not variants:
        raise ValueError("variants: need at least one variant")
    if not envs:
        raise ValueError("envs: need at least one environment id")
    if not seeds:
        raise ValueError("seeds: need at least one seed")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds: duplicates in {list(seeds)}")
    if total_timesteps is not None and int(total_timesteps) <= 0:
        raise ValueError(f"total_timesteps: must be positive, got {total_timesteps}")
    if eval_episodes <= 0:
        raise ValueError(f"eval_episodes: must be positive, got {eval_episodes}")
    overrides = dict(overrides or {})
    jobs = []
    for vname in variants:
        if vname not in VARIANTS:
            raise ValueError(f"variants: unknown variant {vname!r}; known: {', '.join(VARIANTS)}")
        v = VARIANTS[vname]
        for env_id in envs:
            cfg, source = algos.resolve_settings(v.algo, env_id)
            cfg.update(dict(v.overrides))
            cfg.update(overrides)
            if v.overrides:
                source += f"; variant {vname}: " + ", ".join(f"{k}={val}" for k, val in v.overrides)
            if overrides:
                source += "; --set " + ", ".join(f"{k}={val}" for k, val in overrides.items())
            check_fields(algos.config_class(v.algo), cfg)
            steps = int(total_timesteps) if total_timesteps is not None else algos.study_timesteps(env_id)
            for seed in seeds:
                d = Path(out) / env_dirname(env_id) / vname / f"seed{int(seed)}"
                jobs.append(
                    Job(
                        variant=vname,
                        algo=v.algo,
                        env_id=env_id,
                        seed=int(seed),
                        total_timesteps=steps,
                        out_dir=str(d),
                        config=tuple(sorted(cfg.items())),
                        device=device,
                        eval_episodes=int(eval_episodes),
                        checkpoint_interval=float(checkpoint_interval),
                        tensorboard=tensorboard,
                        settings=source,
                    )
                )
    return jobs


def job_status(job: Job) -> str:
    """``"done"`` (result.json for at least the job's steps), ``"partial"``
    (a checkpoint or log exists) or ``"new"``."""
    d = Path(job.out_dir)
    res = d / RESULT_NAME
    if res.exists():
        try:
            r = json.loads(res.read_text())
            # a run stops at the last whole rollout <= total_timesteps
            if int(r.get("total_timesteps", -1)) >= job.total_timesteps:
                return "done"
        except (ValueError, OSError):
            pass
        return "partial"
    if (d / CKPT_NAME).exists() or (d / PREV_CKPT_NAME).exists():
        return "partial"
    return "new"


def check_job_dir(job: Job) -> None:
    """Raise ValueError if ``job.out_dir`` holds a job with another algorithm,
    env, seed or config (a rerun would otherwise mix two different runs)."""
    f = Path(job.out_dir) / JOB_NAME
    if not f.exists():
        return
    try:
        old = json.loads(f.read_text())
    except (ValueError, OSError):
        return
    new = json.loads(json.dumps(job.to_json(), default=str))
    diff = [k for k in ("algo", "env_id", "seed") if old.get(k) != new.get(k)]
    oc, nc = old.get("config", {}), new.get("config", {})
    diff += [f"config.{k}" for k in sorted(set(oc) | set(nc)) if oc.get(k) != nc.get(k)]
    if diff:
        raise ValueError(f"{job.out_dir} holds a job with different settings ({', '.join(diff)}); "
                         f"use another --out or delete that directory")
