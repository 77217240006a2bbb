// VecEnv<Env>: N copies of one classic-control environment stepped by one call.
//
// Layout: the physics state is structure-of-arrays, state_[j * N + i] holds
// component j of env i (j < Env::kStateDim). Per env there is a step counter
// for the time limit, a pending-autoreset flag and an own random stream
// derived from (seed, env index), so results never depend on how envs are
// split across threads: step() with 1 or k threads is bit-identical.
//
// An Env type provides (all static, see cartpole.hpp for an example):
//   kStateDim, kObsDim, kDiscrete, kNumActions (discrete) or kActDim (Box),
//   kMaxEpisodeSteps, struct Params, struct Bounds (reset distribution),
//   reset(double* s, Rng&, const Bounds&)       sample a start state
//   step(double* s, Action, const Params&) -> StepResult{reward, terminated}
//   observe(const double* s, float* obs)        the float32 observation
// where Action is int64_t for discrete envs and const float* for Box envs.
//
// Autoreset modes (as gymnasium.vector.AutoresetMode):
//   NEXT_STEP: an env that ended at step t is reset at step t+1 (its action
//              is ignored, reward 0, terminated = truncated = false).
//   SAME_STEP: an env that ends at step t is reset within step t; its last
//              observation goes to final_obs[i] and final_mask[i] is set.
//
// This header sees no Python: arrays are raw pointers whose sizes the caller
// (csrc/bindings.cpp) has checked.
#pragma once

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace pgfast {
namespace envs {

// ------------------------------------------------------------------ RNG

inline uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// xoshiro256++ seeded through SplitMix64 from (seed, stream index).
class Rng {
 public:
  Rng() { seed(0, 0); }
  void seed(uint64_t seed, uint64_t index) {
    uint64_t x = seed;
    const uint64_t a = splitmix64(x);
    uint64_t y = index ^ 0xD1B54A32D192ED03ULL;
    const uint64_t b = splitmix64(y);
    uint64_t z = a ^ (b * 0x9E3779B97F4A7C15ULL) ^ (b >> 17);
    for (auto& w : s_) w = splitmix64(z);
  }
  uint64_t next() {
    const uint64_t result = rotl(s_[0] + s_[3], 23) + s_[0];
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, 1) with 53 random bits.
  double next_double() { return double(next() >> 11) * 0x1.0p-53; }
  // low + (high - low) * u, the formula numpy's Generator.uniform uses.
  double uniform(double low, double high) { return low + (high - low) * next_double(); }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// ------------------------------------------------------------------ numpy arithmetic helpers
//
// numpy evaluates `x ** 2` on float64 / float32 scalars with libm pow / powf,
// which is not always the correctly rounded x * x. The compiler would fold
// pow(x, 2.0) into x * x, so the exponent is hidden behind an empty asm.
inline double np_pow(double x, double y) {
  asm("" : "+x"(y));
  return std::pow(x, y);
}
inline float np_powf(float x, float y) {
  asm("" : "+x"(y));
  return std::pow(x, y);
}
// numpy's float remainder (np.remainder / `%` on float64): the sign follows b.
inline double np_remainder(double a, double b) {
  double mod = std::fmod(a, b);
  if (mod != 0.0) {
    if ((b < 0) != (mod < 0)) mod += b;
  } else {
    mod = std::copysign(0.0, b);
  }
  return mod;
}

struct StepResult {
  double reward;
  bool terminated;
};

// ------------------------------------------------------------------ thread pool

// A fixed set of workers that run chunk c of a job for c in [1, n); the
// calling thread runs chunk 0 and waits for the rest.
class WorkerPool {
 public:
  explicit WorkerPool(int num_workers) {
    for (int w = 0; w < num_workers; ++w) {
      threads_.emplace_back([this, w] { loop(w + 1); });
    }
  }
  ~WorkerPool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
      ++generation_;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  int size() const { return int(threads_.size()) + 1; }

  // Runs fn(c) for c in [0, n_chunks), n_chunks <= size().
  void run(int n_chunks, const std::function<void(int)>& fn) {
    if (n_chunks <= 1 || threads_.empty()) {
      for (int c = 0; c < n_chunks; ++c) fn(c);
      return;
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      job_ = &fn;
      n_chunks_ = n_chunks;
      pending_ = n_chunks - 1;
      ++generation_;
    }
    cv_.notify_all();
    fn(0);
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [this] { return pending_ == 0; });
    job_ = nullptr;
  }

 private:
  void loop(int chunk) {
    uint64_t seen = 0;
    for (;;) {
      const std::function<void(int)>* job;
      int n;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return generation_ != seen; });
        seen = generation_;
        if (stop_) return;
        job = job_;
        n = n_chunks_;
      }
      if (chunk < n) {
        (*job)(chunk);
        std::lock_guard<std::mutex> lk(mu_);
        if (--pending_ == 0) done_cv_.notify_one();
      }
    }
  }

  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int)>* job_ = nullptr;
  int n_chunks_ = 0;
  int pending_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
};

// Envs per thread below which extra threads cost more than they save.
constexpr int64_t kMinEnvsPerThread = 512;

// ------------------------------------------------------------------ VecEnv

template <class Env>
class VecEnv {
 public:
  using Params = typename Env::Params;
  using Bounds = typename Env::Bounds;
  static constexpr int kStateDim = Env::kStateDim;
  static constexpr int kObsDim = Env::kObsDim;

  VecEnv(int64_t num_envs, const Params& params, int64_t max_episode_steps,
         bool same_step, int num_threads)
      : n_(num_envs),
        params_(params),
        max_steps_(max_episode_steps),
        same_step_(same_step),
        state_(size_t(num_envs) * kStateDim, 0.0),
        steps_(size_t(num_envs), 0),
        pending_(size_t(num_envs), 0),
        rng_(size_t(num_envs)) {
    const int64_t by_size = std::max<int64_t>(1, n_ / kMinEnvsPerThread);
    threads_ = int(std::max<int64_t>(1, std::min<int64_t>(num_threads, by_size)));
    if (threads_ > 1) pool_.reset(new WorkerPool(threads_ - 1));
  }

  int64_t num_envs() const { return n_; }
  int threads_used() const { return threads_; }
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

  // Reset envs (all, or those with mask[i] != 0). seeds (may be null): env i
  // reseeds its stream from (seeds[i], i) before sampling. Writes the current
  // observation of every env to obs [N, kObsDim]. The bounds become the reset
  // distribution of later autoresets too.
  template <class O>
  void reset(const uint64_t* seeds, const uint8_t* mask, const Bounds& bounds, O* obs) {
    bounds_ = bounds;
    for (int64_t i = 0; i < n_; ++i) {
      if (mask == nullptr || mask[i]) {
        if (seeds != nullptr) rng_[size_t(i)].seed(seeds[i], uint64_t(i));
        double s[kStateDim];
        Env::reset(s, rng_[size_t(i)], bounds_);
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
      double s[kStateDim];
      load(i, s);
      write_obs(s, obs + i * kObsDim);
    }
  }

  // Step all envs. Actions must be valid (see first_invalid_*). final_obs and
  // final_mask are used (and must be non-null) in SAME_STEP mode only.
  template <class A, class O, class R>
  void step(const A* actions, O* obs, R* rew, bool* term, bool* trunc, float* final_obs,
            bool* final_mask) {
    auto chunk = [&](int c) {
      const int64_t per = (n_ + threads_ - 1) / threads_;
      const int64_t i0 = std::min<int64_t>(n_, int64_t(c) * per);
      const int64_t i1 = std::min<int64_t>(n_, i0 + per);
      step_range(i0, i1, actions, obs, rew, term, trunc, final_obs, final_mask);
    };
    if (threads_ == 1) {
      chunk(0);
    } else {
      pool_->run(threads_, chunk);
    }
  }

  // State as [N, kStateDim] (row per env).
  void get_state(double* out) const {
    for (int64_t i = 0; i < n_; ++i) load(i, out + i * kStateDim);
  }
  // Sets every env's state from [N, kStateDim]; cancels pending autoresets.
  void set_state(const double* in) {
    for (int64_t i = 0; i < n_; ++i) {
      store(i, in + i * kStateDim);
      pending_[size_t(i)] = 0;
    }
  }

 private:
  void load(int64_t i, double* s) const {
    for (int j = 0; j < kStateDim; ++j) s[j] = state_[size_t(j * n_ + i)];
  }
  void store(int64_t i, const double* s) {
    for (int j = 0; j < kStateDim; ++j) state_[size_t(j * n_ + i)] = s[j];
  }
  template <class O>
  static void write_obs(const double* s, O* out) {
    float o[kObsDim];
    Env::observe(s, o);
    for (int k = 0; k < kObsDim; ++k) out[k] = O(o[k]);
  }

  template <class A>
  static auto action_of(const A* actions, int64_t i) {
    if constexpr (Env::kDiscrete) {
      return int64_t(actions[i]);
    } else {
      struct Box {
        float v[Env::kActDim];
        const float* data() const { return v; }
      } b;
      for (int k = 0; k < Env::kActDim; ++k) b.v[k] = float(actions[i * Env::kActDim + k]);
      return b;
    }
  }

  template <class A, class O, class R>
  void step_range(int64_t i0, int64_t i1, const A* actions, O* obs, R* rew, bool* term,
                  bool* trunc, float* final_obs, bool* final_mask) {
    for (int64_t i = i0; i < i1; ++i) {
      double s[kStateDim];
      load(i, s);
      O* o = obs + i * kObsDim;
      if (!same_step_ && pending_[size_t(i)]) {
        Env::reset(s, rng_[size_t(i)], bounds_);
        steps_[size_t(i)] = 0;
        pending_[size_t(i)] = 0;
        rew[i] = R(0);
        term[i] = false;
        trunc[i] = false;
      } else {
        StepResult r;
        if constexpr (Env::kDiscrete) {
          r = Env::step(s, int64_t(actions[i]), params_);
        } else {
          const auto a = action_of(actions, i);
          r = Env::step(s, a.data(), params_);
        }
        const bool tr = ++steps_[size_t(i)] >= max_steps_;
        rew[i] = R(r.reward);
        term[i] = r.terminated;
        trunc[i] = tr;
        const bool done = r.terminated || tr;
        if (same_step_) {
          final_mask[i] = done;
          if (done) {
            write_obs(s, final_obs + i * kObsDim);
            Env::reset(s, rng_[size_t(i)], bounds_);
            steps_[size_t(i)] = 0;
          }
        } else {
          pending_[size_t(i)] = done;
        }
      }
      store(i, s);
      write_obs(s, o);
    }
  }

  int64_t n_;
  Params params_;
  Bounds bounds_{};
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
