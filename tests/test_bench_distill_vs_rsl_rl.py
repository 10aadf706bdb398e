"""bench/distill_vs_rsl_rl.py: the ablation of rsl_rl's setup (the student's exploration noise) and the
teacher behind rsl_rl's model interface."""

import sys
from pathlib import Path

import pytest
import torch
from tensordict import TensorDict

from distillkit.envs import make_env
from distillkit.models import Actor, EncoderActor

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from distill_vs_rsl_rl import TeacherForRslRl, noisy_student_mix  # noqa: E402


def test_the_noisy_mixture_shakes_the_students_actions_only():
    mix = noisy_student_mix(0.1)
    teacher, student = torch.ones(4000, 2), torch.zeros(4000, 2)
    acted = mix(teacher, student, 0.0, torch.Generator().manual_seed(0))        # the student acts everywhere
    assert abs(float(acted.std()) - 0.1) < 0.005 and abs(float(acted.mean())) < 0.005
    assert torch.equal(mix(teacher, student, 1.0, torch.Generator().manual_seed(0)), teacher)   # the teacher: as it is
    again = mix(teacher, student, 0.0, torch.Generator().manual_seed(0))
    assert torch.equal(acted, again), "the noise comes from the rollout's generator: a seed repeats it"


@pytest.mark.parametrize("encoder", [False, True])
def test_the_teacher_acts_on_rsl_rls_flat_group_as_on_the_observation_dict(encoder):
    # the flagship's teacher has a privileged encoder: reading the flat group through the plain MLP alone
    # (what the wrapper did before) fails on it
    env = make_env("walker_rough", 3)
    try:
        torch.manual_seed(0)
        schema = env.schema
        actor = (EncoderActor(schema, "teacher", env.action_dim, hidden=(32,), init_std=1.0, latent_size=4,
                              encoder_hidden=(16,)) if encoder else Actor(schema, "teacher", env.action_dim, hidden=(32,)))
        obs = env.reset(seed=0)
        actor.input.normalizer.update(actor.input.flat(obs))       # a normaliser that is not the identity
        flat = TensorDict({"teacher": schema.flatten(obs, "teacher")}, batch_size=[3])
        torch.testing.assert_close(TeacherForRslRl(actor)(flat), actor(obs))
    finally:
        env.close()
