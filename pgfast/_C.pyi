"""Type stub of the pgfast._C extension module (tested to match its exports)."""

from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import numpy.typing as npt

# ---------------------------------------------------------------- returns
# Arrays are C-contiguous time-major [T] or [T, N], float32 or float64; flags are
# bool/uint8 or the data's float dtype. num_threads=0 picks a count automatically.

def discounted_cumsum(
    x: npt.NDArray[np.floating], dones: npt.NDArray, gamma: float, num_threads: int = 0
) -> npt.NDArray[np.floating]: ...
def reward_to_go(
    rewards: npt.NDArray[np.floating],
    terminated: npt.NDArray,
    truncated: npt.NDArray,
    gamma: float,
    next_values: Optional[npt.NDArray[np.floating]] = None,
    num_threads: int = 0,
) -> npt.NDArray[np.floating]: ...
def gae(
    rewards: npt.NDArray[np.floating],
    values: npt.NDArray[np.floating],
    next_values: npt.NDArray[np.floating],
    terminated: npt.NDArray,
    truncated: npt.NDArray,
    gamma: float,
    lam: float,
    num_threads: int = 0,
) -> Tuple[npt.NDArray[np.floating], npt.NDArray[np.floating]]: ...
def nstep_returns(
    rewards: npt.NDArray[np.floating],
    next_values: npt.NDArray[np.floating],
    terminated: npt.NDArray,
    truncated: npt.NDArray,
    gamma: float,
    n: int,
    num_threads: int = 0,
) -> npt.NDArray[np.floating]: ...
def plan_threads(T: int, N: int, num_threads: int = 0) -> int: ...

# ---------------------------------------------------------------- envs

# Native classic-control vector env cores (used by pgfast.envs.classic), one
# class for every env of the registry (csrc/envs/registry.hpp). Arrays are
# C-contiguous numpy; actions [N] int64/int32 (discrete) or [N, act_dim]
# float32/float64 (Box); obs [N, obs_dim] float32/float64; rewards [N]
# float32/float64; flags [N] bool. Bad input raises before any env changes:
# TypeError for a wrong type or dtype, ValueError for a wrong shape, layout or
# value (an unknown parameter name included); stepping before reset raises
# RuntimeError.

def classic_envs() -> Dict[str, Dict[str, Any]]:
    """gymnasium id -> state_dim, obs_dim, discrete, max_episode_steps, params,
    reset_options, reset_defaults."""

class RolloutEnv:
    """A native env core the native rollout steps from C++ (no Python per step):
    ClassicVecEnv and MujocoVecEnv."""

class ClassicVecEnv(RolloutEnv):
    """Native vector env core of one classic-control env."""

    def __init__(
        self,
        env_id: str,
        num_envs: int,
        same_step: bool = False,
        num_threads: int = 1,
        max_episode_steps: Optional[int] = None,
        params: Optional[Dict[str, Any]] = None,
    ) -> None: ...
    def bind_outputs(
        self,
        obs: npt.NDArray[np.floating],
        rew: npt.NDArray[np.floating],
        term: npt.NDArray[np.bool_],
        trunc: npt.NDArray[np.bool_],
        final_obs: Optional[npt.NDArray[np.float32]] = None,
        final_mask: Optional[npt.NDArray[np.bool_]] = None,
    ) -> None: ...
    def step(self, actions: npt.NDArray) -> None: ...
    def step_into(
        self,
        actions: npt.NDArray,
        obs_out: npt.NDArray[np.floating],
        rew_out: npt.NDArray[np.floating],
        term_out: npt.NDArray[np.bool_],
        trunc_out: npt.NDArray[np.bool_],
    ) -> None: ...
    def reset(
        self,
        mask: Optional[npt.NDArray[np.bool_]],
        a: float,
        b: float,
    ) -> None: ...
    def seed(
        self,
        entropy: npt.NDArray[np.uint32],
        nwords: Optional[npt.NDArray[np.int64]] = None,
        mask: Optional[npt.NDArray[np.bool_]] = None,
    ) -> None: ...
    def any_pending(self) -> bool: ...
    def get_state(self) -> npt.NDArray[np.float64]: ...
    def set_state(self, states: npt.NDArray[np.float64]) -> None: ...
    def dump(self) -> Dict[str, Any]: ...
    def load(self, snapshot: Dict[str, Any]) -> None: ...
    @property
    def env_id(self) -> str: ...
    @property
    def state_dim(self) -> int: ...
    @property
    def obs_dim(self) -> int: ...
    @property
    def num_envs(self) -> int: ...
    @property
    def threads_used(self) -> int: ...
    @property
    def items_by_workers(self) -> int: ...
    @property
    def max_episode_steps(self) -> int: ...
    @property
    def obs(self) -> npt.NDArray[np.floating]: ...
    @property
    def rewards(self) -> npt.NDArray[np.floating]: ...
    @property
    def terminated(self) -> npt.NDArray[np.bool_]: ...
    @property
    def truncated(self) -> npt.NDArray[np.bool_]: ...
    @property
    def final_obs(self) -> npt.NDArray[np.float32]: ...
    @property
    def final_mask(self) -> npt.NDArray[np.bool_]: ...

# ---- the one C++ MLP's limits (csrc/mlp.hpp)

class MujocoTask:
    """Settings of one MuJoCo task for MujocoVecEnv (csrc/envs/mujoco_task.hpp; set by
    pgfast/envs/mujoco_core.py)."""

    kind: int
    skip: int
    clip_qvel: bool
    dt: float
    timestep: float
    forward_weight: float
    ctrl_weight: float
    contact_weight: float
    healthy_reward: float
    terminate_when_unhealthy: bool
    check_state: bool
    state_lo: float
    state_hi: float
    check_z: bool
    z_lo: float
    z_hi: float
    check_angle: bool
    angle_lo: float
    angle_hi: float
    force_lo: float
    force_hi: float
    cost_lo: float
    cost_hi: float
    main_body: int
    include_cinert: bool
    include_cvel: bool
    include_qfrc_actuator: bool
    include_cfrc_ext: bool
    bodies: Tuple[int, int, int]
    dist_weight: float
    near_weight: float
    norm_fma: bool

    def __init__(self) -> None: ...

class MujocoVecEnv(RolloutEnv):
    """C++ core of the native MuJoCo envs (pgfast/envs/mujoco_core.py): N MjData of one
    MjModel (the `mujoco` package's objects), stepped with the libmujoco at `library`."""

    def __init__(
        self,
        *,
        library: str,
        model: Any,
        datas: List[Any],
        task: MujocoTask,
        frame_skip: int,
        max_episode_steps: int,
        autoreset_mode: str,
        num_threads: int,
        obs: npt.NDArray[np.float64],
        rew: npt.NDArray[np.float64],
        term: npt.NDArray[np.bool_],
        trunc: npt.NDArray[np.bool_],
        final_obs: npt.NDArray[np.float64],
        final_mask: npt.NDArray[np.bool_],
        elapsed: npt.NDArray[np.int64],
        pending: npt.NDArray[np.bool_],
        draw: Callable[[npt.NDArray[np.int64]], npt.NDArray[np.float64]],
    ) -> None: ...
    def reset(self, ids: npt.NDArray[np.int64]) -> None: ...
    def step(self, actions: npt.NDArray[np.floating]) -> None: ...
    def step_into(
        self,
        actions: npt.NDArray[np.floating],
        obs_out: npt.NDArray[np.floating],
        rew_out: npt.NDArray[np.floating],
        term_out: npt.NDArray[np.bool_],
        trunc_out: npt.NDArray[np.bool_],
    ) -> None: ...
    def get_state(self) -> npt.NDArray[np.float64]: ...
    def set_state(self, states: npt.NDArray[np.float64]) -> None: ...
    @property
    def obs_dim(self) -> int: ...
    @property
    def num_envs(self) -> int: ...
    @property
    def threads_used(self) -> int: ...
    @property
    def items_by_workers(self) -> int: ...

MLP_MAX_LAYERS: int
MLP_ACTIVATIONS: Tuple[str, ...]

# ---- native rollout (csrc/rollout.hpp, csrc/bindings/bind_rollout.cpp)

def policy_forward(
    weights: List[npt.NDArray[np.float32]],
    biases: List[npt.NDArray[np.float32]],
    activation: str,
    obs: npt.NDArray[np.float32],
) -> npt.NDArray[np.float32]: ...
# Every network below is one of pgfast.nn.ActorCritic's (the actor, or the critic ending in one
# column): weights[i] float32 [d_in, d_out], biases[i] float32 [d_out].
def ppo_epoch(
    *,
    actor_weights: List[npt.NDArray[np.float32]],
    actor_biases: List[npt.NDArray[np.float32]],
    critic_weights: List[npt.NDArray[np.float32]],
    critic_biases: List[npt.NDArray[np.float32]],
    log_std: Optional[npt.NDArray[np.float32]],
    exp_avg: List[npt.NDArray[np.float32]],
    exp_avg_sq: List[npt.NDArray[np.float32]],
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    obs: npt.NDArray[np.float32],
    actions: npt.NDArray[Any],
    logp_old: npt.NDArray[np.float32],
    v_old: npt.NDArray[np.float32],
    adv: npt.NDArray[np.float32],
    ret: npt.NDArray[np.float32],
    perm: Optional[npt.NDArray[np.int64]],
    minibatch_size: int,
    clip_coef: float,
    ent_coef: float,
    vf_coef: float,
    max_grad_norm: float,
    clip_vloss: bool,
    norm_adv: bool,
    activation: str,
    logp_last: npt.NDArray[np.float32],
    epochs: int = 1,
    num_threads: int = 1,
) -> Tuple[float, float, float, int]: ...
def value_fit(
    *,
    weights: List[npt.NDArray[np.float32]],
    biases: List[npt.NDArray[np.float32]],
    activation: str,
    exp_avg: List[npt.NDArray[np.float32]],
    exp_avg_sq: List[npt.NDArray[np.float32]],
    step: int,
    lr: float,
    betas: Tuple[float, float],
    eps: float,
    obs: npt.NDArray[np.float32],
    ret: npt.NDArray[np.float32],
    perm: Optional[npt.NDArray[np.int64]],
    minibatch_size: int,
    epochs: int,
    max_grad_norm: float,
    norm_width: int = 1,
    num_threads: int = 1,
) -> Tuple[float, int]: ...
def vpg_step(
    *,
    weights: List[npt.NDArray[np.float32]],
    biases: List[npt.NDArray[np.float32]],
    log_std: Optional[npt.NDArray[np.float32]],
    activation: str,
    exp_avg: List[npt.NDArray[np.float32]],
    exp_avg_sq: List[npt.NDArray[np.float32]],
    step: int,
    lr: float,
    betas: Tuple[float, float],
    eps: float,
    obs: npt.NDArray[np.float32],
    actions: npt.NDArray[Any],
    logp_old: npt.NDArray[np.float32],
    adv: npt.NDArray[np.float32],
    ent_coef: float,
    max_grad_norm: float,
    num_threads: int = 1,
) -> Tuple[float, float, float, int]: ...
def trpo_step(
    *,
    weights: List[npt.NDArray[np.float32]],
    biases: List[npt.NDArray[np.float32]],
    log_std: Optional[npt.NDArray[np.float32]],
    activation: str,
    obs: npt.NDArray[np.float32],
    actions: npt.NDArray[Any],
    logp_old: npt.NDArray[np.float32],
    adv: npt.NDArray[np.float32],
    max_kl: float,
    cg_iters: int,
    cg_damping: float,
    backtrack_iters: int,
    backtrack_coeff: float,
    ent_coef: float,
    fvp_subsample: float = 1.0,
    num_threads: int = 1,
) -> Tuple[float, float, float, bool, int]: ...
def trpo_grad_fvp(
    *,
    weights: List[npt.NDArray[np.float32]],
    biases: List[npt.NDArray[np.float32]],
    log_std: Optional[npt.NDArray[np.float32]],
    activation: str,
    obs: npt.NDArray[np.float32],
    actions: npt.NDArray[Any],
    logp_old: npt.NDArray[np.float32],
    adv: npt.NDArray[np.float32],
    ent_coef: float,
    cg_damping: float,
    fvp_subsample: float,
    vectors: npt.NDArray[np.float32],
    num_threads: int = 1,
    fvp_method: str = "auto",
) -> Tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]: ...
def policy_evaluate(
    *,
    actor_weights: List[npt.NDArray[np.float32]],
    actor_biases: List[npt.NDArray[np.float32]],
    critic_weights: List[npt.NDArray[np.float32]],
    critic_biases: List[npt.NDArray[np.float32]],
    log_std: Optional[npt.NDArray[np.float32]],
    activation: str,
    obs: npt.NDArray[np.float32],
    actions: Optional[npt.NDArray[Any]],
    values: npt.NDArray[np.float32],
    logp: Optional[npt.NDArray[np.float32]],
    num_threads: int = 1,
) -> None: ...
def rollout_mlp(
    *,
    step_into: Any,
    weights: List[npt.NDArray[np.float32]],
    biases: List[npt.NDArray[np.float32]],
    activation: str,
    noise: npt.NDArray[np.float32],
    obs: npt.NDArray[np.float32],
    actions: npt.NDArray[Any],
    rewards: npt.NDArray[np.float32],
    terminated: npt.NDArray[np.bool_],
    truncated: npt.NDArray[np.bool_],
    final_obs: npt.NDArray[np.float32],
    std: Optional[npt.NDArray[np.float32]] = None,
    low: Optional[npt.NDArray[np.float32]] = None,
    high: Optional[npt.NDArray[np.float32]] = None,
    env_actions: Optional[npt.NDArray[np.float32]] = None,
    obs_mean: Optional[npt.NDArray[np.float32]] = None,
    obs_inv_std: Optional[npt.NDArray[np.float32]] = None,
    obs_clip: float = 10.0,
    num_threads: int = 1,
) -> bool: ...
def shared_pool_items_by_workers() -> int: ...
