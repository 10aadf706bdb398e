"""The command line, as a user runs it."""

import argparse
import json
import subprocess
import sys

import pytest

from distillkit.cli import add_config_options, check_tasks, config_from_args, engine_tasks, process_devices
from distillkit.dagger import DaggerConfig
from distillkit.masks import MaskRules
from distillkit.ppo import PPOConfig
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
    assert result.returncode == 2
    assert "unknown task 'hopper'; engine 'mujoco' runs ['cartpole', 'walker_rough']" in result.stderr


def test_a_task_of_another_engine_is_refused_naming_the_engines_that_run_it():
    result = run("train-teacher", "--task", "anymal_rough", "--steps", "10", "--out", "x")
    assert result.returncode == 2
    assert "task 'anymal_rough' exists on engines ['isaaclab'], not on 'mujoco'" in result.stderr
    result = run("export", "--engine", "isaaclab", "--task", "walker_rough", "--student", "x", "--out", "y")
    assert "task 'walker_rough' exists on engines ['mujoco', 'mujoco_warp'], not on 'isaaclab'" in result.stderr


def test_the_task_choices_follow_the_engine(capsys):
    # the check main() runs after parsing, called alone: running these commands would start the engines
    parser = argparse.ArgumentParser(prog="distillkit")
    assert "anymal_rough" in engine_tasks("isaaclab") and "anymal_rough" not in engine_tasks("mujoco")
    check_tasks(parser, "isaaclab", ["anymal_rough", "cartpole"])
    check_tasks(parser, "mujoco_warp", ["walker_rough"])
    with pytest.raises(SystemExit):
        check_tasks(parser, "mujoco_warp", ["cartpole", "anymal_rough"])
    assert "task 'anymal_rough' exists on engines ['isaaclab'], not on 'mujoco_warp'" in capsys.readouterr().err


def test_a_missing_artifact_is_a_clear_error_not_a_traceback(tmp_path):
    result = run("evaluate", "--task", "cartpole", "--teacher", str(tmp_path / "nope"), "--student",
                 str(tmp_path / "nope"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "no manifest.json - not a distillkit artifact" in result.stderr and "Traceback" not in result.stderr


def test_a_student_that_cannot_learn_from_the_teacher_is_a_clear_error_not_a_traceback(tmp_path):
    """A latent student needs an encoder teacher; the shipped cart-pole teacher is a plain actor."""
    result = run("dagger", "--task", "cartpole", "--teacher", "distillkit/checkpoints/cartpole_teacher",
                 "--architecture", "latent", "--rounds", "1", "--out", str(tmp_path / "student"))
    assert result.returncode == 2, result.stderr
    assert "learns the latent of a teacher with a privileged encoder" in result.stderr
    assert "Traceback" not in result.stderr


def test_dagger_keeps_the_round_chosen_on_validation_seeds_when_asked(tmp_path):
    out = tmp_path / "student"
    result = run("dagger", "--task", "cartpole", "--teacher", "distillkit/checkpoints/cartpole_teacher",
                 "--rounds", "2", "--steps-per-round", "10", "--grad-steps", "2", "--num-envs", "4",
                 "--select-every", "40", "--out", str(out))
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["selection"] == {"every": 40, "start": 0, "seeds": 4, "worlds": 16}
    assert manifest["selected_round"] in (0, 1) and "validation_return" in result.stdout
    for bad, message in ((("--select-every", "0"), "Selection.every must be >= 1, got 0"),
                         (("--select-every", "40", "--select-start", "1000"), "scores none of the 2 rounds"),
                         (("--select-start", "1000"), "--select-start 1000 needs --select-every")):
        result = run("dagger", "--task", "cartpole", "--teacher", "distillkit/checkpoints/cartpole_teacher",
                     "--rounds", "2", "--steps-per-round", "10", "--num-envs", "4", *bad, "--out", str(tmp_path / "bad"))
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_train_teacher_refuses_a_selection_start_without_its_interval(tmp_path):
    result = run("train-teacher", "--task", "cartpole", "--steps", "1000", "--select-start", "500",
                 "--out", str(tmp_path / "teacher"))
    assert result.returncode == 2 and "--select-start 500 needs --select-every" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "teacher").exists()


def test_config_options_come_from_the_config_dataclasses():
    """Every field of DaggerConfig, MaskRules and PPOConfig is an option with the class's own
    default: parsing nothing gives the class's defaults, and each kind of field parses."""
    parser = argparse.ArgumentParser()
    add_config_options(parser, DaggerConfig, skip=("rules",))
    add_config_options(parser, MaskRules)
    add_config_options(parser, PPOConfig, skip=("actor_group", "critic_group"))
    defaults = parser.parse_args([])
    assert config_from_args(DaggerConfig, defaults, rules=config_from_args(MaskRules, defaults)) == DaggerConfig()
    assert config_from_args(PPOConfig, defaults) == PPOConfig()

    args = parser.parse_args(["--rounds", "3", "--no-aggregate", "--cap", "none", "--loss", "huber",
                              "--fall-horizon", "none", "--saturated", "--actor-hidden", "64", "32", "--lr", "3e-4",
                              "--lr-final", "1e-4"])
    config = config_from_args(DaggerConfig, args, rules=config_from_args(MaskRules, args))
    assert config == DaggerConfig(rounds=3, aggregate=False, cap=None, loss="huber", lr=3e-4, lr_final=1e-4,
                                  rules=MaskRules(fall_horizon=None, saturated=True))
    assert config_from_args(PPOConfig, args).actor_hidden == (64, 32)
    with pytest.raises(SystemExit):
        parser.parse_args(["--loss", "l1"])          # not one of DaggerConfig.CHOICES["loss"]


def test_under_torchrun_a_bare_cuda_means_each_process_its_own_gpu():
    assert process_devices("cuda", "cuda", 3) == ("cuda:3", "cuda:3")
    assert process_devices("cpu", "cuda", 1) == ("cpu", "cuda:1")      # simulate on the CPU, train on GPU 1
    assert process_devices("cuda:0", None, 2) == ("cuda:0", None)       # an explicit index is kept
    assert process_devices("cpu", None, 0) == ("cpu", None)
