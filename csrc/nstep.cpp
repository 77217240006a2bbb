#include "nstep.hpp"

#include <algorithm>
#include <vector>

#include "clones.hpp"
#include "parallel.hpp"
#include "returns.hpp"  // plan_threads, reward_to_go (n >= T)

namespace pgfast {
namespace {

// Column chunks are multiples of this many elements (64 bytes of float32), as
// in csrc/returns.cpp, so two threads never write to the same cache line.
constexpr int64_t kChunkAlign = 16;
// Columns per cache block of the multi-pass path (a multiple of kChunkAlign).
constexpr int64_t kBlock = 64;

template <class F>
inline bool is_set(F f) {
  return f != F(0);
}

// The column-block work of the multi-pass path is cloned per ISA (clones.hpp): with the
// baseline SSE2 alone, the uint8 flag loops did not vectorise and the wheel ran the
// n-step passes at a third of a -march=native build's speed.

// One column block [n0, n0 + w) of the multi-pass path (n < T): G^(1) into `out`, the
// cut mask, then passes m = 2..n ping-ponging between `out` and `work` (see below).
template <class T, class F>
__attribute__((always_inline)) inline void block_body(const T* rewards, const T* next_values,
                                                      const F* terminated, const F* truncated, T* out,
                                                      int64_t T_, int64_t N, T gamma, int64_t n, int64_t n0,
                                                      int64_t w, T* work, T* cut) {
  for (int64_t t = 0; t < T_; ++t) {
    const int64_t row = t * N + n0;
    const T* __restrict r = rewards + row;
    const T* __restrict nv = next_values + row;
    const F* __restrict te = terminated + row;
    const F* __restrict tr = truncated + row;
    T* __restrict g = out + row;
    for (int64_t k = 0; k < w; ++k) {
      g[k] = r[k] + (is_set(te[k]) ? T(0) : gamma * nv[k]);
    }
    if (n > 1) {
      T* __restrict c = cut + t * kBlock;
      for (int64_t k = 0; k < w; ++k) c[k] = (is_set(te[k]) || is_set(tr[k])) ? T(1) : T(0);
    }
  }
  T* const bufs[2] = {out + n0, work};
  const int64_t strides[2] = {N, kBlock};
  int cur = 0;  // which buffer holds G^(m-1)
  for (int64_t m = 2; m <= n; ++m) {
    const T* src = bufs[cur];
    T* dst = bufs[1 - cur];
    const int64_t ss = strides[cur], ds = strides[1 - cur];
    for (int64_t t = 0; t + 1 < T_; ++t) {
      const T* __restrict r = rewards + t * N + n0;
      const T* __restrict c = cut + t * kBlock;
      const T* __restrict s0 = src + t * ss;
      const T* __restrict s1 = src + (t + 1) * ss;
      T* __restrict d = dst + t * ds;
      for (int64_t k = 0; k < w; ++k) {
        const T keep = s0[k];  // loaded unconditionally, so the select below is a blend
        const T follow = r[k] + gamma * s1[k];
        d[k] = c[k] != T(0) ? keep : follow;
      }
    }
    std::copy(src + (T_ - 1) * ss, src + (T_ - 1) * ss + w, dst + (T_ - 1) * ds);
    cur = 1 - cur;
  }
  if (cur == 1) {  // G^(n) is in the workspace
    for (int64_t t = 0; t < T_; ++t) std::copy(work + t * kBlock, work + t * kBlock + w, out + t * N + n0);
  }
}

#define PGFAST_BLOCK(T, F)                                                                          \
  PGFAST_CLONES void nstep_block(const T* r, const T* nv, const F* te, const F* tr, T* out, int64_t T_, \
                                 int64_t N, T gamma, int64_t n, int64_t n0, int64_t w, T* work, T* cut) { \
    block_body<T, F>(r, nv, te, tr, out, T_, N, gamma, n, n0, w, work, cut);                        \
  }
PGFAST_BLOCK(float, uint8_t)
PGFAST_BLOCK(float, float)
PGFAST_BLOCK(double, uint8_t)
PGFAST_BLOCK(double, double)
#undef PGFAST_BLOCK

template <class Fn>
void parallel_columns(int64_t N, int threads, Fn&& fn) {
  if (threads <= 1) {
    fn(int64_t(0), N);
    return;
  }
  int64_t chunk = (N + threads - 1) / threads;
  chunk = (chunk + kChunkAlign - 1) / kChunkAlign * kChunkAlign;
  const int64_t n_chunks = (N + chunk - 1) / chunk;
  SharedPoolLease lease(threads);
  parallel_for(lease.pool(), n_chunks, [&](int64_t c) {
    fn(c * chunk, std::min(N, (c + 1) * chunk));
  });
}

}  // namespace

template <class T, class F>
void nstep_returns(const T* rewards, const T* next_values, const F* terminated,
                   const F* truncated, T* out, int64_t T_, int64_t N, T gamma, int64_t n,
                   int num_threads) {
  if (T_ <= 0 || N <= 0 || n < 1) return;
  if (n >= T_) {
    // Every window reaches a cut (the last row at the latest): G^(n) is reward_to_go
    // bootstrapped from next_values, G_t = r_t + gamma * (1 - term_t) * (cut_t ? nv_t : G_{t+1}).
    reward_to_go(rewards, terminated, truncated, next_values, out, T_, N, gamma, num_threads);
    return;
  }
  const int threads = plan_threads(T_, N, num_threads);
  // n < T: G^(1) first, then each pass m = 2..n turns G^(m-1) into G^(m). Cut rows never
  // change (they bootstrap from next_values at once), and the last row is always cut.
  // Columns in blocks of kBlock through all n passes, so a block's rows stay in cache.
  // The passes ping-pong between the block of `out` and a workspace, and the cut flags
  // are turned once into a T-typed mask: every pass is then a select between two loaded
  // T values into another array, which vectorises with plain SSE2 (the wheel's baseline
  // ISA). An in-place `g = cut ? g : follow` is a conditional store there and did not.
  parallel_columns(N, threads, [&](int64_t c0, int64_t c1) {
   const int64_t ws = n > 1 ? T_ * kBlock : 0;
   std::vector<T> work(static_cast<size_t>(ws)), cut(static_cast<size_t>(ws));
   for (int64_t n0 = c0; n0 < c1; n0 += kBlock) {
     nstep_block(rewards, next_values, terminated, truncated, out, T_, N, gamma, n, n0,
                 std::min(c1, n0 + kBlock) - n0, work.data(), cut.data());
   }
  });
}

#define PGFAST_INSTANTIATE(T, F)                                                          \
  template void nstep_returns<T, F>(const T*, const T*, const F*, const F*, T*, int64_t, \
                                    int64_t, T, int64_t, int);

PGFAST_INSTANTIATE(float, uint8_t)
PGFAST_INSTANTIATE(float, float)
PGFAST_INSTANTIATE(double, uint8_t)
PGFAST_INSTANTIATE(double, double)

#undef PGFAST_INSTANTIATE

}  // namespace pgfast
