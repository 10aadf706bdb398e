"""The rsl_rl adapter: schema groups as rsl_rl observation groups, never a silent fallback."""

import pytest
import torch

from distillkit.envs import make_env
from distillkit.schema import SchemaError

pytest.importorskip("rsl_rl", reason="rsl-rl-lib is a dev dependency")
from distillkit.envs.rsl_rl import RslRlVecEnv, checked_obs_groups  # noqa: E402


def test_groups_are_the_schema_groups_flattened_in_schema_order():
    env = make_env("walker_rough", 3)
    vec = RslRlVecEnv(env, seed=1)
    obs = vec.get_observations()
    for group in ("student", "teacher", "critic"):
        assert obs[group].shape == (3, env.schema.group_size(group))
    fresh = make_env("walker_rough", 3).reset(seed=1)
    assert torch.equal(obs["student"], env.schema.flatten(fresh, "student"))
    obs, rewards, dones, extras = vec.step(torch.zeros(3, 6))
    assert rewards.shape == (3,) and dones.shape == (3,) and extras["time_outs"].dtype == torch.bool
    assert vec.episode_length_buf.tolist() == [1, 1, 1]


@pytest.mark.parametrize("groups, algorithm, message", [
    ({"actor": ["teacher"]}, "PPO", "must name the groups of set 'critic' explicitly"),
    ({"teacher": ["teacher"]}, "Distillation", "set 'student' explicitly"),
    ({"student": ["teacher"], "teacher": ["teacher"]}, "Distillation", "may read only the 'student' group"),
    ({"student": ["student", "critic"], "teacher": ["teacher"]}, "Distillation", "may read only"),
    ({"actor": ["policy"], "critic": ["critic"]}, "PPO", "names \\['policy'\\]"),
])
def test_incomplete_or_leaky_obs_groups_are_refused(groups, algorithm, message):
    with pytest.raises(SchemaError, match=message):
        checked_obs_groups(groups, algorithm)


def test_explicit_groups_pass():
    groups = {"student": ["student"], "teacher": ["teacher"]}
    assert checked_obs_groups(groups, "Distillation") is groups
