// The fused PPO update of pgfast.nn.ActorCritic on CPU: one epoch of PPO-clip
// minibatch steps (forward, loss derivatives, backward, global grad-norm clip,
// Adam) in one call, for the actor and critic MLPs pgfast trains.
//
// It computes what the torch path of pgfast.algos.ppo.PPO.update computes with
// fast_grads (ppo_minibatch_grads + FastAdam.step), minibatch for minibatch:
//
//   ratio   = exp(logp - logp_old)
//   pg_loss = mean(max(-A ratio, -A clip(ratio, 1 - c, 1 + c)))
//   v_loss  = 0.5 mean((V - R)^2)  or the clipped variant (clip_vloss)
//   loss    = pg_loss + vf_coef v_loss - ent_coef mean(entropy)
//   g      *= 1 / max(1, (||g|| + 1e-6) / max_grad_norm)      (max_grad_norm > 0)
//   Adam as torch's fused kernel (lerp first moment, bias corrections, eps
//   added to sqrt(v) / sqrt(1 - beta2^t)).
//
// Layout (torch's, read and written in place): the actor's and the critic's
// layers, weight i [d_i, d_{i+1}] row-major and bias i [d_{i+1}] (each network
// its own sizes), log_std [D] for Gaussian policies; the critic's output is one
// column, the value. One Adam over every tensor: actor weights..., biases...,
// log_std, then critic weights..., biases....
//
// The clip's norm sums the squared gradients as the stacked layout of earlier
// releases did (weight i of both networks as one tensor, actor first, the
// critic's output column at stride out_dim when both have as many layers; then
// the biases likewise; then log_std), so runs with equal sizes are bit for bit
// those of that layout.
//
// The arithmetic is float32 like torch's, in its own summation order, so the
// result equals the torch path to float rounding (tested), not bit for bit.
// The matrix products are register-blocked loops compiled for AVX-512, AVX2
// and the baseline and picked at load time (csrc/clones.hpp), so a portable
// wheel keeps the speed.
//
// This header sees no Python.
#pragma once

#include <cstdint>

#include "adam.hpp"
#include "mlp.hpp"

namespace pgfast {
namespace update {

struct ActorCritic {
  mlp::Mlp actor;                 // dims[0] = obs_dim, output out_dim
  mlp::Mlp critic;                // dims[0] = obs_dim, output 1 (the value)
  const float* log_std = nullptr;  // [out_dim] (Gaussian), null for a categorical policy
};

// The one optimiser of both networks: t.p, t.m, t.v, t.size in the order actor weights...,
// biases..., log_std, critic weights..., biases... (t.g is set by the update).
struct Adam {
  adam::Tensors t;
  adam::Hyper hyper;  // hyper.step: steps taken so far; each minibatch adds one
};

struct Batch {
  int64_t size = 0;
  const float* obs = nullptr;             // [size, obs_dim], already normalised
  const int64_t* act_discrete = nullptr;  // [size] (categorical policy)
  const float* act_box = nullptr;         // [size, out_dim] (Gaussian policy)
  const float* logp_old = nullptr;        // [size]
  const float* v_old = nullptr;           // [size]
  const float* adv = nullptr;             // [size]
  const float* ret = nullptr;             // [size]
};

struct Settings {
  float clip_coef = 0.2f;
  float ent_coef = 0.0f;
  float vf_coef = 0.5f;
  float max_grad_norm = 0.0f;  // <= 0: no clipping
  bool clip_vloss = true;
  bool norm_adv = true;  // normalise the advantages of each minibatch
  int num_threads = 1;  // threads of the products (csrc/dense.hpp); results do not depend on it
};

struct Stats {
  double pg_loss = 0.0, v_loss = 0.0, entropy = 0.0;  // of the epoch's last minibatch
  int64_t minibatches = 0;
};

// One epoch: minibatches of rows perm[s : s + mb] for s = 0, mb, 2 mb, ... < size
// (perm null: the rows in order; the last minibatch may be shorter), one Adam
// step each. logp_last receives the log-probs of the last minibatch (before its
// step), its length is returned in Stats by the caller's arithmetic
// (size - mb * (minibatches - 1)). Throws std::invalid_argument on a perm entry
// out of range or an action outside the categorical's support.
Stats ppo_epoch(const ActorCritic& net, Adam& adam, const Batch& batch, const int64_t* perm,
                int64_t mb, const Settings& settings, float* logp_last);

// The forward of the batch obs [n, obs_dim] (normalised): values[n] (the critic) and, if
// logp is not null, logp[n] = log pi(a | s) of the actions (act_discrete [n] or act_box
// [n, out_dim]). Row for row bit-identical to the forward ppo_epoch's minibatches take,
// so a rollout's log-probs computed here give ratio exactly 1 in the first minibatch.
// num_threads: as Settings'. Throws std::invalid_argument on an action outside the
// categorical's support.
void evaluate(const ActorCritic& net, const float* obs, int64_t n, const int64_t* act_discrete,
              const float* act_box, float* logp, float* values, int num_threads = 1);

}  // namespace update
}  // namespace pgfast
