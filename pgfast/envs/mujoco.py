"""Batched MuJoCo environments stepped in MuJoCo's own C engine on a thread pool.

Covered ids (gymnasium's v5 tasks, same model XML, ``frame_skip``, defaults,
reset noise, observations, rewards, termination and 1000-step time limit):
``HalfCheetah-v5``, ``Hopper-v5``, ``Walker2d-v5``, ``InvertedPendulum-v5`` and
``InvertedDoublePendulum-v5``.  ``Ant-v5``, ``Humanoid-v5``, ``HumanoidStandup-v5``,
``Swimmer-v5``, ``Reacher-v5`` and ``Pusher-v5`` run on the same engine, in
:mod:`pgfast.envs.mujoco_tasks`.

Sources mirrored (gymnasium 1.x):
https://github.com/Farama-Foundation/Gymnasium/blob/main/gymnasium/envs/mujoco/half_cheetah_v5.py
(and ``hopper_v5.py``, ``walker2d_v5.py``, ``inverted_pendulum_v5.py``,
``inverted_double_pendulum_v5.py``, ``mujoco_env.py`` next to it).

Engines
-------
By default (``engine="auto"``) every task here runs on the C++ engine
(:mod:`pgfast.envs.mujoco_core`): one ``MjData`` per env, ``frame_skip`` calls of
``mj_step`` per env step made from C++ on ``num_threads`` threads, observations, rewards,
termination, time limits and autoresets computed in C++; the native rollout steps it with
no Python per step. The extension calls MuJoCo's C functions through the ``libmujoco`` of
the installed ``mujoco`` package, found at run time, and reads the ``MjData`` arrays
through the package's own numpy views of them, so it neither links MuJoCo nor depends on
its struct layouts (a MuJoCo-free wheel, no crash on a version mismatch).

``engine="batch"`` keeps the earlier engine, the NumPy reference the C++ engine is tested
against: all ``num_envs`` simulations in one :class:`mujoco.batch.Batch` (MuJoCo >= 4.0),
one state row per simulation (``mjSTATE_INTEGRATION``: qpos, qvel, act, ctrl, the
solver warm start, ...), stepped in C on ``num_threads`` threads with the GIL released
(bit-identical to a loop over one ``MjData`` per simulation at any thread count).
Observations, rewards and termination are then computed for all envs at once with NumPy
on live views of the state rows (and, for InvertedDoublePendulum, of the derived
``site_xpos``/``qfrc_constraint``, which the batch copies out one substep behind the
state, exactly as ``data`` is after ``mj_step``; its reward squares array entries where
gymnasium calls ``pow`` on scalars, so it can differ from gymnasium's in the last bit,
which the C++ engine does not). The contact forces ``cfrc_ext`` (Ant, Humanoid), which
gymnasium computes with ``mj_rnePostConstraint`` after ``mj_step`` and the batch does not,
are computed per stepped env from a persistent batch's data (see
:mod:`pgfast.envs.mujoco_tasks`).

Either way the only per-env Python is drawing the reset states of the envs that reset (one
NumPy generator per env, so that env ``i`` with seed ``s`` draws what gymnasium's env seeded
``s + i`` draws).

Differences from gymnasium's vector env (by design)
---------------------------------------------------
- ``info`` holds no per-env reward terms (``x_position``, ``reward_ctrl``, ...);
  in ``same_step`` mode it holds ``final_obs`` as a dense ``[N, obs_dim]`` array
  with the bool mask ``_final_obs`` (rows valid where the mask is set).
- Output arrays are allocated once and reused by later calls: copy them to keep.
- Actions are not clipped, exactly as in gymnasium's MuJoCo envs: MuJoCo clamps
  ``ctrl`` to ``ctrlrange`` inside the physics, while the control cost uses the
  action as given.  Non-finite actions raise ``ValueError``, actions of a
  non-numeric dtype ``TypeError``.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np

from pgfast.envs.mujoco_base import MujocoVectorEnv, mujoco_available

__all__ = [
    "MujocoVectorEnv",
    "HalfCheetahVectorEnv",
    "HopperVectorEnv",
    "Walker2dVectorEnv",
    "InvertedPendulumVectorEnv",
    "InvertedDoublePendulumVectorEnv",
    "MUJOCO_IDS",
    "mujoco_available",
]


def _range(params: Dict[str, Any], key: str) -> Tuple[float, float]:
    value = params[key]
    try:
        lo, hi = value
        return float(lo), float(hi)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{key} must be a (low, high) pair, got {value!r}") from e


class _DerivedEnv(MujocoVectorEnv):
    """A task that reads derived MjData fields (``DERIVED``: body positions, ...).

    The batch refreshes a simulation's bound derived fields only when a call runs it
    (an unpickled batch's are zero until then), so the task keeps its own copy of each
    (``self._<field>``, [N, ...]), taken right after every call on the envs it ran, and
    pickles it: a partial reset or an unpickled env sees what gymnasium's ``data`` holds.
    """

    DERIVED: Tuple[str, ...] = ()
    KEPT: Tuple[str, ...] = ()  # further per-env arrays to pickle
    # the kept copies of the fields the tasks read
    _site_xpos: np.ndarray
    _qfrc_constraint: np.ndarray
    _xpos: np.ndarray
    _xipos: np.ndarray
    _cinert: np.ndarray
    _cvel: np.ndarray
    _qfrc_actuator: np.ndarray

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._BUFFERS = MujocoVectorEnv._BUFFERS + tuple("_" + f for f in cls.DERIVED) + cls.KEPT

    def _bind_outputs(self):
        self._bound = {name: self._batch.bind(name) for name in self.DERIVED}
        for name, rows in self._bound.items():
            setattr(self, "_" + name, np.zeros(rows.shape, rows.dtype))

    def _capture(self, ids: Optional[np.ndarray]) -> None:
        for name, rows in self._bound.items():
            kept = getattr(self, "_" + name)
            if ids is None:
                np.copyto(kept, rows)
            else:
                kept[ids] = rows[ids]

    def _after_physics(self, ids):
        self._capture(ids)

    def _reset_envs(self, ids):
        super()._reset_envs(ids)
        self._capture(ids)

    def _core_set_state(self, states):
        super()._core_set_state(states)  # runs mj_forward on every env
        if self._core is None:
            self._capture(None)
            self._write_obs(self._obs)


class HalfCheetahVectorEnv(MujocoVectorEnv):
    """HalfCheetah-v5: obs = [qpos[1:], qvel] (17), reward = forward velocity - ctrl cost."""

    ENV_ID = "HalfCheetah-v5"
    CORE_KIND = "forward"
    XML_FILE = "half_cheetah.xml"
    FRAME_SKIP = 5
    QVEL_NOISE = "normal"
    DEFAULTS = dict(forward_reward_weight=1.0, ctrl_cost_weight=0.1, reset_noise_scale=0.1,
                    exclude_current_positions_from_observation=True)

    def _configure(self, params):
        super()._configure(params)
        self._forward_reward_weight = float(params["forward_reward_weight"])
        self._ctrl_cost_weight = float(params["ctrl_cost_weight"])
        self._exclude = bool(params["exclude_current_positions_from_observation"])

    def _obs_dim(self):
        return self.nq + self.nv - int(self._exclude)

    def _write_obs(self, out):
        k = self.nq - int(self._exclude)
        out[:, :k] = self._qpos[:, int(self._exclude):]
        self._write_qvel(out[:, k:])

    def _write_qvel(self, out):
        out[...] = self._qvel

    def _rewards(self, actions, rew, term):
        forward_reward = self._forward_reward_weight * self._x_velocity()
        np.subtract(forward_reward, self._ctrl_cost(actions), out=rew)
        term[:] = False


class HopperVectorEnv(HalfCheetahVectorEnv):
    """Hopper-v5: obs = [qpos[1:], clip(qvel, -10, 10)] (11); healthy reward and termination."""

    ENV_ID = "Hopper-v5"
    XML_FILE = "hopper.xml"
    FRAME_SKIP = 4
    QVEL_NOISE = "uniform"
    DEFAULTS = dict(forward_reward_weight=1.0, ctrl_cost_weight=1e-3, healthy_reward=1.0,
                    terminate_when_unhealthy=True, healthy_state_range=(-100.0, 100.0),
                    healthy_z_range=(0.7, float("inf")), healthy_angle_range=(-0.2, 0.2),
                    reset_noise_scale=5e-3, exclude_current_positions_from_observation=True)

    def _configure(self, params):
        super()._configure(params)
        self._healthy_terms(params)
        self._healthy_state_range = _range(params, "healthy_state_range")
        self._healthy_z_range = _range(params, "healthy_z_range")
        self._healthy_angle_range = _range(params, "healthy_angle_range")

    def _healthy_terms(self, params):
        self._healthy_reward = float(params["healthy_reward"])
        self._terminate_when_unhealthy = bool(params["terminate_when_unhealthy"])

    def _write_qvel(self, out):
        np.clip(self._qvel, -10, 10, out=out)

    def _is_healthy(self) -> np.ndarray:
        qpos, qvel = self._qpos, self._qvel
        z, angle = qpos[:, 1], qpos[:, 2]
        lo, hi = self._healthy_state_range
        healthy = ((lo < qpos[:, 2:]) & (qpos[:, 2:] < hi)).all(axis=1)
        healthy &= ((lo < qvel) & (qvel < hi)).all(axis=1)
        lo, hi = self._healthy_z_range
        healthy &= (lo < z) & (z < hi)
        lo, hi = self._healthy_angle_range
        healthy &= (lo < angle) & (angle < hi)
        return healthy

    def _rewards(self, actions, rew, term):
        healthy = self._is_healthy()
        forward_reward = self._forward_reward_weight * self._x_velocity()
        rewards = forward_reward + healthy * self._healthy_reward
        np.subtract(rewards, self._ctrl_cost(actions), out=rew)
        if self._terminate_when_unhealthy:
            np.logical_not(healthy, out=term)
        else:
            term[:] = False


class Walker2dVectorEnv(HopperVectorEnv):
    """Walker2d-v5: obs = [qpos[1:], clip(qvel, -10, 10)] (17); healthy z and angle."""

    ENV_ID = "Walker2d-v5"
    XML_FILE = "walker2d_v5.xml"
    FRAME_SKIP = 4
    DEFAULTS = dict(forward_reward_weight=1.0, ctrl_cost_weight=1e-3, healthy_reward=1.0,
                    terminate_when_unhealthy=True, healthy_z_range=(0.8, 2.0),
                    healthy_angle_range=(-1.0, 1.0), reset_noise_scale=5e-3,
                    exclude_current_positions_from_observation=True)

    def _configure(self, params):
        HalfCheetahVectorEnv._configure(self, params)
        self._healthy_terms(params)
        self._healthy_z_range = _range(params, "healthy_z_range")
        self._healthy_angle_range = _range(params, "healthy_angle_range")

    def _is_healthy(self):
        z, angle = self._qpos[:, 1], self._qpos[:, 2]
        lo, hi = self._healthy_z_range
        healthy = (lo < z) & (z < hi)
        lo, hi = self._healthy_angle_range
        healthy &= (lo < angle) & (angle < hi)
        return healthy


class InvertedPendulumVectorEnv(MujocoVectorEnv):
    """InvertedPendulum-v5: obs = [qpos, qvel] (4); reward 1 while |angle| <= 0.2."""

    ENV_ID = "InvertedPendulum-v5"
    CORE_KIND = "pendulum"
    XML_FILE = "inverted_pendulum.xml"
    FRAME_SKIP = 2
    DEFAULTS = dict(reset_noise_scale=0.01)

    def _obs_dim(self):
        return self.nq + self.nv

    def _write_obs(self, out):
        out[:, :self.nq] = self._qpos
        out[:, self.nq:] = self._qvel

    def _before_step(self):
        pass

    def _rewards(self, actions, rew, term):
        obs = self._obs
        np.logical_not(np.isfinite(obs).all(axis=1), out=term)
        term |= np.abs(obs[:, 1]) > 0.2
        np.logical_not(term, out=rew, casting="unsafe")


class InvertedDoublePendulumVectorEnv(_DerivedEnv):
    """InvertedDoublePendulum-v5: obs (9) = [x, sin(q), cos(q), clip(qvel), clip(qfrc_constraint[0])].

    The tip height/x come from ``site_xpos[0]`` and the constraint force from
    ``qfrc_constraint``, both as MuJoCo leaves them after ``mj_step`` (computed
    at the start of the last substep), as gymnasium reads them.
    """

    ENV_ID = "InvertedDoublePendulum-v5"
    CORE_KIND = "double_pendulum"
    XML_FILE = "inverted_double_pendulum.xml"
    FRAME_SKIP = 5
    QVEL_NOISE = "normal"
    DERIVED = ("site_xpos", "qfrc_constraint")  # [N, nsite, 3], [N, nv]
    DEFAULTS = dict(healthy_reward=10.0, reset_noise_scale=0.1)

    def _configure(self, params):
        super()._configure(params)
        self._healthy_reward = float(params["healthy_reward"])

    def _obs_dim(self):
        return 1 + 2 * (self.nq - 1) + self.nv + 1

    def _write_obs(self, out):
        nq, nv = self.nq, self.nv
        q = self._qpos
        out[:, 0] = q[:, 0]
        np.sin(q[:, 1:], out=out[:, 1:nq])
        np.cos(q[:, 1:], out=out[:, nq:2 * nq - 1])
        np.clip(self._qvel, -10, 10, out=out[:, 2 * nq - 1:2 * nq - 1 + nv])
        np.clip(self._qfrc_constraint[:, 0], -10, 10, out=out[:, -1])

    def _before_step(self):
        pass

    def _rewards(self, actions, rew, term):
        x = self._site_xpos[:, 0, 0]
        y = self._site_xpos[:, 0, 2]
        np.less_equal(y, 1, out=term)
        v1, v2 = self._qvel[:, 1], self._qvel[:, 2]
        dist_penalty = 0.01 * x ** 2 + (y - 2) ** 2
        vel_penalty = 1e-3 * v1 ** 2 + 5e-3 * v2 ** 2
        alive_bonus = self._healthy_reward * (~term)
        np.subtract(alive_bonus - dist_penalty, vel_penalty, out=rew)


_CLASSES = (HalfCheetahVectorEnv, HopperVectorEnv, Walker2dVectorEnv,
            InvertedPendulumVectorEnv, InvertedDoublePendulumVectorEnv)
MUJOCO_IDS = tuple(c.ENV_ID for c in _CLASSES)


def _register_classes(classes) -> None:
    """Register the ids of ``classes`` with make_vec (the mujoco import stays lazy)."""
    from pgfast.envs import register_native

    for cls in classes:
        def factory(num_envs, seed=None, autoreset_mode="next_step", num_threads=1, _cls=cls, **kwargs):
            return _cls(num_envs=num_envs, seed=seed, autoreset_mode=autoreset_mode,
                        num_threads=num_threads, **kwargs)
        factory.__doc__ = f"Native batched {cls.ENV_ID} (see {cls.__name__})."
        register_native(cls.ENV_ID, factory)


_register_classes(_CLASSES)
