// pgfast._C's return and advantage kernels (csrc/returns.hpp): checks every
// array (csrc/bindings/checks.hpp), dispatches on the data and flag dtypes,
// releases the GIL and calls the kernel.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <vector>

#include "bindings/checks.hpp"
#include "bindings/dispatch.hpp"
#include "nstep.hpp"
#include "returns.hpp"

namespace pgfast {
namespace bindings {
namespace {

py::array empty_like(const py::array& a) {
  std::vector<py::ssize_t> shape(a.shape(), a.shape() + a.ndim());
  return py::array(a.dtype(), shape);
}

// terminated and truncated: the same flag dtype (bool/uint8 or the data's).
DType flag_pair_dtype(const py::array& te, const py::array& tr, DType data) {
  const DType fk = flag_dtype(te, "terminated", data);
  if (flag_dtype(tr, "truncated", data) != fk) {
    type_error("terminated and truncated must have the same dtype");
  }
  return fk;
}

py::array py_discounted_cumsum(py::object x_, py::object dones_, double gamma,
                               int64_t num_threads_) {
  const int num_threads = thread_request(num_threads_, 0, "num_threads");
  py::array x = as_array(x_, "x"), dones = as_array(dones_, "dones");
  const auto dims = time_major_dims(x, "x");
  const int64_t T = dims.first, N = dims.second;
  const DType dk = float_dtype(x, "x");
  require_same_shape(x, "x", dones, "dones");
  require_c_contiguous(x, "x");
  require_c_contiguous(dones, "dones");
  const DType fk = flag_dtype(dones, "dones", dk);
  const double g = unit_coeff(gamma, "gamma");
  py::array y = empty_like(x);
  dispatch<float, double>(dk, [&](auto dt) {
    using D = typename decltype(dt)::type;
    dispatch<uint8_t, D>(fk, [&](auto ft) {
      using F = typename decltype(ft)::type;
      py::gil_scoped_release nogil;
      discounted_cumsum(cptr<D>(x), cptr<F>(dones), mptr<D>(y), T, N, D(g), num_threads);
    });
  });
  return y;
}

py::array py_reward_to_go(py::object rewards_, py::object terminated_,
                          py::object truncated_, double gamma, py::object next_values_,
                          int64_t num_threads_) {
  const int num_threads = thread_request(num_threads_, 0, "num_threads");
  py::array r = as_array(rewards_, "rewards");
  py::array te = as_array(terminated_, "terminated");
  py::array tr = as_array(truncated_, "truncated");
  const auto dims = time_major_dims(r, "rewards");
  const int64_t T = dims.first, N = dims.second;
  const DType dk = float_dtype(r, "rewards");
  require_same_shape(r, "rewards", te, "terminated");
  require_same_shape(r, "rewards", tr, "truncated");
  const DType fk = flag_pair_dtype(te, tr, dk);
  const bool has_nv = !next_values_.is_none();
  const void* nv_data = nullptr;  // next_values_ keeps the array alive
  if (has_nv) {
    const py::array nv = as_array(next_values_, "next_values");
    require_same_shape(r, "rewards", nv, "next_values");
    require_same_dtype(nv, "next_values", dk, "rewards");
    require_c_contiguous(nv, "next_values");
    nv_data = nv.data();
  }
  require_c_contiguous(r, "rewards");
  require_c_contiguous(te, "terminated");
  require_c_contiguous(tr, "truncated");
  const double g = unit_coeff(gamma, "gamma");
  py::array out = empty_like(r);
  dispatch<float, double>(dk, [&](auto dt) {
    using D = typename decltype(dt)::type;
    dispatch<uint8_t, D>(fk, [&](auto ft) {
      using F = typename decltype(ft)::type;
      const D* nvp = static_cast<const D*>(nv_data);
      py::gil_scoped_release nogil;
      reward_to_go(cptr<D>(r), cptr<F>(te), cptr<F>(tr), nvp, mptr<D>(out), T, N, D(g),
                   num_threads);
    });
  });
  return out;
}

py::tuple py_gae(py::object rewards_, py::object values_, py::object next_values_,
                 py::object terminated_, py::object truncated_, double gamma, double lam,
                 int64_t num_threads_) {
  const int num_threads = thread_request(num_threads_, 0, "num_threads");
  py::array r = as_array(rewards_, "rewards");
  py::array v = as_array(values_, "values");
  py::array nv = as_array(next_values_, "next_values");
  py::array te = as_array(terminated_, "terminated");
  py::array tr = as_array(truncated_, "truncated");
  const auto dims = time_major_dims(r, "rewards");
  const int64_t T = dims.first, N = dims.second;
  const DType dk = float_dtype(r, "rewards");
  require_same_shape(r, "rewards", v, "values");
  require_same_shape(r, "rewards", nv, "next_values");
  require_same_shape(r, "rewards", te, "terminated");
  require_same_shape(r, "rewards", tr, "truncated");
  require_same_dtype(v, "values", dk, "rewards");
  require_same_dtype(nv, "next_values", dk, "rewards");
  const DType fk = flag_pair_dtype(te, tr, dk);
  require_c_contiguous(r, "rewards");
  require_c_contiguous(v, "values");
  require_c_contiguous(nv, "next_values");
  require_c_contiguous(te, "terminated");
  require_c_contiguous(tr, "truncated");
  const double g = unit_coeff(gamma, "gamma");
  const double l = unit_coeff(lam, "lam");
  py::array adv = empty_like(r), ret = empty_like(r);
  dispatch<float, double>(dk, [&](auto dt) {
    using D = typename decltype(dt)::type;
    dispatch<uint8_t, D>(fk, [&](auto ft) {
      using F = typename decltype(ft)::type;
      py::gil_scoped_release nogil;
      gae(cptr<D>(r), cptr<D>(v), cptr<D>(nv), cptr<F>(te), cptr<F>(tr), mptr<D>(adv),
          mptr<D>(ret), T, N, D(g), D(l), num_threads);
    });
  });
  return py::make_tuple(adv, ret);
}

py::array py_nstep_returns(py::object rewards_, py::object next_values_,
                           py::object terminated_, py::object truncated_, double gamma,
                           int64_t n, int64_t num_threads_) {
  const int num_threads = thread_request(num_threads_, 0, "num_threads");
  py::array r = as_array(rewards_, "rewards");
  py::array nv = as_array(next_values_, "next_values");
  py::array te = as_array(terminated_, "terminated");
  py::array tr = as_array(truncated_, "truncated");
  const auto dims = time_major_dims(r, "rewards");
  const int64_t T = dims.first, N = dims.second;
  const DType dk = float_dtype(r, "rewards");
  require_same_shape(r, "rewards", nv, "next_values");
  require_same_shape(r, "rewards", te, "terminated");
  require_same_shape(r, "rewards", tr, "truncated");
  require_same_dtype(nv, "next_values", dk, "rewards");
  const DType fk = flag_pair_dtype(te, tr, dk);
  require_c_contiguous(r, "rewards");
  require_c_contiguous(nv, "next_values");
  require_c_contiguous(te, "terminated");
  require_c_contiguous(tr, "truncated");
  const double g = unit_coeff(gamma, "gamma");
  require_at_least(n, 1, "n");
  py::array out = empty_like(r);
  dispatch<float, double>(dk, [&](auto dt) {
    using D = typename decltype(dt)::type;
    dispatch<uint8_t, D>(fk, [&](auto ft) {
      using F = typename decltype(ft)::type;
      py::gil_scoped_release nogil;
      nstep_returns(cptr<D>(r), cptr<D>(nv), cptr<F>(te), cptr<F>(tr), mptr<D>(out), T, N,
                    D(g), n, num_threads);
    });
  });
  return out;
}

int py_plan_threads(int64_t T, int64_t N, int64_t num_threads) {
  require_at_least(T, 0, "T");
  require_at_least(N, 0, "N");
  return plan_threads(T, N, thread_request(num_threads, 0, "num_threads"));
}

}  // namespace

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
  m.def("nstep_returns", &py_nstep_returns, py::arg("rewards"), py::arg("next_values"),
        py::arg("terminated"), py::arg("truncated"), py::arg("gamma"), py::arg("n"),
        py::arg("num_threads") = 0,
        "n-step bootstrapped returns G^(n) over C-contiguous [T] or [T, N].");
  m.def("plan_threads", &py_plan_threads, py::arg("T"), py::arg("N"), py::arg("num_threads") = 0,
        "Worker threads a kernel would use for a [T, N] problem.");
}

}  // namespace bindings
}  // namespace pgfast
