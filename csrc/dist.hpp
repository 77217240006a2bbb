// The policy distributions on the actor MLP's output (the one C++ home of this math for the
// PPO, VPG and TRPO updates): log-probabilities, entropy, their derivatives with respect to
// the output and log_std, the KL divergence and its Fisher matrix.
//
//   Categorical(logits o):  logp = o_a - logsumexp(o);  H = -sum p log p
//   Gaussian(mean o, state-independent log_std s):
//      z = (a - o) / exp(s);  logp = -z.z / 2 - sum(s) - D/2 log(2 pi)
//      H = sum(s) + D/2 (1 + log(2 pi))
//   KL(old || new) per row as pgfast.nn.distributions (categorical_kl, gaussian_kl).
//   Fisher of the mean KL at new = old, per row: Categorical diag(p) - p p^T on the logits;
//   Gaussian exp(-2 s) on the means and 2 on each log_std (no cross terms).
//
// Float32 like torch's, in its own summation order (equal to torch to float rounding).
//
// This header sees no Python.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace pgfast {
namespace dist {

constexpr double kLog2Pi = 1.8378770664093453;

// What the Gaussian needs of log_std [K]: exp(-log_std) and the constant term.
struct Terms {
  bool gaussian = false;
  int K = 0;
  std::vector<float> inv_std;
  float log_norm = 0.0f;  // sum(log_std) + K/2 log(2 pi)
  double log_std_sum = 0.0;
};

inline Terms terms(const float* log_std, int K) {
  Terms g;
  g.K = K;
  g.gaussian = log_std != nullptr;
  if (!g.gaussian) return g;
  g.inv_std.resize(size_t(K));
  for (int j = 0; j < K; ++j) {
    g.log_std_sum += log_std[j];
    g.inv_std[size_t(j)] = std::exp(-log_std[j]);
  }
  g.log_norm = float(g.log_std_sum + 0.5 * K * kLog2Pi);
  return g;
}

// Entropy of the Gaussian (the same for every row).
inline double gaussian_entropy(const Terms& g) {
  return g.log_std_sum + 0.5 * g.K * (1.0 + kLog2Pi);
}

// log pi(a | s) of one row from the actor output o [K]. keep [K] receives z = (a - mean)
// / std (Gaussian) or the log-softmax (categorical); *entropy the categorical's entropy.
inline float row_logp(const float* o, const Terms& g, const float* a_box, int64_t a_disc,
                      float* keep, float* entropy) {
  const int K = g.K;
  if (g.gaussian) {
    float zz = 0.0f;
    for (int j = 0; j < K; ++j) {
      const float z = (a_box[j] - o[j]) * g.inv_std[size_t(j)];
      keep[j] = z;
      zz += z * z;
    }
    return -0.5f * zz - g.log_norm;
  }
  float mx = o[0];
  for (int j = 1; j < K; ++j) mx = std::max(mx, o[j]);
  float se = 0.0f;
  for (int j = 0; j < K; ++j) se += std::exp(o[j] - mx);
  const float lse = mx + std::log(se);
  float h = 0.0f;
  for (int j = 0; j < K; ++j) {
    const float lsm = o[j] - lse;
    keep[j] = lsm;
    h -= std::exp(lsm) * lsm;
  }
  *entropy = h;
  return keep[a_disc];
}

// For a loss L(logp) - ent_coef * mean(H) over n rows: turns keep [n, K] (row_logp's) into
// d loss / d actor output, given g_lp[r] = dL/d logp_r, ent_row[r] (categorical entropy),
// the categorical actions act[rows[r]] (rows null: act[r]); adds d loss / d log_std to
// g_log_std [K] (Gaussian; zeroed by the caller).
inline void logp_backward(const Terms& g, int64_t n, const float* g_lp, const float* ent_row,
                          const int64_t* act, const int64_t* rows, float ent_coef, float* keep,
                          float* g_log_std) {
  const int K = g.K;
  const float inv_n = 1.0f / float(n);
  for (int64_t r = 0; r < n; ++r) {
    float* go = keep + r * K;
    if (g.gaussian) {
      for (int j = 0; j < K; ++j) {
        const float z = go[j];
        g_log_std[j] += (z * z - 1.0f) * g_lp[r];
        go[j] = z * g.inv_std[size_t(j)] * g_lp[r];
      }
    } else {
      const int64_t a = act[rows != nullptr ? rows[r] : r];
      const float h = ent_row[r];
      for (int j = 0; j < K; ++j) {
        const float lsm = go[j];
        const float p = std::exp(lsm);
        float d = ((j == a ? 1.0f : 0.0f) - p) * g_lp[r];
        if (ent_coef != 0.0f) d += ent_coef * inv_n * p * (lsm + h);
        go[j] = d;
      }
    }
  }
  if (g.gaussian) {
    for (int j = 0; j < K; ++j) g_log_std[j] -= ent_coef;
  }
}

// Throws std::invalid_argument if a categorical action is outside [0, K).
inline void check_actions(const int64_t* a, int64_t n, int K) {
  for (int64_t r = 0; r < n; ++r) {
    if (a[r] < 0 || a[r] >= K) {
      throw std::invalid_argument("action " + std::to_string(a[r]) + " outside [0, " +
                                  std::to_string(K) + ")");
    }
  }
}

// KL(old || new) of one row: categorical from logits, Gaussian from means and log_stds.
inline float row_kl_categorical(const float* o_old, const float* o_new, int K) {
  float m0 = o_old[0], m1 = o_new[0];
  for (int j = 1; j < K; ++j) {
    m0 = std::max(m0, o_old[j]);
    m1 = std::max(m1, o_new[j]);
  }
  float s0 = 0.0f, s1 = 0.0f;
  for (int j = 0; j < K; ++j) {
    s0 += std::exp(o_old[j] - m0);
    s1 += std::exp(o_new[j] - m1);
  }
  const float l0 = m0 + std::log(s0), l1 = m1 + std::log(s1);
  float kl = 0.0f;
  for (int j = 0; j < K; ++j) {
    const float lp = o_old[j] - l0, lq = o_new[j] - l1;
    kl += std::exp(lp) * (lp - lq);
  }
  return kl;
}

inline float row_kl_gaussian(const float* mu_old, const float* ls_old, const float* mu_new,
                             const float* ls_new, int K) {
  float kl = 0.0f;
  for (int j = 0; j < K; ++j) {
    const float var_p = std::exp(2.0f * ls_old[j]), var_q = std::exp(2.0f * ls_new[j]);
    const float d = mu_old[j] - mu_new[j];
    kl += ls_new[j] - ls_old[j] + (var_p + d * d) / (2.0f * var_q) - 0.5f;
  }
  return kl;
}

}  // namespace dist
}  // namespace pgfast
