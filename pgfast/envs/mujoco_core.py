"""The C++ engine of the native MuJoCo envs: every step in one C++ call, no Python per step.

:class:`CoreEngine` backs a :class:`pgfast.envs.mujoco_base.MujocoVectorEnv` whose task
has a C++ form (``CORE_KIND``): all eleven tasks (Reacher and Pusher where this numpy's norm
of a 3-vector sums as :func:`norm_uses_fma` can tell, else they keep the batch engine).
Each env is one :class:`mujoco.MjData` of the shared model; the
extension (:class:`pgfast._C.MujocoVecEnv`, ``csrc/envs/mujoco_vec.hpp``) steps them on
``num_threads`` threads (bit-identical for any count) with MuJoCo's own C functions,
found at run time in the ``libmujoco`` this ``mujoco`` package loaded (the extension
neither links MuJoCo nor needs its headers, so the wheel builds and imports without it),
and computes observations, rewards, termination, time limits and autoresets in C++,
exactly as gymnasium's v5 envs (tested in lockstep against gymnasium and the batch
engine). The native rollout steps the core directly (``native_core()``): one C++ call
per rollout.

Reset states are drawn in Python from each env's numpy generator, exactly as gymnasium
draws them (``_reset_state``): the core calls back only in steps where some env resets.
"""

from __future__ import annotations

import glob
import os
import weakref
from typing import Any, Dict, List, Optional

import numpy as np

from pgfast import _C

__all__ = ["CoreEngine", "core_library", "task_settings", "DERIVED_FIELDS", "mujoco_available",
           "norm_uses_fma"]


def _import_mujoco(env_id: str = "a MuJoCo env"):
    """Import mujoco and mujoco.batch, or raise a clear ImportError."""
    try:
        import mujoco
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError(
            f"{env_id} needs the 'mujoco' package (>= 4.0): pip install 'pgfast-rl[mujoco]'") from e
    try:
        from mujoco import batch  # noqa: F401  (MuJoCo >= 4.0)
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError(
            f"{env_id} needs mujoco >= 4.0 (for mujoco.batch); installed: "
            f"{getattr(mujoco, '__version__', '?')}. Upgrade with "
            f"pip install -U 'mujoco>=4.0', or pass backend='gymnasium'") from e
    return mujoco


def mujoco_available() -> bool:
    """True when the native MuJoCo envs can run (mujoco >= 4.0 importable)."""
    try:
        _import_mujoco()
    except ImportError:
        return False
    return True


def _asset_path(xml_file: str) -> str:
    """Resolve an XML name the way gymnasium's ``expand_model_path`` does."""
    if xml_file.startswith(".") or xml_file.startswith("/"):
        full = xml_file
    elif xml_file.startswith("~"):
        full = os.path.expanduser(xml_file)
    else:
        import gymnasium.envs  # the assets ship with gymnasium
        full = os.path.join(os.path.dirname(gymnasium.envs.__file__), "mujoco", "assets", xml_file)
    if not os.path.exists(full):
        raise ValueError(f"xml_file {xml_file!r}: file {full} does not exist")
    return full


def _load_model(mujoco, path: str):
    """Compile the MJCF at ``path`` exactly as ``MjModel.from_xml_path`` does.

    The deprecated ``<compiler settotalmass>`` attribute (half_cheetah.xml) makes
    the compiler print a warning and write MUJOCO_LOG.TXT into the working
    directory; it is applied after compiling instead, with ``mj_setTotalmass`` +
    ``mj_setConst``, which gives an identical model (tested field by field).
    """
    spec = mujoco.MjSpec.from_file(path)
    total_mass = spec.compiler.settotalmass
    if total_mass > 0:
        spec.compiler.settotalmass = -1
    model = spec.compile()
    if total_mass > 0:
        mujoco.mj_setTotalmass(model, total_mass)
        mujoco.mj_setConst(model, mujoco.MjData(model))
    return model

DERIVED_FIELDS = ("xpos", "xipos", "cinert", "cvel", "qfrc_actuator", "cfrc_ext", "site_xpos",
                  "qfrc_constraint")
"""The MjData fields a task reads besides qpos/qvel (kept in pickles: they describe the last
step's final evaluation, which the integration state does not reproduce)."""

_KINDS = {"forward": 0, "ant": 1, "humanoid": 2, "standup": 3, "pendulum": 4, "double_pendulum": 5,
          "reacher": 6, "pusher": 7}
_NORM_SUMS: List[Optional[bool]] = []  # the cached result of norm_uses_fma()


def norm_uses_fma() -> Optional[bool]:
    """How ``np.linalg.norm`` sums a 3-vector here (a BLAS dot product): True for fused
    multiply-adds in order (``fma(x2, x2, fma(x1, x1, x0 * x0))``), False for plain products and
    sums in order, None for neither (then Reacher and Pusher keep the batch engine, whose
    NumPy norms match gymnasium's whatever the BLAS does). Checked on fixed random vectors
    with exact rational arithmetic; cached."""
    if not _NORM_SUMS:
        from fractions import Fraction

        def fma(a: float, b: float, c: float) -> float:
            return float(Fraction(a) * Fraction(b) + Fraction(c))

        fused = plain = True
        for v in np.random.default_rng(12345).standard_normal((256, 3)):
            x0, x1, x2 = (float(x) for x in v)
            got = float(np.linalg.norm(v))
            fused &= got == float(np.sqrt(fma(x2, x2, fma(x1, x1, x0 * x0))))
            plain &= got == float(np.sqrt((x0 * x0 + x1 * x1) + x2 * x2))
        _NORM_SUMS.append(True if fused else False if plain else None)
    return _NORM_SUMS[0]


def core_library(mujoco: Any) -> Optional[str]:
    """The path of the ``libmujoco`` shared library of the ``mujoco`` package (None: not found)."""
    folder = os.path.dirname(mujoco.__file__)
    found = sorted(glob.glob(os.path.join(folder, "libmujoco.so*")) +
                   glob.glob(os.path.join(folder, "libmujoco*.dylib")))
    return found[-1] if found else None


def task_settings(env: Any) -> Any:
    """The :class:`pgfast._C.MujocoTask` of ``env`` (its ``CORE_KIND`` and configured keywords)."""
    t = _C.MujocoTask()
    kind = env.CORE_KIND
    t.kind = _KINDS[kind]
    t.dt = float(env.dt)
    t.timestep = float(env.model.opt.timestep)
    get = env.__dict__.get
    t.skip = int(get("_skip", int(get("_exclude", 0))))
    t.forward_weight = float(get("_forward_reward_weight", 1.0))
    t.ctrl_weight = float(get("_ctrl_cost_weight", 0.0))
    t.healthy_reward = float(get("_healthy_reward", 0.0))
    t.terminate_when_unhealthy = bool(get("_terminate_when_unhealthy", True))
    if "_healthy_state_range" in env.__dict__:  # Hopper
        t.check_state = True
        t.state_lo, t.state_hi = env._healthy_state_range
    if "_healthy_z_range" in env.__dict__:
        t.check_z = True
        t.z_lo, t.z_hi = env._healthy_z_range
    if "_healthy_angle_range" in env.__dict__:
        t.check_angle = True
        t.angle_lo, t.angle_hi = env._healthy_angle_range
    t.clip_qvel = kind == "forward" and t.check_z  # Hopper, Walker2d
    if kind == "ant":
        t.contact_weight = float(env._contact_cost_weight)
        t.force_lo, t.force_hi = env._contact_force_range
        t.main_body = int(env._main_body)
        t.include_cfrc_ext = bool(env._include_cfrc)
    if kind in ("reacher", "pusher"):
        w = env._weights
        ids = [int(i) for i in env._ids] + [0]
        t.bodies = (ids[0], ids[1], ids[2])
        t.dist_weight = float(w["reward_dist_weight"])
        t.near_weight = float(w.get("reward_near_weight", 0.0))
        t.ctrl_weight = float(w["reward_control_weight"])
        t.norm_fma = bool(norm_uses_fma())
    if kind in ("humanoid", "standup"):
        weight, rng = (("_contact_cost_weight", "_contact_cost_range") if kind == "humanoid"
                       else ("_impact_cost_weight", "_impact_cost_range"))
        t.contact_weight = float(getattr(env, weight))
        t.cost_lo, t.cost_hi = getattr(env, rng)
        (t.include_cinert, t.include_cvel, t.include_qfrc_actuator,
         t.include_cfrc_ext) = env._include
    return t


def _weak_draw(engine: "weakref.ReferenceType[CoreEngine]") -> Any:
    """The core's draw callable: it refers to its engine weakly, since a reference cycle through
    the extension object (engine -> core -> draw -> engine) is never collected (the core would
    keep its threads and simulations for the life of the process)."""
    def draw(ids: np.ndarray) -> np.ndarray:
        owner = engine()
        if owner is None:  # pragma: no cover - the engine outlives every call of its core
            raise RuntimeError("the MuJoCo env of this core was released")
        return owner._draw(ids)
    return draw


class CoreEngine:
    """The simulations of one env (one MjData each) and their C++ core.

    Args:
        env: the :class:`pgfast.envs.mujoco_base.MujocoVectorEnv` (its model, buffers,
            counters ``_elapsed`` / ``_needs_reset`` and random streams ``_rngs``).
        mujoco: the imported ``mujoco`` module.
        library: the path of its ``libmujoco`` (:func:`core_library`).
    """

    def __init__(self, env: Any, mujoco: Any, library: str) -> None:
        self.env, self.mujoco = env, mujoco
        n = env.num_envs
        self.datas: List[Any] = [mujoco.MjData(env.model) for _ in range(n)]
        self._spec = int(mujoco.mjtState.mjSTATE_INTEGRATION)
        self._fin = env._final_obs if env._final_obs is not None else np.zeros_like(env._obs)
        self._mask = env._final_mask if env._final_mask is not None else np.zeros(n, dtype=bool)
        self.core = _C.MujocoVecEnv(
            library=library, model=env.model, datas=self.datas, task=task_settings(env),
            frame_skip=env.frame_skip, max_episode_steps=env.max_episode_steps,
            autoreset_mode=env.autoreset_mode, num_threads=env.num_threads, obs=env._obs,
            rew=env._rew, term=env._term, trunc=env._trunc, final_obs=self._fin,
            final_mask=self._mask, elapsed=env._elapsed, pending=env._needs_reset,
            draw=_weak_draw(weakref.ref(self)))
        if self.core.obs_dim != env.obs_dim:  # pragma: no cover - the two agree by construction
            raise RuntimeError(f"{env.ENV_ID}: C++ obs_dim {self.core.obs_dim} != {env.obs_dim}")

    def _draw(self, ids: np.ndarray) -> np.ndarray:
        """Reset states (qpos, qvel) of envs ``ids`` [k] drawn from their generators: float64 [k, nq + nv]."""
        env = self.env
        out = np.empty((len(ids), env.nq + env.nv))
        for j, i in enumerate(ids.tolist()):
            qpos, qvel = env._reset_state(env._rngs[i])
            out[j, :env.nq] = qpos
            out[j, env.nq:] = qvel
        return out

    def reset(self, ids: Optional[np.ndarray]) -> None:
        """Reset envs ``ids`` (None: all) and write every env's observation."""
        ids = np.arange(self.env.num_envs) if ids is None else ids
        self.core.reset(np.ascontiguousarray(ids, dtype=np.int64))

    def step(self, actions: np.ndarray) -> None:
        """Step every env into the env's own buffers (actions float32/float64 [N, nu])."""
        self.core.step(actions)

    def step_into(self, actions: np.ndarray, obs: np.ndarray, rew: np.ndarray, term: np.ndarray,
                  trunc: np.ndarray) -> None:
        """Step every env into caller arrays (checked in C++)."""
        self.core.step_into(actions, obs, rew, term, trunc)

    def get_state(self) -> np.ndarray:
        """qpos and qvel of every env, float64 [N, nq + nv]."""
        return self.core.get_state()

    def set_state(self, states: np.ndarray) -> None:
        """gymnasium's set_state on every env; pending autoresets are cancelled."""
        self.core.set_state(states)

    def dump(self) -> Dict[str, Any]:
        """Every simulation's integration state ([N, k], mjSTATE_INTEGRATION) and derived fields."""
        mj, model = self.mujoco, self.env.model
        size = mj.mj_stateSize(model, self._spec)
        state = np.zeros((len(self.datas), size))
        for row, d in zip(state, self.datas):
            mj.mj_getState(model, d, row, self._spec)
        derived = {name: np.stack([getattr(d, name).copy() for d in self.datas])
                   for name in DERIVED_FIELDS if getattr(self.datas[0], name).size}  # (no empty bytes)
        return {"state": state, "derived": derived}

    def load(self, state: np.ndarray, derived: Dict[str, Any]) -> None:
        """Restore :meth:`dump`'s ``state`` and ``derived`` (fields missing there are left as they are)."""
        mj, model = self.mujoco, self.env.model
        state = np.ascontiguousarray(state, dtype=np.float64)
        if state.shape != (len(self.datas), mj.mj_stateSize(model, self._spec)):
            raise ValueError(f"state must have shape {(len(self.datas), mj.mj_stateSize(model, self._spec))}, "
                             f"got {state.shape}")
        for i, d in enumerate(self.datas):
            mj.mj_setState(model, d, state[i], self._spec)
            for name, rows in derived.items():
                if rows is not None and name in DERIVED_FIELDS:
                    getattr(d, name)[...] = rows[i]
