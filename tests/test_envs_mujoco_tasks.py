"""Native Ant, Humanoid, HumanoidStandup, Swimmer, Reacher and Pusher (pgfast.envs.mujoco_tasks)
against gymnasium's v5 envs, with the align tests of test_envs_mujoco.py.

Observations and rewards are compared with that file's tolerance (rtol 1e-6, atol 1e-12;
they agree bit for bit on the machines measured), physics states and flags exactly.
"""

import importlib.util
import pathlib
import pickle

import numpy as np
import pytest

mujoco = pytest.importorskip("mujoco", reason="mujoco not installed: pip install 'pgfast-rl[mujoco]'")
try:
    from mujoco import batch as _mj_batch  # noqa: F401
except ImportError:  # pragma: no cover - depends on the install
    pytest.skip("mujoco >= 4.0 (mujoco.batch) needed by the native MuJoCo envs", allow_module_level=True)

import gymnasium as gym  # noqa: E402

import pgfast  # noqa: E402
from pgfast.envs import mujoco_tasks  # noqa: E402


def _load_helpers():
    path = pathlib.Path(__file__).with_name("test_envs_mujoco.py")
    spec = importlib.util.spec_from_file_location("pgfast_test_envs_mujoco_helpers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_h = _load_helpers()
_gym_env, _gym_vec, _close, _bad_calls = _h._gym_env, _h._gym_vec, _h._close, _h._bad_calls

IDS = list(mujoco_tasks.TASK_IDS)
CFRC_IDS = ["Ant-v5", "Humanoid-v5", "HumanoidStandup-v5"]  # read cfrc_ext
TERMINATING = {"Ant-v5", "Humanoid-v5"}
# a short time limit for the 1000-step tasks; Reacher (50) and Pusher (100) keep theirs
SHORT_LIMIT = {"Ant-v5": 60, "Humanoid-v5": 60, "HumanoidStandup-v5": 60, "Swimmer-v5": 60}


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def _actions(rng, env, n, t, scale=1.2):
    low, high = env.single_action_space.low, env.single_action_space.high
    a = rng.uniform(scale * low, scale * high, (n, env.nu))  # beyond the bounds on purpose
    return a.astype(np.float32) if t % 2 else a


def _ref_state(ref):
    return np.concatenate([ref.data.qpos, ref.data.qvel])


def test_registered_and_make_vec_picks_native():
    assert IDS == ["Ant-v5", "Humanoid-v5", "HumanoidStandup-v5", "Swimmer-v5", "Reacher-v5", "Pusher-v5"]
    assert set(IDS) <= set(pgfast.envs.native_ids())
    for env_id, cls in zip(IDS, mujoco_tasks._CLASSES):
        env = pgfast.make_vec(env_id, num_envs=2, seed=0)
        assert type(env) is cls
        assert env.spec.id == env_id
        assert env.max_episode_steps == env.spec.max_episode_steps == gym.spec(env_id).max_episode_steps
        env.close()
    fallback = pgfast.make_vec("Ant-v5", num_envs=2, backend="gymnasium")
    assert isinstance(fallback, gym.vector.SyncVectorEnv)
    fallback.close()


@pytest.mark.parametrize("env_id", IDS)
def test_spaces_and_model_match_gymnasium(env_id):
    ref = _gym_env(env_id)
    env = pgfast.make_vec(env_id, num_envs=3)
    assert env.single_observation_space == ref.observation_space
    assert env.single_action_space == ref.action_space
    assert env.frame_skip == ref.frame_skip and env.dt == ref.dt
    np.testing.assert_array_equal(env.init_qpos, ref.init_qpos)
    np.testing.assert_array_equal(env.init_qvel, ref.init_qvel)
    for name in dir(ref.model):
        value = getattr(ref.model, name)
        if isinstance(value, np.ndarray) and not name.startswith("_"):
            np.testing.assert_array_equal(getattr(env.model, name), value, err_msg=name)
    assert env.model.opt.timestep == ref.model.opt.timestep
    env.close()
    ref.close()


@pytest.mark.parametrize("env_id", IDS)
def test_align_set_state_step(env_id):
    """Step gymnasium's env from each env's state and compare (>= 400 transitions).

    Swimmer, Reacher and Pusher: gymnasium's set_state(qpos, qvel) plus the solver's
    warm start (so that the step is exact). Ant and the Humanoids also read data that is
    not state (the body positions of the last stage before the step, cfrc_ext): their
    reference continues from a copy of the env's whole MjData.
    """
    n = 8  # the batch engine's internals (the C++ engine's: tests/test_envs_mujoco_core.py)
    env = pgfast.make_vec(env_id, num_envs=n, seed=3, num_threads=2, engine="batch")
    ref = _gym_env(env_id)
    ref.reset(seed=0)
    rng = np.random.default_rng(1)
    nq = env.nq
    persistent = env_id in CFRC_IDS
    snaps = [mujoco.MjData(env.model) for _ in range(n)]
    transitions = terminations = clipped = t = 0
    contact = not persistent
    while transitions < 400:
        t += 1
        states = env.get_state()
        if t % 20 == 7:  # gymnasium's set_state: nudge every env's state, lift env 0
            states = states + rng.normal(0.0, 0.01, states.shape)
            if env_id in TERMINATING:
                states[0, 2] += 1.0  # above the healthy height range
            env.set_state(states)
            for i in range(n):
                ref.data.ctrl[:] = env._ctrl[i]  # set_state keeps the controls, on both sides
                if persistent:  # and cfrc_ext
                    ref.data.cfrc_ext[:] = env._cfrc[i]
                ref.set_state(states[i, :nq], states[i, nq:])
                _close(env.current_obs()[i], ref._get_obs(), f"{env_id} obs after set_state")
        actions = _actions(rng, env, n, t)
        pending = env._needs_reset.copy()
        warm = env._batch.bind("qacc_warmstart").copy()
        if persistent:
            for i in range(n):
                env._batch.get_data(i, snaps[i])
        obs, rew, term, trunc, _ = env.step(actions)
        for i in np.flatnonzero(~pending):
            if persistent:
                mujoco.mj_copyData(ref.data, ref.model, snaps[i])
            else:
                ref.set_state(states[i, :nq], states[i, nq:])
                ref.data.qacc_warmstart[:] = warm[i]
            r_obs, r_rew, r_term, _, _ = ref.step(actions[i])
            np.testing.assert_array_equal(env.get_state()[i], _ref_state(ref))
            if persistent:
                np.testing.assert_array_equal(env._cfrc[i], ref.data.cfrc_ext)
                contact |= bool(np.any(ref.data.cfrc_ext != 0))
                clipped += int(np.abs(ref.data.cfrc_ext).max() > 1.0)
            _close(obs[i], r_obs, f"{env_id} obs t={t} env={i}")
            _close(rew[i], r_rew, f"{env_id} reward t={t} env={i}")
            assert term[i] == r_term, (env_id, t, i)  # (time limits: test_align_seeded_trajectory)
            transitions += 1
            terminations += bool(r_term)
    assert contact  # the contact forces were exercised
    if env_id == "Ant-v5":
        assert clipped > 0  # and Ant's clipping of them
    assert (terminations > 0) == (env_id in TERMINATING)
    env.close()
    ref.close()


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
@pytest.mark.parametrize("env_id", IDS)
def test_align_seeded_trajectory(env_id, mode):
    """Same seed, same actions as gymnasium's sync vector env: resets, autoresets, time limit."""
    n = 2
    kwargs = {}
    limit = gym.spec(env_id).max_episode_steps
    if env_id in SHORT_LIMIT:
        limit = kwargs["max_episode_steps"] = SHORT_LIMIT[env_id]
    ref = _gym_vec(env_id, n, mode, **kwargs)
    env = pgfast.make_vec(env_id, num_envs=n, autoreset_mode=mode, **kwargs)
    r_obs, _ = ref.reset(seed=11)
    obs, _ = env.reset(seed=11)
    _close(obs, r_obs, "reset obs")
    rng = np.random.default_rng(2)
    ended = truncated_at = 0
    for t in range(int(limit * 2.2)):
        actions = _actions(rng, env, n, t, scale=1.1)
        r_obs, r_rew, r_term, r_trunc, r_info = ref.step(actions)
        obs, rew, term, trunc, info = env.step(actions)
        np.testing.assert_array_equal(
            env.get_state(), np.stack([_ref_state(e.unwrapped) for e in ref.envs]), err_msg=f"state t={t}")
        _close(obs, r_obs, f"obs t={t}")
        _close(rew, r_rew, f"reward t={t}")
        np.testing.assert_array_equal(term, r_term, err_msg=f"terminated t={t}")
        np.testing.assert_array_equal(trunc, r_trunc, err_msg=f"truncated t={t}")
        if mode == "same_step":
            mask = r_info.get("_final_obs", np.zeros(n, bool))
            np.testing.assert_array_equal(info.get("_final_obs", np.zeros(n, bool)), mask)
            for i in np.flatnonzero(mask):
                _close(info["final_obs"][i], r_info["final_obs"][i], f"final_obs t={t}")
        else:
            assert info == {}
        ended += int((term | trunc).sum())
        if trunc.any():
            truncated_at = truncated_at or t + 1
    assert ended > 0
    if env_id not in TERMINATING:
        assert truncated_at == limit  # gymnasium's TimeLimit: the limit-th step is truncated
    env.close()
    ref.close()


@pytest.mark.parametrize("env_id", IDS)
def test_reset_rules_and_seeding_match_gymnasium(env_id):
    """Env i seeded s resets exactly as gymnasium's env seeded s + i (Reacher's goal and
    Pusher's cylinder are redrawn until valid: 32 envs exercise those loops)."""
    n = 32
    env = pgfast.make_vec(env_id, num_envs=n)
    obs, _ = env.reset(seed=1000)
    ref = _gym_env(env_id)
    for i in range(n):
        r_obs, _ = ref.reset(seed=1000 + i)
        np.testing.assert_array_equal(env.get_state()[i], _ref_state(ref), err_msg=f"env {i}")
        _close(obs[i], r_obs, f"reset obs env {i}")
    state = env.get_state()
    if env_id == "Reacher-v5":  # the goal lies inside the 0.2 disc, the target is at rest
        assert np.all(np.hypot(state[:, 2], state[:, 3]) < 0.2) and np.all(state[:, -2:] == 0)
    if env_id == "Pusher-v5":  # arm at init_qpos, cylinder away from the goal at the origin
        np.testing.assert_array_equal(state[:, :7], np.broadcast_to(env.init_qpos[:7], (n, 7)))
        assert np.all(np.hypot(state[:, 7], state[:, 8]) > 0.17) and np.all(state[:, 9:11] == 0)
        assert np.all(state[:, -4:] == 0)
    assert not np.array_equal(env.reset(seed=1001)[0], obs)
    np.testing.assert_array_equal(env.reset(seed=1000)[0], obs)
    env.close()
    ref.close()


@pytest.mark.parametrize("env_id", IDS)
def test_pickled_env_continues_bit_for_bit(env_id):
    env = pgfast.make_vec(env_id, num_envs=3, seed=3, autoreset_mode="same_step", max_episode_steps=9)
    rng = np.random.default_rng(0)
    for t in range(13):
        env.step(_actions(rng, env, 3, t))
    twin = pickle.loads(pickle.dumps(env))
    assert type(twin) is type(env) and twin.max_episode_steps == 9
    np.testing.assert_array_equal(twin._elapsed, env._elapsed)
    # a partial reset first: the other envs keep what their last step left (body
    # positions, cfrc_ext, ...), though the unpickled batch has not run them yet
    mask = np.array([False, True, False])
    np.testing.assert_array_equal(twin.reset(options={"reset_mask": mask})[0],
                                  env.reset(options={"reset_mask": mask})[0])
    for t in range(20):
        actions = _actions(rng, env, 3, t)
        a, b = env.step(actions), twin.step(actions)
        for x, y in zip(a[:4], b[:4]):
            np.testing.assert_array_equal(x, y)
        assert a[4].keys() == b[4].keys()
        if a[4]:
            np.testing.assert_array_equal(a[4]["_final_obs"], b[4]["_final_obs"])
            np.testing.assert_array_equal(np.stack(a[4]["final_obs"][a[4]["_final_obs"]]),
                                          np.stack(b[4]["final_obs"][b[4]["_final_obs"]]))
    env.close()
    twin.close()


@pytest.mark.parametrize("env_id", ["Ant-v5", "Humanoid-v5"])
def test_threads_identical(env_id):
    def run(threads):
        env = pgfast.make_vec(env_id, num_envs=9, seed=5, num_threads=threads, max_episode_steps=15)
        rng = np.random.default_rng(0)
        out = []
        for t in range(30):
            out += [x.copy() for x in env.step(_actions(rng, env, 9, t))[:4]]
        env.close()
        return out

    one, two = run(1), run(2)
    assert any(x.dtype == bool and x.any() for x in one)  # episodes ended (and reset) within the run
    for x, y in zip(one, two):
        np.testing.assert_array_equal(x, y)


KWARGS = {
    "Ant-v5": dict(include_cfrc_ext_in_observation=False, exclude_current_positions_from_observation=False,
                   main_body="torso", contact_force_range=(-0.5, 0.5), healthy_z_range=(0.3, 0.9),
                   ctrl_cost_weight=0.1),
    "Humanoid-v5": dict(include_cinert_in_observation=False, include_cfrc_ext_in_observation=False,
                        terminate_when_unhealthy=False, contact_cost_range=(-np.inf, 0.5),
                        forward_reward_weight=2.0),
    "HumanoidStandup-v5": dict(include_cvel_in_observation=False, include_qfrc_actuator_in_observation=False,
                               impact_cost_range=(-np.inf, 1e-3), reset_noise_scale=0.05),
    "Swimmer-v5": dict(exclude_current_positions_from_observation=False, ctrl_cost_weight=0.5,
                       reset_noise_scale=0.3),
    "Reacher-v5": dict(reward_dist_weight=2.0, reward_control_weight=0.5),
    "Pusher-v5": dict(reward_near_weight=1.0, reward_dist_weight=0.5, reward_control_weight=0.2),
}


@pytest.mark.parametrize("env_id", IDS)
def test_kwargs_follow_gymnasium(env_id):
    kwargs = KWARGS[env_id]
    ref = _gym_vec(env_id, 2, "next_step", **kwargs)
    env = pgfast.make_vec(env_id, num_envs=2, **kwargs)
    assert env.single_observation_space == ref.single_observation_space
    _close(env.reset(seed=3)[0], ref.reset(seed=3)[0], "reset obs")
    rng = np.random.default_rng(0)
    for t in range(40):
        actions = _actions(rng, env, 2, t)
        for x, y in zip(env.step(actions)[:4], ref.step(actions)[:4]):
            _close(x, y, f"t={t}")
    env.close()
    ref.close()


def test_bad_input_raises_and_changes_nothing():
    env = pgfast.make_vec("Ant-v5", num_envs=3, seed=2, engine="batch")  # reads the batch's cfrc_ext copy
    twin = pgfast.make_vec("Ant-v5", num_envs=3, seed=2, engine="batch")
    rng = np.random.default_rng(0)
    for t in range(5):
        actions = _actions(rng, env, 3, t)
        env.step(actions)
        twin.step(actions)
    for k, (error, call) in enumerate(_bad_calls(env)):
        before, cfrc = env.get_state(), env._cfrc.copy()
        with pytest.raises(error):
            call()
        np.testing.assert_array_equal(env.get_state(), before, err_msg=f"bad call {k} changed the state")
        np.testing.assert_array_equal(env._cfrc, cfrc, err_msg=f"bad call {k} changed cfrc_ext")
    actions = _actions(rng, env, 3, 0)
    for x, y in zip(env.step(actions)[:4], twin.step(actions)[:4]):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(TypeError, match="unexpected keyword"):
        pgfast.make_vec("Reacher-v5", num_envs=2, reset_noise_scale=0.1)  # not one of Reacher's
