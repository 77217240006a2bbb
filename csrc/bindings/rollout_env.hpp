// RolloutEnv: what the native rollout (bind_rollout.cpp) steps from C++ with no
// Python frame per step: a native env core that takes the rollout's float32 /
// int64 actions and writes float32 observations and rewards straight into the
// buffer rows. Implemented by the classic envs' core (env_core.hpp) and the
// MuJoCo envs' core (bind_mujoco.cpp); bound as pgfast._C.RolloutEnv.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>

namespace pgfast {
namespace bindings {

namespace py = pybind11;

class RolloutEnv {
 public:
  virtual ~RolloutEnv() = default;
  virtual int64_t num_envs() const = 0;
  virtual int obs_dim() const = 0;
  // Whether actions are int64 [N] (discrete) rather than float32 [N, act_dim].
  virtual bool discrete() const = 0;
  // The core's own last observations of the episodes that ended in same_step
  // mode: float32 or float64 [N, obs_dim], valid where final_mask() (bool [N]).
  virtual py::array final_obs() const = 0;
  virtual py::array final_mask() const = 0;
  // One step for the native rollout: actions int64 [N] (discrete) or float32
  // [N, act_dim] (Box), checked as the Python step checks them (ValueError,
  // nothing stepped); outputs float32 obs [N, obs_dim], float32 rew [N], bool
  // term / trunc [N], which the caller has checked (sizes, no overlap with each
  // other or this env's buffers). Called with the GIL held.
  virtual void step_raw(const void* actions, float* obs, float* rew, bool* term,
                        bool* trunc) = 0;
};

}  // namespace bindings
}  // namespace pgfast
