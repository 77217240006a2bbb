// MountainCar-v0 and MountainCarContinuous-v0, mirroring gymnasium 1.x:
// https://github.com/Farama-Foundation/Gymnasium/blob/main/gymnasium/envs/classic_control/mountain_car.py
// https://github.com/Farama-Foundation/Gymnasium/blob/main/gymnasium/envs/classic_control/continuous_mountain_car.py
//
// State (gymnasium's `unwrapped.state` order): position, velocity.
// Observation: the state cast to float32. Reset: position uniform in
// [low, high) (default [-0.6, -0.4), reset options "low"/"high"), velocity 0.
//
// MountainCar-v0: Discrete(3) (push left, none, right); float64 state; reward
// -1 per step; terminated at position >= 0.5 and velocity >= goal_velocity;
// truncated after 200 steps.
//
// MountainCarContinuous-v0: Box(-1, 1, (1,), float32) action; the force is the
// action clipped to [-1, 1], the reward uses the unclipped action:
// 100 on reaching position >= 0.45 with velocity >= goal_velocity, minus
// 0.1 * action^2 each step; truncated after 999 steps.
// gymnasium keeps this env's state as float64 straight after reset and as a
// float32 array after every step, and numpy then evaluates the step in
// float32 (a Python float meeting a float32 scalar becomes float32). The step
// below reproduces both: a state whose two components are exactly
// representable in float32 is treated as gymnasium's float32 state, any other
// as its float64 one (a reset position is float32-exact with probability
// ~2^-29, and set_state with float64 values selects the float64 path).
#pragma once

#include <cmath>
#include <cstdint>

#include "envs/env.hpp"

namespace pgfast {
namespace envs {

struct MountainCar {
  static constexpr const char* kId = "MountainCar-v0";
  static constexpr int kStateDim = 2;
  static constexpr int kCacheDim = 0;
  static constexpr int kObsDim = 2;
  static constexpr bool kDiscrete = true;
  static constexpr int kNumActions = 3;
  static constexpr int kActDim = 0;
  static constexpr int64_t kMaxEpisodeSteps = 200;

  static constexpr double kMinPosition = -1.2;
  static constexpr double kMaxPosition = 0.6;
  static constexpr double kMaxSpeed = 0.07;
  static constexpr double kGoalPosition = 0.5;
  static constexpr double kForce = 0.001;
  static constexpr double kGravity = 0.0025;

  struct Params {
    double goal_velocity = 0.0;
  };
  static constexpr std::array kParams{real_param("goal_velocity", &Params::goal_velocity)};
  struct Bounds {
    double low = -0.6;
    double high = -0.4;
  };
  static constexpr const char* kResetOptions[2] = {"low", "high"};

  static void reset(double* s, Rng& rng, const Bounds& b) {
    s[0] = rng.uniform(b.low, b.high);
    s[1] = 0.0;
  }

  static StepResult step(double* s, int64_t action, const Params& p) {
    double position = s[0], velocity = s[1];
    velocity += double(action - 1) * kForce + std::cos(3 * position) * (-kGravity);
    velocity = std::min(std::max(velocity, -kMaxSpeed), kMaxSpeed);
    position += velocity;
    position = std::min(std::max(position, kMinPosition), kMaxPosition);
    if (position == kMinPosition && velocity < 0) velocity = 0;
    const bool terminated = position >= kGoalPosition && velocity >= p.goal_velocity;
    s[0] = position;
    s[1] = velocity;
    return {-1.0, terminated};
  }

  static void refresh(double*) {}

  template <class A>
  static void step_block(double* const* c, const A* act, int n, const Params& p,
                         double* rew, bool* term) {
    step_block_per_env<MountainCar>(c, act, n, p, rew, term);
  }

  static void observe(const double* s, float* o) {
    o[0] = float(s[0]);
    o[1] = float(s[1]);
  }
};

struct MountainCarContinuous {
  static constexpr const char* kId = "MountainCarContinuous-v0";
  static constexpr int kStateDim = 2;
  static constexpr int kCacheDim = 0;
  static constexpr int kObsDim = 2;
  static constexpr bool kDiscrete = false;
  static constexpr int kNumActions = 0;
  static constexpr int kActDim = 1;
  static constexpr int64_t kMaxEpisodeSteps = 999;

  static constexpr double kMinAction = -1.0;
  static constexpr double kMaxAction = 1.0;
  static constexpr double kMinPosition = -1.2;
  static constexpr double kMaxPosition = 0.6;
  static constexpr double kMaxSpeed = 0.07;
  static constexpr double kGoalPosition = 0.45;
  static constexpr double kPower = 0.0015;
  static constexpr double kGravity = 0.0025;

  struct Params {
    double goal_velocity = 0.0;
  };
  static constexpr std::array kParams{real_param("goal_velocity", &Params::goal_velocity)};
  using Bounds = MountainCar::Bounds;
  static constexpr const char* kResetOptions[2] = {"low", "high"};

  static void reset(double* s, Rng& rng, const Bounds& b) { MountainCar::reset(s, rng, b); }

  static bool f32_exact(double x) { return double(float(x)) == x; }

  // A numpy scalar or Python float: value plus whether numpy holds it as float32.
  struct Num {
    double v;
    bool f32;
  };
  // Comparisons of a numpy scalar with a Python float happen in its precision.
  static bool gt(const Num& a, double b) { return a.f32 ? float(a.v) > float(b) : a.v > b; }
  static bool lt(const Num& a, double b) { return a.f32 ? float(a.v) < float(b) : a.v < b; }
  static bool ge(const Num& a, double b) { return a.f32 ? float(a.v) >= float(b) : a.v >= b; }
  static bool eq(const Num& a, double b) { return a.f32 ? float(a.v) == float(b) : a.v == b; }

  static StepResult step(double* s, const float* action, const Params& p) {
    const bool f32 = f32_exact(s[0]) && f32_exact(s[1]);
    Num position{s[0], f32}, velocity{s[1], f32};
    const float a = action[0];
    // force = min(max(action[0], -1.0), 1.0): a float32 scalar, or the Python
    // float bound where it clips.
    double delta;  // force * power - 0.0025 * math.cos(3 * position)
    bool delta_f32;
    const double c3 = position.f32 ? double(float(3.0f * float(position.v))) : 3 * position.v;
    const double term2 = kGravity * std::cos(c3);
    if (a < float(kMinAction) || a > float(kMaxAction)) {
      const double force = a < float(kMinAction) ? kMinAction : kMaxAction;
      delta = force * kPower - term2;
      delta_f32 = false;
    } else {
      const float term1 = a * float(kPower);
      delta = double(term1 - float(term2));
      delta_f32 = true;
    }
    (void)delta_f32;
    // velocity += delta: float32 if velocity is, else float64.
    velocity.v = velocity.f32 ? double(float(velocity.v) + float(delta)) : velocity.v + delta;
    if (gt(velocity, kMaxSpeed)) velocity = {kMaxSpeed, false};
    if (lt(velocity, -kMaxSpeed)) velocity = {-kMaxSpeed, false};
    // position += velocity
    position.v = position.f32 ? double(float(position.v) + float(velocity.v))
                              : position.v + velocity.v;
    if (gt(position, kMaxPosition)) position = {kMaxPosition, false};
    if (lt(position, kMinPosition)) position = {kMinPosition, false};
    if (eq(position, kMinPosition) && velocity.v < 0) velocity = {0.0, false};
    const bool terminated = ge(position, kGoalPosition) && ge(velocity, p.goal_velocity);
    double reward = terminated ? 100.0 : 0.0;
    reward -= np_pow2(double(a)) * 0.1;
    // self.state = np.array([position, velocity], dtype=np.float32)
    s[0] = double(float(position.v));
    s[1] = double(float(velocity.v));
    return {reward, terminated};
  }

  static void refresh(double*) {}

  template <class A>
  static void step_block(double* const* c, const A* act, int n, const Params& p,
                         double* rew, bool* term) {
    step_block_per_env<MountainCarContinuous>(c, act, n, p, rew, term);
  }

  static void observe(const double* s, float* o) {
    o[0] = float(s[0]);
    o[1] = float(s[1]);
  }
};

}  // namespace envs
}  // namespace pgfast
