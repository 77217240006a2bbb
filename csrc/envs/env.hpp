// What an environment struct must provide to be stepped by VecEnv<Env>
// (csrc/envs/vec_env.hpp) and exposed by pgfast._C; check_env<Env>() checks
// it at compile time. All members are static; see cartpole.hpp for an example.
//
//   kId                  gymnasium id, e.g. "CartPole-v1"
//   kStateDim            physics state size (get_state/set_state, gymnasium's
//                        `unwrapped.state` order)
//   kCacheDim            values cached after the state (functions of it, e.g.
//                        sin/cos of an angle), never exposed; 0 if none
//   kObsDim              observation size (float32)
//   kDiscrete            Discrete(kNumActions) actions, or Box of kActDim floats
//   kNumActions, kActDim (the other one is 0)
//   kMaxEpisodeSteps     gymnasium's registered time limit
//   struct Params        constructor parameters (gymnasium's keyword arguments)
//   kParams              the table naming them: std::array of real_param(...) /
//                        flag_param(...); Python may set these and nothing else
//   struct Bounds        the reset distribution: exactly two doubles
//   kResetOptions        the two reset-option names setting Bounds, e.g.
//                        {"low", "high"} (checked low <= high, as gymnasium does)
// and, with s the kStateDim state followed by the kCacheDim cache:
//   reset(double* s, Rng&, const Bounds&)   sample a start state
//   refresh(double* s)                      recompute the cache from the state
//   step_block(double* const* c, const A* actions, int n, const Params&,
//              double* reward, bool* terminated)
//       advance envs 0..n-1 (n <= kBlock) of a block; c[j] points at component j
//       of env 0 (structure of arrays); actions are [n] (discrete, A = int64_t
//       or int32_t) or [n, kActDim] (Box, A = float or double)
//   observe(const double* s, float* obs)    the float32 observation
// (step_block_per_env adapts a per-env `StepResult step(double* s, action,
// const Params&)`.)
//
// This header sees no Python.
#pragma once

#include <array>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "envs/np_math.hpp"
#include "envs/rng.hpp"

namespace pgfast {
namespace envs {

// Envs are stepped in blocks of at most this many (an env kernel may keep
// per-block scratch arrays of this size).
constexpr int kBlock = 256;

struct StepResult {
  double reward;
  bool terminated;
};

// One entry of an env's parameter table: a name and the Params member it
// sets, a real number (finite) or a flag (Python truthiness).
template <class P>
struct Param {
  const char* name;
  double P::*real;
  bool P::*flag;
};
template <class P>
constexpr Param<P> real_param(const char* name, double P::*member) {
  return {name, member, nullptr};
}
template <class P>
constexpr Param<P> flag_param(const char* name, bool P::*member) {
  return {name, nullptr, member};
}

// For envs whose kernel is written per env: a step_block that loads each
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

// ------------------------------------------------------------------ the check

namespace detail {

template <class E, class = void>
struct has_reset : std::false_type {};
template <class E>
struct has_reset<E, std::void_t<decltype(E::reset(std::declval<double*>(), std::declval<Rng&>(),
                                                  std::declval<const typename E::Bounds&>()))>>
    : std::true_type {};

template <class E, class = void>
struct has_refresh : std::false_type {};
template <class E>
struct has_refresh<E, std::void_t<decltype(E::refresh(std::declval<double*>()))>>
    : std::true_type {};

template <class E, class = void>
struct has_observe : std::false_type {};
template <class E>
struct has_observe<E, std::void_t<decltype(E::observe(std::declval<const double*>(),
                                                      std::declval<float*>()))>>
    : std::true_type {};

template <class E, class A, class = void>
struct has_step_block : std::false_type {};
template <class E, class A>
struct has_step_block<
    E, A,
    std::void_t<decltype(E::step_block(std::declval<double* const*>(), std::declval<const A*>(),
                                       0, std::declval<const typename E::Params&>(),
                                       std::declval<double*>(), std::declval<bool*>()))>>
    : std::true_type {};

template <class P, class Table>
constexpr bool is_param_table(const Table& table) {
  for (const auto& p : table) {
    if (p.name == nullptr || (p.real == nullptr) == (p.flag == nullptr)) return false;
  }
  return std::is_same_v<typename Table::value_type, Param<P>>;
}

}  // namespace detail

// Compile-time check of the contract above; VecEnv<Env> calls it, so an env
// that misses a piece fails to build with a message naming it.
template <class Env>
constexpr bool check_env() {
  static_assert(std::is_convertible_v<decltype(Env::kId), const char*>,
                "Env::kId must be the gymnasium id (a string literal)");
  static_assert(Env::kStateDim > 0, "Env::kStateDim must be positive");
  static_assert(Env::kCacheDim >= 0, "Env::kCacheDim must be >= 0");
  static_assert(Env::kObsDim > 0, "Env::kObsDim must be positive");
  static_assert(std::is_same_v<std::decay_t<decltype(Env::kDiscrete)>, bool>,
                "Env::kDiscrete must be a bool");
  static_assert(Env::kDiscrete ? (Env::kNumActions > 0 && Env::kActDim == 0)
                               : (Env::kActDim > 0 && Env::kNumActions == 0),
                "a discrete Env needs kNumActions > 0 and kActDim = 0, a Box Env the reverse");
  static_assert(Env::kMaxEpisodeSteps > 0, "Env::kMaxEpisodeSteps must be positive");
  static_assert(std::is_default_constructible_v<typename Env::Params>,
                "Env::Params must be default-constructible (the defaults are gymnasium's)");
  static_assert(detail::is_param_table<typename Env::Params>(Env::kParams),
                "Env::kParams must be a std::array of real_param/flag_param entries of Params");
  static_assert(std::is_trivially_copyable_v<typename Env::Bounds> &&
                    sizeof(typename Env::Bounds) == 2 * sizeof(double),
                "Env::Bounds must be two doubles (the reset distribution)");
  static_assert(std::is_convertible_v<decltype(Env::kResetOptions[0]), const char*> &&
                    sizeof(Env::kResetOptions) == 2 * sizeof(const char*),
                "Env::kResetOptions must name the two reset options that set Bounds");
  static_assert(detail::has_reset<Env>::value,
                "Env must provide static void reset(double* s, Rng&, const Bounds&)");
  static_assert(detail::has_refresh<Env>::value, "Env must provide static void refresh(double* s)");
  static_assert(detail::has_observe<Env>::value,
                "Env must provide static void observe(const double* s, float* obs)");
  if constexpr (Env::kDiscrete) {
    static_assert(detail::has_step_block<Env, int64_t>::value &&
                      detail::has_step_block<Env, int32_t>::value,
                  "Env must provide static step_block(double* const*, const A* actions, int n, "
                  "const Params&, double* reward, bool* terminated) for A = int64_t and int32_t");
  } else {
    static_assert(detail::has_step_block<Env, float>::value &&
                      detail::has_step_block<Env, double>::value,
                  "Env must provide static step_block(double* const*, const A* actions, int n, "
                  "const Params&, double* reward, bool* terminated) for A = float and double");
  }
  return true;
}

}  // namespace envs
}  // namespace pgfast
