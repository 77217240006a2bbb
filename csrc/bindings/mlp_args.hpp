// Reading pgfast.nn.ActorCritic's stacked layers (weights[i] [2, d_i, d_{i+1}], biases[i]
// [2, 1, d_{i+1}]; index 0 actor, 1 critic) into the one C++ MLP's shape (csrc/mlp.hpp):
// the one layer parser of the bindings (rollout, policy_evaluate and the updates).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

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

// The layer count, dims (chained d_in = previous d_out) and activation of the stacked
// layers; the pointers are left null for the caller.
inline mlp::Mlp stacked_shape(const py::list& weights, const py::list& biases,
                              const std::string& activation) {
  mlp::Mlp m;
  const size_t L = weights.size();
  if (L < 1 || L > size_t(mlp::kMaxLayers)) {
    value_error("weights must hold 1 to " + std::to_string(mlp::kMaxLayers) + " layers");
  }
  if (biases.size() != L) value_error("weights and biases must have the same length");
  m.act = parse_activation(activation);
  m.num_layers = int(L);
  for (size_t i = 0; i < L; ++i) {
    const std::string name = "weights[" + std::to_string(i) + "]";
    py::array w = as_array(weights[i], name.c_str());
    if (w.ndim() != 3 || w.shape(0) != 2 || w.shape(1) < 1 || w.shape(2) < 1) {
      value_error(name + " must be [2, d_in, d_out], got " + shape_str(w));
    }
    if (i == 0) {
      m.dims[0] = int(w.shape(1));
    } else if (w.shape(1) != m.dims[i]) {
      value_error(name + " has d_in " + std::to_string(w.shape(1)) +
                  ", the previous layer gives " + std::to_string(m.dims[i]));
    }
    m.dims[i + 1] = int(w.shape(2));
  }
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
