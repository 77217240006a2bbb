// Reading one network of pgfast.nn.ActorCritic (the actor or the critic: a list of float32
// weights [d_in, d_out] and a list of float32 biases [d_out], d_in chained to the previous
// d_out) into the one C++ MLP (csrc/mlp.hpp): the one layer parser of the bindings (rollout,
// policy_evaluate and the updates).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "bindings/checks.hpp"
#include "mlp.hpp"

namespace pgfast {
namespace bindings {

inline mlp::Act parse_activation(const std::string& activation) {
  for (int a = 0; a < mlp::kNumActs; ++a) {
    if (activation == mlp::kActNames[a]) return mlp::Act(a);
  }
  std::string names;
  for (int a = 0; a < mlp::kNumActs; ++a) {
    names += std::string(a ? " or '" : "'") + mlp::kActNames[a] + "'";
  }
  value_error("activation must be " + names + ", got '" + activation + "'");
  return mlp::Act::kTanh;
}

// The network `prefix` ("weights", "critic_weights" name the lists in messages: prefix +
// "weights[i]" / prefix + "biases[i]") with its pointers set. Every array is float32,
// C-contiguous (and writeable where `writeable`), appended to `arrays` in the order weights...,
// biases... (the caller keeps them alive). out_dim > 0 requires that output width.
inline mlp::Mlp parse_net(const py::handle& weights_obj, const py::handle& biases_obj,
                          const std::string& activation, const std::string& prefix,
                          bool writeable, std::vector<py::array>& arrays, int out_dim = 0) {
  const std::string wn = prefix + "weights", bn = prefix + "biases";
  if (!py::isinstance<py::list>(weights_obj) || !py::isinstance<py::list>(biases_obj)) {
    type_error(wn + " and " + bn + " must be lists of arrays");
  }
  const py::list weights = py::reinterpret_borrow<py::list>(weights_obj);
  const py::list biases = py::reinterpret_borrow<py::list>(biases_obj);
  mlp::Mlp m;
  const size_t L = weights.size();
  if (L < 1 || L > size_t(mlp::kMaxLayers)) {
    value_error(wn + " must hold 1 to " + std::to_string(mlp::kMaxLayers) + " layers");
  }
  if (biases.size() != L) value_error(wn + " and " + bn + " must have the same length");
  m.act = parse_activation(activation);
  m.num_layers = int(L);
  std::vector<py::array> ws, bs;
  for (size_t i = 0; i < L; ++i) {
    const std::string name = wn + "[" + std::to_string(i) + "]";
    py::array w = as_array(weights[i], name.c_str());
    if (w.ndim() != 2 || w.shape(0) < 1 || w.shape(1) < 1) {
      value_error(name + " must be [d_in, d_out], got " + shape_str(w));
    }
    if (i == 0) {
      m.dims[0] = int(w.shape(0));
    } else if (w.shape(0) != m.dims[i]) {
      value_error(name + " has d_in " + std::to_string(w.shape(0)) +
                  ", the previous layer gives " + std::to_string(m.dims[i]));
    }
    m.dims[i + 1] = int(w.shape(1));
    const std::vector<py::ssize_t> ws_shape{w.shape(0), w.shape(1)};
    w = writeable ? checked_out(w, name.c_str(), ws_shape) : checked_in(w, name.c_str(), ws_shape);
    require_dtype<float>(w, name.c_str(), "float32");
    const std::string bname = bn + "[" + std::to_string(i) + "]";
    const std::vector<py::ssize_t> bs_shape{py::ssize_t(m.dims[i + 1])};
    py::array b = writeable ? checked_out(biases[i], bname.c_str(), bs_shape)
                            : checked_in(biases[i], bname.c_str(), bs_shape);
    require_dtype<float>(b, bname.c_str(), "float32");
    m.w[i] = cptr<float>(w);
    m.b[i] = cptr<float>(b);
    ws.push_back(std::move(w));
    bs.push_back(std::move(b));
  }
  if (out_dim > 0 && m.out_dim() != out_dim) {
    value_error(wn + " must end in " + std::to_string(out_dim) + " output column(s), got " +
                std::to_string(m.out_dim()));
  }
  for (auto& a : ws) arrays.push_back(std::move(a));
  for (auto& a : bs) arrays.push_back(std::move(a));
  return m;
}

// Python's view of the limits: pgfast._C.MLP_MAX_LAYERS, pgfast._C.MLP_ACTIVATIONS.
inline void bind_mlp_limits(py::module_& m) {
  m.attr("MLP_MAX_LAYERS") = mlp::kMaxLayers;
  py::tuple acts(mlp::kNumActs);
  for (int a = 0; a < mlp::kNumActs; ++a) acts[a] = py::str(mlp::kActNames[a]);
  m.attr("MLP_ACTIVATIONS") = acts;
}

}  // namespace bindings
}  // namespace pgfast
