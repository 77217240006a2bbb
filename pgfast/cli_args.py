"""The ``pgfast`` command's argument parser: every subcommand, its options and their help
(``pgfast train --help ALGO [ENV_ID]`` lists the Config fields with the env's preset).
The commands themselves are in :mod:`pgfast.cli`."""

from __future__ import annotations

import argparse
import textwrap
from typing import Any, Optional, Sequence, Tuple

from pgfast import __version__, study

__all__ = ["build_parser"]


def _positive_int(text: str) -> int:
    try:
        v = int(float(text)) if ("e" in text.lower() or "." in text) and float(text).is_integer() else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _nonneg_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return v


def _train_epilog(help_for: Optional[Tuple[str, Optional[str]]]) -> str:
    """The config-field list shown by ``pgfast train ALGO [ENV_ID] --help``."""
    from pgfast import algos
    from pgfast.config import format_help

    if help_for is None:
        return (f"config fields (--set FIELD=VALUE): run `pgfast train ALGO --help` to list ALGO's fields with "
                f"their defaults and meaning; ALGO is one of {', '.join(algos.ALGOS)}")
    algo, env_id = help_for
    defaults = algos.get_preset(algo, env_id) if env_id else None
    where = f" ({env_id}'s preset values marked *)" if env_id and defaults else ""
    return (f"{algo} config fields for --set FIELD=VALUE, with defaults{where}:\n"
            + format_help(algos.config_class(algo), defaults))


def _help_target(argv: Sequence[str]) -> Optional[Tuple[str, Optional[str]]]:
    """(algo, env_id) when ``argv`` asks for ``train ALGO [ENV_ID] --help``."""
    from pgfast import algos

    args = list(argv)
    if not args or args[0] != "train" or not ({"-h", "--help"} & set(args)):
        return None
    pos = []
    for x in args[1:]:
        if x.startswith("-"):
            break
        pos.append(x)
    if not pos or pos[0].lower() not in algos.ALGOS:
        return None
    return pos[0].lower(), (pos[1] if len(pos) > 1 else None)


def build_parser(help_for: Optional[Tuple[str, Optional[str]]] = None) -> argparse.ArgumentParser:
    """The argument parser of the ``pgfast`` command (all subcommands).

    ``help_for=(algo, env_id)`` makes ``train --help`` list that algorithm's config fields."""
    p = argparse.ArgumentParser(
        prog="pgfast",
        description="Fast policy-gradient RL (VPG, TRPO, PPO): train agents, evaluate them, run multi-seed studies.",
    )
    p.add_argument("--version", action="version", version=f"pgfast {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    _add_train(sub, help_for)
    _add_eval(sub)
    _add_experiment(sub)
    _add_plot_and_tune(sub)
    return p


def _add_train(sub: Any, help_for: Optional[Tuple[str, Optional[str]]]) -> None:
    """``pgfast train``'s arguments."""
    t = sub.add_parser("train", help="train one agent", formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=_train_epilog(help_for), description=textwrap.fill(
        "Train one agent with the env's preset hyperparameters (pgfast/presets.py), overridable with --set. "
        "Writes progress.csv, TensorBoard logs (tb/) and periodic atomic checkpoints (ckpt.pt, ckpt.prev.pt) "
        "to --out. Ctrl-C or SIGTERM saves a checkpoint before exiting; --resume continues from one."))
    t.add_argument("algo", nargs="?", metavar="ALGO", help="vpg, trpo or ppo (not needed with --resume)")
    t.add_argument("env_id", nargs="?", metavar="ENV_ID", help="environment id, e.g. CartPole-v1")
    t.add_argument("--total-timesteps", type=_positive_int, default=None,
                   help="env steps to train in total (default: the env's study budget; with --resume: the "
                        "checkpoint's target)")
    t.add_argument("--seed", type=int, default=None, help="random seed (default 0; not with --resume)")
    t.add_argument("--device", default=None, choices=["auto", "cpu", "cuda"],
                   help="training device (default auto; with --resume: the checkpoint's)")
    t.add_argument("--set", dest="overrides", action="append", nargs="+", default=[], metavar="FIELD=VALUE",
                   help="override a Config field, e.g. --set learning_rate=3e-4 num_envs=16 (fields listed below)")
    t.add_argument("--out", default=None, help="output directory (default runs/ALGO-ENV_ID-seedS; with --resume: "
                                               "the checkpoint's directory)")
    t.add_argument("--resume", default=None, metavar="CKPT", help="checkpoint file or run directory to continue")
    t.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (by default a directory holding a run is refused)")
    t.add_argument("--trust-checkpoint", action="store_true",
                   help="with --resume: load a checkpoint that needs arbitrary unpickling (an earlier pgfast "
                        "format), which can run code: only for a file you made yourself")
    t.add_argument("--checkpoint-interval", type=_nonneg_float, default=60.0,
                   help="seconds between checkpoints (0: every iteration; default 60)")
    t.add_argument("--eval-episodes", type=int, default=10, help="episodes of the final evaluation (0: none)")
    t.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard logs")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_eval(sub: Any) -> None:
    """``pgfast eval``'s arguments."""
    e = sub.add_parser("eval", help="evaluate a checkpoint", description=(
        "Evaluate a saved agent for N episodes (deterministic actions by default) and print mean ± std; "
        "optionally record videos of the episodes (gymnasium's RecordVideo; needs an env that renders rgb_array)."))
    e.add_argument("ckpt", metavar="CKPT", help="checkpoint file or run directory")
    e.add_argument("--episodes", type=_positive_int, default=20, help="episodes (default 20)")
    e.add_argument("--device", default=None, choices=["auto", "cpu", "cuda"],
                   help="device to load the agent on (default: the checkpoint's; cpu runs a CUDA-trained agent "
                        "on a machine without CUDA)")
    e.add_argument("--stochastic", action="store_true", help="sample actions instead of taking the mode")
    e.add_argument("--video", default=None, metavar="DIR", help="record videos of the episodes into DIR")
    e.add_argument("--gif", action="store_true", help="with --video: also write a small GIF of each episode")
    e.add_argument("--trust-checkpoint", action="store_true",
                   help="load a checkpoint that needs arbitrary unpickling (an earlier pgfast format), which can "
                        "run code: only for a file you made yourself")
    e.add_argument("--reference", action="store_true",
                   help="also evaluate in gymnasium's own implementation of the env (cross-check of native envs)")


def _add_experiment(sub: Any) -> None:
    """``pgfast experiment``'s arguments."""
    x = sub.add_parser("experiment", help="run a multi-seed study", description=(
        "Run a study: every (variant, env, seed) is an independent job under OUT/ENV_ID/VARIANT/seedS. A rerun "
        "skips finished jobs and resumes interrupted ones. Writes OUT/summary.csv (final evaluation return per "
        "variant and env: mean, std and 95% CI over seeds) and one OUT/ENV_ID.png per env. Experiments: "
        + "; ".join(f"{k}: {', '.join(v)}" for k, v in study.EXPERIMENTS.items())))
    x.add_argument("name", metavar="NAME", choices=[*study.EXPERIMENTS, "variance"],
                   help=", ".join(study.EXPERIMENTS) + "; variance: the gradient variance of each policy-gradient "
                   "estimator at fixed policies (OUT/variance.csv and a plot per env; the first seed only)")
    x.add_argument("--quick", action="store_true",
                   help="variance only: the initial policy and fewer repeats (CartPole in about a minute)")
    x.add_argument("--envs", nargs="+", default=None,
                   help="environment ids (default "
                        + "".join(f"for {k}: {' '.join(v)}; " for k, v in study.EXPERIMENT_ENVS.items())
                        + f"for the others: {' '.join(study.DEFAULT_ENVS)})")
    x.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds (default: 0 1 2)")
    x.add_argument("--total-timesteps", type=_positive_int, default=None,
                   help="env steps per job (default "
                        + "".join(f"for {k}: {v:,}; " for k, v in study.EXPERIMENT_TIMESTEPS.items())
                        + "for the others: each env's study budget from pgfast/presets.py)")
    x.add_argument("--workers", type=_positive_int, default=None, help="parallel jobs (default: number of CPUs)")
    x.add_argument("--backend", default="local", choices=["local", "ray"], help="local process pool or Ray tasks")
    x.add_argument("--stack-seeds", action="store_true",
                   help="local backend: the seeds of each variant and env in one process, one thread per seed "
                   "(--workers then counts those processes)")
    x.add_argument("--address", default=None, help="Ray cluster address to join (default: start a local Ray)")
    x.add_argument("--out", default=None, help="output directory (default runs/NAME)")
    x.add_argument("--set", dest="overrides", action="append", nargs="+", default=[], metavar="[ALGO.]FIELD=VALUE",
                   help="override a Config field for all variants (FIELD=VALUE) or one algorithm (ppo.FIELD=VALUE)")
    x.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"], help="training device (default cpu)")
    x.add_argument("--eval-episodes", type=_positive_int, default=20, help="final evaluation episodes (default 20)")
    x.add_argument("--checkpoint-interval", type=_nonneg_float, default=60.0,
                   help="seconds between checkpoints of each job (default 60)")
    x.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard logs")


def _add_plot_and_tune(sub: Any) -> None:
    """``pgfast plot``'s and ``pgfast tune``'s arguments."""
    pl = sub.add_parser("plot", help="redraw a study's plots and summary", description=(
        "Redraw OUT/ENV_ID.png and OUT/summary.csv from the logs of a study directory."))
    pl.add_argument("dir", metavar="DIR", help="study output directory")

    tu = sub.add_parser("tune", help="search hyperparameters with Optuna", description=(
        "Search ALGO's config fields on ENV_ID with Optuna (TPE sampler, median pruner on the learning curve). "
        "Each trial trains for --budget steps per seed and scores the deterministic evaluation return "
        "(the mean over seeds, or the worst seed with --score worst). "
        "The study is stored in SQLite, so rerunning the same command resumes it. Writes best.json, "
        "best_preset.py (a snippet for pgfast/presets.py), trials.csv and search.png to --out. The search "
        "ranges are pgfast.tune.SEARCH_SPACES."))
    tu.add_argument("algo", metavar="ALGO", help="vpg, trpo or ppo")
    tu.add_argument("env_id", metavar="ENV_ID", help="environment id")
    tu.add_argument("--trials", type=_positive_int, default=20, help="trials in the whole study (default 20)")
    tu.add_argument("--budget", type=_positive_int, default=50_000, help="env steps per trial and seed")
    tu.add_argument("--seeds", nargs="+", type=int, default=[0], help="seeds trained per trial (default 0)")
    tu.add_argument("--score", default="mean", choices=["mean", "worst"],
                    help="a trial's score: the mean over its seeds or its worst seed (default mean)")
    tu.add_argument("--sampler-seed", type=int, default=0,
                    help="seed of the TPE sampler (another seed explores other settings; default 0)")
    tu.add_argument("--no-prune", dest="prune", action="store_false",
                    help="run every trial to the end (no median pruning)")
    tu.add_argument("--backend", default="local", choices=["local", "ray"], help="run trials here or as Ray tasks")
    tu.add_argument("--address", default=None, help="Ray cluster address to join (default: a local Ray)")
    tu.add_argument("--workers", type=_positive_int, default=2, help="parallel trials with --backend ray")
    tu.add_argument("--max-failures", type=_positive_int, default=5,
                    help="stop after this many failed trials in a row (default 5)")
    tu.add_argument("--storage", default=None, help="Optuna storage URL (default sqlite:///OUT/tune.db; "
                    "several pgfast tune processes may share one)")
    tu.add_argument("--out", default=None, help="output directory (default runs/tune-ALGO-ENV_ID)")
