#include "returns.hpp"

#include <algorithm>
#include <thread>

#include "clones.hpp"
#include "parallel.hpp"

namespace pgfast {
namespace {

// Below this many elements a kernel runs on the calling thread: handing work
// to other threads costs microseconds, more than the whole computation.
constexpr int64_t kMinElementsPerThread = int64_t(1) << 17;
// Column chunks are multiples of this many elements (64 bytes of float32) so
// two threads never write to the same cache line.
constexpr int64_t kChunkAlign = 16;

template <class F>
inline bool is_set(F f) {
  return f != F(0);
}

// Run fn(n0, n1) over [0, N) in `threads` column chunks on the shared pool.
// Columns are independent, so the chunking never changes a result.
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

int plan_threads(int64_t T_, int64_t N, int num_threads) {
  if (T_ <= 0 || N <= 0) return 1;
  const int64_t max_by_columns = std::max<int64_t>(1, N / kChunkAlign);
  const int64_t cap = std::min<int64_t>(max_by_columns, max_pool_threads());
  if (num_threads > 0) return int(std::max<int64_t>(1, std::min<int64_t>(num_threads, cap)));
  const int64_t hw = hardware_threads();
  // T_ * N / kMinElementsPerThread without overflowing: compare before multiplying
  const int64_t by_size = T_ > (int64_t(1) << 62) / N ? hw : (T_ * N) / kMinElementsPerThread;
  return int(std::max<int64_t>(1, std::min<int64_t>({hw, by_size, cap})));
}

template <class T, class F>
void discounted_cumsum(const T* x, const F* dones, T* y, int64_t T_, int64_t N,
                       T gamma, int num_threads) {
  if (T_ <= 0 || N <= 0) return;
  parallel_columns(N, plan_threads(T_, N, num_threads), [&](int64_t n0, int64_t n1) {
    const int64_t last = (T_ - 1) * N;
    for (int64_t n = n0; n < n1; ++n) y[last + n] = x[last + n];
    for (int64_t t = T_ - 2; t >= 0; --t) {
      const int64_t row = t * N;
      const T* __restrict xr = x + row;
      const F* __restrict dr = dones + row;
      T* __restrict yr = y + row;
      const T* __restrict yn = y + row + N;
      for (int64_t n = n0; n < n1; ++n) {
        const T keep = is_set(dr[n]) ? T(0) : gamma;
        yr[n] = xr[n] + keep * yn[n];
      }
    }
  });
}

// The column range [n0, n1) of reward_to_go, all rows; cloned per ISA (clones.hpp): the
// portable build ran it up to ~1.3x slower than -march=native.
template <class T, class F>
PGFAST_CLONES void reward_to_go_columns(const T* rewards, const F* terminated, const F* truncated,
                                        const T* next_values, T* out, int64_t T_, int64_t N, T gamma,
                                        int64_t n0, int64_t n1) {
  for (int64_t t = T_ - 1; t >= 0; --t) {
    const int64_t row = t * N;
    const bool last_row = (t == T_ - 1);
    const T* __restrict r = rewards + row;
    const F* __restrict te = terminated + row;
    const F* __restrict tr = truncated + row;
    T* __restrict g = out + row;
    // For the last row there is no G_{t+1}; point at a row we never select.
    const T* __restrict gn = last_row ? out + row : out + row + N;
    if (next_values != nullptr) {
      const T* __restrict nv = next_values + row;
      for (int64_t n = n0; n < n1; ++n) {
        const bool term = is_set(te[n]);
        const bool cut = last_row || term || is_set(tr[n]);
        const T follow = cut ? nv[n] : gn[n];
        // select, not multiply by 0: a non-finite nv[n] at a terminal step is ignored
        g[n] = r[n] + (term ? T(0) : gamma * follow);
      }
    } else {
      for (int64_t n = n0; n < n1; ++n) {
        const bool term = is_set(te[n]);
        const bool cut = last_row || term || is_set(tr[n]);
        const T follow = cut ? T(0) : gn[n];
        g[n] = r[n] + (term ? T(0) : gamma) * follow;
      }
    }
  }
}

template <class T, class F>
void reward_to_go(const T* rewards, const F* terminated, const F* truncated,
                  const T* next_values, T* out, int64_t T_, int64_t N, T gamma,
                  int num_threads) {
  if (T_ <= 0 || N <= 0) return;
  parallel_columns(N, plan_threads(T_, N, num_threads), [&](int64_t n0, int64_t n1) {
    reward_to_go_columns(rewards, terminated, truncated, next_values, out, T_, N, gamma, n0, n1);
  });
}

template <class T, class F>
void gae(const T* rewards, const T* values, const T* next_values,
         const F* terminated, const F* truncated, T* advantages, T* returns,
         int64_t T_, int64_t N, T gamma, T lam, int num_threads) {
  if (T_ <= 0 || N <= 0) return;
  const T gl = gamma * lam;
  parallel_columns(N, plan_threads(T_, N, num_threads), [&](int64_t n0, int64_t n1) {
    for (int64_t t = T_ - 1; t >= 0; --t) {
      const int64_t row = t * N;
      const bool last_row = (t == T_ - 1);
      const T* __restrict r = rewards + row;
      const T* __restrict v = values + row;
      const T* __restrict nv = next_values + row;
      const F* __restrict te = terminated + row;
      const F* __restrict tr = truncated + row;
      T* __restrict a = advantages + row;
      T* __restrict ret = returns + row;
      const T* __restrict an = last_row ? advantages + row : advantages + row + N;
      for (int64_t n = n0; n < n1; ++n) {
        const bool term = is_set(te[n]);
        const bool done = last_row || term || is_set(tr[n]);
        // select, not multiply by 0: a non-finite nv[n] at a terminal step is ignored
        const T delta = r[n] + (term ? T(0) : gamma * nv[n]) - v[n];
        const T next_a = done ? T(0) : an[n];
        const T adv = delta + gl * next_a;
        a[n] = adv;
        ret[n] = adv + v[n];
      }
    }
  });
}

#define PGFAST_INSTANTIATE(T, F)                                                    \
  template void discounted_cumsum<T, F>(const T*, const F*, T*, int64_t, int64_t, T, \
                                        int);                                        \
  template void reward_to_go<T, F>(const T*, const F*, const F*, const T*, T*,       \
                                   int64_t, int64_t, T, int);                        \
  template void gae<T, F>(const T*, const T*, const T*, const F*, const F*, T*, T*,  \
                          int64_t, int64_t, T, T, int);

PGFAST_INSTANTIATE(float, uint8_t)
PGFAST_INSTANTIATE(float, float)
PGFAST_INSTANTIATE(double, uint8_t)
PGFAST_INSTANTIATE(double, double)

#undef PGFAST_INSTANTIATE

}  // namespace pgfast
