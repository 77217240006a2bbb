"""Batched MuJoCo envs (pgfast.envs.mujoco) against gymnasium's v5 envs.

Align tests copy qpos/qvel into gymnasium's env with ``unwrapped.set_state`` and
step both with the same actions, and run whole seeded trajectories (resets,
autoresets, time limit) side by side with gymnasium's sync vector env.
"""

import numpy as np
import pytest

mujoco = pytest.importorskip("mujoco", reason="mujoco not installed: pip install 'pgfast-rl[mujoco]'")
try:
    from mujoco import batch as _mj_batch  # noqa: F401
except ImportError:  # pragma: no cover - depends on the install
    pytest.skip("mujoco >= 4.0 (mujoco.batch) needed by the native MuJoCo envs", allow_module_level=True)

import gymnasium as gym  # noqa: E402
import torch  # noqa: E402

import pgfast  # noqa: E402
from pgfast.envs import mujoco as mj_envs  # noqa: E402

IDS = list(mj_envs.MUJOCO_IDS)
MODES = {"next_step": gym.vector.AutoresetMode.NEXT_STEP, "same_step": gym.vector.AutoresetMode.SAME_STEP}
RTOL = 1e-6


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    # gymnasium's half_cheetah.xml makes MuJoCo's compiler write MUJOCO_LOG.TXT into the cwd
    monkeypatch.chdir(tmp_path)


def _gym_env(env_id, **kwargs):
    return gym.make(env_id, disable_env_checker=True, **kwargs).unwrapped


def _gym_vec(env_id, n, mode, **kwargs):
    return gym.make_vec(env_id, num_envs=n, vectorization_mode="sync",
                        vector_kwargs={"autoreset_mode": MODES[mode]}, **kwargs)


def _close(actual, expected, what):
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=1e-12, err_msg=what)


def test_registered_and_make_vec_picks_native():
    assert set(IDS) == {"HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "InvertedPendulum-v5",
                        "InvertedDoublePendulum-v5"}
    assert set(IDS) <= set(pgfast.envs.native_ids())
    assert mj_envs.mujoco_available()
    env = pgfast.make_vec("HalfCheetah-v5", num_envs=3, seed=0)
    assert isinstance(env, mj_envs.HalfCheetahVectorEnv)
    assert env.metadata["autoreset_mode"] is gym.vector.AutoresetMode.NEXT_STEP
    assert env.spec.id == "HalfCheetah-v5" and env.spec.max_episode_steps == 1000
    env.close()
    fallback = pgfast.make_vec("HalfCheetah-v5", num_envs=2, backend="gymnasium")
    assert isinstance(fallback, gym.vector.SyncVectorEnv)
    fallback.close()


@pytest.mark.parametrize("env_id", IDS)
def test_spaces_and_model_match_gymnasium(env_id):
    ref = _gym_env(env_id)
    env = pgfast.make_vec(env_id, num_envs=3)
    assert env.single_observation_space == ref.observation_space
    assert env.single_action_space == ref.action_space
    assert env.observation_space == gym.vector.utils.batch_space(ref.observation_space, 3)
    assert env.action_space == gym.vector.utils.batch_space(ref.action_space, 3)
    assert env.frame_skip == ref.frame_skip and env.dt == ref.dt
    np.testing.assert_array_equal(env.init_qpos, ref.init_qpos)
    np.testing.assert_array_equal(env.init_qvel, ref.init_qvel)
    # the compiled model is the same, field by field (half_cheetah.xml's settotalmass
    # is applied after compiling instead of by the compiler)
    for name in dir(ref.model):
        value = getattr(ref.model, name)
        if isinstance(value, np.ndarray) and not name.startswith("_"):
            np.testing.assert_array_equal(getattr(env.model, name), value, err_msg=name)
    assert env.model.opt.timestep == ref.model.opt.timestep
    env.close()
    ref.close()


def test_no_mujoco_log_written(tmp_path):
    env = pgfast.make_vec("HalfCheetah-v5", num_envs=1, seed=0)
    env.close()
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()


@pytest.mark.parametrize("env_id", IDS)
def test_align_set_state_step(env_id):
    """Copy each env's state into gymnasium's env, step both: >= 2,000 transitions."""
    n = 8
    env = pgfast.make_vec(env_id, num_envs=n, seed=3, num_threads=2)
    ref = _gym_env(env_id)
    ref.reset(seed=0)
    rng = np.random.default_rng(1)
    low, high = env.single_action_space.low, env.single_action_space.high
    nq = env.nq
    transitions = terminations = t = 0
    while transitions < 2000:
        t += 1
        states = env.get_state()
        if t % 50 == 7:  # exercise set_state too: nudge every env's state
            states = states + rng.normal(0.0, 0.01, states.shape)
            env.set_state(states)
            for i in range(n):
                ref.set_state(states[i, :nq], states[i, nq:])
                _close(env.current_obs()[i], ref._get_obs(), f"{env_id} obs after set_state")
        # beyond the bounds on purpose: MuJoCo clamps ctrl, the cost uses the raw action
        actions = rng.uniform(1.2 * low, 1.2 * high, (n, env.nu))
        if t % 2:
            actions = actions.astype(np.float32)
        pending = env._needs_reset.copy()
        obs, rew, term, trunc, _ = env.step(actions)
        for i in np.flatnonzero(~pending):
            ref.set_state(states[i, :nq], states[i, nq:])
            r_obs, r_rew, r_term, _, _ = ref.step(actions[i])
            _close(obs[i], r_obs, f"{env_id} obs t={t} env={i}")
            _close(rew[i], r_rew, f"{env_id} reward t={t} env={i}")
            assert term[i] == r_term, (env_id, t, i)
            assert not trunc[i]
            transitions += 1
            terminations += bool(r_term)
    if env_id != "HalfCheetah-v5":
        assert terminations > 0  # the termination rule was exercised
    env.close()
    ref.close()


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
@pytest.mark.parametrize("env_id", IDS)
def test_align_seeded_trajectory(env_id, mode):
    """Same seed, same actions as gymnasium's sync vector env: resets, autoresets, time limit."""
    n = 2
    steps = 1050 if env_id == "HalfCheetah-v5" else 500
    kwargs = {}
    if env_id in ("Hopper-v5", "Walker2d-v5") and mode == "same_step":
        kwargs = {"terminate_when_unhealthy": False}  # run into the 1000-step time limit
        steps = 1050
    ref = _gym_vec(env_id, n, mode, **kwargs)
    env = pgfast.make_vec(env_id, num_envs=n, autoreset_mode=mode, **kwargs)
    r_obs, _ = ref.reset(seed=11)
    obs, _ = env.reset(seed=11)
    _close(obs, r_obs, "reset obs")
    rng = np.random.default_rng(2)
    low, high = env.single_action_space.low, env.single_action_space.high
    ended = truncated_at = 0
    for t in range(steps):
        actions = rng.uniform(1.1 * low, 1.1 * high, (n, env.nu))
        r_obs, r_rew, r_term, r_trunc, r_info = ref.step(actions)
        obs, rew, term, trunc, info = env.step(actions)
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
    if steps > 1000:
        assert truncated_at == 1000  # gymnasium's TimeLimit: the 1000th step is truncated
    env.close()
    ref.close()


@pytest.mark.parametrize("env_id", ["HalfCheetah-v5", "Hopper-v5", "InvertedDoublePendulum-v5"])
def test_reset_distribution_matches_gymnasium(env_id):
    n = 1500
    env = pgfast.make_vec(env_id, num_envs=n)
    env.reset(seed=1000)
    noise = env.get_state() - np.concatenate([env.init_qpos, env.init_qvel])
    ref = _gym_env(env_id)
    ref_noise = []
    for k in range(n):
        ref.reset(seed=50_000 + k)
        ref_noise.append(np.concatenate([ref.data.qpos, ref.data.qvel]) - np.concatenate([ref.init_qpos,
                                                                                             ref.init_qvel]))
    ref_noise = np.asarray(ref_noise)
    scale = env._reset_noise_scale
    # mean 0 and the same spread per dim (uniform: scale / sqrt(3); normal: scale)
    se = scale / np.sqrt(n)
    assert np.all(np.abs(noise.mean(0)) < 5 * se)
    assert np.all(np.abs(ref_noise.mean(0)) < 5 * se)
    np.testing.assert_allclose(noise.std(0), ref_noise.std(0), rtol=0.12)
    assert np.all(np.abs(noise[:, :env.nq]) <= scale)
    # env i seeded s draws exactly what gymnasium's env seeded s + i draws
    for i in (0, 1, n - 1):
        ref.reset(seed=1000 + i)
        np.testing.assert_array_equal(env.get_state()[i], np.concatenate([ref.data.qpos, ref.data.qvel]))
    env.close()
    ref.close()


def _rollout(env, steps, seed=0):
    rng = np.random.default_rng(seed)
    low, high = env.single_action_space.low, env.single_action_space.high
    out = [env.reset(seed=5)[0].copy()]
    for _ in range(steps):
        obs, rew, term, trunc, info = env.step(rng.uniform(low, high, (env.num_envs, env.nu)))
        out += [obs.copy(), rew.copy(), term.copy(), trunc.copy()]
        if "final_obs" in info:
            out += [np.stack(info["final_obs"][info["_final_obs"]])]
    return out


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_threads_identical_and_seed_reproducible(mode):
    runs = [_rollout(pgfast.make_vec("Hopper-v5", num_envs=33, autoreset_mode=mode, num_threads=k), 150)
            for k in (1, 2, 2)]
    for a, b in zip(runs[0], runs[1]):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(runs[1], runs[2]):
        np.testing.assert_array_equal(a, b)
    env = pgfast.make_vec("Hopper-v5", num_envs=33)
    first = env.reset(seed=5)[0].copy()
    assert not np.array_equal(env.reset(seed=6)[0], first)
    np.testing.assert_array_equal(env.reset(seed=5)[0], first)


def test_next_step_autoreset_semantics():
    env = pgfast.make_vec("InvertedPendulum-v5", num_envs=4, seed=0)
    actions = np.full((4, 1), 3.0)  # pushes every pole over within a few steps
    for _ in range(100):
        obs, rew, term, trunc, _ = env.step(actions)
        if term.any():
            break
    assert term.any()
    ended = term.copy()
    obs, rew, term, trunc, _ = env.step(actions)
    # the ended envs were reset (action ignored): reset obs, reward 0, flags False
    assert np.all(rew[ended] == 0.0) and not term[ended].any() and not trunc[ended].any()
    assert np.all(np.abs(obs[ended]) <= 0.01)
    assert np.all(env._elapsed[ended] == 0)


@pytest.mark.parametrize("kind", ["numpy64", "numpy32", "torch64", "torch32"])
@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_step_into_matches_step(kind, mode):
    n = 6
    a = pgfast.make_vec("Hopper-v5", num_envs=n, seed=4, autoreset_mode=mode)
    b = pgfast.make_vec("Hopper-v5", num_envs=n, seed=4, autoreset_mode=mode)
    dtype = np.float64 if kind.endswith("64") else np.float32
    if kind.startswith("numpy"):
        obs, rew = np.zeros((n, 11), dtype), np.zeros(n, dtype)
        term, trunc = np.zeros(n, bool), np.zeros(n, bool)
        view = lambda x: x  # noqa: E731
    else:
        tdt = torch.float64 if dtype == np.float64 else torch.float32
        obs, rew = torch.zeros((n, 11), dtype=tdt), torch.zeros(n, dtype=tdt)
        term, trunc = torch.zeros(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool)
        view = lambda x: x.numpy()  # noqa: E731
    rng = np.random.default_rng(0)
    for _ in range(120):
        actions = rng.uniform(-1, 1, (n, 3))
        o, r, te, tr, info = a.step(actions)
        info2 = b.step_into(actions, obs, rew, term, trunc)
        np.testing.assert_array_equal(view(obs), o.astype(dtype))
        np.testing.assert_array_equal(view(rew), r.astype(dtype))
        np.testing.assert_array_equal(view(term), te)
        np.testing.assert_array_equal(view(trunc), tr)
        if mode == "same_step":  # step: gymnasium's form; step_into: the dense form
            assert info2.keys() == {"final_obs", "_final_obs"}
            np.testing.assert_array_equal(info.get("_final_obs", np.zeros(n, bool)),
                                          info2["_final_obs"])
            if info:
                np.testing.assert_array_equal(np.stack(info["final_obs"][info["_final_obs"]]),
                                              info2["final_obs"][info2["_final_obs"]])
        else:
            assert info == info2 == {}


def test_get_set_state_round_trip():
    env = pgfast.make_vec("Walker2d-v5", num_envs=5, seed=1)
    twin = pgfast.make_vec("Walker2d-v5", num_envs=5, seed=99)
    rng = np.random.default_rng(0)
    for _ in range(10):
        env.step(rng.uniform(-1, 1, (5, 6)))
    s = env.get_state()
    assert s.shape == (5, env.nq + env.nv) and s.dtype == np.float64
    twin.set_state(s)
    np.testing.assert_array_equal(twin.get_state(), s)
    s[0, 0] += 1.0  # get_state returns a copy
    assert env.get_state()[0, 0] != s[0, 0]
    actions = rng.uniform(-1, 1, (5, 6))
    o1, r1 = (x.copy() for x in env.step(actions)[:2])
    o2, r2 = twin.step(actions)[:2]
    _close(o2, o1, "obs after set_state")
    _close(r2, r1, "reward after set_state")


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
@pytest.mark.parametrize("env_id", ["Hopper-v5", "InvertedDoublePendulum-v5"])
def test_pickled_env_continues_bit_for_bit(env_id, mode):
    # a checkpoint must restore step counters, pending autoresets and reset streams,
    # not only qpos/qvel: otherwise resumed episodes outlive the time limit
    import pickle

    env = pgfast.make_vec(env_id, num_envs=4, seed=3, autoreset_mode=mode, max_episode_steps=9)
    rng = np.random.default_rng(0)
    nu = env.nu
    for _ in range(13):
        env.step(rng.uniform(-1, 1, (4, nu)))
    twin = pickle.loads(pickle.dumps(env))
    assert type(twin) is type(env) and twin.max_episode_steps == 9
    np.testing.assert_array_equal(twin._elapsed, env._elapsed)
    for _ in range(25):
        actions = rng.uniform(-1, 1, (4, nu))
        a, b = env.step(actions), twin.step(actions)
        for x, y in zip(a[:4], b[:4]):
            np.testing.assert_array_equal(x, y)
        if mode == "same_step":
            assert a[4].keys() == b[4].keys()
            if a[4]:
                np.testing.assert_array_equal(a[4]["_final_obs"], b[4]["_final_obs"])
                np.testing.assert_array_equal(np.stack(a[4]["final_obs"][a[4]["_final_obs"]]),
                                              np.stack(b[4]["final_obs"][b[4]["_final_obs"]]))
        assert (env._elapsed <= 9).all()
    env.close()
    twin.close()


def _bad_calls(env):
    n, nu = env.num_envs, env.nu
    good = np.zeros((n, nu))
    nan = good.copy()
    nan[1, 0] = np.nan
    inf = good.copy()
    inf[0, -1] = np.inf
    # a wrong dtype is a TypeError, a wrong shape, layout or value a ValueError
    return [
        (ValueError, lambda: env.step(np.zeros((n, nu + 1)))),
        (ValueError, lambda: env.step(np.zeros((n + 1, nu)))),
        (ValueError, lambda: env.step(np.zeros(n * nu))),
        (ValueError, lambda: env.step(nan)),
        (ValueError, lambda: env.step(inf)),
        (TypeError, lambda: env.step(np.zeros((n, nu), dtype=bool))),
        (TypeError, lambda: env.step(np.zeros((n, nu), dtype=complex))),
        (ValueError, lambda: env.step_into(good, np.zeros((n, env.obs_dim + 1)), np.zeros(n),
                                           np.zeros(n, bool), np.zeros(n, bool))),
        (TypeError, lambda: env.step_into(good, np.zeros((n, env.obs_dim), np.int64), np.zeros(n),
                                          np.zeros(n, bool), np.zeros(n, bool))),
        (ValueError, lambda: env.step_into(good, np.zeros((env.obs_dim, n)).T, np.zeros(n),
                                           np.zeros(n, bool), np.zeros(n, bool))),
        (TypeError, lambda: env.step_into(good, np.zeros((n, env.obs_dim)), np.zeros(n),
                                          np.zeros(n, np.int8), np.zeros(n, bool))),
        (ValueError, lambda: env.set_state(np.zeros((n, env.nq + env.nv + 1)))),
        (ValueError, lambda: env.set_state(np.full((n, env.nq + env.nv), np.nan))),
        (TypeError, lambda: env.set_state(np.full((n, env.nq + env.nv), "a"))),
    ]


def test_bad_input_raises_and_changes_nothing():
    env = pgfast.make_vec("Hopper-v5", num_envs=3, seed=2)
    twin = pgfast.make_vec("Hopper-v5", num_envs=3, seed=2)
    rng = np.random.default_rng(0)
    for _ in range(5):
        actions = rng.uniform(-1, 1, (3, 3))
        env.step(actions)
        twin.step(actions)
    for k, (error, call) in enumerate(_bad_calls(env)):
        before = env.get_state()
        with pytest.raises(error):
            call()
        np.testing.assert_array_equal(env.get_state(), before, err_msg=f"bad call {k} changed the state")
    np.testing.assert_array_equal(env._elapsed, twin._elapsed)
    actions = rng.uniform(-1, 1, (3, 3))
    for x, y in zip(env.step(actions)[:4], twin.step(actions)[:4]):
        np.testing.assert_array_equal(x, y)


def test_lifecycle_and_constructor_errors():
    env = mj_envs.HalfCheetahVectorEnv(num_envs=2)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros((2, 6)))
    env.reset(seed=0)
    env.close()
    with pytest.raises(RuntimeError):
        env.step(np.zeros((2, 6)))
    with pytest.raises(RuntimeError):
        env.reset()
    with pytest.raises(TypeError, match="unexpected keyword"):
        pgfast.make_vec("HalfCheetah-v5", num_envs=2, no_such_option=1)
    with pytest.raises(ValueError, match="render_mode"):
        pgfast.make_vec("HalfCheetah-v5", num_envs=2, render_mode="rgb_array")
    with pytest.raises(ValueError, match="num_threads"):
        mj_envs.HalfCheetahVectorEnv(num_envs=2, num_threads=0)
    with pytest.raises(ValueError, match="xml_file"):
        mj_envs.HalfCheetahVectorEnv(num_envs=2, xml_file="no_such_model.xml")


def test_kwargs_follow_gymnasium():
    kwargs = {"ctrl_cost_weight": 0.5, "forward_reward_weight": 2.0, "reset_noise_scale": 0.2,
              "exclude_current_positions_from_observation": False}
    ref = _gym_vec("HalfCheetah-v5", 2, "next_step", **kwargs)
    env = pgfast.make_vec("HalfCheetah-v5", num_envs=2, **kwargs)
    assert env.single_observation_space == ref.single_observation_space
    _close(env.reset(seed=3)[0], ref.reset(seed=3)[0], "reset obs")
    rng = np.random.default_rng(0)
    for t in range(50):
        actions = rng.uniform(-1, 1, (2, 6))
        for x, y in zip(env.step(actions)[:4], ref.step(actions)[:4]):
            _close(x, y, f"t={t}")


def test_partial_reset_mask():
    env = pgfast.make_vec("HalfCheetah-v5", num_envs=4, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(3):
        env.step(rng.uniform(-1, 1, (4, 6)))
    before = env.get_state()
    mask = np.array([False, True, False, True])
    env.reset(seed=7, options={"reset_mask": mask})
    after = env.get_state()
    np.testing.assert_array_equal(after[~mask], before[~mask])
    ref = _gym_env("HalfCheetah-v5")
    ref.reset(seed=7 + 1)
    np.testing.assert_array_equal(after[1], np.concatenate([ref.data.qpos, ref.data.qvel]))
    assert np.all(env._elapsed[mask] == 0) and np.all(env._elapsed[~mask] == 3)


def test_import_without_mujoco_and_clear_error():
    """`import pgfast` works without mujoco; making a MuJoCo id then says what to install."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['mujoco'] = None\n"  # makes `import mujoco` raise ImportError
        "import pgfast\n"
        "assert 'HalfCheetah-v5' in pgfast.envs.native_ids()\n"
        "try:\n"
        "    pgfast.make_vec('HalfCheetah-v5', num_envs=2)\n"
        "except ImportError as e:\n"
        "    print('ERR', e)\n"
    )
    root = str(__import__("pathlib").Path(pgfast.__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "PYTHONPATH": root})
    assert out.returncode == 0, out.stderr
    assert "ERR HalfCheetah-v5 needs the 'mujoco' package" in out.stdout
    assert "pip install 'pgfast-rl[mujoco]'" in out.stdout  # the distribution's name, not the import name
