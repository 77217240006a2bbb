// One network of pgfast.nn.ActorCritic's stacked layers (slice k: 0 actor, 1 critic) with its
// Adam state, as csrc/pg_update.hpp's pg::Net: read and written in place (numpy views of the
// torch tensors), checked here (shapes, dtypes, no two written arrays sharing memory).
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

// Slice k of the stacked layers; log_std (None or [out_dim]) belongs to the actor. With
// exp_avg / exp_avg_sq (lists of the optimiser's moments in the order weights..., biases...,
// log_std, full stacked shapes) the net's Adam tensors point at slice k of each. Every
// array written is appended to `written`, pairwise disjoint.
inline pg::Net stacked_net(const py::list& weights, const py::list& biases,
                           const py::object& log_std, const std::string& activation, int k,
                           const py::object& exp_avg, const py::object& exp_avg_sq,
                           std::vector<py::array>& written) {
  pg::Net n;
  n.net = stacked_shape(weights, biases, activation);
  const int L = n.net.num_layers;
  const py::ssize_t K = n.net.dims[L];
  const bool with_adam = !exp_avg.is_none();
  const bool gaussian = !log_std.is_none();
  const int P = 2 * L + (gaussian && k == 0 ? 1 : 0);
  py::list m, v;
  if (with_adam) {
    m = py::list(exp_avg);
    v = py::list(exp_avg_sq);
    const size_t want = size_t(2 * L + (gaussian ? 1 : 0));
    if (m.size() != want || v.size() != want) {
      value_error("exp_avg and exp_avg_sq must hold one array per parameter (" +
                  std::to_string(want) + ")");
    }
  }
  n.opt.count = P;
  for (int q = 0; q < P; ++q) {
    const int i = q % L;
    std::vector<py::ssize_t> shape;
    int64_t off = 0, size = 0;
    std::string name;
    py::handle src;
    if (q < L) {
      shape = {2, n.net.dims[i], n.net.dims[i + 1]};
      size = int64_t(n.net.dims[i]) * n.net.dims[i + 1];
      name = "weights[" + std::to_string(i) + "]";
      src = weights[size_t(i)];
    } else if (q < 2 * L) {
      shape = {2, 1, n.net.dims[i + 1]};
      size = n.net.dims[i + 1];
      name = "biases[" + std::to_string(i) + "]";
      src = biases[size_t(i)];
    } else {
      shape = {K};
      size = K;
      name = "log_std";
      src = log_std;
    }
    off = q < 2 * L ? int64_t(k) * size : 0;
    written.push_back(float_array(src, name, shape, true));
    float* p = mptr<float>(written.back()) + off;
    n.opt.p[q] = p;
    n.opt.size[q] = size;
    if (q < L) n.net.w[i] = p;
    else if (q < 2 * L) n.net.b[i] = p;
    else n.log_std = p;
    if (with_adam) {
      written.push_back(float_array(m[size_t(q)], "exp_avg[" + std::to_string(q) + "]", shape, true));
      n.opt.m[q] = mptr<float>(written.back()) + off;
      written.push_back(float_array(v[size_t(q)], "exp_avg_sq[" + std::to_string(q) + "]", shape, true));
      n.opt.v[q] = mptr<float>(written.back()) + off;
    }
  }
  for (size_t a = 0; a < written.size(); ++a) {
    for (size_t b = a + 1; b < written.size(); ++b) {
      if (may_overlap(written[a], written[b])) {
        value_error("parameters and Adam moments must be separate arrays (two of them share "
                    "memory)");
      }
    }
  }
  return n;
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
