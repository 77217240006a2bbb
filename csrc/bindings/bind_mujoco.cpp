// pgfast._C.MujocoVecEnv: the C++ core of the native MuJoCo envs
// (csrc/envs/mujoco_vec.hpp), and pgfast._C.MujocoTask, its task settings.
//
// MuJoCo stays an optional run-time dependency: the extension neither links
// libmujoco nor includes its headers. The core is given the `mujoco` package's
// objects: the MjModel and one MjData per env (their `_address`, the mjModel* /
// mjData*, kept alive by the core) and the numpy views of the mjData arrays it
// reads (qpos, qvel, ctrl, xpos, ...), which share memory with the mjData for
// its lifetime; their sizes are checked against the model. The four C functions
// it calls (mj_step, mj_forward, mj_resetData, mj_rnePostConstraint) are found
// with dlsym in the libmujoco that the package loaded (its path is given).
// Reset states are drawn by a Python callable (the env's numpy generators, as
// gymnasium draws them): called only in steps where some env resets.
#include <dlfcn.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bindings/checks.hpp"
#include "bindings/dispatch.hpp"
#include "bindings/env_core.hpp"
#include "bindings/rollout_env.hpp"
#include "envs/mujoco_vec.hpp"

namespace pgfast {
namespace bindings {
namespace {

using envs::MjApi;
using envs::MjArrays;
using envs::MjAutoreset;
using envs::MjDims;
using envs::MjTask;
using envs::MjVecEnv;

// The MuJoCo functions of the libmujoco at `path` (loaded once per path).
MjApi load_api(const std::string& path) {
  static std::mutex mu;
  static std::map<std::string, MjApi> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(path);
  if (it != cache.end()) return it->second;
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_NOLOAD);  // the one `mujoco` loaded
  if (lib == nullptr) lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* err = dlerror();
    throw py::import_error("cannot load libmujoco from " + path + ": " + (err ? err : "?"));
  }
  MjApi api;
  const std::pair<const char*, MjApi::Fn*> names[] = {
      {"mj_step", &api.step}, {"mj_forward", &api.forward}, {"mj_resetData", &api.reset_data},
      {"mj_rnePostConstraint", &api.rne_post_constraint}};
  for (const auto& [name, fn] : names) {
    *fn = reinterpret_cast<MjApi::Fn>(dlsym(lib, name));
    if (*fn == nullptr) throw py::import_error(std::string("libmujoco lacks ") + name);
  }
  cache[path] = api;
  return api;
}

int attr_int(const py::handle& obj, const char* name) {
  return py::cast<int>(obj.attr(name));
}

// A float64 C-contiguous writable view of `size` values: obj.<name>, kept in `keep`.
double* field(const py::handle& obj, const char* name, int64_t size,
              std::vector<py::object>& keep) {
  py::object v = obj.attr(name);
  if (!py::isinstance<py::array>(v)) type_error(std::string(name) + " is not a numpy array");
  py::array a = py::reinterpret_borrow<py::array>(v);
  require_dtype<double>(a, name, "float64");
  require_c_contiguous(a, name);
  require_writeable(a, name);
  if (int64_t(a.size()) != size) {
    value_error(std::string(name) + " has " + std::to_string(a.size()) + " values, the model " +
                std::to_string(size));
  }
  keep.push_back(v);
  return mptr<double>(a);
}

class PyMjVecEnv final : public RolloutEnv {
 public:
  PyMjVecEnv(const std::string& library, py::object model, py::list datas, const MjTask& task,
             int64_t frame_skip, int64_t max_episode_steps, const std::string& autoreset_mode,
             int64_t num_threads, py::object obs, py::object rew, py::object term,
             py::object trunc, py::object final_obs, py::object final_mask, py::object elapsed,
             py::object pending, py::object draw)
      : model_(model), datas_(datas), draw_(draw) {
    require_at_least(frame_skip, 1, "frame_skip");
    require_at_least(max_episode_steps, 1, "max_episode_steps");
    const int threads = thread_request(num_threads, 1, "num_threads");
    if (!PyCallable_Check(draw.ptr())) type_error("draw must be callable");
    const MjAutoreset mode = autoreset_mode == "next_step" ? MjAutoreset::kNextStep
                             : autoreset_mode == "same_step" ? MjAutoreset::kSameStep
                             : autoreset_mode == "disabled"  ? MjAutoreset::kDisabled
                             : throw py::value_error("autoreset_mode must be next_step, "
                                                     "same_step or disabled");
    const MjApi api = load_api(library);
    dims_.nq = attr_int(model, "nq");
    dims_.nv = attr_int(model, "nv");
    dims_.nu = attr_int(model, "nu");
    dims_.nbody = attr_int(model, "nbody");
    const int nsite = attr_int(model, "nsite");
    dims_.body_mass = field(model, "body_mass", dims_.nbody, keep_);
    dims_.total_mass = envs::np_sum(dims_.body_mass, dims_.nbody);
    if (6 * int64_t(dims_.nbody) > envs::kMaxSquares || dims_.nu > envs::kMaxSquares) {
      value_error("the model has too many bodies or actuators");
    }
    n_ = int64_t(py::len(datas));
    require_at_least(n_, 1, "num_envs");
    const int obs_dim = envs::mj_obs_dim(task, dims_);
    if (obs_dim < 1) value_error("unknown MuJoCo task kind " + std::to_string(task.kind));
    if (!(task.dt > 0.0) || !(task.timestep > 0.0)) value_error("dt and timestep must be > 0");
    if (task.main_body < 0 || task.main_body >= dims_.nbody) value_error("main_body out of range");
    for (int b : task.bodies) {
      if (b < 0 || b >= dims_.nbody) value_error("bodies out of range");
    }
    if (envs::MjKind(task.kind) == envs::MjKind::kDoublePendulum && nsite < 1) {
      value_error("InvertedDoublePendulum needs a site");
    }
    std::vector<MjArrays> sims;
    for (int64_t i = 0; i < n_; ++i) sims.push_back(sim_arrays(datas[size_t(i)], nsite));
    const py::ssize_t n = py::ssize_t(n_), o = py::ssize_t(obs_dim);
    obs_ = checked_out_as<double>(obs, "obs", {n, o});
    rew_ = checked_out_as<double>(rew, "rew", {n});
    term_ = checked_out_as<bool>(term, "term", {n});
    trunc_ = checked_out_as<bool>(trunc, "trunc", {n});
    fin_ = checked_out_as<double>(final_obs, "final_obs", {n, o});
    mask_ = checked_out_as<bool>(final_mask, "final_mask", {n});
    elapsed_ = checked_out_as<int64_t>(elapsed, "elapsed", {n});
    pending_ = checked_out_as<bool>(pending, "pending", {n});
    require_disjoint({{&obs_, "obs"}, {&rew_, "rew"}, {&term_, "term"}, {&trunc_, "trunc"},
                      {&fin_, "final_obs"}, {&mask_, "final_mask"}, {&elapsed_, "elapsed"},
                      {&pending_, "pending"}});
    core_.reset(new MjVecEnv(api, reinterpret_cast<const void*>(
                                      py::cast<uintptr_t>(model.attr("_address"))),
                             dims_, task, std::move(sims), int(frame_skip), max_episode_steps,
                             mode, threads, mptr<int64_t>(elapsed_), mptr<bool>(pending_)));
  }

  // One MjData's address and the views of the arrays the tasks read (sizes checked).
  MjArrays sim_arrays(py::handle d, int nsite) {
    const int nb = dims_.nbody;
    MjArrays a;
    a.data = reinterpret_cast<void*>(py::cast<uintptr_t>(d.attr("_address")));
    a.qpos = field(d, "qpos", dims_.nq, keep_);
    a.qvel = field(d, "qvel", dims_.nv, keep_);
    a.ctrl = field(d, "ctrl", dims_.nu, keep_);
    a.xpos = field(d, "xpos", 3 * nb, keep_);
    a.xipos = field(d, "xipos", 3 * nb, keep_);
    a.cinert = field(d, "cinert", 10 * nb, keep_);
    a.cvel = field(d, "cvel", 6 * nb, keep_);
    a.qfrc_actuator = field(d, "qfrc_actuator", dims_.nv, keep_);
    a.cfrc_ext = field(d, "cfrc_ext", 6 * nb, keep_);
    a.site_xpos = field(d, "site_xpos", 3 * nsite, keep_);
    a.qfrc_constraint = field(d, "qfrc_constraint", dims_.nv, keep_);
    return a;
  }

  int64_t num_envs() const override { return n_; }
  int obs_dim() const override { return core_->obs_dim(); }
  bool discrete() const override { return false; }
  py::array final_obs() const override { return fin_; }
  py::array final_mask() const override { return mask_; }
  int threads_used() const { return core_->threads_used(); }
  int64_t items_by_workers() const { return core_->items_by_workers(); }

  // Resets envs `ids` (int64 [k]) with states drawn by the draw callable; writes
  // every env's observation into the own obs buffer.
  void reset(py::handle ids_obj) {
    Exclusive busy(busy_);
    const py::array ids_a = checked_in(ids_obj, "ids", {py::ssize_t(py::len(ids_obj))});
    require_dtype<int64_t>(ids_a, "ids", "int64");
    std::vector<int64_t> ids(cptr<int64_t>(ids_a), cptr<int64_t>(ids_a) + ids_a.size());
    for (int64_t i : ids) {
      if (i < 0 || i >= n_) value_error("ids must be in [0, num_envs)");
    }
    reset_ids(ids, mptr<double>(obs_));
    core_->write_obs(mptr<double>(obs_));
  }

  void step(py::handle actions) {
    Exclusive busy(busy_);
    run_step(actions, mptr<double>(obs_), mptr<double>(rew_), mptr<bool>(term_),
             mptr<bool>(trunc_));
  }

  void step_into(py::handle actions, py::handle obs, py::handle rew, py::handle term,
                 py::handle trunc) {
    Exclusive busy(busy_);
    const py::ssize_t n = py::ssize_t(n_);
    py::array o = checked_out(obs, "obs_out", {n, py::ssize_t(obs_dim())});
    py::array r = checked_out(rew, "rew_out", {n});
    py::array te = checked_out_as<bool>(term, "term_out", {n});
    py::array tr = checked_out_as<bool>(trunc, "trunc_out", {n});
    require_disjoint({{&o, "obs_out"}, {&r, "rew_out"}, {&te, "term_out"}, {&tr, "trunc_out"},
                      {&fin_, "final_obs"}, {&mask_, "final_mask"}, {&elapsed_, "elapsed"},
                      {&pending_, "pending"}});
    dispatch<float, double>(float_dtype(o, "obs_out"), [&](auto ot) {
      dispatch<float, double>(float_dtype(r, "rew_out"), [&](auto rt) {
        using O = typename decltype(ot)::type;
        using R = typename decltype(rt)::type;
        run_step(actions, mptr<O>(o), mptr<R>(r), mptr<bool>(te), mptr<bool>(tr));
      });
    });
  }

  void step_raw(const void* actions, float* obs, float* rew, bool* term, bool* trunc) override {
    Exclusive busy(busy_);
    const float* a = static_cast<const float*>(actions);
    const int64_t m = n_ * core_->act_dim();
    act32_.assign(a, a + m);
    const int64_t bad = first_nonfinite(act32_.data(), m);
    if (bad >= 0) value_error("actions must be finite; entry " + std::to_string(bad) + " is not");
    steps(act32_.data(), obs, rew, term, trunc);
  }

  py::array get_state() const {
    Exclusive busy(busy_);
    py::array_t<double> out({py::ssize_t(n_), py::ssize_t(core_->state_dim())});
    core_->get_state(out.mutable_data());
    return std::move(out);
  }

  // Sets qpos/qvel of every env from float64 [N, nq + nv] (then mj_forward),
  // cancels pending autoresets and writes the observations.
  void set_state(py::handle states) {
    Exclusive busy(busy_);
    py::array s = checked_in(states, "states", {py::ssize_t(n_), py::ssize_t(core_->state_dim())});
    require_dtype<double>(s, "states", "float64");
    if (first_nonfinite(cptr<double>(s), int64_t(s.size())) >= 0) {
      value_error("states must be finite");
    }
    std::vector<double> copy(cptr<double>(s), cptr<double>(s) + s.size());
    {
      py::gil_scoped_release nogil;
      core_->set_state(copy.data());
    }
    core_->write_obs(mptr<double>(obs_));
  }

 private:
  // Actions float32 / float64 [N, nu], copied (and checked finite) before any env changes.
  template <class O, class R>
  void run_step(py::handle actions, O* obs, R* rew, bool* term, bool* trunc) {
    const py::array a = checked_in(actions, "actions",
                                   {py::ssize_t(n_), py::ssize_t(core_->act_dim())});
    const int64_t m = int64_t(a.size());
    if (dtype_of(a) == DType::kF32) {
      act32_.assign(cptr<float>(a), cptr<float>(a) + m);
      if (first_nonfinite(act32_.data(), m) >= 0) value_error("actions must be finite");
      steps(act32_.data(), obs, rew, term, trunc);
    } else {
      require_dtype<double>(a, "actions", "float32 or float64");
      act64_.assign(cptr<double>(a), cptr<double>(a) + m);
      if (first_nonfinite(act64_.data(), m) >= 0) value_error("actions must be finite");
      steps(act64_.data(), obs, rew, term, trunc);
    }
  }

  // The step with its autoresets: next_step mode's pending envs get their reset
  // states first; same_step mode's ended envs are reset after the step, their
  // last observations kept in final_obs (where final_mask).
  template <class A, class O, class R>
  void steps(const A* act, O* obs, R* rew, bool* term, bool* trunc) {
    bool* pending = mptr<bool>(pending_);
    std::vector<int64_t> ids;
    if (core_->mode() == MjAutoreset::kNextStep) {
      for (int64_t i = 0; i < n_; ++i) {
        if (pending[i]) ids.push_back(i);
      }
      draw_states(ids);
    } else if (core_->mode() == MjAutoreset::kDisabled) {
      for (int64_t i = 0; i < n_; ++i) {
        if (pending[i]) throw std::runtime_error("an ended env was not reset (disabled mode)");
      }
    }
    {
      py::gil_scoped_release nogil;
      core_->step(act, obs, rew, term, trunc);
    }
    if (core_->mode() != MjAutoreset::kSameStep) return;
    bool* mask = mptr<bool>(mask_);
    double* fin = mptr<double>(fin_);
    const int64_t d = core_->obs_dim();
    ids.clear();
    for (int64_t i = 0; i < n_; ++i) {
      mask[i] = pending[i];
      if (!pending[i]) continue;
      ids.push_back(i);
      core_->write_obs_of(i, fin + i * d);  // float64, whatever obs's dtype
    }
    if (!ids.empty()) {
      draw_states(ids);
      py::gil_scoped_release nogil;
      core_->reset(ids.data(), int64_t(ids.size()), obs);
    }
  }

  void reset_ids(const std::vector<int64_t>& ids, double* obs) {
    draw_states(ids);
    py::gil_scoped_release nogil;
    core_->reset(ids.data(), int64_t(ids.size()), obs);
  }

  // Calls draw(ids) -> float64 [k, nq + nv] (finite) and hands the rows to the core.
  void draw_states(const std::vector<int64_t>& ids) {
    if (ids.empty()) return;
    const py::ssize_t k = py::ssize_t(ids.size()), w = py::ssize_t(core_->state_dim());
    py::array_t<int64_t> ids_a(k);
    std::copy(ids.begin(), ids.end(), ids_a.mutable_data());
    py::object got = draw_(ids_a);
    const py::array s = checked_in(got, "draw(ids)", {k, w});
    require_dtype<double>(s, "draw(ids)", "float64");
    if (first_nonfinite(cptr<double>(s), int64_t(s.size())) >= 0) {
      value_error("draw(ids) returned non-finite states");
    }
    states_.assign(cptr<double>(s), cptr<double>(s) + s.size());
    for (py::ssize_t j = 0; j < k; ++j) core_->set_reset_source(ids[size_t(j)], &states_[size_t(j * w)]);
  }

  py::object model_;
  py::list datas_;
  py::object draw_;
  std::vector<py::object> keep_;
  MjDims dims_;
  int64_t n_ = 0;
  py::array obs_, rew_, term_, trunc_, fin_, mask_, elapsed_, pending_;
  std::vector<float> act32_;
  std::vector<double> act64_, states_;
  mutable std::atomic<bool> busy_{false};
  std::unique_ptr<MjVecEnv> core_;
};

void bind_task(py::module_& m) {
  py::class_<MjTask>(m, "MujocoTask",
                     "Settings of one MuJoCo task for pgfast._C.MujocoVecEnv "
                     "(csrc/envs/mujoco_task.hpp; set by pgfast/envs/mujoco_core.py).")
      .def(py::init<>())
      .def_readwrite("kind", &MjTask::kind)
      .def_readwrite("skip", &MjTask::skip)
      .def_readwrite("clip_qvel", &MjTask::clip_qvel)
      .def_readwrite("dt", &MjTask::dt)
      .def_readwrite("timestep", &MjTask::timestep)
      .def_readwrite("forward_weight", &MjTask::forward_weight)
      .def_readwrite("ctrl_weight", &MjTask::ctrl_weight)
      .def_readwrite("contact_weight", &MjTask::contact_weight)
      .def_readwrite("healthy_reward", &MjTask::healthy_reward)
      .def_readwrite("terminate_when_unhealthy", &MjTask::terminate_when_unhealthy)
      .def_readwrite("check_state", &MjTask::check_state)
      .def_readwrite("state_lo", &MjTask::state_lo)
      .def_readwrite("state_hi", &MjTask::state_hi)
      .def_readwrite("check_z", &MjTask::check_z)
      .def_readwrite("z_lo", &MjTask::z_lo)
      .def_readwrite("z_hi", &MjTask::z_hi)
      .def_readwrite("check_angle", &MjTask::check_angle)
      .def_readwrite("angle_lo", &MjTask::angle_lo)
      .def_readwrite("angle_hi", &MjTask::angle_hi)
      .def_readwrite("force_lo", &MjTask::force_lo)
      .def_readwrite("force_hi", &MjTask::force_hi)
      .def_readwrite("cost_lo", &MjTask::cost_lo)
      .def_readwrite("cost_hi", &MjTask::cost_hi)
      .def_readwrite("main_body", &MjTask::main_body)
      .def_readwrite("include_cinert", &MjTask::include_cinert)
      .def_readwrite("include_cvel", &MjTask::include_cvel)
      .def_readwrite("include_qfrc_actuator", &MjTask::include_qfrc_actuator)
      .def_readwrite("include_cfrc_ext", &MjTask::include_cfrc_ext)
      .def_property(
          "bodies", [](const MjTask& t) { return py::make_tuple(t.bodies[0], t.bodies[1], t.bodies[2]); },
          [](MjTask& t, const std::vector<int>& b) {
            if (b.size() != 3) value_error("bodies must hold 3 body ids");
            std::copy(b.begin(), b.end(), t.bodies);
          })
      .def_readwrite("dist_weight", &MjTask::dist_weight)
      .def_readwrite("near_weight", &MjTask::near_weight)
      .def_readwrite("norm_fma", &MjTask::norm_fma);
}

}  // namespace

void bind_mujoco(py::module_& m) {
  using E = PyMjVecEnv;
  bind_task(m);
  py::class_<E, RolloutEnv>(m, "MujocoVecEnv",
                            "C++ core of the native MuJoCo envs (pgfast/envs/mujoco_core.py).")
      .def(py::init<const std::string&, py::object, py::list, const MjTask&, int64_t, int64_t,
                    const std::string&, int64_t, py::object, py::object, py::object, py::object,
                    py::object, py::object, py::object, py::object, py::object>(),
           py::kw_only(), py::arg("library"), py::arg("model"), py::arg("datas"),
           py::arg("task"), py::arg("frame_skip"), py::arg("max_episode_steps"),
           py::arg("autoreset_mode"), py::arg("num_threads"), py::arg("obs"), py::arg("rew"),
           py::arg("term"), py::arg("trunc"), py::arg("final_obs"), py::arg("final_mask"),
           py::arg("elapsed"), py::arg("pending"), py::arg("draw"))
      .def("reset", &E::reset, py::arg("ids"),
           "Reset envs ids (int64 [k]) to states from draw(ids); writes every env's obs.")
      .def("step", &E::step, py::arg("actions"),
           "Step every env (actions float32/float64 [N, nu]) into the own buffers.")
      .def("step_into", &E::step_into, py::arg("actions"), py::arg("obs_out"),
           py::arg("rew_out"), py::arg("term_out"), py::arg("trunc_out"),
           "Step every env into caller arrays (obs/rew float32 or float64, flags bool).")
      .def("get_state", &E::get_state, "qpos and qvel of every env, float64 [N, nq + nv].")
      .def("set_state", &E::set_state, py::arg("states"),
           "Set qpos/qvel of every env (mj_forward), cancel pending autoresets, write obs.")
      .def_property_readonly("obs_dim", &E::obs_dim)
      .def_property_readonly("num_envs", &E::num_envs)
      .def_property_readonly("threads_used", &E::threads_used)
      .def_property_readonly("items_by_workers", &E::items_by_workers);
}

}  // namespace bindings
}  // namespace pgfast
