"""Ant, Humanoid, HumanoidStandup, Swimmer, Reacher and Pusher (v5) on the batched MuJoCo engine.

Covered ids (gymnasium's v5 tasks, same model XML, ``frame_skip``, keyword defaults,
reset rules and noise, observations, rewards, termination and registered time limit):
``Ant-v5``, ``Humanoid-v5``, ``HumanoidStandup-v5``, ``Swimmer-v5`` (1000 steps),
``Reacher-v5`` (50 steps) and ``Pusher-v5`` (100 steps).  The engine, seeding and the
differences from gymnasium's vector env are those of :mod:`pgfast.envs.mujoco`.

Sources mirrored (gymnasium 1.x):
https://github.com/Farama-Foundation/Gymnasium/blob/main/gymnasium/envs/mujoco/ant_v5.py
(and ``humanoid_v5.py``, ``humanoidstandup_v5.py``, ``swimmer_v5.py``, ``reacher_v5.py``,
``pusher_v5.py`` and ``mujoco_env.py`` next to it).

They run on the C++ engine by default (:mod:`pgfast.envs.mujoco_core`); what follows is
their NumPy form on the batch engine (``engine="batch"``), the reference it is tested against.

Derived data, read as gymnasium reads it after ``mj_step``: body positions (``xpos``,
``xipos``), ``cinert``, ``cvel`` and ``qfrc_actuator`` describe the last evaluation of
the step (for the RK4 models, the last Runge-Kutta stage) and are bound from the batch.
The external contact forces ``cfrc_ext`` (Ant, Humanoid, HumanoidStandup) are computed
by gymnasium with ``mj_rnePostConstraint`` after ``mj_step``, from the contacts and
constraint forces of that last stage; the batch does not run that function, and an
acceleration sensor would run it at the first stage only (RK4 skips sensors in the
later stages).  These tasks therefore keep one ``MjData`` per simulation
(``persistent=True``, ~0.2 MB each) and, after each step, copy each stepped
simulation's data into a scratch ``MjData`` and run ``mj_rnePostConstraint`` on it:
bit-identical to gymnasium (tested), at ~9 us of per-env Python per step (~5% of
Ant's physics).  As in gymnasium, a reset zeroes ``cfrc_ext`` (``mj_resetData``; the
forward pass does not compute it) and ``set_state`` leaves it as it was.

Reacher and Pusher keep their target/object positions in qpos and reset as gymnasium:
Reacher draws qpos noise, then goal positions until one is inside the 0.2 disc, then
qvel noise (the target's set to 0); Pusher places the cylinder (redrawn until 0.17 away
from the goal at the origin), the arm at ``init_qpos`` and draws qvel noise (the
object's and goal's set to 0).  Norms use ``matmul`` dot products, as
``np.linalg.norm`` does.
"""

from __future__ import annotations

from typing import Any, Tuple

import numpy as np

from pgfast.envs.mujoco import _DerivedEnv, _range, _register_classes
from pgfast.envs.mujoco_base import MujocoVectorEnv

__all__ = [
    "AntVectorEnv",
    "HumanoidVectorEnv",
    "HumanoidStandupVectorEnv",
    "SwimmerVectorEnv",
    "ReacherVectorEnv",
    "PusherVectorEnv",
    "TASK_IDS",
]

_INF = float("inf")


def _norm(v: np.ndarray) -> np.ndarray:
    """Row norms of ``v`` [N, 3], summed as ``np.linalg.norm`` sums (a BLAS dot)."""
    return np.sqrt(np.matmul(v[:, None, :], v[:, :, None])[:, 0, 0])


def _body_id(model, key: Any) -> int:
    """A body id from an int or a name, as ``data.body(key)`` resolves it."""
    return int(model.body(key).id)


class SwimmerVectorEnv(MujocoVectorEnv):
    """Swimmer-v5: obs = [qpos[2:], qvel] (8); reward = forward velocity - ctrl cost."""

    ENV_ID = "Swimmer-v5"
    CORE_KIND = "forward"
    XML_FILE = "swimmer.xml"
    FRAME_SKIP = 4
    DEFAULTS = dict(forward_reward_weight=1.0, ctrl_cost_weight=1e-4, reset_noise_scale=0.1,
                    exclude_current_positions_from_observation=True)

    def _configure(self, params):
        super()._configure(params)
        self._forward_reward_weight = float(params["forward_reward_weight"])
        self._ctrl_cost_weight = float(params["ctrl_cost_weight"])
        self._skip = 2 * bool(params["exclude_current_positions_from_observation"])

    def _obs_dim(self):
        return self.nq + self.nv - self._skip

    def _write_obs(self, out):
        k = self.nq - self._skip
        out[:, :k] = self._qpos[:, self._skip:]
        out[:, k:] = self._qvel

    def _rewards(self, actions, rew, term):
        forward_reward = self._forward_reward_weight * self._x_velocity()
        np.subtract(forward_reward, self._ctrl_cost(actions), out=rew)
        term[:] = False


class _ContactForceEnv(_DerivedEnv):
    """A task whose observation or reward reads ``cfrc_ext`` (see the module docstring).

    ``_cfrc`` [N, nbody, 6] holds each env's ``cfrc_ext`` as gymnasium's ``data`` has it.
    ``_position()`` [N, 2] is the planar position whose change over a step, divided
    by dt, is the forward velocity (read from the last stage's body positions).
    """

    PERSISTENT = True
    KEPT = ("_cfrc",)

    def _bind_outputs(self):
        import mujoco

        super()._bind_outputs()
        self._rne = mujoco.mj_rnePostConstraint
        self._scratch = mujoco.MjData(self.model)
        self._cfrc = np.zeros((self.num_envs, self.model.nbody, 6))
        self._pos_before = np.zeros((self.num_envs, 2))

    def _after_physics(self, ids):
        model, scratch, batch, cfrc = self.model, self._scratch, self._batch, self._cfrc
        for i in (range(self.num_envs) if ids is None else ids.tolist()):
            batch.get_data(i, scratch)
            self._rne(model, scratch)
            cfrc[i] = scratch.cfrc_ext
        super()._after_physics(ids)

    def _reset_envs(self, ids):
        super()._reset_envs(ids)
        self._cfrc[slice(None) if ids is None else ids] = 0.0

    def _position(self) -> np.ndarray:
        raise NotImplementedError

    def _before_step(self):
        np.copyto(self._pos_before, self._position())

    def _xy_velocity(self) -> np.ndarray:
        return (self._position() - self._pos_before) / self.dt


class AntVectorEnv(_ContactForceEnv):
    """Ant-v5: obs = [qpos[2:], qvel, clip(cfrc_ext[1:], -1, 1)] (105); healthy reward,
    contact cost and termination on the torso height."""

    ENV_ID = "Ant-v5"
    CORE_KIND = "ant"
    XML_FILE = "ant.xml"
    FRAME_SKIP = 5
    QVEL_NOISE = "normal"
    DERIVED = ("xpos",)  # [N, nbody, 3]
    DEFAULTS = dict(forward_reward_weight=1.0, ctrl_cost_weight=0.5, contact_cost_weight=5e-4,
                    healthy_reward=1.0, main_body=1, terminate_when_unhealthy=True,
                    healthy_z_range=(0.2, 1.0), contact_force_range=(-1.0, 1.0),
                    reset_noise_scale=0.1, exclude_current_positions_from_observation=True,
                    include_cfrc_ext_in_observation=True)

    def _configure(self, params):
        super()._configure(params)
        self._forward_reward_weight = float(params["forward_reward_weight"])
        self._ctrl_cost_weight = float(params["ctrl_cost_weight"])
        self._contact_cost_weight = float(params["contact_cost_weight"])
        self._healthy_reward = float(params["healthy_reward"])
        self._terminate_when_unhealthy = bool(params["terminate_when_unhealthy"])
        self._healthy_z_range = _range(params, "healthy_z_range")
        self._contact_force_range = _range(params, "contact_force_range")
        self._main_body = _body_id(self.model, params["main_body"])
        self._skip = 2 * bool(params["exclude_current_positions_from_observation"])
        self._include_cfrc = bool(params["include_cfrc_ext_in_observation"])

    def _obs_dim(self):
        return self.nq + self.nv - self._skip + self._include_cfrc * (self.model.nbody - 1) * 6

    def _position(self):
        return self._xpos[:, self._main_body, :2]  # data.body(main_body).xpos[:2]

    def _contact_forces(self) -> np.ndarray:
        lo, hi = self._contact_force_range
        return np.clip(self._cfrc, lo, hi)

    def _write_obs(self, out):
        k = self.nq - self._skip
        out[:, :k] = self._qpos[:, self._skip:]
        out[:, k:k + self.nv] = self._qvel
        if self._include_cfrc:
            out[:, k + self.nv:] = self._contact_forces()[:, 1:].reshape(self.num_envs, -1)

    def _rewards(self, actions, rew, term):
        x_velocity = self._xy_velocity()[:, 0]
        qpos, qvel = self._qpos, self._qvel
        lo, hi = self._healthy_z_range
        healthy = np.isfinite(qpos).all(axis=1) & np.isfinite(qvel).all(axis=1)
        healthy &= (lo <= qpos[:, 2]) & (qpos[:, 2] <= hi)
        rewards = x_velocity * self._forward_reward_weight + healthy * self._healthy_reward
        forces = self._contact_forces().reshape(self.num_envs, -1)
        contact_cost = self._contact_cost_weight * np.sum(np.square(forces), axis=1)
        np.subtract(rewards, self._ctrl_cost(actions) + contact_cost, out=rew)
        if self._terminate_when_unhealthy:
            np.logical_not(healthy, out=term)
        else:
            term[:] = False


class _HumanoidBase(_ContactForceEnv):
    """Humanoid's observation: [qpos[2:], qvel, cinert[1:], cvel[1:], qfrc_actuator[6:],
    cfrc_ext[1:]] (348), each part optional as in gymnasium."""

    DERIVED: Tuple[str, ...] = ("cinert", "cvel", "qfrc_actuator")  # [N, nbody, 10/6], [N, nv]

    def _configure(self, params):
        super()._configure(params)
        self._ctrl_cost_weight = float(params["ctrl_cost_weight"])
        self._skip = 2 * bool(params["exclude_current_positions_from_observation"])
        self._include = tuple(bool(params[f"include_{name}_in_observation"])
                              for name in ("cinert", "cvel", "qfrc_actuator", "cfrc_ext"))

    def _parts(self) -> Tuple[Tuple[bool, Any, int], ...]:
        nb = self.model.nbody - 1
        return ((self._include[0], lambda: self._cinert[:, 1:], nb * 10),
                (self._include[1], lambda: self._cvel[:, 1:], nb * 6),
                (self._include[2], lambda: self._qfrc_actuator[:, 6:], self.nv - 6),
                (self._include[3], lambda: self._cfrc[:, 1:], nb * 6))

    def _obs_dim(self):
        return self.nq + self.nv - self._skip + sum(size for use, _, size in self._parts() if use)

    def _write_obs(self, out):
        n, k = self.num_envs, self.nq - self._skip
        out[:, :k] = self._qpos[:, self._skip:]
        out[:, k:k + self.nv] = self._qvel
        k += self.nv
        for use, get, size in self._parts():
            if use:
                out[:, k:k + size] = get().reshape(n, size)
                k += size

    def _ctrl_cost(self, actions):
        # gymnasium: ctrl_cost_weight * np.sum(np.square(data.ctrl)) (float64 ctrl)
        return self._ctrl_cost_weight * np.sum(np.square(self._ctrl), axis=1)

    def _cfrc_cost(self, weight: float, cost_range: Tuple[float, float]) -> np.ndarray:
        cost = weight * np.sum(np.square(self._cfrc.reshape(self.num_envs, -1)), axis=1)
        return np.clip(cost, *cost_range)


class HumanoidVectorEnv(_HumanoidBase):
    """Humanoid-v5: obs (348, see _HumanoidBase); reward = 1.25 * forward velocity of the
    centre of mass + healthy reward - ctrl cost - clipped contact cost; terminates
    outside the healthy height."""

    ENV_ID = "Humanoid-v5"
    CORE_KIND = "humanoid"
    XML_FILE = "humanoid.xml"
    FRAME_SKIP = 5
    DERIVED = _HumanoidBase.DERIVED + ("xipos",)  # [N, nbody, 3]
    DEFAULTS = dict(forward_reward_weight=1.25, ctrl_cost_weight=0.1, contact_cost_weight=5e-7,
                    contact_cost_range=(-_INF, 10.0), healthy_reward=5.0,
                    terminate_when_unhealthy=True, healthy_z_range=(1.0, 2.0),
                    reset_noise_scale=1e-2, exclude_current_positions_from_observation=True,
                    include_cinert_in_observation=True, include_cvel_in_observation=True,
                    include_qfrc_actuator_in_observation=True,
                    include_cfrc_ext_in_observation=True)

    def _configure(self, params):
        super()._configure(params)
        self._forward_reward_weight = float(params["forward_reward_weight"])
        self._contact_cost_weight = float(params["contact_cost_weight"])
        self._contact_cost_range = _range(params, "contact_cost_range")
        self._healthy_reward = float(params["healthy_reward"])
        self._terminate_when_unhealthy = bool(params["terminate_when_unhealthy"])
        self._healthy_z_range = _range(params, "healthy_z_range")
        self._mass = self.model.body_mass.copy()
        self._total_mass = self.model.body_mass.sum()  # as gymnasium's mass_center sums it

    def _position(self):
        # gymnasium's mass_center: einsum("b,bj->j", body_mass, xipos) / body_mass.sum()
        return (np.einsum("b,nbj->nj", self._mass, self._xipos) / self._total_mass)[:, :2]

    def _rewards(self, actions, rew, term):
        z = self._qpos[:, 2]
        lo, hi = self._healthy_z_range
        healthy = (lo < z) & (z < hi)
        forward_reward = self._forward_reward_weight * self._xy_velocity()[:, 0]
        rewards = forward_reward + healthy * self._healthy_reward
        costs = self._ctrl_cost(actions) + self._cfrc_cost(self._contact_cost_weight,
                                                            self._contact_cost_range)
        np.subtract(rewards, costs, out=rew)
        if self._terminate_when_unhealthy:
            np.logical_not(healthy, out=term)
        else:
            term[:] = False


class HumanoidStandupVectorEnv(_HumanoidBase):
    """HumanoidStandup-v5: Humanoid's observation (348); reward = qpos[2] / timestep
    - ctrl cost - clipped impact cost + 1; never terminates.

    As in gymnasium's v5, ``uph_cost_weight`` is accepted but not used by the reward.
    """

    ENV_ID = "HumanoidStandup-v5"
    CORE_KIND = "standup"
    XML_FILE = "humanoidstandup.xml"
    FRAME_SKIP = 5
    DEFAULTS = dict(uph_cost_weight=1.0, ctrl_cost_weight=0.1, impact_cost_weight=0.5e-6,
                    impact_cost_range=(-_INF, 10.0), reset_noise_scale=1e-2,
                    exclude_current_positions_from_observation=True,
                    include_cinert_in_observation=True, include_cvel_in_observation=True,
                    include_qfrc_actuator_in_observation=True,
                    include_cfrc_ext_in_observation=True)

    def _configure(self, params):
        super()._configure(params)
        self._impact_cost_weight = float(params["impact_cost_weight"])
        self._impact_cost_range = _range(params, "impact_cost_range")

    def _before_step(self):
        pass

    def _rewards(self, actions, rew, term):
        uph_cost = (self._qpos[:, 2] - 0) / self.model.opt.timestep
        impact_cost = self._cfrc_cost(self._impact_cost_weight, self._impact_cost_range)
        rew[:] = uph_cost - self._ctrl_cost(actions) - impact_cost + 1
        term[:] = False


class _ArmEnv(_DerivedEnv):
    """Reacher and Pusher: body positions (``xpos``) in the observation and reward."""

    DERIVED = ("xpos",)  # [N, nbody, 3]
    BODIES: Tuple[str, ...] = ()

    def _configure(self, params):
        self._weights = {k: float(v) for k, v in params.items()}
        self._ids = [_body_id(self.model, name) for name in self.BODIES]

    def _body(self, k: int) -> np.ndarray:
        return self._xpos[:, self._ids[k]]

    def _before_step(self):
        pass

    def _ctrl_reward(self, actions: np.ndarray, key: str) -> np.ndarray:
        # gymnasium: -np.square(action).sum() * weight, in the action's dtype
        return -np.sum(np.square(actions), axis=1) * self._weights[key]


class ReacherVectorEnv(_ArmEnv):
    """Reacher-v5: obs = [cos(q[:2]), sin(q[:2]), q[2:], qvel[:2], (fingertip - target)[:2]]
    (10); reward = -|fingertip - target| - |action|^2; 50-step time limit."""

    ENV_ID = "Reacher-v5"
    CORE_KIND = "reacher"
    XML_FILE = "reacher.xml"
    FRAME_SKIP = 2
    MAX_EPISODE_STEPS = 50
    DEFAULTS = dict(reward_dist_weight=1.0, reward_control_weight=1.0)
    BODIES = ("fingertip", "target")
    QPOS_NOISE = 0.1     # qpos ~ init_qpos + U(-0.1, 0.1)
    GOAL_RADIUS = 0.2    # goal ~ U(-0.2, 0.2)^2, redrawn until |goal| < 0.2
    QVEL_SCALE = 0.005   # qvel ~ U(-0.005, 0.005), the target's 0

    def _reset_state(self, rng):
        qpos = rng.uniform(low=-self.QPOS_NOISE, high=self.QPOS_NOISE, size=self.nq) + self.init_qpos
        r = self.GOAL_RADIUS
        while True:
            goal = rng.uniform(low=-r, high=r, size=2)
            if np.linalg.norm(goal) < r:
                break
        qpos[-2:] = goal
        qvel = self.init_qvel + rng.uniform(low=-self.QVEL_SCALE, high=self.QVEL_SCALE, size=self.nv)
        qvel[-2:] = 0
        return qpos, qvel

    def _obs_dim(self):
        return 10

    def _write_obs(self, out):
        theta = self._qpos[:, :2]
        np.cos(theta, out=out[:, 0:2])
        np.sin(theta, out=out[:, 2:4])
        out[:, 4:6] = self._qpos[:, 2:]
        out[:, 6:8] = self._qvel[:, :2]
        out[:, 8:10] = (self._body(0) - self._body(1))[:, :2]

    def _rewards(self, actions, rew, term):
        reward_dist = -_norm(self._body(0) - self._body(1)) * self._weights["reward_dist_weight"]
        np.add(reward_dist, self._ctrl_reward(actions, "reward_control_weight"), out=rew)
        term[:] = False


class PusherVectorEnv(_ArmEnv):
    """Pusher-v5: obs = [qpos[:7], qvel[:7], tips_arm, object, goal] (23); reward =
    -|object - goal| - 0.1 |action|^2 - 0.5 |object - tips_arm|; 100-step time limit."""

    ENV_ID = "Pusher-v5"
    CORE_KIND = "pusher"
    XML_FILE = "pusher_v5.xml"
    FRAME_SKIP = 5
    MAX_EPISODE_STEPS = 100
    DEFAULTS = dict(reward_near_weight=0.5, reward_dist_weight=1.0, reward_control_weight=0.1)
    BODIES = ("tips_arm", "object", "goal")
    CYLINDER_X = (-0.3, 0.0)     # cylinder ~ (U(-0.3, 0), U(-0.2, 0.2)), redrawn until it
    CYLINDER_Y = (-0.2, 0.2)     # lies more than 0.17 from the goal at the origin
    MIN_GOAL_DISTANCE = 0.17
    QVEL_SCALE = 0.005           # qvel ~ U(-0.005, 0.005), the object's and goal's 0

    def _reset_state(self, rng):
        # gymnasium aliases qpos to init_qpos and writes into it, but only the 4 entries
        # set below, so a copy gives every reset the same qpos
        qpos = self.init_qpos.copy()
        goal_pos = np.asarray([0, 0])
        while True:
            cylinder_pos = np.concatenate([rng.uniform(*self.CYLINDER_X, size=1),
                                           rng.uniform(*self.CYLINDER_Y, size=1)])
            if np.linalg.norm(cylinder_pos - goal_pos) > self.MIN_GOAL_DISTANCE:
                break
        qpos[-4:-2] = cylinder_pos
        qpos[-2:] = goal_pos
        qvel = self.init_qvel + rng.uniform(low=-self.QVEL_SCALE, high=self.QVEL_SCALE, size=self.nv)
        qvel[-4:] = 0
        return qpos, qvel

    def _obs_dim(self):
        return 23

    def _write_obs(self, out):
        out[:, 0:7] = self._qpos[:, :7]
        out[:, 7:14] = self._qvel[:, :7]
        for k in range(3):
            out[:, 14 + 3 * k:17 + 3 * k] = self._body(k)

    def _rewards(self, actions, rew, term):
        tips, obj, goal = self._body(0), self._body(1), self._body(2)
        w = self._weights
        reward_near = -_norm(obj - tips) * w["reward_near_weight"]
        reward_dist = -_norm(obj - goal) * w["reward_dist_weight"]
        reward_ctrl = self._ctrl_reward(actions, "reward_control_weight")
        rew[:] = reward_dist + reward_ctrl + reward_near
        term[:] = False


_CLASSES = (AntVectorEnv, HumanoidVectorEnv, HumanoidStandupVectorEnv, SwimmerVectorEnv,
            ReacherVectorEnv, PusherVectorEnv)
TASK_IDS = tuple(c.ENV_ID for c in _CLASSES)


_register_classes(_CLASSES)
