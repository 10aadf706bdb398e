"""What acts in an env: a policy maps a named observation to actions.

Teachers, students, the unprivileged baseline and every wrapper (a corrupted or faulty teacher,
the student-only guard) share one calling convention, :class:`Policy`. A policy that remembers
the current episode (a history or recurrent student, or a wrapper around one) is also
:class:`Episodic`: whoever steps the env tells it which worlds started over, through
:func:`forget`.
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
