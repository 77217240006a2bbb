"""The C++ engine of the native MuJoCo envs (pgfast/envs/mujoco_core.py, csrc/envs/mujoco_*.hpp):
step-for-step parity with gymnasium's v5 envs and with the batch engine (every autoreset mode,
seeding, set_state), thread-count independence, exact resume from pickles, bad input, the
native rollout stepping the core with no Python per step, and a base install without mujoco."""

import pickle
import subprocess
import sys

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
from pgfast import _C, backends  # noqa: E402
from pgfast.envs.mujoco_core import norm_uses_fma  # noqa: E402
from test_envs_mujoco import _bad_calls  # noqa: E402

CORE_IDS = ["HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5", "Humanoid-v5",
            "HumanoidStandup-v5", "Swimmer-v5", "InvertedPendulum-v5", "InvertedDoublePendulum-v5",
            "Reacher-v5", "Pusher-v5"]
ARMS = ["Reacher-v5", "Pusher-v5"]  # C++ where numpy's norm sums as norm_uses_fma() can tell


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MuJoCo may write MUJOCO_LOG.TXT


def _actions(rng, env, scale=1.0):
    return rng.uniform(-scale, scale, (env.num_envs, env.nu)).astype(np.float32)


def _eq(a, b, what):
    np.testing.assert_array_equal(a, b, err_msg=what)


@pytest.mark.parametrize("env_id", CORE_IDS)
def test_cpp_engine_matches_gymnasium(env_id):
    """Lockstep with gymnasium's SyncVectorEnv (next_step autoresets, seeded resets), bit for bit."""
    n, steps = 3, 300 if env_id.startswith("Humanoid") else 600
    if env_id in ARMS and norm_uses_fma() is None:  # pragma: no cover - depends on numpy's BLAS
        pytest.skip("numpy's norm sums in an order the C++ engine does not know")
    env = pgfast.make_vec(env_id, num_envs=n, seed=0)
    assert env.engine == "cpp" and env.native_core() is None  # next_step mode: no rollout core
    ref = gym.make_vec(env_id, n, vectorization_mode="sync")
    _eq(env.reset(seed=11)[0], ref.reset(seed=11)[0], "reset")
    rng = np.random.default_rng(2)
    ended = 0
    for t in range(steps):
        a = _actions(rng, env, 2.0 if t % 3 else 0.5)
        got, want = env.step(a), ref.step(a)
        for k in range(4):
            _eq(got[k], want[k], f"{env_id} t={t} output {k}")
        ended += int(np.sum(got[2] | got[3]))
    assert env.np_random_seed == tuple(ref.np_random_seed)
    if env_id not in ("HalfCheetah-v5", "Swimmer-v5", "HumanoidStandup-v5"):
        assert ended > 0, "no episode ended: the autoreset was not exercised"
    env.close()
    ref.close()


@pytest.mark.parametrize("mode", ["next_step", "same_step", "disabled"])
@pytest.mark.parametrize("env_id", ["Hopper-v5", "Ant-v5", "InvertedDoublePendulum-v5", "Pusher-v5"])
def test_cpp_engine_matches_batch_engine(env_id, mode):
    """Against the batch engine (the NumPy reference) in every autoreset mode, with set_state
    nudges, masked resets and step_into into float32 arrays; 1 and 2 threads."""
    n = 4
    env = pgfast.make_vec(env_id, num_envs=n, seed=5, autoreset_mode=mode, num_threads=2,
                          max_episode_steps=40)
    ref = pgfast.make_vec(env_id, num_envs=n, seed=5, autoreset_mode=mode, engine="batch",
                          max_episode_steps=40)
    assert (env.engine, ref.engine) == ("cpp", "batch")
    rng = np.random.default_rng(3)
    obs32, rew32 = np.zeros((n, env.obs_dim), np.float32), np.zeros(n, np.float32)
    term, trunc = np.zeros(n, bool), np.zeros(n, bool)
    for t in range(150):
        if mode == "disabled" and env._needs_reset.any():
            mask = env._needs_reset.copy()
            _eq(env.reset(options={"reset_mask": mask})[0], ref.reset(options={"reset_mask": mask})[0], "reset")
        if t % 37 == 5:
            states = env.get_state() + rng.normal(0, 0.01, (n, env.nq + env.nv))
            env.set_state(states)
            ref.set_state(states)
            _eq(env.current_obs(), ref.current_obs(), f"t={t} set_state obs")
        a = _actions(rng, env)
        if t % 2:
            info = env.step_into(a, obs32, rew32, term, trunc)
            want = ref.step(a)
            _eq(obs32, want[0].astype(np.float32), f"t={t} obs")
            _eq(rew32, want[1].astype(np.float32), f"t={t} rew")
            _eq(term, want[2], f"t={t} term")
            _eq(trunc, want[3], f"t={t} trunc")
            if mode == "same_step" and want[4]:
                _eq(info["_final_obs"], want[4]["_final_obs"], "mask")
                _eq(info["final_obs"][info["_final_obs"]], np.stack(want[4]["final_obs"][want[4]["_final_obs"]]),
                    "final_obs (float64 whatever obs_out's dtype)")
        else:
            got, want = env.step(a), ref.step(a)
            for k in range(4):
                _eq(got[k], want[k], f"t={t} output {k}")
            if mode == "same_step":
                assert got[4].keys() == want[4].keys()
                if got[4]:
                    _eq(np.stack(got[4]["final_obs"][got[4]["_final_obs"]]),
                        np.stack(want[4]["final_obs"][want[4]["_final_obs"]]), "final_obs")
        _eq(env._elapsed, ref._elapsed, "elapsed")
    env.close()
    ref.close()


@pytest.mark.parametrize("env_id", ["Ant-v5", "Humanoid-v5", "Walker2d-v5"])
def test_threads_and_pickle_resume_exactly(env_id):
    """Any thread count gives the same trajectories; a pickled env (mid-episode, same_step)
    continues bit for bit, also from a batch engine's pickle."""
    n = 5
    envs = [pgfast.make_vec(env_id, num_envs=n, seed=1, autoreset_mode="same_step", num_threads=k,
                            max_episode_steps=30) for k in (1, 3)]
    batch = pgfast.make_vec(env_id, num_envs=n, seed=1, autoreset_mode="same_step", engine="batch",
                            max_episode_steps=30)
    rng = np.random.default_rng(4)
    for _ in range(17):
        a = _actions(rng, batch)
        outs = [e.step(a)[:4] for e in envs + [batch]]
        for out in outs[1:]:
            for x, y in zip(out, outs[0]):
                _eq(x, y, "threads / engines")
    copies = [pickle.loads(pickle.dumps(envs[0])), pickle.loads(pickle.dumps(batch))]
    copies[1].__setstate__({**batch.__getstate__(), "ctor": envs[0]._ctor})  # batch pickle -> C++ engine
    assert [c.engine for c in copies] == ["cpp", "cpp"]
    for _ in range(40):
        a = _actions(rng, batch)
        want = envs[0].step(a)
        for c in copies:
            got = c.step(a)
            for k in range(4):
                _eq(got[k], want[k], "resumed")
    for e in envs + copies + [batch]:
        e.close()


def test_bad_input_raises_and_changes_nothing():
    env = pgfast.make_vec("Ant-v5", num_envs=3, seed=2)
    twin = pgfast.make_vec("Ant-v5", num_envs=3, seed=2)
    rng = np.random.default_rng(0)
    for _ in range(5):
        a = _actions(rng, env)
        env.step(a)
        twin.step(a)
    for k, (error, call) in enumerate(_bad_calls(env)):
        before = env.get_state()
        with pytest.raises(error):
            call()
        _eq(env.get_state(), before, f"bad call {k} changed the state")
    a = _actions(rng, env)
    for x, y in zip(env.step(a)[:4], twin.step(a)[:4]):
        _eq(x, y, "after the bad calls")
    with pytest.raises(ValueError, match="engine must be"):
        pgfast.make_vec("Ant-v5", num_envs=1, engine="fast")
    for env_id in ARMS:
        assert pgfast.make_vec(env_id, num_envs=1).engine == ("batch" if norm_uses_fma() is None else "cpp")
        assert pgfast.make_vec(env_id, num_envs=1, engine="batch").engine == "batch"


def test_native_rollout_steps_the_core():
    """The native rollout steps the C++ core (no Python per step) and fills the buffer exactly as
    the same C++ loop calling the env's step_into; the paths record it."""
    from pgfast.buffer import RolloutBuffer
    from pgfast.nn.actor_critic import ActorCritic
    from pgfast.rollout import Collector

    rows = []
    for via_core in (True, False):
        env = pgfast.make_vec("Hopper-v5", num_envs=4, seed=0, autoreset_mode="same_step",
                              max_episode_steps=25)
        torch.manual_seed(0)
        pol = ActorCritic(env.single_observation_space.shape[0], env.single_action_space, hidden_sizes=(16,))
        buf = RolloutBuffer(64, 4, env.single_observation_space.shape, env.single_action_space,
                            torch.device("cpu"))
        gen = torch.Generator().manual_seed(1)
        col = Collector(env, pol, buf, gen, rollout_backend="native")
        assert isinstance(col.steps.stepper(), _C.MujocoVecEnv)
        assert backends.env_path(col.native, env) == "core"
        if not via_core:
            col.steps.stepper = lambda col=col: col.step_into  # the same loop through step_into
        col.reset(seed=0)
        col.collect()
        assert buf.truncated.any()
        rows.append([x.clone() for x in (buf.obs, buf.actions, buf.rewards, buf.terminated,
                                         buf.truncated, buf.final_obs, buf.next_values)])
        env.close()
    for x, y in zip(*rows):
        assert torch.equal(x, y)


def test_train_records_the_core_path(tmp_path):
    run = pgfast.train("ppo", "HalfCheetah-v5", total_timesteps=256, seed=0, num_envs=2, num_steps=64,
                       update_epochs=1, num_minibatches=1)
    assert run.paths == {"rollout": "native", "update": "native", "env": "core"}
    assert backends.describe(run.paths) == "rollout native, update native, env core"


def test_extension_works_without_mujoco(tmp_path):
    """_C never links libmujoco: pgfast imports with mujoco blocked, and making a MuJoCo env then
    raises an ImportError that says what to install."""
    code = ("import sys; sys.modules['mujoco'] = None\n"
            "import pgfast, pgfast._C\n"
            "try:\n    pgfast.make_vec('HalfCheetah-v5', num_envs=1)\n"
            "except ImportError as e:\n    print('ImportError:', e)\n")
    # run outside the source tree: it imports the installed pgfast (a clean clone's tree has no _C)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "ImportError:" in out.stdout and "pip install" in out.stdout
    with open(_C.__file__, "rb") as f:
        assert b"libmujoco.so" not in f.read()  # no DT_NEEDED entry (the path comes from Python)


def test_core_checks_its_inputs():
    """pgfast._C.MujocoVecEnv refuses what would make it read or write out of bounds: arrays of
    the wrong size, MjData of another model, bad reset states, env ids out of range, a missing
    library."""
    from pgfast.envs.mujoco_core import core_library, task_settings

    env = pgfast.make_vec("Hopper-v5", num_envs=2, seed=0)
    n, w = 2, env.nq + env.nv

    def good(ids):
        return np.tile(np.concatenate([env.init_qpos, env.init_qvel]), (len(ids), 1))

    def make(**over):
        kw = dict(library=core_library(mujoco), model=env.model,
                  datas=[mujoco.MjData(env.model) for _ in range(n)], task=task_settings(env),
                  frame_skip=4, max_episode_steps=10, autoreset_mode="same_step", num_threads=1,
                  obs=np.zeros((n, env.obs_dim)), rew=np.zeros(n), term=np.zeros(n, bool),
                  trunc=np.zeros(n, bool), final_obs=np.zeros((n, env.obs_dim)),
                  final_mask=np.zeros(n, bool), elapsed=np.zeros(n, np.int64),
                  pending=np.zeros(n, bool), draw=good)
        kw.update(over)
        return _C.MujocoVecEnv(**kw)

    core = make()
    core.reset(np.arange(n, dtype=np.int64))
    core.step(np.zeros((n, env.nu), np.float32))
    for bad_draw in (lambda ids: np.zeros((len(ids), w - 1)), lambda ids: np.full((len(ids), w), np.nan)):
        with pytest.raises(ValueError, match="draw"):
            make(draw=bad_draw).reset(np.arange(n, dtype=np.int64))
    with pytest.raises(ValueError, match="ids"):
        core.reset(np.array([n], dtype=np.int64))
    with pytest.raises(ValueError):
        core.step(np.zeros((n, env.nu + 1), np.float32))
    with pytest.raises(ValueError, match="finite"):
        core.step(np.full((n, env.nu), np.inf))
    ant = pgfast.make_vec("Ant-v5", num_envs=1).model
    with pytest.raises(ValueError, match="qpos"):
        make(datas=[mujoco.MjData(ant) for _ in range(n)])
    with pytest.raises(ValueError, match="obs"):
        make(obs=np.zeros((n, env.obs_dim + 1)))
    with pytest.raises(ValueError, match="autoreset_mode"):
        make(autoreset_mode="later")
    with pytest.raises(ImportError, match="libmujoco"):
        make(library="/nonexistent/libmujoco.so")
    env.close()


def test_a_closed_or_dropped_env_releases_its_core():
    """No reference cycle keeps the C++ core (its threads and simulations) alive."""
    import gc
    import weakref

    env = pgfast.make_vec("Hopper-v5", num_envs=2, seed=0, num_threads=2)
    engine = weakref.ref(env._core)
    env.close()
    gc.collect()
    assert engine() is None
    env = pgfast.make_vec("Hopper-v5", num_envs=2, seed=0, num_threads=2)
    engine = weakref.ref(env._core)
    del env
    gc.collect()
    assert engine() is None
