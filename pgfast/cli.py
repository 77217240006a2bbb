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
import re
import sys
import warnings
from pathlib import Path
from typing import Any, List, Optional, Sequence

import gymnasium as gym

from pgfast import checkpoint, study
from pgfast.checkpoint import CKPT_NAME, CheckpointError, CheckpointWriteError
from pgfast.evaluation import RenderError, evaluate_reference, record_video
from pgfast.logs import PROGRESS_NAME
from pgfast.numerics import NonFiniteError
from pgfast.rundir import RunLockedError, TrainSession
from pgfast.session import Interrupted, Terminated, command_signals, exit_status, ignore_signals_at_exit
from pgfast.trainer import load_checkpoint

from pgfast.cli_args import _help_target, build_parser  # the parser (build_parser re-exported)

__all__ = ["main", "build_parser"]


class CLIError(Exception):
    """A user error: printed as ``pgfast: error: ...`` with exit status 2."""


def _flatten(groups: Sequence[Sequence[str]]) -> List[str]:
    return [s for g in groups for s in g]


def _check_device(device: Optional[str]) -> None:
    """Refuse ``--device cuda`` without CUDA, before anything is created."""
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise CLIError("--device cuda: CUDA is not available on this machine (use --device cpu)")


def _check_env(env_id: str) -> None:
    """Refuse an unknown environment id, before anything is created."""
    import importlib

    from pgfast.envs import native_ids

    if env_id in native_ids():
        return
    name = env_id
    if ":" in env_id:  # gymnasium's "module:EnvId-vN": importing the module registers the env
        module, name = env_id.split(":", 1)
        try:
            importlib.import_module(module)
        except ImportError as ex:
            raise CLIError(f"environment {env_id!r}: cannot import module {module!r} ({ex})") from None
    try:
        gym.spec(name)
    except gym.error.Error as ex:
        raise CLIError(f"unknown environment {env_id!r}: {ex}") from None


def _cmd_train(a: argparse.Namespace) -> int:
    from pgfast import algos
    from pgfast.config import parse_overrides

    _check_device(a.device)
    algo: Optional[str] = None
    if a.algo is not None:
        try:
            algo = algos.get_algo(a.algo).name
        except ValueError as ex:
            raise CLIError(str(ex)) from None
    if a.resume is None:
        if algo is None or a.env_id is None:
            raise CLIError("train: ALGO and ENV_ID are required (or --resume CKPT)")
        _check_env(a.env_id)
        cfg, source = algos.resolve_settings(algo, a.env_id)
        overrides = parse_overrides(_flatten(a.overrides), {algo: algos.config_class(algo)})[algo]
        cfg.update(overrides)
        if overrides:
            source += "; --set " + ", ".join(f"{k}={v}" for k, v in overrides.items())
        total = a.total_timesteps or algos.study_timesteps(a.env_id)
        seed = 0 if a.seed is None else a.seed
        out = Path(a.out or f"runs/{algo}-{a.env_id.replace('/', '_').replace(':', '_')}-seed{seed}")
        device: Optional[str] = a.device or "auto"
    else:
        if _flatten(a.overrides):
            raise CLIError("train: --set cannot change a run being resumed")
        if a.seed is not None:
            raise CLIError("train: --seed cannot change a run being resumed (the run keeps its seed)")
        if a.overwrite:
            raise CLIError("train: --overwrite replaces a run and --resume continues one: give one of them")
        seed = 0
        rp = Path(a.resume)
        if not checkpoint.exists(rp):
            raise CLIError(f"train: --resume: no checkpoint at {rp}")
        cfg, total, device, source = {}, a.total_timesteps, a.device, None
        run_dir = rp if rp.is_dir() and not (rp.name == CKPT_NAME and not (rp / CKPT_NAME).exists()) else rp.parent
        out = Path(a.out) if a.out else run_dir
    sess = TrainSession(
        out, algo=algo, env_id=a.env_id, total_timesteps=total, seed=seed, device=device, config=cfg,
        resume=a.resume, checkpoint_interval=a.checkpoint_interval, tensorboard=not a.no_tensorboard,
        progress_bar=not a.no_progress, log=lambda m: print(m, file=sys.stderr, flush=True), settings=source,
        overwrite=a.overwrite, trust=a.trust_checkpoint, show_settings=True,
    )
    try:
        run = sess.run_training()
    except Interrupted as ex:
        print(f"pgfast: {ex}; resume with: pgfast train --resume {out / CKPT_NAME}", file=sys.stderr)
        return exit_status(ex.signum)
    except KeyboardInterrupt as ex:  # before training started (its guard handles signals from then on)
        print("pgfast: interrupted before training started; nothing saved", file=sys.stderr)
        return exit_status(15 if isinstance(ex, Terminated) else 2)
    except CheckpointError as ex:
        raise CLIError(str(ex)) from None
    except OSError as ex:
        raise CLIError(f"{ex.strerror or ex}: {ex.filename or out}") from None
    print(f"checkpoint: {out / CKPT_NAME}")
    print(f"log:        {out / PROGRESS_NAME}")
    if a.eval_episodes > 0:
        try:
            for det in (True, False):
                mean, std = run.evaluate(episodes=a.eval_episodes, deterministic=det)
                print(eval_line(mean, std, a.eval_episodes, det))
        except KeyboardInterrupt as ex:
            print(f"pgfast: interrupted during the final evaluation (training is complete and saved in "
                  f"{out / CKPT_NAME})", file=sys.stderr)
            return exit_status(15 if isinstance(ex, Terminated) else 2)
    return 0


def eval_line(mean: float, std: float, episodes: int, deterministic: bool, where: str = "") -> str:
    """One labelled evaluation line: which actions, how many episodes, and that ± is over episodes."""
    kind = "deterministic (mode)" if deterministic else "stochastic (sampled)"
    return f"eval {kind}{where}: {mean:.2f} ± {std:.2f} (mean ± std over {episodes} episodes)"


def _one_torch_thread() -> None:
    """One torch thread unless OMP_NUM_THREADS asks otherwise: evaluation runs one small forward per
    step, where more threads only wait on each other (and on a busy machine, much longer)."""
    import os

    import torch

    if not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(1)


def _cmd_eval(a: argparse.Namespace) -> int:
    _check_device(a.device)
    _one_torch_thread()
    try:
        run = load_checkpoint(a.ckpt, log=lambda m: print(m, file=sys.stderr), device=a.device,
                              trust=a.trust_checkpoint)
    except CheckpointError as ex:
        raise CLIError(str(ex)) from None
    if a.video is not None:
        try:
            record_video(run, a.video, episodes=a.episodes, deterministic=not a.stochastic, gif=a.gif,
                         log=lambda m: print(m, flush=True))  # each episode as it starts, each file written
        except RenderError as ex:
            raise CLIError(str(ex)) from None
    mean, std = run.evaluate(episodes=a.episodes, deterministic=not a.stochastic)
    print(eval_line(mean, std, a.episodes, not a.stochastic))
    if a.reference:
        mean, std = evaluate_reference(run, a.episodes, deterministic=not a.stochastic)
        print(eval_line(mean, std, a.episodes, not a.stochastic, f" in gymnasium's {run.env_id}"))
    return 0


def _cmd_variance(a: argparse.Namespace, envs: Sequence[str]) -> int:
    from pgfast.study import variance

    out = Path(a.out or "runs/variance")
    settings = variance.QUICK if a.quick else variance.FULL
    print(f"experiment variance{' (quick)' if a.quick else ''}: envs {', '.join(envs)}; seed {a.seeds[0]}; "
          f"out {out}", flush=True)
    variance.run_variance(envs, out, settings, seed=a.seeds[0], log=lambda m: print(m, flush=True))
    print(f"table: {out / 'variance.csv'}")
    return 0


def _check_needs(name: str) -> None:
    """Refuse an experiment whose optional packages are missing, before anything is created
    (found with importlib's finder: nothing is imported)."""
    import importlib.util

    for module in study.EXPERIMENT_NEEDS.get(name, ()):
        if importlib.util.find_spec(module) is None:
            extra = _EXTRAS.get(module, module)
            raise CLIError(f"the {name} experiment needs the {module!r} package: pip install 'pgfast-rl[{extra}]'")


def _cmd_experiment(a: argparse.Namespace) -> int:
    from pgfast import algos as registry
    from pgfast.config import parse_overrides

    _check_needs(a.name)
    envs = list(a.envs) if a.envs is not None else list(study.experiment_envs(a.name))
    total_timesteps = a.total_timesteps if a.total_timesteps is not None else study.experiment_timesteps(a.name)
    for env_id in envs:
        _check_env(env_id)
    if a.name == "variance":
        return _cmd_variance(a, envs)
    variants = study.EXPERIMENTS[a.name]
    algos = sorted({study.VARIANTS[v].algo for v in variants})
    per_algo = parse_overrides(_flatten(a.overrides), {n: registry.config_class(n) for n in algos})
    out = Path(a.out or f"runs/{a.name}")
    jobs = []
    for v in variants:
        algo = study.VARIANTS[v].algo
        jobs += study.make_jobs(
            [v], envs, a.seeds, out, total_timesteps=total_timesteps, overrides=per_algo[algo],
            device=a.device, eval_episodes=a.eval_episodes, checkpoint_interval=a.checkpoint_interval,
            tensorboard=not a.no_tensorboard,
        )
    print(f"experiment {a.name}: variants {', '.join(variants)}; envs {', '.join(envs)}; seeds "
          f"{' '.join(map(str, a.seeds))}; out {out}", flush=True)
    _check_device(a.device)
    try:
        study.run_experiment(jobs, workers=a.workers, backend=a.backend, address=a.address,
                             stack_seeds=a.stack_seeds)
    except Interrupted as ex:
        print(f"pgfast: {ex}", file=sys.stderr)
        print("rerun the same command to resume: finished jobs are skipped", file=sys.stderr)
        return exit_status(ex.signum)
    except KeyboardInterrupt as ex:  # a second Ctrl-C (or SIGTERM) while the jobs were stopping
        print("pgfast: interrupted again: stopped waiting for the jobs (each saves only a consistent state); "
              "rerun the same command to resume", file=sys.stderr)
        return exit_status(15 if isinstance(ex, Terminated) else 2)
    except RuntimeError as ex:  # some jobs failed: report, draw what finished
        print(f"pgfast experiment: {ex}", file=sys.stderr)
        print("rerun the same command to retry them: finished jobs are skipped", file=sys.stderr)
        try:
            study.redraw(out)
        except (FileNotFoundError, ValueError):
            pass
        return 1
    study.redraw(out)
    return 0


def _cmd_plot(a: argparse.Namespace) -> int:
    try:
        study.redraw(a.dir)
    except (FileNotFoundError, ValueError) as ex:
        raise CLIError(str(ex)) from None
    return 0


def _cmd_tune(a: argparse.Namespace) -> int:
    from pgfast import tune

    _check_env(a.env_id)
    out = Path(a.out or f"runs/tune-{a.algo.lower()}-{a.env_id.replace('/', '_').replace(':', '_')}")
    try:
        tune.tune(a.algo, a.env_id, trials=a.trials, budget=a.budget, out=out, seeds=a.seeds, backend=a.backend,
                  address=a.address, storage=a.storage, workers=a.workers, score=a.score,
                  sampler_seed=a.sampler_seed, prune=a.prune, max_failures=a.max_failures,
                  log=lambda m: print(m, file=sys.stderr, flush=True))
    except tune.TuneFailed as ex:
        print(f"pgfast tune: {ex}", file=sys.stderr)
        return 1
    return 0


# Import names of optional packages -> the pgfast-rl extra that installs them.
_EXTRAS = {"mujoco": "mujoco", "matplotlib": "plot", "tensorboard": "tensorboard", "ray": "ray", "optuna": "tune",
           "pygame": "video", "imageio": "video", "imageio_ffmpeg": "video", "Box2D": "box2d"}


def _message(ex: BaseException, command: str) -> str:
    """The error text for ``pgfast COMMAND: error: ...``: without a repeated ``COMMAND:`` prefix, and for a
    missing optional package that names no fix, the extra that installs it."""
    text = str(ex)
    if text.startswith(f"{command}: "):
        text = text[len(command) + 2:]
    if isinstance(ex, gym.error.DependencyNotInstalled):  # gymnasium's hint names its own extras
        text = re.sub(r"gymnasium\[(mujoco|box2d)\]", r"pgfast-rl[\1]", text)
    name = getattr(ex, "name", None)
    if isinstance(ex, ImportError) and name and "pip install" not in text:
        extra = _EXTRAS.get(name.split(".")[0])
        if extra is not None:
            text += f' (pip install "pgfast-rl[{extra}]")'
    return text


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def format_warning(message: Any, category: Any, filename: str, lineno: int, line: Optional[str] = None) -> str:
    """A warning as the command prints it: one line, ``warning: TEXT (Category)``, without
    the ANSI colour codes gymnasium puts into its messages (they garble log files)."""
    text = " ".join(_ANSI.sub("", str(message)).split())
    return f"warning: {text} ({getattr(category, '__name__', category)})\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``pgfast`` console script; returns the exit status."""
    old_format, old_hook = warnings.formatwarning, sys.unraisablehook
    warnings.formatwarning = format_warning
    sys.unraisablehook = _unraisable
    try:
        return _main(argv)
    finally:
        warnings.formatwarning, sys.unraisablehook = old_format, old_hook


def _unraisable(info: Any) -> None:
    """A Ctrl-C (or SIGTERM) that lands inside a destructor cannot propagate; the command
    reports the interrupt once anyway, so it is not also printed as "Exception ignored"."""
    if isinstance(info.exc_value, KeyboardInterrupt):
        return
    sys.__unraisablehook__(info)


def _main(argv: Optional[Sequence[str]]) -> int:
    if argv is None:  # the console script: a signal landing while the process exits is not reported
        import atexit

        atexit.register(ignore_signals_at_exit)
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_help_target(argv))
    a = parser.parse_args(argv)
    handlers = {"train": _cmd_train, "eval": _cmd_eval, "experiment": _cmd_experiment, "plot": _cmd_plot,
                "tune": _cmd_tune}
    try:
        with command_signals():
            return handlers[a.command](a)
    except (CLIError, ValueError, CheckpointError, gym.error.Error) as ex:
        print(f"pgfast {a.command}: error: {_message(ex, a.command)}", file=sys.stderr)
        return 2
    except (NonFiniteError, CheckpointWriteError, RunLockedError, MemoryError) as ex:
        # a run that cannot go on: one line, exit 1, the last checkpoint on disk intact
        print(f"pgfast {a.command}: error: {str(ex) or type(ex).__name__}", file=sys.stderr)
        return 1
    except ImportError as ex:  # an optional package is missing: its install hint, one line, in every command
        print(f"pgfast {a.command}: error: {_message(ex, a.command)}", file=sys.stderr)
        return 2
    except OSError as ex:
        print(f"pgfast {a.command}: error: {ex.strerror or ex}: {ex.filename or ''}", file=sys.stderr)
        return 2
    except Terminated:
        print(f"pgfast {a.command}: terminated (SIGTERM)", file=sys.stderr)
        return exit_status(15)
    except KeyboardInterrupt:
        hint = ("; the unfinished trial does not count: rerun the same command to resume the search"
                if a.command == "tune" else "")
        print(f"pgfast {a.command}: interrupted{hint}", file=sys.stderr)
        return exit_status(2)


if __name__ == "__main__":
    sys.exit(main())
