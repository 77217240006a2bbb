// See dense.hpp.
#include "dense.hpp"

#include <algorithm>
#include <cstdint>

#include "clones.hpp"

namespace pgfast {
namespace dense {
namespace {
// ---------------------------------------------------------------- products
//
// C[M, N] = A[M, K] B[K, N] (+ bias[N]) with B and C row-major and A read as
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

}  // namespace

PGFAST_CLONES
void matmul(int64_t M, int64_t N, int64_t K, const float* A, int64_t sa_i, int64_t sa_k,
            const float* B, float* C, const float* bias) {
  // blocks of 8 rows, then one of 4 where 4 to 7 rows remain, then the generic loop
  const int64_t M8 = M - M % kR, M4 = M - M8 >= kR / 2 ? M8 + kR / 2 : M8;
  const int64_t Nb = N - N % kJ;
  for (int64_t i = 0; i < M8; i += kR) {
    for (int64_t j = 0; j < Nb; j += kJ) {
      block<kR, kJ>(K, A + i * sa_i, sa_i, sa_k, B + j, N, C + i * N + j, N,
                    bias != nullptr ? bias + j : nullptr);
    }
  }
  if (M4 > M8) {
    for (int64_t j = 0; j < Nb; j += kJ) {
      block<kR / 2, kJ>(K, A + M8 * sa_i, sa_i, sa_k, B + j, N, C + M8 * N + j, N,
                        bias != nullptr ? bias + j : nullptr);
    }
  }
  if (Nb < N) rest(0, M4, Nb, N, K, A, sa_i, sa_k, B, N, C, N, bias);
  if (M4 < M) rest(M4, M, 0, N, K, A, sa_i, sa_k, B, N, C, N, bias);
}

// C[M, N] = A[M, K] B (+ bias) for a narrow C (N < kNarrow, e.g. an output layer):
// each entry is a dot product of a row of A (row-major, lda = K) and a row of
// BT = B^T [N, K], summed in 16 explicit lanes so the loop vectorises without
// reassociation.
constexpr int kLanes = 16;

PGFAST_CLONES
void matmul_narrow(int64_t M, int64_t N, int64_t K, const float* __restrict A,
                   const float* __restrict BT, float* __restrict C, const float* __restrict bias) {
  const int64_t Kb = K - K % kLanes;
  for (int64_t i = 0; i < M; ++i) {
    const float* a = A + i * K;
    for (int64_t j = 0; j < N; ++j) {
      const float* b = BT + j * K;
      float lane[kLanes] = {};
      for (int64_t k = 0; k < Kb; k += kLanes) {
        for (int l = 0; l < kLanes; ++l) lane[l] += a[k + l] * b[k + l];
      }
      float sum = 0.0f;
      for (int l = 0; l < kLanes; ++l) sum += lane[l];
      for (int64_t k = Kb; k < K; ++k) sum += a[k] * b[k];
      C[i * N + j] = bias != nullptr ? sum + bias[j] : sum;
    }
  }
}

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

// ---------------------------------------------------------------- activations

// tanh as the rational minimax fit Eigen uses for float (a few ulp), x itself
// for |x| < 4e-4, +-1 beyond the clamp; branch-free so the loop vectorises.
// The one tanh of the C++ MLP (csrc/mlp.hpp).
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

// torch.relu: NaN and -0.0 pass through (v > 0 ? v : 0 would turn NaN into 0).
PGFAST_CLONES
void relu_loop(float* __restrict v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) v[i] = v[i] < 0.0f ? 0.0f : v[i];
}

// g *= activation'(at the output h): 1 - h^2 (tanh), or for ReLU torch's
// threshold_backward: 0 where h <= 0, else g (NaN h passes g, as torch).
PGFAST_CLONES
void act_backward(float* __restrict g, const float* __restrict h, int64_t n, bool tanh) {
  if (tanh) {
    for (int64_t i = 0; i < n; ++i) g[i] *= 1.0f - h[i] * h[i];
  } else {
    for (int64_t i = 0; i < n; ++i) g[i] = h[i] <= 0.0f ? 0.0f : g[i];
  }
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
