// The TRPO policy step on CPU (what pgfast.algos.trpo.TRPO.update computes by autograd), on
// the one C++ MLP (csrc/mlp.hpp) and csrc/dist.hpp, for a categorical or Gaussian actor:
//
//   g      = d/d theta [mean(exp(logp - logp_old) A) + ent_coef mean(H)]
//   F v    = J^T M J v / n + damping v: J v forward-mode through the MLP (mlp::jvp), M the
//            Fisher of the output distribution (dist.hpp), J^T by backward, or both through
//            the rows of the output Jacobian (mlp::output_jacobian; FvpMethod); the exact
//            Hessian of the mean KL(old || theta) at theta = old. On rows r = floor(i B / n),
//            i < n = max(1, round(fvp_subsample B)) (all rows for fvp_subsample = 1).
//   x      = conjugate gradient on F x = g (cg_iters, stop when r.r < 1e-10)
//   step   = sqrt(2 max_kl / max(x.F x, 1e-12)) x
//   line search: theta_0 + backtrack_coeff^k step, k < backtrack_iters; the first with mean
//            KL <= max_kl and a surrogate above the start is kept, else theta_0.
//
// Flat vectors (g, v) hold the actor's parameters in pgfast.nn.ActorCritic.actor_flat's
// order: weights [d_i, d_{i+1}]..., biases [d_{i+1}]..., log_std (Gaussian).
//
// This header sees no Python.
#pragma once

#include <cstdint>

#include "pg_update.hpp"

namespace pgfast {
namespace trpo {

// How the Fisher-vector products run: forward-mode J v then a backward (kJvp), or through the
// output Jacobian's rows computed once per step (kJacobian: no products with the weights per
// vector; out_dim backwards up front), or whichever costs fewer multiply-adds (kAuto). The
// same products to float rounding.
enum class FvpMethod : int { kAuto = 0, kJvp = 1, kJacobian = 2 };

struct Settings {
  float max_kl = 0.01f;
  float cg_damping = 0.1f;
  float backtrack_coeff = 0.8f;
  float ent_coef = 0.0f;
  float fvp_subsample = 1.0f;  // fraction of the rows the Fisher-vector products use
  int cg_iters = 10;
  int backtrack_iters = 10;
  int num_threads = 1;  // threads of the products (csrc/dense.hpp); results do not depend on it
  FvpMethod fvp_method = FvpMethod::kAuto;
};

struct Stats {
  double surr0 = 0.0;    // the surrogate (+ entropy bonus) at the start
  double kl = 0.0;       // mean KL(old || new) after the step
  double entropy = 0.0;  // mean entropy after the step
  bool accepted = false;
  int backtracks = 0;    // k of the accepted candidate, backtrack_iters if none
};

// The actor's parameter count (the flat vectors' length).
int64_t num_params(const pg::Net& actor);

// For tests: the surrogate gradient g [num_params] and (F + damping I) v for m vectors
// vs [m, num_params] into fvs [m, num_params], at the current parameters.
void grad_and_fvp(const pg::Net& actor, const pg::Batch& batch, const Settings& s, float* g,
                  const float* vs, int64_t m, float* fvs);

// The whole policy step, parameters written in place. Throws std::invalid_argument on an
// action outside the categorical's support.
Stats step(pg::Net& actor, const pg::Batch& batch, const Settings& s);

}  // namespace trpo
}  // namespace pgfast
