"""What acts in an env: a policy maps a named observation to actions.

Teachers, students, the unprivileged baseline and every wrapper (a corrupted or faulty teacher,
the student-only guard) share one calling convention, :class:`Policy`. A policy that remembers
the current episode (a history or recurrent student, or a wrapper around one) is also
:class:`Episodic`: whoever steps the env tells it which worlds started over, through
:func:`forget`. A teacher that labels more than its action (an encoder teacher: its latent) is
also a :class:`Labeller`; :func:`teacher_targets` reads those labels from any policy.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

Obs = dict[str, torch.Tensor]


class Policy(Protocol):
    def __call__(self, obs: Obs) -> torch.Tensor:
        """(N, action_dim) actions for N worlds' observations."""


@runtime_checkable
class Episodic(Protocol):
    """A policy with a memory of the running episode."""

    def __call__(self, obs: Obs) -> torch.Tensor: ...

    def reset(self, done: torch.Tensor | None = None) -> None:
        """Worlds ``done`` ((N,) bool; every world if None) start a new episode at the next call."""


def forget(policy: Policy, done: torch.Tensor | None = None) -> None:
    """Tell ``policy`` which worlds started a new episode (all of them if ``done`` is None); a
    policy without memory has nothing to forget."""
    if isinstance(policy, Episodic):
        policy.reset(done)


@runtime_checkable
class Labeller(Protocol):
    """A teacher with named training targets besides its action (e.g. ``"latent"``: an
    :class:`~distillkit.models.EncoderActor`'s z), which :func:`distillkit.rollouts.collect` records."""

    def __call__(self, obs: Obs) -> torch.Tensor: ...

    def targets(self, obs: Obs) -> dict[str, torch.Tensor]:
        """Named (N, ...) targets for N worlds' observations."""


def teacher_targets(teacher: Policy, obs: Obs) -> dict[str, torch.Tensor]:
    """The named targets ``teacher`` labels ``obs`` with besides its action (none for a plain
    policy, or a function wrapping a teacher)."""
    return teacher.targets(obs) if isinstance(teacher, Labeller) else {}
