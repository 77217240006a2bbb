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
  std::vector<float> x;                         // [n, d0]
  mlp::Trace tr[2];                             // forward of actor and critic
  std::vector<float> g0, g1;                    // d loss / d output: actor [n, K], critic [n]
  std::vector<float> grad[adam::kMaxTensors];   // the Adam tensors' gradients, in their order
  std::vector<float> rows;                      // per-row scalars, 6 n
};

template <class T>
void fit(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

// Room for batches of up to nmax rows; points adam.t.g at the gradient buffers.
void prepare(Workspace& ws, const ActorCritic& net, Adam& adam, int64_t nmax) {
  const int K = net.actor.out_dim();
  fit(ws.x, size_t(nmax * net.actor.dims[0]));
  ws.tr[0].prepare(net.actor, nmax);
  ws.tr[1].prepare(net.critic, nmax);
  fit(ws.g0, size_t(nmax * K));
  fit(ws.g1, size_t(nmax));
  for (int q = 0; q < adam.t.count; ++q) {
    fit(ws.grad[q], size_t(adam.t.size[q]));
    adam.t.g[q] = ws.grad[q].data();
  }
  fit(ws.rows, size_t(6 * nmax));
}

// fn(0) (the actor's part) and fn(1) (the critic's). With exactly two threads in scope, one
// network per thread: each network's products then run whole on its thread, with no hand-off
// inside them (at a minibatch of 64 rows those hand-offs cost about as much as the products
// save). Otherwise one after the other, each product split into row blocks across the
// scope's threads. The networks share no buffer, and a product's bits do not depend on its
// thread, so both ways give the same results.
template <class F>
void each_net(F&& fn) {
  if (dense::scope_threads() == 2) {
    dense::for_blocks(2, 1, dense::kMinBlockWork, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) fn(int(i));
    });
  } else {
    fn(0);
    fn(1);
  }
}

// Actor and critic on X [n, d0], kept in ws.tr[0] and ws.tr[1]. Each row's result depends
// on that row only (csrc/dense.hpp).
void forward(const ActorCritic& net, const float* X, int64_t n, Workspace& ws) {
  each_net([&](int k) { mlp::forward(k == 0 ? net.actor : net.critic, X, n, ws.tr[k]); });
}

// The clip's sum of squares in the stacked layout's order (see ppo_update.hpp): per layer
// index the weights of both networks as one virtual tensor, then the biases, then log_std.
double stacked_grad_sq(const ActorCritic& net, const adam::Tensors& t) {
  const mlp::Mlp& a = net.actor;
  const mlp::Mlp& c = net.critic;
  const int La = a.num_layers, Lc = c.num_layers, K = a.out_dim();
  const int Pa = 2 * La + (net.log_std != nullptr ? 1 : 0);
  const bool paired = La == Lc;
  double total = 0.0;
  for (int kind = 0; kind < 2; ++kind) {  // weights, then biases
    for (int i = 0; i < std::max(La, Lc); ++i) {
      adam::Part parts[2];
      int count = 0;
      int64_t len = 0;
      if (i < La) {
        const int64_t n = kind == 0 ? int64_t(a.dims[i]) * a.dims[i + 1] : a.dims[i + 1];
        parts[count++] = adam::Part{t.g[kind * La + i], n, 0, 1};
        len = n;
      }
      if (i < Lc) {
        const int64_t n = kind == 0 ? int64_t(c.dims[i]) * c.dims[i + 1] : c.dims[i + 1];
        const int64_t stride = paired && i == Lc - 1 ? K : 1;  // the value column of a K-wide output
        parts[count++] = adam::Part{t.g[Pa + kind * Lc + i], n, len, stride};
        len += n * stride;
      }
      total += adam::sum_squares_parts(parts, count, len);
    }
  }
  if (net.log_std != nullptr) total += adam::sum_squares(t.g[2 * La], K);
  return total;
}

}  // namespace

void evaluate(const ActorCritic& net, const float* obs, int64_t n, const int64_t* act_discrete,
              const float* act_box, float* logp, float* values, int num_threads) {
  dense::ThreadScope threads(num_threads);
  const int d0 = net.actor.dims[0], K = net.actor.out_dim();
  const bool gaussian = net.log_std != nullptr;
  if (logp != nullptr && !gaussian) dist::check_actions(act_discrete, n, K);
  constexpr int64_t kChunk = 256;
  const dist::Terms g = dist::terms(net.log_std, K);
  // chunks of rows, independent of each other: blocks of them across the scope's threads, each
  // thread with its own workspace (the products inside a block stay on its thread)
  int64_t work = 0;
  for (const mlp::Mlp* m : {&net.actor, &net.critic}) {
    for (int i = 0; i < m->num_layers; ++i) work += int64_t(m->dims[i]) * m->dims[i + 1] * kChunk;
  }
  dense::for_blocks((n + kChunk - 1) / kChunk, 1, work, [&](int64_t c0, int64_t c1) {
    thread_local Workspace ws;
    Adam none;
    prepare(ws, net, none, std::min(n, kChunk));
    for (int64_t start = c0 * kChunk; start < std::min(n, c1 * kChunk); start += kChunk) {
      const int64_t m = std::min(kChunk, n - start);
      forward(net, obs + start * d0, m, ws);
      for (int64_t r = 0; r < m; ++r) {
        const int64_t i = start + r;
        values[i] = ws.tr[1].out[size_t(r)];
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

namespace {

struct Sums {
  double pg = 0.0, v = 0.0, ent = 0.0;
};

// One minibatch of n rows (row r is batch row idx[r], or start + r where idx is null; A [n]
// their advantages, normalised as asked; its forward in ws): the loss derivatives with respect
// to the actor's output (ws.g0 [n, K]), the value (ws.g1 [n]) and log_std (g_log_std [K]),
// and the sums of the losses and entropies. logp_out (or null) receives the log-probs.
Sums loss_grads(const ActorCritic& net, const Batch& batch, const int64_t* idx, int64_t start,
                int64_t n, const float* A, const Settings& s, Workspace& ws, float* g_log_std,
                float* logp_out) {
  const int K = net.actor.out_dim();
  const bool gaussian = net.log_std != nullptr;
  const float inv_n = 1.0f / float(n);
  float* g_lp = ws.rows.data() + n;
  float* ent_row = ws.rows.data() + 3 * n;
  const float* out0 = ws.tr[0].out.data();
  const float* v_out = ws.tr[1].out.data();
  float* gout0 = ws.g0.data();
  const dist::Terms g = dist::terms(net.log_std, K);
  const float c = s.clip_coef;
  Sums sums;
  if (gaussian) std::fill(g_log_std, g_log_std + K, 0.0f);
  // each row on its own (blocks of rows across the threads); the losses' sums after, in order
  float* pg_row = ws.rows.data() + 4 * n;
  float* v_row = ws.rows.data() + 5 * n;
  dense::for_blocks(n, 16, 64 * (K + 1), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t src = idx != nullptr ? idx[r] : start + r;
      const float logp = dist::row_logp(out0 + r * K, g, gaussian ? batch.act_box + src * K : nullptr,
                                        gaussian ? 0 : batch.act_discrete[src], gout0 + r * K,
                                        ent_row + r);
      if (logp_out != nullptr) logp_out[r] = logp;
      const float ratio = std::exp(logp - batch.logp_old[src]);
      const float ra = ratio * A[r];
      const float rc = std::min(std::max(ratio, 1.0f - c), 1.0f + c) * A[r];
      g_lp[r] = ra <= rc ? -ra * inv_n : 0.0f;
      pg_row[r] = std::min(ra, rc);
      const float v = v_out[r];
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
      ws.g1[size_t(r)] = gv * (s.vf_coef * inv_n);
    }
  });
  for (int64_t r = 0; r < n; ++r) {
    sums.pg -= pg_row[r];
    sums.v += v_row[r];
  }
  dist::logp_backward(g, n, g_lp, ent_row, idx != nullptr ? batch.act_discrete : batch.act_discrete + start,
                      idx, s.ent_coef, gout0, g_log_std);
  if (gaussian) {
    sums.ent = double(n) * dist::gaussian_entropy(g);
  } else {
    for (int64_t r = 0; r < n; ++r) sums.ent += ent_row[r];
  }
  return sums;
}

// The advantages of rows [n] into A, normalised as torch does where asked (unbiased std + 1e-8).
void minibatch_adv(const Batch& batch, const int64_t* idx, int64_t start, int64_t n, bool norm,
                   float* A) {
  for (int64_t r = 0; r < n; ++r) A[r] = batch.adv[idx != nullptr ? idx[r] : start + r];
  if (!norm) return;
  double mean = 0.0;
  for (int64_t r = 0; r < n; ++r) mean += A[r];
  mean /= double(n);
  double var = 0.0;
  for (int64_t r = 0; r < n; ++r) var += (A[r] - mean) * (A[r] - mean);
  var /= double(n - 1);  // n = 1 gives NaN, as torch.std
  const float meanf = float(mean), denom = float(std::sqrt(var)) + 1e-8f;
  for (int64_t r = 0; r < n; ++r) A[r] = (A[r] - meanf) / denom;
}

}  // namespace

Stats ppo_epoch(const ActorCritic& net, Adam& adam, const Batch& batch, const int64_t* perm,
                int64_t mb, const Settings& s, float* logp_last) {
  thread_local Workspace ws;
  dense::ThreadScope threads(s.num_threads);
  const int64_t size = batch.size;
  const int d0 = net.actor.dims[0], K = net.actor.out_dim();
  const int La = net.actor.num_layers, Lc = net.critic.num_layers;
  const bool gaussian = net.log_std != nullptr;
  const int Pa = 2 * La + (gaussian ? 1 : 0);
  prepare(ws, net, adam, std::min(mb, size));
  if (perm != nullptr) {
    for (int64_t r = 0; r < size; ++r) {
      if (perm[r] < 0 || perm[r] >= size) throw std::invalid_argument("perm entry out of range");
    }
  }
  if (!gaussian) dist::check_actions(batch.act_discrete, size, K);
  float* gw[2][mlp::kMaxLayers];
  float* gb[2][mlp::kMaxLayers];
  for (int i = 0; i < La; ++i) {
    gw[0][i] = ws.grad[i].data();
    gb[0][i] = ws.grad[La + i].data();
  }
  for (int i = 0; i < Lc; ++i) {
    gw[1][i] = ws.grad[Pa + i].data();
    gb[1][i] = ws.grad[Pa + Lc + i].data();
  }
  float* g_log_std = gaussian ? ws.grad[2 * La].data() : nullptr;

  Stats st;
  for (int64_t start = 0; start < size; start += mb) {
    const int64_t n = std::min(mb, size - start);
    const bool last_mb = start + mb >= size;
    const int64_t* idx = perm != nullptr ? perm + start : nullptr;
    float* X = ws.x.data();  // gather the observations
    for (int64_t r = 0; r < n; ++r) {
      const float* src = batch.obs + (idx != nullptr ? idx[r] : start + r) * d0;
      std::copy(src, src + d0, X + r * d0);
    }
    forward(net, X, n, ws);
    float* A = ws.rows.data();
    minibatch_adv(batch, idx, start, n, s.norm_adv, A);
    const Sums sums = loss_grads(net, batch, idx, start, n, A, s, ws, g_log_std,
                                 last_mb ? logp_last : nullptr);
    Workspace& w = ws;  // this thread's: the lambda runs on another for the critic
    each_net([&](int k) {
      mlp::backward(k == 0 ? net.actor : net.critic, w.tr[k], k == 0 ? w.g0.data() : w.g1.data(),
                    gw[k], gb[k]);
    });
    const double grad_sq = s.max_grad_norm > 0.0f ? stacked_grad_sq(net, adam.t) : 0.0;
    adam::step_with_norm(adam.t, adam.hyper, s.max_grad_norm, grad_sq);
    st.minibatches += 1;
    if (last_mb) {
      st.pg_loss = sums.pg / double(n);
      st.v_loss = 0.5 * sums.v / double(n);
      st.entropy = sums.ent / double(n);
    }
  }
  return st;
}

}  // namespace update
}  // namespace pgfast
