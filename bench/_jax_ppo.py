"""A fully jitted JAX PPO on gymnax's CartPole-v1: the bench's JAX peer.

PureJaxRL's design: env steps, the policy, GAE and every epoch/minibatch update of
the whole run are one XLA program (``jax.lax.scan`` over iterations, over rollout
steps, over epochs and over minibatches), compiled once. Settings are CleanRL's
PPO defaults (the same as PureJaxRL's CartPole config): 64x64 tanh actor and critic
(separate), orthogonal init, Adam (eps 1e-5) with linear LR annealing and global
grad-norm clipping 0.5, clip 0.2, clipped value loss, entropy 0.01, vf 0.5, GAE
(0.99, 0.95), per-minibatch advantage normalisation.

Like PureJaxRL (and CleanRL), a time-limit truncation is treated as a termination
(no bootstrap from the final observation); pgfast bootstraps, which costs it an
extra value evaluation per truncation.

Needs ``jax`` and ``gymnax`` (``pip install jax jaxlib gymnax``). Only JAX, gymnax
and NumPy are used (Adam and the networks are written out here).

    python bench/_jax_ppo.py NUM_ENVS NUM_STEPS TOTAL_TIMESTEPS   # one JSON line
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Any, Callable, Dict, Tuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["make_train", "run"]

Params = Dict[str, Any]


def _ortho(key: jax.Array, d_in: int, d_out: int, gain: float) -> jax.Array:
    return jax.nn.initializers.orthogonal(gain)(key, (d_in, d_out), jnp.float32)


def _init_mlp(key: jax.Array, dims: Tuple[int, ...], out_gain: float) -> Params:
    keys = jax.random.split(key, len(dims) - 1)
    layers = []
    for i in range(len(dims) - 1):
        gain = out_gain if i == len(dims) - 2 else math.sqrt(2.0)
        layers.append({"w": _ortho(keys[i], dims[i], dims[i + 1], gain),
                       "b": jnp.zeros((dims[i + 1],), jnp.float32)})
    return {"layers": layers}


def _mlp(p: Params, x: jax.Array) -> jax.Array:
    layers = p["layers"]
    for layer in layers[:-1]:
        x = jnp.tanh(x @ layer["w"] + layer["b"])
    return x @ layers[-1]["w"] + layers[-1]["b"]


def make_train(num_envs: int, num_steps: int, total_timesteps: int, lr: float = 2.5e-4,
               update_epochs: int = 4, num_minibatches: int = 4, gamma: float = 0.99,
               gae_lambda: float = 0.95, clip_eps: float = 0.2, ent_coef: float = 0.01,
               vf_coef: float = 0.5, max_grad_norm: float = 0.5, hidden: int = 64
               ) -> Callable[[jax.Array], Dict[str, jax.Array]]:
    """``train(key) -> metrics`` for CartPole-v1 (not yet jitted: ``jax.jit`` it).

    Metrics: ``mean_return`` ``[num_updates]``, the mean return of the episodes that
    finished in each rollout (NaN where none did).
    """
    import gymnax

    env, env_params = gymnax.make("CartPole-v1")
    n_act = env.action_space(env_params).n
    obs_dim = env.observation_space(env_params).shape[0]
    num_updates = total_timesteps // (num_envs * num_steps)
    batch = num_envs * num_steps
    mb = batch // num_minibatches
    b1, b2, eps = 0.9, 0.999, 1e-5

    def policy(params: Params, obs: jax.Array) -> Tuple[jax.Array, jax.Array]:
        return _mlp(params["actor"], obs), _mlp(params["critic"], obs)[..., 0]

    def loss_fn(params: Params, data: Tuple[jax.Array, ...]) -> jax.Array:
        obs, act, logp_old, v_old, adv, ret = data
        logits, v = policy(params, obs)
        lsm = jax.nn.log_softmax(logits)
        logp = jnp.take_along_axis(lsm, act[:, None], axis=-1)[:, 0]
        ent = -(jnp.exp(lsm) * lsm).sum(-1).mean()
        v_clip = v_old + jnp.clip(v - v_old, -clip_eps, clip_eps)
        v_loss = 0.5 * jnp.maximum((v - ret) ** 2, (v_clip - ret) ** 2).mean()
        ratio = jnp.exp(logp - logp_old)
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        pg = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps) * adv).mean()
        return pg + vf_coef * v_loss - ent_coef * ent

    grad_fn = jax.grad(loss_fn)

    def adam(params: Params, grads: Params, opt: Tuple[Params, Params, jax.Array]
             ) -> Tuple[Params, Tuple[Params, Params, jax.Array]]:
        m, v, count = opt
        leaves = jax.tree_util.tree_leaves(grads)
        gnorm = jnp.sqrt(sum(jnp.sum(g * g) for g in leaves))
        scale = jnp.minimum(1.0, max_grad_norm / (gnorm + 1e-6))
        grads = jax.tree_util.tree_map(lambda g: g * scale, grads)
        count = count + 1
        m = jax.tree_util.tree_map(lambda a, g: b1 * a + (1 - b1) * g, m, grads)
        v = jax.tree_util.tree_map(lambda a, g: b2 * a + (1 - b2) * g * g, v, grads)
        frac = 1.0 - ((count - 1) // (num_minibatches * update_epochs)) / num_updates
        step = lr * frac
        c1, c2 = 1 - b1 ** count, 1 - b2 ** count
        params = jax.tree_util.tree_map(
            lambda p, a, s: p - step * (a / c1) / (jnp.sqrt(s / c2) + eps), params, m, v)
        return params, (m, v, count)

    def train(key: jax.Array) -> Dict[str, jax.Array]:
        key, ka, kc, kr = jax.random.split(key, 4)
        params = {"actor": _init_mlp(ka, (obs_dim, hidden, hidden, n_act), 0.01),
                  "critic": _init_mlp(kc, (obs_dim, hidden, hidden, 1), 1.0)}
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        opt = (zeros, zeros, jnp.zeros((), jnp.int32))
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(kr, num_envs), env_params)
        ep_ret = jnp.zeros((num_envs,), jnp.float32)

        def env_step(carry: Tuple[Any, ...], _: Any) -> Tuple[Tuple[Any, ...], Tuple[jax.Array, ...]]:
            params, env_state, obs, ep_ret, key = carry
            key, k_act, k_env = jax.random.split(key, 3)
            logits, v = policy(params, obs)
            act = jax.random.categorical(k_act, logits)
            logp = jnp.take_along_axis(jax.nn.log_softmax(logits), act[:, None], axis=-1)[:, 0]
            obs2, env_state, rew, term, trunc, _ = jax.vmap(
                env.step, in_axes=(0, 0, 0, None))(jax.random.split(k_env, num_envs), env_state,
                                                  act, env_params)
            done = jnp.logical_or(term, trunc)
            ep_ret = ep_ret + rew
            fin = jnp.where(done, ep_ret, 0.0)
            ep_ret = jnp.where(done, 0.0, ep_ret)
            return (params, env_state, obs2, ep_ret, key), (obs, act, logp, v, rew, done, fin)

        def update_step(carry: Tuple[Any, ...], _: Any) -> Tuple[Tuple[Any, ...], jax.Array]:
            params, opt, env_state, obs, ep_ret, key = carry
            (params, env_state, obs, ep_ret, key), traj = jax.lax.scan(
                env_step, (params, env_state, obs, ep_ret, key), None, num_steps)
            t_obs, t_act, t_logp, t_v, t_rew, t_done, t_fin = traj
            last_v = policy(params, obs)[1]

            def gae_step(c: Tuple[jax.Array, jax.Array], x: Tuple[jax.Array, ...]
                         ) -> Tuple[Tuple[jax.Array, jax.Array], jax.Array]:
                a_next, v_next = c
                rew, v, done = x
                nd = 1.0 - done
                delta = rew + gamma * v_next * nd - v
                a = delta + gamma * gae_lambda * nd * a_next
                return (a, v), a

            _, adv = jax.lax.scan(gae_step, (jnp.zeros_like(last_v), last_v),
                                  (t_rew, t_v, t_done.astype(jnp.float32)), reverse=True)
            ret = adv + t_v
            flat = tuple(x.reshape((batch,) + x.shape[2:])
                         for x in (t_obs, t_act, t_logp, t_v, adv, ret))

            def epoch(c: Tuple[Any, ...], _: Any) -> Tuple[Tuple[Any, ...], None]:
                params, opt, key = c
                key, k = jax.random.split(key)
                perm = jax.random.permutation(k, batch)
                mbs = tuple(x[perm].reshape((num_minibatches, mb) + x.shape[1:]) for x in flat)

                def minibatch(c2: Tuple[Any, ...], d: Tuple[jax.Array, ...]
                              ) -> Tuple[Tuple[Any, ...], None]:
                    params, opt = c2
                    params, opt = adam(params, grad_fn(params, d), opt)
                    return (params, opt), None

                (params, opt), _ = jax.lax.scan(minibatch, (params, opt), mbs)
                return (params, opt, key), None

            (params, opt, key), _ = jax.lax.scan(epoch, (params, opt, key), None, update_epochs)
            n_fin = t_done.sum()
            mean_ret = jnp.where(n_fin > 0, t_fin.sum() / jnp.maximum(n_fin, 1), jnp.nan)
            return (params, opt, env_state, obs, ep_ret, key), mean_ret

        _, mean_return = jax.lax.scan(update_step, (params, opt, env_state, obs, ep_ret, key),
                                      None, num_updates)
        return {"mean_return": mean_return}

    return train


def run(num_envs: int, num_steps: int, total_timesteps: int, seed: int = 0) -> Dict[str, float]:
    """Compile and run one training; compile and run seconds are timed separately.

    Returns ``compile_s``, ``run_s``, ``sps`` (steady-state env steps/s of the run),
    ``total_s`` (compile + run) and ``last_return`` (mean return of the episodes that
    finished in the last rollout that had any).
    """
    total = (total_timesteps // (num_envs * num_steps)) * num_envs * num_steps
    fn = jax.jit(make_train(num_envs, num_steps, total))
    key = jax.random.PRNGKey(seed)
    t0 = time.perf_counter()
    compiled = fn.lower(key).compile()
    t_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = jax.block_until_ready(compiled(key))
    t_run = time.perf_counter() - t0
    rets = np.asarray(out["mean_return"])
    rets = rets[np.isfinite(rets)]  # rollouts in which some episode finished
    return {"compile_s": t_compile, "run_s": t_run, "total_s": t_compile + t_run,
            "sps": total / t_run, "timesteps": float(total),
            "last_return": float(rets[-1]) if rets.size else float("nan")}


if __name__ == "__main__":  # pragma: no cover
    n, s, tot = int(sys.argv[1]), int(sys.argv[2]), int(float(sys.argv[3]))
    print(json.dumps({"peer": "jax_ppo", "num_envs": n, "num_steps": s,
                      **{k: round(v, 3) for k, v in run(n, s, tot).items()}}))
