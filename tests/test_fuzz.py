"""Fuzzing pgfast._C and the native envs with malformed input, in child processes.

Every probe calls one function of ``pgfast._C`` (returns kernels, thread
planning, ``ClassicVecEnv`` methods) or one method of a native env made by
``pgfast.make_vec`` (step, step_into, reset with seeds/options/masks,
set_state/get_state, dump/load, pickling) with arguments drawn by hypothesis:
wrong and byte-swapped dtypes, wrong shapes, strided and read-only arrays,
outputs aliasing inputs or each other, NaN/inf/huge values, negative and huge
thread counts and env counts. Probes run in batches in a child process, so a
crash is seen as what it is: the child must end normally, and every probe
must end in a Python exception or a correct result (``ok``), never a signal,
a hang (timeout) or a ``wrong`` result (a kernel result that differs from the
reference, or a non-finite env state).

The batch count scales with ``PGFAST_FUZZ_EXAMPLES`` (batches per kind; the
default keeps the module at about a minute). The probe count and the outcome
table are printed at the end of the run and, when ``PGFAST_FUZZ_REPORT`` names
a file, written there as JSON.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import textwrap
from typing import Any, Dict, List

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from pgfast import _C

EXAMPLES = int(os.environ.get("PGFAST_FUZZ_EXAMPLES", "0") or 0)
CORE_BATCHES = EXAMPLES or 4     # children that load only the extension
ENV_BATCHES = max(1, EXAMPLES // 3) if EXAMPLES else 1  # children that import pgfast
CORE_PROBES, ENV_PROBES = 60, 100  # probes per child (an env probe runs 3-8 calls)
TIMEOUT_S = float(os.environ.get("PGFAST_FUZZ_TIMEOUT", "240"))

ENV_IDS = list(_C.classic_envs())  # every native classic env of the registry (csrc/envs/registry.hpp)

# --------------------------------------------------------------------------- the child

# Runs a JSON list of probes, printing one JSON outcome line per probe (flushed,
# so the parent knows which probe a crash interrupted).
CHILD = textwrap.dedent(r'''
import faulthandler, importlib.machinery, importlib.util, glob, json, math, os, pickle, sys, time
import numpy as np
faulthandler.enable()
probes = json.load(sys.stdin)
PROBE_TIMEOUT = float(os.environ.get("PGFAST_FUZZ_PROBE_TIMEOUT", "60"))
FULL = any(p["kind"] == "env" for p in probes)
if FULL:
    import pgfast
    from pgfast import _C, returns as R
else:  # the extension alone: no torch import, a child starts in a fraction of a second
    # an editable install (make dev) may list the source tree and a folder holding only _C
    locs = list(importlib.util.find_spec("pgfast").submodule_search_locations)
    pkg = next(p for p in locs if os.path.exists(os.path.join(p, "returns.py")))
    path = sorted(p for loc in locs for p in glob.glob(os.path.join(loc, "_C*.so")))[0]
    loader = importlib.machinery.ExtensionFileLoader("pgfast._C", path)
    spec = importlib.util.spec_from_file_location("pgfast._C", path, loader=loader)
    _C = importlib.util.module_from_spec(spec)
    loader.exec_module(_C)
    # pgfast.returns for its plain-Python references, without torch (its
    # import is optional there) and without the package's __init__
    import types
    sys.modules["torch"] = None
    pg = types.ModuleType("pgfast"); pg.__path__ = [pkg]; pg._C = _C
    sys.modules["pgfast"] = sys.modules["pgfast._C"] = _C
    sys.modules["pgfast"] = pg
    rspec = importlib.util.spec_from_file_location("pgfast.returns", os.path.join(pkg, "returns.py"))
    R = importlib.util.module_from_spec(rspec)
    rspec.loader.exec_module(R)

FILLS = {"zeros": 0.0, "ones": 1.0, "nan": math.nan, "inf": math.inf, "ninf": -math.inf,
         "huge": 1e39, "neg": -3.0}

class Wrong(Exception):
    pass

def make(spec, rng, base=None):
    """An array from a spec: shape, dtype (byte order included), fill, layout."""
    if spec is None:
        return None
    if spec.get("py") is not None:
        return spec["py"]  # a non-array object (list, scalar)
    shape, dt = tuple(spec["shape"]), np.dtype(spec["dtype"])
    layout = spec.get("layout", "c")
    full = shape if layout != "strided" else shape[:-1] + (2 * shape[-1],) if shape else (2,)
    if dt.kind == "b":
        a = rng.random(full) < 0.2
    elif dt.kind in "iu":
        a = rng.integers(-2, 4, full)
    else:
        a = rng.normal(size=full)
    fill = spec.get("fill", "random")
    if fill in FILLS and dt.kind == "f":
        a = np.asarray(a, np.float64)
        a.flat[:: max(1, a.size // 3)] = FILLS[fill]
    a = np.asarray(a).astype(dt)
    if layout == "strided":
        a = a[..., ::2]
    elif layout == "fortran" and a.ndim == 2:
        a = np.asfortranarray(a)
    elif layout == "readonly":
        a.setflags(write=False)
    return a

def finite_or_wrong(x, what):
    if isinstance(x, np.ndarray) and x.dtype.kind == "f" and not np.isfinite(x).all():
        raise Wrong(what + " is not finite")

def clean(*arrays):
    return all(isinstance(a, np.ndarray) and a.dtype.isnative and
               (a.dtype.kind != "f" or np.isfinite(a).all()) for a in arrays)

def check_returns(p, args, out):
    """A result of a returns kernel on clean input must match the reference."""
    fn, tol = p["fn"], 1e-4
    if R is None or not clean(*[a for a in args if a is not None]):
        return
    if fn == "gae":
        ref = R.gae_reference(*args[:5], gamma=p["gamma"], lam=p["lam"])
        np.testing.assert_allclose(out[0], ref[0], rtol=tol, atol=tol)
        np.testing.assert_allclose(out[1], ref[1], rtol=tol, atol=tol)
    elif fn == "reward_to_go":
        ref = R.reward_to_go_reference(args[0], args[1], args[2], p["gamma"], args[3])
        np.testing.assert_allclose(out, ref, rtol=tol, atol=tol)
    elif fn == "discounted_cumsum":
        ref = R.discounted_cumsum_reference(args[0], args[1], p["gamma"])
        np.testing.assert_allclose(out, ref, rtol=tol, atol=tol)

def run_returns(p, rng):
    arrs = [make(s, rng) for s in p["arrays"]]
    nt = p["num_threads"]
    if p.get("alias") and len(arrs) > 1:  # an input passed twice
        arrs[1] = arrs[0]
    if p["fn"] == "plan_threads":
        t = _C.plan_threads(p["T"], p["N"], nt)
        if not 1 <= t <= 1024:
            raise Wrong(f"plan_threads gave {t}")
        return
    if p["fn"] == "gae":
        out = _C.gae(*arrs[:5], p["gamma"], p["lam"], nt)
        check_returns(p, arrs, out)
    elif p["fn"] == "reward_to_go":
        out = _C.reward_to_go(arrs[0], arrs[1], arrs[2], p["gamma"], arrs[3], nt)
        check_returns(p, arrs, out)
    elif p["fn"] == "discounted_cumsum":
        out = _C.discounted_cumsum(arrs[0], arrs[1], p["gamma"], nt)
        check_returns(p, arrs, out)
    elif p["fn"] == "nstep_returns" and hasattr(_C, "nstep_returns"):
        _C.nstep_returns(*arrs[:4], p["gamma"], p["n"], nt)

def outputs(p, env, rng, n, obs_dim):
    """step_into outputs: fresh, wrong, or aliasing each other / the actions."""
    kind = p["outs"]
    obs = np.zeros((n, obs_dim), np.float32)
    rew, term, trunc = np.zeros(n), np.zeros(n, bool), np.zeros(n, bool)
    if kind == "alias_obs_rew":
        rew = obs.reshape(-1)[:n].view(np.float32) if obs.size >= n else rew
    elif kind == "alias_term_trunc":
        trunc = term
    elif kind == "alias_final" and getattr(env, "_final_obs", None) is not None:
        obs = env._final_obs
    elif kind == "bad":
        obs = make(p["obs_spec"], rng)
    elif kind == "byteswapped":
        rew = rew.astype(">f8")
    return obs, rew, term, trunc

def actions(p, env, rng, n):
    spec = p["act"]
    space = env.single_action_space
    shape = (n,) + tuple(space.shape)
    if spec["kind"] == "valid":
        return np.stack([space.sample() for _ in range(n)]) if n else np.zeros(shape)
    if spec["kind"] == "spec":
        s = dict(spec["spec"]); s["shape"] = list(shape) if s["shape"] == "auto" else s["shape"]
        return make(s, rng)
    if spec["kind"] == "value":
        dt = np.int64 if not shape[1:] and hasattr(space, "n") else np.float64
        if np.isfinite(spec["value"]) or dt is np.float64:
            return np.full(shape, spec["value"]).astype(dt)
        return np.zeros(shape, np.int64)
    return spec.get("py")

def run_env(p, rng):
    kw = dict(num_threads=p["num_threads"], autoreset_mode=p["mode"])
    env = pgfast.make_vec(p["env"], p["num_envs"], seed=0, **kw)
    n = env.num_envs
    obs_dim = int(np.prod(env.single_observation_space.shape))
    # set_state takes any finite physics state, as gymnasium's unwrapped.state
    # does: after a huge one the dynamics may overflow (never hang or crash)
    wild = False
    for op in p["ops"]:
        name = op["op"]
        try:
            if name == "step":
                env.step(actions(op, env, rng, n))
            elif name == "step_into":
                a = actions(op, env, rng, n)
                obs, rew, term, trunc = outputs(op, env, rng, n, obs_dim)
                if op["outs"] == "alias_act" and isinstance(a, np.ndarray):
                    buf = np.zeros(max(a.nbytes, obs.nbytes) + 64, np.uint8)
                    a2 = buf[: a.nbytes].view(a.dtype).reshape(a.shape)
                    a2[...] = a
                    a, obs = a2, buf[: obs.nbytes].view(np.float32).reshape(obs.shape)
                env.step_into(a, obs, rew, term, trunc)
            elif name == "reset":
                options = {k: v for k, v in op["options"].items()}
                if "reset_mask" in options:
                    options["reset_mask"] = make(options["reset_mask"], rng)
                env.reset(seed=op["seed"], options=options or None)
            elif name == "set_state":
                s = make(op["spec"], rng)
                if isinstance(s, np.ndarray) and s.shape == (n, env._c.state_dim) and op["scale"]:
                    s = s * op["scale"]
                env.set_state(s)
            elif name == "get_state":
                env.get_state()
            elif name == "load":
                d = env._c.dump()
                key, how = op["key"], op["how"]
                if how == "drop":
                    d.pop(key, None)
                elif how == "nan" and isinstance(d.get(key), np.ndarray) and d[key].dtype.kind == "f":
                    d[key] = d[key].copy(); d[key].flat[0] = np.nan
                elif how == "byteswap" and isinstance(d.get(key), np.ndarray):
                    d[key] = d[key].astype(d[key].dtype.newbyteorder())
                elif how == "shape" and isinstance(d.get(key), np.ndarray):
                    d[key] = d[key].reshape(-1)[:-1] if d[key].size > 1 else d[key][:0]
                elif how == "value" and isinstance(d.get(key), np.ndarray):
                    d[key] = d[key].copy(); d[key].flat[0] = op["value"]
                elif how == "strided" and isinstance(d.get(key), np.ndarray):
                    d[key] = np.repeat(d[key], 2, axis=-1)[..., ::2]
                env._c.load(d)
            elif name == "pickle":
                env = pickle.loads(pickle.dumps(env))
            elif name == "bind":
                obs = np.zeros((n, obs_dim), np.float32)
                env._c.bind_outputs(obs, obs.reshape(-1)[:n].astype(np.float64) if op["ok"] else
                                    obs[:, 0] if obs_dim else obs, np.zeros(n, bool), np.zeros(n, bool))
        except Exception as e:  # noqa: BLE001 - the outcome is the exception type
            outcome = type(e).__name__
        else:
            outcome = "ok"
            if name == "set_state":
                wild = op["scale"] >= 1e6
            elif name == "reset" and "reset_mask" not in op["options"]:
                wild = False
        # whatever happened, the env's state stays finite and usable
        st = env._c.get_state()
        if not wild and not np.isfinite(st).all():
            raise Wrong(f"after {name} ({outcome}) the state is not finite")
        yield outcome

for i, p in enumerate(probes):
    rng = np.random.default_rng(i)
    print(json.dumps({"i": i, "start": True, "t": time.time()}), flush=True)
    # a hang ends the child with every thread's traceback on stderr
    faulthandler.dump_traceback_later(PROBE_TIMEOUT, exit=True)
    try:
        if p["kind"] == "returns":
            run_returns(p, rng)
            outs = ["ok"]
        elif p["kind"] == "core":
            e = _C.ClassicVecEnv(p["env"], p["num_envs"], p["same_step"], p["num_threads"])
            outs = ["ok"]
        else:
            outs = list(run_env(p, rng))
    except Wrong as e:
        outs = ["wrong: " + str(e)]
    except AssertionError as e:
        outs = ["wrong: " + str(e)[:200]]
    except Exception as e:  # noqa: BLE001
        outs = [type(e).__name__]
    faulthandler.cancel_dump_traceback_later()
    print(json.dumps({"i": i, "outcomes": outs}), flush=True)
''')


def run_batch(probes: List[Dict[str, Any]]) -> List[str]:
    """Runs probes in one child; returns every outcome, or fails naming the probe."""
    env = dict(os.environ, PYTHONFAULTHANDLER="1")
    try:
        r = subprocess.run([sys.executable, "-c", CHILD], input=json.dumps(probes),
                           capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
        out, code, err = r.stdout, r.returncode, r.stderr
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        code, err = "timeout", ""
    outcomes: List[str] = []
    last = None
    for line in out.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("start"):
            last = rec["i"]
        else:
            outcomes.extend(rec["outcomes"])
            last = None
    if code != 0 or last is not None:
        probe = probes[last] if last is not None else None
        pytest.fail(f"child ended with {code} during probe {last}: {json.dumps(probe)}\n"
                    f"{err[-3000:]}")
    wrong = [o for o in outcomes if o.startswith("wrong")]
    assert not wrong, wrong
    return outcomes


# --------------------------------------------------------------------------- strategies

DTYPES = ["<f4", "<f8", ">f4", ">f8", "|b1", "|u1", "<i4", "<i8", ">i8", "<u8", "<f2", "<c16"]
THREADS = st.sampled_from([0, 1, 2, 3, 7, 8, 64, 1024, 1025, -1, -(2 ** 31), 10 ** 6,
                           2 ** 31, 2 ** 62, 2 ** 63 - 1])
COEFF = st.sampled_from([0.0, 0.5, 0.99, 1.0, -0.1, 1.5, float("nan"), float("inf"), 1e308])


@st.composite
def array_spec(draw, shape, dtype):
    """The expected array most of the time; otherwise one thing wrong with it."""
    fault = draw(st.sampled_from(["none"] * 6 + ["dtype", "shape", "layout", "fill", "py"]))
    spec: Dict[str, Any] = {"shape": list(shape), "dtype": dtype, "fill": "random"}
    if fault == "dtype":
        spec["dtype"] = draw(st.sampled_from(DTYPES))
    elif fault == "shape":
        spec["shape"] = draw(st.sampled_from([[], [0], [0, 3], list(shape)[::-1], list(shape) + [1],
                                              [max(1, shape[0] - 1)] + list(shape[1:])]))
    elif fault == "layout":
        spec["layout"] = draw(st.sampled_from(["strided", "fortran", "readonly"]))
    elif fault == "fill":
        spec["fill"] = draw(st.sampled_from(["nan", "inf", "ninf", "huge", "zeros", "neg"]))
    elif fault == "py":
        spec["py"] = draw(st.sampled_from([None, 1.0, [0, 1], "x"]))
    return spec


@st.composite
def returns_probe(draw):
    fn = draw(st.sampled_from(["gae", "reward_to_go", "discounted_cumsum", "nstep_returns",
                               "plan_threads"]))
    big = draw(st.sampled_from([False] * 5 + [True]))
    shape = [draw(st.integers(1, 12))] + ([] if draw(st.booleans()) else [draw(st.integers(1, 9))])
    if big:
        shape = [2, 4096]
    dt = draw(st.sampled_from(["<f4", "<f8"]))
    flag = draw(st.sampled_from(["|b1", "|u1", dt]))
    kinds = {"gae": [dt, dt, dt, flag, flag], "reward_to_go": [dt, flag, flag, dt],
             "discounted_cumsum": [dt, flag], "nstep_returns": [dt, dt, flag, flag],
             "plan_threads": []}[fn]
    arrays = [draw(array_spec(shape, k)) for k in kinds]
    if fn == "reward_to_go" and draw(st.booleans()):
        arrays[3] = None
    return {"kind": "returns", "fn": fn, "arrays": arrays, "num_threads": draw(THREADS),
            "gamma": draw(COEFF), "lam": draw(COEFF), "n": draw(st.sampled_from([1, 3, 0, -1, 2 ** 40])),
            "alias": draw(st.sampled_from([False] * 7 + [True])),
            "T": draw(st.sampled_from([0, 1, 100, -5, 2 ** 62])),
            "N": draw(st.sampled_from([0, 1, 4096, -5, 2 ** 62]))}


@st.composite
def core_probe(draw):
    return {"kind": "core", "env": draw(st.sampled_from(ENV_IDS + ["Nope-v0"])),
            "num_envs": draw(st.sampled_from([1, 3, 0, -1, 2 ** 31, 2 ** 40, 2 ** 62])),
            "num_threads": draw(THREADS), "same_step": draw(st.booleans())}


@st.composite
def env_op(draw):
    op = draw(st.sampled_from(["step", "step", "step_into", "step_into", "reset", "set_state",
                               "get_state", "load", "pickle", "bind"]))
    d: Dict[str, Any] = {"op": op}
    if op in ("step", "step_into"):
        kind = draw(st.sampled_from(["valid", "valid", "spec", "value", "py"]))
        d["act"] = {"kind": kind, "py": draw(st.sampled_from([None, 1, [1, 0], "a"])),
                    "value": draw(st.sampled_from([1e39, -1e39, float("nan"), float("inf"), 5.0,
                                                   -1.0, 2.0 ** 63, 3.5e38])),
                    "spec": {"shape": draw(st.sampled_from(["auto", [1], [3, 3]])),
                             "dtype": draw(st.sampled_from(DTYPES)),
                             "fill": draw(st.sampled_from(["random", "nan", "huge", "zeros"])),
                             "layout": draw(st.sampled_from(["c", "c", "strided", "readonly"]))}}
        d["outs"] = draw(st.sampled_from(["fresh", "fresh", "alias_obs_rew", "alias_term_trunc",
                                          "alias_act", "alias_final", "bad", "byteswapped"]))
        d["obs_spec"] = draw(array_spec([2, 2], "<f4"))
    elif op == "reset":
        d["seed"] = draw(st.sampled_from([None, 0, 1, -1, 2 ** 64, 2 ** 200, [0, None]]))
        opts: Dict[str, Any] = {}
        if draw(st.booleans()):
            key = draw(st.sampled_from(["low", "high", "x_init", "y_init", "bogus"]))
            opts[key] = draw(st.sampled_from([0.1, -0.1, 1e308, float("nan"), float("inf"), "s"]))
        if draw(st.booleans()):
            opts["reset_mask"] = draw(array_spec([1], "|b1"))
        d["options"] = opts
    elif op == "set_state":
        d["spec"] = draw(array_spec([1, 1], "<f8"))
        d["scale"] = draw(st.sampled_from([0, 1e6, 1e300]))
    elif op == "load":
        d["key"] = draw(st.sampled_from(["rows", "steps", "pending", "rng", "bounds", "ready",
                                         "rng_kind"]))
        d["how"] = draw(st.sampled_from(["drop", "nan", "byteswap", "shape", "value", "strided"]))
        d["value"] = draw(st.sampled_from([-1, 2 ** 62, 10 ** 6, 0]))
    elif op == "bind":
        d["ok"] = draw(st.booleans())
    return d


@st.composite
def env_probe(draw):
    return {"kind": "env", "env": draw(st.sampled_from(ENV_IDS)),
            "num_envs": draw(st.sampled_from([1, 2, 3, 17])),
            "num_threads": draw(st.sampled_from([1, 1, 2])),
            "mode": draw(st.sampled_from(["next_step", "same_step"])),
            "ops": draw(st.lists(env_op(), min_size=3, max_size=8))}


def _fix_shapes(probe: Dict[str, Any]) -> Dict[str, Any]:
    """State and mask specs get the env's real shape unless their fault is the shape."""
    for op in probe.get("ops", []):
        n = probe["num_envs"]
        if op["op"] == "set_state" and op["spec"]["shape"] == [1, 1]:
            op["spec"]["shape"] = [n, {"CartPole-v1": 4, "Pendulum-v1": 2, "Acrobot-v1": 4}.get(
                probe["env"], 2)]
        if op["op"] == "reset" and "reset_mask" in op["options"] and \
                op["options"]["reset_mask"].get("shape") == [1]:
            op["options"]["reset_mask"]["shape"] = [n]
    return probe


# --------------------------------------------------------------------------- tests

OUTCOMES: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    yield
    total = sum(sum(c.values()) for k, c in OUTCOMES.items() if k != "env calls")
    calls = sum(OUTCOMES["env calls"].values())
    lines = [f"fuzz: {total} probes ({calls} env calls in the env probes)"]
    for kind, c in sorted(OUTCOMES.items()):
        lines.append(f"  {kind:8s} " + ", ".join(f"{k}={v}" for k, v in c.most_common()))
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():
            print("\n" + "\n".join(lines))
    else:
        print("\n".join(lines))
    path = os.environ.get("PGFAST_FUZZ_REPORT")
    if path:
        with open(path, "w") as f:
            json.dump({"probes": total, "env_calls": calls, "outcomes": {k: dict(v) for k, v in OUTCOMES.items()}},
                      f, indent=1)


# Derandomized (the same probes every run unless PGFAST_FUZZ_EXAMPLES changes
# their number); no shrinking: a failure names its probe.
FUZZ = settings(deadline=None, derandomize=True, database=None,
                phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))


def draw_probes(strategy: st.SearchStrategy, count: int) -> List[Dict[str, Any]]:
    """count distinct probes as hypothesis generates them (simplest first, then
    random ones), to be run in batches by children."""
    out: List[Dict[str, Any]] = []

    @settings(FUZZ, max_examples=count)
    @given(strategy)
    def collect(probe):
        out.append(probe)

    collect()
    return out


def run_batches(probes: List[Dict[str, Any]], size: int, table: str,
                kind_of=lambda p: None) -> None:
    for k in range(0, len(probes), size):
        batch = probes[k:k + size]
        for p, o in zip(batch, run_batch(batch)):
            OUTCOMES[kind_of(p) or table][o] += 1


def test_fuzz_extension():
    probes = draw_probes(st.one_of(returns_probe(), core_probe()), CORE_BATCHES * CORE_PROBES)
    run_batches(probes, CORE_PROBES, "returns",
                lambda p: "returns" if p["kind"] == "returns" else "ctor")


def test_fuzz_envs():
    probes = [_fix_shapes(p) for p in draw_probes(env_probe(), ENV_BATCHES * ENV_PROBES)]
    for k in range(0, len(probes), ENV_PROBES):
        batch = probes[k:k + ENV_PROBES]
        OUTCOMES["envs"]["probes"] += len(batch)
        for o in run_batch(batch):
            OUTCOMES["env calls"][o] += 1


# The reproducers of the reliability issue, each in a child of its own.
KNOWN = [
    # outputs aliasing the actions (the actions were read again after validation)
    "import numpy as np,pgfast;n=512;e=pgfast.make_vec('Acrobot-v1',n,seed=0);"
    "b=np.zeros(n*6,np.float32);a=b.view(np.int64)[:n];a[:]=1;"
    "e.step_into(a,b.reshape(n,6),np.zeros(n),np.zeros(n,bool),np.zeros(n,bool))",
    # 65,536 threads asked of the kernels
    "import numpy as np,pgfast;z=np.zeros((1,2**20),np.float32);b=z.astype(bool);"
    "pgfast.gae(z,z,z,b,b,0.99,0.95,num_threads=10**6)",
    # a float64 action finite as float64 but inf as float32
    "import numpy as np,pgfast;e=pgfast.make_vec('MountainCarContinuous-v0',2,seed=0);"
    "e.step(np.full((2,1),1e39))",
]


@pytest.mark.parametrize("code", KNOWN, ids=["alias-actions", "threads-1e6", "action-1e39"])
def test_known_reproducers_raise_cleanly(code):
    script = f"{code}\n"
    wrapped = ("import sys\ntry:\n" + textwrap.indent(script, "    ") +
               "except (ValueError, TypeError) as e:\n    print('clean', type(e).__name__, e)\n"
               "    sys.exit(0)\nsys.exit(3)\n")
    r = subprocess.run([sys.executable, "-c", wrapped], capture_output=True, text=True,
                       timeout=TIMEOUT_S)
    assert r.returncode == 0 and r.stdout.startswith("clean"), (r.returncode, r.stdout,
                                                                  r.stderr[-2000:])
    OUTCOMES["known"][r.stdout.split()[1]] += 1
