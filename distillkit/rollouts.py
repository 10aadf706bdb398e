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
the executed action, who executed it, reward, validity signals and an episode id per step, and
the named targets a student may learn from besides the action (``Rollouts.targets``): every
``teacher_only`` field's true value, and whatever else the teacher labels (an encoder teacher's
latent, ``"latent"``; :class:`distillkit.policy.Labeller`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from distillkit.envs.base import VALIDITY_SIGNALS, BatchedEnv
from distillkit.policy import Policy, forget, teacher_targets

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
    # named targets besides the action: each teacher_only field (the same tensors as in `obs`) and
    # the teacher's own labels, e.g. "latent"
    targets: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return self.reward.shape[0] * self.reward.shape[1]

    def flat(self) -> Rollouts:
        """The same data as (T * N, ...) rows, e.g. for minibatches."""
        f = lambda x: x.reshape(-1, *x.shape[2:])
        return Rollouts({k: f(v) for k, v in self.obs.items()}, f(self.teacher_actions), f(self.actions),
                        f(self.teacher_acted), f(self.reward), f(self.done), {k: f(v) for k, v in self.validity.items()},
                        f(self.episode), {k: f(v) for k, v in self.targets.items()})


@torch.no_grad()
def collect(env: BatchedEnv, teacher: Policy, steps: int, *, student: Policy | None = None, beta: float = 1.0,
            obs: dict[str, torch.Tensor] | None = None, generator: torch.Generator | None = None,
            mix: MixFn = mix_actions) -> tuple[Rollouts, dict[str, torch.Tensor]]:
    """Run ``steps`` steps in every world of ``env`` from ``obs`` (or a reset) with the beta
    mixture of teacher and student made by ``mix``; returns the rollouts (on ``env.device``) and
    the observation to continue from. A world's step counts as the teacher's (``teacher_acted``)
    where the executed action is the teacher's label. Besides its action, the teacher's other
    labels (:func:`distillkit.policy.teacher_targets`) are recorded in ``Rollouts.targets``, with
    the true value of every ``teacher_only`` field."""
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    if student is None and beta < 1.0:
        raise ValueError("beta < 1 needs a student policy to mix in")
    obs = env.reset() if obs is None else obs
    n, device = env.num_envs, env.device
    episode = torch.arange(n, device=device)
    next_id = n
    record: dict[str, list] = {k: [] for k in ("obs", "teacher", "targets", "actions", "teacher_acted", "reward",
                                               "done", "episode")}
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
        record["targets"].append(teacher_targets(teacher, obs))
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
    stacked = {k: torch.stack([o[k] for o in record["obs"]]) for k in record["obs"][0]}
    labelled = {k: torch.stack([t[k] for t in record["targets"]]) for k in record["targets"][0]}
    clash = sorted(set(labelled) & set(env.schema.names))
    if clash:
        raise ValueError(f"the teacher labels targets named like schema fields {clash}: rename them")
    rollouts = Rollouts(
        obs=stacked,
        teacher_actions=torch.stack(record["teacher"]), actions=torch.stack(record["actions"]),
        teacher_acted=torch.stack(record["teacher_acted"]),
        reward=torch.stack(record["reward"]), done=torch.stack(record["done"]),
        validity={k: torch.stack(record[k]) for k in VALIDITY_SIGNALS},
        episode=torch.stack(record["episode"]),
        targets={**{k: stacked[k] for k in env.schema.names_with_role("teacher_only")}, **labelled})
    return rollouts, obs
