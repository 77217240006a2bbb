// Return and advantage kernels on raw time-major [T, N] arrays.
//
// Semantics (README.md, "Returns and advantages", and the docstrings of
// pgfast/returns.py): terminated_t means a true end (never bootstrap);
// truncated_t means a time-limit cut (bootstrap from next_values_t, which the
// caller sets to V(final observation)); the last row t = T-1 is always cut.
//
// Every kernel walks t from T-1 down to 0 and, inside, the contiguous N
// dimension. Columns are independent, so threads split N into chunks (on the
// shared pool of csrc/parallel.hpp) and the result is bit-identical whatever
// the thread count.
#pragma once

#include <cstdint>

namespace pgfast {

// Flags may be uint8 (numpy bool / uint8) or the floating type of the data.
// nonzero means set.

// y_t = x_t + gamma * (1 - dones_t) * y_{t+1},  y_T = 0
template <class T, class F>
void discounted_cumsum(const T* x, const F* dones, T* y, int64_t T_, int64_t N,
                       T gamma, int num_threads);

// G_t = r_t + gamma * (1 - term_t) * (cut_t ? next_values_t : G_{t+1})
// cut_t = term_t || trunc_t || t == T-1; next_values == nullptr means zeros.
template <class T, class F>
void reward_to_go(const T* rewards, const F* terminated, const F* truncated,
                  const T* next_values, T* out, int64_t T_, int64_t N, T gamma,
                  int num_threads);

// delta_t = r_t + gamma * (1 - term_t) * next_values_t - values_t
// A_t     = delta_t + gamma * lam * (1 - done_t) * A_{t+1},  A_T = 0
// returns = A + values
template <class T, class F>
void gae(const T* rewards, const T* values, const T* next_values,
         const F* terminated, const F* truncated, T* advantages, T* returns,
         int64_t T_, int64_t N, T gamma, T lam, int num_threads);

// Number of threads a kernel uses for a [T, N] problem when asked for
// num_threads (0 = automatic, negative treated as 0): at most one per 16
// columns and max_pool_threads() (csrc/parallel.hpp). Exposed so tests can
// force the threaded path.
int plan_threads(int64_t T_, int64_t N, int num_threads);

}  // namespace pgfast
