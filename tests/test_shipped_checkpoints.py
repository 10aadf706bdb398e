"""The teachers shipped in distillkit/checkpoints/ must fit the current tasks, and work."""

import pytest
import torch

from distillkit.artifacts import CHECKPOINTS, ArtifactError, shipped_teacher
from distillkit.envs import EnvFactory, make_env
from distillkit.evaluate import evaluate_policy, held_out_seeds
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
        episodes = evaluate_policy(lambda obs: actor(obs), EnvFactory("cartpole"), held_out_seeds(1), num_envs=32)
    assert episodes["return"].mean() > 200, episodes["return"].describe()


@pytest.mark.parametrize("task", sorted(TASKS))
def test_a_teacher_loads_from_its_own_manifest_without_an_env(task):
    """The one loader builds the actor on the schema the manifest records: it acts exactly as the
    actor checked against a live env does."""
    env = make_env(task, 3)
    checked, _, _ = load_actor(shipped_teacher(task), env)
    standalone, manifest, overrides = load_actor(shipped_teacher(task))
    assert overrides == [] and manifest["task"] == task
    obs = env.reset(seed=1)
    with torch.no_grad():
        assert torch.equal(checked(obs), standalone(obs))


def test_an_unshipped_task_is_refused_naming_what_is_shipped():
    with pytest.raises(ArtifactError, match=r"no shipped teacher for task 'ant' .*'cartpole_teacher'"):
        shipped_teacher("ant")
    with pytest.raises(ArtifactError, match=r"no shipped encoder_teacher for task 'ant'"):
        shipped_teacher("ant", "encoder_teacher")


@pytest.mark.parametrize("task", sorted(TASKS))
def test_the_shipped_encoder_teacher_labels_a_latent_for_the_latent_students(task):
    """Chapter 7's latent and estimator students learn from it: it must load as an encoder teacher
    on the current task and label its latent."""
    from distillkit.models import EncoderActor

    env = make_env(task, 2)
    actor, manifest, _ = load_actor(shipped_teacher(task, "encoder_teacher"), env)
    assert isinstance(actor, EncoderActor) and manifest["ppo"]["encoder_latent"] == actor.latent_size
    with torch.no_grad():
        assert actor.targets(env.reset(seed=1))["latent"].shape == (2, actor.latent_size)
