"""The README's table of spaces x algorithms x paths ("Spaces") is what runs do: for every
row, every example env and every algorithm, ``Run.paths`` (what ``auto`` picks) is the
row's *rollout / update*; where the cell says C++, ``"torch"`` still gives torch, and where
it says torch, asking for ``"native"`` is an error with the reason."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List, Tuple

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces as S

from pgfast.algos import make_config
from pgfast.trainer import Run

README = Path(__file__).resolve().parents[1] / "README.md"
ALGOS = ("ppo", "trpo", "vpg")
PATH = {"C++": "native", "torch": "torch"}
BOX2D = "pgfast/Box2DObs-v0"


class Box2DObs(gym.Env):
    """Box(2, 3) observations, Discrete(2) actions (a multi-axis Box that is not an image)."""

    observation_space = S.Box(-1.0, 1.0, (2, 3), np.float32)
    action_space = S.Discrete(2)
    metadata: Dict[str, Any] = {"render_modes": []}

    def reset(self, *, seed: Any = None, options: Any = None) -> Any:
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action: Any) -> Any:
        return self.observation_space.sample(), 0.0, True, False, {}


def _paths(run):
    """The rollout and update paths (the env's stepping, paths["env"], is tested in test_backends)."""
    assert run.paths["env"] in ("core", "step_into", "step")
    return {k: run.paths[k] for k in ("rollout", "update")}


@pytest.fixture(scope="module", autouse=True)
def _box2d_env() -> Any:
    gym.register(BOX2D, entry_point=Box2DObs, disable_env_checker=True)
    yield
    del gym.registry[BOX2D]


def table_rows() -> List[Tuple[str, List[str], Dict[str, Any], Dict[str, Tuple[str, str]]]]:
    """(row name, example ids, env kwargs, {algo: (rollout, update)}) per row of the table."""
    lines = README.read_text().splitlines()
    head = next(i for i, ln in enumerate(lines)
                if ln.startswith("| observation space | action space | example env |"))
    cols = [c.strip() for c in lines[head].strip("|").split("|")]
    assert cols[3:] == ["PPO", "TRPO", "VPG"]
    rows = []
    for ln in lines[head + 2:]:
        if not ln.startswith("|"):
            break
        cells = [c.strip() for c in ln.strip("|").split("|")]
        ids = [x for x in re.findall(r"`([^`]+)`", cells[2]) if "=" not in x]
        kwargs = {"backend": "gymnasium"} if 'backend="gymnasium"' in cells[2] else {}
        paths = {}
        for algo, cell in zip(ALGOS, cells[3:]):
            rollout, update = (PATH[p.strip()] for p in cell.split("/"))
            paths[algo] = (rollout, update)
        rows.append((f"{cells[0]} | {cells[1]}", ids, kwargs, paths))
    return rows


ROWS = table_rows()


def _run(algo: str, env_id: str, env_kwargs: Dict[str, Any], **fields: Any) -> Run:
    extra = {"num_minibatches": 1} if algo == "ppo" else {}
    cfg = make_config(algo, env_id, True, num_envs=2, num_steps=8, **extra, **fields)
    run = Run(algo, env_id, cfg, seed=0, device="cpu", env_kwargs=env_kwargs)
    run.close()
    return run


def test_the_table_covers_every_space_and_path() -> None:
    assert len(ROWS) == 7 and all(ids for _, ids, _, _ in ROWS)
    cells = {p for _, _, _, paths in ROWS for p in paths.values()}
    assert cells == {("native", "native"), ("torch", "native"), ("torch", "torch")}


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_row_is_what_runs_do(row: Any, algo: str) -> None:
    name, ids, env_kwargs, paths = row
    rollout, update = paths[algo]
    for env_id in ids:
        run = _run(algo, env_id, env_kwargs)
        assert _paths(run) == {"rollout": rollout, "update": update}, f"{name}: {env_id}"
        # the other choice: torch where C++ runs, an error naming the reason where it cannot
        for field, path in (("rollout_backend", rollout), ("update_backend", update)):
            if path == "native":
                other = _run(algo, env_id, env_kwargs, **{field: "torch"})
                assert other.paths[field.split("_")[0]] == "torch"
            else:
                with pytest.raises(ValueError, match=f"{field}='native': "):
                    _run(algo, env_id, env_kwargs, **{field: "native"})
