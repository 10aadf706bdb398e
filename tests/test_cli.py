"""The command line, as a user runs it."""

import subprocess
import sys

from distillkit.schema import ObservationSchema
from distillkit.tasks import TASKS


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "distillkit", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def test_demo_builds_both_tasks_and_prints_the_teacher_student_diff():
    result = run("demo", "--skip-pipeline", "--steps", "20", "--num-envs", "4")
    assert result.returncode == 0, result.stderr
    for task in TASKS:
        assert f"=== {task} v" in result.stdout
    assert "What the teacher sees and the student does not" in result.stdout
    assert "height_scan" in result.stdout and "joint_vel_rel" in result.stdout
    assert "env-steps/s" in result.stdout


def test_schema_command_writes_a_loadable_manifest(tmp_path):
    result = run("schema", "walker_rough", "--out", str(tmp_path / "schema.json"))
    assert result.returncode == 0, result.stderr
    assert ObservationSchema.load(tmp_path / "schema.json") == TASKS["walker_rough"].make_schema()


def test_bad_arguments_are_reported():
    result = run("train-teacher", "--task", "hopper", "--steps", "10", "--out", "x")
    assert result.returncode != 0 and "invalid choice: 'hopper'" in result.stderr


def test_a_missing_artifact_is_a_clear_error_not_a_traceback(tmp_path):
    result = run("evaluate", "--task", "cartpole", "--teacher", str(tmp_path / "nope"), "--student",
                 str(tmp_path / "nope"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "no manifest.json - not a distillkit artifact" in result.stderr and "Traceback" not in result.stderr
