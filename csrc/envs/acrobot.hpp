// Acrobot-v1, mirroring gymnasium 1.x:
// https://github.com/Farama-Foundation/Gymnasium/blob/main/gymnasium/envs/classic_control/acrobot.py
//
// State (float64, gymnasium's `unwrapped.state` order): theta1, theta2,
// dtheta1, dtheta2. Observation (float32): cos(theta1), sin(theta1),
// cos(theta2), sin(theta2), dtheta1, dtheta2. Action: Discrete(3), torque
// -1, 0, +1. Dynamics: the "book" equations integrated with one RK4 step of
// dt = 0.2 exactly as gymnasium's rk4() does it (state augmented with the
// torque, whose derivative is 0), angles wrapped to [-pi, pi], velocities
// bounded to 4 pi and 9 pi. Reward -1 per step, 0 on the terminating step;
// terminated when -cos(theta1) - cos(theta2 + theta1) > 1; truncated after 500
// steps. Reset: each component uniform in [low, high) (default [-0.1, 0.1),
// reset options "low"/"high") then rounded to float32, as gymnasium's reset
// does (`.astype(np.float32)`); steps run in float64. (gymnasium computes the
// observation right after reset with float32 cos/sin of that float32 state;
// here they are float64 cos/sin rounded to float32, which can differ by one
// float32 ulp. Every later observation and all dynamics match exactly.)
#pragma once

#include <cmath>
#include <cstdint>

#include "envs/env.hpp"

namespace pgfast {
namespace envs {

struct Acrobot {
  static constexpr const char* kId = "Acrobot-v1";
  static constexpr int kStateDim = 4;
  static constexpr int kCacheDim = 0;
  static constexpr int kObsDim = 6;
  static constexpr bool kDiscrete = true;
  static constexpr int kNumActions = 3;
  static constexpr int kActDim = 0;
  static constexpr int64_t kMaxEpisodeSteps = 500;

  static constexpr double kPi = 3.141592653589793;
  static constexpr double kDt = 0.2;
  static constexpr double kLinkLength1 = 1.0;
  static constexpr double kLinkLength2 = 1.0;
  static constexpr double kLinkMass1 = 1.0;
  static constexpr double kLinkMass2 = 1.0;
  static constexpr double kLinkComPos1 = 0.5;
  static constexpr double kLinkComPos2 = 0.5;
  static constexpr double kLinkMoi = 1.0;
  static constexpr double kMaxVel1 = 4 * kPi;
  static constexpr double kMaxVel2 = 9 * kPi;
  static constexpr double kGravity = 9.8;
  static constexpr double kAvailTorque[3] = {-1.0, 0.0, 1.0};

  struct Params {};
  static constexpr std::array<Param<Params>, 0> kParams{};
  struct Bounds {
    double low = -0.1;
    double high = 0.1;
  };
  static constexpr const char* kResetOptions[2] = {"low", "high"};

  static void reset(double* s, Rng& rng, const Bounds& b) {
    for (int j = 0; j < kStateDim; ++j) s[j] = double(float(rng.uniform(b.low, b.high)));
  }

  // _dsdt: derivatives of (theta1, theta2, dtheta1, dtheta2) under torque a.
  static void dsdt(const double* y, double a, double* dy) {
    const double m1 = kLinkMass1, m2 = kLinkMass2, l1 = kLinkLength1;
    const double lc1 = kLinkComPos1, lc2 = kLinkComPos2, I1 = kLinkMoi, I2 = kLinkMoi;
    const double g = kGravity;
    const double theta1 = y[0], theta2 = y[1], dtheta1 = y[2], dtheta2 = y[3];
    // Python-float powers of constants (lc1**2 ...) are exact squares.
    const double lc1_2 = lc1 * lc1, l1_2 = l1 * l1, lc2_2 = lc2 * lc2;
    const double d1 =
        m1 * lc1_2 + m2 * (l1_2 + lc2_2 + 2 * l1 * lc2 * std::cos(theta2)) + I1 + I2;
    const double d2 = m2 * (lc2_2 + l1 * lc2 * std::cos(theta2)) + I2;
    const double phi2 = m2 * lc2 * g * std::cos(theta1 + theta2 - kPi / 2.0);
    const double phi1 = -m2 * l1 * lc2 * np_pow2(dtheta2) * std::sin(theta2) -
                        2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * std::sin(theta2) +
                        (m1 * lc1 + m2 * l1) * g * std::cos(theta1 - kPi / 2) + phi2;
    const double ddtheta2 =
        (a + d2 / d1 * phi1 - m2 * l1 * lc2 * np_pow2(dtheta1) * std::sin(theta2) -
         phi2) /
        (m2 * lc2_2 + I2 - np_pow2(d2) / d1);
    const double ddtheta1 = -(d2 * ddtheta2 + phi1) / d1;
    dy[0] = dtheta1;
    dy[1] = dtheta2;
    dy[2] = ddtheta1;
    dy[3] = ddtheta2;
  }

  static constexpr double kWrapLoopLimit = 1e6;
  static double wrap(double x, double m, double M) {
    const double diff = M - m;
    // gymnasium's loops take |x| / diff turns (forever for inf, or where
    // x - diff == x): an angle only set_state can bring that far (a step
    // bounds the velocities) is first reduced by fmod, inf becomes NaN.
    if (!(std::fabs(x) <= kWrapLoopLimit)) x = std::isfinite(x) ? std::fmod(x, diff) : NAN;
    while (x > M) x = x - diff;
    while (x < m) x = x + diff;
    return x;
  }
  // bound(x, m, M) = min(max(x, m), M) with Python's builtin min/max.
  static double bound(double x, double m, double M) {
    const double hi = (m > x) ? m : x;
    return (M < hi) ? M : hi;
  }

  static StepResult step(double* s, int64_t action, const Params&) {
    const double torque = kAvailTorque[action];
    // rk4(self._dsdt, s_augmented, [0, self.dt]); the torque component has
    // derivative 0 so it stays `torque` in every stage.
    const double dt = kDt - 0;
    const double dt2 = dt / 2.0;
    double k1[4], k2[4], k3[4], k4[4], y[4];
    dsdt(s, torque, k1);
    for (int j = 0; j < 4; ++j) y[j] = s[j] + dt2 * k1[j];
    dsdt(y, torque + dt2 * 0.0, k2);
    for (int j = 0; j < 4; ++j) y[j] = s[j] + dt2 * k2[j];
    dsdt(y, torque + dt2 * 0.0, k3);
    for (int j = 0; j < 4; ++j) y[j] = s[j] + dt * k3[j];
    dsdt(y, torque + dt * 0.0, k4);
    double ns[4];
    const double w = dt / 6.0;
    for (int j = 0; j < 4; ++j) ns[j] = s[j] + w * (k1[j] + 2 * k2[j] + 2 * k3[j] + k4[j]);
    ns[0] = wrap(ns[0], -kPi, kPi);
    ns[1] = wrap(ns[1], -kPi, kPi);
    ns[2] = bound(ns[2], -kMaxVel1, kMaxVel1);
    ns[3] = bound(ns[3], -kMaxVel2, kMaxVel2);
    for (int j = 0; j < 4; ++j) s[j] = ns[j];
    const bool terminated = -std::cos(s[0]) - std::cos(s[1] + s[0]) > 1.0;
    return {terminated ? 0.0 : -1.0, terminated};
  }

  static void refresh(double*) {}

  template <class A>
  static void step_block(double* const* c, const A* act, int n, const Params& p,
                         double* rew, bool* term) {
    step_block_per_env<Acrobot>(c, act, n, p, rew, term);
  }

  static void observe(const double* s, float* o) {
    o[0] = float(std::cos(s[0]));
    o[1] = float(std::sin(s[0]));
    o[2] = float(std::cos(s[1]));
    o[3] = float(std::sin(s[1]));
    o[4] = float(s[2]);
    o[5] = float(s[3]);
  }
};

}  // namespace envs
}  // namespace pgfast
