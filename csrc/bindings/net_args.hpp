// One network of pgfast.nn.ActorCritic (the actor or the critic) with its Adam state, as
// csrc/pg_update.hpp's pg::Net: read and written in place (numpy views of the torch tensors),
// checked here (shapes, dtypes, no two written arrays sharing memory).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <string>
#include <vector>

#include "bindings/checks.hpp"
#include "bindings/mlp_args.hpp"
#include "pg_update.hpp"

namespace pgfast {
namespace bindings {

inline py::array float_array(const py::handle& obj, const std::string& name,
                             const std::vector<py::ssize_t>& shape, bool out) {
  py::array a = out ? checked_out(obj, name.c_str(), shape) : checked_in(obj, name.c_str(), shape);
  require_dtype<float>(a, name.c_str(), "float32");
  return a;
}

inline void require_finite(const char* name, double x) {
  if (!std::isfinite(x)) value_error(std::string(name) + " must be finite");
}

// The Adam hyperparameters of FastAdam's param_groups[0] and its step count.
inline adam::Hyper adam_hyper(int64_t step, double lr, const py::tuple& betas, double eps) {
  if (betas.size() != 2) value_error("betas must be (beta1, beta2)");
  adam::Hyper h;
  h.step = step;
  h.lr = lr;
  h.beta1 = betas[0].cast<double>();
  h.beta2 = betas[1].cast<double>();
  h.eps = eps;
  if (step < 0) value_error("step must be >= 0");
  require_finite("lr", lr);
  require_finite("eps", eps);
  if (!(lr >= 0.0)) value_error("lr must be >= 0");
  if (!(h.beta1 >= 0.0 && h.beta1 < 1.0) || !(h.beta2 >= 0.0 && h.beta2 < 1.0)) {
    value_error("beta1 and beta2 must be in [0, 1)");
  }
  if (!(eps > 0.0)) value_error("eps must be > 0");
  return h;
}

// One network (parse_net: the actor with log_std None or [out_dim], or the critic) with its
// Adam state, read and written in place. With exp_avg / exp_avg_sq (lists of the optimiser's
// moments) the net's tensors weights..., biases..., log_std take the moments at positions
// first, first + 1, ... of the lists (their parameters' shapes). Every array written is
// appended to `written`; the caller checks them apart (require_separate). writeable false:
// parameters only read (no Adam), read-only arrays accepted.
inline pg::Net adam_net(const py::list& weights, const py::list& biases, const py::object& log_std,
                        const std::string& activation, const std::string& prefix, int out_dim,
                        const py::object& exp_avg, const py::object& exp_avg_sq, size_t first,
                        std::vector<py::array>& written, bool writeable = true) {
  pg::Net n;
  const size_t w0 = written.size();
  n.net = parse_net(weights, biases, activation, prefix, writeable, written, out_dim);
  const int L = n.net.num_layers;
  const py::ssize_t K = n.net.out_dim();
  if (!log_std.is_none()) {
    written.push_back(float_array(log_std, "log_std", {K}, writeable));
    n.log_std = const_cast<float*>(cptr<float>(written.back()));  // written only if writeable
  }
  const int P = int(written.size() - w0);
  const bool with_adam = !exp_avg.is_none();
  py::list m, v;
  if (with_adam) {
    m = py::list(exp_avg);
    v = py::list(exp_avg_sq);
    if (m.size() < first + size_t(P) || v.size() < first + size_t(P)) {
      value_error("exp_avg and exp_avg_sq must hold one array per parameter");
    }
  }
  n.opt.count = P;
  for (int q = 0; q < P; ++q) {
    py::array a = written[w0 + size_t(q)];  // a handle: `written` grows below
    const int i = q % L;
    n.opt.p[q] = const_cast<float*>(cptr<float>(a));  // checked writeable where it is written
    n.opt.size[q] = q < L ? int64_t(n.net.dims[i]) * n.net.dims[i + 1] : q < 2 * L ? n.net.dims[i + 1] : K;
    if (!with_adam) continue;
    const std::vector<py::ssize_t> shape(a.shape(), a.shape() + a.ndim());
    const size_t k = first + size_t(q);
    written.push_back(float_array(m[k], "exp_avg[" + std::to_string(k) + "]", shape, true));
    n.opt.m[q] = mptr<float>(written.back());
    written.push_back(float_array(v[k], "exp_avg_sq[" + std::to_string(k) + "]", shape, true));
    n.opt.v[q] = mptr<float>(written.back());
  }
  return n;
}

// exp_avg and exp_avg_sq hold exactly `count` arrays (one per parameter).
inline void require_moments(const py::object& exp_avg, const py::object& exp_avg_sq, size_t count) {
  if (py::len(exp_avg) != count || py::len(exp_avg_sq) != count) {
    value_error("exp_avg and exp_avg_sq must hold one array per parameter (" +
                std::to_string(count) + "), got " + std::to_string(py::len(exp_avg)) + " and " +
                std::to_string(py::len(exp_avg_sq)));
  }
}

// No two arrays an update writes may share memory.
inline void require_separate(const std::vector<py::array>& written) {
  for (size_t a = 0; a < written.size(); ++a) {
    for (size_t b = a + 1; b < written.size(); ++b) {
      if (may_overlap(written[a], written[b])) {
        value_error("parameters and Adam moments must be separate arrays (two of them share "
                    "memory)");
      }
    }
  }
}

// A minibatch permutation: None (an empty array), int64 [B] (epochs 1) or [epochs, B]; the
// one parser of the C++ updates' perm argument (PPO, VPG, TRPO's value fit).
inline py::array checked_perm(const py::object& obj, py::ssize_t B, int64_t epochs) {
  if (obj.is_none()) return py::array();
  py::array p = as_array(obj, "perm");
  if (p.ndim() == 1) {
    if (epochs != 1) value_error("perm must be [epochs, B] for epochs > 1");
    p = checked_in(p, "perm", {B});
  } else {
    p = checked_in(p, "perm", {py::ssize_t(epochs), B});
  }
  require_dtype<int64_t>(p, "perm", "int64");
  return p;
}

// Batch arrays must not share memory with anything the update writes.
inline void require_apart(const std::vector<py::array>& written,
                          std::initializer_list<const py::array*> batch) {
  for (const py::array* a : batch) {
    if (a->size() == 0) continue;
    for (const py::array& w : written) {
      if (may_overlap(w, *a)) value_error("batch arrays must not share memory with the parameters");
    }
  }
}

}  // namespace bindings
}  // namespace pgfast
