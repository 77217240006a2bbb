// One MuJoCo task's observation, reward and termination after a step, computed
// on one simulation's arrays, exactly as gymnasium's v5 envs compute them:
// https://github.com/Farama-Foundation/Gymnasium/blob/main/gymnasium/envs/mujoco/half_cheetah_v5.py
// (and hopper_v5.py, walker2d_v5.py, swimmer_v5.py, ant_v5.py, humanoid_v5.py,
// humanoidstandup_v5.py, inverted_pendulum_v5.py, inverted_double_pendulum_v5.py,
// reacher_v5.py, pusher_v5.py).
//
// MuJoCo itself stays opaque here: a simulation is its mjModel* / mjData*
// (void*) and the addresses of the mjData arrays a task reads (MjArrays), and
// the engine is the four C functions in MjApi, resolved at run time from the
// libmujoco the `mujoco` Python package loaded (csrc/bindings/bind_mujoco.cpp).
// Nothing here depends on MuJoCo's struct layouts or links against it.
//
// numpy-exact arithmetic: sums of squares as numpy's pairwise sum (np.sum),
// float32 control costs where gymnasium's action is float32, `x ** 2` on numpy
// scalars through libm pow (np_math.hpp).
//
// This header sees no Python.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "envs/np_math.hpp"

namespace pgfast {
namespace envs {

// The MuJoCo C functions the envs call: void f(const mjModel*, mjData*).
struct MjApi {
  using Fn = void (*)(const void* m, void* d);
  Fn step = nullptr, forward = nullptr, reset_data = nullptr, rne_post_constraint = nullptr;
};

// The tasks: how obs, reward and termination are formed.
enum class MjKind : int {
  kForward = 0,     // HalfCheetah, Hopper, Walker2d, Swimmer: x velocity of qpos[0]
  kAnt = 1,         // Ant: x velocity of a body, clipped contact forces
  kHumanoid = 2,    // Humanoid: x velocity of the centre of mass
  kStandup = 3,     // HumanoidStandup: height reward
  kPendulum = 4,    // InvertedPendulum
  kDoublePendulum = 5,  // InvertedDoublePendulum
  kReacher = 6,     // Reacher: fingertip to target
  kPusher = 7,      // Pusher: arm tip to object to goal
};

// A task's settings (gymnasium's keyword arguments, read by pgfast/envs/mujoco_core.py).
struct MjTask {
  int kind = 0;              // MjKind
  int skip = 0;              // leading qpos entries left out of the observation
  bool clip_qvel = false;    // observation qvel clipped to [-10, 10] (Hopper, Walker2d)
  double dt = 0.0;           // timestep * frame_skip (gymnasium's dt)
  double timestep = 0.0;     // model.opt.timestep (HumanoidStandup's reward)
  double forward_weight = 1.0, ctrl_weight = 0.0, contact_weight = 0.0, healthy_reward = 0.0;
  bool terminate_when_unhealthy = true;
  bool check_state = false;  // Hopper: lo < qpos[2:], qvel < hi
  double state_lo = 0.0, state_hi = 0.0;
  bool check_z = false;      // lo < qpos[z_index] < hi (Ant: <=, and finite state)
  double z_lo = 0.0, z_hi = 0.0;
  bool check_angle = false;  // lo < qpos[2] < hi
  double angle_lo = 0.0, angle_hi = 0.0;
  double force_lo = -1.0, force_hi = 1.0;  // Ant's contact force range (clip)
  double cost_lo = 0.0, cost_hi = 0.0;     // Humanoid's contact (impact) cost range (clip)
  int main_body = 1;         // Ant's body whose x velocity is rewarded
  bool include_cinert = true, include_cvel = true, include_qfrc_actuator = true,
       include_cfrc_ext = true;  // observation parts (Ant: cfrc_ext only)
  int bodies[3] = {0, 0, 0};  // Reacher: fingertip, target; Pusher: tips_arm, object, goal
  double dist_weight = 1.0, near_weight = 0.0;  // Reacher / Pusher reward weights
  bool norm_fma = false;  // np.linalg.norm of 3 values sums with fused multiply-adds (BLAS)
};

// The model's sizes and the constants a task reads.
struct MjDims {
  int nq = 0, nv = 0, nu = 0, nbody = 0;
  const double* body_mass = nullptr;  // [nbody]
  double total_mass = 0.0;            // np.sum(body_mass)
};

// One simulation: its mjData and the addresses of the arrays a task reads
// (null where the task reads none).
struct MjArrays {
  void* data = nullptr;
  double *qpos = nullptr, *qvel = nullptr, *ctrl = nullptr;
  const double *xpos = nullptr, *xipos = nullptr, *cinert = nullptr, *cvel = nullptr,
               *qfrc_actuator = nullptr, *cfrc_ext = nullptr, *site_xpos = nullptr,
               *qfrc_constraint = nullptr;
};

// numpy's pairwise summation (np.sum of a contiguous array, np.add.reduce's
// inner loop): blocks of up to 128 summed with 8 accumulators, larger runs split.
template <class T>
T np_sum(const T* a, int64_t n) {
  if (n < 8) {
    T res = T(0);
    for (int64_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {
    T r[8];
    for (int j = 0; j < 8; ++j) r[j] = a[j];
    int64_t i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (int j = 0; j < 8; ++j) r[j] += a[i + j];
    }
    T res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  int64_t n2 = n / 2;
  n2 -= n2 % 8;
  return np_sum(a, n2) + np_sum(a + n2, n - n2);
}

// np.sum(np.square(x)) of n <= kMaxSquares values in type T (scratch on the stack).
constexpr int64_t kMaxSquares = 1024;
template <class T, class S>
T np_sum_squares(const S* x, int64_t n, double lo = -INFINITY, double hi = INFINITY) {
  T sq[kMaxSquares];
  for (int64_t i = 0; i < n; ++i) {
    const T v = T(std::min(std::max(double(x[i]), lo), hi));
    sq[i] = v * v;
  }
  return np_sum(sq, n);
}

inline double clip10(double x) { return std::min(std::max(x, -10.0), 10.0); }

// The position whose change over a step, divided by dt, is the rewarded velocity.
inline double mj_position(const MjTask& t, const MjDims& d, const MjArrays& a) {
  switch (MjKind(t.kind)) {
    case MjKind::kForward:
      return a.qpos[0];
    case MjKind::kAnt:
      return a.xpos[3 * t.main_body];
    case MjKind::kHumanoid: {  // gymnasium's mass_center: np.sum(mass * xipos, axis=0) / np.sum(mass)
      double s = 0.0;
      for (int b = 0; b < d.nbody; ++b) s += d.body_mass[b] * a.xipos[3 * b];
      return s / d.total_mass;
    }
    default:
      return 0.0;
  }
}

// The observation length of a task (-1: unknown kind).
inline int mj_obs_dim(const MjTask& t, const MjDims& d) {
  const int nb = d.nbody - 1;
  switch (MjKind(t.kind)) {
    case MjKind::kForward:
      return d.nq - t.skip + d.nv;
    case MjKind::kAnt:
      return d.nq - t.skip + d.nv + (t.include_cfrc_ext ? 6 * nb : 0);
    case MjKind::kHumanoid:
    case MjKind::kStandup:
      return d.nq - t.skip + d.nv + (t.include_cinert ? 10 * nb : 0) +
             (t.include_cvel ? 6 * nb : 0) + (t.include_qfrc_actuator ? d.nv - 6 : 0) +
             (t.include_cfrc_ext ? 6 * nb : 0);
    case MjKind::kPendulum:
      return d.nq + d.nv;
    case MjKind::kDoublePendulum:
      return 1 + 2 * (d.nq - 1) + d.nv + 1;
    case MjKind::kReacher:
      return d.nq >= 2 && d.nv >= 2 ? 2 + 2 + (d.nq - 2) + 2 + 2 : -1;
    case MjKind::kPusher:
      return d.nq >= 7 && d.nv >= 7 ? 7 + 7 + 9 : -1;
  }
  return -1;
}

// Reacher's and Pusher's observations.
template <class O>
void mj_write_arm_obs(const MjTask& t, const MjDims& d, const MjArrays& a, O* out) {
  int k = 0;
  if (MjKind(t.kind) == MjKind::kReacher) {
    for (int j = 0; j < 2; ++j) out[k++] = O(std::cos(a.qpos[j]));
    for (int j = 0; j < 2; ++j) out[k++] = O(std::sin(a.qpos[j]));
    for (int j = 2; j < d.nq; ++j) out[k++] = O(a.qpos[j]);
    for (int j = 0; j < 2; ++j) out[k++] = O(a.qvel[j]);
    const double *f = a.xpos + 3 * t.bodies[0], *g = a.xpos + 3 * t.bodies[1];
    for (int j = 0; j < 2; ++j) out[k++] = O(f[j] - g[j]);
    return;
  }
  for (int j = 0; j < 7; ++j) out[k++] = O(a.qpos[j]);
  for (int j = 0; j < 7; ++j) out[k++] = O(a.qvel[j]);
  for (int b = 0; b < 3; ++b) {
    for (int j = 0; j < 3; ++j) out[k++] = O(a.xpos[3 * t.bodies[b] + j]);
  }
}

// np.linalg.norm(p - q) of 3-vectors: sqrt of a BLAS dot, summed in order with fused
// multiply-adds where numpy's BLAS uses them (norm_fma, found by pgfast/envs/mujoco_core.py).
inline double mj_norm3(const double* p, const double* q, bool fma) {
  const double v0 = p[0] - q[0], v1 = p[1] - q[1], v2 = p[2] - q[2];
  if (fma) return std::sqrt(std::fma(v2, v2, std::fma(v1, v1, v0 * v0)));
  return std::sqrt((v0 * v0 + v1 * v1) + v2 * v2);
}

// Writes the observation [mj_obs_dim] of one simulation into out.
template <class O>
void mj_write_obs(const MjTask& t, const MjDims& d, const MjArrays& a, O* out) {
  const MjKind kind = MjKind(t.kind);
  int k = 0;
  auto put = [&](const double* src, int n) {
    for (int j = 0; j < n; ++j) out[k++] = O(src[j]);
  };
  if (kind == MjKind::kReacher || kind == MjKind::kPusher) {
    mj_write_arm_obs(t, d, a, out);
    return;
  }
  if (kind == MjKind::kDoublePendulum) {
    out[k++] = O(a.qpos[0]);
    for (int j = 1; j < d.nq; ++j) out[k++] = O(std::sin(a.qpos[j]));
    for (int j = 1; j < d.nq; ++j) out[k++] = O(std::cos(a.qpos[j]));
    for (int j = 0; j < d.nv; ++j) out[k++] = O(clip10(a.qvel[j]));
    out[k++] = O(clip10(a.qfrc_constraint[0]));
    return;
  }
  const int skip = kind == MjKind::kPendulum ? 0 : t.skip;
  put(a.qpos + skip, d.nq - skip);
  if (t.clip_qvel) {
    for (int j = 0; j < d.nv; ++j) out[k++] = O(clip10(a.qvel[j]));
  } else {
    put(a.qvel, d.nv);
  }
  const int nb = d.nbody - 1;
  if (kind == MjKind::kAnt && t.include_cfrc_ext) {
    for (int j = 0; j < 6 * nb; ++j) {
      out[k++] = O(std::min(std::max(a.cfrc_ext[6 + j], t.force_lo), t.force_hi));
    }
  }
  if (kind == MjKind::kHumanoid || kind == MjKind::kStandup) {
    if (t.include_cinert) put(a.cinert + 10, 10 * nb);
    if (t.include_cvel) put(a.cvel + 6, 6 * nb);
    if (t.include_qfrc_actuator) put(a.qfrc_actuator + 6, d.nv - 6);
    if (t.include_cfrc_ext) put(a.cfrc_ext + 6, 6 * nb);
  }
}

// gymnasium's control cost: weight * np.sum(np.square(action)), in float32
// arithmetic where the action is float32 (numpy 2's scalar promotion).
template <class A>
double mj_ctrl_cost(double weight, const A* action, int nu) {
  if constexpr (sizeof(A) == 4) {
    return double(float(weight) * np_sum_squares<float>(action, nu));
  } else {
    return weight * np_sum_squares<double>(action, nu);
  }
}

// Reacher's and Pusher's control reward: -np.sum(np.square(action)) * weight (float32
// arithmetic for a float32 action).
template <class A>
double mj_neg_ctrl(double weight, const A* action, int nu) {
  if constexpr (sizeof(A) == 4) {
    return double(-np_sum_squares<float>(action, nu) * float(weight));
  } else {
    return -np_sum_squares<double>(action, nu) * weight;
  }
}

// Healthy rules of the locomotion tasks (Hopper, Walker2d, Ant, Humanoid).
inline bool mj_healthy(const MjTask& t, const MjDims& d, const MjArrays& a) {
  bool ok = true;
  if (MjKind(t.kind) == MjKind::kAnt) {
    for (int j = 0; j < d.nq; ++j) ok = ok && std::isfinite(a.qpos[j]);
    for (int j = 0; j < d.nv; ++j) ok = ok && std::isfinite(a.qvel[j]);
    return ok && t.z_lo <= a.qpos[2] && a.qpos[2] <= t.z_hi;
  }
  if (t.check_state) {
    for (int j = 2; j < d.nq; ++j) ok = ok && t.state_lo < a.qpos[j] && a.qpos[j] < t.state_hi;
    for (int j = 0; j < d.nv; ++j) ok = ok && t.state_lo < a.qvel[j] && a.qvel[j] < t.state_hi;
  }
  const int z = MjKind(t.kind) == MjKind::kForward ? 1 : 2;  // Hopper/Walker2d: qpos[1]
  if (t.check_z) ok = ok && t.z_lo < a.qpos[z] && a.qpos[z] < t.z_hi;
  if (t.check_angle) ok = ok && t.angle_lo < a.qpos[2] && a.qpos[2] < t.angle_hi;
  return ok;
}

// Reward and termination after a step; `before` is mj_position before it.
template <class A>
double mj_reward(const MjTask& t, const MjDims& d, const MjArrays& a, const A* action,
                 double before, bool* terminated) {
  const MjKind kind = MjKind(t.kind);
  *terminated = false;
  if (kind == MjKind::kPendulum) {
    bool bad = false;  // gymnasium: not np.isfinite(obs).all() or abs(obs[1]) > 0.2
    for (int j = 0; j < d.nq; ++j) bad = bad || !std::isfinite(a.qpos[j]);
    for (int j = 0; j < d.nv; ++j) bad = bad || !std::isfinite(a.qvel[j]);
    *terminated = bad || std::fabs(a.qpos[1]) > 0.2;
    return *terminated ? 0.0 : 1.0;
  }
  if (kind == MjKind::kDoublePendulum) {
    const double x = a.site_xpos[0], y = a.site_xpos[2];
    *terminated = y <= 1.0;
    const double dist = 0.01 * np_pow2(x) + np_pow2(y - 2.0);
    const double vel = 1e-3 * np_pow2(a.qvel[1]) + 5e-3 * np_pow2(a.qvel[2]);
    return (t.healthy_reward * double(!*terminated) - dist) - vel;
  }
  if (kind == MjKind::kReacher || kind == MjKind::kPusher) {  // gymnasium: -|v| * w, -sum(a^2) * w
    const double* x = a.xpos;
    const double ctrl = mj_neg_ctrl(t.ctrl_weight, action, d.nu);
    if (kind == MjKind::kReacher) {
      return -mj_norm3(x + 3 * t.bodies[0], x + 3 * t.bodies[1], t.norm_fma) * t.dist_weight + ctrl;
    }
    const double near = -mj_norm3(x + 3 * t.bodies[1], x + 3 * t.bodies[0], t.norm_fma) * t.near_weight;
    const double dist = -mj_norm3(x + 3 * t.bodies[1], x + 3 * t.bodies[2], t.norm_fma) * t.dist_weight;
    return (dist + ctrl) + near;
  }
  const int n_cfrc = 6 * d.nbody;
  if (kind == MjKind::kStandup) {
    const double uph = (a.qpos[2] - 0.0) / t.timestep;
    const double ctrl = t.ctrl_weight * np_sum_squares<double>(a.ctrl, d.nu);
    double impact = t.contact_weight * np_sum_squares<double>(a.cfrc_ext, n_cfrc);
    impact = std::min(std::max(impact, t.cost_lo), t.cost_hi);
    return ((uph - ctrl) - impact) + 1.0;
  }
  const double velocity = (mj_position(t, d, a) - before) / t.dt;
  const bool checks = kind != MjKind::kForward || t.check_z || t.check_angle || t.check_state;
  const bool healthy = checks ? mj_healthy(t, d, a) : true;
  const double alive = checks ? double(healthy) * t.healthy_reward : 0.0;
  double reward;
  if (kind == MjKind::kAnt) {
    const double contact = t.contact_weight *
        np_sum_squares<double>(a.cfrc_ext, n_cfrc, t.force_lo, t.force_hi);
    reward = (velocity * t.forward_weight + alive) -
             (mj_ctrl_cost(t.ctrl_weight, action, d.nu) + contact);
  } else if (kind == MjKind::kHumanoid) {
    double contact = t.contact_weight * np_sum_squares<double>(a.cfrc_ext, n_cfrc);
    contact = std::min(std::max(contact, t.cost_lo), t.cost_hi);
    const double ctrl = t.ctrl_weight * np_sum_squares<double>(a.ctrl, d.nu);
    reward = (t.forward_weight * velocity + alive) - (ctrl + contact);
  } else if (checks) {  // Hopper, Walker2d
    reward = (t.forward_weight * velocity + alive) - mj_ctrl_cost(t.ctrl_weight, action, d.nu);
  } else {  // HalfCheetah, Swimmer
    reward = t.forward_weight * velocity - mj_ctrl_cost(t.ctrl_weight, action, d.nu);
  }
  *terminated = checks && t.terminate_when_unhealthy && !healthy;
  return reward;
}

// Whether the task reads cfrc_ext (gymnasium's mj_rnePostConstraint after mj_step).
inline bool mj_needs_rne(const MjTask& t) {
  const MjKind k = MjKind(t.kind);
  return k == MjKind::kHumanoid || k == MjKind::kStandup || k == MjKind::kAnt;
}

}  // namespace envs
}  // namespace pgfast
