// The policy half of a native rollout: a small MLP actor evaluated on a batch
// of observations, and action sampling from pre-drawn noise.
//
// Layers are read in place from the caller's float32 arrays (the actor of
// pgfast.nn.ActorCritic: weights row-major [d_in, d_out], y = act(x @ W + b)). The hidden activation is tanh or ReLU;
// the output layer is linear.
//
// Sampling matches pgfast.nn.ActorCritic.sample_with_noise:
//   Discrete: a = argmax_j(logits_j + gumbel_j)   (first index on ties)
//   Box:      a = mean + std * noise               (unclipped)
//
// The forward is float32 like torch's, but its summation order is its own,
// so outputs agree with torch to float rounding (tested), not bit for bit.
// The forward is csrc/mlp.hpp's (the one C++ MLP; run-time ISA dispatch keeps a
// portable build fast).
//
// This header sees no Python.
#pragma once

#include <cstdint>

#include "mlp.hpp"

namespace pgfast {
namespace rollout {

// The policy network: the one C++ MLP (csrc/mlp.hpp).
using Mlp = mlp::Mlp;

// actions[i] = argmax_j(logits[i, j] + gumbel[i, j]), j < k.
void sample_categorical(const float* logits, const float* gumbel, int64_t n, int k,
                        int64_t* actions);

// actions[i, j] = mean[i, j] + std[j] * noise[i, j]; env_actions the same
// clipped to [low[j], high[j]] (env_actions may be null).
void sample_gaussian(const float* mean, const float* std, const float* noise, int64_t n, int d,
                     const float* low, const float* high, float* actions, float* env_actions);

}  // namespace rollout
}  // namespace pgfast
