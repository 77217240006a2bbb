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

// actor weights..., biases..., log_std, critic weights..., biases... (PPO's one optimiser)
constexpr int kMaxTensors = 4 * mlp::kMaxLayers + 1;

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

// A gradient's share of the clip's sum of squares, as part of a virtual tensor of zeros: its
// n floats g[j] at positions off + j * stride.
struct Part {
  const float* g = nullptr;
  int64_t n = 0, off = 0, stride = 1;
};

// sum_squares of the virtual tensor of `len` floats that parts (in increasing positions, apart)
// fill, bit for bit: a position's square goes to lane (position % 16), the last len % 16
// positions are added in double after the lanes, in order (the zeros add nothing).
double sum_squares_parts(const Part* parts, int count, int64_t len);

// One step on every tensor (max_grad_norm <= 0: no clip); the clip's norm sums each tensor's
// squares by sum_squares, in double over the tensors in order.
void step(const Tensors& t, Hyper& h, float max_grad_norm);

// As step with the clip's sum of squares given (grad_sq; unused when max_grad_norm <= 0).
void step_with_norm(const Tensors& t, Hyper& h, float max_grad_norm, double grad_sq);

}  // namespace adam
}  // namespace pgfast
