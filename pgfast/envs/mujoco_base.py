"""The MuJoCo engines behind pgfast.envs.mujoco's task classes.

:class:`MujocoVectorEnv` holds ``num_envs`` simulations of one model and implements
:class:`NativeVectorEnv`'s core hooks on them (reset noise, stepping with ``frame_skip``,
time limits, autoresets, state access, pickling) with one of two engines:

* ``"cpp"`` (:mod:`pgfast.envs.mujoco_core`): one MjData per env, stepped and evaluated in
  C++ (observations, rewards, termination, autoresets), for every task with a C++ form
  (``CORE_KIND``); the native rollout steps it with no Python per step.
* ``"batch"``: a :class:`mujoco.batch.Batch`, with the task subclass's observation, reward
  and termination computed in NumPy (``_write_obs``, ``_rewards``); the reference the C++
  engine is tested against, and the engine of Reacher and Pusher.

See ``pgfast/envs/mujoco.py``'s docstring for the batch engine and the differences from
gymnasium.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding

from pgfast.envs.mujoco_core import (  # noqa: F401  (mujoco_available re-exported)
    DERIVED_FIELDS,
    CoreEngine,
    _asset_path,
    _import_mujoco,
    _load_model,
    core_library,
    mujoco_available,
    norm_uses_fma,
)
from pgfast.envs.native import NativeVectorEnv, SeedRows

__all__ = ["MujocoVectorEnv", "mujoco_available"]


def _check_out(x: np.ndarray, name: str, shape: Tuple[int, ...], dtypes: Tuple[np.dtype, ...]) -> None:
    """Check a caller-provided output array (already a NumPy view)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array or a CPU torch tensor, got {type(x).__name__}")
    if x.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {x.shape}")
    if x.dtype not in dtypes:
        raise TypeError(f"{name} must have dtype in {[str(d) for d in dtypes]}, got {x.dtype}")
    if not x.flags.c_contiguous or not x.flags.writeable:
        raise ValueError(f"{name} must be C-contiguous and writable")


_F32, _F64, _BOOL = np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.bool_)


class MujocoVectorEnv(NativeVectorEnv):
    """``num_envs`` copies of a gymnasium v5 MuJoCo task, stepped in one C call.

    The Python side (spaces, seeding, reset options, step/step_into and the
    info dict) is :class:`pgfast.envs.native.NativeVectorEnv`'s; this class is
    its core.  Subclasses name the task (``ENV_ID``, ``XML_FILE``,
    ``FRAME_SKIP``, the keyword defaults in ``DEFAULTS``) and implement
    ``_obs_dim``, ``_write_obs`` and ``_rewards`` on the batched state
    (qpos ``[N, nq]``, qvel ``[N, nv]``).

    Seeding: env i with seed s draws its reset noise from gymnasium's
    ``np_random(s + i)``, which is what gymnasium's vector env seeded with s
    gives its env i.

    Args:
        num_envs: number of simulations N (>= 1).
        seed: if given, ``reset(seed=seed)`` is called once.
        autoreset_mode: ``"next_step"``, ``"same_step"`` or ``"disabled"`` (see the base class).
        num_threads: threads that step the simulations (results do not depend on it).
        max_episode_steps: time limit (gymnasium's TimeLimit), the registered one by default.
        xml_file, frame_skip, reset_noise_scale, ...: the gymnasium env's keyword
            arguments (see ``DEFAULTS`` of each class).
        engine: ``"auto"`` (C++ where the task has a C++ form, :attr:`engine` says which
            runs), ``"cpp"`` (ValueError where it cannot apply) or ``"batch"``.
    """

    PLAIN_STATE = True  # __getstate__ holds arrays and plain values only (pgfast.envstate)

    ENV_ID: str = ""
    XML_FILE: str = ""
    FRAME_SKIP: int = 1
    MAX_EPISODE_STEPS: int = 1000  # gymnasium's registered time limit
    DEFAULTS: Dict[str, Any] = {}
    QVEL_NOISE: str = "uniform"  # or "normal": gymnasium's reset noise of qvel
    PERSISTENT: bool = False  # one MjData per simulation (the task reads its derived data)
    CORE_KIND: str = ""  # the task's C++ form (pgfast.envs.mujoco_core); "" for none
    _ctrl_cost_weight: float  # set by the _configure of tasks with a control cost

    def __init__(self, num_envs: int = 1, seed: Optional[int] = None,
                 autoreset_mode: str = "next_step", num_threads: int = 1,
                 max_episode_steps: Optional[int] = None, xml_file: Optional[str] = None,
                 frame_skip: Optional[int] = None, render_mode: Optional[str] = None,
                 copy: bool = True, engine: str = "auto", **kwargs: Any):
        mujoco = _import_mujoco(self.ENV_ID)
        from mujoco import batch as mj_batch
        if max_episode_steps is None:
            max_episode_steps = self.MAX_EPISODE_STEPS
        for name, value in (("num_threads", num_threads), ("max_episode_steps", max_episode_steps)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if render_mode is not None:
            raise ValueError(f"render_mode {render_mode!r} is not supported by the native {self.ENV_ID}; "
                             f"use backend='gymnasium' to render")
        unknown = sorted(set(kwargs) - set(self.DEFAULTS))
        if unknown:
            raise TypeError(f"{self.ENV_ID}: unexpected keyword argument(s) {unknown}; accepted: "
                            f"{sorted(self.DEFAULTS) + ['frame_skip', 'max_episode_steps', 'xml_file']}")
        params = dict(self.DEFAULTS)
        params.update(kwargs)
        frame_skip = self.FRAME_SKIP if frame_skip is None else frame_skip
        if not isinstance(frame_skip, (int, np.integer)) or isinstance(frame_skip, bool) or frame_skip < 1:
            raise ValueError(f"frame_skip must be a positive int, got {frame_skip!r}")

        library = self._engine_library(mujoco, engine)
        self._ctor = dict(num_envs=num_envs, autoreset_mode=autoreset_mode,
                          num_threads=num_threads, max_episode_steps=max_episode_steps,
                          xml_file=xml_file, frame_skip=frame_skip, copy=copy, engine=engine,
                          **kwargs)
        self.num_threads = int(num_threads)
        self.frame_skip = int(frame_skip)
        self.max_episode_steps = int(max_episode_steps)
        self.model = _load_model(mujoco, _asset_path(self.XML_FILE if xml_file is None else xml_file))
        self.dt = self.model.opt.timestep * self.frame_skip  # as gymnasium's MujocoEnv.dt
        self.nq, self.nv, self.nu = self.model.nq, self.model.nv, self.model.nu
        self.init_qpos = self.model.qpos0.copy()  # what MjData(model).qpos starts as
        self.init_qvel = np.zeros(self.nv)
        self._configure(params)
        self.obs_dim = self._obs_dim()
        # spaces exactly as gymnasium's env builds them
        low, high = self.model.actuator_ctrlrange.copy().astype(np.float32).T
        spec_kwargs = dict(kwargs)
        if xml_file is not None:
            spec_kwargs["xml_file"] = xml_file
        if frame_skip != self.FRAME_SKIP:
            spec_kwargs["frame_skip"] = self.frame_skip
        super().__init__(
            num_envs=num_envs,
            single_observation_space=spaces.Box(-np.inf, np.inf, shape=(self.obs_dim,), dtype=np.float64),
            single_action_space=spaces.Box(low=low, high=high, dtype=np.float32),
            autoreset_mode=autoreset_mode, copy=copy)
        self._env_id = self.ENV_ID
        if self.num_threads != 1:
            spec_kwargs["num_threads"] = self.num_threads
        if engine != "auto":
            spec_kwargs["engine"] = engine
        # gymnasium registers every covered id
        self.spec = self._make_spec(self.ENV_ID, {**spec_kwargs,
                                                  "max_episode_steps": self.max_episode_steps})
        self.autoreset_mode = self.metadata["autoreset_mode"].name.lower()

        n = self.num_envs
        self._elapsed = np.zeros(n, dtype=np.int64)
        self._needs_reset = np.zeros(n, dtype=bool)
        self._rngs: list = [None] * n
        self.engine = "cpp" if library is not None else "batch"
        """The engine that steps the simulations: "cpp" or "batch" (see the module docstring)."""
        self._core: Optional[CoreEngine] = None
        self._batch: Any = None
        if library is not None:
            self._core = CoreEngine(self, mujoco, library)
        else:
            self._batch = mj_batch.Batch(self.model, n, nthread=self.num_threads,
                                         persistent=self.PERSISTENT)
            self._qpos = self._batch.bind("qpos")    # [N, nq] live view of the state rows
            self._qvel = self._batch.bind("qvel")    # [N, nv]
            self._ctrl = self._batch.bind("ctrl")    # [N, nu]
            self._bind_outputs()
            self._stage_none = int(mujoco.mjtStage.mjSTAGE_NONE)
            self._x_before = np.zeros(n, dtype=np.float64)
        if seed is not None:
            self.reset(seed=seed)

    def _engine_library(self, mujoco: Any, engine: str) -> Optional[str]:
        """The libmujoco path for the C++ engine, None for the batch engine (``engine`` as given)."""
        if engine not in ("auto", "cpp", "batch"):
            raise ValueError(f"engine must be 'auto', 'cpp' or 'batch', got {engine!r}")
        if engine == "batch":
            return None
        unsure = self.CORE_KIND in ("reacher", "pusher") and norm_uses_fma() is None
        library = core_library(mujoco) if self.CORE_KIND and not unsure else None
        if engine == "cpp" and library is None:
            why = ("has no C++ form" if not self.CORE_KIND else "cannot match numpy's norm here"
                   if unsure else "found no libmujoco in the mujoco package")
            raise ValueError(f"engine='cpp': {self.ENV_ID} {why}; use engine='batch'")
        return library

    def native_core(self) -> Any:
        """The C++ core (``pgfast._C.MujocoVecEnv``) a native rollout steps directly: with the
        C++ engine in "same_step" mode, else None."""
        if self._core is not None and self._same_step and not self.closed:
            return self._core.core
        return None

    # ------------------------------------------------------------------ task hooks
    def _configure(self, params: Dict[str, Any]) -> None:
        """Read the task's keyword parameters into attributes."""
        self._reset_noise_scale = float(params["reset_noise_scale"])

    def _bind_outputs(self) -> None:
        """Bind the derived MjData fields the task reads (default: none)."""

    def _obs_dim(self) -> int:
        raise NotImplementedError

    def _write_obs(self, out: np.ndarray) -> None:
        """Write observations of all envs into ``out`` [N, obs_dim] float64."""
        raise NotImplementedError

    def _before_step(self) -> None:
        """Record what the reward needs from the state before the step."""
        np.copyto(self._x_before, self._qpos[:, 0])

    def _after_physics(self, ids: Optional[np.ndarray]) -> None:
        """Runs right after the physics stepped envs ``ids`` (None: all); default: nothing."""

    def _reset_state(self, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
        """One env's qpos, qvel after a reset, drawn from its generator (gymnasium's reset_model)."""
        s = self._reset_noise_scale
        qpos = self.init_qpos + rng.uniform(low=-s, high=s, size=self.nq)
        if self.QVEL_NOISE == "normal":
            qvel = self.init_qvel + s * rng.standard_normal(self.nv)
        else:
            qvel = self.init_qvel + rng.uniform(low=-s, high=s, size=self.nv)
        return qpos, qvel

    def _rewards(self, actions: np.ndarray, rew: np.ndarray, term: np.ndarray) -> None:
        """Write rewards and termination of all envs after a step."""
        raise NotImplementedError

    def _ctrl_cost(self, actions: np.ndarray) -> np.ndarray:
        # gymnasium: ctrl_cost_weight * np.sum(np.square(action)), in the action's dtype
        return self._ctrl_cost_weight * np.sum(np.square(actions), axis=1)

    def _x_velocity(self) -> np.ndarray:
        return (self._qpos[:, 0] - self._x_before) / self.dt

    # ------------------------------------------------------------------ core
    def _validate_actions(self, a: np.ndarray) -> np.ndarray:
        if a.shape != (self.num_envs, self.nu):
            raise ValueError(f"actions must have shape {(self.num_envs, self.nu)}, got {a.shape}")
        if a.dtype.kind not in "fiu":
            raise TypeError(f"actions must be a real float or int array, got dtype {a.dtype}")
        if a.dtype != _F32:  # float32 is kept: gymnasium's ctrl cost is then float32 too
            a = a.astype(np.float64, copy=False)
        if not np.isfinite(a).all():
            raise ValueError("actions must be finite (got NaN or inf)")
        return a

    def _reset_envs(self, ids: Optional[np.ndarray]) -> None:
        """gymnasium's reset of envs ``ids`` (None: all): mj_resetData, noise, mj_forward."""
        b = self._batch
        b.reset(ids, stage=self._stage_none)
        rows = range(self.num_envs) if ids is None else ids
        for i in rows:
            self._qpos[i], self._qvel[i] = self._reset_state(self._rngs[i])
        b.forward(ids)
        if ids is None:
            self._elapsed[:] = 0
            self._needs_reset[:] = False
        else:
            self._elapsed[ids] = 0
            self._needs_reset[ids] = False

    def _core_seed(self, rows: SeedRows) -> None:
        self._check_alive()
        for i in np.flatnonzero(rows.which).tolist():
            self._rngs[i] = seeding.np_random(rows.int_at(i))[0]

    def _core_any_pending(self) -> bool:
        return bool(self._needs_reset.any())

    def _core_pending_mask(self) -> np.ndarray:
        return self._needs_reset.copy()

    def _core_reset(self, mask: Optional[np.ndarray], options: Dict[str, Any]) -> None:
        self._check_alive()
        ids = None if mask is None or mask.all() else np.flatnonzero(mask).astype(np.int32)
        if self._core is not None:
            return self._core.reset(ids)  # writes every env's obs
        self._reset_envs(ids)
        self._write_obs(self._obs)

    def _core_step(self, actions: np.ndarray) -> None:
        if self._core is not None:
            self._check_alive()
            return self._core.step(self._validate_actions(actions))
        self._step(actions)

    def _core_step_into(self, actions: np.ndarray, obs: np.ndarray, rew: np.ndarray,
                        term: np.ndarray, trunc: np.ndarray) -> None:
        if self._core is not None:
            self._check_alive()
            return self._core.step_into(self._validate_actions(actions), obs, rew, term, trunc)
        n = self.num_envs
        _check_out(obs, "obs_out", (n, self.obs_dim), (_F32, _F64))
        _check_out(rew, "rew_out", (n,), (_F32, _F64))
        _check_out(term, "term_out", (n,), (_BOOL,))
        _check_out(trunc, "trunc_out", (n,), (_BOOL,))
        self._step(actions)
        np.copyto(obs, self._obs, casting="same_kind")
        np.copyto(rew, self._rew, casting="same_kind")
        np.copyto(term, self._term)
        np.copyto(trunc, self._trunc)

    def _step(self, actions: np.ndarray) -> None:
        self._check_alive()
        a = self._validate_actions(actions)  # before any state changes
        pending = self._needs_reset
        any_pending = bool(pending.any())
        self._ctrl[...] = a
        step_ids = None
        if any_pending:
            # next_step mode: the envs that ended last step are reset (action ignored)
            reset_rows = pending.copy()
            step_ids = np.flatnonzero(~reset_rows).astype(np.int32)
            self._reset_envs(np.flatnonzero(reset_rows).astype(np.int32))
        self._before_step()
        if step_ids is None or len(step_ids):
            self._batch.step(step_ids, nstep=self.frame_skip)
            self._after_physics(step_ids)
        self._elapsed += 1
        self._write_obs(self._obs)
        self._rewards(a, self._rew, self._term)
        np.greater_equal(self._elapsed, self.max_episode_steps, out=self._trunc)
        if any_pending:
            self._elapsed[reset_rows] = 0
            self._rew[reset_rows] = 0.0
            self._term[reset_rows] = False
            self._trunc[reset_rows] = False
        ended = np.logical_or(self._term, self._trunc, out=self._needs_reset)
        if self._same_step:
            # reset the ended envs now; their last obs goes to final_obs
            assert self._final_mask is not None and self._final_obs is not None
            np.copyto(self._final_mask, ended)
            if ended.any():
                np.copyto(self._final_obs, self._obs)
                self._reset_envs(np.flatnonzero(ended).astype(np.int32))
                self._write_obs(self._obs)

    def _core_get_state(self) -> np.ndarray:
        self._check_alive()
        if self._core is not None:
            return self._core.get_state()
        return np.concatenate([self._qpos, self._qvel], axis=1)

    def _core_set_state(self, states: np.ndarray) -> None:
        """Set qpos/qvel of all envs and run mj_forward, as gymnasium's set_state(qpos, qvel).

        Time, controls, the solver warm start and the step counters are kept;
        pending autoresets are cancelled.
        """
        self._check_alive()
        if states.shape != (self.num_envs, self.nq + self.nv):
            raise ValueError(f"states must have shape {(self.num_envs, self.nq + self.nv)}, got {states.shape}")
        if not np.isfinite(states).all():
            raise ValueError("states must be finite")
        for i in range(self.num_envs):
            if self._rngs[i] is None:
                self._rngs[i] = seeding.np_random(None)[0]
        if self._core is not None:
            return self._core.set_state(states)  # writes the observations
        self._qpos[...] = states[:, :self.nq]
        self._qvel[...] = states[:, self.nq:]
        self._batch.forward()
        self._needs_reset[:] = False
        self._write_obs(self._obs)

    _BUFFERS: Tuple[str, ...] = ("_obs", "_rew", "_term", "_trunc", "_final_obs", "_final_mask")

    def __getstate__(self) -> Dict[str, Any]:
        """Pickle support: the complete env (every simulation's full integration
        state incl. the solver warm start, step counters, pending autoresets, reset
        random streams and output buffers), so an unpickled copy continues bit for
        bit like the original (and checkpoints keep the time limits)."""
        self._check_alive()
        engine = self._core.dump() if self._core is not None else {"state": self._batch.state.copy()}
        return {
            "ctor": self._ctor,
            **engine,
            "elapsed": self._elapsed.copy(),
            "needs_reset": self._needs_reset.copy(),
            "rngs": list(self._rngs),
            "buffers": {k: (None if getattr(self, k, None) is None else getattr(self, k).copy())
                        for k in self._BUFFERS},
            "ready": self._ready,
            "seeded": self._seeded,
            "was_reset": self._was_reset.copy(),
            "has_stream": self._has_stream.copy(),
            "seed_rows": None if self._seed_rows is None else
            (self._seed_rows.words, self._seed_rows.nwords, self._seed_rows.which),
        }

    def __setstate__(self, state: Dict[str, Any]) -> None:
        type(self).__init__(self, **state["ctor"])
        buffers = state["buffers"]
        if self._core is not None:  # a batch engine's pickle keeps the derived fields as buffers
            derived = state.get("derived") or {
                name: buffers.get("_cfrc" if name == "cfrc_ext" else "_" + name) for name in DERIVED_FIELDS}
            self._core.load(state["state"], derived)
        else:
            self._batch.state[...] = state["state"]
        self._elapsed[:] = state["elapsed"]
        self._needs_reset[:] = state["needs_reset"]
        self._rngs = list(state["rngs"])
        for k, v in buffers.items():
            if v is not None and getattr(self, k, None) is not None:
                getattr(self, k)[...] = v
        self._ready = state["ready"]
        self._seeded = state["seeded"]
        self._was_reset[:] = state["was_reset"]
        self._has_stream[:] = state["has_stream"]
        rows = state["seed_rows"]
        self._seed_rows = None if rows is None else SeedRows(*rows)

    def current_obs(self) -> np.ndarray:
        """Observations of the current state (e.g. after set_state), float64 [N, obs_dim] (reused)."""
        return self._obs

    def _check_alive(self) -> None:
        if self._batch is None and self._core is None:
            raise RuntimeError(f"{self.ENV_ID} vector env is closed")

    def close_extras(self, **kwargs: Any) -> None:
        """Release the simulations and their threads; later calls raise RuntimeError."""
        super().close_extras(**kwargs)
        self._batch = self._core = None

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.ENV_ID!r}, num_envs={self.num_envs}, "
                f"num_threads={self.num_threads}, autoreset_mode={self.autoreset_mode!r}, "
                f"engine={self.engine!r})")
