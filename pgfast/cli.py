"""The ``pgfast`` command: train, eval, experiment, plot.

Examples::

    pgfast train ppo CartPole-v1 --total-timesteps 100000 --seed 1 --set learning_rate=3e-4
    pgfast train --resume runs/ppo-CartPole-v1-seed1/ckpt.pt --total-timesteps 200000
    pgfast eval runs/ppo-CartPole-v1-seed1/ckpt.pt --episodes 20 --video videos/
    pgfast experiment ppo-vs-vpg --envs CartPole-v1 --seeds 0 1 2 --total-timesteps 50000 --out runs/demo
    pgfast plot runs/demo
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

__all__ = ["main", "build_parser"]


class CLIError(Exception):
    """A user error: printed as ``pgfast: error: ...`` with exit status 2."""


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
    from pgfast import experiments

    p = argparse.ArgumentParser(
        prog="pgfast",
        description="Fast policy-gradient RL (VPG, TRPO, PPO): train agents, evaluate them, run multi-seed studies.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

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
    t.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    t.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="training device")
    t.add_argument("--set", dest="overrides", action="append", nargs="+", default=[], metavar="FIELD=VALUE",
                   help="override a Config field, e.g. --set learning_rate=3e-4 num_envs=16 (fields listed below)")
    t.add_argument("--out", default=None, help="output directory (default runs/ALGO-ENV_ID-seedS; with --resume: "
                                               "the checkpoint's directory)")
    t.add_argument("--resume", default=None, metavar="CKPT", help="checkpoint file or run directory to continue")
    t.add_argument("--checkpoint-interval", type=_nonneg_float, default=60.0,
                   help="seconds between checkpoints (0: every iteration; default 60)")
    t.add_argument("--eval-episodes", type=int, default=10, help="episodes of the final evaluation (0: none)")
    t.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard logs")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    e = sub.add_parser("eval", help="evaluate a checkpoint", description=(
        "Evaluate a saved agent for N episodes (deterministic actions by default) and print mean ± std; "
        "optionally record videos of the episodes (gymnasium's RecordVideo; needs an env that renders rgb_array)."))
    e.add_argument("ckpt", metavar="CKPT", help="checkpoint file or run directory")
    e.add_argument("--episodes", type=_positive_int, default=20, help="episodes (default 20)")
    e.add_argument("--stochastic", action="store_true", help="sample actions instead of taking the mode")
    e.add_argument("--video", default=None, metavar="DIR", help="record videos of the episodes into DIR")
    e.add_argument("--reference", action="store_true",
                   help="also evaluate in gymnasium's own implementation of the env (cross-check of native envs)")

    x = sub.add_parser("experiment", help="run a multi-seed study", description=(
        "Run a study: every (variant, env, seed) is an independent job under OUT/ENV_ID/VARIANT/seedS. A rerun "
        "skips finished jobs and resumes interrupted ones. Writes OUT/summary.csv (final evaluation return per "
        "variant and env: mean, std and 95% CI over seeds) and one OUT/ENV_ID.png per env. Experiments: "
        + "; ".join(f"{k}: {', '.join(v)}" for k, v in experiments.EXPERIMENTS.items())))
    x.add_argument("name", metavar="NAME", choices=list(experiments.EXPERIMENTS), help=", ".join(experiments.EXPERIMENTS))
    x.add_argument("--envs", nargs="+", default=list(experiments.DEFAULT_ENVS),
                   help=f"environment ids (default: {' '.join(experiments.DEFAULT_ENVS)})")
    x.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds (default: 0 1 2)")
    x.add_argument("--total-timesteps", type=_positive_int, default=None,
                   help="env steps per job (default: per-env study budget from pgfast/presets.py)")
    x.add_argument("--workers", type=_positive_int, default=None, help="parallel jobs (default: number of CPUs)")
    x.add_argument("--backend", default="local", choices=["local", "ray"], help="local process pool or Ray tasks")
    x.add_argument("--address", default=None, help="Ray cluster address to join (default: start a local Ray)")
    x.add_argument("--out", default=None, help="output directory (default runs/NAME)")
    x.add_argument("--set", dest="overrides", action="append", nargs="+", default=[], metavar="[ALGO.]FIELD=VALUE",
                   help="override a Config field for all variants (FIELD=VALUE) or one algorithm (ppo.FIELD=VALUE)")
    x.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"], help="training device (default cpu)")
    x.add_argument("--eval-episodes", type=_positive_int, default=20, help="final evaluation episodes (default 20)")
    x.add_argument("--checkpoint-interval", type=_nonneg_float, default=60.0,
                   help="seconds between checkpoints of each job (default 60)")
    x.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard logs")

    pl = sub.add_parser("plot", help="redraw a study's plots and summary", description=(
        "Redraw OUT/ENV_ID.png and OUT/summary.csv from the logs of a study directory."))
    pl.add_argument("dir", metavar="DIR", help="study output directory")
    return p


def _flatten(groups: Sequence[Sequence[str]]) -> List[str]:
    return [s for g in groups for s in g]


def _cmd_train(a) -> int:
    from pgfast import algos, experiments
    from pgfast.config import parse_overrides

    if a.resume is None:
        if a.algo is None or a.env_id is None:
            raise CLIError("train: ALGO and ENV_ID are required (or --resume CKPT)")
        try:
            algo = algos.get_algo(a.algo).name
        except ValueError as ex:
            raise CLIError(str(ex)) from None
        cfg = algos.get_preset(algo, a.env_id)
        cfg.update(parse_overrides(_flatten(a.overrides), {algo: algos.config_class(algo)})[algo])
        total = a.total_timesteps or algos.study_timesteps(a.env_id)
        out = Path(a.out or f"runs/{algo}-{a.env_id.replace('/', '_')}-seed{a.seed}")
    else:
        if a.algo is not None or a.env_id is not None:
            raise CLIError("train: with --resume, ALGO and ENV_ID come from the checkpoint; drop them")
        if _flatten(a.overrides):
            raise CLIError("train: --set cannot change a run being resumed")
        rp = Path(a.resume)
        if not rp.exists():
            raise CLIError(f"train: --resume: {rp} does not exist")
        algo, cfg, total = None, {}, a.total_timesteps
        out = Path(a.out) if a.out else (rp if rp.is_dir() else rp.parent)
    sess = experiments.TrainSession(
        out, algo=algo, env_id=a.env_id, total_timesteps=total, seed=a.seed, device=a.device, config=cfg,
        resume=a.resume, checkpoint_interval=a.checkpoint_interval, tensorboard=not a.no_tensorboard,
        progress_bar=not a.no_progress, log=lambda m: print(m, file=sys.stderr, flush=True),
    )
    try:
        run = sess.run_training()
    except experiments.Interrupted as ex:
        print(f"pgfast: {ex}; resume with: pgfast train --resume {out / experiments.CKPT_NAME}", file=sys.stderr)
        return 130
    except experiments.CheckpointError as ex:
        raise CLIError(str(ex)) from None
    print(f"checkpoint: {out / experiments.CKPT_NAME}")
    print(f"log:        {out / experiments.PROGRESS_NAME}")
    if a.eval_episodes > 0:
        mean, std = experiments._TrainerAPI.evaluate(run, a.eval_episodes)
        print(f"eval return over {a.eval_episodes} episodes: {mean:.2f} ± {std:.2f}")
    return 0


def _cmd_eval(a) -> int:
    from pgfast import experiments

    try:
        run = experiments.load_checkpoint(a.ckpt, log=lambda m: print(m, file=sys.stderr))
    except experiments.CheckpointError as ex:
        raise CLIError(str(ex)) from None
    if a.video is not None:
        paths = record_video(run, a.video, episodes=a.episodes, deterministic=not a.stochastic)
        for p in paths:
            print(f"video: {p}")
    mean, std = run.evaluate(episodes=a.episodes, deterministic=not a.stochastic)
    print(f"eval return over {a.episodes} episodes: {mean:.2f} ± {std:.2f}")
    if a.reference:
        mean, std = evaluate_reference(run, a.episodes, deterministic=not a.stochastic)
        print(f"eval return over {a.episodes} episodes in gymnasium's {run.env_id}: {mean:.2f} ± {std:.2f}")
    return 0


def _policy_action(run, obs, deterministic, gen, box_space=None):
    """The run's action for one (unbatched) observation of a single gymnasium env,
    clipped to ``box_space`` when given (continuous actions)."""
    import numpy as np
    import torch

    with torch.inference_mode():
        o = torch.as_tensor(np.asarray(obs, dtype=np.float32)[None], device=run.device)
        pi_out, _ = run.policy(o)
        act = run.policy.sample(pi_out, deterministic, gen).cpu().numpy()[0]
    if box_space is not None:
        act = np.clip(act, box_space.low, box_space.high).astype(box_space.dtype)
    return act


def record_video(run, video_dir, episodes: int = 1, deterministic: bool = True) -> List[Path]:
    """Play ``episodes`` episodes of ``run``'s policy in one gymnasium env
    rendering ``rgb_array`` frames and record them into ``video_dir``.

    Uses gymnasium's ``RecordVideo`` (MP4, needs moviepy); without moviepy the
    frames are written as GIFs with imageio. Raises CLIError when the env
    cannot render (e.g. pygame or an OpenGL context missing). Returns the
    paths written.
    """
    import gymnasium as gym
    import numpy as np
    import torch

    vdir = Path(video_dir)
    try:
        env = gym.make(run.env_id, render_mode="rgb_array")
    except Exception as ex:
        raise CLIError(f"--video: cannot make {run.env_id} with render_mode='rgb_array' ({ex})") from None
    if "rgb_array" not in (env.metadata.get("render_modes") or []):
        env.close()
        raise CLIError(f"--video: {run.env_id} does not render rgb_array frames")
    fps = int(env.metadata.get("render_fps") or 30)
    recorder = None
    try:
        env = gym.wrappers.RecordVideo(env, str(vdir), episode_trigger=lambda e: True,
                                       name_prefix=f"{run.algo}-{run.env_id}", disable_logger=True)
        recorder = "mp4"
    except gym.error.DependencyNotInstalled:
        recorder = "gif"  # moviepy missing: write GIFs with imageio
    vdir.mkdir(parents=True, exist_ok=True)
    space = env.action_space
    box = isinstance(space, gym.spaces.Box)
    gen = torch.Generator(device=run.device)
    gen.manual_seed(run.seed + 7)
    written: List[Path] = []
    try:
        for ep in range(episodes):
            obs, _ = env.reset(seed=run.seed + 1_000_003 + ep)
            frames = []
            done = False
            while not done:
                if recorder == "gif":
                    try:
                        frames.append(np.asarray(env.render()))
                    except Exception as ex:
                        raise CLIError(f"--video: {run.env_id} cannot render ({type(ex).__name__}: {ex})") from None
                act = _policy_action(run, obs, deterministic, gen, space if box else None)
                obs, _, term, trunc, _ = env.step(act)
                done = bool(term or trunc)
            if recorder == "gif":
                import imageio.v2 as imageio

                path = vdir / f"{run.algo}-{run.env_id}-episode-{ep}.gif"
                imageio.mimsave(path, frames[::2], duration=2000.0 / fps, loop=0)
                written.append(path)
    except CLIError:
        raise
    except Exception as ex:
        raise CLIError(f"--video: {run.env_id} cannot render ({type(ex).__name__}: {ex})") from None
    finally:
        env.close()
    if recorder == "mp4":
        written = sorted(vdir.glob("*.mp4"))
    return written


def evaluate_reference(run, episodes: int = 10, deterministic: bool = True):
    """Mean and std of ``episodes`` returns of ``run``'s policy in gymnasium's
    own implementation of the env (``gymnasium.make(run.env_id)``, one env,
    stepped in Python): a cross-check of the native env used in training."""
    import gymnasium as gym
    import numpy as np
    import torch

    env = gym.make(run.env_id)
    space = env.action_space
    box = isinstance(space, gym.spaces.Box)
    gen = torch.Generator(device=run.device)
    gen.manual_seed(run.seed + 11)
    returns = []
    try:
        for ep in range(int(episodes)):
            obs, _ = env.reset(seed=run.seed + 2_000_003 + ep)
            total, done = 0.0, False
            while not done:
                act = _policy_action(run, obs, deterministic, gen, space if box else None)
                obs, r, term, trunc, _ = env.step(act)
                total += float(r)
                done = bool(term or trunc)
            returns.append(total)
    finally:
        env.close()
    arr = np.asarray(returns)
    return float(arr.mean()), float(arr.std())


def _cmd_experiment(a) -> int:
    from pgfast import algos as registry
    from pgfast import experiments
    from pgfast.config import parse_overrides

    variants = experiments.EXPERIMENTS[a.name]
    algos = sorted({experiments.VARIANTS[v].algo for v in variants})
    per_algo = parse_overrides(_flatten(a.overrides), {n: registry.config_class(n) for n in algos})
    out = Path(a.out or f"runs/{a.name}")
    jobs = []
    for v in variants:
        algo = experiments.VARIANTS[v].algo
        jobs += experiments.make_jobs(
            [v], a.envs, a.seeds, out, total_timesteps=a.total_timesteps, overrides=per_algo[algo],
            device=a.device, eval_episodes=a.eval_episodes, checkpoint_interval=a.checkpoint_interval,
            tensorboard=not a.no_tensorboard,
        )
    print(f"experiment {a.name}: variants {', '.join(variants)}; envs {', '.join(a.envs)}; seeds "
          f"{' '.join(map(str, a.seeds))}; out {out}", flush=True)
    try:
        experiments.run_experiment(jobs, workers=a.workers, backend=a.backend, address=a.address)
    except experiments.Interrupted as ex:
        print(f"pgfast: {ex}", file=sys.stderr)
        print("rerun the same command to resume: finished jobs are skipped", file=sys.stderr)
        return 130
    except RuntimeError as ex:  # some jobs failed: report, draw what finished
        print(f"pgfast experiment: {ex}", file=sys.stderr)
        print("rerun the same command to retry them: finished jobs are skipped", file=sys.stderr)
        try:
            experiments.redraw(out)
        except (FileNotFoundError, ValueError):
            pass
        return 1
    experiments.redraw(out)
    return 0


def _cmd_plot(a) -> int:
    from pgfast import experiments

    try:
        experiments.redraw(a.dir)
    except (FileNotFoundError, ValueError) as ex:
        raise CLIError(str(ex)) from None
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``pgfast`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_help_target(argv))
    a = parser.parse_args(argv)
    handlers = {"train": _cmd_train, "eval": _cmd_eval, "experiment": _cmd_experiment, "plot": _cmd_plot}
    try:
        return handlers[a.command](a)
    except (CLIError, ValueError) as ex:
        print(f"pgfast {a.command}: error: {ex}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
