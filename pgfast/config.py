"""Configuration: the shared Config base class, field documentation and value parsing.

Every algorithm's hyperparameters are a dataclass deriving from :class:`BaseConfig`
(CleanRL's names), with a one-line docstring under each field::

    learning_rate: float = 3e-4
    \"\"\"Adam learning rate\"\"\"

This module is the one place that knows how fields are documented
(:func:`field_docs`), typed (:func:`field_types`), checked against a mapping of
user-given names (:func:`check_fields`, with "did you mean" hints), parsed from
text (:func:`parse_value`, :func:`parse_overrides`) and listed for humans
(:func:`format_help`). Which Config belongs to which algorithm name is the
registry's business (:mod:`pgfast.algos`); the per-env settings are data in
:mod:`pgfast.presets`.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import inspect
import math
import os
import textwrap
import typing
import warnings
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Type, TypeVar

from pgfast import backends

__all__ = ["BaseConfig", "ADVANTAGES", "MAX_THREADS", "available_threads", "LEGACY_FIELDS", "LEGACY_NOTES",
           "field_docs", "field_types",
           "check_fields", "did_you_mean", "parse_value", "parse_overrides", "format_help", "RESERVED"]

C = TypeVar("C", bound="BaseConfig")

LEGACY_FIELDS: Dict[str, Tuple[Optional[str], Dict[bool, str]]] = {
    "native_rollout": ("rollout_backend", {True: "auto", False: "torch"}),
    "native_update": ("update_backend", {True: "auto", False: "torch"}),
    "fast_grads": (None, {}),
}
"""Config fields of earlier releases -> (the field that replaced them, old value -> new value);
``None``: gone without a replacement. :meth:`BaseConfig.from_saved` applies it to saved configs."""

LEGACY_NOTES: Dict[str, str] = {"fast_grads": "the torch update is autograd; update_backend picks C++ or torch"}
"""What :func:`check_fields` says when a removed field is given."""

MAX_THREADS = 1024
"""The largest ``num_threads`` (the C++ kernels' limit, csrc/parallel.hpp's kMaxThreadRequest)."""


def available_threads() -> int:
    """CPU threads this process may run on (its affinity mask where the OS has one)."""
    affinity = getattr(os, "sched_getaffinity", None)
    n = len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)
    return max(1, min(MAX_THREADS, n))


ADVANTAGES: Tuple[str, ...] = ("gae", "nstep", "mc")
"""Advantage estimators an algorithm accepts (``BaseConfig.advantage``)."""


@dataclass
class BaseConfig:
    """Hyperparameters shared by every algorithm (CleanRL names)."""

    num_envs: int = 8
    """number of parallel environments"""
    num_steps: int = 128
    """steps per env per rollout (the rollout is num_envs x num_steps)"""
    total_timesteps: int = 100_000
    """total env steps of the run"""
    learning_rate: float = 3e-4
    """Adam learning rate (policy and value; TRPO: value function only)"""
    anneal_lr: bool = False
    """anneal the learning rate linearly to 0 over the run"""
    gamma: float = 0.99
    """discount factor"""
    gae_lambda: float = 0.95
    """lambda of generalised advantage estimation (1.0: returns minus baseline)"""
    advantage: str = "gae"
    """advantage estimator: gae (GAE(gae_lambda)), nstep (n-step return minus V) or mc (reward-to-go minus V)"""
    nstep: int = 5
    """steps n of the n-step return before bootstrapping from V (advantage="nstep")"""
    num_minibatches: int = 4
    """minibatches per epoch of the (value-)update"""
    update_epochs: int = 4
    """epochs over the rollout per update"""
    norm_adv: bool = True
    """normalise advantages to zero mean and unit std"""
    ent_coef: float = 0.0
    """coefficient of the entropy bonus"""
    max_grad_norm: float = 0.5
    """clip of the global gradient norm (0 disables)"""
    hidden_sizes: Tuple[int, ...] = (64, 64)
    """hidden layer widths of the actor and the critic"""
    actor_hidden_sizes: Optional[Tuple[int, ...]] = None
    """hidden layer widths of the actor (None: hidden_sizes)"""
    critic_hidden_sizes: Optional[Tuple[int, ...]] = None
    """hidden layer widths of the critic (None: hidden_sizes)"""
    activation: str = "tanh"
    """activation of the hidden layers: tanh or relu"""
    ortho_init: bool = True
    """orthogonal initialisation of the networks"""
    log_std_init: float = 0.0
    """initial log-std of Gaussian policies (Box actions)"""
    norm_obs: bool = False
    """normalise observations with running mean/std (saved with the model)"""
    norm_reward: bool = False
    """scale rewards by the running std of the discounted return"""
    clip_obs: float = 10.0
    """clip of normalised observations"""
    clip_reward: float = 10.0
    """clip of scaled rewards"""
    rollout_backend: str = "auto"
    """rollout loop: auto (C++ where it applies: CPU, native envs, MLP policy), native (C++ or an error) or torch"""
    update_backend: str = "auto"
    """update: auto (C++ where the algorithm has one and it applies: CPU, MLP policy), native (C++ or error) or torch"""
    native_rollout: Optional[bool] = None
    """deprecated: use rollout_backend (True: "auto", False: "torch")"""
    encoder: str = "auto"
    """observation encoder: auto (a CNN for image observations, else an MLP), mlp or cnn"""
    share_encoder: bool = True
    """actor and critic read one CNN encoder (encoder cnn); False gives each its own"""
    num_threads: int = 1
    """CPU threads of one run (0: all): C++ update/rollout products, native envs, torch path; same results"""

    def __post_init__(self) -> None:
        """Check the fields and bring the layer widths to tuples of ints."""
        self.hidden_sizes = _widths("hidden_sizes", self.hidden_sizes)
        for name in ("actor_hidden_sizes", "critic_hidden_sizes"):
            if getattr(self, name) is not None:
                setattr(self, name, _widths(name, getattr(self, name)))
        for name in ("num_envs", "num_steps", "total_timesteps", "num_minibatches",
                     "update_epochs", "nstep"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        for name in ("gamma", "gae_lambda"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 <= v <= 1.0):
                raise ValueError(f"{name} must be in [0, 1], got {v!r}")
        for name in ("learning_rate", "ent_coef", "max_grad_norm", "clip_obs", "clip_reward"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.advantage not in ADVANTAGES:
            raise ValueError(f"advantage must be one of {', '.join(ADVANTAGES)}, got {self.advantage!r}"
                             f"{did_you_mean(str(self.advantage), ADVANTAGES)}")
        if not isinstance(self.num_threads, int) or isinstance(self.num_threads, bool) \
                or not 0 <= self.num_threads <= MAX_THREADS:
            raise ValueError(f"num_threads must be an int in [0, {MAX_THREADS}] (0: all the machine's "
                             f"threads), got {self.num_threads!r}")
        if self.encoder not in ("auto", "mlp", "cnn"):
            raise ValueError(f"encoder must be one of auto, mlp, cnn, got {self.encoder!r}"
                             f"{did_you_mean(str(self.encoder), ('auto', 'mlp', 'cnn'))}")
        for name in ("rollout_backend", "update_backend"):
            backends.check_backend(name, getattr(self, name))
        self._migrate("native_rollout", "rollout_backend")
        if self.activation not in ("tanh", "relu"):
            raise ValueError(f"activation must be 'tanh' or 'relu', got {self.activation!r}")
        if self.batch_size % self.num_minibatches:
            raise ValueError(f"num_envs * num_steps = {self.batch_size} must be divisible by "
                             f"num_minibatches = {self.num_minibatches}")

    def _migrate(self, old: str, new: str) -> None:
        """A deprecated bool field ``old`` (True: auto, False: torch) set: warn, move it to the
        backend field ``new`` (ValueError if that was set to something else) and clear it."""
        v = getattr(self, old)
        if v is None:
            return
        warnings.warn(f"{old} is deprecated: use {new}='auto' (for True) or 'torch' (for False)",
                      DeprecationWarning, stacklevel=4)
        want = "auto" if v else "torch"
        if getattr(self, new) not in ("auto", want):
            raise ValueError(f"{old}={v!r} contradicts {new}={getattr(self, new)!r}; give {new} only")
        setattr(self, new, want if getattr(self, new) == "auto" else getattr(self, new))
        setattr(self, old, None)

    @classmethod
    def from_saved(cls: Type[C], fields: Mapping[str, Any]) -> C:
        """The config of a checkpoint or run.json: fields of earlier releases that are gone
        or deprecated (:data:`LEGACY_FIELDS`) become their current form, silently."""
        d = dict(fields)
        for old, (new, mapping) in LEGACY_FIELDS.items():
            if old in d:
                v = d.pop(old)
                if new is not None and v is not None and new in {f.name for f in dataclasses.fields(cls)}:
                    d.setdefault(new, mapping[bool(v)])
        return cls(**d)

    # ---- derived values (computed here only) ----
    @property
    def batch_size(self) -> int:
        """Env steps per rollout: num_envs * num_steps."""
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        """batch_size // num_minibatches."""
        return self.batch_size // self.num_minibatches

    @property
    def threads(self) -> int:
        """num_threads resolved: the threads this process may run on where it is 0
        (:func:`available_threads`), else num_threads."""
        return self.num_threads if self.num_threads > 0 else available_threads()

    @property
    def num_iterations(self) -> int:
        """Rollouts in the run: total_timesteps // batch_size (at least 1)."""
        return max(1, self.total_timesteps // self.batch_size)

    @classmethod
    def field_names(cls) -> List[str]:
        """Names of all config fields."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_fields(cls: Type[C], fields: Mapping[str, Any]) -> C:
        """Build a config from a mapping, refusing unknown names (see :func:`check_fields`)."""
        check_fields(cls, fields)
        return cls(**fields)

    def to_dict(self) -> Dict[str, Any]:
        """Plain dict of the fields."""
        return dataclasses.asdict(self)


def _widths(name: str, value: Any) -> Tuple[int, ...]:
    """Hidden layer widths as a tuple of ints; ValueError naming ``name`` unless ``value`` is a
    sequence of positive integers (empty: no hidden layer)."""
    try:
        widths = tuple(value)
        ok = all(not isinstance(h, (bool, str)) and int(h) == h and int(h) >= 1 for h in widths)
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be a sequence of positive ints (hidden layer widths), "
                         f"got {value!r}")
    return tuple(int(h) for h in widths)


def _config_name(cls: type) -> str:
    return getattr(cls, "algo_name", None) or cls.__name__


def field_docs(cls: type) -> Dict[str, str]:
    """One-line docstring of every field of a Config dataclass (read from the source)."""
    docs: Dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        node0 = tree.body[0]
        assert isinstance(node0, ast.ClassDef)
        body = node0.body
        for node, nxt in zip(body, [*body[1:], None]):
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                doc = ""
                if (isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                        and isinstance(nxt.value.value, str)):
                    doc = nxt.value.value.strip()
                docs[node.target.id] = doc
    return docs


def field_types(cls: type) -> Dict[str, Any]:
    """Field name -> resolved type annotation of a Config dataclass."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls)}


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``" (did you mean X?)"`` for the closest choices to ``name``, or ``""``."""
    close = difflib.get_close_matches(str(name), list(choices), n=2)
    return f" (did you mean {' or '.join(close)}?)" if close else ""


def check_fields(cls: type, names: Iterable[str]) -> None:
    """Raise ValueError naming every key in ``names`` that is not a field of ``cls``,
    with close matches as hints and the list of valid fields."""
    valid = [f.name for f in dataclasses.fields(cls)]
    bad = [k for k in names if k not in valid]
    if bad:
        hints = ", ".join(f"{k!r} (removed: {LEGACY_NOTES[k]})" if k in LEGACY_NOTES
                          else f"{k!r}{did_you_mean(k, valid)}" for k in bad)
        raise ValueError(f"unknown config field(s) for {_config_name(cls)}: {hints}; "
                         f"valid fields: {', '.join(sorted(valid))}")


_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}


def parse_value(text: str, typ: Any, name: str = "value") -> Any:
    """Parse ``text`` to ``typ`` (bool, int, float, str, Optional[X],
    tuple/list of X written "a,b,c"). Raises ValueError naming ``name``."""
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    s = text.strip()
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        non_none = [a for a in args if a is not type(None)]
        if type(None) in args and s.lower() in ("none", "null", ""):
            return None
        for a in non_none:
            try:
                return parse_value(s, a, name)
            except ValueError:
                pass
        raise ValueError(f"{name}: cannot parse {text!r} as {typ}")
    if origin in (tuple, list, Sequence, typing.Sequence) or typ in (tuple, list):
        inner = args[0] if args else str
        parts = [p for p in s.strip("()[]").split(",") if p.strip() != ""]
        vals = [parse_value(p, inner, name) for p in parts]
        return tuple(vals) if (origin is tuple or typ is tuple) else vals
    if typ is bool:
        if s.lower() in _TRUE:
            return True
        if s.lower() in _FALSE:
            return False
        raise ValueError(f"{name}: expected a boolean (true/false), got {text!r}")
    if typ is int:
        try:
            return int(s)
        except ValueError:
            pass
        try:
            f = float(s)
        except ValueError:
            raise ValueError(f"{name}: expected an integer, got {text!r}") from None
        if not f.is_integer():
            raise ValueError(f"{name}: expected an integer, got {text!r}")
        return int(f)
    if typ is float:
        try:
            return float(s)
        except ValueError:
            raise ValueError(f"{name}: expected a number, got {text!r}") from None
    if typ is str or typ is Any:
        return s
    raise ValueError(f"{name}: fields of type {typ} cannot be set from the command line")


RESERVED = ("total_timesteps", "seed", "device")
"""Arguments of the command line that have their own option instead of ``--set``."""


def parse_overrides(pairs: Iterable[str], configs: Mapping[str, type]) -> Dict[str, Dict[str, Any]]:
    """Parse ``--set`` items for the algorithms in ``configs`` (name -> Config class).

    Each item is ``field=value`` (applies to every algorithm given; the field must
    exist in all of them) or ``algo.field=value`` (only that algorithm). Values are
    parsed to the Config field's type. Returns algo -> {field: value}. Raises
    ValueError for malformed items, unknown fields (with "did you mean") and
    unparsable values.
    """
    out: Dict[str, Dict[str, Any]] = {a: {} for a in configs}
    for item in pairs:
        if "=" not in item:
            raise ValueError(f"--set: expected field=value, got {item!r}")
        key, val = item.split("=", 1)
        key = key.strip()
        targets = list(configs)
        if "." in key:
            a, key = key.split(".", 1)
            a = a.lower()
            if a not in configs:
                raise ValueError(f"--set: {item!r} targets {a!r}, which this command does not run "
                                 f"({', '.join(configs)}){did_you_mean(a, configs)}")
            targets = [a]
        if not key:
            raise ValueError(f"--set: empty field name in {item!r}")
        if key in RESERVED:
            raise ValueError(f"--set: {key!r} has its own option (--{key.replace('_', '-')})")
        for a in targets:
            types = field_types(configs[a])
            check_fields(configs[a], [key])
            out[a][key] = parse_value(val, types[key], name=f"--set {key}")
    return out


def _type_name(typ: Any) -> str:
    if isinstance(typ, type):
        return typ.__name__
    return str(typ).replace("typing.", "")


def format_help(cls: type, defaults: Mapping[str, Any] | None = None) -> str:
    """Every field of ``cls`` with its type, default and docstring, one per line.

    ``defaults`` (e.g. an env's preset) replaces the dataclass defaults where given
    and is marked with ``*``.
    """
    docs, types = field_docs(cls), field_types(cls)
    defaults = dict(defaults or {})
    base = {f.name: getattr(cls(), f.name) for f in dataclasses.fields(cls)}
    cells = []
    for name in docs:
        value = defaults.get(name, base[name])
        mark = "*" if name in defaults and defaults[name] != base[name] else ""
        cells.append((name, f"{_type_name(types[name])} = {value!r}{mark}", docs[name]))
    w1 = max(len(c[0]) for c in cells)
    w2 = max(len(c[1]) for c in cells)
    return "\n".join(f"  {a:<{w1}}  {b:<{w2}}  {c}" for a, b, c in cells)
