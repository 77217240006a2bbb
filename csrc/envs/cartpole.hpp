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

#include "envs/vec_env.hpp"

namespace pgfast {
namespace envs {

struct CartPole {
  static constexpr int kStateDim = 4;
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
  struct Bounds {
    double low = -0.05;
    double high = 0.05;
  };

  static void reset(double* s, Rng& rng, const Bounds& b) {
    for (int j = 0; j < kStateDim; ++j) s[j] = rng.uniform(b.low, b.high);
  }

  static StepResult step(double* s, int64_t action, const Params& p) {
    double x = s[0], x_dot = s[1], theta = s[2], theta_dot = s[3];
    const double force = action == 1 ? kForceMag : -kForceMag;
    const double costheta = std::cos(theta);
    const double sintheta = std::sin(theta);
    const double temp =
        (force + kPoleMassLength * (theta_dot * theta_dot) * sintheta) / kTotalMass;
    const double thetaacc =
        (kGravity * sintheta - costheta * temp) /
        (kLength * (4.0 / 3.0 - kMassPole * (costheta * costheta) / kTotalMass));
    const double xacc = temp - kPoleMassLength * thetaacc * costheta / kTotalMass;
    x = x + kTau * x_dot;
    x_dot = x_dot + kTau * xacc;
    theta = theta + kTau * theta_dot;
    theta_dot = theta_dot + kTau * thetaacc;
    s[0] = x;
    s[1] = x_dot;
    s[2] = theta;
    s[3] = theta_dot;
    const bool terminated = x < -kXThreshold || x > kXThreshold ||
                            theta < -kThetaThresholdRadians || theta > kThetaThresholdRadians;
    double reward;
    if (p.sutton_barto_reward) {
      reward = terminated ? -1.0 : 0.0;
    } else {
      reward = 1.0;
    }
    return {reward, terminated};
  }

  static void observe(const double* s, float* o) {
    for (int j = 0; j < 4; ++j) o[j] = float(s[j]);
  }
};

}  // namespace envs
}  // namespace pgfast
