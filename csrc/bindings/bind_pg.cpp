// pgfast._C's VPG step and value regression (csrc/pg_update.hpp) and TRPO's policy step
// (csrc/trpo_update.hpp) on one network of pgfast.nn.ActorCritic (weights[i] float32
// [d_in, d_out], biases[i] [d_out]: the actor's, or the critic's for value_fit), in place,
// with the GIL released. Keyword-only arguments.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/checks.hpp"
#include "bindings/net_args.hpp"
#include "pg_update.hpp"
#include "trpo_update.hpp"

namespace pgfast {
namespace bindings {
namespace {

// obs float32 [B, obs_dim] (B >= 1).
py::array batch_obs(const py::handle& obj, int d0) {
  py::array obs = as_array(obj, "obs");
  if (obs.ndim() != 2) value_error("obs must be [B, obs_dim], got " + shape_str(obs));
  const py::ssize_t B = obs.shape(0);
  if (B < 1) value_error("the batch must hold at least one row");
  return float_array(obs, "obs", {B, py::ssize_t(d0)}, false);
}

py::tuple value_fit(const py::list& weights, const py::list& biases,
                    const std::string& activation, const py::list& exp_avg,
                    const py::list& exp_avg_sq, int64_t step, double lr, const py::tuple& betas,
                    double eps, py::handle obs_obj, py::handle ret_obj, py::object perm_obj,
                    int64_t minibatch_size, int64_t epochs, double max_grad_norm,
                    int64_t norm_width, int64_t num_threads) {
  std::vector<py::array> written;
  pg::Net critic = adam_net(weights, biases, py::none(), activation, "", 1, exp_avg, exp_avg_sq,
                            0, written);
  require_moments(exp_avg, exp_avg_sq, size_t(critic.opt.count));
  require_separate(written);
  critic.hyper = adam_hyper(step, lr, betas, eps);
  py::array obs = batch_obs(obs_obj, critic.net.dims[0]);
  const py::ssize_t B = obs.shape(0);
  py::array ret = float_array(ret_obj, "ret", {B}, false);
  if (epochs < 1) value_error("epochs must be >= 1");
  if (minibatch_size < 1) value_error("minibatch_size must be >= 1");
  require_finite("max_grad_norm", max_grad_norm);
  py::array perm = checked_perm(perm_obj, B, epochs);
  require_apart(written, {&obs, &ret, &perm});
  pg::Batch batch;
  batch.size = B;
  batch.obs = cptr<float>(obs);
  batch.ret = cptr<float>(ret);
  pg::ValueSettings s;
  s.epochs = epochs;
  s.minibatch_size = minibatch_size;
  s.max_grad_norm = float(max_grad_norm);
  if (norm_width < 1 || norm_width > (int64_t(1) << 20)) value_error("norm_width must be in [1, 2^20]");
  s.norm_width = norm_width;
  s.num_threads = thread_request(num_threads, 1, "num_threads");
  const int64_t* pp = perm_obj.is_none() ? nullptr : cptr<int64_t>(perm);
  double loss = 0.0;
  try {
    py::gil_scoped_release nogil;
    loss = pg::value_fit(critic, batch, pp, s);
  } catch (const std::invalid_argument& e) {
    value_error(e.what());
  }
  return py::make_tuple(loss, critic.hyper.step);
}

py::tuple vpg_step(const py::list& weights, const py::list& biases, const py::object& log_std,
                   const std::string& activation, const py::list& exp_avg,
                   const py::list& exp_avg_sq, int64_t step, double lr, const py::tuple& betas,
                   double eps, py::handle obs_obj, py::handle actions_obj,
                   py::handle logp_old_obj, py::handle adv_obj, double ent_coef,
                   double max_grad_norm, int64_t num_threads) {
  std::vector<py::array> written;
  pg::Net actor = adam_net(weights, biases, log_std, activation, "", 0, exp_avg, exp_avg_sq, 0,
                           written);
  require_moments(exp_avg, exp_avg_sq, size_t(actor.opt.count));
  require_separate(written);
  actor.hyper = adam_hyper(step, lr, betas, eps);
  py::array obs = batch_obs(obs_obj, actor.net.dims[0]);
  const py::ssize_t B = obs.shape(0), K = actor.net.out_dim();
  pg::Batch batch;
  batch.size = B;
  batch.obs = cptr<float>(obs);
  py::array act;
  if (actor.log_std != nullptr) {
    act = float_array(actions_obj, "actions", {B, K}, false);
    batch.act_box = cptr<float>(act);
  } else {
    act = checked_in(actions_obj, "actions", {B});
    require_dtype<int64_t>(act, "actions", "int64");
    batch.act_discrete = cptr<int64_t>(act);
  }
  py::array lp0 = float_array(logp_old_obj, "logp_old", {B}, false);
  py::array adv = float_array(adv_obj, "adv", {B}, false);
  batch.logp_old = cptr<float>(lp0);
  batch.adv = cptr<float>(adv);
  require_apart(written, {&obs, &act, &lp0, &adv});
  require_finite("ent_coef", ent_coef);
  require_finite("max_grad_norm", max_grad_norm);
  pg::PgSettings s;
  s.ent_coef = float(ent_coef);
  s.max_grad_norm = float(max_grad_norm);
  s.num_threads = thread_request(num_threads, 1, "num_threads");
  pg::PgStats st;
  try {
    py::gil_scoped_release nogil;
    st = pg::vpg_step(actor, batch, s);
  } catch (const std::invalid_argument& e) {
    value_error(e.what());
  }
  return py::make_tuple(st.pg_loss, st.entropy, st.approx_kl, actor.hyper.step);
}

// The actor (its layers and log_std) and its batch for the TRPO calls; the arrays stay in keep.
struct TrpoArgs {
  pg::Net actor;
  pg::Batch batch;
  trpo::Settings s;
  std::vector<py::array> keep;
};

void trpo_args(TrpoArgs& t, const py::list& weights, const py::list& biases,
               const py::object& log_std, const std::string& activation, py::handle obs_obj,
               py::handle actions_obj, py::handle logp_old_obj, py::handle adv_obj,
               double ent_coef, double cg_damping, double fvp_subsample) {
  t.actor = adam_net(weights, biases, log_std, activation, "", 0, py::none(), py::none(), 0, t.keep);
  require_separate(t.keep);
  const size_t written = t.keep.size();
  py::array obs = batch_obs(obs_obj, t.actor.net.dims[0]);
  const py::ssize_t B = obs.shape(0), K = t.actor.net.out_dim();
  t.batch.size = B;
  t.batch.obs = cptr<float>(obs);
  py::array act;
  if (t.actor.log_std != nullptr) {
    act = float_array(actions_obj, "actions", {B, K}, false);
    t.batch.act_box = cptr<float>(act);
  } else {
    act = checked_in(actions_obj, "actions", {B});
    require_dtype<int64_t>(act, "actions", "int64");
    t.batch.act_discrete = cptr<int64_t>(act);
  }
  py::array lp0 = float_array(logp_old_obj, "logp_old", {B}, false);
  py::array adv = float_array(adv_obj, "adv", {B}, false);
  t.batch.logp_old = cptr<float>(lp0);
  t.batch.adv = cptr<float>(adv);
  require_apart(std::vector<py::array>(t.keep.begin(), t.keep.begin() + written),
                {&obs, &act, &lp0, &adv});
  for (py::array* a : {&obs, &act, &lp0, &adv}) t.keep.push_back(*a);
  require_finite("ent_coef", ent_coef);
  require_finite("cg_damping", cg_damping);
  if (!(cg_damping >= 0.0)) value_error("cg_damping must be >= 0");
  if (!(fvp_subsample > 0.0 && fvp_subsample <= 1.0)) {
    value_error("fvp_subsample must be in (0, 1]");
  }
  t.s.ent_coef = float(ent_coef);
  t.s.cg_damping = float(cg_damping);
  t.s.fvp_subsample = float(fvp_subsample);
}

py::tuple trpo_step(const py::list& weights, const py::list& biases, const py::object& log_std,
                    const std::string& activation, py::handle obs, py::handle actions,
                    py::handle logp_old, py::handle adv, double max_kl, int64_t cg_iters,
                    double cg_damping, int64_t backtrack_iters, double backtrack_coeff,
                    double ent_coef, double fvp_subsample, int64_t num_threads) {
  TrpoArgs t;
  trpo_args(t, weights, biases, log_std, activation, obs, actions, logp_old, adv, ent_coef,
            cg_damping, fvp_subsample);
  require_finite("max_kl", max_kl);
  if (!(max_kl > 0.0)) value_error("max_kl must be > 0");
  if (cg_iters < 1 || backtrack_iters < 1) value_error("cg_iters and backtrack_iters must be >= 1");
  if (!(backtrack_coeff > 0.0 && backtrack_coeff < 1.0)) {
    value_error("backtrack_coeff must be in (0, 1)");
  }
  t.s.max_kl = float(max_kl);
  t.s.cg_iters = int(std::min<int64_t>(cg_iters, 1 << 30));
  t.s.backtrack_iters = int(std::min<int64_t>(backtrack_iters, 1 << 30));
  t.s.backtrack_coeff = float(backtrack_coeff);
  t.s.num_threads = thread_request(num_threads, 1, "num_threads");
  trpo::Stats st;
  try {
    py::gil_scoped_release nogil;
    st = trpo::step(t.actor, t.batch, t.s);
  } catch (const std::invalid_argument& e) {
    value_error(e.what());
  }
  return py::make_tuple(st.surr0, st.kl, st.entropy, st.accepted, st.backtracks);
}

py::tuple trpo_grad_fvp(const py::list& weights, const py::list& biases,
                        const py::object& log_std, const std::string& activation,
                        py::handle obs, py::handle actions, py::handle logp_old, py::handle adv,
                        double ent_coef, double cg_damping, double fvp_subsample,
                        py::handle vectors_obj, int64_t num_threads,
                        const std::string& fvp_method) {
  TrpoArgs t;
  trpo_args(t, weights, biases, log_std, activation, obs, actions, logp_old, adv, ent_coef,
            cg_damping, fvp_subsample);
  t.s.num_threads = thread_request(num_threads, 1, "num_threads");
  if (fvp_method == "jvp") {
    t.s.fvp_method = trpo::FvpMethod::kJvp;
  } else if (fvp_method == "jacobian") {
    t.s.fvp_method = trpo::FvpMethod::kJacobian;
  } else if (fvp_method != "auto") {
    value_error("fvp_method must be 'auto', 'jvp' or 'jacobian', got '" + fvp_method + "'");
  }
  const py::ssize_t n = py::ssize_t(trpo::num_params(t.actor));
  py::array vs = as_array(vectors_obj, "vectors");
  if (vs.ndim() != 2) value_error("vectors must be [m, num_params], got " + shape_str(vs));
  const py::ssize_t m = vs.shape(0);
  vs = float_array(vs, "vectors", {m, n}, false);
  py::array_t<float> g(n), fvs({m, n});
  const float* vp = cptr<float>(vs);
  float* gp = g.mutable_data();
  float* fp = fvs.mutable_data();
  try {
    py::gil_scoped_release nogil;
    trpo::grad_and_fvp(t.actor, t.batch, t.s, gp, vp, m, fp);
  } catch (const std::invalid_argument& e) {
    value_error(e.what());
  }
  return py::make_tuple(g, fvs);
}

}  // namespace

void bind_pg(py::module_& m) {
  m.def("value_fit", &value_fit, py::kw_only(), py::arg("weights"), py::arg("biases"),
        py::arg("activation"), py::arg("exp_avg"), py::arg("exp_avg_sq"), py::arg("step"),
        py::arg("lr"), py::arg("betas"), py::arg("eps"), py::arg("obs"), py::arg("ret"),
        py::arg("perm"), py::arg("minibatch_size"), py::arg("epochs"),
        py::arg("max_grad_norm"), py::arg("norm_width") = 1, py::arg("num_threads") = 1,
        "Value regression of pgfast.nn.ActorCritic's critic in place (weights[i] float32 "
        "[d_in, d_out], biases[i] [d_out], one output column: the value): epochs x minibatches "
        "of 0.5 mean((V - ret)^2), one Adam step each (moments exp_avg/exp_avg_sq: the value "
        "optimiser's, weights..., biases..., after `step` steps). obs float32 [B, obs_dim] (normalised), ret float32 [B], perm int64 "
        "[epochs, B] or None (rows in order). The clip's norm (max_grad_norm > 0) reads the "
        "output layer's gradient as column 0 of norm_width columns (the actor's out_dim: the sum "
        "of the stacked layout of earlier releases, whose runs this repeats bit for bit). "
        "Returns (last minibatch's loss, new step). num_threads: threads of the products (the same "
        "results for any count).");
  m.def("vpg_step", &vpg_step, py::kw_only(), py::arg("weights"), py::arg("biases"),
        py::arg("log_std"), py::arg("activation"), py::arg("exp_avg"), py::arg("exp_avg_sq"),
        py::arg("step"), py::arg("lr"), py::arg("betas"), py::arg("eps"), py::arg("obs"),
        py::arg("actions"), py::arg("logp_old"), py::arg("adv"), py::arg("ent_coef"),
        py::arg("max_grad_norm"), py::arg("num_threads") = 1,
        "One VPG step of the actor (weights[i] float32 [d_in, d_out], biases[i] [d_out], "
        "log_std [D] or None) in place: Adam on "
        "-mean(logp A) - ent_coef mean(H) over the whole batch (obs float32 [B, obs_dim] "
        "normalised, actions int64 [B] / float32 [B, D], logp_old and adv float32 [B]). "
        "Returns (pg_loss, entropy, approx_kl after the step, new step). num_threads: threads of "
        "the products (the same results for any count).");
  m.def("trpo_step", &trpo_step, py::kw_only(), py::arg("weights"), py::arg("biases"),
        py::arg("log_std"), py::arg("activation"), py::arg("obs"), py::arg("actions"),
        py::arg("logp_old"), py::arg("adv"), py::arg("max_kl"), py::arg("cg_iters"),
        py::arg("cg_damping"), py::arg("backtrack_iters"), py::arg("backtrack_coeff"),
        py::arg("ent_coef"), py::arg("fvp_subsample") = 1.0,
        py::arg("num_threads") = 1,
        "TRPO's policy step of the actor (weights[i] float32 [d_in, d_out], biases[i] [d_out], "
        "log_std [D] or None) in place (csrc/trpo_update.hpp): "
        "surrogate gradient, conjugate gradient on exact Fisher-vector products, KL-constrained "
        "backtracking line search. obs float32 [B, obs_dim] (normalised), actions int64 [B] / "
        "float32 [B, D], logp_old and adv (normalised as wanted) float32 [B]. Returns (surrogate "
        "at the start, mean KL after, mean entropy after, accepted, backtracks). num_threads: "
        "threads of the products (the same results for any count).");
  m.def("trpo_grad_fvp", &trpo_grad_fvp, py::kw_only(), py::arg("weights"), py::arg("biases"),
        py::arg("log_std"), py::arg("activation"), py::arg("obs"), py::arg("actions"),
        py::arg("logp_old"), py::arg("adv"), py::arg("ent_coef"), py::arg("cg_damping"),
        py::arg("fvp_subsample"), py::arg("vectors"), py::arg("num_threads") = 1,
        py::arg("fvp_method") = "auto",
        "TRPO's pieces at the current parameters, for tests: (g, F v) with g float32 [n] the "
        "surrogate's gradient over the actor's flat parameters (actor_flat order) and F v "
        "float32 [m, n] the damped Fisher-vector products of vectors float32 [m, n]. "
        "fvp_method: 'jvp' (forward-mode J v, then a backward), 'jacobian' (through the output "
        "Jacobian's rows) or 'auto' (trpo_step's choice: fewer multiply-adds for cg_iters = 10).");
}

}  // namespace bindings
}  // namespace pgfast
