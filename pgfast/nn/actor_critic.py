"""The MLP actor-critic the trainer and every algorithm use.

Actor and critic are separate MLPs with their own parameters (each optimiser sees only its
own): the actor ``[B, obs_dim] -> actor_hidden_sizes... -> [B, out_dim]``, the critic
``[B, obs_dim] -> critic_hidden_sizes... -> [B, 1]``. Weights are stored as ``[d_in, d_out]``
(``y = x W + b``) so the C++ paths read the same parameters in place
(:meth:`ActorCritic.native_layers`); gradients of the torch path come from autograd.

Checkpoints of earlier releases stored both networks stacked (``weights.i``
``[2, d_in, d_out]``, ``biases.i`` ``[2, 1, d_out]``; index 0 actor, 1 critic, the critic's
value in output column 0): :meth:`ActorCritic.load_state_dict` takes them too
(:func:`unstack_state_dict`).
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn

from pgfast.nn.heads import PolicyBase, make_head
from pgfast.nn.networks import _check_sizes, _space_info, activation_fn
from pgfast.nn.normalization import RunningMeanStd

__all__ = ["ActorCritic", "unstack_state_dict", "is_stacked_state"]

Layers = Tuple[List[nn.Parameter], List[nn.Parameter]]


def _init_layer(rows: int, cols: int, gain: float, ortho_init: bool) -> torch.Tensor:
    """One layer's weight ``[cols, rows]`` (= ``[d_in, d_out]``), drawn from torch's global
    RNG as a ``[rows, cols]`` matrix (orthogonal with ``gain``, or uniform(+-1/sqrt(cols)))
    and transposed: the draws of ``nn.Linear``-shaped matrices."""
    m = torch.empty(rows, cols)
    if ortho_init:
        nn.init.orthogonal_(m, gain)
    else:
        bound = 1.0 / math.sqrt(cols)
        m.uniform_(-bound, bound)
    return m.t().contiguous()


class ActorCritic(PolicyBase):
    """Actor and critic MLPs with separate parameters (see the module docstring).

    The actor's layer ``i`` is ``actor_weights[i]`` ``[d_i, d_{i+1}]`` and ``actor_biases[i]``
    ``[d_{i+1}]``; its output has ``out_dim`` columns (logits for ``Discrete(n)``, means for
    ``Box(D)``). The critic's layers (``critic_weights``, ``critic_biases``) end in one column,
    the value. Forward with obs ``[B, obs_dim]`` -> ``(pi_out [B, out_dim], value [B])``.
    :meth:`actor_params_for_grad` (layers and log_std) and :meth:`critic_params_for_grad` are
    disjoint: VPG and TRPO give each its own optimiser.

    Initialisation draws from torch's global RNG layer by layer, the actor's layer ``i`` before
    the critic's (the draws and their order of the stacked network of earlier releases, so a
    seed gives the same weights).

    Args:
        obs_dim: flattened observation size.
        action_space: gymnasium ``Discrete`` or 1-D ``Box``.
        hidden_sizes: hidden widths of actor and critic (unless set for one below).
        activation: "tanh" or "relu".
        ortho_init: orthogonal init (hidden gain sqrt(2), actor output 0.01, critic 1).
        log_std_init: initial log-std of a Gaussian policy.
        norm_obs: normalise observations by running statistics (``obs_rms``, a
            :class:`pgfast.nn.RunningMeanStd`, updated by the trainer).
        clip_obs: clip of normalised observations.
        actor_hidden_sizes: hidden widths of the actor (None: ``hidden_sizes``).
        critic_hidden_sizes: hidden widths of the critic (None: ``hidden_sizes``).
    """

    def __init__(self, obs_dim: int, action_space: Any, hidden_sizes: Sequence[int] = (64, 64),
                 activation: str = "tanh", ortho_init: bool = True, log_std_init: float = 0.0,
                 norm_obs: bool = False, clip_obs: float = 10.0,
                 actor_hidden_sizes: Optional[Sequence[int]] = None,
                 critic_hidden_sizes: Optional[Sequence[int]] = None) -> None:
        """Build ``[B, obs_dim] -> actor_hidden_sizes... -> [B, out_dim]`` and
        ``[B, obs_dim] -> critic_hidden_sizes... -> [B, 1]``."""
        super().__init__()
        self.continuous, self.out_dim = _space_info(action_space)
        self.head = make_head(action_space)  # log-probs, entropies, samples (pgfast.nn.heads)
        _check_sizes(obs_dim, hidden_sizes, self.out_dim)
        ha = _check_sizes(obs_dim, hidden_sizes if actor_hidden_sizes is None else actor_hidden_sizes,
                          self.out_dim, "actor_hidden_sizes")
        hc = _check_sizes(obs_dim, hidden_sizes if critic_hidden_sizes is None else critic_hidden_sizes,
                          1, "critic_hidden_sizes")
        self.obs_dim = int(obs_dim)
        self.activation = activation
        _, self._act = activation_fn(activation)
        self.actor_hidden_sizes, self.critic_hidden_sizes = ha, hc
        dims_a = (self.obs_dim,) + ha + (self.out_dim,)
        dims_c = (self.obs_dim,) + hc + (1,)
        La, Lc = len(dims_a) - 1, len(dims_c) - 1
        self.num_layers = La
        wa: List[torch.Tensor] = []
        wc: List[torch.Tensor] = []
        for i in range(max(La, Lc)):  # per layer: the actor's draw, then the critic's
            if i < La:
                gain = 0.01 if i == La - 1 else math.sqrt(2.0)
                wa.append(_init_layer(dims_a[i + 1], dims_a[i], gain, ortho_init))
            if i < Lc:
                gain = 1.0 if i == Lc - 1 else math.sqrt(2.0)
                wc.append(_init_layer(dims_c[i + 1], dims_c[i], gain, ortho_init))
        self.log_std: Optional[nn.Parameter]
        if self.continuous:
            self.log_std = nn.Parameter(torch.full((self.out_dim,), float(log_std_init)))
        else:
            self.log_std = None
        self.actor_weights = nn.ParameterList([nn.Parameter(w) for w in wa])
        self.actor_biases = nn.ParameterList([nn.Parameter(torch.zeros(d)) for d in dims_a[1:]])
        self.critic_weights = nn.ParameterList([nn.Parameter(w) for w in wc])
        self.critic_biases = nn.ParameterList([nn.Parameter(torch.zeros(d)) for d in dims_c[1:]])
        self.norm_obs = bool(norm_obs)
        self.obs_rms = RunningMeanStd((self.obs_dim,), clip=clip_obs) if norm_obs else None
        self._lists: Optional[Tuple[Layers, Layers]] = None

    def layer_tensors(self) -> Tuple[Layers, Layers]:
        """``((actor_weights, actor_biases), (critic_weights, critic_biases))`` as plain lists of
        ``[d_i, d_{i+1}]`` / ``[d_{i+1}]`` tensors (cached: ParameterList indexing is slow)."""
        if self._lists is None:
            self._lists = ((list(self.actor_weights), list(self.actor_biases)),
                           (list(self.critic_weights), list(self.critic_biases)))
        return self._lists

    def native_layers(self) -> Tuple[Tuple[List[Any], List[Any]], Tuple[List[Any], List[Any]]]:
        """``((actor_weights, actor_biases), (critic_weights, critic_biases))`` as numpy arrays
        sharing memory with the parameters (``[d_i, d_{i+1}]`` / ``[d_{i+1}]``, CPU only): the
        networks the C++ rollout, evaluation and updates read and write in place."""
        a, c = self._lists or self.layer_tensors()
        return tuple(([t.detach().numpy() for t in w], [t.detach().numpy() for t in b])  # type: ignore[return-value]
                     for w, b in (a, c))

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> "ActorCritic":
        """``.to()``/``.double()`` may replace parameters: drop the cached lists."""
        self._lists = None
        return super()._apply(fn, *args, **kwargs)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True,
                        assign: bool = False) -> Any:
        """``nn.Module.load_state_dict``, also of the stacked layout of earlier releases
        (:func:`unstack_state_dict`)."""
        self._lists = None
        if is_stacked_state(state_dict):
            state_dict = unstack_state_dict(state_dict)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    # ---- forward -------------------------------------------------------------------
    def network_input(self, obs: torch.Tensor) -> torch.Tensor:
        """Observations ``[B, ...]`` as the first layers read them: ``[B, obs_dim]``, normalised
        by ``obs_rms`` (:meth:`pgfast.nn.RunningMeanStd.normalize`) where it is on, in the
        parameters' dtype. The torch forward and the inputs of the C++ update and evaluation
        come from here (the C++ rollout normalises in C++ with the same float32 operations)."""
        w = (self._lists or self.layer_tensors())[0][0]
        x = obs if obs.dim() == 2 else obs.reshape(obs.shape[0], -1)
        if self.obs_rms is not None:
            x = self.obs_rms.normalize(x)
        return x if x.dtype == w[0].dtype else x.to(w[0].dtype)

    def _mlp(self, x: torch.Tensor, layers: Layers) -> torch.Tensor:
        """One network's output ``[B, d_out]`` on network inputs ``x`` ``[B, obs_dim]``."""
        w, b = layers
        h = torch.addmm(b[0], x, w[0])
        for i in range(1, len(w)):
            h = torch.addmm(b[i], self._act(h), w[i])
        return h

    def forward(self, obs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(pi_out [B, out_dim], value [B])`` for observations ``[B, obs_dim]``."""
        a, c = self._lists or self.layer_tensors()
        x = self.network_input(obs)
        return self._mlp(x, a), self._mlp(x, c)[:, 0]

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s) ``[B]`` for observations ``[B, obs_dim]`` (the critic alone)."""
        c = (self._lists or self.layer_tensors())[1]
        return self._mlp(self.network_input(obs), c)[:, 0]

    # ---- parameter groups ------------------------------------------------------------
    def critic_params_for_grad(self) -> List[nn.Parameter]:
        """The critic's parameters: weights..., biases... (what a value loss depends on)."""
        w, b = (self._lists or self.layer_tensors())[1]
        return list(w) + list(b)

    def actor_params_for_grad(self) -> List[nn.Parameter]:
        """The actor's parameters: weights..., biases..., and log_std ``[D]`` for Box (what an
        actor loss depends on; disjoint from :meth:`critic_params_for_grad`)."""
        w, b = (self._lists or self.layer_tensors())[0]
        ps = list(w) + list(b)
        return ps + [self.log_std] if self.log_std is not None else ps

    def actor_flat(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        """Per-parameter tensors ordered as :meth:`actor_params_for_grad` (e.g. their
        gradients) as one vector ``[n_actor]``."""
        return torch.cat([t.reshape(-1) for t in tensors])

    @torch.no_grad()
    def actor_vector(self) -> torch.Tensor:
        """Current actor parameters as one flat vector ``[n_actor]`` (a copy)."""
        return self.actor_flat(self.actor_params_for_grad())

    @torch.no_grad()
    def set_actor_vector(self, vec: torch.Tensor) -> None:
        """Overwrite the actor parameters from a flat vector ``[n_actor]`` (inverse of
        :meth:`actor_vector`); the critic is untouched."""
        i = 0
        for p in self.actor_params_for_grad():
            n = p.numel()
            p.copy_(vec[i:i + n].view_as(p))
            i += n
        if i != vec.numel():
            raise ValueError(f"vec has {vec.numel()} entries, the actor has {i}")

    def legacy_moments(self, saved: Sequence[torch.Tensor], params: Sequence[torch.Tensor]
                       ) -> List[torch.Tensor]:
        """Per-parameter tensors of an optimiser of the stacked layout of earlier releases
        (``saved``: its stacked weights..., biases... ``[2, ...]`` with log_std ``[D]`` first or
        last, e.g. Adam's moments) for the current optimiser over ``params`` (each one of
        this policy's parameters): the actor's slice 0, the critic's slice 1 (its output
        layer: column 0)."""
        stacked = [t for t in saved if t.dim() == 3]
        flat = [t for t in saved if t.dim() != 3]
        L = len(stacked) // 2
        (aw, ab), (cw, cb) = self.layer_tensors()
        if len(stacked) != 2 * L or L != len(aw) or len(cw) != L or len(flat) > 1:
            raise ValueError("the saved optimiser state does not match this policy's layers")
        src: Dict[int, torch.Tensor] = {}
        for i in range(L):
            src[id(aw[i])], src[id(ab[i])] = stacked[i][0], stacked[L + i][0, 0]
            src[id(cw[i])] = stacked[i][1][:, :cw[i].shape[1]]
            src[id(cb[i])] = stacked[L + i][1, 0, :cb[i].shape[0]]
        if self.log_std is not None and flat:
            src[id(self.log_std)] = flat[0]
        return [src[id(p)].contiguous() for p in params]


def is_stacked_state(sd: Mapping[str, Any]) -> bool:
    """Whether ``sd`` is an :class:`ActorCritic` state dict of the stacked layout of earlier
    releases (``weights.i`` ``[2, d_in, d_out]``)."""
    w = sd.get("weights.0")
    return w is not None and getattr(w, "dim", lambda: 0)() == 3


def unstack_state_dict(sd: Mapping[str, Any]) -> Dict[str, Any]:
    """An :class:`ActorCritic` state dict of the stacked layout of earlier releases
    (``weights.i`` ``[2, d_in, d_out]``, ``biases.i`` ``[2, 1, d_out]``; 0 actor, 1 critic)
    in the current one: ``actor_weights.i = weights.i[0]``, ``actor_biases.i = biases.i[0, 0]``,
    ``critic_weights.i = weights.i[1]``, ``critic_biases.i = biases.i[1, 0]``, the critic's
    output layer cut to its value column 0; other entries as they are."""
    n = sum(1 for k in sd if k.startswith("weights."))
    out: Dict[str, Any] = {}
    for k, v in sd.items():
        name, _, i = k.partition(".")
        if name not in ("weights", "biases"):
            out[k] = v
            continue
        last = int(i) == n - 1
        a, c = (v[0], v[1]) if name == "weights" else (v[0, 0], v[1, 0])
        out[f"actor_{name}.{i}"] = a.clone()
        out[f"critic_{name}.{i}"] = (c[..., :1] if last else c).clone()
    return out
