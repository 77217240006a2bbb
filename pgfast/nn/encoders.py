"""Observation encoders of :class:`pgfast.nn.modular.ModularActorCritic`.

* :class:`FlatEncoder`: observations ``[B, *shape]`` -> ``[B, prod(shape)]`` float32, times
  a constant ``scale`` (1/255 for images read by an MLP), optionally normalised by running
  statistics (never for images).
* :class:`NatureCNN`: the convolutional torso of Mnih et al. (2015), "Human-level control
  through deep reinforcement learning": 32 8x8 filters stride 4, 64 4x4 stride 2, 64 3x3
  stride 1 (ReLU after each), then a 512-unit ReLU layer. Images (uint8 values stored as
  float32, ``[B, H, W, C]`` or ``[B, C, H, W]``) are scaled to [0, 1] first. Images need at
  least 36x36 pixels (the three convolutions leave 1x1 of a 36x36 input).
"""

from __future__ import annotations

import math
from typing import Sequence, Tuple

import torch
from torch import nn

from pgfast.nn.normalization import RunningMeanStd

__all__ = ["FlatEncoder", "NatureCNN", "MIN_IMAGE_SIZE", "image_layout"]

MIN_IMAGE_SIZE = 36
"""Smallest height and width :class:`NatureCNN` reads."""


class FlatEncoder(nn.Module):
    """``[B, *shape]`` -> ``[B, prod(shape)]`` (integers as float32) times ``scale``, then normalised by
    ``obs_rms`` (a :class:`pgfast.nn.RunningMeanStd`, updated by the trainer) if given."""

    def __init__(self, shape: Sequence[int], scale: float = 1.0, norm_obs: bool = False,
                 clip_obs: float = 10.0) -> None:
        super().__init__()
        self.out_dim = int(math.prod(shape))
        self.scale = float(scale)
        self.obs_rms = RunningMeanStd((self.out_dim,), clip=clip_obs) if norm_obs else None

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Features ``[B, out_dim]`` of observations ``[B, *shape]``."""
        x = obs.reshape(obs.shape[0], -1)
        if not x.is_floating_point():
            x = x.to(torch.float32)
        if self.scale != 1.0:
            x = x * self.scale
        if self.obs_rms is not None:
            x = self.obs_rms.normalize(x)
        return x


def image_layout(shape: Sequence[int]) -> Tuple[int, int, int, bool]:
    """``(C, H, W, channels_last)`` of a 3-D image shape: channels-first (``CxHxW``) when
    the first axis is the smallest and at most 4 long, else channels-last (``HxWxC``)."""
    if len(shape) != 3:
        raise ValueError(f"an image has 3 axes (HxWxC or CxHxW), got shape {tuple(shape)}")
    a, b, c = (int(s) for s in shape)
    if a <= 4 and a < min(b, c):
        return a, b, c, False
    return c, a, b, True


class NatureCNN(nn.Module):
    """The Nature-DQN convolutional torso: images ``[B, H, W, C]`` (``channels_last``) or
    ``[B, C, H, W]`` with values in [0, 255] -> features ``[B, 512]``.

    Orthogonal init with gain sqrt(2) and zero biases when ``ortho_init`` (as the PPO
    implementation details do for Atari)."""

    def __init__(self, shape: Sequence[int], ortho_init: bool = True, features: int = 512) -> None:
        super().__init__()
        c, h, w, last = image_layout(shape)
        if min(h, w) < MIN_IMAGE_SIZE:
            raise ValueError(f"the CNN encoder needs images of at least {MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE} "
                             f"pixels, got {h}x{w} (shape {tuple(shape)}); use encoder='mlp'")
        self.channels_last = last
        self.out_dim = int(features)
        self.convs = nn.Sequential(
            nn.Conv2d(c, 32, 8, stride=4), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(),
            nn.Flatten())
        with torch.no_grad():
            n_flat = int(self.convs(torch.zeros(1, c, h, w)).shape[1])
        self.fc = nn.Linear(n_flat, self.out_dim)
        if ortho_init:
            for m in list(self.convs) + [self.fc]:
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    nn.init.orthogonal_(m.weight, math.sqrt(2.0))
                    nn.init.zeros_(m.bias)  # type: ignore[arg-type]  # Conv2d/Linear have biases here

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Features ``[B, 512]`` of images ``[B, H, W, C]`` / ``[B, C, H, W]`` in [0, 255]."""
        x = obs.to(self.fc.weight.dtype) * (1.0 / 255.0)
        if self.channels_last:
            x = x.permute(0, 3, 1, 2)
        return torch.relu(self.fc(self.convs(x)))
