// The one file that sees Python: converts and validates arrays, releases the
// GIL and calls the C++ cores. Every check that guards memory safety lives
// here, so nothing Python passes can make a kernel read or write out of bounds.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "returns.hpp"

namespace py = pybind11;

namespace {

// ---------------------------------------------------------------- helpers

[[noreturn]] void value_error(const std::string& msg) { throw py::value_error(msg); }
[[noreturn]] void type_error(const std::string& msg) { throw py::type_error(msg); }

py::array as_array(const py::handle& obj, const char* name) {
  if (!py::isinstance<py::array>(obj)) {
    type_error(std::string(name) + " must be a numpy array");
  }
  return py::reinterpret_borrow<py::array>(obj);
}

void require_c_contiguous(const py::array& a, const char* name) {
  if (!(a.flags() & py::array::c_style)) {
    value_error(std::string(name) + " must be C-contiguous");
  }
}

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    if (i) s += ", ";
    s += std::to_string(a.shape(i));
  }
  if (a.ndim() == 1) s += ",";
  return s + ")";
}

// Time-major [T] or [T, N] with T >= 1. Returns (T, N).
std::pair<int64_t, int64_t> time_major_dims(const py::array& a, const char* name) {
  if (a.ndim() != 1 && a.ndim() != 2) {
    value_error(std::string(name) + " must be 1-D [T] or 2-D [T, N], got shape " +
                shape_str(a));
  }
  int64_t T = a.shape(0);
  int64_t N = a.ndim() == 2 ? a.shape(1) : 1;
  if (T == 0) value_error(std::string(name) + " has T = 0 steps; need at least one");
  return {T, N};
}

void require_same_shape(const py::array& a, const char* an, const py::array& b,
                        const char* bn) {
  bool same = a.ndim() == b.ndim();
  for (py::ssize_t i = 0; same && i < a.ndim(); ++i) same = a.shape(i) == b.shape(i);
  if (!same) {
    value_error(std::string(bn) + " has shape " + shape_str(b) + " but " + an +
                " has shape " + shape_str(a));
  }
}

enum class Kind { F32, F64, U8, OTHER };

Kind kind_of(const py::array& a) {
  const char k = a.dtype().kind();
  const auto sz = a.dtype().itemsize();
  if (k == 'f' && sz == 4) return Kind::F32;
  if (k == 'f' && sz == 8) return Kind::F64;
  if ((k == 'b' || k == 'u') && sz == 1) return Kind::U8;
  return Kind::OTHER;
}

void require_float(const py::array& a, const char* name) {
  Kind k = kind_of(a);
  if (k != Kind::F32 && k != Kind::F64) {
    type_error(std::string(name) + " must be float32 or float64, got " +
               std::string(py::str(a.dtype())));
  }
}

void require_dtype(const py::array& a, const char* name, Kind want, const char* ref) {
  if (kind_of(a) != want) {
    type_error(std::string(name) + " has dtype " + std::string(py::str(a.dtype())) +
               " but " + ref + " has another float dtype; they must match");
  }
}

// Flags: bool/uint8, or the data's float dtype. Returns the flag kind.
Kind flag_kind(const py::array& a, const char* name, Kind data) {
  Kind k = kind_of(a);
  if (k == Kind::U8 || k == data) return k;
  type_error(std::string(name) + " must be bool, uint8 or the data's float dtype, got " +
             std::string(py::str(a.dtype())));
}

template <class T>
T checked_coeff(double x, const char* name) {
  if (!std::isfinite(x) || x < 0.0 || x > 1.0) {
    value_error(std::string(name) + " must be a finite number in [0, 1], got " +
                std::to_string(x));
  }
  return T(x);
}

py::array empty_like(const py::array& a) {
  std::vector<py::ssize_t> shape(a.shape(), a.shape() + a.ndim());
  return py::array(a.dtype(), shape);
}

template <class T>
const T* cptr(const py::array& a) {
  return static_cast<const T*>(a.data());
}
template <class T>
T* mptr(py::array& a) {
  return static_cast<T*>(a.mutable_data());
}

// ---------------------------------------------------------------- returns

py::array py_discounted_cumsum(py::object x_, py::object dones_, double gamma,
                               int num_threads) {
  py::array x = as_array(x_, "x"), dones = as_array(dones_, "dones");
  auto [T, N] = time_major_dims(x, "x");
  require_float(x, "x");
  require_same_shape(x, "x", dones, "dones");
  require_c_contiguous(x, "x");
  require_c_contiguous(dones, "dones");
  Kind dk = kind_of(x);
  Kind fk = flag_kind(dones, "dones", dk);
  py::array y = empty_like(x);
  {
    py::gil_scoped_release nogil;
    if (dk == Kind::F32) {
      float g = checked_coeff<float>(gamma, "gamma");
      if (fk == Kind::U8)
        pgfast::discounted_cumsum(cptr<float>(x), cptr<uint8_t>(dones), mptr<float>(y), T,
                                  N, g, num_threads);
      else
        pgfast::discounted_cumsum(cptr<float>(x), cptr<float>(dones), mptr<float>(y), T, N,
                                  g, num_threads);
    } else {
      double g = checked_coeff<double>(gamma, "gamma");
      if (fk == Kind::U8)
        pgfast::discounted_cumsum(cptr<double>(x), cptr<uint8_t>(dones), mptr<double>(y),
                                  T, N, g, num_threads);
      else
        pgfast::discounted_cumsum(cptr<double>(x), cptr<double>(dones), mptr<double>(y), T,
                                  N, g, num_threads);
    }
  }
  return y;
}

template <class T, class F>
void run_rtg(const py::array& r, const py::array& te, const py::array& tr,
             const py::array* nv, py::array& out, int64_t Tn, int64_t N, double gamma,
             int num_threads) {
  T g = checked_coeff<T>(gamma, "gamma");
  const T* nvp = nv ? cptr<T>(*nv) : nullptr;
  py::gil_scoped_release nogil;
  pgfast::reward_to_go(cptr<T>(r), cptr<F>(te), cptr<F>(tr), nvp, mptr<T>(out), Tn, N, g,
                       num_threads);
}

py::array py_reward_to_go(py::object rewards_, py::object terminated_,
                          py::object truncated_, double gamma, py::object next_values_,
                          int num_threads) {
  py::array r = as_array(rewards_, "rewards");
  py::array te = as_array(terminated_, "terminated");
  py::array tr = as_array(truncated_, "truncated");
  auto [T, N] = time_major_dims(r, "rewards");
  require_float(r, "rewards");
  require_same_shape(r, "rewards", te, "terminated");
  require_same_shape(r, "rewards", tr, "truncated");
  Kind dk = kind_of(r);
  Kind fk = flag_kind(te, "terminated", dk);
  if (flag_kind(tr, "truncated", dk) != fk) {
    type_error("terminated and truncated must have the same dtype");
  }
  py::array nv;
  bool has_nv = !next_values_.is_none();
  if (has_nv) {
    nv = as_array(next_values_, "next_values");
    require_same_shape(r, "rewards", nv, "next_values");
    require_dtype(nv, "next_values", dk, "rewards");
    require_c_contiguous(nv, "next_values");
  }
  require_c_contiguous(r, "rewards");
  require_c_contiguous(te, "terminated");
  require_c_contiguous(tr, "truncated");
  py::array out = empty_like(r);
  const py::array* nvp = has_nv ? &nv : nullptr;
  if (dk == Kind::F32) {
    if (fk == Kind::U8)
      run_rtg<float, uint8_t>(r, te, tr, nvp, out, T, N, gamma, num_threads);
    else
      run_rtg<float, float>(r, te, tr, nvp, out, T, N, gamma, num_threads);
  } else {
    if (fk == Kind::U8)
      run_rtg<double, uint8_t>(r, te, tr, nvp, out, T, N, gamma, num_threads);
    else
      run_rtg<double, double>(r, te, tr, nvp, out, T, N, gamma, num_threads);
  }
  return out;
}

template <class T, class F>
void run_gae(const py::array& r, const py::array& v, const py::array& nv,
             const py::array& te, const py::array& tr, py::array& adv, py::array& ret,
             int64_t Tn, int64_t N, double gamma, double lam, int num_threads) {
  T g = checked_coeff<T>(gamma, "gamma");
  T l = checked_coeff<T>(lam, "lam");
  py::gil_scoped_release nogil;
  pgfast::gae(cptr<T>(r), cptr<T>(v), cptr<T>(nv), cptr<F>(te), cptr<F>(tr), mptr<T>(adv),
              mptr<T>(ret), Tn, N, g, l, num_threads);
}

py::tuple py_gae(py::object rewards_, py::object values_, py::object next_values_,
                 py::object terminated_, py::object truncated_, double gamma, double lam,
                 int num_threads) {
  py::array r = as_array(rewards_, "rewards");
  py::array v = as_array(values_, "values");
  py::array nv = as_array(next_values_, "next_values");
  py::array te = as_array(terminated_, "terminated");
  py::array tr = as_array(truncated_, "truncated");
  auto [T, N] = time_major_dims(r, "rewards");
  require_float(r, "rewards");
  require_same_shape(r, "rewards", v, "values");
  require_same_shape(r, "rewards", nv, "next_values");
  require_same_shape(r, "rewards", te, "terminated");
  require_same_shape(r, "rewards", tr, "truncated");
  Kind dk = kind_of(r);
  require_dtype(v, "values", dk, "rewards");
  require_dtype(nv, "next_values", dk, "rewards");
  Kind fk = flag_kind(te, "terminated", dk);
  if (flag_kind(tr, "truncated", dk) != fk) {
    type_error("terminated and truncated must have the same dtype");
  }
  require_c_contiguous(r, "rewards");
  require_c_contiguous(v, "values");
  require_c_contiguous(nv, "next_values");
  require_c_contiguous(te, "terminated");
  require_c_contiguous(tr, "truncated");
  py::array adv = empty_like(r), ret = empty_like(r);
  if (dk == Kind::F32) {
    if (fk == Kind::U8)
      run_gae<float, uint8_t>(r, v, nv, te, tr, adv, ret, T, N, gamma, lam, num_threads);
    else
      run_gae<float, float>(r, v, nv, te, tr, adv, ret, T, N, gamma, lam, num_threads);
  } else {
    if (fk == Kind::U8)
      run_gae<double, uint8_t>(r, v, nv, te, tr, adv, ret, T, N, gamma, lam, num_threads);
    else
      run_gae<double, double>(r, v, nv, te, tr, adv, ret, T, N, gamma, lam, num_threads);
  }
  return py::make_tuple(adv, ret);
}

void bind_returns(py::module_& m) {
  m.def("discounted_cumsum", &py_discounted_cumsum, py::arg("x"), py::arg("dones"),
        py::arg("gamma"), py::arg("num_threads") = 0,
        "y_t = x_t + gamma * (1 - dones_t) * y_{t+1} over C-contiguous [T] or [T, N].");
  m.def("reward_to_go", &py_reward_to_go, py::arg("rewards"), py::arg("terminated"),
        py::arg("truncated"), py::arg("gamma"), py::arg("next_values") = py::none(),
        py::arg("num_threads") = 0,
        "Rewards-to-go with truncation bootstrap over C-contiguous [T] or [T, N].");
  m.def("gae", &py_gae, py::arg("rewards"), py::arg("values"), py::arg("next_values"),
        py::arg("terminated"), py::arg("truncated"), py::arg("gamma"), py::arg("lam"),
        py::arg("num_threads") = 0,
        "Generalised advantage estimation; returns (advantages, returns).");
  m.def("plan_threads", &pgfast::plan_threads, py::arg("T"), py::arg("N"),
        py::arg("num_threads") = 0,
        "Worker threads a kernel would use for a [T, N] problem.");
}

// ---------------------------------------------------------------- envs
// (native vectorised environments: see bind_envs below)

void bind_envs(py::module_& m);

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "pgfast C++ kernels: returns/advantages and vectorised environments";
  bind_returns(m);
  bind_envs(m);
}

// ================================================================ envs
// Native vectorised classic-control environments (csrc/envs/*.hpp). Every
// array is checked here (type, dtype, shape, C-contiguity, writeability)
// before a core sees its pointer; the GIL is released while stepping.
#include "envs/acrobot.hpp"
#include "envs/cartpole.hpp"
#include "envs/mountain_car.hpp"
#include "envs/pendulum.hpp"
#include "envs/vec_env.hpp"

namespace {

namespace pe = pgfast::envs;

// Per-env constructor parameters, passed from Python as a dict of floats.
double param_or(const py::dict& d, const char* key, double dflt) {
  if (!d.contains(key)) return dflt;
  double v = py::cast<double>(d[key]);
  if (!std::isfinite(v)) value_error(std::string(key) + " must be finite");
  return v;
}
pe::CartPole::Params make_params(pe::CartPole*, const py::dict& d) {
  pe::CartPole::Params p;
  p.sutton_barto_reward = param_or(d, "sutton_barto_reward", 0.0) != 0.0;
  return p;
}
pe::Pendulum::Params make_params(pe::Pendulum*, const py::dict& d) {
  return pe::Pendulum::Params::with_gravity(param_or(d, "g", pe::Pendulum::kDefaultGravity));
}
pe::MountainCar::Params make_params(pe::MountainCar*, const py::dict& d) {
  pe::MountainCar::Params p;
  p.goal_velocity = param_or(d, "goal_velocity", 0.0);
  return p;
}
pe::MountainCarContinuous::Params make_params(pe::MountainCarContinuous*,
                                              const py::dict& d) {
  pe::MountainCarContinuous::Params p;
  p.goal_velocity = param_or(d, "goal_velocity", 0.0);
  return p;
}
pe::Acrobot::Params make_params(pe::Acrobot*, const py::dict&) { return {}; }

bool dtype_is(const py::array& a, const py::dtype& d) { return a.dtype().equal(d); }

std::string dtype_str(const py::array& a) { return std::string(py::str(a.dtype())); }

// Exact shape and C-contiguity.
void require_layout(const py::array& a, const char* name, const std::vector<py::ssize_t>& shape) {
  bool ok = a.ndim() == py::ssize_t(shape.size());
  for (size_t k = 0; ok && k < shape.size(); ++k) ok = a.shape(py::ssize_t(k)) == shape[k];
  if (!ok) {
    std::string want = "(";
    for (size_t k = 0; k < shape.size(); ++k) {
      if (k) want += ", ";
      want += std::to_string(shape[k]);
    }
    want += shape.size() == 1 ? ",)" : ")";
    value_error(std::string(name) + " must have shape " + want + ", got " + shape_str(a));
  }
  if (!(a.flags() & py::array::c_style)) value_error(std::string(name) + " must be C-contiguous");
}

// An input array: numpy (never converted: a copy would hide mistakes), exact
// shape, C-contiguous.
py::array checked_in(const py::handle& obj, const char* name,
                     const std::vector<py::ssize_t>& shape) {
  if (!py::isinstance<py::array>(obj)) value_error(std::string(name) + " must be a numpy array");
  auto a = py::reinterpret_borrow<py::array>(obj);
  require_layout(a, name, shape);
  return a;
}

// An output array: as an input, and writeable.
py::array checked_out(const py::handle& obj, const char* name,
                      const std::vector<py::ssize_t>& shape) {
  if (!py::isinstance<py::array>(obj)) {
    type_error(std::string(name) + " must be a numpy array (or a CPU torch tensor)");
  }
  auto a = py::reinterpret_borrow<py::array>(obj);
  require_layout(a, name, shape);
  if (!a.writeable()) value_error(std::string(name) + " must be writeable");
  return a;
}

enum class FKind { F32, F64 };

FKind float_kind(const py::array& a, const char* name) {
  if (dtype_is(a, py::dtype::of<float>())) return FKind::F32;
  if (dtype_is(a, py::dtype::of<double>())) return FKind::F64;
  value_error(std::string(name) + " must be float32 or float64, got " + dtype_str(a));
}

void require_bool(const py::array& a, const char* name) {
  if (!dtype_is(a, py::dtype::of<bool>())) {
    value_error(std::string(name) + " must have dtype bool, got " + dtype_str(a));
  }
}

// Where one step writes.
struct StepOut {
  py::array obs, rew, term, trunc;
  FKind obs_kind = FKind::F32, rew_kind = FKind::F64;
};

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

template <class Env>
class PyVecEnv {
 public:
  using Core = pe::VecEnv<Env>;
  static constexpr int kS = Env::kStateDim;
  static constexpr int kO = Env::kObsDim;

  PyVecEnv(int64_t num_envs, bool same_step, int num_threads, int64_t max_episode_steps,
           const py::dict& params) {
    if (num_envs < 1) value_error("num_envs must be >= 1, got " + std::to_string(num_envs));
    if (num_threads < 1) value_error("num_threads must be >= 1");
    if (max_episode_steps < 1) value_error("max_episode_steps must be >= 1");
    core_.reset(new Core(num_envs, make_params(static_cast<Env*>(nullptr), params),
                         max_episode_steps, same_step, num_threads));
    n_ = num_envs;
    const py::ssize_t n = py::ssize_t(n_);
    own_.obs = py::array_t<float>({n, py::ssize_t(kO)});
    own_.rew = py::array_t<double>(n);
    own_.term = py::array_t<bool>(n);
    own_.trunc = py::array_t<bool>(n);
    final_obs_ = py::array_t<float>({n, py::ssize_t(kO)});
    final_mask_ = py::array_t<bool>(n);
    std::fill_n(static_cast<float*>(own_.obs.mutable_data()), n_ * kO, 0.0f);
    std::fill_n(static_cast<double*>(own_.rew.mutable_data()), n_, 0.0);
    std::fill_n(static_cast<bool*>(own_.term.mutable_data()), n_, false);
    std::fill_n(static_cast<bool*>(own_.trunc.mutable_data()), n_, false);
    std::fill_n(static_cast<float*>(final_obs_.mutable_data()), n_ * kO, 0.0f);
    std::fill_n(static_cast<bool*>(final_mask_.mutable_data()), n_, false);
  }

  // Use caller-owned arrays as the outputs of step() (and final_obs buffers
  // in same_step mode); they are kept alive by this object.
  void bind_outputs(py::object obs, py::object rew, py::object term, py::object trunc,
                    py::object final_obs, py::object final_mask) {
    Exclusive busy(busy_);
    StepOut o = check_outputs(obs, rew, term, trunc);
    py::array fo = own_final_obs_or(final_obs), fm = own_final_mask_or(final_mask);
    own_ = std::move(o);
    final_obs_ = std::move(fo);
    final_mask_ = std::move(fm);
  }

  void step(py::handle actions) {
    Exclusive busy(busy_);
    ensure_ready();
    py::array a = check_actions(actions);
    run_step(a, own_);
  }

  void step_into(py::handle actions, py::object obs, py::object rew, py::object term,
                 py::object trunc) {
    Exclusive busy(busy_);
    ensure_ready();
    StepOut o = check_outputs(obs, rew, term, trunc);
    py::array a = check_actions(actions);
    run_step(a, o);
  }

  void reset(py::object seeds_, py::object mask_, double a, double b) {
    Exclusive busy(busy_);
    if (!std::isfinite(a) || !std::isfinite(b)) value_error("reset bounds must be finite");
    const uint64_t* seeds = nullptr;
    const uint8_t* mask = nullptr;
    py::array seeds_arr, mask_arr;
    if (!seeds_.is_none()) {
      seeds_arr = checked_in(seeds_, "seeds", {py::ssize_t(n_)});
      if (!dtype_is(seeds_arr, py::dtype::of<uint64_t>())) value_error("seeds must be uint64");
      seeds = static_cast<const uint64_t*>(seeds_arr.data());
    }
    if (!mask_.is_none()) {
      mask_arr = checked_in(mask_, "reset_mask", {py::ssize_t(n_)});
      require_bool(mask_arr, "reset_mask");
      mask = static_cast<const uint8_t*>(mask_arr.data());
    }
    typename Env::Bounds bounds{a, b};
    void* obs = own_.obs.mutable_data();
    const bool f32 = own_.obs_kind == FKind::F32;
    {
      py::gil_scoped_release nogil;
      if (f32) core_->reset(seeds, mask, bounds, static_cast<float*>(obs));
      else core_->reset(seeds, mask, bounds, static_cast<double*>(obs));
    }
    ready_ = true;
  }

  py::array get_state() const {
    Exclusive busy(busy_);
    py::array_t<double> out({py::ssize_t(n_), py::ssize_t(kS)});
    core_->get_state(out.mutable_data());
    return std::move(out);
  }

  void set_state(py::handle states) {
    Exclusive busy(busy_);
    py::array s = checked_in(states, "states", {py::ssize_t(n_), py::ssize_t(kS)});
    if (!dtype_is(s, py::dtype::of<double>())) {
      value_error("states must be float64, got " + dtype_str(s));
    }
    const double* p = static_cast<const double*>(s.data());
    for (int64_t k = 0; k < n_ * kS; ++k) {
      if (!std::isfinite(p[k])) value_error("states must be finite");
    }
    core_->set_state(p);
    ready_ = true;
  }

  // Full snapshot for pickling: physics state with caches, step counters,
  // pending autoresets, random streams, reset bounds, readiness.
  py::dict dump() const {
    Exclusive busy(busy_);
    const py::ssize_t n = py::ssize_t(n_);
    py::array_t<double> rows({py::ssize_t(Core::kRows), n});
    py::array_t<int64_t> steps(n);
    py::array_t<uint8_t> pending(n);
    py::array_t<uint64_t> rng({n, py::ssize_t(4)});
    py::array_t<double> bounds(2);
    core_->save(rows.mutable_data(), steps.mutable_data(), pending.mutable_data(),
                rng.mutable_data(), bounds.mutable_data());
    py::dict d;
    d["rows"] = rows;
    d["steps"] = steps;
    d["pending"] = pending;
    d["rng"] = rng;
    d["bounds"] = bounds;
    d["ready"] = ready_;
    return d;
  }

  void load(const py::dict& d) {
    Exclusive busy(busy_);
    const py::ssize_t n = py::ssize_t(n_);
    for (const char* key : {"rows", "steps", "pending", "rng", "bounds", "ready"}) {
      if (!d.contains(key)) value_error(std::string("snapshot lacks '") + key + "'");
    }
    py::array rows = checked_in(d["rows"], "rows", {py::ssize_t(Core::kRows), n});
    py::array steps = checked_in(d["steps"], "steps", {n});
    py::array pending = checked_in(d["pending"], "pending", {n});
    py::array rng = checked_in(d["rng"], "rng", {n, py::ssize_t(4)});
    py::array bounds = checked_in(d["bounds"], "bounds", {2});
    if (!dtype_is(rows, py::dtype::of<double>()) || !dtype_is(bounds, py::dtype::of<double>()) ||
        !dtype_is(steps, py::dtype::of<int64_t>()) ||
        !dtype_is(pending, py::dtype::of<uint8_t>()) ||
        !dtype_is(rng, py::dtype::of<uint64_t>())) {
      value_error("snapshot arrays have the wrong dtypes");
    }
    core_->restore(static_cast<const double*>(rows.data()),
                   static_cast<const int64_t*>(steps.data()),
                   static_cast<const uint8_t*>(pending.data()),
                   static_cast<const uint64_t*>(rng.data()),
                   static_cast<const double*>(bounds.data()));
    ready_ = py::cast<bool>(d["ready"]);
  }

  int64_t num_envs() const { return n_; }
  int threads_used() const { return core_->threads_used(); }
  int64_t items_by_workers() const { return core_->items_by_workers(); }
  int64_t max_episode_steps() const { return core_->max_episode_steps(); }
  py::array obs() const { return own_.obs; }
  py::array rewards() const { return own_.rew; }
  py::array terminated() const { return own_.term; }
  py::array truncated() const { return own_.trunc; }
  py::array final_obs() const { return final_obs_; }
  py::array final_mask() const { return final_mask_; }

 private:
  void ensure_ready() const {
    if (!ready_) throw std::runtime_error("step() called before reset(); call reset() first");
  }

  py::array check_actions(py::handle actions) const {
    if constexpr (Env::kDiscrete) {
      py::array a = checked_in(actions, "actions", {py::ssize_t(n_)});
      if (!dtype_is(a, py::dtype::of<int64_t>()) && !dtype_is(a, py::dtype::of<int32_t>())) {
        value_error("actions must be an integer array (int64 or int32) of shape (" +
                    std::to_string(n_) + ",), got dtype " + dtype_str(a));
      }
      return a;
    } else {
      py::array a = checked_in(actions, "actions", {py::ssize_t(n_), py::ssize_t(Env::kActDim)});
      float_kind(a, "actions");
      return a;
    }
  }

  StepOut check_outputs(py::object obs, py::object rew, py::object term,
                        py::object trunc) const {
    StepOut o;
    const py::ssize_t n = py::ssize_t(n_);
    o.obs = checked_out(obs, "obs_out", {n, py::ssize_t(kO)});
    o.obs_kind = float_kind(o.obs, "obs_out");
    o.rew = checked_out(rew, "rew_out", {n});
    o.rew_kind = float_kind(o.rew, "rew_out");
    o.term = checked_out(term, "term_out", {n});
    require_bool(o.term, "term_out");
    o.trunc = checked_out(trunc, "trunc_out", {n});
    require_bool(o.trunc, "trunc_out");
    return o;
  }

  py::array own_final_obs_or(py::object fo) const {
    if (fo.is_none()) return final_obs_;
    py::array a = checked_out(fo, "final_obs", {py::ssize_t(n_), py::ssize_t(kO)});
    if (!dtype_is(a, py::dtype::of<float>())) value_error("final_obs must be float32");
    return a;
  }
  py::array own_final_mask_or(py::object fm) const {
    if (fm.is_none()) return final_mask_;
    py::array a = checked_out(fm, "final_mask", {py::ssize_t(n_)});
    require_bool(a, "final_mask");
    return a;
  }
  template <class A, class O, class R>
  void run_typed(const py::array& a, StepOut& o) {
    const A* act = static_cast<const A*>(a.data());
    if constexpr (Env::kDiscrete) {
      const int64_t bad = core_->first_invalid_discrete(act);
      if (bad >= 0) {
        value_error("actions[" + std::to_string(bad) + "] = " + std::to_string(int64_t(act[bad])) +
                    " is outside the action space Discrete(" +
                    std::to_string(Env::kNumActions) + ")");
      }
    } else {
      const int64_t bad = core_->first_nonfinite(act);
      if (bad >= 0) {
        value_error("actions must be finite; entry " + std::to_string(bad) + " (env " +
                    std::to_string(bad / Env::kActDim) + ") is " + std::to_string(double(act[bad])));
      }
    }
    O* obs = static_cast<O*>(o.obs.mutable_data());
    R* rew = static_cast<R*>(o.rew.mutable_data());
    bool* term = static_cast<bool*>(o.term.mutable_data());
    bool* trunc = static_cast<bool*>(o.trunc.mutable_data());
    float* fo = static_cast<float*>(final_obs_.mutable_data());
    bool* fm = static_cast<bool*>(final_mask_.mutable_data());
    py::gil_scoped_release nogil;
    core_->step(act, obs, rew, term, trunc, fo, fm);
  }

  template <class A>
  void run_obs_rew(const py::array& a, StepOut& o) {
    if (o.obs_kind == FKind::F32) {
      if (o.rew_kind == FKind::F64) run_typed<A, float, double>(a, o);
      else run_typed<A, float, float>(a, o);
    } else {
      if (o.rew_kind == FKind::F64) run_typed<A, double, double>(a, o);
      else run_typed<A, double, float>(a, o);
    }
  }

  void run_step(const py::array& a, StepOut& o) {
    if constexpr (Env::kDiscrete) {
      if (dtype_is(a, py::dtype::of<int64_t>())) run_obs_rew<int64_t>(a, o);
      else run_obs_rew<int32_t>(a, o);
    } else {
      if (dtype_is(a, py::dtype::of<float>())) run_obs_rew<float>(a, o);
      else run_obs_rew<double>(a, o);
    }
  }

  std::unique_ptr<Core> core_;
  mutable std::atomic<bool> busy_{false};
  int64_t n_ = 0;
  bool ready_ = false;
  StepOut own_;
  py::array final_obs_, final_mask_;
};

template <class Env>
void bind_one(py::module_& m, const char* name, const char* doc) {
  using E = PyVecEnv<Env>;
  py::class_<E>(m, name, doc)
      .def(py::init<int64_t, bool, int, int64_t, py::dict>(), py::arg("num_envs"),
           py::arg("same_step") = false, py::arg("num_threads") = 1,
           py::arg("max_episode_steps") = Env::kMaxEpisodeSteps,
           py::arg("params") = py::dict())
      .def("bind_outputs", &E::bind_outputs, py::arg("obs"), py::arg("rew"), py::arg("term"),
           py::arg("trunc"), py::arg("final_obs") = py::none(),
           py::arg("final_mask") = py::none(),
           "Use these arrays as step()'s outputs (checked once, kept alive).")
      .def("step", &E::step, py::arg("actions"),
           "Step all envs, writing into the bound output arrays.")
      .def("step_into", &E::step_into, py::arg("actions"), py::arg("obs_out"),
           py::arg("rew_out"), py::arg("term_out"), py::arg("trunc_out"),
           "Step all envs, writing into the given arrays.")
      .def("reset", &E::reset, py::arg("seeds"), py::arg("mask"), py::arg("a"), py::arg("b"),
           "Reset (masked) envs with reset bounds (a, b); writes every env's obs.")
      .def("get_state", &E::get_state, "Physics state, float64 [N, state_dim].")
      .def("dump", &E::dump,
           "Full snapshot (state and caches, step counters, pending resets, RNG, bounds).")
      .def("load", &E::load, py::arg("snapshot"), "Restore a dump() snapshot.")
      .def("set_state", &E::set_state, py::arg("states"),
           "Set the physics state from float64 [N, state_dim]; cancels pending autoresets.")
      .def_property_readonly("num_envs", &E::num_envs)
      .def_property_readonly("threads_used", &E::threads_used)
      .def_property_readonly("items_by_workers", &E::items_by_workers,
                             "Work items (1024 envs each) stepped by worker threads so far.")
      .def_property_readonly("max_episode_steps", &E::max_episode_steps)
      .def_property_readonly("obs", &E::obs)
      .def_property_readonly("rewards", &E::rewards)
      .def_property_readonly("terminated", &E::terminated)
      .def_property_readonly("truncated", &E::truncated)
      .def_property_readonly("final_obs", &E::final_obs)
      .def_property_readonly("final_mask", &E::final_mask)
      .def_property_readonly_static("state_dim", [](py::object) { return Env::kStateDim; })
      .def_property_readonly_static("obs_dim", [](py::object) { return Env::kObsDim; });
}

void bind_envs(py::module_& m) {
  bind_one<pe::CartPole>(m, "CartPoleVec", "Native CartPole-v1 vector env core.");
  bind_one<pe::Pendulum>(m, "PendulumVec", "Native Pendulum-v1 vector env core.");
  bind_one<pe::MountainCar>(m, "MountainCarVec", "Native MountainCar-v0 vector env core.");
  bind_one<pe::MountainCarContinuous>(m, "MountainCarContinuousVec",
                                      "Native MountainCarContinuous-v0 vector env core.");
  bind_one<pe::Acrobot>(m, "AcrobotVec", "Native Acrobot-v1 vector env core.");
}

}  // namespace
