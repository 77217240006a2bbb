// Adam as torch's fused kernel (torch._fused_adam_, what pgfast.optim.FastAdam calls), with
// the global grad-norm clip folded in as its gradient divisor max(1, (||g|| + 1e-6) /
// max_grad_norm): the one C++ optimiser step of the PPO, VPG and TRPO updates.
//
//   m += (1 - beta1) (g - m);  v = beta2 v + (1 - beta2) g^2
//   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
//
// This header sees no Python.
#pragma once

#include <cstdint>

#include "mlp.hpp"

namespace pgfast {
namespace adam {

constexpr int kMaxTensors = 2 * mlp::kMaxLayers + 1;  // weights..., biases..., log_std

struct Hyper {
  double lr = 0.0, beta1 = 0.9, beta2 = 0.999, eps = 1e-5;
  int64_t step = 0;  // steps taken so far; step() adds one
};

// The tensors of one optimiser (or the slice of them one network owns): parameters p,
// gradients g, moments m and v, each of size[q] floats.
struct Tensors {
  int count = 0;
  float* p[kMaxTensors] = {};
  const float* g[kMaxTensors] = {};
  float* m[kMaxTensors] = {};
  float* v[kMaxTensors] = {};
  int64_t size[kMaxTensors] = {};
};

// sum of g^2 (16 float lanes, then double).
double sum_squares(const float* g, int64_t n);

// One step on every tensor (max_grad_norm <= 0: no clip).
void step(const Tensors& t, Hyper& h, float max_grad_norm);

}  // namespace adam
}  // namespace pgfast
