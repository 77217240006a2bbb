"""The one C++ MLP (csrc/mlp.hpp): its limits as pgfast._C exposes them, and torch's
semantics of its activations (NaN propagates through ReLU and tanh, in the rollout's forward
and in policy_evaluate)."""

import numpy as np
import pytest
import torch

from pgfast import _C
from pgfast.nn import ActorCritic
from pgfast.algos import make_config
from pgfast.algos.ppo import PPO


def test_limits_are_read_from_the_extension():
    assert _C.MLP_MAX_LAYERS == 8
    assert _C.MLP_ACTIVATIONS == ("tanh", "relu")
    w = [np.zeros((3, 3), np.float32) for _ in range(_C.MLP_MAX_LAYERS + 1)]
    b = [np.zeros(3, np.float32) for _ in w]
    with pytest.raises(ValueError, match=f"1 to {_C.MLP_MAX_LAYERS} layers"):
        _C.policy_forward(w, b, "tanh", np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match="'tanh' or 'relu'"):
        _C.policy_forward(w[:2], b[:2], "gelu", np.zeros((1, 3), np.float32))


def test_the_native_update_follows_the_extensions_layer_limit():
    gym = pytest.importorskip("gymnasium")
    space = gym.spaces.Discrete(2)
    deep = ActorCritic(4, space, hidden_sizes=(8,) * _C.MLP_MAX_LAYERS)  # one layer too many
    ok = ActorCritic(4, space, hidden_sizes=(8,) * (_C.MLP_MAX_LAYERS - 1))
    gen = torch.Generator().manual_seed(0)
    assert PPO(ok, make_config("ppo"), gen).update_path == "native"
    assert PPO(deep, make_config("ppo"), gen).update_path == "torch"
    with pytest.raises(ValueError, match=f"update_backend='native': .*at most {_C.MLP_MAX_LAYERS} layers"):
        assert PPO(deep, make_config("ppo", update_backend="native"), gen).update_path
    deep_critic = ActorCritic(4, space, hidden_sizes=(8,), critic_hidden_sizes=(8,) * _C.MLP_MAX_LAYERS)
    assert PPO(deep_critic, make_config("ppo"), gen).update_path == "torch"


@pytest.mark.parametrize("activation", _C.MLP_ACTIVATIONS)
def test_nan_propagates_like_torch(activation):
    torch.manual_seed(0)
    gym = pytest.importorskip("gymnasium")
    pol = ActorCritic(3, gym.spaces.Discrete(4), hidden_sizes=(16, 16), activation=activation)
    x = torch.randn(6, 3)
    x[1, 0] = float("nan")
    x[4] = float("nan")
    with torch.no_grad():
        ref_out, ref_v = pol(x)
    (ws, bs), (cw, cb) = pol.native_layers()
    out = _C.policy_forward(ws, bs, activation, x.numpy())
    assert np.array_equal(np.isnan(out), ref_out.isnan().numpy())
    assert np.isnan(out[[1, 4]]).all() and not np.isnan(out[[0, 2, 3, 5]]).any()
    values = np.empty(6, np.float32)
    _C.policy_evaluate(actor_weights=ws, actor_biases=bs, critic_weights=cw, critic_biases=cb,
                       log_std=None, activation=activation, obs=x.numpy(), actions=None,
                       values=values, logp=None)
    assert np.array_equal(np.isnan(values), ref_v.isnan().numpy())
    assert np.isnan(values[[1, 4]]).all()
    torch.testing.assert_close(torch.from_numpy(out[[0, 2, 3, 5]]), ref_out[[0, 2, 3, 5]],
                               rtol=1e-5, atol=1e-6)


def test_relu_of_nan_is_nan_after_a_negative_pre_activation():
    # a NaN pre-activation with every other unit negative: `x > 0 ? x : 0` made it 0 and the
    # output finite; torch's relu keeps it
    w0 = np.zeros((1, 2), np.float32)
    w0[0, 0] = 1.0
    b0 = np.full(2, -1.0, np.float32)
    w1 = np.ones((2, 1), np.float32)
    b1 = np.zeros(1, np.float32)
    x = np.array([[np.nan], [0.5]], np.float32)
    out = _C.policy_forward([w0, w1], [b0, b1], "relu", x)
    ref = torch.relu(torch.from_numpy(x) @ torch.from_numpy(w0) + torch.from_numpy(b0))
    ref = ref @ torch.from_numpy(w1) + torch.from_numpy(b1)
    assert np.isnan(out[0, 0]) and ref[0, 0].isnan()
    assert out[1, 0] == 0.0 == float(ref[1, 0])


SIZES = [((16, 16), None, None), ((8,), (8,), (32, 16, 4)), ((), (24, 12), (5,)), ((), (7,), ())]


@pytest.mark.parametrize("activation", _C.MLP_ACTIVATIONS)
@pytest.mark.parametrize("continuous", [False, True])
@pytest.mark.parametrize("sizes", SIZES)
def test_forward_and_evaluate_of_different_actor_and_critic_sizes(activation, continuous, sizes):
    """policy_forward (the actor) and policy_evaluate (values and log-probs) against the torch
    forward, for actor and critic of different widths and depths (1 to 4 layers)."""
    gym = pytest.importorskip("gymnasium")
    hidden, actor_hs, critic_hs = sizes
    space = gym.spaces.Box(-1, 1, (3,), dtype=np.float32) if continuous else gym.spaces.Discrete(4)
    torch.manual_seed(3)
    pol = ActorCritic(5, space, hidden, activation, actor_hidden_sizes=actor_hs,
                      critic_hidden_sizes=critic_hs)
    if continuous:
        with torch.no_grad():
            pol.log_std.copy_(torch.tensor([-0.3, 0.1, 0.4]))
    x = torch.randn(37, 5)
    with torch.no_grad():
        pi, v = pol(x)
        act = pol.sample(pi, generator=torch.Generator().manual_seed(0))
        logp = pol.log_prob(pi, act)
    (aw, ab), (cw, cb) = pol.native_layers()
    assert cw[-1].shape[1] == 1 and cb[-1].shape == (1,)
    out = _C.policy_forward(aw, ab, activation, x.numpy())
    torch.testing.assert_close(torch.from_numpy(out), pi, rtol=1e-5, atol=1e-5)
    values, lp = np.empty(37, np.float32), np.empty(37, np.float32)
    _C.policy_evaluate(actor_weights=aw, actor_biases=ab, critic_weights=cw, critic_biases=cb,
                       log_std=pol.log_std.detach().numpy() if continuous else None,
                       activation=activation, obs=x.numpy(), actions=act.numpy(), values=values,
                       logp=lp)
    torch.testing.assert_close(torch.from_numpy(values), v, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.from_numpy(lp), logp, rtol=1e-5, atol=1e-5)


def test_the_parser_names_the_network_and_checks_the_critic():
    gym = pytest.importorskip("gymnasium")
    pol = ActorCritic(3, gym.spaces.Discrete(2), (4,), critic_hidden_sizes=(6,))
    (aw, ab), (cw, cb) = pol.native_layers()
    x = np.zeros((2, 3), np.float32)
    args = dict(actor_weights=aw, actor_biases=ab, critic_weights=cw, critic_biases=cb,
                log_std=None, activation="tanh", obs=x, actions=None,
                values=np.zeros(2, np.float32), logp=None)
    _C.policy_evaluate(**args)
    ro = [a.copy() for a in cw]
    for a in ro:
        a.setflags(write=False)
    _C.policy_evaluate(**dict(args, critic_weights=ro))  # only read: read-only arrays do
    with pytest.raises(ValueError, match=r"critic_weights must end in 1 output"):
        _C.policy_evaluate(**dict(args, critic_weights=aw, critic_biases=ab))
    with pytest.raises(ValueError, match=r"critic_weights\[1\] has d_in"):
        _C.policy_evaluate(**dict(args, critic_weights=[cw[0], aw[1]]))
    with pytest.raises(ValueError, match=r"actor_biases\[0\] must have shape"):
        _C.policy_evaluate(**dict(args, actor_biases=[ab[0][None], ab[1]]))
    with pytest.raises(ValueError, match=r"weights\[0\] must be \[d_in, d_out\]"):
        _C.policy_forward([aw[0][None], aw[1]], ab, "tanh", x)
    with pytest.raises(ValueError, match="same d_in"):
        _C.policy_evaluate(**dict(args, critic_weights=[cw[0][:2], cw[1]]))
    with pytest.raises(TypeError):
        _C.policy_evaluate(aw, ab, cw, cb, None, "tanh", x, None, args["values"], None)  # keyword-only
