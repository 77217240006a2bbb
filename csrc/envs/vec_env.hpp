// VecEnv<Env>: N copies of one classic-control environment stepped by one call.
//
// Env is a struct of static members as described (and checked) in
// envs/env.hpp. Layout: the physics state is structure-of-arrays,
// state_[j * N + i] holds component j of env i (j < kStateDim + kCacheDim).
// Per env there is a step counter for the time limit, a pending-autoreset
// flag and an own random stream (numpy's PCG64 seeded through SeedSequence,
// envs/rng.hpp: env i of a vector env seeded with s draws what gymnasium's
// env i does), so results never depend on how envs are split across threads:
// step() with 1 or k threads is bit-identical.
//
// Autoreset modes (as gymnasium.vector.AutoresetMode):
//   NEXT_STEP: an env that ended at step t is reset at step t+1 (its action
//              is ignored, reward 0, terminated = truncated = false).
//   SAME_STEP: an env that ends at step t is reset within step t; its last
//              observation goes to final_obs[i] and final_mask[i] is set.
//   DISABLED:  stepped as NEXT_STEP, but the caller resets ended envs (a
//              masked reset) before the next step; any_pending() tells the
//              binding to refuse a step that would need an autoreset.
// An autoreset draws from the env's own stream with the default reset
// distribution (reset options apply to the reset they are given to only,
// as in gymnasium's SyncVectorEnv, whose autoresets call env.reset()).
//
// This header sees no Python: arrays are raw pointers whose sizes the caller
// (csrc/bindings/env_core.hpp) has checked.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "clones.hpp"
#include "envs/env.hpp"
#include "parallel.hpp"

namespace pgfast {
namespace envs {

// Envs per thread below which extra threads cost more than they save (a
// wake-up costs microseconds on a busy machine; a CartPole env ~15 ns).
constexpr int64_t kMinEnvsPerThread = 2048;

// ------------------------------------------------------------------ VecEnv

// Envs are stepped in blocks of kBlock (envs/env.hpp): the env kernel first
// advances a whole block (so libm calls and the arithmetic run as tight loops
// the compiler can vectorise), then one pass applies time limits, autoresets
// and writes observations.
//
// Blocks per work item handed to a thread.
constexpr int64_t kItemBlocks = 4;

template <class Env>
class VecEnv {
  static_assert(check_env<Env>());

 public:
  using Params = typename Env::Params;
  using Bounds = typename Env::Bounds;
  static constexpr int kStateDim = Env::kStateDim;
  // Components after the state that cache functions of it (e.g. sin/cos of an
  // angle, reused by the next step); never exposed by get_state.
  static constexpr int kRows = Env::kStateDim + Env::kCacheDim;
  static constexpr int kObsDim = Env::kObsDim;
  static constexpr int kActWidth = Env::kDiscrete ? 1 : Env::kActDim;

  VecEnv(int64_t num_envs, const Params& params, int64_t max_episode_steps,
         bool same_step, int num_threads)
      : n_(num_envs),
        params_(params),
        max_steps_(max_episode_steps),
        same_step_(same_step),
        state_(size_t(num_envs) * kRows, 0.0),
        steps_(size_t(num_envs), 0),
        pending_(size_t(num_envs), 0),
        rng_(size_t(num_envs)) {
    const int64_t by_size = std::max<int64_t>(1, n_ / kMinEnvsPerThread);
    threads_ = int(std::max<int64_t>(1, std::min<int64_t>(num_threads, by_size)));
    if (threads_ > 1) {
      // At most max_pool_threads(), and fewer where the OS refuses a thread
      // (csrc/parallel.hpp): results are the same for any count.
      pool_.reset(new WorkerPool(threads_ - 1));
      threads_ = pool_->size();
      if (threads_ == 1) pool_.reset();
    }
    for (int64_t i = 0; i < n_; ++i) {
      double s[kRows] = {};
      Env::refresh(s);
      store(i, s);
    }
  }

  int64_t num_envs() const { return n_; }
  int threads_used() const { return threads_; }
  int64_t items_by_workers() const { return pool_ ? pool_->items_by_workers() : 0; }
  int64_t max_episode_steps() const { return max_steps_; }
  bool same_step() const { return same_step_; }

  // Discrete actions: index of the first out-of-range entry, or -1.
  template <class A>
  int64_t first_invalid_discrete(const A* actions) const {
    for (int64_t i = 0; i < n_; ++i) {
      if (actions[i] < 0 || actions[i] >= A(Env::kNumActions)) return i;
    }
    return -1;
  }
  // Box actions [N, kActDim]: index of the first non-finite entry, or -1.
  template <class A>
  int64_t first_nonfinite(const A* actions) const {
    const int64_t m = n_ * int64_t(Env::kActDim);
    for (int64_t k = 0; k < m; ++k) {
      if (!std::isfinite(actions[k])) return k;
    }
    return -1;
  }

  // Reseed the streams of envs (all, or those with mask[i] != 0): env i from
  // the seed integer whose little-endian uint32 words are
  // entropy[i * width .. i * width + nwords[i]) (nwords null: width words).
  void seed(const uint32_t* entropy, int64_t width, const int64_t* nwords, const uint8_t* mask) {
    for (int64_t i = 0; i < n_; ++i) {
      if (mask == nullptr || mask[i]) {
        rng_[size_t(i)].seed(entropy + i * width, nwords == nullptr ? width : nwords[i]);
      }
    }
  }

  // True if some env ended and awaits a reset (NEXT_STEP/DISABLED modes).
  bool any_pending() const {
    for (const uint8_t p : pending_) {
      if (p) return true;
    }
    return false;
  }

  // Reset envs (all, or those with mask[i] != 0), drawing from each env's
  // stream with the reset distribution `bounds` (this reset only). Writes
  // the current observation of every env to obs [N, kObsDim].
  template <class O>
  void reset(const uint8_t* mask, const Bounds& bounds, O* obs) {
    for (int64_t i = 0; i < n_; ++i) {
      if (mask == nullptr || mask[i]) {
        double s[kRows];
        Env::reset(s, rng_[size_t(i)], bounds);
        Env::refresh(s);
        store(i, s);
        steps_[size_t(i)] = 0;
        pending_[size_t(i)] = 0;
      }
    }
    observe_all(obs);
  }

  template <class O>
  void observe_all(O* obs) const {
    for (int64_t i = 0; i < n_; ++i) {
      double s[kRows];
      load(i, s);
      write_obs(s, obs + i * kObsDim);
    }
  }

  // Step all envs. Actions must be valid (see first_invalid_*). final_obs and
  // final_mask are used (and must be non-null) in SAME_STEP mode only.
  template <class A, class O, class R>
  void step(const A* actions, O* obs, R* rew, bool* term, bool* trunc, float* final_obs,
            bool* final_mask) {
    // Work items of kItemBlocks blocks, taken by whichever thread is free.
    constexpr int64_t kItem = int64_t(kBlock) * kItemBlocks;
    parallel_for(pool_.get(), (n_ + kItem - 1) / kItem, [&](int64_t it) {
      const int64_t i0 = it * kItem;
      step_range(i0, std::min<int64_t>(n_, i0 + kItem), actions, obs, rew, term, trunc,
                 final_obs, final_mask);
    });
  }

  // Everything a step depends on, for checkpoints: rows [kRows, N] (state
  // and cache, structure of arrays), steps [N], pending [N], rng [N, 4]
  // (PCG64 state and increment, high word first: Rng::get).
  void save(double* rows, int64_t* steps, uint8_t* pending, uint64_t* rng) const {
    std::copy(state_.begin(), state_.end(), rows);
    std::copy(steps_.begin(), steps_.end(), steps);
    std::copy(pending_.begin(), pending_.end(), pending);
    for (int64_t i = 0; i < n_; ++i) rng_[size_t(i)].get(rng + 4 * i);
  }
  void restore(const double* rows, const int64_t* steps, const uint8_t* pending,
               const uint64_t* rng) {
    std::copy(rows, rows + state_.size(), state_.begin());
    std::copy(steps, steps + n_, steps_.begin());
    for (int64_t i = 0; i < n_; ++i) pending_[size_t(i)] = pending[i] ? 1 : 0;
    for (int64_t i = 0; i < n_; ++i) rng_[size_t(i)].set(rng + 4 * i);
  }

  // State as [N, kStateDim] (row per env).
  void get_state(double* out) const {
    for (int64_t i = 0; i < n_; ++i) {
      double s[kRows];
      load(i, s);
      for (int j = 0; j < kStateDim; ++j) out[i * kStateDim + j] = s[j];
    }
  }
  // Sets every env's state from [N, kStateDim]; cancels pending autoresets.
  void set_state(const double* in) {
    for (int64_t i = 0; i < n_; ++i) {
      double s[kRows];
      for (int j = 0; j < kStateDim; ++j) s[j] = in[i * kStateDim + j];
      Env::refresh(s);
      store(i, s);
      pending_[size_t(i)] = 0;
    }
  }

 private:
  void load(int64_t i, double* s) const {
    for (int j = 0; j < kRows; ++j) s[j] = state_[size_t(j * n_ + i)];
  }
  void store(int64_t i, const double* s) {
    for (int j = 0; j < kRows; ++j) state_[size_t(j * n_ + i)] = s[j];
  }
  template <class O>
  static void write_obs(const double* s, O* out) {
    float o[kObsDim];
    Env::observe(s, o);
    for (int k = 0; k < kObsDim; ++k) out[k] = O(o[k]);
  }

  // Cloned per ISA (clones.hpp): the envs' step_block loops vectorise as wide as the CPU
  // allows in the portable wheel (CartPole/Pendulum ran 10-18% slower than -march=native).
  template <class A, class O, class R>
  PGFAST_CLONES void step_range(int64_t i0, int64_t i1, const A* actions, O* obs, R* rew, bool* term,
                  bool* trunc, float* final_obs, bool* final_mask) {
    double rew_b[kBlock];
    bool term_b[kBlock];
    int resets[kBlock];
    for (int64_t b0 = i0; b0 < i1; b0 += kBlock) {
      const int n = int(std::min<int64_t>(kBlock, i1 - b0));
      double* comp[kRows];
      for (int j = 0; j < kRows; ++j) comp[j] = state_.data() + size_t(j * n_ + b0);
      // Envs awaiting a next-step autoreset are stepped too; the reset below
      // overwrites that result (their action is ignored, as in gymnasium).
      Env::step_block(comp, actions + b0 * kActWidth, n, params_, rew_b, term_b);
      int num_resets = 0;
      int64_t* steps = steps_.data() + b0;
      uint8_t* pending = pending_.data() + b0;
      R* rw = rew + b0;
      bool* te = term + b0;
      bool* tr = trunc + b0;
      if (!same_step_) {
        for (int k = 0; k < n; ++k) {
          if (pending[k]) {
            resets[num_resets++] = k;
            steps[k] = 0;
            pending[k] = 0;
            rw[k] = R(0);
            te[k] = false;
            tr[k] = false;
          } else {
            const bool t = term_b[k];
            const bool u = ++steps[k] >= max_steps_;
            rw[k] = R(rew_b[k]);
            te[k] = t;
            tr[k] = u;
            pending[k] = uint8_t(t || u);
          }
        }
      } else {
        bool* fm = final_mask + b0;
        for (int k = 0; k < n; ++k) {
          const bool t = term_b[k];
          const bool u = ++steps[k] >= max_steps_;
          rw[k] = R(rew_b[k]);
          te[k] = t;
          tr[k] = u;
          fm[k] = t || u;
          if (t || u) {
            resets[num_resets++] = k;
            steps[k] = 0;
          }
        }
      }
      for (int r = 0; r < num_resets; ++r) {
        const int64_t i = b0 + resets[r];
        double s[kRows];
        if (same_step_) {
          load(i, s);
          write_obs(s, final_obs + i * kObsDim);
        }
        Env::reset(s, rng_[size_t(i)], Bounds{});
        Env::refresh(s);
        store(i, s);
      }
      O* o = obs + b0 * kObsDim;
      for (int k = 0; k < n; ++k) {
        double s[kRows];
        for (int j = 0; j < kRows; ++j) s[j] = comp[j][k];
        write_obs(s, o + k * kObsDim);
      }
    }
  }

  int64_t n_;
  Params params_;
  int64_t max_steps_;
  bool same_step_;
  std::vector<double> state_;
  std::vector<int64_t> steps_;
  std::vector<uint8_t> pending_;
  std::vector<Rng> rng_;
  int threads_ = 1;
  std::unique_ptr<WorkerPool> pool_;
};

}  // namespace envs
}  // namespace pgfast
