"""Time pgfast's C++ kernels and native envs built portable (as the wheel) vs with -march=native.

    python scripts/portable_vs_native.py [--rebuild] [--rounds 3] [--min-time 0.3] [--json PATH]
    make native-compare

The shipped wheel is compiled without ``-march=native``. This measurement tool
builds two copies of the extension with CMake, ``build/arch-portable``
(``-DPGFAST_NATIVE_ARCH=OFF``, the wheel's flags) and ``build/arch-native``
(``-DPGFAST_NATIVE_ARCH=ON``), configured as the Makefile's ``inplace`` target
configures ``build/dev``. A build is skipped when its ``_C*.so`` is newer than
every file in ``csrc/`` and than ``CMakeLists.txt`` (``--rebuild`` forces one).

Each variant gets a temporary directory holding a copy of the ``pgfast/`` Python
package (one snapshot for both, without any ``_C*.so``) plus that variant's
``_C*.so``; a child process (this script with ``--child``) runs with
``PYTHONPATH`` pointing there and checks that ``pgfast._C.__file__`` is the
intended file. The child times, single-core (``num_threads=1``), best-of-k wall
time with k filling ``--min-time`` seconds after a warm-up call:

* ``pgfast.gae`` float32 at [T, N] = (2048, 1), (256, 1024), (1000, 4096);
* ``pgfast.reward_to_go`` and ``pgfast.nstep_returns`` (n=5) at (256, 1024);
* 100 steps of 1024 native CartPole-v1, Pendulum-v1, Acrobot-v1 and
  MountainCar-v0 envs with fixed random actions through ``env.step_into``
  (the zero-copy path: the env writes into caller-owned arrays).

The variants alternate (portable, native, portable, native, ...) for ``--rounds``
rounds, since this machine's load varies, and the best time per (variant,
benchmark) is kept. The child also hashes (SHA-256) the outputs of every kernel
case and the observations, rewards and flags of 100 steps of every env from a
seeded reset; the parent requires the hashes to agree across variants and
rounds and exits non-zero, loudly, when they do not.

Prints one table (benchmark, portable, native, speedup = portable / native)
with the CPU model and which of avx2 / avx512f / fma /proc/cpuinfo reports;
``--json PATH`` writes the same figures.
"""

from __future__ import annotations

import argparse
import functools
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VARIANTS = {"portable": "OFF", "native": "ON"}  # variant -> PGFAST_NATIVE_ARCH
CPU_FLAGS = ("avx2", "avx512f", "fma")
NUM_ENVS = 1024
ENV_STEPS = 100
ENV_IDS = ("CartPole-v1", "Pendulum-v1", "Acrobot-v1", "MountainCar-v0")
GAE_SHAPES = ((2048, 1), (256, 1024), (1000, 4096))


# --------------------------------------------------------------------------- parent: builds


def build_dir(variant: str) -> str:
    return os.path.join(ROOT, "build", f"arch-{variant}")


def find_so(directory: str) -> str | None:
    """The single _C*.so in directory, or None."""
    found = sorted(glob.glob(os.path.join(directory, "_C*.so")))
    return found[0] if found else None


def newest_source_mtime() -> float:
    """Latest modification time over csrc/ (recursively) and CMakeLists.txt."""
    newest = os.path.getmtime(os.path.join(ROOT, "CMakeLists.txt"))
    for dirpath, _, files in os.walk(os.path.join(ROOT, "csrc")):
        for name in files:
            newest = max(newest, os.path.getmtime(os.path.join(dirpath, name)))
    return newest


def tool_env() -> dict:
    """The environment for cmake: the venv's bin/ (pip's cmake and ninja) first on PATH."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


def build(variant: str, rebuild: bool, jobs: int) -> str:
    """Configure and build one variant (unless up to date); returns its _C*.so."""
    out = build_dir(variant)
    so = find_so(out)
    if so is not None and not rebuild and os.path.getmtime(so) > newest_source_mtime():
        print(f"[build] {variant}: up to date ({os.path.relpath(so, ROOT)})", flush=True)
        return so
    env = tool_env()
    cmake = shutil.which("cmake", path=env["PATH"]) or "cmake"
    pybind11_dir = subprocess.run([sys.executable, "-m", "pybind11", "--cmakedir"], check=True,
                                  capture_output=True, text=True).stdout.strip()
    configure = [cmake, "-S", ROOT, "-B", out, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
                 f"-DPGFAST_NATIVE_ARCH={VARIANTS[variant]}", f"-Dpybind11_DIR={pybind11_dir}",
                 f"-DPython_EXECUTABLE={sys.executable}"]
    compile_ = [cmake, "--build", out, "--parallel", str(jobs)] + (["--clean-first"] if rebuild else [])
    print(f"[build] {variant}: {' '.join(configure)}", flush=True)
    t0 = time.perf_counter()
    subprocess.run(configure, check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(compile_, check=True, env=env)
    so = find_so(out)
    if so is None:
        sys.exit(f"[build] {variant}: no _C*.so in {out} after the build")
    os.utime(so)  # an up-to-date build that ninja did not relink still counts as fresh
    print(f"[build] {variant}: built in {time.perf_counter() - t0:.0f} s", flush=True)
    return so


def march_flags(variant: str) -> bool:
    """Whether the variant's compile commands carry -march=native (a check on the configure)."""
    try:
        cmds = subprocess.run(["ninja", "-C", build_dir(variant), "-t", "commands"], env=tool_env(),
                              capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return False
    return "-march=native" in cmds


# --------------------------------------------------------------------------- parent: runs


def stage(so_by_variant: dict, tmp: str) -> dict:
    """One snapshot of pgfast/ (no _C*.so, no caches) per variant, plus its .so; variant -> dir."""
    src = os.path.join(ROOT, "pgfast")
    ignore = shutil.ignore_patterns("_C*.so", ".*.so.tmp", "__pycache__")
    snapshot = os.path.join(tmp, "snapshot", "pgfast")
    shutil.copytree(src, snapshot, ignore=ignore)
    dirs = {}
    for variant, so in so_by_variant.items():
        d = os.path.join(tmp, variant)
        shutil.copytree(snapshot, os.path.join(d, "pgfast"))
        shutil.copy2(so, os.path.join(d, "pgfast", os.path.basename(so)))
        dirs[variant] = d
    return dirs


def run_child(variant: str, pkg_dir: str, min_time: float, out_json: str) -> dict:
    """Run the timing child for one variant with PYTHONPATH=pkg_dir; returns its JSON."""
    so = find_so(os.path.join(pkg_dir, "pgfast"))
    env = dict(os.environ, PYTHONPATH=pkg_dir, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1")
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--expect-so", str(so),
           "--min-time", str(min_time), "--child-out", out_json]
    # cwd=pkg_dir: neither the source tree nor its pgfast/ can shadow the staged copy
    proc = subprocess.run(cmd, env=env, cwd=pkg_dir)
    if proc.returncode != 0:
        sys.exit(f"[run] {variant}: the timing child failed (exit {proc.returncode})")
    with open(out_json) as f:
        return json.load(f)


def cpu_info() -> tuple:
    """(model name, {flag: reported}) from /proc/cpuinfo."""
    model, flags = "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model == "unknown":
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model, {flag: flag in flags for flag in CPU_FLAGS}


def fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    return f"{seconds * 1e3:.3f} ms"


def parent(args: argparse.Namespace) -> int:
    so_by_variant = {v: build(v, args.rebuild, args.jobs) for v in VARIANTS}
    march = {v: march_flags(v) for v in VARIANTS}
    if march["portable"] or not march["native"]:
        print(f"WARNING: -march=native in compile commands: {march} (expected only in native)", flush=True)
    best: dict = {v: {} for v in VARIANTS}
    hashes: dict = {v: [] for v in VARIANTS}
    per_round: dict = {v: [] for v in VARIANTS}
    so_files = {v: os.path.relpath(so, ROOT) for v, so in so_by_variant.items()}  # as built (staged copies go)
    with tempfile.TemporaryDirectory(prefix="pgfast-arch-") as tmp:
        dirs = stage(so_by_variant, tmp)
        for r in range(args.rounds):
            for variant in VARIANTS:
                print(f"[run] round {r + 1}/{args.rounds}: {variant}", flush=True)
                res = run_child(variant, dirs[variant], args.min_time, os.path.join(tmp, f"{variant}-{r}.json"))
                hashes[variant].append(res["hashes"])
                per_round[variant].append(res["times"])
                for name, t in res["times"].items():
                    best[variant][name] = min(best[variant].get(name, float("inf")), t)

    # Bit-identity: every round of every variant must hash the same outputs.
    reference = hashes["portable"][0]
    mismatches = []
    for variant in VARIANTS:
        for r, h in enumerate(hashes[variant]):
            for case in sorted(set(reference) | set(h)):
                if h.get(case) != reference.get(case):
                    mismatches.append(f"{case}: {variant} round {r + 1} differs from portable round 1")

    model, flags = cpu_info()
    rows = []
    for name in best["portable"]:
        p, n = best["portable"][name], best["native"][name]
        rows.append({"benchmark": name, "portable_s": p, "native_s": n, "speedup": p / n})
    width = max(len(row["benchmark"]) for row in rows)
    print()
    print(f"CPU: {model}; flags: " + ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in flags.items()))
    print(f"best of {args.rounds} alternating rounds, best-of-k wall time per call (k fills "
          f"{args.min_time} s), 1 thread")
    print(f"{'benchmark':<{width}}  {'portable':>12}  {'native':>12}  {'speedup':>8}")
    for row in rows:
        print(f"{row['benchmark']:<{width}}  {fmt_time(row['portable_s']):>12}  {fmt_time(row['native_s']):>12}  "
              f"{row['speedup']:>7.3f}x")
    print("speedup = portable time / native time (> 1: native is faster)")
    if mismatches:
        print("\n" + "!" * 78)
        print("MISMATCH: the portable and native builds do not give bit-identical outputs:")
        for m in mismatches:
            print("  " + m)
        print("!" * 78)
    else:
        print(f"outputs bit-identical across variants and rounds ({len(reference)} cases hashed)")

    if args.json:
        report = {"cpu_model": model, "cpu_flags": flags, "rounds": args.rounds, "min_time_s": args.min_time,
                  "num_threads": 1, "so": so_files, "march_native_in_compile_commands": march,
                  "rows": rows, "bit_identical": not mismatches, "mismatches": mismatches,
                  "hashes": {v: hashes[v][0] for v in VARIANTS}, "times_per_round": per_round}
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
        print(f"wrote {args.json}")
    return 1 if mismatches else 0


# --------------------------------------------------------------------------- child


def best_time(fn, min_time: float) -> float:
    """Best-of-k wall time of fn() in seconds after one warm-up call (k fills about min_time)."""
    fn()
    best = float("inf")
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        best = min(best, t1 - t0)
        if t1 - start > min_time:
            return best


def step_all(step_into, actions: list, outs: tuple) -> None:
    """One call per action batch of ``env.step_into(actions, obs, rew, term, trunc)``."""
    for a in actions:
        step_into(a, *outs)


def child(args: argparse.Namespace) -> int:
    import numpy as np

    import pgfast
    from pgfast import _C

    got = os.path.realpath(_C.__file__)
    if got != os.path.realpath(args.expect_so):
        print(f"child: pgfast._C is {got}, expected {args.expect_so}", file=sys.stderr)
        return 2

    times: dict = {}
    hashes: dict = {}

    def digest(*arrays) -> str:
        h = hashlib.sha256()
        for a in arrays:
            a = np.ascontiguousarray(a)
            h.update(str((a.dtype.str, a.shape)).encode())
            h.update(a.tobytes())
        return h.hexdigest()

    def inputs(T: int, N: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        shape = (T, N)
        rew = rng.standard_normal(shape, dtype=np.float32)
        val = rng.standard_normal(shape, dtype=np.float32)
        nxt = rng.standard_normal(shape, dtype=np.float32)
        term = rng.random(shape) < 0.01
        trunc = rng.random(shape) < 0.005
        return rew, val, nxt, term, trunc

    for T, N in GAE_SHAPES:
        rew, val, nxt, term, trunc = inputs(T, N)
        name = f"gae f32 ({T},{N})"
        call = functools.partial(pgfast.gae, rew, val, nxt, term, trunc, 0.99, 0.95, num_threads=1)
        times[name] = best_time(call, args.min_time)
        hashes[name] = digest(*call())

    rew, val, nxt, term, trunc = inputs(256, 1024)
    name = "reward_to_go f32 (256,1024)"
    call = functools.partial(pgfast.reward_to_go, rew, term, trunc, 0.99, nxt, num_threads=1)
    times[name] = best_time(call, args.min_time)
    hashes[name] = digest(call())
    name = "nstep_returns n=5 f32 (256,1024)"
    call = functools.partial(pgfast.nstep_returns, rew, nxt, term, trunc, 0.99, 5, num_threads=1)
    times[name] = best_time(call, args.min_time)
    hashes[name] = digest(call())

    for env_id in ENV_IDS:
        env = pgfast.make_vec(env_id, num_envs=NUM_ENVS, seed=0, num_threads=1)
        space = env.single_action_space
        rng = np.random.default_rng(1)
        if hasattr(space, "n"):
            actions = [rng.integers(0, int(space.n), NUM_ENVS).astype(np.int64) for _ in range(ENV_STEPS)]
        else:
            actions = [rng.uniform(space.low, space.high, (NUM_ENVS, *space.shape)).astype(np.float32)
                       for _ in range(ENV_STEPS)]
        obs = np.empty((NUM_ENVS, *env.single_observation_space.shape), np.float32)
        rew_out = np.empty(NUM_ENVS, np.float64)
        term_out = np.empty(NUM_ENVS, np.bool_)
        trunc_out = np.empty(NUM_ENVS, np.bool_)
        outs = (obs, rew_out, term_out, trunc_out)
        name = f"{env_id} {NUM_ENVS} envs x {ENV_STEPS} steps"
        times[name] = best_time(functools.partial(step_all, env.step_into, actions, outs), args.min_time)
        # Hash a fresh trajectory from a seeded reset (the timed env's state depends on k).
        env.reset(seed=0)
        h = hashlib.sha256()
        for a in actions:
            env.step_into(a, *outs)
            h.update(obs.tobytes() + rew_out.tobytes() + term_out.tobytes() + trunc_out.tobytes())
        hashes[f"{env_id} trajectory"] = h.hexdigest()
        env.close()

    with open(args.child_out, "w") as f:
        json.dump({"so": got, "times": times, "hashes": hashes}, f)
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rebuild", action="store_true", help="rebuild both variants even when up to date")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (portable, native) (default 3)")
    p.add_argument("--min-time", type=float, default=0.3, help="seconds each best-of-k timing fills (default 0.3)")
    p.add_argument("--jobs", type=int, default=1, help="parallel compile jobs (default 1)")
    p.add_argument("--json", metavar="PATH", help="also write the table (and CPU, hashes) as JSON")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--expect-so", help=argparse.SUPPRESS)
    p.add_argument("--child-out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args)
    if args.rounds < 1:
        p.error("--rounds must be >= 1")
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
