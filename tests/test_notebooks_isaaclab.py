"""Chapters 1-5 once on Isaac Lab (cart-pole, CPU, FAST budgets), so the engine switch of every
chapter is proven, not promised. `make test` runs all chapters on the default MuJoCo engine with
nbval; this runs the same notebooks, under the same nbval command, with DISTILLKIT_ENGINE=isaaclab."""

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ["01_observation_schema", "02_teacher_ppo", "03_masked_distillation", "04_dagger",
            "05_evaluation_and_export"]
ON_ISAACLAB = {"DISTILLKIT_ENGINE": "isaaclab", "DISTILLKIT_TASK": "cartpole", "DISTILLKIT_FAST": "1"}


def run_nbval(notebook: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The nbval command of `make test`, on one notebook, with extra environment variables."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env",
               "--nbval-sanitize-with", str(ROOT / "tests" / "nbval_sanitize.cfg"), str(notebook)]
    return subprocess.run(command, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_runs_on_isaaclab(chapter):
    pytest.importorskip("isaaclab", reason="Isaac Lab 3.0 is installed by `make test` (extra 'isaaclab')")
    result = run_nbval(ROOT / "notebooks" / f"{chapter}.ipynb", ON_ISAACLAB)
    assert result.returncode == 0, f"{chapter} failed on Isaac Lab:\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}"


def test_the_harness_fails_a_notebook_that_ignores_the_engine_variable(tmp_path):
    """A chapter that does not honour DISTILLKIT_ENGINE (here: one that insists on MuJoCo) fails."""
    cell = nbformat.v4.new_code_cell('import os\nassert os.environ["DISTILLKIT_ENGINE"] == "mujoco", "engine ignored"')
    notebook = tmp_path / "ignores_engine.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), notebook)
    result = run_nbval(notebook, ON_ISAACLAB)
    assert result.returncode != 0 and "engine ignored" in result.stdout
