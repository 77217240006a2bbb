// pgfast._C's fused PPO update (csrc/ppo_update.hpp): one epoch of minibatch
// steps of pgfast.nn.ActorCritic, reading and writing the torch parameters and
// Adam moments in place (as numpy views), with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/checks.hpp"
#include "bindings/mlp_args.hpp"
#include "ppo_update.hpp"

namespace pgfast {
namespace bindings {
namespace {

using update::ActorCritic;

std::string idx(const char* name, size_t i) { return std::string(name) + "[" + std::to_string(i) + "]"; }

// A float32 C-contiguous writeable array of exactly `shape`.
py::array float_out(const py::handle& obj, const std::string& name,
                    const std::vector<py::ssize_t>& shape) {
  py::array a = checked_out(obj, name.c_str(), shape);
  require_dtype<float>(a, name.c_str(), "float32");
  return a;
}

py::array float_in(const py::handle& obj, const char* name, const std::vector<py::ssize_t>& shape) {
  py::array a = checked_in(obj, name, shape);
  require_dtype<float>(a, name, "float32");
  return a;
}

void finite(const char* name, double x) {
  if (!std::isfinite(x)) value_error(std::string(name) + " must be finite");
}

// The network's shape (csrc/bindings/mlp_args.hpp); pointers are set by the caller.
ActorCritic layer_dims(const py::list& weights, const py::list& biases,
                       const std::string& activation) {
  const mlp::Mlp m = stacked_shape(weights, biases, activation);
  ActorCritic net;
  net.num_layers = m.num_layers;
  net.act = m.act;
  for (int i = 0; i <= m.num_layers; ++i) net.dims[i] = m.dims[i];
  return net;
}

py::tuple ppo_epoch(const py::list& weights, const py::list& biases, py::object log_std_obj,
                    const py::list& exp_avg, const py::list& exp_avg_sq, int64_t step, double lr,
                    double beta1, double beta2, double eps, py::handle obs_obj,
                    py::handle actions_obj, py::handle logp_old_obj, py::handle v_old_obj,
                    py::handle adv_obj, py::handle ret_obj, py::object perm_obj,
                    int64_t minibatch_size, double clip_coef, double ent_coef, double vf_coef,
                    double max_grad_norm, bool clip_vloss, bool norm_adv,
                    const std::string& activation, py::handle logp_last_obj, int64_t epochs,
                    int64_t num_threads) {
  ActorCritic net = layer_dims(weights, biases, activation);
  const size_t L = size_t(net.num_layers);
  std::vector<py::array> keep;
  const bool gaussian = !log_std_obj.is_none();
  const size_t P = 2 * L + (gaussian ? 1 : 0);
  if (exp_avg.size() != P || exp_avg_sq.size() != P) {
    value_error("exp_avg and exp_avg_sq must hold one array per parameter (" + std::to_string(P) +
                "), got " + std::to_string(exp_avg.size()) + " and " +
                std::to_string(exp_avg_sq.size()));
  }
  keep.reserve(4 * P + 8);
  std::vector<std::vector<py::ssize_t>> shapes;
  for (size_t i = 0; i < L; ++i) {
    shapes.push_back({2, py::ssize_t(net.dims[i]), py::ssize_t(net.dims[i + 1])});
  }
  for (size_t i = 0; i < L; ++i) shapes.push_back({2, 1, py::ssize_t(net.dims[i + 1])});
  const py::ssize_t K = net.dims[L], D0 = net.dims[0];
  if (gaussian) shapes.push_back({K});
  update::Adam adam;
  float* params[2 * update::kMaxLayers + 1];
  for (size_t q = 0; q < P; ++q) {
    py::handle src = q < L ? py::handle(weights[q]) : q < 2 * L ? py::handle(biases[q - L])
                                                                : py::handle(log_std_obj);
    const std::string pname = q < L ? idx("weights", q) : q < 2 * L ? idx("biases", q - L)
                                                                    : std::string("log_std");
    keep.push_back(float_out(src, pname, shapes[q]));
    params[q] = mptr<float>(keep.back());
    keep.push_back(float_out(exp_avg[q], idx("exp_avg", q), shapes[q]));
    adam.m[q] = mptr<float>(keep.back());
    keep.push_back(float_out(exp_avg_sq[q], idx("exp_avg_sq", q), shapes[q]));
    adam.v[q] = mptr<float>(keep.back());
  }
  for (size_t a = 0; a < keep.size(); ++a) {  // nothing written may alias anything else written
    for (size_t b = a + 1; b < keep.size(); ++b) {
      if (may_overlap(keep[a], keep[b])) {
        value_error("parameters and Adam moments must be separate arrays (two of them share "
                    "memory)");
      }
    }
  }
  for (size_t i = 0; i < L; ++i) {
    net.w[i] = params[i];
    net.b[i] = params[L + i];
  }
  if (gaussian) net.log_std = params[2 * L];
  if (step < 0) value_error("step must be >= 0");
  finite("lr", lr);
  finite("eps", eps);
  if (!(lr >= 0.0)) value_error("lr must be >= 0");
  if (!(beta1 >= 0.0 && beta1 < 1.0) || !(beta2 >= 0.0 && beta2 < 1.0)) {
    value_error("beta1 and beta2 must be in [0, 1)");
  }
  if (!(eps > 0.0)) value_error("eps must be > 0");
  adam.step = step;
  adam.lr = lr;
  adam.beta1 = beta1;
  adam.beta2 = beta2;
  adam.eps = eps;

  py::array obs = as_array(obs_obj, "obs");
  if (obs.ndim() != 2) value_error("obs must be [B, obs_dim], got " + shape_str(obs));
  const py::ssize_t B = obs.shape(0);
  if (B < 1) value_error("the batch must hold at least one row");
  obs = float_in(obs, "obs", {B, D0});
  update::Batch batch;
  batch.size = B;
  batch.obs = cptr<float>(obs);
  py::array act;
  if (gaussian) {
    act = float_in(actions_obj, "actions", {B, K});
    batch.act_box = cptr<float>(act);
  } else {
    act = checked_in(actions_obj, "actions", {B});
    require_dtype<int64_t>(act, "actions", "int64");
    batch.act_discrete = cptr<int64_t>(act);
  }
  py::array lp0 = float_in(logp_old_obj, "logp_old", {B});
  py::array v0 = float_in(v_old_obj, "v_old", {B});
  py::array adv = float_in(adv_obj, "adv", {B});
  py::array ret = float_in(ret_obj, "ret", {B});
  batch.logp_old = cptr<float>(lp0);
  batch.v_old = cptr<float>(v0);
  batch.adv = cptr<float>(adv);
  batch.ret = cptr<float>(ret);
  if (epochs < 1) value_error("epochs must be >= 1");
  const int64_t* perm = nullptr;
  py::array perm_a;
  if (!perm_obj.is_none()) {
    perm_a = as_array(perm_obj, "perm");
    if (perm_a.ndim() == 1) {
      if (epochs != 1) value_error("perm must be [epochs, B] for epochs > 1");
      perm_a = checked_in(perm_a, "perm", {B});
    } else {
      perm_a = checked_in(perm_a, "perm", {py::ssize_t(epochs), B});
    }
    require_dtype<int64_t>(perm_a, "perm", "int64");
    perm = cptr<int64_t>(perm_a);
  }
  if (minibatch_size < 1) value_error("minibatch_size must be >= 1");
  const int64_t n_mb = (B + minibatch_size - 1) / minibatch_size;
  const int64_t last_n = B - minibatch_size * (n_mb - 1);
  py::array logp_last = float_out(logp_last_obj, "logp_last", {py::ssize_t(last_n)});
  for (const py::array* a : {&obs, &act, &lp0, &v0, &adv, &ret, &logp_last}) {
    for (const py::array& w : keep) {
      if (may_overlap(w, *a)) value_error("batch arrays must not share memory with the parameters");
    }
  }
  for (const py::array* a : {&obs, &act, &lp0, &v0, &adv, &ret}) {
    if (may_overlap(logp_last, *a)) value_error("logp_last must not share memory with the batch");
  }
  update::Settings s;
  for (auto [name, x] : {std::pair<const char*, double>{"clip_coef", clip_coef},
                         {"ent_coef", ent_coef}, {"vf_coef", vf_coef},
                         {"max_grad_norm", max_grad_norm}}) {
    finite(name, x);
  }
  if (!(clip_coef > 0.0)) value_error("clip_coef must be > 0");
  s.clip_coef = float(clip_coef);
  s.ent_coef = float(ent_coef);
  s.vf_coef = float(vf_coef);
  s.max_grad_norm = float(max_grad_norm);
  s.clip_vloss = clip_vloss;
  s.norm_adv = norm_adv;
  s.num_threads = thread_request(num_threads, 1, "num_threads");
  update::Stats st;
  float* lpl = mptr<float>(logp_last);
  try {
    py::gil_scoped_release nogil;
    for (int64_t e = 0; e < epochs; ++e) {
      const update::Stats one = update::ppo_epoch(net, adam, batch, perm != nullptr ? perm + e * B : nullptr,
                                                  minibatch_size, s, lpl);
      st.pg_loss = one.pg_loss;
      st.v_loss = one.v_loss;
      st.entropy = one.entropy;
      st.minibatches += one.minibatches;
    }
  } catch (const std::invalid_argument& e) {
    value_error(e.what());
  }
  return py::make_tuple(st.pg_loss, st.v_loss, st.entropy, st.minibatches);
}

void policy_evaluate(const py::list& weights, const py::list& biases, py::object log_std_obj,
                     const std::string& activation, py::handle obs_obj, py::object actions_obj,
                     py::handle values_obj, py::object logp_obj, int64_t num_threads) {
  const int threads = thread_request(num_threads, 1, "num_threads");
  ActorCritic net = layer_dims(weights, biases, activation);
  const size_t L = size_t(net.num_layers);
  std::vector<py::array> keep;
  for (size_t i = 0; i < L; ++i) {
    const py::ssize_t din = net.dims[i], dout = net.dims[i + 1];
    keep.push_back(float_in(weights[i], "weights[i]", {2, din, dout}));
    net.w[i] = const_cast<float*>(cptr<float>(keep.back()));  // read only
    keep.push_back(float_in(biases[i], "biases[i]", {2, 1, dout}));
    net.b[i] = const_cast<float*>(cptr<float>(keep.back()));
  }
  const py::ssize_t K = net.dims[L], D0 = net.dims[0];
  const bool gaussian = !log_std_obj.is_none();
  if (gaussian) {
    keep.push_back(float_in(log_std_obj, "log_std", {K}));
    net.log_std = const_cast<float*>(cptr<float>(keep.back()));
  }
  py::array obs = as_array(obs_obj, "obs");
  if (obs.ndim() != 2) value_error("obs must be [B, obs_dim], got " + shape_str(obs));
  const py::ssize_t B = obs.shape(0);
  obs = float_in(obs, "obs", {B, D0});
  py::array values = float_out(values_obj, "values", {B});
  const int64_t* a_disc = nullptr;
  const float* a_box = nullptr;
  float* logp_p = nullptr;
  py::array act, logp;
  if (!logp_obj.is_none()) {
    logp = float_out(logp_obj, "logp", {B});
    if (gaussian) {
      act = float_in(actions_obj, "actions", {B, K});
      a_box = cptr<float>(act);
    } else {
      act = checked_in(actions_obj, "actions", {B});
      require_dtype<int64_t>(act, "actions", "int64");
      a_disc = cptr<int64_t>(act);
    }
    logp_p = mptr<float>(logp);
    require_disjoint({{&values, "values"}, {&logp, "logp"}}, {{&obs, "obs"}, {&act, "actions"}});
  } else {
    require_disjoint({{&values, "values"}}, {{&obs, "obs"}});
  }
  for (const py::array& k : keep) {
    if (may_overlap(k, values) || (logp_p != nullptr && may_overlap(k, logp))) {
      value_error("values and logp must not share memory with the parameters");
    }
  }
  const float* obs_p = cptr<float>(obs);
  float* values_p = mptr<float>(values);
  try {
    py::gil_scoped_release nogil;
    update::evaluate(net, obs_p, B, a_disc, a_box, logp_p, values_p, threads);
  } catch (const std::invalid_argument& e) {
    value_error(e.what());
  }
}

}  // namespace

void bind_update(py::module_& m) {
  bind_mlp_limits(m);
  m.def("policy_evaluate", &policy_evaluate, py::arg("weights"), py::arg("biases"),
        py::arg("log_std"), py::arg("activation"), py::arg("obs"), py::arg("actions"),
        py::arg("values"), py::arg("logp"), py::kw_only(), py::arg("num_threads") = 1,
        "Values (critic) and, if logp is not None, log-probs of actions (int64 [B] / float32 "
        "[B, D]) of pgfast.nn.ActorCritic's stacked layers on obs float32 [B, obs_dim] "
        "(normalised), written to values / logp float32 [B]; row for row the forward "
        "ppo_epoch uses, on num_threads threads (the same values for any count).");
  m.def("ppo_epoch", &ppo_epoch, py::kw_only(), py::arg("weights"), py::arg("biases"), py::arg("log_std"),
        py::arg("exp_avg"), py::arg("exp_avg_sq"), py::arg("step"), py::arg("lr"),
        py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("obs"), py::arg("actions"),
        py::arg("logp_old"), py::arg("v_old"), py::arg("adv"), py::arg("ret"), py::arg("perm"),
        py::arg("minibatch_size"), py::arg("clip_coef"), py::arg("ent_coef"),
        py::arg("vf_coef"), py::arg("max_grad_norm"), py::arg("clip_vloss"),
        py::arg("norm_adv"), py::arg("activation"), py::arg("logp_last"), py::arg("epochs") = 1,
        py::arg("num_threads") = 1,
        "One epoch of PPO-clip minibatch steps of pgfast.nn.ActorCritic in place (keyword-only "
        "arguments: clip_coef, ent_coef and vf_coef cannot be swapped by position): weights[i] "
        "float32 [2, d_in, d_out], biases[i] [2, 1, d_out], log_std [D] or None (categorical), "
        "Adam moments exp_avg/exp_avg_sq in the order weights..., biases..., log_std, after "
        "`step` steps. Minibatches are rows perm[s:s + minibatch_size] (perm None: in order), "
        "for `epochs` epochs in a row (perm then [epochs, B], one row per epoch; the stats are "
        "the last epoch's, the minibatch count the total), "
        "obs float32 [B, obs_dim] (normalised), actions int64 [B] / float32 [B, D], logp_old, "
        "v_old, adv, ret float32 [B]. Writes the last minibatch's log-probs (before its step) "
        "to logp_last and returns (pg_loss, v_loss, entropy, minibatches) of that minibatch. "
        "The products split across num_threads threads; results are the same for any count.");
}

}  // namespace bindings
}  // namespace pgfast
