// The Python object behind every native classic-control env
// (pgfast._C.ClassicVecEnv): VecEnvCore holds what does not depend on the
// env (output arrays, readiness, the in-use guard, the checks of output
// arrays); PyVecEnv<Env> checks everything typed by Env (actions, states,
// snapshots), then releases the GIL and calls the VecEnv<Env> core.
// Every array is checked (type, dtype, shape, C-contiguity, writeability)
// before a core sees its pointer; bad input raises before any env changes.
// What a core reads with the GIL released is either owned by this object
// (actions are copied into a buffer of the kernel's type and checked there,
// so no other thread can change them between check and use) or harmless in
// any value (seeds, masks); arrays a step writes never overlap each other or
// the actions (ValueError).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "bindings/checks.hpp"
#include "bindings/dispatch.hpp"
#include "bindings/env_params.hpp"
#include "bindings/rollout_env.hpp"
#include "bindings/vec_env_core.hpp"
#include "envs/vec_env.hpp"

namespace pgfast {
namespace bindings {

template <class Env>
class PyVecEnv final : public VecEnvCore {
 public:
  using Core = envs::VecEnv<Env>;
  static constexpr int kS = Env::kStateDim;

  PyVecEnv(int64_t num_envs, bool same_step, int64_t num_threads, int64_t max_episode_steps,
           const py::dict& params)
      : VecEnvCore(Env::kId, checked_num_envs(num_envs), Env::kStateDim, Env::kObsDim) {
    thread_request(num_threads, 1, "num_threads");
    require_at_least(max_episode_steps, 1, "max_episode_steps");
    core_.reset(new Core(num_envs, make_params<Env>(params), max_episode_steps, same_step,
                         int(num_threads)));
  }

  py::array get_state() const override {
    Exclusive busy(busy_);
    py::array_t<double> out({py::ssize_t(n_), py::ssize_t(kS)});
    core_->get_state(out.mutable_data());
    return std::move(out);
  }

  // Sets the physics state from float64 [N, state_dim]; cancels pending autoresets.
  void set_state(py::handle states) override {
    Exclusive busy(busy_);
    py::array s = checked_in(states, "states", {py::ssize_t(n_), py::ssize_t(kS)});
    require_dtype<double>(s, "states", "float64");
    const double* p = cptr<double>(s);
    for (int64_t k = 0; k < n_ * kS; ++k) {
      if (!std::isfinite(p[k])) value_error("states must be finite");
    }
    core_->set_state(p);
    ready_ = true;
  }

  // Full snapshot for pickling: physics state with caches, step counters,
  // pending autoresets, random streams (PCG64 state/increment, "rng_kind"
  // "pcg64"), readiness.
  py::dict dump() const override {
    Exclusive busy(busy_);
    const py::ssize_t n = py::ssize_t(n_);
    py::array_t<double> rows({py::ssize_t(Core::kRows), n});
    py::array_t<int64_t> steps(n);
    py::array_t<uint8_t> pending(n);
    py::array_t<uint64_t> rng({n, py::ssize_t(4)});
    core_->save(rows.mutable_data(), steps.mutable_data(), pending.mutable_data(),
                rng.mutable_data());
    py::dict d;
    d["rows"] = rows;
    d["steps"] = steps;
    d["pending"] = pending;
    d["rng"] = rng;
    d["rng_kind"] = "pcg64";
    d["ready"] = ready_;
    return d;
  }

  void load(const py::dict& d) override {
    Exclusive busy(busy_);
    const py::ssize_t n = py::ssize_t(n_);
    for (const char* key : {"rows", "steps", "pending", "rng", "ready"}) {
      if (!d.contains(key)) value_error(std::string("snapshot lacks '") + key + "'");
    }
    if (!d.contains("rng_kind") || !py::isinstance<py::str>(d["rng_kind"]) ||
        py::cast<std::string>(d["rng_kind"]) != "pcg64") {
      value_error("snapshot holds random streams of an older pgfast (not numpy's PCG64); "
                  "it cannot continue exactly");
    }
    py::array rows = checked_in(d["rows"], "rows", {py::ssize_t(Core::kRows), n});
    py::array steps = checked_in(d["steps"], "steps", {n});
    py::array pending = checked_in(d["pending"], "pending", {n});
    py::array rng = checked_in(d["rng"], "rng", {n, py::ssize_t(4)});
    require_dtype<double>(rows, "snapshot rows", "float64");
    require_dtype<int64_t>(steps, "snapshot steps", "int64");
    require_dtype<uint8_t>(pending, "snapshot pending", "uint8");
    require_dtype<uint64_t>(rng, "snapshot rng", "uint64");
    if (!py::isinstance<py::bool_>(d["ready"])) type_error("snapshot 'ready' must be a bool");
    const bool ready = py::cast<bool>(d["ready"]);
    // What set_state and reset would refuse, a snapshot may not bring in.
    if (first_nonfinite(cptr<double>(rows), rows.size()) >= 0) {
      value_error("snapshot rows must be finite");
    }
    const int64_t* st = cptr<int64_t>(steps);
    const int64_t limit = core_->max_episode_steps();
    for (int64_t i = 0; i < n_; ++i) {
      if (st[i] < 0 || st[i] > limit) {
        value_error("snapshot steps[" + std::to_string(i) + "] = " + std::to_string(st[i]) +
                    " is outside [0, max_episode_steps = " + std::to_string(limit) + "]");
      }
    }
    core_->restore(cptr<double>(rows), cptr<int64_t>(steps), cptr<uint8_t>(pending),
                   cptr<uint64_t>(rng));
    ready_ = ready;
  }

  int threads_used() const override { return core_->threads_used(); }
  int64_t items_by_workers() const override { return core_->items_by_workers(); }
  int64_t max_episode_steps() const override { return core_->max_episode_steps(); }
  bool any_pending() const override { return core_->any_pending(); }

 private:
  std::vector<py::ssize_t> action_shape() const {
    if constexpr (Env::kDiscrete) {
      return {py::ssize_t(n_)};
    } else {
      return {py::ssize_t(n_), py::ssize_t(Env::kActDim)};
    }
  }

  static int64_t checked_num_envs(int64_t num_envs) {
    require_at_least(num_envs, 1, "num_envs");
    if (num_envs > kMaxEnvs) {
      value_error("num_envs must be <= " + std::to_string(kMaxEnvs) + ", got " +
                  std::to_string(num_envs));
    }
    return num_envs;
  }

  void core_reset(const uint8_t* mask, double a, double b) override {
    const typename Env::Bounds bounds{a, b};
    py::array& obs = own_.obs;
    dispatch<float, double>(own_.obs_dtype, [&](auto o) {
      using O = typename decltype(o)::type;
      O* out = mptr<O>(obs);
      py::gil_scoped_release nogil;
      core_->reset(mask, bounds, out);
    });
  }

  void core_seed(const uint32_t* entropy, int64_t width, const int64_t* nwords,
                 const uint8_t* mask) override {
    core_->seed(entropy, width, nwords, mask);
  }

  // Actions: [N] int64/int32 in [0, kNumActions) (discrete) or [N, kActDim]
  // float32/float64 (Box), copied into act_ as the kernel reads them (int64,
  // or float32 as gymnasium's Box is) and checked there: in range, or finite
  // after the conversion (1e39 as float64 is inf as float32).
  void run_step(py::handle actions, StepOut& o) override {
    const py::array a = checked_in(actions, "actions", action_shape());
    // Outputs of step_into (own_ was checked by bind_outputs; checked again, a
    // few comparisons) against each other, this env's final_obs buffers and
    // the actions.
    require_disjoint({{&o.obs, "obs"}, {&o.rew, "rew"}, {&o.term, "term"}, {&o.trunc, "trunc"},
                      {&final_obs_, "final_obs"}, {&final_mask_, "final_mask"}},
                     {{&a, "actions"}});
    const int64_t m = int64_t(a.size());
    act_.resize(size_t(m));
    Act* act = act_.data();
    if constexpr (Env::kDiscrete) {
      const DType k = dtype_of(a);
      if (k != DType::kI64 && k != DType::kI32) {
        type_error("actions must be an integer array (int64 or int32) of shape (" +
                   std::to_string(n_) + ",), got dtype " + dtype_str(a));
      }
      dispatch<int64_t, int32_t>(k, [&](auto t) {
        using A = typename decltype(t)::type;
        std::copy_n(cptr<A>(a), m, act);
      });
      check_discrete(act);
    } else {
      int64_t bad = -1;
      double first_bad = 0.0;
      dispatch<float, double>(float_dtype(a, "actions"), [&](auto t) {
        using A = typename decltype(t)::type;
        const A* src = cptr<A>(a);
        for (int64_t k = 0; k < m; ++k) act[k] = Act(src[k]);
        bad = first_nonfinite(static_cast<const Act*>(act), m);
        if (bad >= 0) first_bad = double(src[bad]);
      });
      if (bad >= 0) {
        value_error("actions must be finite as float32; entry " + std::to_string(bad) +
                    " (env " + std::to_string(bad / Env::kActDim) + ") is " +
                    std::to_string(first_bad));
      }
    }
    dispatch<float, double>(o.obs_dtype, [&](auto ot) {
      dispatch<float, double>(o.rew_dtype, [&](auto rt) {
        using O = typename decltype(ot)::type;
        using R = typename decltype(rt)::type;
        O* obs = mptr<O>(o.obs);
        R* rew = mptr<R>(o.rew);
        bool* term = mptr<bool>(o.term);
        bool* trunc = mptr<bool>(o.trunc);
        float* fo = mptr<float>(final_obs_);
        bool* fm = mptr<bool>(final_mask_);
        const Act* acts = act;
        py::gil_scoped_release nogil;
        core_->step(acts, obs, rew, term, trunc, fo, fm);
      });
    });
  }

  bool discrete() const override { return Env::kDiscrete; }

  // ValueError naming the first action outside Discrete(kNumActions), if any.
  void check_discrete(const int64_t* act) const {
    const int64_t bad = core_->first_invalid_discrete(act);
    if (bad >= 0) {
      value_error("actions[" + std::to_string(bad) + "] = " + std::to_string(act[bad]) +
                  " is outside the action space Discrete(" + std::to_string(Env::kNumActions) + ")");
    }
  }

  void step_raw(const void* actions, float* obs, float* rew, bool* term, bool* trunc) override {
    Exclusive busy(busy_);
    ensure_ready();
    const int64_t m = Env::kDiscrete ? n_ : n_ * int64_t(Env::kActDim);
    act_.resize(size_t(m));
    Act* act = act_.data();
    if constexpr (Env::kDiscrete) {
      std::copy_n(static_cast<const int64_t*>(actions), m, act);
      check_discrete(act);
    } else {
      std::copy_n(static_cast<const float*>(actions), m, act);
      const int64_t bad = first_nonfinite(static_cast<const Act*>(act), m);
      if (bad >= 0) value_error("actions must be finite; entry " + std::to_string(bad) + " is not");
    }
    float* fo = mptr<float>(final_obs_);
    bool* fm = mptr<bool>(final_mask_);
    const Act* acts = act;
    py::gil_scoped_release nogil;
    core_->step(acts, obs, rew, term, trunc, fo, fm);
  }

  // The kernel's action type; act_ is only used under Exclusive.
  using Act = std::conditional_t<Env::kDiscrete, int64_t, float>;
  std::vector<Act> act_;
  std::unique_ptr<Core> core_;
};

}  // namespace bindings
}  // namespace pgfast
