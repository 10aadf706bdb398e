"""Inference probes: what a student's memory says about the privileged state it never observes.

A student that acts well where the physics are hidden (cart-pole's pole mass) has to infer them
from its history, and whatever it infers is in its memory. A linear probe (Alain and Bengio 2016)
reads it out: a ridge regression from the student's representation at each step to the true
value of a privileged field, fitted on the states of some rollouts and scored on held-out ones
by R^2 (1: the field is a linear function of the representation; 0: no better than the field's
mean; below 0: worse).

The representation is a student's memory after the step (a GRU state, from which a latent or
estimator student reads its latent or estimate linearly; a stacked history's past observations),
and a memoryless student's normalised input: such a student holds nothing but what it sees now,
so on a field that only history reveals it scores about 0 however it was trained.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from distillkit.distill import episode_starts
from distillkit.rollouts import Rollouts
from distillkit.students import Student


@torch.no_grad()
def representation(student: Student, rollouts: Rollouts) -> torch.Tensor:
    """(T, N, F): what ``student`` holds at each recorded step, its memory after the step (run
    with its one-step function along each world's episodes), or, without memory, its input."""
    T, N = rollouts.done.shape
    if student.memory_size == 0:
        return student.input({k: v.reshape(T * N, *v.shape[2:]) for k, v in rollouts.obs.items()}).reshape(T, N, -1)
    starts = episode_starts(rollouts)
    memory = torch.zeros(N, student.memory_size, device=rollouts.done.device)
    after = []
    for t in range(T):
        memory = memory * (~starts[t]).to(memory.dtype)[:, None]
        _, memory = student.step({k: v[t] for k, v in rollouts.obs.items()}, memory)
        after.append(memory)
    return torch.stack(after)


def fit_ridge(x: torch.Tensor, y: torch.Tensor, alpha: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """Ridge regression of ``y`` (n, k) on ``x`` (n, F) in float64, on standardised features (so
    ``alpha`` weighs every feature alike); returns the fitted predictor."""
    x, y = x.double(), y.double()
    mean, std = x.mean(0), x.std(0).clamp_min(1e-8)
    z = (x - mean) / std
    y_mean = y.mean(0)
    weights = torch.linalg.solve(z.T @ z + alpha * torch.eye(z.shape[1], dtype=z.dtype, device=z.device),
                                 z.T @ (y - y_mean))
    return lambda new: ((new.double() - mean) / std) @ weights + y_mean


def r_squared(prediction: torch.Tensor, truth: torch.Tensor) -> float:
    """1 - SS_residual / SS_total over all components (a constant truth gives NaN)."""
    truth = truth.double()
    return float(1.0 - ((truth - prediction) ** 2).sum() / ((truth - truth.mean(0)) ** 2).sum())


def probe(student: Student, train: Rollouts, test: Rollouts, fields: Sequence[str] | None = None,
          alpha: float = 1.0) -> dict[str, float]:
    """Held-out R^2 per field of a linear probe from ``student``'s representation: fitted on the
    states of ``train``, scored on those of ``test`` (other episodes: another seed). ``fields``:
    names in ``Rollouts.targets`` (default: every ``teacher_only`` field; ``"latent"`` probes
    for an encoder teacher's latent)."""
    fields = list(student.input.schema.names_with_role("teacher_only") if fields is None else fields)
    unknown = [n for n in fields if n not in train.targets or n not in test.targets]
    if unknown:
        raise ValueError(f"the rollouts record no targets {unknown}; they record {sorted(train.targets)}")
    flat = lambda x: x.reshape(x.shape[0] * x.shape[1], -1)
    seen, held_out = flat(representation(student, train)), flat(representation(student, test))
    scores = {}
    for name in fields:
        predict = fit_ridge(seen, flat(train.targets[name]), alpha)
        scores[name] = r_squared(predict(held_out), flat(test.targets[name]))
    return scores
