"""Fingerprint seeded training runs, to check that a refactor changes no behaviour.

    python scripts/fingerprint.py > before.json     # on the old code
    python scripts/fingerprint.py > after.json      # on the new code
    diff before.json after.json                     # must be empty

For PPO, TRPO, VPG (with and without baseline) on CartPole-v1, Pendulum-v1 and
HalfCheetah-v5 (tuned presets, a few iterations each), it prints every history
row except the wall-clock fields, a SHA-256 of the final weights, a short
deterministic evaluation, and the same after save -> load -> learn.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tempfile

import torch

import pgfast

CASES = [
    ("ppo", "CartPole-v1", {}, 3),
    ("trpo", "CartPole-v1", {}, 3),
    ("vpg", "CartPole-v1", {"baseline": True}, 3),
    ("vpg", "CartPole-v1", {"baseline": False}, 3),
    ("ppo", "Pendulum-v1", {}, 3),
    ("trpo", "Pendulum-v1", {}, 3),
    ("vpg", "Pendulum-v1", {"baseline": True}, 3),
    ("ppo", "HalfCheetah-v5", {}, 2),
    ("trpo", "HalfCheetah-v5", {}, 2),
    ("vpg", "HalfCheetah-v5", {"baseline": True}, 2),
]


def canonical_state(sd):
    """The policy's state dict in one layout whatever the release: the stacked ``weights.i``
    ``[2, d_in, d_out]`` / ``biases.i`` ``[2, 1, d_out]`` tensors of releases before separate
    actor and critic parameters become ``actor_weights.i`` ``[d_in, d_out]``,
    ``actor_biases.i`` ``[d_out]``, ``critic_weights.i``, ``critic_biases.i`` (the critic's
    output layer: column 0), so fingerprints of both layouts compare."""
    out = {}
    n = sum(1 for k in sd if k.startswith("weights."))
    for k, v in sd.items():
        name, _, i = k.partition(".")
        if name in ("weights", "biases") and v.dim() == 3:
            last = int(i) == n - 1
            w = "weights" if name == "weights" else "biases"
            a, c = (v[0], v[1]) if name == "weights" else (v[0, 0], v[1, 0])
            out[f"actor_{w}.{i}"] = a
            out[f"critic_{w}.{i}"] = (c[..., :1] if last else c)
        else:
            out[k] = v
    return out


def weights_hash(run) -> str:
    buf = io.BytesIO()
    sd = {k: v.detach().cpu().contiguous()
          for k, v in canonical_state(run.policy.state_dict()).items()}
    for k in sorted(sd):
        buf.write(k.encode())
        buf.write(sd[k].numpy().tobytes())
    return hashlib.sha256(buf.getvalue()).hexdigest()[:16]


def rows(run):
    return [{k: v for k, v in r.items() if k not in ("sps", "time")} for r in run.history]


def main() -> int:
    only = sys.argv[1:]
    out = {}
    for algo, env_id, extra, iters in CASES:
        name = f"{algo}{'-nb' if extra.get('baseline') is False else ''}/{env_id}"
        if only and not any(o in name for o in only):
            continue
        cfg = pgfast.algos.make_config(algo, env_id, **extra)
        steps = cfg.num_envs * cfg.num_steps * iters
        run = pgfast.train(algo, env_id, total_timesteps=steps, seed=3, device="cpu", **extra)
        entry = {"history": rows(run), "weights": weights_hash(run),
                 "eval": run.evaluate(episodes=2, num_envs=2)}
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "r.pt")
            run.save(path)
            run2 = pgfast.load(path)
            run2.learn(cfg.num_envs * cfg.num_steps)
            entry["resumed"] = rows(run2)[-1]
            entry["resumed_weights"] = weights_hash(run2)
            run2.close()
        run.close()
        out[name] = entry
        print(name, "done", file=sys.stderr)
    json.dump(out, sys.stdout, indent=1, sort_keys=True, default=float)
    print()
    return 0


if __name__ == "__main__":
    torch.set_num_threads(1)
    sys.exit(main())
