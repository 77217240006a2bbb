"""Networks, action distributions and running statistics for the policy-gradient algorithms.

* :mod:`pgfast.nn.distributions`: categorical and diagonal-Gaussian log-probs,
  entropies, KL divergences and samples as plain functions of the network outputs.
* :mod:`pgfast.nn.networks`: :func:`mlp`, :func:`activation_fn` and the layer-size checks.
* :mod:`pgfast.nn.actor_critic`: :class:`ActorCritic`, the actor-critic the trainer uses
  (separate actor and critic MLPs, the networks the C++ paths read), differentiated by
  autograd (:meth:`ActorCritic.evaluate_actions`).
* :mod:`pgfast.nn.modular`: :class:`pgfast.nn.modular.ModularActorCritic`, the torch-path
  actor-critic for every other space (CNN encoders, multi-categorical actions).
* :mod:`pgfast.nn.normalization`: the one running-variance update
  (:func:`merge_moments`) behind observation normalisation (:class:`RunningMeanStd`)
  and reward scaling (:class:`RewardScaler`).
"""

from __future__ import annotations

from pgfast.nn.actor_critic import ActorCritic
from pgfast.nn.distributions import (_LOG_2PI, categorical_entropy, categorical_kl,
                                     categorical_log_prob, categorical_sample, gaussian_entropy,
                                     gaussian_kl, gaussian_log_prob, gaussian_sample)
from pgfast.nn.networks import _ACTIVATIONS, _check_sizes, _space_info, activation_fn, mlp
from pgfast.nn.normalization import RewardScaler, RunningMeanStd, merge_moments

__all__ = [
    "mlp",
    "activation_fn",
    "categorical_log_prob",
    "categorical_entropy",
    "categorical_sample",
    "categorical_kl",
    "gaussian_log_prob",
    "gaussian_entropy",
    "gaussian_sample",
    "gaussian_kl",
    "ActorCritic",
    "RunningMeanStd",
    "RewardScaler",
    "merge_moments",
]

# private names importable from the single-module pgfast.nn of earlier releases
_COMPAT = (_LOG_2PI, _ACTIVATIONS, _check_sizes, _space_info)
