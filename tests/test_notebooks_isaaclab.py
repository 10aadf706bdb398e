"""Chapters 1-5 once on Isaac Lab (cart-pole, CPU, FAST budgets), so the engine switch of every
chapter is proven, not promised. `make test` runs all chapters on the default MuJoCo engine with
nbval; this runs the same notebooks, under the same nbval command, with DISTILLKIT_ENGINE=isaaclab."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ["01_observation_schema", "02_teacher_ppo", "03_masked_distillation", "04_dagger",
            "05_evaluation_and_export"]


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_runs_on_isaaclab(chapter):
    pytest.importorskip("isaaclab", reason="Isaac Lab 3.0 is installed by `make test` (extra 'isaaclab')")
    env = {**os.environ, "DISTILLKIT_ENGINE": "isaaclab", "DISTILLKIT_TASK": "cartpole", "DISTILLKIT_FAST": "1"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env",
               "--nbval-sanitize-with", str(ROOT / "tests" / "nbval_sanitize.cfg"),
               str(ROOT / "notebooks" / f"{chapter}.ipynb")]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{chapter} failed on Isaac Lab:\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}"
