// See rollout.hpp.
#include "rollout.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "dense.hpp"

namespace pgfast {
namespace rollout {

int Mlp::max_width() const {
  int m = 0;
  for (int i = 0; i <= num_layers; ++i) m = std::max(m, dims[i]);
  return m;
}

int64_t mlp_scratch_size(const Mlp& mlp, int64_t n) {
  const int64_t w = mlp.max_width();
  return 2 * n * w + w * w;  // two activations and a transposed weight
}

void tanh_inplace(float* x, int64_t n) { dense::tanh_loop(x, n); }

void mlp_forward(const Mlp& mlp, const float* x, int64_t n, float* out, float* scratch) {
  const int64_t width = mlp.max_width();
  float* buf[2] = {scratch, scratch + n * width};
  float* wt = scratch + 2 * n * width;
  const float* in = x;
  for (int i = 0; i < mlp.num_layers; ++i) {
    const bool last = i == mlp.num_layers - 1;
    float* y = last ? out : buf[i & 1];
    dense::linear(n, mlp.dims[i], mlp.dims[i + 1], in, mlp.w[i], mlp.b[i], y, wt);
    if (!last) {
      if (mlp.tanh) {
        dense::tanh_loop(y, n * mlp.dims[i + 1]);
      } else {
        dense::relu_loop(y, n * mlp.dims[i + 1]);
      }
    }
    in = y;
  }
}

void sample_categorical(const float* logits, const float* gumbel, int64_t n, int k,
                        int64_t* actions) {
  for (int64_t i = 0; i < n; ++i) {
    const float* l = logits + i * k;
    const float* g = gumbel + i * k;
    int best = 0;
    float best_v = l[0] + g[0];
    for (int j = 1; j < k; ++j) {
      const float v = l[j] + g[j];
      if (v > best_v) {  // strict: the first index wins ties, as torch.argmax
        best_v = v;
        best = j;
      }
    }
    actions[i] = best;
  }
}

void sample_gaussian(const float* mean, const float* std, const float* noise, int64_t n, int d,
                     const float* low, const float* high, float* actions, float* env_actions) {
  for (int64_t i = 0; i < n; ++i) {
    for (int j = 0; j < d; ++j) {
      const int64_t k = i * d + j;
      const float a = mean[k] + std[j] * noise[k];
      actions[k] = a;
      if (env_actions != nullptr) env_actions[k] = std::min(std::max(a, low[j]), high[j]);
    }
  }
}

}  // namespace rollout
}  // namespace pgfast
