// The VPG policy-gradient step and the value regression of VPG and TRPO on CPU, on the one
// C++ MLP (csrc/mlp.hpp), the distributions of csrc/dist.hpp and Adam of csrc/adam.hpp.
// They compute what pgfast.algos.vpg.VPG.update and pgfast.algos.base.AlgoBase.fit_value
// compute by autograd (equal to float rounding, tested against autograd directly):
//
//   VPG:   loss = -mean(logp(a | s) A) - ent_coef mean(H), one Adam step on the actor
//   value: epochs x minibatches of 0.5 mean((V(s) - R)^2), one Adam step on the critic each
//          (rows perm[e, s : s + mb] of epoch e, or in order), as fit_value.
//
// Parameters and Adam moments are read and written in place (the caller's arrays).
//
// This header sees no Python.
#pragma once

#include <cstdint>

#include "adam.hpp"
#include "mlp.hpp"

namespace pgfast {
namespace pg {

// One network of the actor-critic pair and its optimiser state. net's pointers are the
// parameters; opt holds the same parameters (weights..., biases..., log_std) with their
// Adam moments (opt.g is set by the update).
struct Net {
  mlp::Mlp net;
  float* log_std = nullptr;  // [out_dim] for the actor of a Gaussian policy
  adam::Tensors opt;
  adam::Hyper hyper;
};

// A batch of rows: obs [size, obs_dim] (normalised), categorical actions [size] or Box
// actions [size, out_dim], logp_old, adv, ret [size] (those the update reads).
struct Batch {
  int64_t size = 0;
  const float* obs = nullptr;
  const int64_t* act_discrete = nullptr;
  const float* act_box = nullptr;
  const float* logp_old = nullptr;
  const float* adv = nullptr;
  const float* ret = nullptr;
};

struct ValueSettings {
  int64_t epochs = 1;
  int64_t minibatch_size = 1;
  float max_grad_norm = 0.0f;  // <= 0: no clipping
  // The clip's norm reads the output layer's gradient (one column) as column 0 of norm_width
  // columns: the critic's slice of the stacked layout of earlier releases (norm_width: the
  // actor's out_dim), so such runs repeat bit for bit; 1: the gradients as they are.
  int64_t norm_width = 1;
  int num_threads = 1;  // threads of the products (csrc/dense.hpp); results do not depend on it
};

// The value regression; returns the last minibatch's loss. perm: [epochs, size] or null
// (rows in order). The critic's value is column 0 of its output. Throws
// std::invalid_argument on a perm entry out of range.
double value_fit(Net& critic, const Batch& batch, const int64_t* perm, const ValueSettings& s);

struct PgSettings {
  float ent_coef = 0.0f;
  float max_grad_norm = 0.0f;
  int num_threads = 1;  // threads of the products (csrc/dense.hpp); results do not depend on it
};

struct PgStats {
  double pg_loss = 0.0, entropy = 0.0, approx_kl = 0.0;  // approx_kl after the step
};

// One VPG step on the whole batch (advantages as given: normalise them before). approx_kl
// is mean(exp(d) - 1 - d), d = logp after the step - logp_old. Throws std::invalid_argument
// on an action outside the categorical's support.
PgStats vpg_step(Net& actor, const Batch& batch, const PgSettings& s);

}  // namespace pg
}  // namespace pgfast
