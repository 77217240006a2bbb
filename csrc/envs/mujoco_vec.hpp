// MjVecEnv: N simulations of one MuJoCo model (one mjData each, the model
// shared read-only), stepped with frame_skip calls of mj_step per env step on
// a worker pool (csrc/parallel.hpp; each simulation is one item, so results
// are bit-identical for any thread count), with the task's observation,
// reward and termination (mujoco_task.hpp), the time limit and autoresets.
//
// gymnasium's MujocoEnv, mirrored per simulation:
// https://github.com/Farama-Foundation/Gymnasium/blob/main/gymnasium/envs/mujoco/mujoco_env.py
//   step:  ctrl = action; mj_step x frame_skip; mj_rnePostConstraint (where the
//          task reads cfrc_ext); obs, reward, terminated; TimeLimit's truncation
//   reset: mj_resetData; qpos, qvel = the drawn state; mj_forward
// The reset states (gymnasium's reset noise) are drawn by the caller (the
// env's numpy generators) and handed in per reset.
//
// This header sees no Python.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "envs/mujoco_task.hpp"
#include "parallel.hpp"

namespace pgfast {
namespace envs {

// Autoreset modes, as gymnasium's AutoresetMode.
enum class MjAutoreset : int { kNextStep = 0, kSameStep = 1, kDisabled = 2 };

class MjVecEnv {
 public:
  // elapsed (int64 [N]) and pending (bool [N]: ended, awaiting a reset) are the
  // caller's arrays, read and written by every call.
  MjVecEnv(const MjApi& api, const void* model, const MjDims& dims, const MjTask& task,
           std::vector<MjArrays> sims, int frame_skip, int64_t max_episode_steps,
           MjAutoreset mode, int threads, int64_t* elapsed, bool* pending)
      : api_(api), model_(model), dims_(dims), task_(task), sims_(std::move(sims)),
        frame_skip_(frame_skip), max_steps_(max_episode_steps), mode_(mode),
        elapsed_(elapsed), pending_(pending), obs_dim_(mj_obs_dim(task, dims)),
        rne_(mj_needs_rne(task)), reset_src_(sims_.size(), nullptr) {
    if (threads > 1) {
      pool_.reset(new WorkerPool(threads - 1));
      if (pool_->size() == 1) pool_.reset();
    }
  }

  int64_t num_envs() const { return int64_t(sims_.size()); }
  int obs_dim() const { return obs_dim_; }
  int state_dim() const { return dims_.nq + dims_.nv; }
  int act_dim() const { return dims_.nu; }
  MjAutoreset mode() const { return mode_; }
  int threads_used() const { return pool_ ? pool_->size() : 1; }
  int64_t items_by_workers() const { return pool_ ? pool_->items_by_workers() : 0; }

  // The state [nq + nv] env i resets to in the next step() (next_step mode's
  // pending envs) or reset() call; the caller keeps it alive until then.
  void set_reset_source(int64_t i, const double* state) { reset_src_[size_t(i)] = state; }

  // Resets envs ids[0..k) to their reset sources and writes their observations.
  template <class O>
  void reset(const int64_t* ids, int64_t k, O* obs) {
    parallel_for(pool_.get(), k, [&](int64_t j) {
      const int64_t i = ids[j];
      reset_one(i);
      mj_write_obs(task_, dims_, sims_[size_t(i)], obs + i * obs_dim_);
    });
  }

  // One step of every env: actions [N, nu]; outputs [N, obs_dim] and [N].
  // next_step mode: pending envs reset instead (from their reset sources;
  // reward 0, flags False). Afterwards pending[i] = terminated || truncated;
  // in same_step mode the caller then resets those (reset()).
  template <class A, class O, class R>
  void step(const A* actions, O* obs, R* rew, bool* term, bool* trunc) {
    const bool next_step = mode_ == MjAutoreset::kNextStep;
    parallel_for(pool_.get(), num_envs(), [&](int64_t i) {
      const MjArrays& a = sims_[size_t(i)];
      O* o = obs + i * obs_dim_;
      if (next_step && pending_[i]) {
        reset_one(i);
        mj_write_obs(task_, dims_, a, o);
        rew[i] = R(0);
        term[i] = trunc[i] = pending_[i] = false;
        return;
      }
      const A* act = actions + i * dims_.nu;
      const double before = mj_position(task_, dims_, a);
      for (int j = 0; j < dims_.nu; ++j) a.ctrl[j] = double(act[j]);
      for (int s = 0; s < frame_skip_; ++s) api_.step(model_, a.data);
      if (rne_) api_.rne_post_constraint(model_, a.data);
      elapsed_[i] += 1;
      mj_write_obs(task_, dims_, a, o);
      bool terminated = false;
      rew[i] = R(mj_reward(task_, dims_, a, act, before, &terminated));
      term[i] = terminated;
      trunc[i] = elapsed_[i] >= max_steps_;
      pending_[i] = terminated || trunc[i];
    });
  }

  // The observation of env i from its current data.
  template <class O>
  void write_obs_of(int64_t i, O* out) const {
    mj_write_obs(task_, dims_, sims_[size_t(i)], out);
  }

  // Observations of every env from its current data.
  template <class O>
  void write_obs(O* obs) const {
    for (size_t i = 0; i < sims_.size(); ++i) {
      mj_write_obs(task_, dims_, sims_[i], obs + int64_t(i) * obs_dim_);
    }
  }

  // [N, nq + nv]: qpos then qvel of every env.
  void get_state(double* out) const {
    const int nq = dims_.nq, nv = dims_.nv;
    for (size_t i = 0; i < sims_.size(); ++i) {
      std::memcpy(out, sims_[i].qpos, sizeof(double) * size_t(nq));
      std::memcpy(out + nq, sims_[i].qvel, sizeof(double) * size_t(nv));
      out += nq + nv;
    }
  }

  // gymnasium's set_state(qpos, qvel) on every env (then mj_forward); pending
  // autoresets are cancelled, step counters kept.
  void set_state(const double* states) {
    const int nq = dims_.nq, nv = dims_.nv;
    parallel_for(pool_.get(), num_envs(), [&](int64_t i) {
      const MjArrays& a = sims_[size_t(i)];
      const double* s = states + i * (nq + nv);
      std::memcpy(a.qpos, s, sizeof(double) * size_t(nq));
      std::memcpy(a.qvel, s + nq, sizeof(double) * size_t(nv));
      api_.forward(model_, a.data);
      pending_[i] = false;
    });
  }

 private:
  void reset_one(int64_t i) {
    const MjArrays& a = sims_[size_t(i)];
    const double* s = reset_src_[size_t(i)];
    api_.reset_data(model_, a.data);
    std::memcpy(a.qpos, s, sizeof(double) * size_t(dims_.nq));
    std::memcpy(a.qvel, s + dims_.nq, sizeof(double) * size_t(dims_.nv));
    api_.forward(model_, a.data);
    reset_src_[size_t(i)] = nullptr;
    elapsed_[i] = 0;
    pending_[i] = false;
  }

  MjApi api_;
  const void* model_;
  MjDims dims_;
  MjTask task_;
  std::vector<MjArrays> sims_;
  int frame_skip_;
  int64_t max_steps_;
  MjAutoreset mode_;
  int64_t* elapsed_;
  bool* pending_;
  int obs_dim_;
  bool rne_;
  std::vector<const double*> reset_src_;
  std::unique_ptr<WorkerPool> pool_;
};

}  // namespace envs
}  // namespace pgfast
