// Small dense kernels for the MLPs pgfast trains on CPU (the native rollout's
// forward, the fused PPO update): matrix products, activations and their
// derivatives, float32.
//
// The products are register-blocked loops (a block of 8 rows x 32 columns of
// the result accumulates in registers); every entry of a result is summed over
// k in order 0, 1, ..., K - 1 starting from the bias, whatever the block, the
// row count or the row's position, so a row's result never depends on the
// other rows of its batch (a forward of one minibatch equals the rows of a
// forward of the whole batch, bit for bit). Narrow results (fewer than 16
// columns, e.g. an output layer) are dot products summed in 16 lanes instead,
// again the same for every row. Each kernel is compiled for AVX-512, AVX2 and
// the baseline and picked at load time (csrc/clones.hpp); -ffp-contract=off
// keeps the three bit-identical.
//
// Threads: while a ThreadScope lives on a thread, the products, activations and
// for_blocks calls of that thread split into blocks of rows (or of columns, where
// the rows are too few) across the shared worker pool (csrc/parallel.hpp). A block
// computes each of its entries exactly as the single-threaded loop does, so every
// result is bit-identical for any thread count; work too small to pay for the
// hand-off (under kMinBlockWork multiply-adds a block) stays on the caller.
//
// This header sees no Python.
#pragma once

#include <cstdint>
#include <functional>

namespace pgfast {

class SharedPoolLease;  // csrc/parallel.hpp
class WorkerPool;

namespace dense {

// The least work (multiply-adds, or element operations) worth a block of its own: ~2-3 us on
// one core, a few times a hand-off to a worker that is awake.
constexpr int64_t kMinBlockWork = int64_t(1) << 18;

// The threads of this thread's dense work for the scope's life: num_threads threads
// (caller included; <= 1: the caller alone) from the shared pool. Inside another
// scope it narrows that scope's threads instead of taking a pool of its own; where
// the shared pool is busy (another caller holds it) the work stays on the caller,
// with the same results.
class ThreadScope {
 public:
  explicit ThreadScope(int num_threads);
  ~ThreadScope();
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;

 private:
  SharedPoolLease* lease_ = nullptr;
  WorkerPool* prev_pool_ = nullptr;
  int prev_threads_ = 1;
};

// The threads the current scope gives (1 outside any).
int scope_threads();

// fn(i0, i1) over [0, n) in contiguous blocks whose bounds are multiples of
// `align` (but the last), each at least kMinBlockWork / work_per_unit units:
// across the current scope's threads, or one call fn(0, n) on the caller. fn must
// give each unit a result that does not depend on the block it falls in.
void for_blocks(int64_t n, int64_t align, int64_t work_per_unit,
                const std::function<void(int64_t, int64_t)>& fn);

// Results narrower than this take matmul_narrow.
constexpr int kNarrow = 16;

// C[M, N] = A B (+ bias[N] if not null): B [K, N] and C row-major, A read as
// A[i * sa_i + k * sa_k] (sa = (K, 1): A row-major [M, K]; sa = (1, M): A is
// a row-major [K, M] read transposed).
void matmul(int64_t M, int64_t N, int64_t K, const float* A, int64_t sa_i, int64_t sa_k,
            const float* B, float* C, const float* bias);

// C[M, N] = A[M, K] BT^T (+ bias) with A row-major and BT = B^T [N, K].
void matmul_narrow(int64_t M, int64_t N, int64_t K, const float* A, const float* BT, float* C,
                   const float* bias);

// Products of each row with K vectors of its own (TRPO's Jacobian rows, csrc/trpo_update.cpp):
// out[r * K + k] += a[r, :] . rows[r * K + k, :] over j < d (summed in 16 lanes, then in
// order), r < n; a [n, d], rows [n * K, d].
void row_dots_add(int64_t n, int K, int d, const float* a, const float* rows, float* out);

// out[r, j] = sum over k = 0, 1, ..., K - 1 (in order, from 0) of u[r * K + k] *
// rows[r * K + k, j]: u [n, K], rows [n * K, d], out [n, d].
void row_combine(int64_t n, int K, int d, const float* u, const float* rows, float* out);

// dst[cols, rows] = src[rows, cols]^T.
void transpose(const float* src, int64_t rows, int64_t cols, float* dst);

// y[n, dout] = x[n, din] w[din, dout] + b[dout]; wt is scratch of din * dout floats.
void linear(int64_t n, int din, int dout, const float* x, const float* w, const float* b,
            float* y, float* wt);

// tanh in place: the rational minimax fit Eigen uses for float (a few ulp).
void tanh_loop(float* v, int64_t n);

// torch.relu in place: 0 where v < 0, else v (NaN stays NaN).
void relu_loop(float* v, int64_t n);

// g *= the activation's derivative at its output h: 1 - h^2 (tanh); ReLU: 0 where
// h <= 0, else g (torch's threshold_backward).
void act_backward(float* g, const float* h, int64_t n, bool tanh);

// g[r * K + k, :] *= the activation's derivative at h[r, :] (act_backward with each of the
// n rows of h [n, d] serving K rows of g [n * K, d]): the output Jacobian's rows.
void act_backward_rows(float* g, const float* h, int64_t n, int K, int d, bool tanh);

// out[j] = sum over r = 0, 1, ..., rows - 1 (in order, from 0) of g[r, j], j < cols.
void column_sums(const float* g, int64_t rows, int64_t cols, float* out);

}  // namespace dense
}  // namespace pgfast
