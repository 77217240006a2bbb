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
// This header sees no Python.
#pragma once

#include <cstdint>

namespace pgfast {
namespace dense {

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

}  // namespace dense
}  // namespace pgfast
