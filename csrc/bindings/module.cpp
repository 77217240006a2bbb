// pgfast._C: the return kernels (bind_returns.cpp) and the native vector
// envs (bind_envs.cpp). Only the files in csrc/bindings/ include pybind11.
#include <pybind11/pybind11.h>

#include "parallel.hpp"

namespace pgfast {
namespace bindings {
void bind_returns(pybind11::module_& m);
void bind_envs(pybind11::module_& m);
void bind_mujoco(pybind11::module_& m);
void bind_rollout(pybind11::module_& m);
void bind_update(pybind11::module_& m);
void bind_pg(pybind11::module_& m);
}  // namespace bindings
}  // namespace pgfast

PYBIND11_MODULE(_C, m) {
  m.doc() = "pgfast C++ kernels: returns/advantages and vectorised environments";
  pgfast::bindings::bind_returns(m);
  pgfast::bindings::bind_envs(m);
  pgfast::bindings::bind_mujoco(m);
  pgfast::bindings::bind_rollout(m);
  pgfast::bindings::bind_update(m);
  pgfast::bindings::bind_pg(m);
  m.def("shared_pool_items_by_workers", &pgfast::shared_pool_items_by_workers,
        "Items the shared worker pool's threads (not the callers) have run so far (the return "
        "kernels' columns, the dense products' blocks): for tests that a threaded path ran.");
}
