#include "nstep.hpp"

#include <algorithm>

#include "parallel.hpp"
#include "returns.hpp"  // plan_threads

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
  const int threads = plan_threads(T_, N, num_threads);
  if (n >= T_) {
    // Every window reaches a cut (the last row at the latest): one backward
    // sweep, G_t = r_t + gamma * (1 - term_t) * (cut_t ? nv_t : G_{t+1}).
    parallel_columns(N, threads, [&](int64_t n0, int64_t n1) {
      for (int64_t t = T_ - 1; t >= 0; --t) {
        const int64_t row = t * N;
        const bool last_row = (t == T_ - 1);
        const T* __restrict r = rewards + row;
        const T* __restrict nv = next_values + row;
        const F* __restrict te = terminated + row;
        const F* __restrict tr = truncated + row;
        T* __restrict g = out + row;
        const T* __restrict gn = last_row ? out + row : out + row + N;
        for (int64_t k = n0; k < n1; ++k) {
          const bool term = is_set(te[k]);
          const bool cut = last_row || term || is_set(tr[k]);
          const T follow = cut ? nv[k] : gn[k];
          // select, not multiply by 0: a non-finite nv at a terminal step is ignored
          g[k] = r[k] + (term ? T(0) : gamma * follow);
        }
      }
    });
    return;
  }
  // n < T: out holds G^(1); each further pass m = 2..n turns G^(m-1) into
  // G^(m) in place. Walking t upwards, row t+1 still holds G^(m-1) when row t
  // reads it. Cut rows never change (they bootstrap from next_values at once).
  // Columns in blocks of kBlock through all n passes, so a block's rows stay in cache.
  parallel_columns(N, threads, [&](int64_t c0, int64_t c1) {
   for (int64_t n0 = c0; n0 < c1; n0 += kBlock) {
    const int64_t n1 = std::min(c1, n0 + kBlock);
    for (int64_t t = 0; t < T_; ++t) {
      const int64_t row = t * N;
      const T* __restrict r = rewards + row;
      const T* __restrict nv = next_values + row;
      const F* __restrict te = terminated + row;
      T* __restrict g = out + row;
      for (int64_t k = n0; k < n1; ++k) {
        g[k] = r[k] + (is_set(te[k]) ? T(0) : gamma * nv[k]);
      }
    }
    for (int64_t m = 2; m <= n; ++m) {
      for (int64_t t = 0; t + 1 < T_; ++t) {
        const int64_t row = t * N;
        const T* __restrict r = rewards + row;
        const F* __restrict te = terminated + row;
        const F* __restrict tr = truncated + row;
        // rows t and t+1 of out do not overlap
        T* __restrict g = out + row;
        const T* __restrict gn = out + row + N;
        for (int64_t k = n0; k < n1; ++k) {
          const bool cut = is_set(te[k]) || is_set(tr[k]);
          const T follow = r[k] + gamma * gn[k];
          g[k] = cut ? g[k] : follow;  // a select, so the loop vectorises
        }
      }
    }
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
