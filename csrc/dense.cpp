// See dense.hpp.
#include "dense.hpp"

#include <algorithm>
#include <cstdint>
#include <new>

#include "clones.hpp"
#include "parallel.hpp"

namespace pgfast {
namespace dense {
namespace {
// ---------------------------------------------------------------- products
//
// C[M, N] = A[M, K] B[K, N] (+ bias[N]) with B and C (leading dimensions ldb, ldc) and A read as
// A[i * sa_i + k * sa_k], so the same loops serve X W (sa = (K, 1)) and H^T G
// (A = H [K, M] read transposed: sa = (1, M)). A block of 8 (or 4) rows by 32
// columns of C accumulates in registers; rows and columns past the blocks take the
// generic loop.

constexpr int kR = 8;
constexpr int kJ = 32;

template <int R, int J>
inline __attribute__((always_inline)) void block(int64_t K, const float* __restrict A, int64_t sa_i,
                                                 int64_t sa_k, const float* __restrict B, int64_t ldb,
                                                 float* __restrict C, int64_t ldc,
                                                 const float* __restrict bias) {
  float acc[R][J];
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < J; ++j) acc[r][j] = bias != nullptr ? bias[j] : 0.0f;
  }
  for (int64_t k = 0; k < K; ++k) {
    const float* __restrict bk = B + k * ldb;
    for (int r = 0; r < R; ++r) {
      const float a = A[r * sa_i + k * sa_k];
      for (int j = 0; j < J; ++j) acc[r][j] += a * bk[j];
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < J; ++j) C[r * ldc + j] = acc[r][j];
  }
}

// The generic loop: rows [i0, M), columns [j0, j1) of C.
inline __attribute__((always_inline)) void rest(int64_t i0, int64_t M, int64_t j0, int64_t j1,
                                                int64_t K, const float* A, int64_t sa_i,
                                                int64_t sa_k, const float* B, int64_t ldb,
                                                float* C, int64_t ldc, const float* bias) {
  for (int64_t i = i0; i < M; ++i) {
    float* __restrict c = C + i * ldc;
    for (int64_t j = j0; j < j1; ++j) c[j] = bias != nullptr ? bias[j] : 0.0f;
    for (int64_t k = 0; k < K; ++k) {
      const float a = A[i * sa_i + k * sa_k];
      const float* __restrict bk = B + k * ldb;
      for (int64_t j = j0; j < j1; ++j) c[j] += a * bk[j];
    }
  }
}

PGFAST_CLONES
void matmul_impl(int64_t M, int64_t N, int64_t K, const float* A, int64_t sa_i, int64_t sa_k,
                 const float* B, int64_t ldb, float* C, int64_t ldc, const float* bias) {
  // blocks of 8 rows, then one of 4 where 4 to 7 rows remain, then the generic loop
  const int64_t M8 = M - M % kR, M4 = M - M8 >= kR / 2 ? M8 + kR / 2 : M8;
  const int64_t Nb = N - N % kJ;
  for (int64_t i = 0; i < M8; i += kR) {
    for (int64_t j = 0; j < Nb; j += kJ) {
      block<kR, kJ>(K, A + i * sa_i, sa_i, sa_k, B + j, ldb, C + i * ldc + j, ldc,
                    bias != nullptr ? bias + j : nullptr);
    }
  }
  if (M4 > M8) {
    for (int64_t j = 0; j < Nb; j += kJ) {
      block<kR / 2, kJ>(K, A + M8 * sa_i, sa_i, sa_k, B + j, ldb, C + M8 * ldc + j, ldc,
                        bias != nullptr ? bias + j : nullptr);
    }
  }
  if (Nb < N) rest(0, M4, Nb, N, K, A, sa_i, sa_k, B, ldb, C, ldc, bias);
  if (M4 < M) rest(M4, M, 0, N, K, A, sa_i, sa_k, B, ldb, C, ldc, bias);
}

// C[M, N] = A[M, K] B (+ bias) for a narrow C (N < kNarrow, e.g. an output layer):
// each entry is a dot product of a row of A (row-major, lda = K) and a row of
// BT = B^T [N, K], summed in 16 explicit lanes so the loop vectorises without
// reassociation.
constexpr int kLanes = 16;

// a . b over K floats in kLanes lanes, then the lanes and the tail in order.
inline __attribute__((always_inline)) float lane_dot(const float* __restrict a,
                                                     const float* __restrict b, int64_t K) {
  const int64_t Kb = K - K % kLanes;
  float lane[kLanes] = {};
  for (int64_t k = 0; k < Kb; k += kLanes) {
    for (int l = 0; l < kLanes; ++l) lane[l] += a[k + l] * b[k + l];
  }
  float sum = 0.0f;
  for (int l = 0; l < kLanes; ++l) sum += lane[l];
  for (int64_t k = Kb; k < K; ++k) sum += a[k] * b[k];
  return sum;
}

PGFAST_CLONES
void matmul_narrow_impl(int64_t M, int64_t N, int64_t K, const float* __restrict A,
                   const float* __restrict BT, float* __restrict C, const float* __restrict bias) {
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      const float sum = lane_dot(A + i * K, BT + j * K, K);
      C[i * N + j] = bias != nullptr ? sum + bias[j] : sum;
    }
  }
}

// ---------------------------------------------------------------- activations

// tanh as the rational minimax fit Eigen uses for float (a few ulp), x itself
// for |x| < 4e-4, +-1 beyond the clamp; branch-free so the loop vectorises.
// The one tanh of the C++ MLP (csrc/mlp.hpp).
PGFAST_CLONES
void tanh_impl(float* __restrict v, int64_t n) {
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

// torch.relu: NaN and -0.0 pass through (v > 0 ? v : 0 would turn NaN into 0).
PGFAST_CLONES
void relu_impl(float* __restrict v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) v[i] = v[i] < 0.0f ? 0.0f : v[i];
}

// g *= activation'(at the output h): 1 - h^2 (tanh), or for ReLU torch's
// threshold_backward: 0 where h <= 0, else g (NaN h passes g, as torch).
PGFAST_CLONES
void act_backward_impl(float* __restrict g, const float* __restrict h, int64_t n, bool tanh) {
  if (tanh) {
    for (int64_t i = 0; i < n; ++i) g[i] *= 1.0f - h[i] * h[i];
  } else {
    for (int64_t i = 0; i < n; ++i) g[i] = h[i] <= 0.0f ? 0.0f : g[i];
  }
}

// out[j] = sum of g[r * ld + j] over rows r in order (from 0), j < cols.
PGFAST_CLONES
void column_sums_impl(const float* __restrict g, int64_t rows, int64_t cols, int64_t ld,
                      float* __restrict out) {
  for (int64_t j = 0; j < cols; ++j) out[j] = 0.0f;
  for (int64_t r = 0; r < rows; ++r) {
    const float* __restrict gr = g + r * ld;
    for (int64_t j = 0; j < cols; ++j) out[j] += gr[j];
  }
}

// out[r * K + k] += a[r, :] . rows[r * K + k, :] in kLanes lanes (row_dots_add).
PGFAST_CLONES
void row_dots_impl(int64_t n, int K, int d, const float* __restrict a,
                   const float* __restrict rows, float* __restrict out) {
  for (int64_t r = 0; r < n; ++r) {
    for (int k = 0; k < K; ++k) out[r * K + k] += lane_dot(a + r * d, rows + (r * K + k) * d, d);
  }
}

// out[r, :] = sum over k of u[r * K + k] rows[r * K + k, :] (row_combine).
PGFAST_CLONES
void row_combine_impl(int64_t n, int K, int d, const float* __restrict u,
                      const float* __restrict rows, float* __restrict out) {
  for (int64_t r = 0; r < n; ++r) {
    float* o = out + r * d;
    for (int j = 0; j < d; ++j) o[j] = 0.0f;
    for (int k = 0; k < K; ++k) {
      const float c = u[r * K + k];
      const float* b = rows + (r * K + k) * d;
      for (int j = 0; j < d; ++j) o[j] += c * b[j];
    }
  }
}

// ---------------------------------------------------------------- threads

// The current scope's pool and threads (csrc/dense.hpp's ThreadScope).
thread_local WorkerPool* t_pool = nullptr;
thread_local int t_threads = 1;

// Blocks per thread when the work allows: a thread the OS has not scheduled leaves
// its later blocks to the others (csrc/parallel.hpp's lanes).
constexpr int64_t kBlocksPerThread = 4;

// True where work (multiply-adds) is too small to split.
bool serial(int64_t work) { return t_pool == nullptr || work < 2 * kMinBlockWork; }

}  // namespace

void transpose(const float* src, int64_t rows, int64_t cols, float* dst) {
  // 16 x 16 tiles: both the rows read and the rows written stay in cache
  constexpr int64_t kT = 16;
  for (int64_t r0 = 0; r0 < rows; r0 += kT) {
    const int64_t r1 = std::min(rows, r0 + kT);
    for (int64_t c0 = 0; c0 < cols; c0 += kT) {
      const int64_t c1 = std::min(cols, c0 + kT);
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t c = c0; c < c1; ++c) dst[c * rows + r] = src[r * cols + c];
      }
    }
  }
}

ThreadScope::ThreadScope(int num_threads) : prev_pool_(t_pool), prev_threads_(t_threads) {
  if (t_pool != nullptr) {  // inside another scope: narrow it
    t_threads = std::max(1, std::min(num_threads, prev_threads_));
    return;
  }
  if (num_threads <= 1) return;
  lease_ = new (std::nothrow) SharedPoolLease(num_threads);
  if (lease_ != nullptr && lease_->pool() != nullptr) {
    t_pool = lease_->pool();
    t_threads = lease_->threads();
  }
}

ThreadScope::~ThreadScope() {
  t_pool = prev_pool_;
  t_threads = prev_threads_;
  delete lease_;
}

int scope_threads() { return t_pool != nullptr ? t_threads : 1; }

void for_blocks(int64_t n, int64_t align, int64_t work_per_unit,
                const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  WorkerPool* pool = t_pool;
  const int threads = t_threads;
  const int64_t min_units = std::max<int64_t>(1, kMinBlockWork / std::max<int64_t>(1, work_per_unit));
  int64_t blocks = std::min<int64_t>(n / min_units, kBlocksPerThread * threads);
  if (pool == nullptr || threads <= 1 || blocks <= 1) {
    fn(0, n);
    return;
  }
  align = std::max<int64_t>(1, align);
  const int64_t per = ((n + blocks - 1) / blocks + align - 1) / align * align;
  blocks = (n + per - 1) / per;
  // the blocks' own dense calls stay on their threads (run() is not reentrant)
  t_pool = nullptr;
  parallel_for(
      pool, blocks, [&](int64_t b) { fn(b * per, std::min(n, (b + 1) * per)); }, threads);
  t_pool = pool;
}

// ---------------------------------------------------------------- the kernels

void matmul(int64_t M, int64_t N, int64_t K, const float* A, int64_t sa_i, int64_t sa_k,
            const float* B, float* C, const float* bias) {
  if (serial(M * N * K)) {
    matmul_impl(M, N, K, A, sa_i, sa_k, B, N, C, N, bias);
    return;
  }
  // rows in blocks of 8 where there are enough of them, else columns in blocks of 32
  const int64_t row_units = M / kR, col_units = N / kJ;
  if (row_units >= 2 * t_threads || row_units >= col_units) {
    for_blocks(M, kR, N * K, [&](int64_t i0, int64_t i1) {
      matmul_impl(i1 - i0, N, K, A + i0 * sa_i, sa_i, sa_k, B, N, C + i0 * N, N, bias);
    });
  } else {
    for_blocks(N, kJ, M * K, [&](int64_t j0, int64_t j1) {
      matmul_impl(M, j1 - j0, K, A, sa_i, sa_k, B + j0, N, C + j0, N,
                  bias != nullptr ? bias + j0 : nullptr);
    });
  }
}

void matmul_narrow(int64_t M, int64_t N, int64_t K, const float* A, const float* BT, float* C,
                   const float* bias) {
  if (serial(M * N * K)) {
    matmul_narrow_impl(M, N, K, A, BT, C, bias);
    return;
  }
  for_blocks(M, kNarrow, N * K, [&](int64_t i0, int64_t i1) {
    matmul_narrow_impl(i1 - i0, N, K, A + i0 * K, BT, C + i0 * N, bias);
  });
}

void tanh_loop(float* v, int64_t n) {
  for_blocks(n, 16, 16, [&](int64_t i0, int64_t i1) { tanh_impl(v + i0, i1 - i0); });
}

void relu_loop(float* v, int64_t n) {
  for_blocks(n, 16, 1, [&](int64_t i0, int64_t i1) { relu_impl(v + i0, i1 - i0); });
}

void act_backward(float* g, const float* h, int64_t n, bool tanh) {
  for_blocks(n, 16, 2, [&](int64_t i0, int64_t i1) {
    act_backward_impl(g + i0, h + i0, i1 - i0, tanh);
  });
}

void act_backward_rows(float* g, const float* h, int64_t n, int K, int d, bool tanh) {
  for_blocks(n, 1, 2 * int64_t(K) * d, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      for (int k = 0; k < K; ++k) act_backward_impl(g + (r * K + k) * d, h + r * d, d, tanh);
    }
  });
}

void column_sums(const float* g, int64_t rows, int64_t cols, float* out) {
  for_blocks(cols, 16, rows, [&](int64_t j0, int64_t j1) {
    column_sums_impl(g + j0, rows, j1 - j0, cols, out + j0);
  });
}

void row_dots_add(int64_t n, int K, int d, const float* a, const float* rows, float* out) {
  for_blocks(n, 1, int64_t(K) * d, [&](int64_t r0, int64_t r1) {
    row_dots_impl(r1 - r0, K, d, a + r0 * d, rows + r0 * K * d, out + r0 * K);
  });
}

void row_combine(int64_t n, int K, int d, const float* u, const float* rows, float* out) {
  for_blocks(n, 1, int64_t(K) * d, [&](int64_t r0, int64_t r1) {
    row_combine_impl(r1 - r0, K, d, u + r0 * K, rows + r0 * K * d, out + r0 * d);
  });
}

void linear(int64_t n, int din, int dout, const float* x, const float* w, const float* b,
            float* y, float* wt) {
  if (dout < kNarrow) {
    transpose(w, din, dout, wt);
    matmul_narrow(n, dout, din, x, wt, y, b);
  } else {
    matmul(n, dout, din, x, din, 1, w, y, b);
  }
}

}  // namespace dense
}  // namespace pgfast
