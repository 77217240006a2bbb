// See rollout.hpp.
#include "rollout.hpp"

#include <algorithm>

namespace pgfast {
namespace rollout {

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
