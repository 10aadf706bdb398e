"""Collecting labelled rollouts: who acts, and what the teacher would have done.

One function serves behaviour cloning and DAgger alike. In every world and at every step the
executed action is the teacher's with probability beta and the student's otherwise (per-world,
per-step mixing); whoever acts, the teacher labels the visited state with its own action:

- beta = 1: the teacher drives, the student only watches (behaviour cloning data);
- beta = 0: the student drives and the teacher relabels what it visits (rsl_rl's distillation);
- in between: DAgger's mixture policy.

The mixing is a plain function, :func:`mix_actions`, that :func:`collect` takes as a parameter:
a learner's own runs inside the real loop.

Everything a later step might need is kept: every schema field by name, the teacher's label,
the executed action, who executed it, reward, validity signals and an episode id per step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from distillkit.envs.base import VALIDITY_SIGNALS, BatchedEnv
from distillkit.policy import Policy, forget

#: (teacher_action, student_action, beta, generator) -> executed action, like :func:`mix_actions`
MixFn = Callable[[torch.Tensor, torch.Tensor, float, torch.Generator | None], torch.Tensor]


def mix_actions(teacher_action: torch.Tensor, student_action: torch.Tensor, beta: float,
                generator: torch.Generator | None) -> torch.Tensor:
    """DAgger's mixture: in every world, one coin from ``generator`` (on the CPU, so a seed picks the
    same mixture on every device) decides who acts - the teacher with probability ``beta``."""
    use_teacher = (torch.rand(teacher_action.shape[0], generator=generator) < beta).to(teacher_action.device)
    return torch.where(use_teacher[:, None], teacher_action, student_action)


@dataclass
class Rollouts:
    """T steps of N worlds; every tensor is (T, N, ...)."""

    obs: dict[str, torch.Tensor]      # what each world observed before acting, all schema fields
    teacher_actions: torch.Tensor     # the teacher's label for that observation
    actions: torch.Tensor             # what was executed
    teacher_acted: torch.Tensor       # (T, N) bool: the executed action was the teacher's
    reward: torch.Tensor
    done: torch.Tensor
    validity: dict[str, torch.Tensor]
    episode: torch.Tensor             # an id per (world, episode), unique within the rollout

    @property
    def steps(self) -> int:
        return self.reward.shape[0] * self.reward.shape[1]

    def flat(self) -> Rollouts:
        """The same data as (T * N, ...) rows, e.g. for minibatches."""
        f = lambda x: x.reshape(-1, *x.shape[2:])
        return Rollouts({k: f(v) for k, v in self.obs.items()}, f(self.teacher_actions), f(self.actions),
                        f(self.teacher_acted), f(self.reward), f(self.done), {k: f(v) for k, v in self.validity.items()},
                        f(self.episode))


@torch.no_grad()
def collect(env: BatchedEnv, teacher: Policy, steps: int, *, student: Policy | None = None, beta: float = 1.0,
            obs: dict[str, torch.Tensor] | None = None, generator: torch.Generator | None = None,
            mix: MixFn = mix_actions) -> tuple[Rollouts, dict[str, torch.Tensor]]:
    """Run ``steps`` steps in every world of ``env`` from ``obs`` (or a reset) with the beta
    mixture of teacher and student made by ``mix``; returns the rollouts (on ``env.device``) and
    the observation to continue from. A world's step counts as the teacher's (``teacher_acted``)
    where the executed action is the teacher's label."""
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    if student is None and beta < 1.0:
        raise ValueError("beta < 1 needs a student policy to mix in")
    obs = env.reset() if obs is None else obs
    n, device = env.num_envs, env.device
    episode = torch.arange(n, device=device)
    next_id = n
    record: dict[str, list] = {k: [] for k in ("obs", "teacher", "actions", "teacher_acted", "reward", "done",
                                               "episode")}
    record.update({k: [] for k in VALIDITY_SIGNALS})
    for _ in range(steps):
        label = teacher(obs)
        action = label
        use_teacher = torch.ones(n, dtype=torch.bool, device=device)
        if beta < 1.0:
            action = mix(label, student(obs), beta, generator)
            use_teacher = (action == label).all(-1)
        result = env.step(action)
        record["obs"].append(obs)
        record["teacher"].append(label)
        record["actions"].append(action)
        record["teacher_acted"].append(use_teacher)
        record["reward"].append(result.reward)
        record["done"].append(result.done)
        record["episode"].append(episode.clone())
        for k in VALIDITY_SIGNALS:
            record[k].append(result.validity[k])
        if student is not None:
            forget(student, result.done)
        forget(teacher, result.done)            # a teacher may keep per-episode state (distillkit.corruption.Faulty)
        ended = torch.nonzero(result.done).flatten()
        episode[ended] = torch.arange(next_id, next_id + len(ended), device=device)
        next_id += len(ended)
        obs = result.obs
    rollouts = Rollouts(
        obs={k: torch.stack([o[k] for o in record["obs"]]) for k in record["obs"][0]},
        teacher_actions=torch.stack(record["teacher"]), actions=torch.stack(record["actions"]),
        teacher_acted=torch.stack(record["teacher_acted"]),
        reward=torch.stack(record["reward"]), done=torch.stack(record["done"]),
        validity={k: torch.stack(record[k]) for k in VALIDITY_SIGNALS},
        episode=torch.stack(record["episode"]))
    return rollouts, obs
