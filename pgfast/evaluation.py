"""Evaluation: run a trained policy in an env (act, clip, step) and collect episode returns.

One helper, :func:`act`, turns observations into the actions an env takes: the
policy's mode (``deterministic``) or a sample from a given generator, clipped to
the bounds of a ``Box`` action space by :func:`pgfast.spaces.clip_actions` (re-exported
here; the policy itself never clips: log-probs are those of the unclipped sample). It serves

* :func:`vector_returns`: episodes in a vector env (:meth:`pgfast.Run.evaluate`);
* :func:`play_episode`: one episode in a single gymnasium env, used by
  :func:`evaluate_reference` (``pgfast eval --reference``: the policy in gymnasium's
  own implementation of the env) and :func:`record_video` (``pgfast eval --video``).

Evaluation never touches the training state (generators, statistics). Episodes end at the
env's time limit; in an env without one (its spec has no ``max_episode_steps``) an episode
is cut after ``max_steps`` steps (default :data:`EVAL_MAX_STEPS`, 10 000) and one
:class:`EvalStepLimitWarning` says so, so an evaluation always returns.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, Callable, List, Optional, Protocol, Sequence, Tuple

import gymnasium as gym
import numpy as np
import torch

from pgfast.spaces import batch_flatten, clip_actions

__all__ = ["clip_actions", "act", "policy_input", "vector_returns", "play_episode", "mean_std", "evaluate_reference",
           "record_video", "RenderError", "headless_mujoco_gl", "gif_frames", "EVAL_MAX_STEPS",
           "EvalStepLimitWarning", "time_limit"]

EVAL_MAX_STEPS = 10_000
"""Default length at which an evaluation episode in an env without a time limit is cut
(gymnasium's own limits are 200-1600 steps)."""


class EvalStepLimitWarning(UserWarning):
    """Evaluation episodes were cut at ``max_steps`` because the env has no time limit."""


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


def act(policy: _Policy, obs: Any, deterministic: bool, generator: Optional[torch.Generator],
        space: gym.Space, device: torch.device) -> np.ndarray:
    """Actions ``[B]`` (Discrete) or ``[B, D]`` (Box, clipped) for observations ``[B, ...]``."""
    with torch.inference_mode():
        o = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=device)
        pi_out, _ = policy(o)
        a = policy.sample(pi_out, deterministic, generator).cpu().numpy()
    return clip_actions(a, space)


def policy_input(obs: Any, space: gym.Space) -> np.ndarray:
    """One observation of a single env as the policy reads it, a batch of one: a Box
    observation as is (images keep their axes), any other space flattened as training
    flattens it (:func:`pgfast.spaces.batch_flatten`, ``gymnasium.spaces.flatten``'s order)."""
    if isinstance(space, gym.spaces.Box):
        return np.asarray(obs, dtype=np.float32)[None]
    return batch_flatten(space, obs, 1)


def time_limit(env: Any) -> Optional[int]:
    """The env's time limit (``env.spec.max_episode_steps``; for a vector env, that of each
    copy), or None when it has none."""
    limit = getattr(getattr(env, "spec", None), "max_episode_steps", None)
    return None if limit is None else int(limit)


def _step_cap(env: Any, max_steps: Optional[int]) -> Optional[int]:
    """``max_steps`` (checked) where the env has no time limit of its own, else None."""
    if max_steps is not None and (not isinstance(max_steps, (int, np.integer)) or max_steps < 1):
        raise ValueError(f"max_steps must be a positive int or None, got {max_steps!r}")
    return None if max_steps is None or time_limit(env) is not None else int(max_steps)


def _warn_cut(env: Any, cut: int, cap: int) -> None:
    name = getattr(getattr(env, "spec", None), "id", None) or type(env).__name__
    warnings.warn(f"{name} has no time limit: {cut} evaluation episode(s) cut at {cap} steps "
                  f"(eval_max_steps)", EvalStepLimitWarning, stacklevel=3)


def mean_std(returns: Sequence[float]) -> Tuple[float, float]:
    """(mean, std) of episode returns as Python floats."""
    arr = np.asarray(returns, dtype=np.float64)
    return float(arr.mean()), float(arr.std())


def vector_returns(policy: _Policy, env: gym.vector.VectorEnv, episodes: int, deterministic: bool,
                   seed: int, device: torch.device, max_steps: Optional[int] = EVAL_MAX_STEPS) -> List[float]:
    """Returns of ``episodes`` full episodes in the vector ``env`` (``same_step``
    autoreset), reset with ``seed``; sampled actions come from a generator seeded
    with ``seed``.

    Episodes are split evenly over the envs and each env contributes only its
    first episodes (no bias towards short episodes).

    ``max_steps``: where the env has no time limit (:func:`time_limit`), an episode still
    running after ``max_steps`` steps ends there (its return so far counts) and one
    :class:`EvalStepLimitWarning` says how many were cut. The rest of a cut trajectory
    does not count; once every env that still owes episodes is in such a rest, all envs
    are reset, so every counted episode starts from a reset. ``None``: no cap.
    """
    cap = _step_cap(env, max_steps)
    n = env.num_envs
    quota = np.full(n, episodes // n, dtype=np.int64)
    quota[: episodes % n] += 1
    count = np.zeros(n, dtype=np.int64)
    ep_ret = np.zeros(n, dtype=np.float64)
    steps = np.zeros(n, dtype=np.int64)
    live = np.ones(n, dtype=bool)  # the env's current episode started at a reset (it counts)
    cut_total = 0
    returns: List[float] = []
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    obs, _ = env.reset(seed=seed)
    space = env.single_action_space
    while (count < quota).any():
        obs, r, term, trunc, _ = env.step(act(policy, obs, deterministic, gen, space, device))
        ep_ret += r
        steps += 1
        done = term | trunc
        cut = live & ~done & (steps >= cap) if cap is not None else np.zeros(n, dtype=bool)
        ended = (done & live) | cut
        if ended.any():
            keep = ended & (count < quota)
            returns.extend(ep_ret[keep].tolist())
            count += ended
            cut_total += int((cut & keep).sum())
        if done.any() or cut.any():
            live = (live & ~cut) | done  # after an end the autoreset starts a fresh episode
            ep_ret[done | cut] = 0.0
            steps[done | cut] = 0
            owing = count < quota
            if owing.any() and not live[owing].any():  # every env that owes episodes idles in a cut one
                obs, _ = env.reset()
                live[:] = True
                ep_ret[:] = 0.0
                steps[:] = 0
    if cut_total:
        _warn_cut(env, cut_total, int(cap or 0))
    return returns


def play_episode(policy: _Policy, env: gym.Env, deterministic: bool, generator: Optional[torch.Generator],
                 seed: int, device: torch.device, before_step: Optional[Callable[[], None]] = None,
                 max_steps: Optional[int] = EVAL_MAX_STEPS) -> float:
    """The return of one episode in the single (unbatched) gymnasium ``env`` reset
    with ``seed``; ``before_step()`` is called before every action (e.g. to render).
    Observations reach the policy as in training (:func:`policy_input`).
    In an env without a time limit the episode ends after ``max_steps`` steps (None: no
    cap) with an :class:`EvalStepLimitWarning`."""
    cap = _step_cap(env, max_steps)
    obs, _ = env.reset(seed=seed)
    total, done, steps = 0.0, False, 0
    while not done:
        if before_step is not None:
            before_step()
        a = act(policy, policy_input(obs, env.observation_space), deterministic, generator,
                env.action_space, device)[0]
        obs, r, term, trunc, _ = env.step(a)
        total += float(r)
        steps += 1
        done = bool(term or trunc)
        if not done and cap is not None and steps >= cap:
            _warn_cut(env, 1, cap)
            break
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


_MUJOCO_GL_PACKAGES = {"egl": "libegl1", "osmesa": "libosmesa6"}
"""Debian/Ubuntu package that provides each headless MuJoCo renderer."""


def _is_mujoco(env_id: str) -> bool:
    try:
        spec = gym.spec(env_id)
    except Exception:
        return False
    return "mujoco" in str(spec.entry_point)


def headless_mujoco_gl() -> str:
    """Choose the MuJoCo OpenGL backend for headless rendering and set ``MUJOCO_GL``:
    the user's ``MUJOCO_GL`` if set, else ``glfw`` with a display, else ``egl`` or
    ``osmesa``, whichever library is present. Raises :class:`RenderError` naming the
    system packages when neither is."""
    import ctypes.util
    import os

    chosen = os.environ.get("MUJOCO_GL")
    if chosen:
        return chosen
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return "glfw"
    for backend, lib in (("egl", "EGL"), ("osmesa", "OSMesa")):
        if ctypes.util.find_library(lib):
            os.environ["MUJOCO_GL"] = backend
            os.environ.setdefault("PYOPENGL_PLATFORM", backend)
            return backend
    raise RenderError("--video: MuJoCo needs an OpenGL context to render without a display: install EGL "
                      "(Debian/Ubuntu: apt-get install libegl1) or OSMesa (apt-get install libosmesa6), "
                      "then set MUJOCO_GL=egl or MUJOCO_GL=osmesa")


def _render_hint(env_id: str, ex: BaseException) -> str:
    text = f"{type(ex).__name__}: {ex}"
    if "pygame" in text.lower():
        return f"{text}; install the classic-control renderer with: pip install \"pgfast-rl[video]\" (pygame)"
    if _is_mujoco(env_id):
        import os

        gl = os.environ.get("MUJOCO_GL", "")
        pkg = _MUJOCO_GL_PACKAGES.get(gl, "libegl1 (EGL) or libosmesa6 (OSMesa)")
        return (f"{text}; MuJoCo renders headless through EGL or OSMesa (MUJOCO_GL={gl or 'unset'}): "
                f"install {pkg} (Debian/Ubuntu) and set MUJOCO_GL=egl or MUJOCO_GL=osmesa")
    return text


def gif_frames(frames: Sequence[np.ndarray], fps: float, max_width: int = 240, max_fps: float = 25.0,
               max_seconds: float = 10.0) -> Tuple[List[Any], float]:
    """Frames for a small GIF: every k-th frame (at most ``max_fps``), at most
    ``max_seconds`` long, each downscaled by an integer stride to at most
    ``max_width`` pixels wide. Returns ``(frames, gif_fps)``."""
    step = max(1, int(math.ceil(fps / max_fps)))
    gif_fps = fps / step
    keep = list(frames[::step])[: max(1, int(max_seconds * gif_fps))]
    out: List[Any] = []
    for f in keep:
        stride = max(1, int(math.ceil(f.shape[1] / max_width)))
        out.append(np.ascontiguousarray(f[::stride, ::stride]))
    return out, gif_fps


def _even(frame: np.ndarray) -> np.ndarray:
    """The frame padded (edge pixels) to even height and width, what H.264 in yuv420p needs, so
    imageio neither resizes it nor warns about its macro_block_size."""
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2)) + ((0, 0),) * (frame.ndim - 2), mode="edge")


def _headless_pygame() -> None:
    """Without a display, SDL's dummy video driver: pygame then draws off-screen without printing
    "error: XDG_RUNTIME_DIR is invalid or not set" (an SDL message) for every env made."""
    import os

    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


def record_video(run: _Run, video_dir: str | Path, episodes: int = 1, deterministic: bool = True,
                 gif: bool = False, log: Optional[Callable[[str], None]] = None) -> List[Path]:
    """Play ``episodes`` episodes of ``run``'s policy in one gymnasium env rendering
    ``rgb_array`` frames, headless, and write each as ``VIDEO_DIR/ALGO-ENV-episode-K.mp4``
    (imageio with imageio-ffmpeg), plus a small GIF of it with ``gif=True``
    (see :func:`gif_frames`).

    Classic-control envs render with pygame (``pip install "pgfast-rl[video]"``);
    MuJoCo envs through EGL or OSMesa (:func:`headless_mujoco_gl`). Raises
    :class:`RenderError` with the missing package when the env cannot render.
    Returns the paths written; ``log`` (if given) gets one line as each episode starts and
    one per file written.
    """
    vdir = Path(video_dir)
    try:
        import imageio.v2 as imageio
    except ImportError:
        raise RenderError('--video: writing videos needs imageio and imageio-ffmpeg: '
                          'pip install "pgfast-rl[video]"') from None
    if _is_mujoco(run.env_id):
        headless_mujoco_gl()
    else:
        _headless_pygame()
    try:
        env = gym.make(run.env_id, render_mode="rgb_array")
    except Exception as ex:
        raise RenderError(f"--video: cannot make {run.env_id} with render_mode='rgb_array' "
                          f"({_render_hint(run.env_id, ex)})") from None
    if "rgb_array" not in (env.metadata.get("render_modes") or []):
        env.close()
        raise RenderError(f"--video: {run.env_id} does not render rgb_array frames")
    fps = float(env.metadata.get("render_fps") or 30)
    gen = torch.Generator(device=run.device)
    gen.manual_seed(run.seed + 7)
    written: List[Path] = []
    frames: List[Any] = []

    def grab() -> None:
        try:
            frames.append(np.asarray(env.render()))
        except Exception as ex:
            raise RenderError(f"--video: {run.env_id} cannot render ({_render_hint(run.env_id, ex)})") from None

    try:
        for ep in range(episodes):
            if log is not None:
                log(f"video: recording episode {ep + 1} of {episodes}")
            frames.clear()
            play_episode(run.policy, env, deterministic, gen, run.seed + 1_000_003 + ep, run.device,
                         before_step=grab)
            grab()  # the final state
            vdir.mkdir(parents=True, exist_ok=True)
            stem = f"{run.algo}-{run.env_id.replace('/', '_')}-episode-{ep}"
            path = vdir / f"{stem}.mp4"
            try:
                imageio.mimwrite(path, [_even(f) for f in frames], fps=fps, codec="libx264", quality=7,
                                 macro_block_size=2)
            except Exception as ex:
                raise RenderError(f"--video: cannot write {path} ({type(ex).__name__}: {ex}); MP4 needs "
                                  f'imageio-ffmpeg: pip install "pgfast-rl[video]"') from None
            written.append(path)
            if log is not None:
                log(f"video: {path}")
            if gif:
                small, gif_fps = gif_frames(frames, fps)
                gpath = vdir / f"{stem}.gif"
                imageio.mimsave(gpath, small, duration=1000.0 / gif_fps, loop=0)
                written.append(gpath)
                if log is not None:
                    log(f"video: {gpath}")
    except RenderError:
        raise
    except Exception as ex:
        raise RenderError(f"--video: {run.env_id} cannot render ({_render_hint(run.env_id, ex)})") from None
    finally:
        env.close()
    return written
