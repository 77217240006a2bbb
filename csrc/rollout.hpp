// The policy half of a native rollout: a small MLP actor evaluated on a batch
// of observations, and action sampling from pre-drawn noise.
//
// Layers are read in place from the caller's float32 arrays (the actor slice
// of pgfast.nn.ActorCritic's stacked [2, d_in, d_out] weights: row-major
// [d_in, d_out], y = act(x @ W + b)). The hidden activation is tanh or ReLU;
// the output layer is linear.
//
// Sampling matches pgfast.nn.ActorCritic.sample_with_noise:
//   Discrete: a = argmax_j(logits_j + gumbel_j)   (first index on ties)
//   Box:      a = mean + std * noise               (unclipped)
//
// The forward is float32 like torch's, but its summation order is its own,
// so outputs agree with torch to float rounding (tested), not bit for bit.
// The layers are csrc/dense.hpp's kernels (run-time ISA dispatch keeps a
// portable build fast).
//
// This header sees no Python.
#pragma once

#include <cstdint>

namespace pgfast {
namespace rollout {

constexpr int kMaxLayers = 8;

struct Mlp {
  int num_layers = 0;
  int dims[kMaxLayers + 1] = {};     // dims[0] = input, dims[num_layers] = output
  const float* w[kMaxLayers] = {};   // [dims[i], dims[i + 1]] row-major
  const float* b[kMaxLayers] = {};   // [dims[i + 1]]
  bool tanh = true;                  // hidden activation: tanh, else ReLU

  int max_width() const;
};

// Floats of scratch space mlp_forward needs for a batch of n rows.
int64_t mlp_scratch_size(const Mlp& mlp, int64_t n);

// out[n, dims[L]] = the MLP applied to x[n, dims[0]].
void mlp_forward(const Mlp& mlp, const float* x, int64_t n, float* out, float* scratch);

// tanh of n floats (the activation mlp_forward uses; exposed for tests).
void tanh_inplace(float* x, int64_t n);

// actions[i] = argmax_j(logits[i, j] + gumbel[i, j]), j < k.
void sample_categorical(const float* logits, const float* gumbel, int64_t n, int k,
                        int64_t* actions);

// actions[i, j] = mean[i, j] + std[j] * noise[i, j]; env_actions the same
// clipped to [low[j], high[j]] (env_actions may be null).
void sample_gaussian(const float* mean, const float* std, const float* noise, int64_t n, int d,
                     const float* low, const float* high, float* actions, float* env_actions);

}  // namespace rollout
}  // namespace pgfast
