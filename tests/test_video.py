"""Headless videos (pgfast eval --video): MP4 and GIF of a short CartPole episode where
pygame and imageio-ffmpeg are present, a few MuJoCo frames where EGL or OSMesa is,
and the error that names the missing system package."""

import importlib.util
import os

import numpy as np
import pytest

import pgfast
from pgfast import evaluation as E

_HAVE_CLASSIC = all(importlib.util.find_spec(m) for m in ("pygame", "imageio", "imageio_ffmpeg"))


_NO_CLASSIC = 'needs pygame, imageio and imageio-ffmpeg (pip install "pgfast-rl[video]")'


@pytest.mark.skipif(not _HAVE_CLASSIC, reason=_NO_CLASSIC)
def test_cartpole_mp4_and_gif(tmp_path):
    run = pgfast.train("ppo", "CartPole-v1", total_timesteps=64, seed=0, num_envs=2, num_steps=32)
    paths = E.record_video(run, tmp_path, episodes=1, gif=True)
    assert [p.suffix for p in paths] == [".mp4", ".gif"]
    assert all(p.stat().st_size > 0 for p in paths)
    import imageio.v2 as imageio

    frames = imageio.mimread(paths[1])
    assert len(frames) >= 2 and frames[0].shape[1] <= 240


def test_gif_frames_downscale_and_subsample():
    frames = [np.zeros((400, 600, 3), np.uint8)] * 100
    small, fps = E.gif_frames(frames, fps=50, max_width=240, max_fps=25, max_seconds=1.0)
    assert fps == 25 and len(small) == 25 and small[0].shape == (134, 200, 3)


def _mujoco_renderer():
    if importlib.util.find_spec("mujoco") is None:
        return "mujoco is not installed"
    try:
        E.headless_mujoco_gl()
    except E.RenderError as ex:
        return str(ex)
    return None


@pytest.mark.skipif(_mujoco_renderer() is not None, reason=f"no MuJoCo renderer: {_mujoco_renderer()}")
def test_mujoco_renders_a_few_frames_headless():
    import gymnasium as gym

    env = gym.make("HalfCheetah-v5", render_mode="rgb_array", width=160, height=120)
    try:
        env.reset(seed=0)
        frames = []
        for _ in range(3):
            env.step(env.action_space.sample())
            frames.append(env.render())
    finally:
        env.close()
    assert frames[0].shape == (120, 160, 3) and frames[-1].std() > 0


def test_missing_opengl_names_the_packages(monkeypatch):
    import ctypes.util

    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    with pytest.raises(E.RenderError, match="libegl1.*libosmesa6"):
        E.headless_mujoco_gl()
    assert "MUJOCO_GL" not in os.environ


def test_missing_pygame_hint():
    msg = E._render_hint("CartPole-v1", ImportError("pygame is not installed"))
    assert 'pip install "pgfast-rl[video]"' in msg
