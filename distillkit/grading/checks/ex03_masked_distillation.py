"""Exercise 03: the masked distillation loss, inside DAgger."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from distillkit.grading.checks.common import (
    ENVS,
    STUDENT_RETURN_THRESHOLD,
    Checks,
    assert_close,
    dagger_student,
    fresh,
    student_return,
)
from distillkit.grading.record import graded


@graded
def check_masked_loss(masked_loss: Callable) -> None:
    checks = Checks("masked_loss")
    g = torch.Generator().manual_seed(3)
    T, N, A = 6, 4, 3
    pred, target = torch.randn(T, N, A, generator=g), torch.randn(T, N, A, generator=g)
    mask = torch.rand(T, N, generator=g) < 0.6
    per_step = ((pred - target) ** 2).sum(-1)
    with checks.case("returns a scalar tensor", "return a 0-dim torch tensor (not .item()): it is back-propagated"):
        value = masked_loss(*fresh(pred, target), torch.ones(T, N, dtype=torch.bool))
        assert isinstance(value, torch.Tensor) and value.dim() == 0, f"got {value!r}"
    with checks.case("every step kept, one action dimension: the mean squared error",
                     "per step: squared error; then the mean over steps"):
        assert_close(masked_loss(*fresh(pred[..., :1], target[..., :1]), torch.ones(T, N, dtype=torch.bool)),
                     ((pred[..., 0] - target[..., 0]) ** 2).mean(), "loss")
    with checks.case("errors add up over action dimensions and average over steps",
                     "sum the squared error over the action dimensions, then average over steps "
                     "(a mean over every element would divide by A too)"):
        assert_close(masked_loss(*fresh(pred, target), torch.ones(T, N, dtype=torch.bool)), per_step.mean(), "loss")
    with checks.case("masked steps do not count, however wrong",
                     "multiply each step's error by the mask"):
        wild = target.clone()
        wild[~mask] += 1000.0
        assert_close(masked_loss(*fresh(pred, wild, mask)), per_step[mask].mean(), "loss", atol=1e-4)
    with checks.case("the average is over kept steps only",
                     "divide by the number of kept steps (mask.sum()), not by T * N"):
        assert_close(masked_loss(*fresh(pred, target, mask)), per_step[mask].mean(), "loss")
    with checks.case("no kept step gives 0, not NaN", "divide by the number of kept steps clamped to at least 1"):
        assert_close(masked_loss(*fresh(pred, target), torch.zeros(T, N, dtype=torch.bool)), torch.tensor(0.0), "loss")
    with checks.case("masked steps get no gradient, kept steps the right one",
                     "compute it with torch operations on pred (no .detach(), no numpy)"):
        p = pred.clone().requires_grad_(True)
        masked_loss(p, *fresh(target, mask)).backward()
        expected = 2 * (pred - target) * mask[..., None] / mask.sum()
        assert_close(p.grad, expected, "gradient", atol=1e-5)
    checks.report()


@graded
def check_masked_loss_closed_loop(masked_loss: Callable) -> None:
    from distillkit.leakage import StudentOnly

    checks = Checks("masked_loss_closed_loop")
    with checks.case(f"a DAgger student trained with your loss balances alone (return >= {STUDENT_RETURN_THRESHOLD:g})",
                     "the loss must fall as the student's action approaches the teacher's executed action"):
        student = dagger_student(masked_loss)
        schema = ENVS.schema
        score = student_return(StudentOnly(student, schema), observe=lambda obs: StudentOnly.deployable(obs, schema))
        assert math.isfinite(score) and score >= STUDENT_RETURN_THRESHOLD, \
            f"mean return {score:.1f} on a held-out seed (the package's loss gives ~269, doing nothing ~8)"
    checks.report()
