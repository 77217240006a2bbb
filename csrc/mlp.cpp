// See mlp.hpp.
#include "mlp.hpp"

#include <algorithm>

#include "dense.hpp"

namespace pgfast {
namespace mlp {
namespace {

template <class T>
void fit(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

// Multiply-adds per row of a forward.
int64_t row_work(const Mlp& m) {
  int64_t w = 0;
  for (int i = 0; i < m.num_layers; ++i) w += int64_t(m.dims[i]) * m.dims[i + 1];
  return w;
}

// A narrow layer's transposed weight: scratch of the thread that runs a block of rows.
float* block_wt(const Mlp& m) {
  thread_local std::vector<float> wt;
  fit(wt, size_t(m.max_width()) * size_t(m.max_width()));
  return wt.data();
}

// Rows [r0, r1) of a forward through every layer: x and the outputs out[i] ([n, dims[i + 1]],
// out[num_layers - 1] the network's) at row r0. Rows never depend on each other
// (csrc/dense.hpp), so blocks of rows on several threads give the whole forward's bits.
void forward_rows(const Mlp& m, const float* x, float* const* out, int64_t r0, int64_t r1) {
  const int64_t rows = r1 - r0;
  float* wt = block_wt(m);
  const float* in = x + r0 * m.dims[0];
  for (int i = 0; i < m.num_layers; ++i) {
    const int dout = m.dims[i + 1];
    float* y = out[i] + r0 * dout;
    dense::linear(rows, m.dims[i], dout, in, m.w[i], m.b[i], y, wt);
    if (i < m.num_layers - 1) activate(m.act, y, rows * dout);
    in = y;
  }
}

}  // namespace

int Mlp::max_width() const {
  int m = 0;
  for (int i = 0; i <= num_layers; ++i) m = std::max(m, dims[i]);
  return m;
}

void Trace::prepare(const Mlp& m, int64_t nmax) {
  const int L = m.num_layers;
  const int64_t w = m.max_width();
  for (int i = 1; i < L; ++i) fit(h[i], size_t(nmax * m.dims[i]));
  fit(out, size_t(nmax * m.dims[L]));
  fit(wt, size_t(w * w));
  fit(pa, size_t(nmax * w));
  fit(pb, size_t(nmax * w));
  fit(pc, size_t(nmax * w));
}

void activate(Act act, float* v, int64_t n) {
  if (act == Act::kTanh) {
    dense::tanh_loop(v, n);
  } else {
    dense::relu_loop(v, n);
  }
}

void act_backward(Act act, float* g, const float* h, int64_t n) {
  dense::act_backward(g, h, n, act == Act::kTanh);
}

void forward(const Mlp& m, const float* x, int64_t n, Trace& t) {
  const int L = m.num_layers;
  t.x = x;
  t.n = n;
  float* out[kMaxLayers];
  for (int i = 0; i < L; ++i) out[i] = i == L - 1 ? t.out.data() : t.h[i + 1].data();
  // one job: blocks of rows through all layers (the current dense::ThreadScope's threads)
  dense::for_blocks(n, 8, row_work(m), [&](int64_t r0, int64_t r1) {
    forward_rows(m, x, out, r0, r1);
  });
}

int64_t scratch_size(const Mlp& m, int64_t n) {
  const int64_t w = m.max_width();
  return 2 * n * w + w * w;  // two activations and a transposed weight
}

void forward_into(const Mlp& m, const float* x, int64_t n, float* out, float* scratch) {
  const int64_t width = m.max_width();
  float* outs[kMaxLayers];  // ping-pong between two [n, width] buffers, then out
  for (int i = 0; i < m.num_layers; ++i) {
    outs[i] = i == m.num_layers - 1 ? out : scratch + (i & 1) * n * width;
  }
  dense::for_blocks(n, 8, row_work(m), [&](int64_t r0, int64_t r1) {
    forward_rows(m, x, outs, r0, r1);
  });
}

void layer_grads(const Mlp& m, Trace& t, int i, const float* g, float* gw, float* gb) {
  const int64_t n = t.n;
  const int din = m.dims[i], dout = m.dims[i + 1];
  const float* h = t.input(i);
  if (dout < dense::kNarrow) {  // (g^T H)^T: rows of H stream, the din columns vectorise
    dense::matmul(dout, din, n, g, 1, dout, h, t.wt.data(), nullptr);
    dense::transpose(t.wt.data(), dout, din, gw);
  } else {
    dense::matmul(din, dout, n, h, 1, din, g, gw, nullptr);  // H^T g
  }
  dense::column_sums(g, n, dout, gb);
}

void backward(const Mlp& m, Trace& t, const float* g_out, float* const* gw, float* const* gb) {
  const int64_t n = t.n;
  const float* g = g_out;
  float* next = t.pa.data();
  for (int i = m.num_layers - 1; i >= 0; --i) {
    const int din = m.dims[i], dout = m.dims[i + 1];
    const float* h = t.input(i);
    layer_grads(m, t, i, g, gw[i], gb[i]);
    if (i > 0) {
      dense::transpose(m.w[i], din, dout, t.wt.data());
      const float* wt = t.wt.data();
      // g W^T and the activation's derivative, one job of row blocks
      dense::for_blocks(n, 8, int64_t(din) * dout, [&](int64_t r0, int64_t r1) {
        dense::matmul(r1 - r0, din, dout, g + r0 * dout, dout, 1, wt, next + r0 * din, nullptr);
        act_backward(m.act, next + r0 * din, h + r0 * din, (r1 - r0) * din);
      });
      g = next;
      next = next == t.pa.data() ? t.pb.data() : t.pa.data();
    }
  }
}

void output_jacobian(const Mlp& m, Trace& t, std::vector<float>* jac) {
  const int L = m.num_layers, K = m.out_dim();
  const int64_t n = t.n;
  if (L < 2) return;
  // the last hidden layer: column k of the output weight times the activation's derivative
  const int dl = m.dims[L - 1];
  fit(jac[L - 2], size_t(n * K * dl));
  const float* wl = m.w[L - 1];
  const float* hl = t.input(L - 1);
  float* jl = jac[L - 2].data();
  for (int64_t r = 0; r < n; ++r) {
    for (int k = 0; k < K; ++k) {
      float* row = jl + (r * K + k) * dl;
      for (int j = 0; j < dl; ++j) row[j] = wl[int64_t(j) * K + k];
    }
  }
  dense::act_backward_rows(jl, hl, n, K, dl, m.act == Act::kTanh);
  // earlier layers: d out_k / d z_i = (d out_k / d z_{i+1}) W_{i+1}^T, times act'
  for (int i = L - 3; i >= 0; --i) {
    const int din = m.dims[i + 1], dout = m.dims[i + 2];
    fit(jac[i], size_t(n * K * din));
    dense::transpose(m.w[i + 1], din, dout, t.wt.data());
    const float* wt = t.wt.data();
    const float* src = jac[i + 1].data();
    const float* h = t.input(i + 1);
    float* dst = jac[i].data();
    dense::for_blocks(n, 1, int64_t(K) * din * dout, [&](int64_t r0, int64_t r1) {
      dense::matmul((r1 - r0) * K, din, dout, src + r0 * K * dout, dout, 1, wt,
                    dst + r0 * K * din, nullptr);
      dense::act_backward_rows(dst + r0 * K * din, h + r0 * din, r1 - r0, K, din,
                               m.act == Act::kTanh);
    });
  }
}

void jvp(const Mlp& m, Trace& t, const float* const* vw, const float* const* vb, float* d_out) {
  const int L = m.num_layers;
  const int64_t n = t.n;
  float* dz = L == 1 ? d_out : t.pa.data();
  dense::linear(n, m.dims[0], m.dims[1], t.x, vw[0], vb[0], dz, t.wt.data());
  for (int i = 1; i < L; ++i) {
    const int din = m.dims[i], dout = m.dims[i + 1];
    const float* h = t.input(i);
    act_backward(m.act, dz, h, n * din);  // d h_i = act'(z) dz
    float* y = i == L - 1 ? d_out : (dz == t.pa.data() ? t.pb.data() : t.pa.data());
    float* tmp = t.pc.data();
    dense::linear(n, din, dout, dz, m.w[i], nullptr, y, t.wt.data());  // dh W_i
    dense::linear(n, din, dout, h, vw[i], vb[i], tmp, t.wt.data());    // h dW_i + db_i
    for (int64_t k = 0; k < n * dout; ++k) y[k] += tmp[k];
    dz = y;
  }
}

}  // namespace mlp
}  // namespace pgfast
