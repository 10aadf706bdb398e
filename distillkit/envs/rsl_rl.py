"""Any distillkit env as an rsl_rl ``VecEnv``, with explicit observation groups.

rsl_rl picks its networks' inputs from observation *groups*; when a runner config does not name
them it silently falls back to a group of the same name or to ``policy``, which is how
a student ends up reading privileged state. Here the groups are the schema's (``student``,
``teacher``, ``critic``, each flattened in schema order), and :func:`checked_obs_groups` refuses a
config that leaves a set unnamed or gives a student a privileged group.
"""

from __future__ import annotations

import torch
from rsl_rl.env import VecEnv
from tensordict import TensorDict

from distillkit.envs.base import BatchedEnv
from distillkit.schema import GROUPS, SchemaError

#: The observation sets each rsl_rl algorithm reads, and whether the set acts on the robot.
REQUIRED_SETS = {"PPO": ("actor", "critic"), "Distillation": ("student", "teacher")}
DEPLOYED_SETS = ("student",)


def checked_obs_groups(obs_groups: dict[str, list[str]], algorithm: str) -> dict[str, list[str]]:
    """Return ``obs_groups`` if it names every set ``algorithm`` needs with schema groups only,
    and a deployed set (the student) holds no privileged group; raise otherwise."""
    if algorithm not in REQUIRED_SETS:
        raise ValueError(f"algorithm must be one of {sorted(REQUIRED_SETS)}, got {algorithm!r}")
    for name in REQUIRED_SETS[algorithm]:
        if not obs_groups.get(name):
            raise SchemaError(f"rsl_rl obs_groups must name the groups of set {name!r} explicitly "
                              f"(one of {GROUPS}); rsl_rl would otherwise fall back silently")
    for name, groups in obs_groups.items():
        unknown = [g for g in groups if g not in GROUPS]
        if unknown:
            raise SchemaError(f"rsl_rl obs_groups[{name!r}] names {unknown}; the env offers {GROUPS}")
        if name in DEPLOYED_SETS and groups != ["student"]:
            raise SchemaError(f"rsl_rl obs_groups[{name!r}] = {groups}: a deployed policy may read only "
                              f"the 'student' group")
    return obs_groups


class RslRlVecEnv(VecEnv):
    """Wraps a :class:`BatchedEnv`; observations are a TensorDict of the schema's groups."""

    def __init__(self, env: BatchedEnv, seed: int = 0):
        self.env = env
        self.num_envs = env.num_envs
        self.num_actions = env.action_dim
        self.max_episode_length = env.max_episode_steps
        self.device = env.device
        self.cfg = env.spec.to_dict()
        self._obs = self._groups(env.reset(seed=seed))

    @property
    def episode_length_buf(self) -> torch.Tensor:
        return torch.as_tensor(self.env.episode_step)

    @episode_length_buf.setter
    def episode_length_buf(self, value: torch.Tensor) -> None:
        self.env.episode_step[:] = value.cpu().numpy()

    def _groups(self, obs) -> TensorDict:
        schema = self.env.schema
        return TensorDict({g: schema.flatten(obs, g) for g in GROUPS}, batch_size=[self.num_envs],
                          device=self.device)

    def get_observations(self) -> TensorDict:
        return self._obs

    def step(self, actions: torch.Tensor):
        result = self.env.step(actions)
        self._obs = self._groups(result.obs)
        extras = {"time_outs": result.truncated,
                  "log": {f"/reward/{k}": v.mean() for k, v in result.reward_terms.items()}}
        return self._obs, result.reward, result.done.long(), extras
