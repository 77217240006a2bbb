// VecEnvCore: what every native classic-control env's Python object holds whatever the env
// (output arrays, readiness, the in-use guard, the checks of output arrays); the typed part is
// PyVecEnv<Env> in bindings/env_core.hpp.
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
#include "bindings/rollout_env.hpp"

namespace pgfast {
namespace bindings {

// The most envs one vector env holds (every per-env index fits an int32).
constexpr int64_t kMaxEnvs = (int64_t(1) << 31) - 1;

// The GIL is released while an env steps, so two Python threads could reach
// one env at once; the second gets a clear error instead of a data race.
class Exclusive {
 public:
  explicit Exclusive(std::atomic<bool>& flag) : flag_(flag) {
    if (flag_.exchange(true, std::memory_order_acquire)) {
      throw std::runtime_error("this env is in use by another thread");
    }
  }
  ~Exclusive() { flag_.store(false, std::memory_order_release); }
  Exclusive(const Exclusive&) = delete;
  Exclusive& operator=(const Exclusive&) = delete;

 private:
  std::atomic<bool>& flag_;
};

// Where one step writes: obs [N, obs_dim] and rew [N] float32/float64, flags [N] bool.
struct StepOut {
  py::array obs, rew, term, trunc;
  DType obs_dtype = DType::kF32, rew_dtype = DType::kF64;
};

class VecEnvCore : public RolloutEnv {
 public:
  virtual ~VecEnvCore() = default;

  // Use caller-owned arrays as the outputs of step() (and final_obs buffers
  // in same_step mode); they are kept alive by this object.
  void bind_outputs(py::object obs, py::object rew, py::object term, py::object trunc,
                    py::object final_obs, py::object final_mask) {
    Exclusive busy(busy_);
    StepOut o = check_outputs(obs, rew, term, trunc);
    py::array fo = final_obs_, fm = final_mask_;
    if (!final_obs.is_none()) {
      fo = checked_out_as<float>(final_obs, "final_obs", {py::ssize_t(n_), py::ssize_t(obs_dim_)});
    }
    if (!final_mask.is_none()) {
      fm = checked_out_as<bool>(final_mask, "final_mask", {py::ssize_t(n_)});
    }
    require_disjoint({{&o.obs, "obs"}, {&o.rew, "rew"}, {&o.term, "term"}, {&o.trunc, "trunc"},
                      {&fo, "final_obs"}, {&fm, "final_mask"}});
    own_ = std::move(o);
    final_obs_ = std::move(fo);
    final_mask_ = std::move(fm);
  }

  void step(py::handle actions) {
    Exclusive busy(busy_);
    ensure_ready();
    run_step(actions, own_);
  }

  void step_into(py::handle actions, py::object obs, py::object rew, py::object term,
                 py::object trunc) {
    Exclusive busy(busy_);
    ensure_ready();
    StepOut o = check_outputs(obs, rew, term, trunc);
    run_step(actions, o);
  }

  // Reset (masked) envs with reset bounds (a, b) for this reset only; writes
  // every env's obs. The range of each drawn component must be finite (as
  // numpy's Generator.uniform requires).
  void reset(py::object mask, double a, double b) {
    Exclusive busy(busy_);
    if (!std::isfinite(a) || !std::isfinite(b)) value_error("reset bounds must be finite");
    const uint8_t* mask_p = optional_mask(mask);
    core_reset(mask_p, a, b);
    ready_ = true;
  }

  // Reseed the random streams of (masked) envs: env i as numpy's
  // PCG64(SeedSequence(x_i)) where x_i's little-endian uint32 words are
  // entropy[i, :nwords[i]] (entropy uint32 [N, W], W >= 1; nwords int64 [N]
  // in [1, W], or None for W words each).
  void seed(py::object entropy, py::object nwords, py::object mask) {
    Exclusive busy(busy_);
    if (!py::isinstance<py::array>(entropy)) type_error("entropy must be a numpy array");
    const py::array e = py::reinterpret_borrow<py::array>(entropy);
    if (e.ndim() != 2 || e.shape(0) != py::ssize_t(n_) || e.shape(1) < 1) {
      value_error("entropy must have shape (" + std::to_string(n_) + ", W) with W >= 1");
    }
    const py::ssize_t width = e.shape(1);
    const py::array arr = checked_in(entropy, "entropy", {py::ssize_t(n_), width});
    require_dtype<uint32_t>(arr, "entropy", "uint32");
    const int64_t* nw = nullptr;
    std::vector<int64_t> nw_copy;  // checked and read by the core: owned, not the caller's
    if (!nwords.is_none()) {
      const py::array nw_arr = checked_in(nwords, "nwords", {py::ssize_t(n_)});
      require_dtype<int64_t>(nw_arr, "nwords", "int64");
      nw_copy.assign(cptr<int64_t>(nw_arr), cptr<int64_t>(nw_arr) + n_);
      nw = nw_copy.data();
      for (int64_t i = 0; i < n_; ++i) {
        if (nw[i] < 1 || nw[i] > int64_t(width)) value_error("nwords must be in [1, W]");
      }
    }
    const uint8_t* mask_p = optional_mask(mask);
    const uint32_t* ent = cptr<uint32_t>(arr);
    py::gil_scoped_release nogil;
    core_seed(ent, int64_t(width), nw, mask_p);
  }

  const char* env_id() const { return env_id_; }
  int state_dim() const { return state_dim_; }
  int obs_dim() const override { return obs_dim_; }
  int64_t num_envs() const override { return n_; }
  py::array obs() const { return own_.obs; }
  py::array rewards() const { return own_.rew; }
  py::array terminated() const { return own_.term; }
  py::array truncated() const { return own_.trunc; }
  py::array final_obs() const override { return final_obs_; }
  py::array final_mask() const override { return final_mask_; }

  virtual py::array get_state() const = 0;
  virtual void set_state(py::handle states) = 0;
  virtual py::dict dump() const = 0;
  virtual void load(const py::dict& snapshot) = 0;
  virtual int threads_used() const = 0;
  virtual int64_t items_by_workers() const = 0;
  virtual int64_t max_episode_steps() const = 0;
  // True if some env ended and awaits a reset (next_step/disabled modes).
  virtual bool any_pending() const = 0;


 protected:
  VecEnvCore(const char* env_id, int64_t num_envs, int state_dim, int obs_dim)
      : env_id_(env_id), n_(num_envs), state_dim_(state_dim), obs_dim_(obs_dim) {
    const py::ssize_t n = py::ssize_t(n_), o = py::ssize_t(obs_dim_);
    own_.obs = zeros<float>({n, o});
    own_.rew = zeros<double>({n});
    own_.term = zeros<bool>({n});
    own_.trunc = zeros<bool>({n});
    final_obs_ = zeros<float>({n, o});
    final_mask_ = zeros<bool>({n});
  }

  // Checks actions, then steps every env into `out` (GIL released).
  virtual void run_step(py::handle actions, StepOut& out) = 0;
  // Resets with a checked mask (may be null), writing own_.obs.
  virtual void core_reset(const uint8_t* mask, double a, double b) = 0;
  virtual void core_seed(const uint32_t* entropy, int64_t width, const int64_t* nwords,
                         const uint8_t* mask) = 0;

  // A reset mask: None, or bool [N] (kept alive by the caller).
  const uint8_t* optional_mask(const py::object& mask) const {
    if (mask.is_none()) return nullptr;
    const py::array arr = checked_in(mask, "reset_mask", {py::ssize_t(n_)});
    require_dtype<bool>(arr, "reset_mask", "bool");
    return cptr<uint8_t>(arr);
  }

  template <class T>
  static py::array zeros(std::vector<py::ssize_t> shape) {
    py::array_t<T> a(shape);
    std::fill_n(a.mutable_data(), a.size(), T(0));
    return std::move(a);
  }

  void ensure_ready() const {
    if (!ready_) throw std::runtime_error("step() called before reset(); call reset() first");
  }

  StepOut check_outputs(py::handle obs, py::handle rew, py::handle term,
                        py::handle trunc) const {
    // Built from checked arrays only: a default-constructed py::array would
    // allocate an empty array, four times per step.
    const py::ssize_t n = py::ssize_t(n_);
    py::array o = checked_out(obs, "obs_out", {n, py::ssize_t(obs_dim_)});
    const DType obs_dtype = float_dtype(o, "obs_out");
    py::array r = checked_out(rew, "rew_out", {n});
    const DType rew_dtype = float_dtype(r, "rew_out");
    py::array te = checked_out_as<bool>(term, "term_out", {n});
    py::array tr = checked_out_as<bool>(trunc, "trunc_out", {n});
    return StepOut{std::move(o), std::move(r), std::move(te), std::move(tr), obs_dtype,
                   rew_dtype};
  }

  const char* env_id_;
  int64_t n_;
  int state_dim_, obs_dim_;
  mutable std::atomic<bool> busy_{false};
  bool ready_ = false;  // reset() or set_state() ran
  StepOut own_;
  py::array final_obs_, final_mask_;
};

}  // namespace bindings
}  // namespace pgfast
