// See trpo_update.hpp.
#include "trpo_update.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "dense.hpp"
#include "dist.hpp"

namespace pgfast {
namespace trpo {
namespace {

double dot(const float* a, const float* b, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += double(a[i]) * b[i];
  return s;
}

// Whether the Fisher-vector products go through the output Jacobian's rows: multiply-adds
// per row of (cg_iters + 1) products each way, plus computing the rows once, and the rows'
// memory (out_dim x the hidden widths per row) under a cap. Settings::fvp_method forces it.
bool use_jacobian(const mlp::Mlp& m, int64_t rows, const Settings& s) {
  if (s.fvp_method != FvpMethod::kAuto) return s.fvp_method == FvpMethod::kJacobian;
  const int L = m.num_layers, K = m.out_dim();
  int64_t weights = 0, inner = 0, hidden = 0, once = 0;
  for (int i = 0; i < L; ++i) weights += int64_t(m.dims[i]) * m.dims[i + 1];
  for (int i = 1; i < L; ++i) inner += int64_t(m.dims[i]) * m.dims[i + 1];
  for (int i = 1; i < L; ++i) hidden += m.dims[i];
  for (int i = 1; i + 1 < L; ++i) once += int64_t(m.dims[i]) * m.dims[i + 1];
  if (L >= 2) once += m.dims[L - 1];
  once *= K;
  // jvp: layer 0 once, later layers twice; backward: the weight gradients and products with
  // W^T of the later layers
  const int64_t by_jvp = 2 * (weights + inner);
  const int64_t by_rows = 2 * weights + 2 * int64_t(K) * hidden;
  const int64_t products = int64_t(s.cg_iters) + 1;
  const bool cheaper = products * by_rows + once < products * by_jvp;
  return cheaper && rows * K * hidden <= (int64_t(1) << 24);
}

// The buffers of a step, kept by each thread from one call to the next (fresh pages cost
// more than the products at CartPole's sizes).
struct Workspace {
  mlp::Trace tr, trs;
  std::vector<float> xs, probs, dout, u, keep, rows, out_old, ls_old;
  std::vector<float> jac[mlp::kMaxLayers];
};

Workspace& workspace() {
  thread_local Workspace ws;
  return ws;
}

// Everything the step needs at theta_old: the forward of the batch, the surrogate gradient,
// the Fisher rows; the flat layout of the actor's parameters.
struct Model {
  const pg::Net& a;
  const pg::Batch& b;
  const Settings& s;
  const mlp::Mlp& m;
  const int L, K;
  const bool gaussian;
  int64_t n = 0;                      // parameters
  int64_t off[adam::kMaxTensors] = {};
  Workspace& ws;
  mlp::Trace &tr, &trs;               // the batch; the Fisher rows (when subsampled)
  mlp::Trace* fr = nullptr;           // the trace the Fisher-vector products use
  int64_t ns = 0;                     // Fisher rows
  std::vector<float>&xs, &probs, &dout, &u, &keep, &rows, &out_old, &ls_old;
  std::vector<float>* jac;            // [kMaxLayers]: the output Jacobian's rows
  dist::Terms terms;
  bool by_jacobian = false;           // the products through jac

  Model(const pg::Net& actor, const pg::Batch& batch, const Settings& st)
      : a(actor), b(batch), s(st), m(actor.net), L(actor.net.num_layers),
        K(actor.net.out_dim()), gaussian(actor.log_std != nullptr), ws(workspace()),
        tr(ws.tr), trs(ws.trs), xs(ws.xs), probs(ws.probs), dout(ws.dout), u(ws.u),
        keep(ws.keep), rows(ws.rows), out_old(ws.out_old), ls_old(ws.ls_old), jac(ws.jac) {
    for (int q = 0; q < a.opt.count; ++q) {
      off[q] = n;
      n += a.opt.size[q];
    }
    const int64_t B = b.size, d0 = m.dims[0];
    if (!gaussian) dist::check_actions(b.act_discrete, B, K);
    tr.prepare(m, B);
    mlp::forward(m, b.obs, B, tr);
    out_old.assign(tr.out.begin(), tr.out.begin() + B * K);
    if (gaussian) ls_old.assign(a.log_std, a.log_std + K);
    terms = dist::terms(a.log_std, K);
    ns = s.fvp_subsample >= 1.0f ? B
                                 : std::max<int64_t>(1, std::llround(double(s.fvp_subsample) * B));
    if (ns == B) {
      fr = &tr;
    } else {
      xs.resize(size_t(ns * d0));
      for (int64_t i = 0; i < ns; ++i) {
        const int64_t r = i * B / ns;
        std::copy(b.obs + r * d0, b.obs + (r + 1) * d0, xs.data() + i * d0);
      }
      trs.prepare(m, ns);
      mlp::forward(m, xs.data(), ns, trs);
      fr = &trs;
    }
    dout.resize(size_t(ns * K));
    u.resize(size_t(ns * K));
    if (!gaussian) {  // softmax of the Fisher rows
      probs.resize(size_t(ns * K));
      for (int64_t r = 0; r < ns; ++r) {
        const float* o = fr->out.data() + r * K;
        float* p = probs.data() + r * K;
        float mx = o[0];
        for (int j = 1; j < K; ++j) mx = std::max(mx, o[j]);
        float se = 0.0f;
        for (int j = 0; j < K; ++j) se += std::exp(o[j] - mx);
        const float lse = mx + std::log(se);
        for (int j = 0; j < K; ++j) p[j] = std::exp(o[j] - lse);
      }
    }
    keep.resize(size_t(B * K));
    rows.resize(size_t(2 * B));
    by_jacobian = use_jacobian(m, ns, s);
    if (by_jacobian) mlp::output_jacobian(m, *fr, jac);
  }

  float* const* w_of(float* v, float** buf) const {
    for (int i = 0; i < L; ++i) buf[i] = v + off[i];
    return buf;
  }
  float* const* b_of(float* v, float** buf) const {
    for (int i = 0; i < L; ++i) buf[i] = v + off[L + i];
    return buf;
  }

  // g = d surrogate / d theta; returns the surrogate (+ entropy bonus).
  double grad(float* g) {
    const int64_t B = b.size;
    float* g_lp = rows.data();
    float* ent = g_lp + B;
    const float inv_n = 1.0f / float(B);
    double surr = 0.0, ent_sum = 0.0;
    for (int64_t r = 0; r < B; ++r) {
      const float lp = dist::row_logp(tr.out.data() + r * K, terms,
                                      gaussian ? b.act_box + r * K : nullptr,
                                      gaussian ? 0 : b.act_discrete[r], keep.data() + r * K,
                                      ent + r);
      const float ratio = std::exp(lp - b.logp_old[r]);
      surr += double(ratio) * b.adv[r];
      g_lp[r] = ratio * b.adv[r] * inv_n;
      if (!gaussian) ent_sum += ent[r];
    }
    float* g_ls = g + (gaussian ? off[2 * L] : 0);
    if (gaussian) std::fill(g_ls, g_ls + K, 0.0f);
    // the gradient of surr + ent_coef mean(H) is logp_backward's with -ent_coef
    dist::logp_backward(terms, B, g_lp, ent, b.act_discrete, nullptr, -s.ent_coef, keep.data(),
                        g_ls);
    float* wb[mlp::kMaxLayers];
    float* bb[mlp::kMaxLayers];
    mlp::backward(m, tr, keep.data(), w_of(g, wb), b_of(g, bb));
    const double h = gaussian ? dist::gaussian_entropy(terms) : ent_sum / double(B);
    return surr / double(B) + double(s.ent_coef) * h;
  }

  // out = (F + damping I) v.
  void fvp(const float* v, float* out) {
    float* vw[mlp::kMaxLayers];
    float* vb[mlp::kMaxLayers];
    float* const* tw = w_of(const_cast<float*>(v), vw);
    float* const* tb = b_of(const_cast<float*>(v), vb);
    float* wb[mlp::kMaxLayers];
    float* bb[mlp::kMaxLayers];
    if (by_jacobian) {
      jacobian_products(tw, tb, w_of(out, wb), b_of(out, bb));
    } else {
      mlp::jvp(m, *fr, tw, tb, dout.data());
      weigh();
      mlp::backward(m, *fr, u.data(), w_of(out, wb), b_of(out, bb));
    }
    if (gaussian) {
      for (int j = 0; j < K; ++j) out[off[2 * L] + j] = 2.0f * v[off[2 * L] + j];
    }
    for (int64_t i = 0; i < n; ++i) out[i] += s.cg_damping * v[i];
  }

  // u = M (J v) / ns from dout = J v: M the Fisher of the output distribution per row.
  void weigh() {
    const float inv_n = 1.0f / float(ns);
    for (int64_t r = 0; r < ns; ++r) {
      const float* d = dout.data() + r * K;
      float* ur = u.data() + r * K;
      if (gaussian) {
        for (int j = 0; j < K; ++j) {
          const float is = terms.inv_std[size_t(j)];
          ur[j] = d[j] * is * is * inv_n;
        }
      } else {
        const float* p = probs.data() + r * K;
        float pd = 0.0f;
        for (int j = 0; j < K; ++j) pd += p[j] * d[j];
        for (int j = 0; j < K; ++j) ur[j] = p[j] * (d[j] - pd) * inv_n;
      }
    }
  }

  // J^T M J v through the output Jacobian's rows (jac): J v = sum over layers of
  // (h_i dW_i + db_i) . d out / d z_i per row; J^T u: each layer's weight gradient of
  // sum_k u_k d out_k / d z_i. No products through the weights W_i themselves.
  void jacobian_products(float* const* tw, float* const* tb, float* const* gw,
                         float* const* gb) {
    std::fill(dout.begin(), dout.end(), 0.0f);
    float* t = fr->pc.data();
    for (int i = 0; i < L; ++i) {
      const int d = m.dims[i + 1];
      dense::linear(ns, m.dims[i], d, fr->input(i), tw[i], tb[i], t, fr->wt.data());
      if (i < L - 1) {
        dense::row_dots_add(ns, K, d, t, jac[i].data(), dout.data());
      } else {
        for (int64_t k = 0; k < ns * K; ++k) dout[size_t(k)] += t[k];
      }
    }
    weigh();
    mlp::layer_grads(m, *fr, L - 1, u.data(), gw[L - 1], gb[L - 1]);
    for (int i = 0; i < L - 1; ++i) {
      dense::row_combine(ns, K, m.dims[i + 1], u.data(), jac[i].data(), fr->pa.data());
      mlp::layer_grads(m, *fr, i, fr->pa.data(), gw[i], gb[i]);
    }
  }
};

// The actor's parameters as one flat vector and back.
void get_params(const pg::Net& a, float* x) {
  for (int q = 0; q < a.opt.count; ++q) {
    std::copy(a.opt.p[q], a.opt.p[q] + a.opt.size[q], x);
    x += a.opt.size[q];
  }
}
void set_params(pg::Net& a, const float* x) {
  for (int q = 0; q < a.opt.count; ++q) {
    std::copy(x, x + a.opt.size[q], a.opt.p[q]);
    x += a.opt.size[q];
  }
}

}  // namespace

int64_t num_params(const pg::Net& actor) {
  int64_t n = 0;
  for (int q = 0; q < actor.opt.count; ++q) n += actor.opt.size[q];
  return n;
}

void grad_and_fvp(const pg::Net& actor, const pg::Batch& batch, const Settings& s, float* g,
                  const float* vs, int64_t m, float* fvs) {
  dense::ThreadScope threads(s.num_threads);
  Model md(actor, batch, s);
  md.grad(g);
  for (int64_t i = 0; i < m; ++i) md.fvp(vs + i * md.n, fvs + i * md.n);
}

Stats step(pg::Net& actor, const pg::Batch& batch, const Settings& s) {
  dense::ThreadScope threads(s.num_threads);
  Model md(actor, batch, s);
  const int64_t n = md.n, B = batch.size;
  const int K = md.K;
  const size_t nz = size_t(n);
  std::vector<float> g(nz), x(nz, 0.0f), r(nz), p(nz), Ap(nz), x0(nz), theta(nz);
  Stats st;
  st.surr0 = md.grad(g.data());
  // conjugate gradient on (F + damping I) x = g, as pgfast.algos.trpo.conjugate_gradient
  r = g;
  p = g;
  float rr = float(dot(r.data(), r.data(), n));
  for (int it = 0; it < s.cg_iters; ++it) {
    if (rr < 1e-10f) break;
    md.fvp(p.data(), Ap.data());
    const float alpha = rr / float(dot(p.data(), Ap.data(), n));
    for (int64_t i = 0; i < n; ++i) {
      x[size_t(i)] += alpha * p[size_t(i)];
      r[size_t(i)] -= alpha * Ap[size_t(i)];
    }
    const float rr_new = float(dot(r.data(), r.data(), n));
    const float beta = rr_new / rr;
    for (int64_t i = 0; i < n; ++i) p[size_t(i)] = r[size_t(i)] + beta * p[size_t(i)];
    rr = rr_new;
  }
  md.fvp(x.data(), Ap.data());
  const float xfx = float(dot(x.data(), Ap.data(), n));
  const float scale = std::sqrt(2.0f * s.max_kl / std::max(xfx, 1e-12f));
  for (int64_t i = 0; i < n; ++i) x[size_t(i)] *= scale;  // the full step
  get_params(actor, x0.data());
  // line search: surrogate and KL of each candidate on the whole batch
  mlp::Trace& tr = md.tr;
  const float* ls_old = md.gaussian ? md.ls_old.data() : nullptr;
  st.backtracks = s.backtrack_iters;
  double kl_acc = 0.0, ent_acc = 0.0;
  for (int k = 0; k < s.backtrack_iters; ++k) {
    const float c = float(std::pow(double(s.backtrack_coeff), k));
    for (int64_t i = 0; i < n; ++i) theta[size_t(i)] = x0[size_t(i)] + c * x[size_t(i)];
    set_params(actor, theta.data());
    mlp::forward(actor.net, batch.obs, B, tr);
    const dist::Terms t = dist::terms(actor.log_std, K);
    double surr = 0.0, kl = 0.0, ent = 0.0;
    for (int64_t row = 0; row < B; ++row) {
      const float* o = tr.out.data() + row * K;
      const float* o_old = md.out_old.data() + row * K;
      float h = 0.0f;
      const float lp = dist::row_logp(o, t, md.gaussian ? batch.act_box + row * K : nullptr,
                                      md.gaussian ? 0 : batch.act_discrete[row],
                                      md.keep.data(), &h);
      surr += double(std::exp(lp - batch.logp_old[row])) * batch.adv[row];
      ent += h;
      kl += md.gaussian ? dist::row_kl_gaussian(o_old, ls_old, o, actor.log_std, K)
                        : dist::row_kl_categorical(o_old, o, K);
    }
    const double h_mean = md.gaussian ? dist::gaussian_entropy(t) : ent / double(B);
    surr = surr / double(B) + double(s.ent_coef) * h_mean;
    kl /= double(B);
    if (kl <= double(s.max_kl) && surr > st.surr0) {
      st.accepted = true;
      st.backtracks = k;
      kl_acc = kl;
      ent_acc = h_mean;
      break;
    }
  }
  if (!st.accepted) {
    set_params(actor, x0.data());
    const dist::Terms t = dist::terms(actor.log_std, K);
    double ent = 0.0;
    if (!md.gaussian) {
      for (int64_t row = 0; row < B; ++row) {
        float h = 0.0f;
        dist::row_logp(md.out_old.data() + row * K, t, nullptr, batch.act_discrete[row],
                       md.keep.data(), &h);
        ent += h;
      }
    }
    ent_acc = md.gaussian ? dist::gaussian_entropy(t) : ent / double(B);
  }
  st.kl = kl_acc;
  st.entropy = ent_acc;
  return st;
}

}  // namespace trpo
}  // namespace pgfast
