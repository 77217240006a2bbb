"""Evaluation: run a trained policy in an env (act, clip, step) and collect episode returns.

One helper, :func:`act`, turns observations into the actions an env takes: the
policy's mode (``deterministic``) or a sample from a given generator, clipped to
the bounds of a ``Box`` action space by :func:`clip_actions` (the policy itself
never clips: log-probs are those of the unclipped sample). It serves

* :func:`vector_returns`: episodes in a vector env (:meth:`pgfast.Run.evaluate`);
* :func:`play_episode`: one episode in a single gymnasium env, used by
  :func:`evaluate_reference` (``pgfast eval --reference``: the policy in gymnasium's
  own implementation of the env) and :func:`record_video` (``pgfast eval --video``).

Evaluation never touches the training state (generators, statistics).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, List, Optional, Protocol, Sequence, Tuple

import gymnasium as gym
import numpy as np
import torch

__all__ = ["clip_actions", "act", "vector_returns", "play_episode", "mean_std", "evaluate_reference",
           "record_video", "RenderError"]


class RenderError(RuntimeError):
    """The env cannot render the frames of a video (no rgb_array mode, pygame or
    an OpenGL context missing, ...)."""


class _Policy(Protocol):
    def __call__(self, obs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]: ...

    def sample(self, pi_out: torch.Tensor, deterministic: bool = False,
               generator: Optional[torch.Generator] = None) -> torch.Tensor: ...


class _Run(Protocol):
    algo: str
    env_id: str
    seed: int
    device: torch.device
    policy: Any


def clip_actions(actions: np.ndarray, space: gym.Space) -> np.ndarray:
    """``actions`` as the env takes them: clipped to a ``Box`` space's bounds (in its
    dtype); actions of other spaces are returned unchanged."""
    if isinstance(space, gym.spaces.Box):
        return np.clip(actions, space.low, space.high).astype(space.dtype)
    return actions


def act(policy: _Policy, obs: Any, deterministic: bool, generator: Optional[torch.Generator],
        space: gym.Space, device: torch.device) -> np.ndarray:
    """Actions ``[B]`` (Discrete) or ``[B, D]`` (Box, clipped) for observations ``[B, ...]``."""
    with torch.inference_mode():
        o = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=device)
        pi_out, _ = policy(o)
        a = policy.sample(pi_out, deterministic, generator).cpu().numpy()
    return clip_actions(a, space)


def mean_std(returns: Sequence[float]) -> Tuple[float, float]:
    """(mean, std) of episode returns as Python floats."""
    arr = np.asarray(returns, dtype=np.float64)
    return float(arr.mean()), float(arr.std())


def vector_returns(policy: _Policy, env: gym.vector.VectorEnv, episodes: int, deterministic: bool,
                   seed: int, device: torch.device) -> List[float]:
    """Returns of ``episodes`` full episodes in the vector ``env`` (``same_step``
    autoreset), reset with ``seed``; sampled actions come from a generator seeded
    with ``seed``.

    Episodes are split evenly over the envs and each env contributes only its
    first episodes (no bias towards short episodes).
    """
    n = env.num_envs
    quota = np.full(n, episodes // n, dtype=np.int64)
    quota[: episodes % n] += 1
    count = np.zeros(n, dtype=np.int64)
    ep_ret = np.zeros(n, dtype=np.float64)
    returns: List[float] = []
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    obs, _ = env.reset(seed=seed)
    space = env.single_action_space
    while (count < quota).any():
        obs, r, term, trunc, _ = env.step(act(policy, obs, deterministic, gen, space, device))
        ep_ret += r
        done = term | trunc
        if done.any():
            keep = done & (count < quota)
            returns.extend(ep_ret[keep].tolist())
            count += done
            ep_ret[done] = 0.0
    return returns


def play_episode(policy: _Policy, env: gym.Env, deterministic: bool, generator: Optional[torch.Generator],
                 seed: int, device: torch.device, before_step: Optional[Callable[[], None]] = None) -> float:
    """The return of one episode in the single (unbatched) gymnasium ``env`` reset
    with ``seed``; ``before_step()`` is called before every action (e.g. to render)."""
    obs, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        if before_step is not None:
            before_step()
        a = act(policy, np.asarray(obs, dtype=np.float32)[None], deterministic, generator, env.action_space,
                device)[0]
        obs, r, term, trunc, _ = env.step(a)
        total += float(r)
        done = bool(term or trunc)
    return total


def evaluate_reference(run: _Run, episodes: int = 10, deterministic: bool = True) -> Tuple[float, float]:
    """Mean and std of ``episodes`` returns of ``run``'s policy in gymnasium's
    own implementation of the env (``gymnasium.make(run.env_id)``, one env,
    stepped in Python): a cross-check of the native env used in training."""
    env = gym.make(run.env_id)
    gen = torch.Generator(device=run.device)
    gen.manual_seed(run.seed + 11)
    try:
        returns = [play_episode(run.policy, env, deterministic, gen, run.seed + 2_000_003 + ep, run.device)
                   for ep in range(int(episodes))]
    finally:
        env.close()
    return mean_std(returns)


def record_video(run: _Run, video_dir: str | Path, episodes: int = 1, deterministic: bool = True) -> List[Path]:
    """Play ``episodes`` episodes of ``run``'s policy in one gymnasium env
    rendering ``rgb_array`` frames and record them into ``video_dir``.

    Uses gymnasium's ``RecordVideo`` (MP4, needs moviepy); without moviepy the
    frames are written as GIFs with imageio. Raises :class:`RenderError` when
    the env cannot render (e.g. pygame or an OpenGL context missing). Returns
    the paths written.
    """
    vdir = Path(video_dir)
    try:
        env = gym.make(run.env_id, render_mode="rgb_array")
    except Exception as ex:
        raise RenderError(f"--video: cannot make {run.env_id} with render_mode='rgb_array' ({ex})") from None
    if "rgb_array" not in (env.metadata.get("render_modes") or []):
        env.close()
        raise RenderError(f"--video: {run.env_id} does not render rgb_array frames")
    fps = int(env.metadata.get("render_fps") or 30)
    try:
        env = gym.wrappers.RecordVideo(env, str(vdir), episode_trigger=lambda e: True,
                                       name_prefix=f"{run.algo}-{run.env_id}", disable_logger=True)
        recorder = "mp4"
    except gym.error.DependencyNotInstalled:
        recorder = "gif"  # moviepy missing: write GIFs with imageio
    vdir.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator(device=run.device)
    gen.manual_seed(run.seed + 7)
    written: List[Path] = []
    frames: List[Any] = []

    def grab() -> None:
        try:
            frames.append(np.asarray(env.render()))
        except Exception as ex:
            raise RenderError(f"--video: {run.env_id} cannot render ({type(ex).__name__}: {ex})") from None

    try:
        for ep in range(episodes):
            frames.clear()
            play_episode(run.policy, env, deterministic, gen, run.seed + 1_000_003 + ep, run.device,
                         before_step=grab if recorder == "gif" else None)
            if recorder == "gif":
                import imageio.v2 as imageio  # optional dependency, only for GIFs

                path = vdir / f"{run.algo}-{run.env_id}-episode-{ep}.gif"
                imageio.mimsave(path, frames[::2], duration=2000.0 / fps, loop=0)
                written.append(path)
    except RenderError:
        raise
    except Exception as ex:
        raise RenderError(f"--video: {run.env_id} cannot render ({type(ex).__name__}: {ex})") from None
    finally:
        env.close()
    if recorder == "mp4":
        written = sorted(vdir.glob("*.mp4"))
    return written
