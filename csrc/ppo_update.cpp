// See ppo_update.hpp.
#include "ppo_update.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "adam.hpp"
#include "dense.hpp"
#include "dist.hpp"
#include "mlp.hpp"

namespace pgfast {
namespace update {
namespace {

// ---------------------------------------------------------------- workspace

struct Workspace {
  std::vector<float> x;                     // [n, d0]
  mlp::Trace tr[2];                         // forward of actor and critic
  std::vector<float> g0, g1;                // d loss / d output, actor and critic [n, out_dim]
  std::vector<float> gw[kMaxLayers];        // [2, d_i, d_{i+1}]
  std::vector<float> gb[kMaxLayers];        // [2, d_{i+1}]
  std::vector<float> g_log_std;
  std::vector<float> rows;                  // per-row scalars, 6 n
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
  fit(ws.rows, size_t(6 * nmax));
}

// Actor (k = 0) and critic (k = 1) on X [n, d0], kept in ws.tr[k]. Each row's result
// depends on that row only (csrc/dense.hpp).
void forward(const ActorCritic& net, const float* X, int64_t n, Workspace& ws) {
  for (int k = 0; k < 2; ++k) mlp::forward(net.net(k), X, n, ws.tr[k]);
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
              const float* act_box, float* logp, float* values, int num_threads) {
  dense::ThreadScope threads(num_threads);
  const int L = net.num_layers, d0 = net.dims[0], K = net.dims[L];
  const bool gaussian = net.log_std != nullptr;
  if (logp != nullptr && !gaussian) dist::check_actions(act_discrete, n, K);
  constexpr int64_t kChunk = 256;
  const dist::Terms g = dist::terms(net.log_std, K);
  // chunks of rows, independent of each other: blocks of them across the scope's threads, each
  // thread with its own workspace (the products inside a block stay on its thread)
  int64_t work = 0;
  for (int i = 0; i < L; ++i) work += 2 * int64_t(net.dims[i]) * net.dims[i + 1] * kChunk;
  dense::for_blocks((n + kChunk - 1) / kChunk, 1, work, [&](int64_t c0, int64_t c1) {
    thread_local Workspace ws;
    prepare(ws, net, std::min(n, kChunk));
    for (int64_t start = c0 * kChunk; start < std::min(n, c1 * kChunk); start += kChunk) {
      const int64_t m = std::min(kChunk, n - start);
      forward(net, obs + start * d0, m, ws);
      for (int64_t r = 0; r < m; ++r) {
        const int64_t i = start + r;
        values[i] = ws.tr[1].out[size_t(r * K)];
        if (logp != nullptr) {
          float h = 0.0f;
          logp[i] = dist::row_logp(ws.tr[0].out.data() + r * K, g,
                                   gaussian ? act_box + i * K : nullptr,
                                   gaussian ? 0 : act_discrete[i], ws.g0.data() + r * K, &h);
        }
      }
    }
  });
}

Stats ppo_epoch(const ActorCritic& net, Adam& adam, const Batch& batch, const int64_t* perm,
                int64_t mb, const Settings& s, float* logp_last) {
  thread_local Workspace ws;
  dense::ThreadScope threads(s.num_threads);
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
  if (!gaussian) dist::check_actions(batch.act_discrete, size, K);

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
    const dist::Terms g = dist::terms(net.log_std, K);
    const float c = s.clip_coef;
    double pg_sum = 0.0, v_sum = 0.0, ent_sum = 0.0;
    std::fill(ws.g_log_std.begin(), ws.g_log_std.begin() + K, 0.0f);
    // each row on its own (blocks of rows across the threads); the losses' sums after, in order
    float* pg_row = A + 4 * n;
    float* v_row = A + 5 * n;
    dense::for_blocks(n, 16, 64 * (K + 1), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t src = row(r);
        const float* o = out0 + r * K;
        float* go = gout0 + r * K;
        const float logp = dist::row_logp(o, g, gaussian ? batch.act_box + src * K : nullptr,
                                          gaussian ? 0 : batch.act_discrete[src], go, ent_row + r);
        if (last_mb) logp_last[r] = logp;
        const float ratio = std::exp(logp - batch.logp_old[src]);
        const float ra = ratio * A[r];
        const float rc = std::min(std::max(ratio, 1.0f - c), 1.0f + c) * A[r];
        g_lp[r] = ra <= rc ? -ra * inv_n : 0.0f;
        pg_row[r] = std::min(ra, rc);
        const float v = out1[r * K];
        const float u = v - batch.ret[src];
        float gv;
        if (s.clip_vloss) {
          const float dv = v - batch.v_old[src];
          const float cdiff = batch.v_old[src] + std::min(std::max(dv, -c), c) - batch.ret[src];
          const bool use_u = u * u >= cdiff * cdiff;
          gv = use_u ? u : (std::fabs(dv) <= c ? cdiff : 0.0f);  // torch's clamp: inclusive
          v_row[r] = std::max(u * u, cdiff * cdiff);
        } else {
          gv = u;
          v_row[r] = u * u;
        }
        g_v[r] = gv * (s.vf_coef * inv_n);
      }
    });
    for (int64_t r = 0; r < n; ++r) {
      pg_sum -= pg_row[r];
      v_sum += v_row[r];
    }
    // d loss / d actor output; d loss / d critic output (column 0 only)
    dist::logp_backward(g, n, g_lp, ent_row,
                        perm != nullptr ? batch.act_discrete : batch.act_discrete + start,
                        perm != nullptr ? perm + start : nullptr, s.ent_coef, gout0,
                        ws.g_log_std.data());
    for (int64_t r = 0; r < n; ++r) {
      float* g1 = gout1 + r * K;
      g1[0] = g_v[r];
      for (int j = 1; j < K; ++j) g1[j] = 0.0f;
    }
    if (gaussian) {
      ent_sum = double(n) * dist::gaussian_entropy(g);
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
    adam::Tensors t;
    t.count = 2 * L + (gaussian ? 1 : 0);
    for (int i = 0; i < L; ++i) {
      t.p[i] = net.w[i];
      t.g[i] = ws.gw[i].data();
      t.size[i] = 2 * int64_t(net.dims[i]) * net.dims[i + 1];
      t.p[L + i] = net.b[i];
      t.g[L + i] = ws.gb[i].data();
      t.size[L + i] = 2 * int64_t(net.dims[i + 1]);
    }
    if (gaussian) {
      t.p[2 * L] = net.log_std;
      t.g[2 * L] = ws.g_log_std.data();
      t.size[2 * L] = K;
    }
    for (int q = 0; q < t.count; ++q) {
      t.m[q] = adam.m[q];
      t.v[q] = adam.v[q];
    }
    adam::Hyper h{adam.lr, adam.beta1, adam.beta2, adam.eps, adam.step};
    adam::step(t, h, s.max_grad_norm);
    adam.step = h.step;
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
