"""The actor-critic of the torch path for every space the C++ paths do not serve.

:class:`pgfast.nn.ActorCritic` (separate actor and critic MLPs, read by the C++
rollout and update) serves flat Box observations with Discrete/Box actions.
:class:`ModularActorCritic` serves the rest, with autograd only:

    obs [B, *obs_shape] -> encoder -> features -> actor MLP -> head (pgfast.nn.heads)
                                   \\-> features -> critic MLP -> value [B]

* Encoder ``"mlp"``: :class:`pgfast.nn.encoders.FlatEncoder` (flatten; images scaled to
  [0, 1]; running observation normalisation if ``norm_obs``, never for images); the
  actor and critic MLPs have ``actor_hidden_sizes`` / ``critic_hidden_sizes`` (each
  ``hidden_sizes`` where None).
* Encoder ``"cnn"``: :class:`pgfast.nn.encoders.NatureCNN` (512 features); actor and
  critic are linear layers on the features (the Nature/Atari network). With
  ``share_encoder`` actor and critic read one CNN, trained by PPO's joint loss; VPG and
  TRPO train it with the policy (it belongs to the actor's parameters) and fit the value
  head on its detached features (:meth:`ModularActorCritic.value`). Without it each has
  its own CNN.

It offers the interface of :class:`pgfast.nn.ActorCritic` that the collector, the
algorithms' torch paths and evaluation use (``forward``, ``value``, ``evaluate_actions``,
``log_prob``, ``entropy``, ``kl``, ``sample``, ``rollout_noise``, ``sample_with_noise``,
the actor parameter vector of TRPO).
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import torch
from torch import nn

from pgfast.nn.encoders import FlatEncoder, NatureCNN
from pgfast.nn.heads import PolicyBase, make_head
from pgfast.nn.networks import mlp
from pgfast.nn.normalization import RunningMeanStd

__all__ = ["ModularActorCritic"]


class ModularActorCritic(PolicyBase):
    """Encoder + actor and critic networks + action head (see the module docstring).

    Args:
        obs_shape: shape of one observation as stored in the rollout buffer (a flattened
            vector for Discrete/MultiDiscrete/MultiBinary/Tuple/Dict observations, the image
            shape for images).
        action_space: Discrete, 1-D Box, MultiDiscrete or MultiBinary.
        hidden_sizes, activation, ortho_init, log_std_init: as :class:`pgfast.nn.ActorCritic`
            (``hidden_sizes`` and ``activation`` apply to the MLP encoder's networks).
        actor_hidden_sizes, critic_hidden_sizes: as :class:`pgfast.nn.ActorCritic` (MLP
            encoder; the CNN's networks are linear).
        norm_obs, clip_obs: running observation normalisation (MLP encoder, not images).
        encoder: "mlp" or "cnn".
        share_encoder: one CNN for actor and critic ("cnn" only; "mlp" has no parameters).
        image: the observations are images (uint8 values): scaled to [0, 1], never normalised.
    """

    def __init__(self, obs_shape: Sequence[int], action_space: Any,
                 hidden_sizes: Sequence[int] = (64, 64), activation: str = "tanh",
                 ortho_init: bool = True, log_std_init: float = 0.0, norm_obs: bool = False,
                 clip_obs: float = 10.0, encoder: str = "mlp", share_encoder: bool = True,
                 image: bool = False, actor_hidden_sizes: Optional[Sequence[int]] = None,
                 critic_hidden_sizes: Optional[Sequence[int]] = None) -> None:
        """Build the encoder(s), the actor and critic networks and the action head."""
        super().__init__()
        if encoder not in ("mlp", "cnn"):
            raise ValueError(f"encoder must be 'mlp' or 'cnn', got {encoder!r}")
        if image and norm_obs:
            raise ValueError("norm_obs does not apply to image observations (they are scaled to [0, 1]); "
                             "set norm_obs=False")
        self.head = make_head(action_space)
        self.continuous = self.head.continuous
        self.out_dim = self.head.out_dim
        self.obs_shape = tuple(int(s) for s in obs_shape)
        self.encoder_kind = encoder
        self.activation = activation
        self.shared = bool(share_encoder) and encoder == "cnn"
        self.pi_encoder: nn.Module
        self.v_encoder: Optional[nn.Module] = None
        if encoder == "cnn":
            cnn = NatureCNN(self.obs_shape, ortho_init)
            self.pi_encoder, feat = cnn, cnn.out_dim
            if not self.shared:
                self.v_encoder = NatureCNN(self.obs_shape, ortho_init)
            hs_a: Tuple[int, ...] = ()
            hs_c: Tuple[int, ...] = ()
        else:
            flat = FlatEncoder(self.obs_shape, 1.0 / 255.0 if image else 1.0, norm_obs, clip_obs)
            self.pi_encoder, feat = flat, flat.out_dim
            hs_a = tuple(hidden_sizes if actor_hidden_sizes is None else actor_hidden_sizes)
            hs_c = tuple(hidden_sizes if critic_hidden_sizes is None else critic_hidden_sizes)
        self.pi_net = mlp(feat, hs_a, self.out_dim, activation, ortho_init, out_gain=0.01)
        self.v_net = mlp(feat, hs_c, 1, activation, ortho_init, out_gain=1.0)
        self.log_std: Optional[nn.Parameter] = (
            nn.Parameter(torch.full((self.out_dim,), float(log_std_init))) if self.continuous else None)

    @property
    def obs_rms(self) -> Optional[RunningMeanStd]:
        """The running observation statistics (MLP encoder with ``norm_obs``), else None."""
        return getattr(self.pi_encoder, "obs_rms", None)

    # ---- forward -------------------------------------------------------------------
    def forward(self, obs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(pi_out [B, out_dim], value [B])`` for observations ``[B, *obs_shape]``."""
        f = self.pi_encoder(obs)
        fv = f if self.v_encoder is None else self.v_encoder(obs)
        return self.pi_net(f), self.v_net(fv).squeeze(-1)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s) ``[B]``; a shared CNN's features are detached here (the value regression of
        VPG and TRPO trains the critic's own parameters only)."""
        if self.v_encoder is not None:
            fv = self.v_encoder(obs)
        elif self.shared:
            fv = self.pi_encoder(obs).detach()
        else:
            fv = self.pi_encoder(obs)
        return self.v_net(fv).squeeze(-1)

    # ---- parameter groups ------------------------------------------------------------
    def actor_params_for_grad(self) -> List[nn.Parameter]:
        """The policy's parameters: its encoder (the shared one included), actor network
        and log-std (Box)."""
        ps = list(self.pi_encoder.parameters()) + list(self.pi_net.parameters())
        return ps + [self.log_std] if self.log_std is not None else ps

    def critic_params_for_grad(self) -> List[nn.Parameter]:
        """The value function's own parameters (its encoder unless shared, and its network)."""
        enc = list(self.v_encoder.parameters()) if self.v_encoder is not None else []
        return enc + list(self.v_net.parameters())

    def actor_flat(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        """Tensors ordered as :meth:`actor_params_for_grad` as one vector ``[n_actor]``."""
        return torch.cat([t.reshape(-1) for t in tensors])

    @torch.no_grad()
    def actor_vector(self) -> torch.Tensor:
        """Current actor parameters as one flat vector ``[n_actor]`` (a copy)."""
        return self.actor_flat(self.actor_params_for_grad()).clone()

    @torch.no_grad()
    def set_actor_vector(self, vec: torch.Tensor) -> None:
        """Overwrite the actor parameters from a flat vector ``[n_actor]``."""
        i = 0
        for p in self.actor_params_for_grad():
            n = p.numel()
            p.copy_(vec[i:i + n].view_as(p))
            i += n
        if i != vec.numel():
            raise ValueError(f"vec has {vec.numel()} entries, the actor has {i}")

    def extra_repr(self) -> str:
        return (f"encoder={self.encoder_kind!r}, shared={self.shared}, "
                f"head={type(self.head).__name__}, out_dim={self.out_dim}, "
                f"params={sum(p.numel() for p in self.parameters())}")
