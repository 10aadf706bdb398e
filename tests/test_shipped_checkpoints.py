"""The teachers shipped in distillkit/checkpoints/ must fit the current tasks, and work."""

import pytest
import torch

from distillkit.artifacts import ArtifactError
from distillkit.envs import make_env
from distillkit.evaluate import evaluate_policy, held_out_seeds
from distillkit.results import CHECKPOINTS
from distillkit.tasks import TASKS
from distillkit.train import load_actor

REGENERATE = "regenerate it with `python -m distillkit results --section teachers`"


@pytest.mark.parametrize("task", sorted(TASKS))
def test_shipped_teacher_matches_the_current_task_and_schema(task):
    folder = CHECKPOINTS / f"{task}_teacher"
    assert (folder / "manifest.json").exists(), f"no shipped teacher for {task}: {REGENERATE}"
    try:
        load_actor(folder, make_env(task, 2))
    except ArtifactError as err:
        pytest.fail(f"the shipped {task} teacher no longer fits the task: {err}\n{REGENERATE}")


def test_shipped_quick_task_teacher_balances_on_held_out_seeds():
    env = make_env("cartpole", 1)
    actor, _, _ = load_actor(CHECKPOINTS / "cartpole_teacher", env)
    with torch.no_grad():
        episodes = evaluate_policy(lambda obs: actor(obs), "cartpole", held_out_seeds(1), num_envs=32)
    assert episodes["return"].mean() > 200, episodes["return"].describe()
