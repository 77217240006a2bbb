"""The fused actor-critic network the trainer and every algorithm use.

Actor and critic MLPs with the same hidden sizes are stored as stacked
``[2, d_in, d_out]`` weights and evaluated together by batched matrix products, so
one forward pass costs as many torch ops as one MLP (op overhead, not arithmetic,
dominates these small nets). Gradients come from autograd; the C++ paths read the
same parameters in place (:meth:`ActorCritic.native_layers`).
"""

from __future__ import annotations

import math
from typing import Any, List, Optional, Sequence, Tuple

import torch
from torch import nn

from pgfast.nn.heads import PolicyBase, make_head
from pgfast.nn.networks import _check_sizes, _space_info, activation_fn
from pgfast.nn.normalization import RunningMeanStd

__all__ = ["ActorCritic"]


class ActorCritic(PolicyBase):
    """Actor and critic MLPs (same hidden sizes) evaluated together as one network.

    Layer ``i`` holds ``weight_i`` ``[2, d_i, d_{i+1}]`` and ``bias_i`` ``[2, 1, d_{i+1}]``;
    index 0 is the actor, index 1 the critic. The output layer has ``out_dim``
    columns (logits for ``Discrete(n)``, means for ``Box(D)``); the critic uses
    column 0 of its slice (the other critic output columns are unused, receive
    zero gradient and therefore never change under Adam/SGD).

    Forward with obs ``[B, obs_dim]`` -> ``(pi_out [B, out_dim], value [B])``.
    The gradient of an actor-only loss is exactly zero on the critic slices and
    vice versa, so actor and critic can also be optimised separately (VPG, TRPO:
    :meth:`actor_params_for_grad`, :meth:`critic_params_for_grad`).

    Args:
        obs_dim: flattened observation size.
        action_space: gymnasium ``Discrete`` or 1-D ``Box``.
        hidden_sizes: hidden widths shared by actor and critic.
        activation: "tanh" or "relu".
        ortho_init: orthogonal init (hidden gain sqrt(2), actor output 0.01, critic 1).
        log_std_init: initial log-std of a Gaussian policy.
        norm_obs: normalise observations by running statistics (``obs_rms``, a
            :class:`pgfast.nn.RunningMeanStd`, updated by the trainer).
        clip_obs: clip of normalised observations.
    """

    def __init__(self, obs_dim: int, action_space: Any, hidden_sizes: Sequence[int] = (64, 64),
                 activation: str = "tanh", ortho_init: bool = True, log_std_init: float = 0.0,
                 norm_obs: bool = False, clip_obs: float = 10.0) -> None:
        """Build the stacked layers ``[B, obs_dim] -> hidden_sizes... -> [B, out_dim]`` (x2)."""
        super().__init__()
        self.continuous, self.out_dim = _space_info(action_space)
        self.head = make_head(action_space)  # log-probs, entropies, samples (pgfast.nn.heads)
        hs = _check_sizes(obs_dim, hidden_sizes, self.out_dim)
        self.obs_dim = int(obs_dim)
        self.activation = activation
        _, self._act = activation_fn(activation)
        dims = (self.obs_dim,) + hs + (self.out_dim,)
        self.num_layers = len(dims) - 1
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for i in range(self.num_layers):
            w = torch.empty(2, dims[i], dims[i + 1])
            last = i == self.num_layers - 1
            for k in range(2):
                if ortho_init:
                    gain = (0.01 if k == 0 else 1.0) if last else math.sqrt(2.0)
                    rows = dims[i + 1] if not (last and k == 1) else 1
                    m = torch.empty(rows, dims[i])
                    nn.init.orthogonal_(m, gain)
                else:
                    bound = 1.0 / math.sqrt(dims[i])
                    rows = dims[i + 1] if not (last and k == 1) else 1
                    m = torch.empty(rows, dims[i]).uniform_(-bound, bound)
                w[k].zero_()
                w[k, :, :rows] = m.t()
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(2, 1, dims[i + 1])))
        self.log_std: Optional[nn.Parameter]
        if self.continuous:
            self.log_std = nn.Parameter(torch.full((self.out_dim,), float(log_std_init)))
        else:
            self.log_std = None
        self.norm_obs = bool(norm_obs)
        self.obs_rms = RunningMeanStd((self.obs_dim,), clip=clip_obs) if norm_obs else None
        self._lists: Optional[Tuple[List[nn.Parameter], List[nn.Parameter]]] = None

    def layer_tensors(self) -> Tuple[List[nn.Parameter], List[nn.Parameter]]:
        """``(weights, biases)`` as plain lists of ``[2, d_i, d_{i+1}]`` / ``[2, 1, d_{i+1}]``
        tensors (cached: ParameterList indexing is slow)."""
        if self._lists is None:
            self._lists = (list(self.weights), list(self.biases))
        return self._lists

    def native_layers(self) -> Tuple[List[Any], List[Any]]:
        """``(weights, biases)`` as numpy arrays sharing memory with the parameters
        (``[2, d_i, d_{i+1}]`` / ``[2, 1, d_{i+1}]``, CPU only), for the native rollout
        (:func:`pgfast._C.rollout_mlp` reads the actor slice 0 in place)."""
        w, b = self._lists or self.layer_tensors()
        return [t.detach().numpy() for t in w], [t.detach().numpy() for t in b]

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> "ActorCritic":
        """``.to()``/``.double()`` may replace parameters: drop the cached lists."""
        self._lists = None
        return super()._apply(fn, *args, **kwargs)

    # ---- forward -------------------------------------------------------------------
    def network_input(self, obs: torch.Tensor) -> torch.Tensor:
        """Observations ``[B, ...]`` as the first layer reads them: ``[B, obs_dim]``, normalised
        by ``obs_rms`` (:meth:`pgfast.nn.RunningMeanStd.normalize`) where it is on, in the
        parameters' dtype. The torch forward and the inputs of the C++ update and evaluation
        come from here (the C++ rollout normalises in C++ with the same float32 operations)."""
        w = (self._lists or self.layer_tensors())[0]
        x = obs if obs.dim() == 2 else obs.reshape(obs.shape[0], -1)
        if self.obs_rms is not None:
            x = self.obs_rms.normalize(x)
        return x if x.dtype == w[0].dtype else x.to(w[0].dtype)

    def forward(self, obs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(pi_out [B, out_dim], value [B])`` for observations ``[B, obs_dim]``."""
        w, b = self._lists or self.layer_tensors()
        x = self.network_input(obs)
        act = self._act
        h = torch.baddbmm(b[0], x.expand(2, *x.shape), w[0])
        for i in range(1, self.num_layers):
            h = torch.baddbmm(b[i], act(h), w[i])
        return h[0], h[1, :, 0]

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s) ``[B]`` for observations ``[B, obs_dim]``."""
        return self.forward(obs)[1]

    # ---- parameter groups ------------------------------------------------------------
    def stacked_parameters(self) -> List[nn.Parameter]:
        """The stacked ``[2, ...]`` weight and bias tensors (actor index 0, critic 1)."""
        return list(self.weights) + list(self.biases)

    def critic_params_for_grad(self) -> List[nn.Parameter]:
        """Parameters a value loss depends on (the stacked tensors; the gradient of a
        value loss is zero on their actor slices, so Adam leaves those unchanged)."""
        return self.stacked_parameters()

    def actor_params_for_grad(self) -> List[nn.Parameter]:
        """Parameters an actor loss depends on (stacked tensors, plus log_std ``[D]`` for Box)."""
        ps = self.stacked_parameters()
        return ps + [self.log_std] if self.log_std is not None else ps

    def actor_flat(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        """Flatten the actor slices of per-parameter tensors ordered as
        :meth:`actor_params_for_grad` (e.g. their gradients) into one vector ``[n_actor]``."""
        n = len(self.weights) + len(self.biases)
        parts = [t[0].reshape(-1) for t in tensors[:n]]
        if self.continuous:
            parts.append(tensors[n].reshape(-1))
        return torch.cat(parts)

    @torch.no_grad()
    def actor_vector(self) -> torch.Tensor:
        """Current actor parameters as one flat vector ``[n_actor]`` (a copy)."""
        return self.actor_flat(self.actor_params_for_grad())

    @torch.no_grad()
    def set_actor_vector(self, vec: torch.Tensor) -> None:
        """Overwrite the actor parameters from a flat vector ``[n_actor]`` (inverse of
        :meth:`actor_vector`); the critic slices are untouched."""
        i = 0
        for p in self.stacked_parameters():
            n = p[0].numel()
            p[0].copy_(vec[i:i + n].view_as(p[0]))
            i += n
        if self.log_std is not None:
            n = self.log_std.numel()
            self.log_std.copy_(vec[i:i + n])
            i += n
        if i != vec.numel():
            raise ValueError(f"vec has {vec.numel()} entries, the actor has {i}")
