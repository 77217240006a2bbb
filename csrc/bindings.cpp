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

namespace {
void bind_envs(py::module_& /*m*/) {}
}  // namespace
