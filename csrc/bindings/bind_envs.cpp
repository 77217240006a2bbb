// pgfast._C's env registry: one ClassicVecEnv class for every env of
// envs::ClassicEnvs (csrc/envs/registry.hpp), made by gymnasium id, and
// classic_envs() describing each (dims, parameters, reset options).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bindings/checks.hpp"
#include "bindings/env_core.hpp"
#include "envs/registry.hpp"

namespace pgfast {
namespace bindings {
namespace {

using MakeCore = std::unique_ptr<VecEnvCore> (*)(int64_t num_envs, bool same_step,
                                                 int64_t num_threads, int64_t max_episode_steps,
                                                 const py::dict& params);

struct Entry {
  const char* id;
  int64_t default_max_episode_steps;
  MakeCore make;
  py::dict (*describe)();
};

template <class Env>
std::unique_ptr<VecEnvCore> make_core(int64_t num_envs, bool same_step, int64_t num_threads,
                                      int64_t max_episode_steps, const py::dict& params) {
  return std::make_unique<PyVecEnv<Env>>(num_envs, same_step, num_threads, max_episode_steps,
                                         params);
}

template <class Env>
py::dict describe() {
  double defaults[2];
  const typename Env::Bounds bounds{};
  std::memcpy(defaults, &bounds, sizeof(defaults));
  std::vector<std::string> params;
  for (const auto& p : Env::kParams) params.emplace_back(p.name);
  py::dict d;
  d["state_dim"] = Env::kStateDim;
  d["obs_dim"] = Env::kObsDim;
  d["discrete"] = Env::kDiscrete;
  d["max_episode_steps"] = Env::kMaxEpisodeSteps;
  d["params"] = params;
  d["reset_options"] = py::make_tuple(Env::kResetOptions[0], Env::kResetOptions[1]);
  d["reset_defaults"] = py::make_tuple(defaults[0], defaults[1]);
  return d;
}

template <class... Envs>
std::vector<Entry> entries(envs::EnvList<Envs...>) {
  return {Entry{Envs::kId, Envs::kMaxEpisodeSteps, &make_core<Envs>, &describe<Envs>}...};
}

const std::vector<Entry>& registry() {
  static const std::vector<Entry> all = entries(envs::ClassicEnvs{});
  return all;
}

std::string registered_ids() {
  std::string ids;
  for (const Entry& e : registry()) ids += (ids.empty() ? "" : ", ") + std::string(e.id);
  return ids;
}

std::unique_ptr<VecEnvCore> make_classic(const std::string& env_id, int64_t num_envs,
                                         bool same_step, int64_t num_threads,
                                         py::object max_episode_steps, py::object params) {
  for (const Entry& e : registry()) {
    if (env_id != e.id) continue;
    int64_t limit = e.default_max_episode_steps;
    if (!max_episode_steps.is_none()) {
      // int() semantics without truncating floats: TypeError for a non-integer
      PyObject* index = PyNumber_Index(max_episode_steps.ptr());
      if (index == nullptr) throw py::error_already_set();
      limit = py::cast<int64_t>(py::reinterpret_steal<py::int_>(index));
    }
    py::dict p;
    if (!params.is_none()) {
      if (!py::isinstance<py::dict>(params)) type_error("params must be a dict");
      p = py::reinterpret_borrow<py::dict>(params);
    }
    return e.make(num_envs, same_step, num_threads, limit, p);
  }
  value_error("no native classic env '" + env_id + "'; registered: " + registered_ids());
}

py::dict classic_envs() {
  py::dict d;
  for (const Entry& e : registry()) d[e.id] = e.describe();
  return d;
}

}  // namespace

void bind_envs(py::module_& m) {
  using E = VecEnvCore;
  m.def("classic_envs", &classic_envs,
        "The native classic-control envs by gymnasium id: state_dim, obs_dim, discrete, "
        "max_episode_steps, params (constructor parameter names), reset_options (the two "
        "reset-option names) and reset_defaults.");
  py::class_<RolloutEnv>(m, "RolloutEnv",
                         "A native env core the native rollout steps from C++ (no Python per "
                         "step): pgfast._C.ClassicVecEnv and pgfast._C.MujocoVecEnv.");
  py::class_<E, RolloutEnv>(m, "ClassicVecEnv", "Native vector env core of one classic-control env.")
      .def(py::init(&make_classic), py::arg("env_id"), py::arg("num_envs"),
           py::arg("same_step") = false, py::arg("num_threads") = 1,
           py::arg("max_episode_steps") = py::none(), py::arg("params") = py::none())
      .def("bind_outputs", &E::bind_outputs, py::arg("obs"), py::arg("rew"), py::arg("term"),
           py::arg("trunc"), py::arg("final_obs") = py::none(),
           py::arg("final_mask") = py::none(),
           "Use these arrays as step()'s outputs (checked once, kept alive).")
      .def("step", &E::step, py::arg("actions"),
           "Step all envs, writing into the bound output arrays.")
      .def("step_into", &E::step_into, py::arg("actions"), py::arg("obs_out"),
           py::arg("rew_out"), py::arg("term_out"), py::arg("trunc_out"),
           "Step all envs, writing into the given arrays.")
      .def("reset", &E::reset, py::arg("mask"), py::arg("a"), py::arg("b"),
           "Reset (masked) envs with reset bounds (a, b), for this reset only; writes every "
           "env's obs.")
      .def("seed", &E::seed, py::arg("entropy"), py::arg("nwords") = py::none(),
           py::arg("mask") = py::none(),
           "Reseed (masked) envs' streams as numpy's PCG64(SeedSequence(x_i)), x_i given by "
           "its little-endian uint32 words entropy[i, :nwords[i]].")
      .def("any_pending", &E::any_pending,
           "True if some env ended and awaits a reset (next_step/disabled modes).")
      .def("get_state", &E::get_state, "Physics state, float64 [N, state_dim].")
      .def("set_state", &E::set_state, py::arg("states"),
           "Set the physics state from float64 [N, state_dim]; cancels pending autoresets.")
      .def("dump", &E::dump,
           "Full snapshot (state and caches, step counters, pending resets, RNG streams).")
      .def("load", &E::load, py::arg("snapshot"), "Restore a dump() snapshot.")
      .def_property_readonly("env_id", &E::env_id)
      .def_property_readonly("state_dim", &E::state_dim)
      .def_property_readonly("obs_dim", &E::obs_dim)
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
      .def_property_readonly("final_mask", &E::final_mask);
}

}  // namespace bindings
}  // namespace pgfast
