"""Every code block of README.md runs verbatim.

* ```python blocks run as separate scripts (each must be self-contained).
* ```bash blocks: each line that calls ``pgfast`` (or ``.venv/bin/pgfast``) runs, in
  order, in one scratch directory per block, with ``python -m pgfast.cli``. Step
  budgets are capped at ``PGFAST_README_STEPS`` (default 4096) and evaluation
  episodes at 2, so the test stays quick; set ``PGFAST_README_STEPS=0`` to run the
  commands at their full budgets. ``make`` lines are the quick start, which CI runs
  itself, and are not run here.
* A block preceded by ``<!-- readme-test: skip REASON -->`` is skipped with REASON;
  ```text blocks are syntax summaries, never run.
* Every shell line of the "Command line" section starts with an executable that the quick
  start installs (``.venv/bin/pgfast``: it does not activate ``.venv``, so a bare ``pgfast``
  is "command not found" there), and that executable exists beside this interpreter.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import pytest

import pgfast

README = Path(__file__).resolve().parent.parent / "README.md"
# Subprocesses import the same pgfast as this process (installed wheel or source tree).
PKG_ROOT = Path(pgfast.__file__).resolve().parent.parent
STEPS = int(os.environ.get("PGFAST_README_STEPS", "4096"))


def blocks() -> List[Tuple[str, int, str, str]]:
    """(language, line number, code, skip reason) of every fenced block."""
    out = []
    lines = README.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\w*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        lang, start = m.group(1), i + 1
        j = start
        while not lines[j].startswith("```"):
            j += 1
        prev = next((lines[k] for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        skip = re.match(r"<!-- readme-test: skip (.*) -->", prev.strip())
        out.append((lang, start, "\n".join(lines[start:j]), skip.group(1) if skip else ""))
        i = j + 1
    return out


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PKG_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def _shrink(args: List[str]) -> List[str]:
    """Cap step budgets and evaluation episodes (see the module docstring)."""
    if STEPS <= 0:
        return args
    out = list(args)
    for k, a in enumerate(out[:-1]):
        if a == "--total-timesteps":
            out[k + 1] = str(min(int(float(out[k + 1])), STEPS))
        if a in ("--episodes", "--eval-episodes"):
            out[k + 1] = str(min(int(out[k + 1]), 2))
    if out and out[0] in ("train", "experiment") and "--total-timesteps" not in out and "--resume" not in out:
        out += ["--total-timesteps", str(STEPS)]
    return out


def _commands(code: str) -> List[List[str]]:
    cmds = []
    for line in code.splitlines():
        line = line.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        words = shlex.split(line)
        while words and re.match(r"^[A-Z_]+=", words[0]):  # VAR=value prefixes
            words = words[1:]
        if words and words[0] in ("pgfast", ".venv/bin/pgfast"):
            cmds.append(words[1:])
        elif words and words[0] not in ("make", "pip", "python", ".venv/bin/python", "git", "cd"):
            raise AssertionError(f"README bash line not understood by the test: {line!r}")
    return cmds


CASES = [b for b in blocks() if b[0] in ("python", "bash")]


def section_lines(title: str) -> Tuple[int, int]:
    """First and last line numbers (0-based) of the README section ``## title``."""
    lines = README.read_text().splitlines()
    start = lines.index(f"## {title}")
    end = next((k for k in range(start + 1, len(lines)) if lines[k].startswith("## ")), len(lines))
    return start, end - 1


def test_command_line_section_names_executables_of_the_quick_start():
    start, end = section_lines("Command line")
    shell = [line.split(" #")[0].strip() for lang, first, code, _ in CASES
             if lang == "bash" and start < first <= end for line in code.splitlines()]
    shell = [line for line in shell if line and not line.startswith("#")]
    assert len(shell) >= 5
    scripts = {ep.name for ep in importlib.metadata.distribution("pgfast-rl").entry_points
               if ep.group == "console_scripts"}
    assert "pgfast" in scripts
    bindir = Path(sys.executable).parent  # the quick start's .venv/bin when the tests run after it
    for line in shell:
        exe = shlex.split(line)[0]
        assert exe.startswith(".venv/bin/"), (
            f"README Command line: {line!r} starts with {exe!r}, which the quick start does not put on "
            f"PATH; write .venv/bin/{exe}")
        name = exe[len(".venv/bin/"):]
        assert name in scripts | {"python"}, f"README Command line: {exe} is not installed by pgfast-rl"
        assert (bindir / name).exists(), f"README Command line: {bindir / name} does not exist"


def test_readme_has_runnable_blocks():
    assert sum(1 for b in CASES if b[0] == "python" and not b[3]) >= 3
    assert any(_commands(b[2]) for b in CASES if b[0] == "bash")


@pytest.mark.parametrize("lang,line,code,skip", CASES, ids=[f"{b[0]}-line{b[1]}" for b in CASES])
def test_readme_block_runs(lang, line, code, skip, tmp_path):
    if skip:
        pytest.skip(skip)
    if lang == "python":
        p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(), capture_output=True,
                           text=True, timeout=600)
        assert p.returncode == 0, f"README line {line}:\n{p.stdout}\n{p.stderr}"
        return
    cmds = _commands(code)
    if not cmds:
        pytest.skip("no pgfast command in this block (make/pip lines run in CI's own steps)")
    for args in cmds:
        p = subprocess.run([sys.executable, "-m", "pgfast.cli", *_shrink(args)], cwd=tmp_path, env=_env(),
                           capture_output=True, text=True, timeout=900)
        assert p.returncode == 0, f"README line {line}: pgfast {' '.join(args)}\n{p.stdout}\n{p.stderr}"
