// pgfast._C's native rollout (csrc/rollout.hpp): the T-step rollout of an MLP
// policy in a vector env in one call. Per step the policy's forward and
// sampling run with the GIL released; the env is stepped through its
// step_into (the GIL is taken for that call only; a native env's core then
// runs without Python), writing straight into the caller's buffer rows. Given
// a native classic env's core (pgfast._C.ClassicVecEnv) instead of a callable,
// the rollout steps it from C++ (no Python frame per step) and reads the
// final observations from that env's own final_obs / final_mask buffers.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/checks.hpp"
#include "bindings/dispatch.hpp"
#include "bindings/env_core.hpp"
#include "bindings/mlp_args.hpp"
#include "dense.hpp"
#include "rollout.hpp"

namespace pgfast {
namespace bindings {
namespace {

using rollout::Mlp;

// The actor of pgfast.nn.ActorCritic: weights[i] float32 [d_in, d_out], biases[i] float32
// [d_out] (mlp_args.hpp's parse_net), read only; the arrays are kept alive by `keep`.
Mlp actor_mlp(const py::list& weights, const py::list& biases, const std::string& activation,
              std::vector<py::array>& keep) {
  return parse_net(weights, biases, activation, "", false, keep);
}

py::array policy_forward(const py::list& weights, const py::list& biases,
                         const std::string& activation, py::handle obs) {
  std::vector<py::array> keep;
  const Mlp m = actor_mlp(weights, biases, activation, keep);
  py::array x = as_array(obs, "obs");
  if (x.ndim() != 2) value_error("obs must be [B, obs_dim], got " + shape_str(x));
  const py::ssize_t B = x.shape(0);
  x = checked_in(x, "obs", {B, py::ssize_t(m.dims[0])});
  require_dtype<float>(x, "obs", "float32");
  py::array_t<float> out({B, py::ssize_t(m.dims[m.num_layers])});
  std::vector<float> scratch(size_t(mlp::scratch_size(m, B)));
  const float* xp = cptr<float>(x);
  float* op = out.mutable_data();
  {
    py::gil_scoped_release nogil;
    mlp::forward_into(m, xp, B, op, scratch.data());
  }
  return std::move(out);
}

py::array row(py::array& a, int64_t t) {
  std::vector<py::ssize_t> shape(a.shape() + 1, a.shape() + a.ndim());
  std::vector<py::ssize_t> strides(a.strides() + 1, a.strides() + a.ndim());
  char* p = static_cast<char*>(a.mutable_data()) + t * a.strides(0);
  return py::array(a.dtype(), shape, strides, p, a);
}

// The rollout. Returns True if some step truncated an episode.
bool rollout_mlp(py::object step_into, const py::list& weights, const py::list& biases,
                 const std::string& activation, py::handle noise_obj, py::handle obs_obj,
                 py::handle actions_obj, py::handle rewards_obj, py::handle term_obj,
                 py::handle trunc_obj, py::handle final_obs_obj, py::object std_obj, py::object low_obj,
                 py::object high_obj, py::object env_actions_obj, py::object obs_mean_obj,
                 py::object obs_inv_std_obj,
                 double obs_clip, int64_t num_threads) {
  const int threads = thread_request(num_threads, 1, "num_threads");
  RolloutEnv* core = nullptr;
  if (py::isinstance<RolloutEnv>(step_into)) {
    core = step_into.cast<RolloutEnv*>();
  } else if (!PyCallable_Check(step_into.ptr())) {
    type_error("step_into must be callable or a native env core (pgfast._C.RolloutEnv)");
  }
  std::vector<py::array> keep;
  const Mlp m = actor_mlp(weights, biases, activation, keep);
  py::array noise = as_array(noise_obj, "noise");
  if (noise.ndim() != 3) value_error("noise must be [T, N, out_dim], got " + shape_str(noise));
  const py::ssize_t T = noise.shape(0), N = noise.shape(1);
  const py::ssize_t K = m.dims[m.num_layers], D0 = m.dims[0];
  if (T < 1 || N < 1) value_error("noise must have T >= 1 and N >= 1");
  noise = checked_in(noise, "noise", {T, N, K});
  require_dtype<float>(noise, "noise", "float32");
  py::array obs = checked_out_as<float>(obs_obj, "obs", {T + 1, N, D0});
  py::array rew = checked_out_as<float>(rewards_obj, "rewards", {T, N});
  py::array term = checked_out_as<bool>(term_obj, "terminated", {T, N});
  py::array trunc = checked_out_as<bool>(trunc_obj, "truncated", {T, N});
  py::array fin = checked_out_as<float>(final_obs_obj, "final_obs", {T, N, D0});
  const bool continuous = !std_obj.is_none();
  py::array actions, std_a, low, high, env_act;
  if (continuous) {
    actions = checked_out_as<float>(actions_obj, "actions", {T, N, K});
    std_a = checked_in(std_obj, "std", {K});
    require_dtype<float>(std_a, "std", "float32");
    low = checked_in(low_obj, "low", {K});
    require_dtype<float>(low, "low", "float32");
    high = checked_in(high_obj, "high", {K});
    require_dtype<float>(high, "high", "float32");
    env_act = checked_out_as<float>(env_actions_obj, "env_actions", {N, K});
  } else {
    actions = checked_out_as<int64_t>(actions_obj, "actions", {T, N});
  }
  require_disjoint({{&obs, "obs"}, {&actions, "actions"}, {&rew, "rewards"},
                    {&term, "terminated"}, {&trunc, "truncated"}, {&fin, "final_obs"}});

  py::array core_fin, core_mask;
  if (core != nullptr) {
    if (core->num_envs() != int64_t(N) || core->obs_dim() != int(D0) ||
        core->discrete() == continuous) {
      value_error("the env core does not match the rollout (num_envs, obs_dim or action kind)");
    }
    // the core's own final_obs / final_mask buffers (same_step mode)
    core_fin = checked_in(core->final_obs(), "the core's final_obs", {N, D0});
    float_dtype(core_fin, "the core's final_obs");  // float32 or float64
    core_mask = checked_in(core->final_mask(), "the core's final_mask", {N});
    require_dtype<bool>(core_mask, "the core's final_mask", "bool");
    require_disjoint({{&obs, "obs"}, {&rew, "rewards"}, {&term, "terminated"},
                      {&trunc, "truncated"}, {&core_fin, "the core's final_obs"},
                      {&core_mask, "the core's final_mask"}},
                     {{&actions, "actions"}});
    if (continuous) {
      require_disjoint({{&env_act, "env_actions"}}, {{&core_fin, "the core's final_obs"},
                                                     {&obs, "obs"}});
    }
  }
  // observation normalisation for the forward: clip((obs - mean) * inv_std, -clip, clip)
  py::array obs_mean, obs_inv_std;
  const bool norm = !obs_mean_obj.is_none();
  if (norm != !obs_inv_std_obj.is_none()) value_error("give obs_mean and obs_inv_std together");
  if (norm) {
    obs_mean = checked_in(obs_mean_obj, "obs_mean", {D0});
    require_dtype<float>(obs_mean, "obs_mean", "float32");
    obs_inv_std = checked_in(obs_inv_std_obj, "obs_inv_std", {D0});
    require_dtype<float>(obs_inv_std, "obs_inv_std", "float32");
    if (!(obs_clip > 0.0)) value_error("obs_clip must be > 0");
  }
  const float clip_f = float(obs_clip);
  std::vector<float> normed(norm ? size_t(N * D0) : 0);
  const float* noise_p = cptr<float>(noise);
  float* obs_p = mptr<float>(obs);
  float* fin_p = mptr<float>(fin);
  const bool* trunc_p = cptr<bool>(trunc);
  std::vector<float> scratch(size_t(mlp::scratch_size(m, N)));
  std::vector<float> out(size_t(N * K));
  bool trunc_any = false;
  for (int64_t t = 0; t < T; ++t) {
    {
      py::gil_scoped_release nogil;
      const float* x = obs_p + t * N * D0;
      if (norm) {  // the same float32 operations as RunningMeanStd.normalize
        const float* mu = cptr<float>(obs_mean);
        const float* is = cptr<float>(obs_inv_std);
        for (int64_t i = 0; i < N; ++i) {
          for (int64_t j = 0; j < D0; ++j) {
            const float z = (x[i * D0 + j] - mu[j]) * is[j];
            normed[size_t(i * D0 + j)] = std::min(std::max(z, -clip_f), clip_f);
          }
        }
        x = normed.data();
      }
      {
        dense::ThreadScope scope(threads);  // the forward's products (csrc/dense.hpp)
        mlp::forward_into(m, x, N, out.data(), scratch.data());
      }
      if (continuous) {
        rollout::sample_gaussian(out.data(), cptr<float>(std_a), noise_p + t * N * K, N, int(K),
                                 cptr<float>(low), cptr<float>(high),
                                 mptr<float>(actions) + t * N * K, mptr<float>(env_act));
      } else {
        rollout::sample_categorical(out.data(), noise_p + t * N * K, N, int(K),
                                    mptr<int64_t>(actions) + t * N);
      }
    }
    py::object info;
    if (core != nullptr) {  // no Python: the rows' pointers straight to the core
      const void* a_t = continuous ? static_cast<const void*>(cptr<float>(env_act))
                                   : static_cast<const void*>(cptr<int64_t>(actions) + t * N);
      core->step_raw(a_t, obs_p + (t + 1) * N * D0, mptr<float>(rew) + t * N,
                     mptr<bool>(term) + t * N, mptr<bool>(trunc) + t * N);
    } else {
      py::object act_t = continuous ? py::object(env_act) : py::object(row(actions, t));
      info = step_into(act_t, row(obs, t + 1), row(rew, t), row(term, t), row(trunc, t));
    }
    const bool* tr = trunc_p + t * N;
    bool any = false;
    for (int64_t i = 0; i < N; ++i) any = any || tr[i];
    if (!any) continue;
    if (core != nullptr) {  // the core's own buffers (same_step mode)
      const bool* mask = cptr<bool>(core_mask);
      dispatch<float, double>(float_dtype(core_fin, "final_obs"), [&](auto ft) {
        using F = typename decltype(ft)::type;
        const F* src = cptr<F>(core_fin);
        for (int64_t i = 0; i < N; ++i) {
          if (!(tr[i] && mask[i])) continue;
          float* dst = fin_p + (t * N + i) * D0;
          for (int64_t j = 0; j < D0; ++j) dst[j] = float(src[i * D0 + j]);
          trunc_any = true;
        }
      });
      continue;
    }
    // the last observations of the truncated episodes: info["final_obs"] [N, obs_dim]
    // float32, valid where info["_final_obs"] [N] bool (same_step autoreset)
    if (!py::isinstance<py::dict>(info) || !info.contains("final_obs") ||
        !info.contains("_final_obs")) {
      throw std::runtime_error("env reported a truncation without info['final_obs'] "
                               "(is it in same_step autoreset mode?)");
    }
    const py::array env_fin = checked_in(info["final_obs"], "info['final_obs']", {N, D0});
    const DType fin_dtype = float_dtype(env_fin, "info['final_obs']");  // float32 or float64
    const py::array env_mask = checked_in(info["_final_obs"], "info['_final_obs']", {N});
    require_dtype<bool>(env_mask, "info['_final_obs']", "bool");
    const bool* env_mask_p = cptr<bool>(env_mask);
    dispatch<float, double>(fin_dtype, [&](auto ft) {
      using F = typename decltype(ft)::type;
      const F* env_fin_p = cptr<F>(env_fin);
      for (int64_t i = 0; i < N; ++i) {
        if (tr[i] && env_mask_p[i]) {
          float* dst = fin_p + (t * N + i) * D0;
          for (int64_t j = 0; j < D0; ++j) dst[j] = float(env_fin_p[i * D0 + j]);
          trunc_any = true;
        }
      }
    });
  }
  return trunc_any;
}

}  // namespace

void bind_rollout(py::module_& m) {
  m.def("policy_forward", &policy_forward, py::arg("weights"), py::arg("biases"),
        py::arg("activation"), py::arg("obs"),
        "The actor MLP of pgfast.nn.ActorCritic (weights[i] float32 [d_in, d_out], biases[i] "
        "[d_out]) on obs float32 [B, obs_dim]: "
        "float32 [B, out_dim], the native rollout's forward.");
  m.def("rollout_mlp", &rollout_mlp, py::kw_only(), py::arg("step_into"), py::arg("weights"),
        py::arg("biases"), py::arg("activation"), py::arg("noise"), py::arg("obs"),
        py::arg("actions"), py::arg("rewards"), py::arg("terminated"), py::arg("truncated"),
        py::arg("final_obs"),
        py::arg("std") = py::none(), py::arg("low") = py::none(), py::arg("high") = py::none(),
        py::arg("env_actions") = py::none(), py::arg("obs_mean") = py::none(),
        py::arg("obs_inv_std") = py::none(), py::arg("obs_clip") = 10.0, py::arg("num_threads") = 1,
        "T-step rollout of the actor MLP in a native env (same_step autoreset): for t < T, "
        "actions[t] from obs[t] and noise[t] (Gumbel-max, or mean + std * noise for Box, "
        "clipped to [low, high] into env_actions for the env), then "
        "info = step_into(actions, obs[t + 1], rewards[t], terminated[t], truncated[t]); where "
        "truncated, info['final_obs'] (float32 [N, obs_dim], valid where info['_final_obs']) "
        "goes to final_obs[t]. step_into may instead be a native env's core (pgfast._C.RolloutEnv: ClassicVecEnv or MujocoVecEnv, "
        "same_step mode), stepped from C++ without Python (final observations from its own "
        "buffers). With obs_mean and obs_inv_std (float32 [obs_dim]) the "
        "policy sees clip((obs - obs_mean) * obs_inv_std, -obs_clip, obs_clip) (obs itself is "
        "stored raw). num_threads: threads of the forward's products (csrc/dense.hpp; the same "
        "actions for any count); the env steps on its own threads. Returns True if any step truncated.");
}

}  // namespace bindings
}  // namespace pgfast
