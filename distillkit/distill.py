"""Masked action distillation: how a student learns from the teacher's labels.

The loss is the teacher-action matching error on the steps the mask keeps:

    L = sum_t m_t * l(pi_student(o_t^student), clip(a_t^teacher)) / sum_t m_t,
    l = squared error (``mse``) or Huber (``huber``), summed over action dimensions.

By default the target is the teacher's action as the env executes it (``target="executed"``,
clipped to [-1, 1]): beyond the limit the robot cannot tell a teacher's 3 from its 1, so neither
should the student's loss. ``target="teacher"`` regresses on the raw label instead, as rsl_rl does.
The raw label keeps a saturating teacher's margin: a student that under-fits it still saturates,
where one fitted to the clipped label lands inside the limit. With few gradient steps per env step
that difference is large (``bench/distill_vs_rsl_rl.py`` measures it).

The students themselves, and the protocol through which :func:`fit` trains any of them, are in
:mod:`distillkit.students`.

``loss`` may also be a function ``(pred, target, mask) -> scalar``: a learner's own loss then
trains inside this very loop (the exercises grade it that way).

Beyond action matching, a student may learn from more named targets (its ``learns_from``: the
teacher's latent, true privileged values), which :func:`distillkit.rollouts.collect` records in
``Rollouts.targets``. :func:`fit` hands the student every target it names, sliced to the window,
with the action target and ``loss``; the student's ``training_loss`` adds one ``loss`` term per
target (action matching alone by default).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from distillkit.envs.base import executed
from distillkit.rollouts import Rollouts
from distillkit.students import LossFn, Student

LOSSES = ("mse", "huber")
TARGETS = ("executed", "teacher")
ORDERS = ("random", "time")


def episode_starts(rollouts: Rollouts) -> torch.Tensor:
    """(T, N) bool: the step begins an episode (or the rollout)."""
    starts = torch.ones_like(rollouts.done)
    starts[1:] = rollouts.episode[1:] != rollouts.episode[:-1]
    return starts


def distillation_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """Mean per-step action error over the steps where ``mask`` is True."""
    if kind not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {kind!r}")
    per_dim = F.mse_loss(pred, target, reduction="none") if kind == "mse" else \
        F.huber_loss(pred, target, reduction="none", delta=1.0)
    per_step = per_dim.sum(-1)
    m = mask.to(per_step.dtype)
    return (per_step * m).sum() / m.sum().clamp_min(1.0)


def windows(lengths: list[int], grad_steps: int, chunk: int, order: str = "random",
            generator: torch.Generator | None = None) -> Iterator[tuple[int, int, int]]:
    """The (rollout, first step, length) of each gradient step's window over rollouts of ``lengths``
    steps, one at a time (so that the draws interleave with the caller's). ``random``: a rollout
    and a start drawn from ``generator``. ``time``: rsl_rl's passes, the consecutive windows of
    every rollout in time order, over and over (one pass over a 120-step rollout in windows of 15
    is 8 gradient steps)."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    passes = [(i, t0, min(chunk, T)) for i, T in enumerate(lengths) for t0 in range(0, T - min(chunk, T) + 1, min(chunk, T))]
    for k in range(grad_steps):
        if order == "time":
            yield passes[k % len(passes)]
        else:
            i = int(torch.randint(len(lengths), (1,), generator=generator))
            length = min(chunk, lengths[i])
            yield i, int(torch.randint(lengths[i] - length + 1, (1,), generator=generator)), length


def fit(student: Student, data: list[tuple[Rollouts, torch.Tensor]], grad_steps: int, *, lr: float = 1e-3,
        batch_worlds: int = 32, chunk: int = 16, loss: str | LossFn = "mse", generator: torch.Generator | None = None,
        optimizer: torch.optim.Optimizer | None = None, target: str = "executed", order: str = "random") -> list[float]:
    """Train ``student`` on (rollouts, mask) pairs for ``grad_steps`` Adam steps of masked
    distillation; each step takes ``chunk`` consecutive steps of ``batch_worlds`` worlds from one
    rollout, the windows picked in ``order`` (:func:`windows`). ``loss``: a name from
    :data:`LOSSES` or a :data:`LossFn`. The student's normaliser is
    left as it is: update it with new data before (:func:`distillkit.dagger.dagger` does, once
    per round). Student and data share one device; the minibatches are drawn from ``generator``
    on the CPU, the same on every device."""
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES} or a function (pred, target, mask) -> scalar, got {loss!r}")
        loss = functools.partial(distillation_loss, kind=loss)
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    for rollouts, _ in data:
        missing = [name for name in student.learns_from if name not in rollouts.targets]
        if missing:
            raise ValueError(f"a {type(student).__name__} learns from targets {missing}, which these rollouts lack "
                             f"(they hold {sorted(rollouts.targets)}); an encoder teacher labels 'latent'")
    optimizer = optimizer or torch.optim.Adam(student.parameters(), lr=lr, foreach=True)
    starts = [episode_starts(r) for r, _ in data]
    prepared = [student.prepare(r.obs, s) for (r, _), s in zip(data, starts)]
    losses = []
    for i, t0, length in windows([mask.shape[0] for _, mask in data], grad_steps, chunk, order, generator):
        rollouts, mask = data[i]
        worlds = torch.randperm(mask.shape[1], generator=generator)[:batch_worlds].to(mask.device)
        window = slice(t0, t0 + length)
        label = rollouts.teacher_actions[window][:, worlds]
        targets = {"action": executed(label) if target == "executed" else label,
                   **{name: rollouts.targets[name][window][:, worlds] for name in student.learns_from}}
        value = student.training_loss(rollouts.obs, starts[i], window, worlds, prepared[i], targets,
                                      mask[window][:, worlds], loss)
        optimizer.zero_grad()
        value.backward()
        nn.utils.clip_grad_norm_(student.parameters(), 1.0, foreach=True)
        optimizer.step()
        losses.append(value.item())
    return losses
