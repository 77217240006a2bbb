// See pg_update.hpp.
#include "pg_update.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "dense.hpp"
#include "dist.hpp"

namespace pgfast {
namespace pg {
namespace {

template <class T>
void fit(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

// A forward trace, the gradient buffers of one net (weights..., biases..., log_std) and
// per-row scratch.
struct Workspace {
  std::vector<float> x;
  mlp::Trace tr;
  std::vector<float> gout;
  std::vector<float> grad[adam::kMaxTensors];
  std::vector<float> rows;
  float* gw[mlp::kMaxLayers] = {};
  float* gb[mlp::kMaxLayers] = {};
  float* g_log_std = nullptr;

  void prepare(Net& n, int64_t nmax) {
    const mlp::Mlp& m = n.net;
    const int L = m.num_layers, K = m.out_dim();
    fit(x, size_t(nmax * m.dims[0]));
    tr.prepare(m, nmax);
    fit(gout, size_t(nmax * K));
    fit(rows, size_t(4 * nmax));
    for (int i = 0; i < L; ++i) {
      fit(grad[i], size_t(m.dims[i]) * m.dims[i + 1]);
      fit(grad[L + i], size_t(m.dims[i + 1]));
      gw[i] = grad[i].data();
      gb[i] = grad[L + i].data();
      n.opt.g[i] = gw[i];
      n.opt.g[L + i] = gb[i];
    }
    fit(grad[2 * L], size_t(K));
    g_log_std = grad[2 * L].data();
    if (n.log_std != nullptr) n.opt.g[2 * L] = g_log_std;
  }
};

void check_perm(const int64_t* perm, int64_t n) {
  for (int64_t r = 0; r < n; ++r) {
    if (perm[r] < 0 || perm[r] >= n) throw std::invalid_argument("perm entry out of range");
  }
}

// The clip's sum of squares of the critic's gradients, each tensor by adam::sum_squares, the
// output layer's weight and bias read as column 0 of `width` columns (ValueSettings).
double value_grad_sq(const Net& critic, int64_t width) {
  const adam::Tensors& t = critic.opt;
  const int L = critic.net.num_layers;
  double total = 0.0;
  for (int q = 0; q < t.count; ++q) {
    if (width > 1 && (q == L - 1 || q == 2 * L - 1)) {
      const adam::Part part{t.g[q], t.size[q], 0, width};
      total += adam::sum_squares_parts(&part, 1, t.size[q] * width);
    } else {
      total += adam::sum_squares(t.g[q], t.size[q]);
    }
  }
  return total;
}

}  // namespace

double value_fit(Net& critic, const Batch& batch, const int64_t* perm, const ValueSettings& s) {
  thread_local Workspace ws;
  dense::ThreadScope threads(s.num_threads);
  const mlp::Mlp& m = critic.net;
  const int64_t B = batch.size, mb = s.minibatch_size;
  const int d0 = m.dims[0], K = m.out_dim();
  if (perm != nullptr) {
    for (int64_t e = 0; e < s.epochs; ++e) check_perm(perm + e * B, B);
  }
  ws.prepare(critic, std::min(mb, B));
  double loss = 0.0;
  for (int64_t e = 0; e < s.epochs; ++e) {
    const int64_t* pe = perm != nullptr ? perm + e * B : nullptr;
    for (int64_t start = 0; start < B; start += mb) {
      const int64_t n = std::min(mb, B - start);
      const float* X = batch.obs + start * d0;
      if (pe != nullptr) {  // gather the rows
        float* dst = ws.x.data();
        for (int64_t r = 0; r < n; ++r) {
          const float* src = batch.obs + pe[start + r] * d0;
          std::copy(src, src + d0, dst + r * d0);
        }
        X = dst;
      }
      mlp::forward(m, X, n, ws.tr);
      const float inv_n = 1.0f / float(n);
      double sq = 0.0;
      float* g = ws.gout.data();
      for (int64_t r = 0; r < n; ++r) {
        const int64_t src = pe != nullptr ? pe[start + r] : start + r;
        const float u = ws.tr.out[size_t(r * K)] - batch.ret[src];
        sq += double(u) * u;
        g[r * K] = u * inv_n;
        for (int j = 1; j < K; ++j) g[r * K + j] = 0.0f;
      }
      mlp::backward(m, ws.tr, g, ws.gw, ws.gb);
      const double grad_sq = s.max_grad_norm > 0.0f ? value_grad_sq(critic, s.norm_width) : 0.0;
      adam::step_with_norm(critic.opt, critic.hyper, s.max_grad_norm, grad_sq);
      loss = 0.5 * sq / double(n);
    }
  }
  return loss;
}

PgStats vpg_step(Net& actor, const Batch& batch, const PgSettings& s) {
  thread_local Workspace ws;
  dense::ThreadScope threads(s.num_threads);
  const mlp::Mlp& m = actor.net;
  const int64_t n = batch.size;
  const int K = m.out_dim();
  const bool gaussian = actor.log_std != nullptr;
  if (!gaussian) dist::check_actions(batch.act_discrete, n, K);
  ws.prepare(actor, n);
  mlp::forward(m, batch.obs, n, ws.tr);
  const dist::Terms g = dist::terms(actor.log_std, K);
  float* g_lp = ws.rows.data();
  float* ent_row = g_lp + n;
  const float inv_n = 1.0f / float(n);
  double pg_sum = 0.0, ent_sum = 0.0;
  float* gout = ws.gout.data();
  for (int64_t r = 0; r < n; ++r) {
    const float logp = dist::row_logp(ws.tr.out.data() + r * K, g,
                                      gaussian ? batch.act_box + r * K : nullptr,
                                      gaussian ? 0 : batch.act_discrete[r], gout + r * K,
                                      ent_row + r);
    pg_sum += double(logp) * batch.adv[r];
    g_lp[r] = -batch.adv[r] * inv_n;
    if (!gaussian) ent_sum += ent_row[r];
  }
  if (gaussian) std::fill(ws.g_log_std, ws.g_log_std + K, 0.0f);
  dist::logp_backward(g, n, g_lp, ent_row, batch.act_discrete, nullptr, s.ent_coef, gout,
                      ws.g_log_std);
  mlp::backward(m, ws.tr, gout, ws.gw, ws.gb);
  adam::step(actor.opt, actor.hyper, s.max_grad_norm);
  PgStats st;
  st.pg_loss = -pg_sum / double(n);
  st.entropy = gaussian ? dist::gaussian_entropy(g) : ent_sum / double(n);
  // approx_kl of the new policy against the rollout's
  mlp::forward(m, batch.obs, n, ws.tr);
  const dist::Terms g2 = dist::terms(actor.log_std, K);
  double kl = 0.0;
  for (int64_t r = 0; r < n; ++r) {
    float h = 0.0f;
    const float logp = dist::row_logp(ws.tr.out.data() + r * K, g2,
                                      gaussian ? batch.act_box + r * K : nullptr,
                                      gaussian ? 0 : batch.act_discrete[r], gout + r * K, &h);
    const double d = double(logp) - batch.logp_old[r];
    kl += std::expm1(d) - d;
  }
  st.approx_kl = kl / double(n);
  return st;
}

}  // namespace pg
}  // namespace pgfast
