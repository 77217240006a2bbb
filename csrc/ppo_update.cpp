// See ppo_update.hpp.
#include "ppo_update.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "clones.hpp"
#include "mlp.hpp"

namespace pgfast {
namespace update {
namespace {

constexpr double kLog2Pi = 1.8378770664093453;

// ---------------------------------------------------------------- Adam

// One Adam step of n parameters (torch's fused kernel, grad divided by scale).
PGFAST_CLONES
void adam_step(float* __restrict p, const float* __restrict g, float* __restrict m,
               float* __restrict v, int64_t n, float inv_scale, float beta1, float beta2,
               float step_size, float inv_bc2_sqrt, float eps) {
  const float one_b1 = 1.0f - beta1, one_b2 = 1.0f - beta2;
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i] * inv_scale;
    m[i] += one_b1 * (gi - m[i]);
    v[i] = v[i] * beta2 + one_b2 * gi * gi;
    const float denom = std::sqrt(v[i]) * inv_bc2_sqrt + eps;
    p[i] -= step_size * m[i] / denom;
  }
}

PGFAST_CLONES
double sum_squares(const float* __restrict g, int64_t n) {
  constexpr int kLanes = 16;  // explicit lanes: the loop vectorises without reassociation
  float lane[kLanes] = {};
  const int64_t nb = n - n % kLanes;
  for (int64_t i = 0; i < nb; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) lane[l] += g[i + l] * g[i + l];
  }
  double s = 0.0;
  for (int l = 0; l < kLanes; ++l) s += lane[l];
  for (int64_t i = nb; i < n; ++i) s += double(g[i]) * g[i];
  return s;
}

// ---------------------------------------------------------------- workspace

struct Workspace {
  std::vector<float> x;                     // [n, d0]
  mlp::Trace tr[2];                         // forward of actor and critic
  std::vector<float> g0, g1;                // d loss / d output, actor and critic [n, out_dim]
  std::vector<float> gw[kMaxLayers];        // [2, d_i, d_{i+1}]
  std::vector<float> gb[kMaxLayers];        // [2, d_{i+1}]
  std::vector<float> g_log_std;
  std::vector<float> rows;                  // per-row scalars, 4 n
};

template <class T>
void fit(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

// Room for batches of up to nmax rows.
void prepare(Workspace& ws, const ActorCritic& net, int64_t nmax) {
  const int L = net.num_layers, K = net.dims[L];
  fit(ws.x, size_t(nmax * net.dims[0]));
  for (int k = 0; k < 2; ++k) ws.tr[k].prepare(net.net(k), nmax);
  fit(ws.g0, size_t(nmax * K));
  fit(ws.g1, size_t(nmax * K));
  for (int i = 0; i < L; ++i) {
    fit(ws.gw[i], size_t(2) * net.dims[i] * net.dims[i + 1]);
    fit(ws.gb[i], size_t(2) * net.dims[i + 1]);
  }
  fit(ws.g_log_std, size_t(K));
  fit(ws.rows, size_t(4 * nmax));
}

// Actor (k = 0) and critic (k = 1) on X [n, d0], kept in ws.tr[k]. Each row's result
// depends on that row only (csrc/dense.hpp).
void forward(const ActorCritic& net, const float* X, int64_t n, Workspace& ws) {
  for (int k = 0; k < 2; ++k) mlp::forward(net.net(k), X, n, ws.tr[k]);
}

// What log_prob needs of a Gaussian's log-std: exp(-log_std) and the constant term.
struct GaussianTerms {
  std::vector<float> inv_std;
  float log_norm = 0.0f;  // sum(log_std) + D/2 log(2 pi)
  double log_std_sum = 0.0;
};

GaussianTerms gaussian_terms(const ActorCritic& net) {
  GaussianTerms g;
  const int K = net.dims[net.num_layers];
  if (net.log_std == nullptr) return g;
  g.inv_std.resize(size_t(K));
  for (int j = 0; j < K; ++j) {
    g.log_std_sum += net.log_std[j];
    g.inv_std[size_t(j)] = std::exp(-net.log_std[j]);
  }
  g.log_norm = float(g.log_std_sum + 0.5 * K * kLog2Pi);
  return g;
}

// log pi(a | s) of one row from the actor output o [K]. keep [K] receives z = (a - mean)
// / std (Gaussian) or the log-softmax (categorical); *entropy the categorical's entropy.
inline float row_logp(const float* o, int K, const GaussianTerms& g, bool gaussian,
                      const float* a_box, int64_t a_disc, float* keep, float* entropy) {
  if (gaussian) {
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

void check_actions(const int64_t* a, int64_t n, int K) {
  for (int64_t r = 0; r < n; ++r) {
    if (a[r] < 0 || a[r] >= K) {
      throw std::invalid_argument("action " + std::to_string(a[r]) + " outside [0, " +
                                  std::to_string(K) + ")");
    }
  }
}

}  // namespace

mlp::Mlp ActorCritic::net(int k) const {
  mlp::Mlp m;
  m.num_layers = num_layers;
  m.act = act;
  for (int i = 0; i <= num_layers; ++i) m.dims[i] = dims[i];
  for (int i = 0; i < num_layers; ++i) {
    m.w[i] = w[i] + int64_t(k) * dims[i] * dims[i + 1];
    m.b[i] = b[i] + int64_t(k) * dims[i + 1];
  }
  return m;
}

void evaluate(const ActorCritic& net, const float* obs, int64_t n, const int64_t* act_discrete,
              const float* act_box, float* logp, float* values) {
  thread_local Workspace ws;
  const int L = net.num_layers, d0 = net.dims[0], K = net.dims[L];
  const bool gaussian = net.log_std != nullptr;
  if (logp != nullptr && !gaussian) check_actions(act_discrete, n, K);
  constexpr int64_t kChunk = 256;
  prepare(ws, net, std::min(n, kChunk));
  const GaussianTerms g = gaussian_terms(net);
  for (int64_t start = 0; start < n; start += kChunk) {
    const int64_t m = std::min(kChunk, n - start);
    forward(net, obs + start * d0, m, ws);
    for (int64_t r = 0; r < m; ++r) {
      const int64_t i = start + r;
      values[i] = ws.tr[1].out[size_t(r * K)];
      if (logp != nullptr) {
        float h = 0.0f;
        logp[i] = row_logp(ws.tr[0].out.data() + r * K, K, g, gaussian,
                           gaussian ? act_box + i * K : nullptr,
                           gaussian ? 0 : act_discrete[i], ws.g0.data() + r * K, &h);
      }
    }
  }
}

Stats ppo_epoch(const ActorCritic& net, Adam& adam, const Batch& batch, const int64_t* perm,
                int64_t mb, const Settings& s, float* logp_last) {
  thread_local Workspace ws;
  const int L = net.num_layers;
  const int64_t size = batch.size;
  const int d0 = net.dims[0], K = net.dims[L];
  const bool gaussian = net.log_std != nullptr;
  prepare(ws, net, std::min(mb, size));
  if (perm != nullptr) {
    for (int64_t r = 0; r < size; ++r) {
      if (perm[r] < 0 || perm[r] >= size) throw std::invalid_argument("perm entry out of range");
    }
  }
  if (!gaussian) check_actions(batch.act_discrete, size, K);

  Stats st;
  for (int64_t start = 0; start < size; start += mb) {
    const int64_t n = std::min(mb, size - start);
    const bool last_mb = start + mb >= size;
    const float inv_n = 1.0f / float(n);
    auto row = [&](int64_t r) { return perm != nullptr ? perm[start + r] : start + r; };
    // gather the observations
    float* X = ws.x.data();
    for (int64_t r = 0; r < n; ++r) {
      const float* src = batch.obs + row(r) * d0;
      std::copy(src, src + d0, X + r * d0);
    }
    forward(net, X, n, ws);
    // advantages of the minibatch (normalised as torch: unbiased std + 1e-8)
    float* A = ws.rows.data();
    float* g_lp = A + n;
    float* g_v = A + 2 * n;
    float* ent_row = A + 3 * n;
    for (int64_t r = 0; r < n; ++r) A[r] = batch.adv[row(r)];
    if (s.norm_adv) {
      double mean = 0.0;
      for (int64_t r = 0; r < n; ++r) mean += A[r];
      mean /= double(n);
      double var = 0.0;
      for (int64_t r = 0; r < n; ++r) var += (A[r] - mean) * (A[r] - mean);
      var /= double(n - 1);  // n = 1 gives NaN, as torch.std
      const float meanf = float(mean), denom = float(std::sqrt(var)) + 1e-8f;
      for (int64_t r = 0; r < n; ++r) A[r] = (A[r] - meanf) / denom;
    }
    // log-probs, the loss derivatives with respect to them and to the values
    const float* out0 = ws.tr[0].out.data();
    const float* out1 = ws.tr[1].out.data();
    float* gout0 = ws.g0.data();  // [n, K]
    float* gout1 = ws.g1.data();  // [n, K]
    const GaussianTerms g = gaussian ? gaussian_terms(net) : GaussianTerms();
    const std::vector<float>& inv_std = g.inv_std;
    const double log_std_sum = g.log_std_sum;
    const float c = s.clip_coef;
    double pg_sum = 0.0, v_sum = 0.0, ent_sum = 0.0;
    std::fill(ws.g_log_std.begin(), ws.g_log_std.begin() + K, 0.0f);
    for (int64_t r = 0; r < n; ++r) {
      const int64_t src = row(r);
      const float* o = out0 + r * K;
      float* go = gout0 + r * K;
      const float logp = row_logp(o, K, g, gaussian, gaussian ? batch.act_box + src * K : nullptr,
                                  gaussian ? 0 : batch.act_discrete[src], go, ent_row + r);
      if (last_mb) logp_last[r] = logp;
      const float ratio = std::exp(logp - batch.logp_old[src]);
      const float ra = ratio * A[r];
      const float rc = std::min(std::max(ratio, 1.0f - c), 1.0f + c) * A[r];
      g_lp[r] = ra <= rc ? -ra * inv_n : 0.0f;
      pg_sum -= std::min(ra, rc);
      const float v = out1[r * K];
      const float u = v - batch.ret[src];
      float gv;
      if (s.clip_vloss) {
        const float dv = v - batch.v_old[src];
        const float cdiff = batch.v_old[src] + std::min(std::max(dv, -c), c) - batch.ret[src];
        const bool use_u = u * u >= cdiff * cdiff;
        gv = use_u ? u : (std::fabs(dv) <= c ? cdiff : 0.0f);  // torch's clamp: inclusive
        v_sum += std::max(u * u, cdiff * cdiff);
      } else {
        gv = u;
        v_sum += u * u;
      }
      g_v[r] = gv * (s.vf_coef * inv_n);
    }
    // d loss / d actor output; d loss / d critic output (column 0 only)
    for (int64_t r = 0; r < n; ++r) {
      float* go = gout0 + r * K;
      if (gaussian) {
        for (int j = 0; j < K; ++j) {
          const float z = go[j];
          ws.g_log_std[size_t(j)] += (z * z - 1.0f) * g_lp[r];
          go[j] = z * inv_std[size_t(j)] * g_lp[r];
        }
      } else {
        const int64_t a = batch.act_discrete[row(r)];
        const float h = ent_row[r];
        for (int j = 0; j < K; ++j) {
          const float lsm = go[j];
          const float p = std::exp(lsm);
          float g = ((j == a ? 1.0f : 0.0f) - p) * g_lp[r];
          if (s.ent_coef != 0.0f) g += s.ent_coef * inv_n * p * (lsm + h);
          go[j] = g;
        }
      }
      float* g1 = gout1 + r * K;
      g1[0] = g_v[r];
      for (int j = 1; j < K; ++j) g1[j] = 0.0f;
    }
    if (gaussian) {
      for (int j = 0; j < K; ++j) ws.g_log_std[size_t(j)] -= s.ent_coef;
      ent_sum = double(n) * (log_std_sum + 0.5 * K * (1.0 + kLog2Pi));
    } else {
      for (int64_t r = 0; r < n; ++r) ent_sum += ent_row[r];
    }
    // backward through the actor from gout0 and the critic from gout1, into the
    // stacked gradients (slice k of each)
    for (int k = 0; k < 2; ++k) {
      float* gw[kMaxLayers];
      float* gb[kMaxLayers];
      for (int i = 0; i < L; ++i) {
        gw[i] = ws.gw[i].data() + int64_t(k) * net.dims[i] * net.dims[i + 1];
        gb[i] = ws.gb[i].data() + int64_t(k) * net.dims[i + 1];
      }
      mlp::backward(net.net(k), ws.tr[k], k == 0 ? gout0 : gout1, gw, gb);
    }
    // global grad-norm clip and Adam
    const int P = 2 * L + (gaussian ? 1 : 0);
    float* params[2 * kMaxLayers + 1];
    const float* grads[2 * kMaxLayers + 1];
    int64_t sizes[2 * kMaxLayers + 1];
    for (int i = 0; i < L; ++i) {
      params[i] = net.w[i];
      grads[i] = ws.gw[i].data();
      sizes[i] = 2 * int64_t(net.dims[i]) * net.dims[i + 1];
      params[L + i] = net.b[i];
      grads[L + i] = ws.gb[i].data();
      sizes[L + i] = 2 * int64_t(net.dims[i + 1]);
    }
    if (gaussian) {
      params[2 * L] = net.log_std;
      grads[2 * L] = ws.g_log_std.data();
      sizes[2 * L] = K;
    }
    float inv_scale = 1.0f;
    if (s.max_grad_norm > 0.0f) {
      double total = 0.0;
      for (int q = 0; q < P; ++q) total += sum_squares(grads[q], sizes[q]);
      const float norm = float(std::sqrt(total));
      const float scale = std::max(1.0f, (norm + 1e-6f) / s.max_grad_norm);
      inv_scale = 1.0f / scale;
    }
    adam.step += 1;
    const double bc1 = 1.0 - std::pow(adam.beta1, double(adam.step));
    const double bc2 = 1.0 - std::pow(adam.beta2, double(adam.step));
    const float step_size = float(adam.lr / bc1);
    const float inv_bc2_sqrt = float(1.0 / std::sqrt(bc2));
    for (int q = 0; q < P; ++q) {
      adam_step(params[q], grads[q], adam.m[q], adam.v[q], sizes[q], inv_scale, float(adam.beta1),
                float(adam.beta2), step_size, inv_bc2_sqrt, float(adam.eps));
    }
    st.minibatches += 1;
    if (last_mb) {
      st.pg_loss = pg_sum / double(n);
      st.v_loss = 0.5 * v_sum / double(n);
      st.entropy = ent_sum / double(n);
    }
  }
  return st;
}

}  // namespace update
}  // namespace pgfast
