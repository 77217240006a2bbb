// See rollout.hpp.
#include "rollout.hpp"

#include <algorithm>
#include <cstring>

// One AVX2 clone and a baseline clone of each hot loop, picked at load time
// by the CPU (GCC function multiversioning); elsewhere only the baseline.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define PGFAST_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define PGFAST_CLONES
#endif

namespace pgfast {
namespace rollout {

int Mlp::max_width() const {
  int m = 0;
  for (int i = 0; i <= num_layers; ++i) m = std::max(m, dims[i]);
  return m;
}

int64_t mlp_scratch_size(const Mlp& mlp, int64_t n) { return 2 * n * int64_t(mlp.max_width()); }

namespace {

// y[n, dout] = x[n, din] @ w[din, dout] + b: the row of y accumulates rows of
// w (a contiguous, vectorisable inner loop), then the bias is added.
PGFAST_CLONES
void linear(const float* __restrict x, int64_t n, int din, int dout, const float* __restrict w,
            const float* __restrict b, float* __restrict y) {
  for (int64_t i = 0; i < n; ++i) {
    float* __restrict yi = y + i * dout;
    const float* xi = x + i * din;
    for (int j = 0; j < dout; ++j) yi[j] = 0.0f;
    for (int k = 0; k < din; ++k) {
      const float a = xi[k];
      const float* __restrict wk = w + int64_t(k) * dout;
      for (int j = 0; j < dout; ++j) yi[j] += a * wk[j];
    }
    for (int j = 0; j < dout; ++j) yi[j] += b[j];
  }
}

// tanh as a rational function of x on [-7.9, 7.9] (the minimax fit Eigen
// uses for float tanh, within a few ulp of the exact value), x itself for
// |x| < 4e-4, +-1 beyond the clamp. Branch-free, so the loop vectorises.
PGFAST_CLONES
void tanh_loop(float* __restrict v, int64_t n) {
  const float a1 = 4.89352455891786e-03f, a3 = 6.37261928875436e-04f,
              a5 = 1.48572235717979e-05f, a7 = 5.12229709037114e-08f,
              a9 = -8.60467152213735e-11f, a11 = 2.00018790482477e-13f,
              a13 = -2.76076847742355e-16f;
  const float b0 = 4.89352518554385e-03f, b2 = 2.26843463243900e-03f,
              b4 = 1.18534705686654e-04f, b6 = 1.19825839466702e-06f;
  const float clamp = 7.90531110763549805f;
  for (int64_t i = 0; i < n; ++i) {
    const float x0 = v[i];
    const float x = std::min(std::max(x0, -clamp), clamp);
    const float x2 = x * x;
    float p = a13;
    p = p * x2 + a11;
    p = p * x2 + a9;
    p = p * x2 + a7;
    p = p * x2 + a5;
    p = p * x2 + a3;
    p = p * x2 + a1;
    p = p * x;
    float q = b6;
    q = q * x2 + b4;
    q = q * x2 + b2;
    q = q * x2 + b0;
    const float ax = x0 < 0.0f ? -x0 : x0;
    v[i] = ax < 4e-4f ? x0 : p / q;
  }
}

PGFAST_CLONES
void relu_loop(float* __restrict v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) v[i] = v[i] > 0.0f ? v[i] : 0.0f;
}

}  // namespace

void tanh_inplace(float* x, int64_t n) { tanh_loop(x, n); }

void mlp_forward(const Mlp& mlp, const float* x, int64_t n, float* out, float* scratch) {
  const int64_t width = mlp.max_width();
  float* buf[2] = {scratch, scratch + n * width};
  const float* in = x;
  for (int i = 0; i < mlp.num_layers; ++i) {
    const bool last = i == mlp.num_layers - 1;
    float* y = last ? out : buf[i & 1];
    linear(in, n, mlp.dims[i], mlp.dims[i + 1], mlp.w[i], mlp.b[i], y);
    if (!last) {
      if (mlp.tanh) {
        tanh_loop(y, n * mlp.dims[i + 1]);
      } else {
        relu_loop(y, n * mlp.dims[i + 1]);
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
