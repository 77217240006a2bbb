// CartPole-v1, mirroring gymnasium 1.x:
// https://github.com/Farama-Foundation/Gymnasium/blob/main/gymnasium/envs/classic_control/cartpole.py
//
// State (float64, gymnasium's `unwrapped.state` order): x, x_dot, theta, theta_dot.
// Observation: the state cast to float32. Action: Discrete(2), 0 pushes left.
// Euler integration, reward 1 per step (sutton_barto_reward: 0, and -1 on the
// terminating step), terminated when |x| > 2.4 or |theta| > 12 degrees,
// truncated after 500 steps. Reset: every component uniform in [low, high)
// (default [-0.05, 0.05), reset options "low"/"high").
// The arithmetic follows gymnasium's expression by expression (same order of
// operations, np.square as x * x, libm sin/cos) so states match bit for bit.
#pragma once

#include <cmath>
#include <cstdint>

#include "envs/env.hpp"

namespace pgfast {
namespace envs {

struct CartPole {
  static constexpr const char* kId = "CartPole-v1";
  static constexpr int kStateDim = 4;
  static constexpr int kCacheDim = 0;
  static constexpr int kObsDim = 4;
  static constexpr bool kDiscrete = true;
  static constexpr int kNumActions = 2;
  static constexpr int kActDim = 0;
  static constexpr int64_t kMaxEpisodeSteps = 500;

  static constexpr double kGravity = 9.8;
  static constexpr double kMassCart = 1.0;
  static constexpr double kMassPole = 0.1;
  static constexpr double kTotalMass = kMassPole + kMassCart;
  static constexpr double kLength = 0.5;  // half the pole's length
  static constexpr double kPoleMassLength = kMassPole * kLength;
  static constexpr double kForceMag = 10.0;
  static constexpr double kTau = 0.02;
  static constexpr double kPi = 3.141592653589793;
  // 12 * 2 * math.pi / 360, evaluated left to right as in gymnasium.
  static constexpr double kThetaThresholdRadians = 12 * 2 * kPi / 360;
  static constexpr double kXThreshold = 2.4;

  struct Params {
    bool sutton_barto_reward = false;
  };
  static constexpr std::array kParams{
      flag_param("sutton_barto_reward", &Params::sutton_barto_reward)};
  struct Bounds {
    double low = -0.05;
    double high = 0.05;
  };
  static constexpr const char* kResetOptions[2] = {"low", "high"};

  static void reset(double* s, Rng& rng, const Bounds& b) {
    for (int j = 0; j < kStateDim; ++j) s[j] = rng.uniform(b.low, b.high);
  }

  static void refresh(double*) {}

  // One block of envs: libm sin/cos first, then the arithmetic as plain loops
  // over arrays (vectorised by the compiler; each lane does gymnasium's exact
  // IEEE operations, so results are the same as one env at a time).
  template <class A>
  static void step_block(double* const* c, const A* act, int n, const Params& p,
                         double* rew, bool* term) {
    double* __restrict x = c[0];
    double* __restrict x_dot = c[1];
    double* __restrict theta = c[2];
    double* __restrict theta_dot = c[3];
    double sn[kBlock], cs[kBlock], force[kBlock];
    for (int k = 0; k < n; ++k) {
      cs[k] = std::cos(theta[k]);
      sn[k] = std::sin(theta[k]);
    }
    // actions are validated 0/1: force = +-force_mag
    for (int k = 0; k < n; ++k) force[k] = double(int32_t(act[k]) * 2 - 1) * kForceMag;
    for (int k = 0; k < n; ++k) {
      const double costheta = cs[k], sintheta = sn[k], td = theta_dot[k];
      const double temp = (force[k] + kPoleMassLength * (td * td) * sintheta) / kTotalMass;
      const double thetaacc =
          (kGravity * sintheta - costheta * temp) /
          (kLength * (4.0 / 3.0 - kMassPole * (costheta * costheta) / kTotalMass));
      const double xacc = temp - kPoleMassLength * thetaacc * costheta / kTotalMass;
      const double xv = x[k], xdv = x_dot[k], thv = theta[k];
      x[k] = xv + kTau * xdv;
      x_dot[k] = xdv + kTau * xacc;
      theta[k] = thv + kTau * td;
      theta_dot[k] = td + kTau * thetaacc;
    }
    double* tmask = sn;  // reuse: 1.0 where terminated
    for (int k = 0; k < n; ++k) {
      const double xv = x[k], thv = theta[k];
      tmask[k] = ((xv < -kXThreshold) | (xv > kXThreshold) | (thv < -kThetaThresholdRadians) |
                  (thv > kThetaThresholdRadians))
                     ? 1.0
                     : 0.0;
    }
    if (p.sutton_barto_reward) {
      for (int k = 0; k < n; ++k) rew[k] = -tmask[k];  // 0, or -1 on the terminating step
    } else {
      for (int k = 0; k < n; ++k) rew[k] = 1.0;
    }
    for (int k = 0; k < n; ++k) term[k] = tmask[k] != 0.0;
  }

  static void observe(const double* s, float* o) {
    for (int j = 0; j < 4; ++j) o[j] = float(s[j]);
  }
};

}  // namespace envs
}  // namespace pgfast
