"""Plain state: checkpoint contents that load without running code from the file.

A checkpoint (:mod:`pgfast.checkpoint`) is read with ``torch.load(weights_only=True)``,
which rebuilds tensors and plain Python values (dict, list, tuple, str, bytes, int,
float, bool, None) and refuses every other object. :func:`encode` turns what a run's
state holds besides those into such values, :func:`decode` turns them back:

* a NumPy array -> ``{"__ndarray__": bytes, "dtype": "<f8", "shape": [...]}`` (object
  and structured dtypes are refused both ways);
* a NumPy scalar -> the Python number; an Enum -> its value;
* a ``numpy.random.Generator`` -> ``{"__np_random__": bit_generator.state}`` (a dict
  of ints and strings; only NumPy's own bit generators are rebuilt).

Env state (:func:`capture_env` / :func:`restore_env`) is stored the same way, never
as a pickle:

* a native env (classic control, MuJoCo): ("native", its ``__getstate__`` dict); it is
  restored into a new object of the env's own class (the class comes from the env
  being restored, never from the file);
* a gymnasium ``SyncVectorEnv``: ("gym", {...}) with, per sub-env, the plain
  attributes of every wrapper (TimeLimit's step counter, ...) and of the unwrapped
  env (its state array, ``np_random``, ...), and for MuJoCo envs every array of the
  ``MjData`` (qpos, qvel, act, warm start, controls, and the derived quantities that
  gymnasium's envs read before stepping) and its time. An env holding state that is none of these (a
  Box2D world, ...) is recorded as not captured exactly, with the reason;
* an env offering only ``get_state()``: ("state", float64 array).

Checkpoints of the first format (pickles) are read only with ``trust=True``
(:func:`restore_env` then also accepts their pickled env states).
"""

from __future__ import annotations

import enum
import math
import pickle
from typing import Any, Dict, List, Optional, Tuple

import gymnasium as gym
import numpy as np
import torch

__all__ = ["encode", "decode", "capture_env", "inexact_reason", "restore_env", "INEXACT_NO_CAPTURE",
           "first_non_finite"]

_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
_PLAIN = (str, bytes, int, float, bool, type(None))


def encode(obj: Any) -> Any:
    """``obj`` as tensors and plain values only (see the module docstring);
    raises TypeError naming the first value that has no plain form."""
    if isinstance(obj, torch.Tensor) or isinstance(obj, _PLAIN):
        return obj
    if isinstance(obj, enum.Enum):
        return encode(obj.value)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in "OVUS" or obj.dtype.fields is not None:
            raise TypeError(f"array of dtype {obj.dtype} has no plain form")
        a = np.ascontiguousarray(obj)
        return {"__ndarray__": a.tobytes(), "dtype": a.dtype.str, "shape": list(a.shape)}
    if isinstance(obj, np.random.Generator):
        return {"__np_random__": encode(obj.bit_generator.state)}
    if isinstance(obj, dict):
        return {k: encode(v) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return tuple(encode(v) for v in obj)
    if isinstance(obj, list):
        return [encode(v) for v in obj]
    raise TypeError(f"{type(obj).__module__}.{type(obj).__qualname__} has no plain form")


def _decode_array(d: Dict[str, Any]) -> np.ndarray:
    dtype = np.dtype(str(d["dtype"]))
    if dtype.kind in "OVUS" or dtype.fields is not None:
        raise ValueError(f"array of dtype {dtype} refused")
    shape = tuple(int(s) for s in d["shape"])
    raw = d["__ndarray__"]
    if not isinstance(raw, bytes) or len(raw) != math.prod(shape) * dtype.itemsize:
        raise ValueError("array data does not match its shape and dtype")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def _decode_generator(state: Dict[str, Any]) -> np.random.Generator:
    name = state.get("bit_generator")
    if name not in _BIT_GENERATORS:
        raise ValueError(f"unknown bit generator {name!r}")
    bg = getattr(np.random, name)()
    bg.state = state
    return np.random.Generator(bg)


def decode(obj: Any) -> Any:
    """Inverse of :func:`encode`."""
    if isinstance(obj, dict):
        if "__ndarray__" in obj:
            return _decode_array(obj)
        if "__np_random__" in obj:
            return _decode_generator(decode(obj["__np_random__"]))
        return {k: decode(v) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return tuple(decode(v) for v in obj)
    if isinstance(obj, list):
        return [decode(v) for v in obj]
    return obj


def first_non_finite(obj: Any, where: str = "") -> Optional[str]:
    """The path of the first non-finite float or floating tensor/array in ``obj``
    (nested dicts, lists, tuples), or None when everything is finite."""
    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point() and obj.numel() and not bool(torch.isfinite(obj).all()):
            return where or "value"
        return None
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind == "f" and obj.size and not bool(np.isfinite(obj).all()):
            return where or "value"
        return None
    if isinstance(obj, float):
        return None if math.isfinite(obj) else (where or "value")
    if isinstance(obj, dict):
        items: Any = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    else:
        return None
    for k, v in items:
        found = first_non_finite(v, f"{where}.{k}" if where else str(k))
        if found is not None:
            return found
    return None


# --------------------------------------------------------------------------- env state


INEXACT_NO_CAPTURE = "the env offers neither a plain state nor get_state()"


def _is_mujoco(u: Any) -> bool:
    data = getattr(u, "data", None)
    return getattr(u, "model", None) is not None and type(data).__module__.startswith("mujoco")


# attributes that are configuration or live resources, not state
_SKIP_ATTRS = frozenset({"env", "spec", "_cached_spec", "metadata", "_metadata", "render_mode", "model", "data",
                         "mujoco_renderer", "screen", "clock", "window", "viewer", "_action_space",
                         "_observation_space", "action_space", "observation_space"})
_CONFIG_TYPES: Tuple[type, ...] = (gym.Space, gym.envs.registration.EnvSpec)


def _plain_attrs(obj: Any) -> Tuple[Dict[str, Any], Optional[str]]:
    """(encodable attributes of ``obj``, the name of an attribute that holds state in
    another form, or None)."""
    out: Dict[str, Any] = {}
    for k, v in vars(obj).items():
        if k in _SKIP_ATTRS or isinstance(v, _CONFIG_TYPES) or callable(v) and not isinstance(v, np.ndarray):
            continue
        try:
            out[k] = encode(v)
        except TypeError:
            return out, k
    return out, None


def _capture_gym_sync(env: Any) -> Tuple[str, Any]:
    subs: List[Dict[str, Any]] = []
    for e in env.envs:
        u = e.unwrapped
        if isinstance(u, gym.utils.EzPickle) and not _is_mujoco(u):
            return ("gym", {"exact": False, "reason": (
                f"{type(u).__name__} pickles only its constructor arguments (gymnasium's EzPickle) "
                f"and its simulator state cannot be captured")})
        layers = []
        layer = e
        while True:
            attrs, bad = _plain_attrs(layer)
            if bad is not None:
                return ("gym", {"exact": False, "reason": (
                    f"{type(layer).__name__}.{bad} holds state that has no plain form")})
            layers.append({"type": type(layer).__name__, "attrs": attrs})
            if layer is u:
                break
            layer = layer.env
        subs.append({"layers": layers, "sim": _mjdata_arrays(u.data) if _is_mujoco(u) else None})
    return ("gym", {"exact": True, "subs": subs, "autoreset": encode(np.array(env._autoreset_envs))})


def _mjdata_arrays(data: Any) -> Dict[str, Any]:
    """Every array of an ``MjData`` (state and derived quantities: gymnasium's MuJoCo
    envs read positions computed by the previous step) and its time, encoded."""
    out: Dict[str, Any] = {"time": float(data.time)}
    for name in dir(data):
        if name.startswith("_"):
            continue
        try:
            v = getattr(data, name)
        except Exception:  # noqa: BLE001 - a property that cannot be read now holds no state
            continue
        if isinstance(v, np.ndarray) and v.size and v.flags.writeable:
            out[name] = encode(v)
    return out


_MJ_STATE = ("qpos", "qvel", "act", "qacc_warmstart", "ctrl")


def _set_mjdata_arrays(data: Any, arrays: Dict[str, Any]) -> None:
    """Inverse of :func:`_mjdata_arrays`. The state arrays must fit the model; arrays
    whose size changes from step to step (the constraint solver's rows, recomputed by
    every step before use) are copied only where their size matches."""
    for name in _MJ_STATE:
        dst = getattr(data, name)
        if name in arrays and dst.shape != np.shape(arrays[name]):
            raise ValueError(f"the MuJoCo state in the checkpoint does not fit the env's model ({name})")
    for name, v in arrays.items():
        if name == "time":
            data.time = float(v)
            continue
        dst = getattr(data, name, None)
        if isinstance(dst, np.ndarray) and dst.shape == np.shape(v):
            dst[...] = v


def capture_env(env: Any) -> Optional[Tuple[str, Any]]:
    """The env's state for a checkpoint, in plain values (see the module docstring),
    or None when it cannot be captured."""
    if isinstance(env, gym.vector.SyncVectorEnv):
        return _capture_gym_sync(env)
    getstate = getattr(type(env), "__getstate__", None)
    if getattr(env, "PLAIN_STATE", False) and getstate is not None:
        return ("native", encode(env.__getstate__()))
    if hasattr(env, "get_state"):
        return ("state", np.array(env.get_state(), dtype=np.float64))
    return None


def inexact_reason(captured: Optional[Tuple[str, Any]]) -> Optional[str]:
    """None when ``captured`` restores the env exactly (a resumed run continues
    like an uninterrupted one); otherwise why not."""
    if captured is None:
        return INEXACT_NO_CAPTURE
    kind, data = captured
    if kind == "gym" and not data["exact"]:
        return str(data["reason"])
    if kind == "state":
        return "only the physics state (get_state) was captured: reset RNG and step counters are fresh"
    return None


def _restore_gym_sync(env: Any, data: Dict[str, Any]) -> Any:
    subs = data["subs"]
    if len(subs) != len(env.envs):
        raise ValueError(f"the checkpoint holds {len(subs)} sub-envs, the env has {len(env.envs)}")
    for e, sub in zip(env.envs, subs):
        layer = e
        for rec in sub["layers"]:
            if type(layer).__name__ != rec["type"]:
                raise ValueError(f"env wrappers differ from the checkpoint's: {type(layer).__name__} "
                                 f"where it has {rec['type']}")
            for k, v in decode(rec["attrs"]).items():
                setattr(layer, k, v)
            layer = getattr(layer, "env", None)
        if sub["sim"] is not None:
            _set_mjdata_arrays(e.unwrapped.data, decode(sub["sim"]))
    env._autoreset_envs = decode(data["autoreset"])
    return env


def _restore_legacy(env: Any, kind: str, data: Any) -> Any:
    """Env states of format-1 checkpoints (pickles; only reached with trust=True)."""
    if kind == "pickle":
        new = pickle.loads(data)
        env.close()
        return new
    if kind == "gym" and not data["exact"]:
        return env
    d = pickle.loads(data) if kind == "sync" else data
    envs = d["envs"] if kind == "sync" else pickle.loads(d["envs"])
    for e, sim in zip(envs, d.get("sims") or [None] * len(envs)):
        if sim is not None:
            import mujoco

            u, s = e.unwrapped, pickle.loads(sim)
            mujoco.mj_copyData(u.data, u.model, s["data"])
            u._np_random = s["np_random"]
            u._np_random_seed = s["np_random_seed"]
    for e in env.envs:
        e.close()
    env.envs = envs
    env._autoreset_envs = d["autoreset"]
    return env


def restore_env(env: Any, captured: Optional[Tuple[str, Any]], trust: bool = False) -> Any:
    """Apply a captured env state; returns the env to use (maybe a new object,
    in which case ``env`` is closed). An inexact capture (:func:`inexact_reason`)
    other than "state" leaves ``env`` as it is: the caller resets it. Pickled env
    states (format-1 checkpoints) are refused unless ``trust``."""
    if captured is None:
        return env
    kind, data = captured
    if kind == "native":
        cls = type(env)
        if not getattr(cls, "PLAIN_STATE", False):
            raise ValueError(f"the checkpoint holds a native env state, the env is a {cls.__name__}")
        new = object.__new__(cls)
        new.__setstate__(decode(data))
        env.close()
        return new
    if kind == "gym" and "subs" in data:
        return _restore_gym_sync(env, data)
    if kind == "gym" and not data["exact"]:
        return env
    if kind in ("pickle", "sync", "gym"):
        if not trust:
            raise ValueError("the env state in this checkpoint is a pickle (an earlier pgfast format); "
                             "load it with trust=True only if you made the file")
        return _restore_legacy(env, kind, data)
    if kind == "state":
        env.set_state(data)
        return env
    raise ValueError(f"unknown env state kind {kind!r} in checkpoint")
