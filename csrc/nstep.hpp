// n-step bootstrapped returns on raw time-major [T, N] arrays.
//
// Same boundary semantics as csrc/returns.hpp: terminated_t is a true end
// (never bootstrap), truncated_t a time-limit cut (bootstrap from
// next_values_t = V(final observation)), and the last row t = T-1 is always
// cut:
//
//   G^(1)_t = r_t + gamma * (1 - term_t) * next_values_t
//   G^(n)_t = r_t + gamma * (1 - term_t) * (cut_t ? next_values_t : G^(n-1)_{t+1})
//
// i.e. the next n rewards, then V after n steps, stopping early at a
// termination (no bootstrap) or a truncation / the rollout end (bootstrap
// there). n >= T gives reward_to_go with next_values. Columns are independent
// and split into chunks over the shared pool, so the result is bit-identical
// for any thread count.
#pragma once

#include <cstdint>

namespace pgfast {

// Flags: uint8 (numpy bool / uint8) or the data's floating type; nonzero is set.
// n >= 1 (the binding checks it).
template <class T, class F>
void nstep_returns(const T* rewards, const T* next_values, const F* terminated,
                   const F* truncated, T* out, int64_t T_, int64_t N, T gamma, int64_t n,
                   int num_threads);

}  // namespace pgfast
