// pgfast._C's fused PPO update (csrc/ppo_update.hpp): one epoch of minibatch
// steps of pgfast.nn.ActorCritic (actor and critic, each its own list of layers), reading
// and writing the torch parameters and Adam moments in place (as numpy views), with the GIL
// released; and policy_evaluate, the forward that update takes.
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
#include "bindings/net_args.hpp"
#include "ppo_update.hpp"

namespace pgfast {
namespace bindings {
namespace {

using update::ActorCritic;

// A float32 C-contiguous writeable array of exactly `shape`.
py::array float_out(const py::handle& obj, const std::string& name,
                    const std::vector<py::ssize_t>& shape) {
  return checked_out_as<float>(obj, name.c_str(), shape);
}

py::array float_in(const py::handle& obj, const char* name, const std::vector<py::ssize_t>& shape) {
  py::array a = checked_in(obj, name, shape);
  require_dtype<float>(a, name, "float32");
  return a;
}

void finite(const char* name, double x) {
  if (!std::isfinite(x)) value_error(std::string(name) + " must be finite");
}

// The actor (with log_std) and the critic (one output column) of pgfast.nn.ActorCritic; with
// exp_avg / exp_avg_sq (an update) written in place with the one Adam over both (the actor's
// tensors weights..., biases..., log_std, then the critic's weights..., biases...), without
// them only read. Every array is in `keep`.
struct Nets {
  ActorCritic net;
  update::Adam adam;
  std::vector<py::array> keep;
};

void parse_nets(Nets& n, const py::list& actor_weights, const py::list& actor_biases,
                const py::list& critic_weights, const py::list& critic_biases,
                const py::object& log_std, const std::string& activation,
                const py::object& exp_avg, const py::object& exp_avg_sq) {
  const bool with_adam = !exp_avg.is_none();  // an update (written), else read only
  pg::Net actor = adam_net(actor_weights, actor_biases, log_std, activation, "actor_", 0, exp_avg,
                           exp_avg_sq, 0, n.keep, with_adam);
  pg::Net critic = adam_net(critic_weights, critic_biases, py::none(), activation, "critic_", 1,
                            exp_avg, exp_avg_sq, size_t(actor.opt.count), n.keep, with_adam);
  if (critic.net.dims[0] != actor.net.dims[0]) {
    value_error("actor_weights[0] and critic_weights[0] must have the same d_in (obs_dim)");
  }
  if (with_adam) {
    require_moments(exp_avg, exp_avg_sq, size_t(actor.opt.count + critic.opt.count));
    require_separate(n.keep);
  }
  n.net.actor = actor.net;
  n.net.critic = critic.net;
  n.net.log_std = actor.log_std;
  adam::Tensors& t = n.adam.t;
  for (const pg::Net* net : {&actor, &critic}) {
    for (int q = 0; q < net->opt.count; ++q, ++t.count) {
      t.p[t.count] = net->opt.p[q];
      t.m[t.count] = net->opt.m[q];
      t.v[t.count] = net->opt.v[q];
      t.size[t.count] = net->opt.size[q];
    }
  }
}

// The batch of ppo_epoch (obs [B, obs_dim], actions, logp_old, v_old, adv, ret [B]); the arrays
// are appended to `arrays`.
update::Batch ppo_batch(const update::ActorCritic& net, py::handle obs_obj, py::handle actions_obj,
                        py::handle logp_old_obj, py::handle v_old_obj, py::handle adv_obj,
                        py::handle ret_obj, std::vector<py::array>& arrays) {
  py::array obs = as_array(obs_obj, "obs");
  if (obs.ndim() != 2) value_error("obs must be [B, obs_dim], got " + shape_str(obs));
  const py::ssize_t B = obs.shape(0), K = net.actor.out_dim();
  if (B < 1) value_error("the batch must hold at least one row");
  update::Batch batch;
  batch.size = B;
  arrays.push_back(float_in(obs, "obs", {B, py::ssize_t(net.actor.dims[0])}));
  batch.obs = cptr<float>(arrays.back());
  if (net.log_std != nullptr) {
    arrays.push_back(float_in(actions_obj, "actions", {B, K}));
    batch.act_box = cptr<float>(arrays.back());
  } else {
    arrays.push_back(checked_in(actions_obj, "actions", {B}));
    require_dtype<int64_t>(arrays.back(), "actions", "int64");
    batch.act_discrete = cptr<int64_t>(arrays.back());
  }
  const float** dst[4] = {&batch.logp_old, &batch.v_old, &batch.adv, &batch.ret};
  const char* names[4] = {"logp_old", "v_old", "adv", "ret"};
  py::handle objs[4] = {logp_old_obj, v_old_obj, adv_obj, ret_obj};
  for (int k = 0; k < 4; ++k) {
    arrays.push_back(float_in(objs[k], names[k], {B}));
    *dst[k] = cptr<float>(arrays.back());
  }
  return batch;
}

// perm None, int64 [B] (epochs 1) or [epochs, B] (checked_perm); the array goes to `arrays`.
const int64_t* ppo_perm(const py::object& perm_obj, py::ssize_t B, int64_t epochs,
                        std::vector<py::array>& arrays) {
  py::array p = checked_perm(perm_obj, B, epochs);
  if (p.size() == 0) return nullptr;
  arrays.push_back(p);
  return cptr<int64_t>(p);
}

update::Settings ppo_settings(double clip_coef, double ent_coef, double vf_coef,
                              double max_grad_norm, bool clip_vloss, bool norm_adv) {
  for (auto [name, x] : {std::pair<const char*, double>{"clip_coef", clip_coef},
                         {"ent_coef", ent_coef}, {"vf_coef", vf_coef},
                         {"max_grad_norm", max_grad_norm}}) {
    finite(name, x);
  }
  if (!(clip_coef > 0.0)) value_error("clip_coef must be > 0");
  update::Settings s;
  s.clip_coef = float(clip_coef);
  s.ent_coef = float(ent_coef);
  s.vf_coef = float(vf_coef);
  s.max_grad_norm = float(max_grad_norm);
  s.clip_vloss = clip_vloss;
  s.norm_adv = norm_adv;
  return s;
}

py::tuple ppo_epoch(const py::list& actor_weights, const py::list& actor_biases,
                    const py::list& critic_weights, const py::list& critic_biases,
                    py::object log_std, const py::list& exp_avg, const py::list& exp_avg_sq,
                    int64_t step, double lr, double beta1, double beta2, double eps,
                    py::handle obs, py::handle actions, py::handle logp_old, py::handle v_old,
                    py::handle adv, py::handle ret, py::object perm_obj, int64_t minibatch_size,
                    double clip_coef, double ent_coef, double vf_coef, double max_grad_norm,
                    bool clip_vloss, bool norm_adv, const std::string& activation,
                    py::handle logp_last_obj, int64_t epochs,
                    int64_t num_threads) {
  Nets n;
  parse_nets(n, actor_weights, actor_biases, critic_weights, critic_biases, log_std, activation,
             exp_avg, exp_avg_sq);
  n.adam.hyper = adam_hyper(step, lr, py::make_tuple(beta1, beta2), eps);
  std::vector<py::array> batch_arrays;
  const update::Batch batch = ppo_batch(n.net, obs, actions, logp_old, v_old, adv, ret,
                                        batch_arrays);
  const py::ssize_t B = batch.size;
  if (epochs < 1) value_error("epochs must be >= 1");
  const int64_t* perm = ppo_perm(perm_obj, B, epochs, batch_arrays);
  if (minibatch_size < 1) value_error("minibatch_size must be >= 1");
  const int64_t n_mb = (B + minibatch_size - 1) / minibatch_size;
  const int64_t last_n = B - minibatch_size * (n_mb - 1);
  py::array logp_last = float_out(logp_last_obj, "logp_last", {py::ssize_t(last_n)});
  require_apart(n.keep, {&logp_last});
  for (const py::array& a : batch_arrays) {
    require_apart(n.keep, {&a});
    if (may_overlap(logp_last, a)) value_error("logp_last must not share memory with the batch");
  }
  update::Settings s = ppo_settings(clip_coef, ent_coef, vf_coef, max_grad_norm, clip_vloss,
                                    norm_adv);
  s.num_threads = thread_request(num_threads, 1, "num_threads");
  update::Stats st;
  float* lpl = mptr<float>(logp_last);
  try {
    py::gil_scoped_release nogil;
    for (int64_t e = 0; e < epochs; ++e) {
      const update::Stats one = update::ppo_epoch(n.net, n.adam, batch,
                                                  perm != nullptr ? perm + e * B : nullptr,
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

void policy_evaluate(const py::list& actor_weights, const py::list& actor_biases,
                     const py::list& critic_weights, const py::list& critic_biases,
                     py::object log_std, const std::string& activation, py::handle obs_obj,
                     py::object actions_obj, py::handle values_obj, py::object logp_obj,
                     int64_t num_threads) {
  const int threads = thread_request(num_threads, 1, "num_threads");
  Nets n;
  parse_nets(n, actor_weights, actor_biases, critic_weights, critic_biases, log_std, activation,
             py::none(), py::none());
  const py::ssize_t K = n.net.actor.out_dim(), D0 = n.net.actor.dims[0];
  const bool gaussian = n.net.log_std != nullptr;
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
  for (const py::array& k : n.keep) {
    if (may_overlap(k, values) || (logp_p != nullptr && may_overlap(k, logp))) {
      value_error("values and logp must not share memory with the parameters");
    }
  }
  const float* obs_p = cptr<float>(obs);
  float* values_p = mptr<float>(values);
  try {
    py::gil_scoped_release nogil;
    update::evaluate(n.net, obs_p, B, a_disc, a_box, logp_p, values_p, threads);
  } catch (const std::invalid_argument& e) {
    value_error(e.what());
  }
}

}  // namespace

void bind_update(py::module_& m) {
  bind_mlp_limits(m);
  m.def("policy_evaluate", &policy_evaluate, py::kw_only(), py::arg("actor_weights"),
        py::arg("actor_biases"), py::arg("critic_weights"), py::arg("critic_biases"),
        py::arg("log_std"), py::arg("activation"), py::arg("obs"), py::arg("actions"),
        py::arg("values"), py::arg("logp"), py::arg("num_threads") = 1,
        "Values (the critic) and, if logp is not None, log-probs of actions (int64 [B] / float32 "
        "[B, D]) of pgfast.nn.ActorCritic (each network: weights[i] float32 [d_in, d_out], "
        "biases[i] [d_out]; the critic ends in one column) on obs float32 [B, obs_dim] "
        "(normalised), written to values / logp float32 [B]; row for row the forward "
        "ppo_epoch uses, on num_threads threads (the same values for any count). Keyword-only "
        "arguments.");
  m.def("ppo_epoch", &ppo_epoch, py::kw_only(), py::arg("actor_weights"), py::arg("actor_biases"),
        py::arg("critic_weights"), py::arg("critic_biases"), py::arg("log_std"),
        py::arg("exp_avg"), py::arg("exp_avg_sq"), py::arg("step"), py::arg("lr"),
        py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("obs"), py::arg("actions"),
        py::arg("logp_old"), py::arg("v_old"), py::arg("adv"), py::arg("ret"), py::arg("perm"),
        py::arg("minibatch_size"), py::arg("clip_coef"), py::arg("ent_coef"),
        py::arg("vf_coef"), py::arg("max_grad_norm"), py::arg("clip_vloss"),
        py::arg("norm_adv"), py::arg("activation"), py::arg("logp_last"), py::arg("epochs") = 1,
        py::arg("num_threads") = 1,
        "One epoch of PPO-clip minibatch steps of pgfast.nn.ActorCritic in place (keyword-only "
        "arguments: clip_coef, ent_coef and vf_coef cannot be swapped by position): the actor's "
        "and the critic's layers (weights[i] float32 [d_in, d_out], biases[i] [d_out]; the "
        "critic ends in one column), log_std [D] or None (categorical), one Adam's moments "
        "exp_avg/exp_avg_sq in the order actor weights..., biases..., log_std, critic "
        "weights..., biases..., after `step` steps. Minibatches are rows "
        "perm[s:s + minibatch_size] (perm None: in order), "
        "for `epochs` epochs in a row (perm then [epochs, B], one row per epoch; the stats are "
        "the last epoch's, the minibatch count the total), "
        "obs float32 [B, obs_dim] (normalised), actions int64 [B] / float32 [B, D], logp_old, "
        "v_old, adv, ret float32 [B]. Writes the last minibatch's log-probs (before its step) "
        "to logp_last and returns (pg_loss, v_loss, entropy, minibatches) of that minibatch. "
        "The products split across num_threads threads; results are the same for any count.");
}

}  // namespace bindings
}  // namespace pgfast
