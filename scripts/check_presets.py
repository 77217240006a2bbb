"""Train ALGO on ENV_ID for several seeds with its settings and print the evaluation.

    python scripts/check_presets.py ppo Acrobot-v1 --steps 100000 --seeds 0 1 2 [--set field=value ...]

Prints one line per seed (deterministic and stochastic mean return over --episodes
episodes, wall-clock) and a JSON summary line; the numbers in docs/PRESETS.md come
from this script.
"""

from __future__ import annotations

import argparse
import json
import time

import pgfast
from pgfast import algos
from pgfast.config import parse_overrides


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("algo")
    p.add_argument("env_id")
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--set", dest="overrides", nargs="+", default=[])
    a = p.parse_args()
    fields, source = algos.resolve_settings(a.algo, a.env_id)
    extra = parse_overrides(a.overrides, {a.algo: algos.config_class(a.algo)})[a.algo]
    print(f"{a.algo} {a.env_id}: settings {source}" + (f"; --set {extra}" if extra else ""), flush=True)
    rows = []
    for seed in a.seeds:
        t0 = time.perf_counter()
        run = pgfast.train(a.algo, a.env_id, total_timesteps=a.steps, seed=seed, device="cpu", **extra)
        wall = time.perf_counter() - t0
        det = run.evaluate(episodes=a.episodes, deterministic=True)
        sto = run.evaluate(episodes=a.episodes, deterministic=False)
        run.close()
        rows.append({"seed": seed, "steps": run.global_step, "deterministic": det[0], "stochastic": sto[0],
                     "wall_s": wall})
        print(f"  seed {seed}: {run.global_step} steps, deterministic {det[0]:.1f} ± {det[1]:.1f}, "
              f"stochastic {sto[0]:.1f} ± {sto[1]:.1f} ({a.episodes} episodes each), {wall:.0f} s", flush=True)
    print(json.dumps({"algo": a.algo, "env_id": a.env_id, "settings": source, "overrides": extra, "runs": rows}))


if __name__ == "__main__":
    main()
