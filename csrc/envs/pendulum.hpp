// Pendulum-v1, mirroring gymnasium 1.x:
// https://github.com/Farama-Foundation/Gymnasium/blob/main/gymnasium/envs/classic_control/pendulum.py
//
// State (float64, gymnasium's `unwrapped.state` order): theta, theta_dot.
// Observation (float32): cos(theta), sin(theta), theta_dot. Action: Box(-2, 2,
// (1,), float32), clipped to [-2, 2] before use (as gymnasium's step does).
// Reward: -(angle_normalize(theta)^2 + 0.1 theta_dot^2 + 0.001 u^2), never
// terminates, truncated after 200 steps. Reset: theta uniform in
// [-x_init, x_init), theta_dot in [-y_init, y_init) (defaults pi and 1; reset
// options "x_init"/"y_init").
//
// Precision follows gymnasium's numpy types: the state is float64, while the
// action u is a float32 scalar, so u**2, 0.001 * u**2 and 3.0 * u are float32
// operations (numpy promotes a Python float to the array's float32), and
// `x ** 2` on numpy scalars is libm pow, not x * x.
#pragma once

#include <cmath>
#include <cstdint>

#include "envs/env.hpp"

namespace pgfast {
namespace envs {

struct Pendulum {
  static constexpr const char* kId = "Pendulum-v1";
  static constexpr int kStateDim = 2;
  static constexpr int kCacheDim = 2;
  static constexpr int kObsDim = 3;
  static constexpr bool kDiscrete = false;
  static constexpr int kNumActions = 0;
  static constexpr int kActDim = 1;
  static constexpr int64_t kMaxEpisodeSteps = 200;

  static constexpr double kMaxSpeed = 8;
  static constexpr double kMaxTorque = 2.0;
  static constexpr double kDt = 0.05;
  static constexpr double kDefaultGravity = 10.0;
  static constexpr double kMass = 1.0;
  static constexpr double kLength = 1.0;
  static constexpr double kPi = 3.141592653589793;
  static constexpr double kDefaultXInit = kPi;  // DEFAULT_X
  static constexpr double kDefaultYInit = 1.0;  // DEFAULT_Y

  static constexpr double kBCoef = 3.0 / (kMass * (kLength * kLength));  // 3.0 / (m * l ** 2)

  struct Params {
    double g = kDefaultGravity;
  };
  static constexpr std::array kParams{real_param("g", &Params::g)};
  struct Bounds {
    double x_init = kDefaultXInit;
    double y_init = kDefaultYInit;
  };
  static constexpr const char* kResetOptions[2] = {"x_init", "y_init"};

  static double angle_normalize(double x) { return np_remainder(x + kPi, 2 * kPi) - kPi; }

  static void reset(double* s, Rng& rng, const Bounds& b) {
    s[0] = rng.uniform(-b.x_init, b.x_init);
    s[1] = rng.uniform(-b.y_init, b.y_init);
  }

  // Cache: s[2] = sin(theta), s[3] = cos(theta), used by the next step's
  // dynamics and by the observation.
  static void refresh(double* s) { sincos(s[0], &s[2], &s[3]); }

  // One block of envs, gymnasium's step arranged as loops over arrays:
  //   u = clip(action, -2, 2)                        (float32)
  //   costs = angle_normalize(th) ** 2 + 0.1 * thdot ** 2 + 0.001 * (u ** 2)
  //   newthdot = clip(thdot + (3 g / (2 l) * sin(th) + 3 / (m l^2) * u) * dt, -8, 8)
  //   newth = th + newthdot * dt;  reward = -costs
  // The common case (angle within two turns, x * x equal to libm's pow) runs
  // vectorised; the rare envs that need fmod or libm pow are redone one by
  // one; sin/cos of the new angle (cache and observation) come last.
  template <class A>
  static void step_block(double* const* c, const A* act, int n, const Params& p,
                         double* rew, bool* term) {
    double* __restrict th = c[0];
    double* __restrict thdot = c[1];
    double* __restrict sn = c[2];
    double* __restrict cs = c[3];
    float u[kBlock];
    double old_thdot[kBlock], an[kBlock], slow[kBlock];  // slow: 0.0 or 1.0
    const float lo = float(-kMaxTorque), hi = float(kMaxTorque);
    for (int k = 0; k < n; ++k) {
      const float a = float(act[k]);
      u[k] = std::min(std::max(a, lo), hi);
    }
    constexpr double kTwoPi = 2 * kPi;
    for (int k = 0; k < n; ++k) {
      // angle_normalize(th) = np.remainder(th + pi, 2 pi) - pi for |th + pi| < 4 pi:
      // fmod(a, b) is a for |a| < b and a -+ b (exact, Sterbenz) for |a| < 2 b;
      // numpy then adds b to a negative result and turns +-0 into +0.
      const double a = th[k] + kPi;
      const double shift = std::fabs(a) < kTwoPi ? 0.0 : kTwoPi;
      const double fm = a - std::copysign(shift, a);
      an[k] = (fm + (fm < 0 ? kTwoPi : 0.0)) - kPi;
      slow[k] = std::fabs(a) < 2 * kTwoPi ? 0.0 : 1.0;
    }
    for (int k = 0; k < n; ++k) {
      if (slow[k] != 0.0) an[k] = angle_normalize(th[k]);
    }
    // costs = angle_normalize(th) ** 2 + 0.1 * thdot ** 2 + 0.001 * (u ** 2)
    for (int k = 0; k < n; ++k) {
      bool ok1, ok2;
      const double p1 = pow2_fast(an[k], &ok1);
      const double p2 = pow2_fast(thdot[k], &ok2);
      rew[k] = p1 + 0.1 * p2;
      slow[k] = (ok1 & ok2) ? 0.0 : 1.0;
    }
    for (int k = 0; k < n; ++k) {
      bool ok3;
      const float u2_scaled = float(0.001) * powf2_fast(u[k], &ok3);
      rew[k] = -(rew[k] + double(u2_scaled));
      slow[k] = ok3 ? slow[k] : 1.0;
    }
    const double a_coef = 3 * p.g / (2 * kLength);  // 3 * g / (2 * l)
    const float b_coef = float(kBCoef);
    for (int k = 0; k < n; ++k) {
      const double td = thdot[k];
      const float bu = b_coef * u[k];  // 3.0 / (m * l ** 2) * u, float32
      old_thdot[k] = td;
      thdot[k] = td + (a_coef * sn[k] + double(bu)) * kDt;
    }
    // np.clip(newthdot, -max_speed, max_speed), one bound per loop (each
    // vectorises as a single select)
    for (int k = 0; k < n; ++k) {
      const double v = thdot[k];
      thdot[k] = v < -kMaxSpeed ? -kMaxSpeed : v;
    }
    for (int k = 0; k < n; ++k) {
      const double v = thdot[k];
      thdot[k] = v > kMaxSpeed ? kMaxSpeed : v;
    }
    for (int k = 0; k < n; ++k) th[k] = th[k] + thdot[k] * kDt;
    for (int k = 0; k < n; ++k) {
      if (slow[k] != 0.0) {  // libm pow / powf decide
        const float u2_scaled = float(0.001) * np_powf2(u[k]);
        rew[k] = -(np_pow2(an[k]) + 0.1 * np_pow2(old_thdot[k]) + double(u2_scaled));
      }
    }
    for (int k = 0; k < n; ++k) sincos(th[k], &sn[k], &cs[k]);  // glibc: same as sin, cos
    for (int k = 0; k < n; ++k) term[k] = false;
  }

  static void observe(const double* s, float* o) {
    o[0] = float(s[3]);
    o[1] = float(s[2]);
    o[2] = float(s[1]);
  }
};

}  // namespace envs
}  // namespace pgfast
