// An env's constructor parameters from a Python dict (pgfast._C.ClassicVecEnv's
// params argument), checked against the env's own parameter table (Env::kParams).
#pragma once

#include <pybind11/pybind11.h>

#include <algorithm>
#include <string>

#include "bindings/checks.hpp"

namespace pgfast {
namespace bindings {

namespace py = pybind11;

// Env's parameters from a Python dict, by the names of Env::kParams (any
// other name is a ValueError naming the valid ones). A real parameter is
// converted as float() does and must be finite; a flag as bool() does.
template <class Env>
typename Env::Params make_params(const py::dict& d) {
  typename Env::Params p{};
  for (auto item : d) {
    if (!py::isinstance<py::str>(item.first)) {
      type_error(std::string(Env::kId) + " parameter names must be str");
    }
    const std::string key = py::cast<std::string>(item.first);
    const auto* field = std::find_if(Env::kParams.begin(), Env::kParams.end(),
                                     [&](const auto& f) { return key == f.name; });
    if (field == Env::kParams.end()) {
      std::string valid;
      for (const auto& f : Env::kParams) valid += (valid.empty() ? "" : ", ") + std::string(f.name);
      value_error(std::string(Env::kId) + " has no parameter '" + key + "'; " +
                  (valid.empty() ? "it takes none" : "valid parameters: " + valid));
    }
    const py::object value = py::reinterpret_borrow<py::object>(item.second);
    if (field->flag != nullptr) {
      p.*(field->flag) = bool(py::bool_(value));
    } else {
      p.*(field->real) = finite(double(py::float_(value)), key);
    }
  }
  return p;
}

}  // namespace bindings
}  // namespace pgfast
