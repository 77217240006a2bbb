"""Every supported gymnasium space, end to end (pgfast.spaces, pgfast.nn.heads, pgfast.nn.encoders,
pgfast.nn.modular, the probe envs of pgfast.envs.probes).

* observations: the batched flattening equals ``gymnasium.spaces.flatten`` row by row (nested
  Tuple/Dict included), final observations too; images go to the Nature CNN in both layouts;
* actions: log-probs, entropies and KL divergences of the MultiDiscrete and MultiBinary heads
  equal ``torch.distributions``; the rollout's noise samples the right distribution; TRPO's
  Fisher-vector product equals the Hessian of the KL;
* per space: training to a stated threshold on a probe env that only a policy using the space
  correctly can solve (seed 0, stated step budgets), checkpoint + exact resume, evaluation;
* paths: flat Box observations with Discrete/Box actions keep the C++ paths; every other space
  runs the torch path and says why; unsupported spaces fail in one line naming them.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces as S
from torch import distributions as D

import pgfast
from pgfast import spaces
from pgfast.algos import make_config
from pgfast.envs.probes import ImageObs
from pgfast.nn import ActorCritic
from pgfast.nn.encoders import FlatEncoder, NatureCNN
from pgfast.nn.heads import BernoulliHead, MultiCategoricalHead
from pgfast.nn.modular import ModularActorCritic
from pgfast.trainer import Run, load

NESTED = S.Dict({"b": S.Tuple((S.Discrete(3, start=-1), S.MultiBinary(2))),
                 "a": S.Box(-1.0, 1.0, (2, 2), np.float32),
                 "c": S.Dict({"z": S.MultiDiscrete([2, 3], start=[1, 0]), "y": S.Discrete(4)})})
FLAT_CASES = [S.Discrete(5), S.Discrete(4, start=2), S.MultiDiscrete([3, 2, 4]), S.MultiBinary(5),
              S.Box(0, 1, (3, 2)), S.Tuple((S.Discrete(3), S.Box(-1, 1, (2,)))), NESTED]


def _paths(run):
    """The rollout and update paths (the env's stepping, paths["env"], is tested in test_backends)."""
    assert run.paths["env"] in ("core", "step_into", "step")
    return {k: run.paths[k] for k in ("rollout", "update")}


# ---------------------------------------------------------------- observations


@pytest.mark.parametrize("space", FLAT_CASES, ids=lambda s: type(s).__name__)
def test_batch_flatten_is_gymnasium_flatten(space: Any) -> None:
    space.seed(3)
    n = 6
    samples = [space.sample() for _ in range(n)]
    batch = gym.vector.utils.concatenate(space, samples, gym.vector.utils.create_empty_array(space, n))
    got = spaces.batch_flatten(space, batch, n)
    want = np.stack([S.flatten(space, x) for x in samples]).astype(np.float32)
    assert got.dtype == np.float32 and got.shape == (n, S.flatdim(space))
    np.testing.assert_array_equal(got, want)


def test_flatten_observations_wrapper_and_final_obs() -> None:
    raw = pgfast.make_vec("pgfast/DictObs-v0", 3, autoreset_mode="same_step")
    env = spaces.adapt_env(pgfast.make_vec("pgfast/DictObs-v0", 3, autoreset_mode="same_step"))
    assert isinstance(env, spaces.FlattenObservations)
    assert env.single_observation_space.shape == (S.flatdim(raw.single_observation_space),)
    o_raw, _ = raw.reset(seed=5)
    o, _ = env.reset(seed=5)
    sp = raw.single_observation_space
    np.testing.assert_array_equal(o, spaces.batch_flatten(sp, o_raw, 3))
    a = np.array([1, 2, 3])
    o_raw, _, _, _, i_raw = raw.step(a)
    o, _, term, _, info = env.step(a)
    assert term.all() and info["_final_obs"].all()
    np.testing.assert_array_equal(o, spaces.batch_flatten(sp, o_raw, 3))
    want = np.stack([S.flatten(sp, x) for x in i_raw["final_obs"]]).astype(np.float32)
    np.testing.assert_array_equal(info["final_obs"], want)
    raw.close()
    env.close()


def test_image_layouts_give_the_same_features() -> None:
    torch.manual_seed(0)
    hwc = NatureCNN((40, 36, 3))
    chw = NatureCNN((3, 40, 36))
    chw.load_state_dict(hwc.state_dict())
    assert hwc.channels_last and not chw.channels_last
    x = torch.randint(0, 256, (5, 40, 36, 3)).float()
    f = hwc(x)
    assert f.shape == (5, 512) and (f >= 0).all()
    torch.testing.assert_close(f, chw(x.permute(0, 3, 1, 2)), rtol=0, atol=0)
    # inputs are scaled to [0, 1]: the first layer sees x / 255
    conv = hwc.convs[0]
    torch.testing.assert_close(hwc.convs[1](conv(x.permute(0, 3, 1, 2) / 255.0)),
                               hwc.convs[:2](x.permute(0, 3, 1, 2) * (1 / 255.0)))
    with pytest.raises(ValueError, match="at least 36x36"):
        NatureCNN((20, 20, 1))


def _policy(env_id: str, **fields: Any) -> Any:
    cfg = make_config("ppo", env_id, True, **fields)
    run = Run("ppo", env_id, cfg, seed=0, device="cpu")
    run.close()
    return run


def test_policy_and_paths_per_space() -> None:
    cart = _policy("CartPole-v1")
    assert isinstance(cart.policy, ActorCritic) and _paths(cart) == {"rollout": "native", "update": "native"}
    assert cart.space_note is None
    img = _policy("pgfast/ImageObs-v0")
    assert isinstance(img.policy, ModularActorCritic) and isinstance(img.policy.pi_encoder, NatureCNN)
    assert _paths(img) == {"rollout": "torch", "update": "torch"} and img.space_note == "image observations"
    assert img.policy.obs_rms is None and img.policy.shared and img.policy.v_encoder is None
    assert not any(p is q for p in img.policy.critic_params_for_grad() for q in img.policy.pi_encoder.parameters())
    sep = _policy("pgfast/ImageObs-v0", share_encoder=False)
    assert isinstance(sep.policy.v_encoder, NatureCNN)
    mlp = _policy("pgfast/ImageObs-v0", encoder="mlp")
    assert isinstance(mlp.policy.pi_encoder, FlatEncoder) and mlp.policy.pi_encoder.scale == 1 / 255
    d = _policy("pgfast/DictObs-v0", norm_obs=True)
    assert d.space_note == "Dict observations are flattened in Python" and d.policy.obs_rms is not None
    md = _policy("pgfast/MultiDiscreteAction-v0")
    assert md.space_note == "MultiDiscrete actions" and md.paths["update"] == "torch"
    assert md.buffer.actions.shape == (md.config.num_steps, md.config.num_envs, 3)
    with pytest.raises(ValueError, match="encoder='cnn' needs image observations"):
        _policy("pgfast/DictObs-v0", encoder="cnn")
    with pytest.raises(ValueError, match="norm_obs does not apply to image observations"):
        _policy("pgfast/ImageObs-v0", norm_obs=True)
    with pytest.raises(ValueError, match="encoder must be one of auto, mlp, cnn"):
        make_config("ppo", None, encoder="cnnn")


class _Odd(gym.Env):
    """An env with an unsupported observation or action space."""

    def __init__(self, kind: str = "Text") -> None:
        obs = {"Text": S.Text(5), "Graph": S.Graph(S.Box(0, 1, (2,)), None),
               "Sequence": S.Sequence(S.Discrete(2)), "InTuple": S.Tuple((S.Discrete(2), S.Text(3)))}
        self.observation_space = obs.get(kind, S.Discrete(2))
        self.action_space = S.Tuple((S.Discrete(2), S.Discrete(2))) if kind == "TupleAction" else S.Discrete(2)

    def reset(self, *, seed: Any = None, options: Any = None) -> Any:
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action: Any) -> Any:
        return self.observation_space.sample(), 0.0, True, False, {}


@pytest.mark.parametrize("kind,msg", [
    ("Text", "observation space Text is not supported; supported observation spaces: Box (flat or image), "
             "Discrete, MultiDiscrete, MultiBinary, and Tuple/Dict of these"),
    ("Graph", "observation space Graph is not supported"),
    ("Sequence", "observation space Sequence is not supported"),
    ("InTuple", "observation space Text (inside Tuple) is not supported"),
    ("TupleAction", "action space Tuple is not supported; supported action spaces: Discrete, Box (1-D), "
                    "MultiDiscrete (1-D), MultiBinary (1-D)"),
])
def test_unsupported_space_is_one_line_naming_it(kind: str, msg: str) -> None:
    env_id = f"pgfast-test/Odd{kind}-v0"
    if env_id not in gym.registry:
        gym.register(env_id, entry_point=lambda kind=kind: _Odd(kind), disable_env_checker=True)
    with pytest.raises(TypeError) as e:
        pgfast.train("ppo", env_id, total_timesteps=64, num_envs=2, num_steps=32)
    text = str(e.value)
    assert msg in text and "\n" not in text


# ---------------------------------------------------------------- action distributions


def test_multidiscrete_head_matches_torch_distributions() -> None:
    torch.manual_seed(0)
    nvec = [3, 1, 4]
    head = MultiCategoricalHead(nvec)
    logits, other = torch.randn(7, 8, dtype=torch.float64), torch.randn(7, 8, dtype=torch.float64)
    a = torch.stack([torch.randint(0, n, (7,)) for n in nvec], -1)
    cats = [D.Categorical(logits=lg) for lg in logits.split(nvec, -1)]
    cats_q = [D.Categorical(logits=lg) for lg in other.split(nvec, -1)]
    torch.testing.assert_close(head.log_prob(logits, a), sum(c.log_prob(a[:, i]) for i, c in enumerate(cats)))
    torch.testing.assert_close(head.entropy(logits), sum(c.entropy() for c in cats))
    torch.testing.assert_close(head.kl(logits, None, other),
                               sum(D.kl_divergence(p, q) for p, q in zip(cats, cats_q)))
    assert head.mode(logits).tolist() == torch.stack([lg.argmax(-1) for lg in logits.split(nvec, -1)], -1).tolist()


def test_multibinary_head_matches_torch_distributions() -> None:
    torch.manual_seed(0)
    head = BernoulliHead(5)
    logits, other = torch.randn(9, 5, dtype=torch.float64) * 3, torch.randn(9, 5, dtype=torch.float64)
    a = torch.randint(0, 2, (9, 5))
    p, q = D.Bernoulli(logits=logits), D.Bernoulli(logits=other)
    torch.testing.assert_close(head.log_prob(logits, a), p.log_prob(a.double()).sum(-1))
    torch.testing.assert_close(head.entropy(logits), p.entropy().sum(-1))
    torch.testing.assert_close(head.kl(logits, None, other), D.kl_divergence(p, q).sum(-1))
    assert head.mode(logits).tolist() == (logits > 0).long().tolist()


@pytest.mark.parametrize("head", [MultiCategoricalHead([3, 2]), BernoulliHead(3)], ids=["multidiscrete", "multibinary"])
def test_rollout_noise_samples_the_distribution(head: Any) -> None:
    gen = torch.Generator().manual_seed(1)
    logits = torch.tensor([[0.5, -1.0, 0.3, 1.2, -0.4]])[:, :head.out_dim]
    n = 40_000
    noise = head.noise((n,), gen, torch.device("cpu"))
    acts = head.sample_with_noise(logits.expand(n, -1), noise)
    direct = head.sample(logits.expand(n, -1), generator=gen)
    for sample in (acts, direct):
        if isinstance(head, BernoulliHead):
            np.testing.assert_allclose(sample.double().mean(0), torch.sigmoid(logits[0]), atol=0.01)
        else:
            for d, lg in enumerate(logits[0].split(head.nvec)):
                freq = torch.bincount(sample[:, d], minlength=lg.numel()).double() / n
                np.testing.assert_allclose(freq, lg.softmax(-1), atol=0.01)


@pytest.mark.parametrize("env_id", ["pgfast/MultiDiscreteAction-v0", "pgfast/MultiBinaryAction-v0"])
def test_trpo_fisher_vector_product_is_the_kl_hessian(env_id: str) -> None:
    torch.manual_seed(0)
    run = _policy(env_id, hidden_sizes=(4,))
    pol = run.policy.double()
    trpo = pgfast.algos.ALGOS["trpo"](pol, make_config("trpo", None, cg_damping=0.0), torch.Generator())
    obs = torch.randn(16, pol.obs_shape[0], dtype=torch.float64)
    with torch.no_grad():
        old = pol(obs)[0]
    fvp = trpo.fisher_vector_product_fn(obs, old, None)
    theta0 = pol.actor_vector()

    def mean_kl(theta: torch.Tensor) -> torch.Tensor:
        params = {n: p for n, p in pol.named_parameters()}
        names = [n for n, p in params.items() if any(p is q for q in pol.actor_params_for_grad())]
        chunks, i = {}, 0
        for n in names:
            k = params[n].numel()
            chunks[n] = theta[i:i + k].view_as(params[n])
            i += k
        out = torch.func.functional_call(pol, chunks, (obs,))[0]
        return pol.kl(old, None, out).mean()

    H = torch.autograd.functional.hessian(mean_kl, theta0)
    v = torch.randn(theta0.numel(), dtype=torch.float64)
    torch.testing.assert_close(fvp(v), H @ v)
    run.close()


# ---------------------------------------------------------------- training per space

# (algo, env id, total steps, extra config, chance level of a random policy)
LEARN = [
    ("ppo", "pgfast/DiscreteObs-v0", 8192, {"learning_rate": 1e-3}, 1 / 8),
    ("ppo", "pgfast/MultiDiscreteObs-v0", 8192, {"learning_rate": 1e-3}, 1 / 6),
    ("ppo", "pgfast/MultiBinaryObs-v0", 8192, {"learning_rate": 1e-3}, 1 / 4),
    ("ppo", "pgfast/TupleObs-v0", 8192, {"learning_rate": 1e-3}, 1 / 6),
    ("ppo", "pgfast/DictObs-v0", 8192, {"learning_rate": 1e-3}, 1 / 8),
    ("ppo", "pgfast/ImageObs-v0", 4096, {"num_envs": 8, "num_steps": 32}, 1 / 2),
    ("ppo", "pgfast/MultiDiscreteAction-v0", 8192, {"learning_rate": 1e-3}, 1 / 3),
    ("ppo", "pgfast/MultiBinaryAction-v0", 8192, {"learning_rate": 1e-3}, 1 / 2),
    ("trpo", "pgfast/MultiDiscreteAction-v0", 8192, {}, 1 / 3),
    ("trpo", "pgfast/MultiBinaryAction-v0", 8192, {}, 1 / 2),
    ("vpg", "pgfast/MultiDiscreteAction-v0", 8192, {"learning_rate": 1e-2}, 1 / 3),
    ("vpg", "pgfast/MultiBinaryAction-v0", 8192, {"learning_rate": 1e-2}, 1 / 2),
]
THRESHOLD = 0.95
"""Deterministic evaluation (200 one-step episodes, rewards in [0, 1]) a trained policy must reach."""


@pytest.mark.parametrize("algo,env_id,steps,extra,chance", LEARN, ids=[f"{a}-{e.split('/')[1]}" for a, e, *_ in LEARN])
def test_learns_the_probe(algo: str, env_id: str, steps: int, extra: Dict[str, Any], chance: float) -> None:
    cfg = make_config(algo, env_id, True, total_timesteps=steps, **extra)
    run = Run(algo, env_id, cfg, seed=0, device="cpu")
    before, _ = run.evaluate(episodes=200)
    run.learn()
    after, _ = run.evaluate(episodes=200)
    stochastic, _ = run.evaluate(episodes=200, deterministic=False, seed=7)
    run.close()
    assert before < 0.7, f"untrained policy already scores {before}: the probe does not test learning"
    assert after >= THRESHOLD, f"{algo} on {env_id}: {after} < {THRESHOLD} after {steps} steps"
    assert stochastic > chance + 0.1, f"sampled actions score {stochastic}, chance is {chance:.3f}"


# ---------------------------------------------------------------- checkpoints and evaluation

RESUME = ["pgfast/DiscreteObs-v0", "pgfast/MultiDiscreteObs-v0", "pgfast/MultiBinaryObs-v0", "pgfast/TupleObs-v0",
          "pgfast/DictObs-v0", "pgfast/ImageObs-v0", "pgfast/MultiDiscreteAction-v0", "pgfast/MultiBinaryAction-v0"]


def _rows(history: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [{k: ("nan" if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()
             if k not in ("sps", "time")} for r in history]


# every space with PPO; TRPO and VPG with the action spaces and one nested observation space
RESUME_CASES = [("ppo", e) for e in RESUME] + [
    (a, e) for a in ("trpo", "vpg")
    for e in ("pgfast/DictObs-v0", "pgfast/MultiDiscreteAction-v0", "pgfast/MultiBinaryAction-v0")]


@pytest.mark.parametrize("algo,env_id", RESUME_CASES, ids=[f"{a}-{e.split('/')[1]}" for a, e in RESUME_CASES])
def test_checkpoint_resumes_exactly(algo: str, env_id: str, tmp_path: Any) -> None:
    kw: Dict[str, Any] = dict(num_envs=2, num_steps=16, hidden_sizes=(8,), update_epochs=2, num_minibatches=2,
                              total_timesteps=96)
    full = pgfast.train(algo, env_id, seed=3, device="cpu", **kw)
    part = Run(algo, env_id, make_config(algo, env_id, True, **kw), seed=3, device="cpu")
    part.learn(callback=lambda row: False)  # stop after the first iteration
    path = tmp_path / "ck.pt"
    part.save(path)
    part.close()
    resumed = load(path)
    assert resumed.resume_note is None and resumed.global_step == 32
    resumed.learn()
    assert _rows(resumed.history) == _rows(full.history)
    sa, sb = resumed.policy.state_dict(), full.policy.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    # evaluation: reproducible, and the same for the resumed and the uninterrupted run
    e1 = resumed.evaluate(episodes=10, deterministic=False, seed=4)
    assert e1 == full.evaluate(episodes=10, deterministic=False, seed=4)
    m, s = resumed.evaluate(episodes=10)
    assert 0.0 <= m <= 1.0 and s >= 0.0
    resumed.close()
    full.close()


@pytest.mark.parametrize("env_id,kw", [("Blackjack-v1", {}), ("FrozenLake-v1", {"is_slippery": False}),
                                       ("Taxi-v4", {})])
def test_gymnasium_toy_text_envs_train(env_id: str, kw: Dict[str, Any]) -> None:
    run = pgfast.train("ppo", env_id, total_timesteps=256, seed=0, num_envs=4, num_steps=32, env_kwargs=kw)
    assert _paths(run) == {"rollout": "torch", "update": "torch"}
    assert run.buffer.obs.shape[-1] == S.flatdim(gym.make(env_id).observation_space)
    assert math.isfinite(run.evaluate(episodes=2)[0])
    run.close()


def test_image_probe_layouts_train_alike() -> None:
    """The CxHxW variant of the image probe trains the same network on transposed images."""
    env = ImageObs(channels_first=True)
    assert env.observation_space.shape == (1, 36, 36) and spaces.is_image_space(env.observation_space)
    a = pgfast.train("ppo", "pgfast/ImageObs-v0", total_timesteps=128, seed=0, num_envs=2, num_steps=32,
                     update_epochs=1)
    b = pgfast.train("ppo", "pgfast/ImageObs-v0", total_timesteps=128, seed=0, num_envs=2, num_steps=32,
                     update_epochs=1, env_kwargs={"channels_first": True})
    assert not b.policy.pi_encoder.channels_last and a.policy.pi_encoder.channels_last
    torch.testing.assert_close(b.buffer.obs, a.buffer.obs.permute(0, 1, 4, 2, 3), rtol=0, atol=0)
    sa, sb = a.policy.state_dict(), b.policy.state_dict()
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=1e-4, atol=1e-5)
    a.close()
    b.close()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("env_id", ["pgfast/ImageObs-v0", "pgfast/MultiDiscreteAction-v0",
                                    "pgfast/MultiBinaryAction-v0", "pgfast/DictObs-v0"])
def test_spaces_on_cuda(env_id: str) -> None:
    for algo in ("ppo", "trpo", "vpg"):
        run = pgfast.train(algo, env_id, total_timesteps=256, seed=0, device="cuda", num_envs=4, num_steps=32)
        assert run.policy.pi_net[0].weight.is_cuda and math.isfinite(run.evaluate(episodes=4)[0])
        run.close()
