// VecEnv<Env>: N copies of one classic-control environment stepped by one call.
//
// Layout: the physics state is structure-of-arrays, state_[j * N + i] holds
// component j of env i (j < Env::kStateDim). Per env there is a step counter
// for the time limit, a pending-autoreset flag and an own random stream
// derived from (seed, env index), so results never depend on how envs are
// split across threads: step() with 1 or k threads is bit-identical.
//
// An Env type provides (all static, see cartpole.hpp for an example):
//   kStateDim, kCacheDim, kObsDim, kDiscrete, kNumActions (discrete) or
//   kActDim (Box), kMaxEpisodeSteps, struct Params, struct Bounds (reset
//   distribution), and, with s the kStateDim state followed by kCacheDim
//   cached values derived from it:
//   reset(double* s, Rng&, const Bounds&)   sample a start state
//   refresh(double* s)                      recompute the cache from the state
//   step_block(double* const* c, const A* actions, int n, const Params&,
//              double* reward, bool* terminated)
//       advance envs 0..n-1 of a block; c[j] points at component j of env 0
//       (structure of arrays); actions are [n] (discrete) or [n, kActDim]
//   observe(const double* s, float* obs)    the float32 observation
// (step_block_per_env adapts a per-env step(double* s, action, params).)
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
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
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
  void get(uint64_t* out) const {
    for (int k = 0; k < 4; ++k) out[k] = s_[k];
  }
  void set(const uint64_t* in) {
    for (int k = 0; k < 4; ++k) s_[k] = in[k];
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
// which is not always the correctly rounded x * x (glibc's pow is accurate to
// 0.52 ulp, so it can round the other way when x * x lies within 0.02 ulp of
// a rounding midpoint). np_pow2 / np_powf2 return exactly what libm returns:
// they compute x * x and its exact rounding error (Dekker's product, exact
// IEEE arithmetic without FMA), return x * x when the exact square is at
// least 0.025 ulp away from a rounding midpoint (then any libm result within
// 0.52 ulp of it must equal x * x), and otherwise call libm. The exponent is hidden from the compiler, which
// would fold pow(x, 2.0) into x * x.
inline double np_pow(double x, double y) {
  asm("" : "+x"(y));
  return std::pow(x, y);
}
inline float np_powf(float x, float y) {
  asm("" : "+x"(y));
  return std::pow(x, y);
}

// x * x is safe to return when its rounding error err satisfies
// |err| <= 0.475 ulp, i.e. when p + err / 0.95 still rounds to p: a test in
// plain arithmetic (vectorisable, and right at binade edges too).
constexpr double kPow2Slack = 1.0 / 0.95;
// For float32 the margin is 0.49 ulp (glibc's powf(x, 2) misrounds only within
// 0.002 ulp of a midpoint: checked exhaustively for |x| in [2^-40, 2^10]).
constexpr double kPowf2Slack = 0.5 / 0.49;

// x * x and whether it certainly equals libm's pow(x, 2.0).
inline double pow2_fast(double x, bool* ok) {
  const double ax = std::fabs(x);
  const double p = x * x;
  const double t = 134217729.0 * x;  // 2^27 + 1: Dekker split
  const double hi = t - (t - x);
  const double lo = x - hi;
  const double err = ((hi * hi - p) + 2.0 * hi * lo) + lo * lo;  // exact: x*x = p + err
  *ok = (ax > 0x1p-480) & (ax < 0x1p480) & (p + kPow2Slack * err == p);
  return p;
}
// x * x rounded to float and whether it certainly equals libm's powf(x, 2.0f).
inline float powf2_fast(float x, bool* ok) {
  const float ax = std::fabs(x);
  const double d = double(x) * double(x);  // exact
  const float c = float(d);
  const double err = d - double(c);  // exact
  *ok = (ax > 0x1p-60f) & (ax < 0x1p60f) & (float(double(c) + kPowf2Slack * err) == c);
  return c;
}

inline double np_pow2(double x) {
  bool ok;
  const double p = pow2_fast(x, &ok);
  return ok ? p : np_pow(x, 2.0);
}

inline float np_powf2(float x) {
  bool ok;
  const float c = powf2_fast(x, &ok);
  return ok ? c : np_powf(x, 2.0f);
}

// fmod(a, b) for b > 0, exactly as libm's (fmod is always exact): for
// |a| < 2^26 b the quotient q = trunc(|a| / b) is right or off by one; with
// q * b = P + E split exactly (Dekker), |a| - P is exact (Sterbenz) and so is
// (|a| - P) - E when q is right, which the sign/size of the result tells.
inline double exact_fmod(double a, double b) {
  const double x = std::fabs(a);
  if (!(x < b * 0x1p26) || !(b > 0)) return std::fmod(a, b);
  if (x < b) return a;
  double q = std::trunc(x / b);
  for (int attempt = 0; attempt < 3; ++attempt) {
    const double P = q * b;
    const double t = 134217729.0 * q, qh = t - (t - q), ql = q - qh;
    const double u = 134217729.0 * b, bh = u - (u - b), bl = b - bh;
    const double E = ((qh * bh - P) + qh * bl + ql * bh) + ql * bl;  // q*b = P + E
    const double r = (x - P) - E;
    if (r < 0) {
      q -= 1;
    } else if (r >= b) {
      q += 1;
    } else {
      return std::copysign(r, a);
    }
  }
  return std::fmod(a, b);
}

// numpy's float remainder (np.remainder / `%` on float64): the sign follows b.
inline double np_remainder(double a, double b) {
  double mod = exact_fmod(a, b);
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

// A fixed set of workers that, together with the calling thread, run
// body(item) for every item in [0, n_items). Each thread owns a contiguous
// lane of items and takes them from an atomic counter; a thread that is done
// takes the rest of the others' lanes, so a worker the OS has not scheduled
// yet never holds up a step (the caller simply does more items). Which thread
// runs an item never changes its result. Between back-to-back jobs workers spin ~50 us before
// sleeping, so a step does not pay a futex wake-up per thread.
class WorkerPool {
 public:
  explicit WorkerPool(int num_workers) : lanes_(new Lane[size_t(num_workers) + 1]) {
    for (int w = 0; w < num_workers; ++w) threads_.emplace_back([this, w] { loop(w + 1); });
  }
  ~WorkerPool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  int size() const { return int(threads_.size()) + 1; }
  // Items run by the worker threads so far (not by the caller): lets tests
  // check that the threaded path really ran.
  int64_t items_by_workers() const { return worker_items_.load(std::memory_order_relaxed); }

  void run(int64_t n_items, const std::function<void(int64_t)>& body) {
    if (n_items <= 0) return;
    {
      std::lock_guard<std::mutex> lk(mu_);
      job_ = &body;
      n_items_ = n_items;
      const int lanes = size();
      const int64_t per = (n_items + lanes - 1) / lanes;
      for (int l = 0; l < lanes; ++l) {
        lanes_[l].next.store(std::min(n_items, l * per), std::memory_order_relaxed);
        lanes_[l].end = std::min(n_items, (l + 1) * per);
      }
      done_.store(0, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    work(body, n_items, 0);
    if (!spin_until([&] { return done_.load(std::memory_order_acquire) == n_items; })) {
      std::unique_lock<std::mutex> lk(mu_);
      done_cv_.wait(lk, [&] { return done_.load(std::memory_order_acquire) == n_items; });
    }
    {
      // Late workers find no job; those already in it have no items left.
      std::lock_guard<std::mutex> lk(mu_);
      job_ = nullptr;
    }
    while (active_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
  }

 private:
  static void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
  // Spins up to ~50 us for pred(); returns whether it became true.
  template <class Pred>
  static bool spin_until(Pred pred) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
    for (;;) {
      for (int k = 0; k < 32; ++k) {
        if (pred()) return true;
        cpu_relax();
      }
      if (std::chrono::steady_clock::now() > deadline) return pred();
    }
  }

  // Runs items until none are left, first from its own lane (the same envs
  // every step, so their state stays in this core's cache), then from the
  // others'; returns how many it ran.
  int64_t work(const std::function<void(int64_t)>& body, int64_t n_items, int lane) {
    const int lanes = size();
    int64_t ran = 0;
    for (int j = 0; j < lanes; ++j) {
      Lane& l = lanes_[(lane + j) % lanes];
      for (;;) {
        const int64_t i = l.next.fetch_add(1, std::memory_order_relaxed);
        if (i >= l.end) break;
        body(i);
        ++ran;
        if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_items) {
          std::lock_guard<std::mutex> lk(mu_);
          done_cv_.notify_one();
        }
      }
    }
    return ran;
  }

  void loop(int lane) {
    uint64_t seen = 0;
    for (;;) {
      spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; });
      const std::function<void(int64_t)>* job;
      int64_t n;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return generation_.load(std::memory_order_acquire) != seen; });
        seen = generation_.load(std::memory_order_acquire);
        if (stop_) return;
        job = job_;
        n = n_items_;
        if (job != nullptr) active_.fetch_add(1, std::memory_order_acq_rel);
      }
      if (job != nullptr) {
        worker_items_.fetch_add(work(*job, n, lane), std::memory_order_relaxed);
        active_.fetch_sub(1, std::memory_order_acq_rel);
      }
    }
  }

  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int64_t)>* job_ = nullptr;  // guarded by mu_
  int64_t n_items_ = 0;                                 // guarded by mu_
  bool stop_ = false;                                   // guarded by mu_
  // Items [start, end) of a lane, start advanced by whoever takes one.
  struct alignas(64) Lane {
    std::atomic<int64_t> next{0};
    int64_t end = 0;  // written under mu_ before the job is published
  };
  std::unique_ptr<Lane[]> lanes_;
  std::atomic<int64_t> done_{0};
  std::atomic<int> active_{0};
  std::atomic<int64_t> worker_items_{0};
  std::atomic<uint64_t> generation_{0};
};

// Envs per thread below which extra threads cost more than they save (a
// wake-up costs microseconds on a busy machine; a CartPole env ~15 ns).
constexpr int64_t kMinEnvsPerThread = 2048;

// ------------------------------------------------------------------ VecEnv

// Envs are stepped in blocks: the env kernel first advances a whole block
// (so libm calls and the arithmetic run as tight loops the compiler can
// vectorise), then one pass applies time limits, autoresets and writes
// observations.
constexpr int kBlock = 256;
// Blocks per work item handed to a thread.
constexpr int64_t kItemBlocks = 4;

// For envs whose kernel is written per env: Env::step_block that loads each
// env's state, calls Env::step and stores it back.
template <class Env, class A>
inline void step_block_per_env(double* const* c, const A* act, int n,
                               const typename Env::Params& p, double* rew, bool* term) {
  constexpr int kS = Env::kStateDim + Env::kCacheDim;
  for (int k = 0; k < n; ++k) {
    double s[kS];
    for (int j = 0; j < kS; ++j) s[j] = c[j][k];
    StepResult r;
    if constexpr (Env::kDiscrete) {
      r = Env::step(s, int64_t(act[k]), p);
    } else {
      float a[Env::kActDim];
      for (int d = 0; d < Env::kActDim; ++d) a[d] = float(act[k * Env::kActDim + d]);
      r = Env::step(s, a, p);
    }
    for (int j = 0; j < kS; ++j) c[j][k] = s[j];
    rew[k] = r.reward;
    term[k] = r.terminated;
  }
}

template <class Env>
class VecEnv {
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
    if (threads_ > 1) pool_.reset(new WorkerPool(threads_ - 1));
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
        double s[kRows];
        Env::reset(s, rng_[size_t(i)], bounds_);
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
    if (threads_ == 1) {
      step_range(0, n_, actions, obs, rew, term, trunc, final_obs, final_mask);
      return;
    }
    // Work items of kItemBlocks blocks, taken by whichever thread is free.
    constexpr int64_t kItem = int64_t(kBlock) * kItemBlocks;
    const std::function<void(int64_t)> item = [&](int64_t it) {
      const int64_t i0 = it * kItem;
      step_range(i0, std::min<int64_t>(n_, i0 + kItem), actions, obs, rew, term, trunc,
                 final_obs, final_mask);
    };
    pool_->run((n_ + kItem - 1) / kItem, item);
  }

  // Everything a step depends on, for checkpoints: rows [kRows, N] (state
  // and cache, structure of arrays), steps [N], pending [N], rng [N, 4],
  // bounds [2] (the reset distribution of autoresets).
  static_assert(sizeof(Bounds) == 2 * sizeof(double), "Bounds must be two doubles");
  void save(double* rows, int64_t* steps, uint8_t* pending, uint64_t* rng,
            double* bounds) const {
    std::copy(state_.begin(), state_.end(), rows);
    std::copy(steps_.begin(), steps_.end(), steps);
    std::copy(pending_.begin(), pending_.end(), pending);
    for (int64_t i = 0; i < n_; ++i) rng_[size_t(i)].get(rng + 4 * i);
    std::memcpy(bounds, &bounds_, sizeof(Bounds));
  }
  void restore(const double* rows, const int64_t* steps, const uint8_t* pending,
               const uint64_t* rng, const double* bounds) {
    std::copy(rows, rows + state_.size(), state_.begin());
    std::copy(steps, steps + n_, steps_.begin());
    for (int64_t i = 0; i < n_; ++i) pending_[size_t(i)] = pending[i] ? 1 : 0;
    for (int64_t i = 0; i < n_; ++i) rng_[size_t(i)].set(rng + 4 * i);
    bounds_ = Bounds{bounds[0], bounds[1]};
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

  template <class A, class O, class R>
  void step_range(int64_t i0, int64_t i1, const A* actions, O* obs, R* rew, bool* term,
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
        Env::reset(s, rng_[size_t(i)], bounds_);
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
