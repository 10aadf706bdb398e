"""DAgger: let the student drive, let the teacher relabel, aggregate, retrain.

Round i (Ross, Gordon and Bagnell 2011):

1. collect ``steps_per_round`` steps per world with the mixture policy: in every world and at
   every step the teacher's action with probability beta_i, else the student's;
2. the teacher labels every visited state (whoever acted);
3. update the student's normaliser with the new round, mask invalid steps and add the round to
   the dataset (dropping the oldest rounds beyond ``cap`` steps; ``aggregate=False`` keeps only
   the newest round);
4. take ``grad_steps`` steps of masked distillation on the dataset, at a learning rate that goes
   linearly from ``lr`` in the first round to ``lr_final`` in the last (constant when
   ``lr_final`` is None).

The result is the last round's student, or, given a :class:`~distillkit.train.Selection`, the
round's student that scored best on validation seeds (the paper's "return best pi_i on
validation"): a student's closed-loop score moves from round to round as much as a PPO
checkpoint's, and the held-out panel must not be the one that picks it.

Before the first round the student takes what it reuses from the teacher (``Student.adopt``: a
latent student, the teacher's action head); every round records the teacher's other labels too
(``Rollouts.targets``) for the students that learn from more than actions.

beta schedules: ``bc`` beta = 1 (behaviour cloning: the teacher always drives), ``linear``
1 - i/(R-1), ``exponential`` p^i, ``first`` 1 in the first round then 0 (the paper's beta_i =
1(i = 1)), ``student`` 0 from the start. rsl_rl's Distillation runner is ``student`` with
``aggregate=False``.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import pandas as pd
import torch

from distillkit.distill import LOSSES, ORDERS, TARGETS, LossFn, fit
from distillkit.envs.base import BatchedEnv
from distillkit.masks import MaskRules, make_mask
from distillkit.policy import Policy
from distillkit.rollouts import MixFn, collect, mix_actions
from distillkit.students import Student
from distillkit.train import Selection

SCHEDULES = ("bc", "linear", "exponential", "first", "student")


def beta(schedule: str, i: int, rounds: int, p: float = 0.5) -> float:
    """The probability that the teacher acts in round ``i`` (0-based) of ``rounds``."""
    if schedule == "bc":
        return 1.0
    if schedule == "linear":
        return 1.0 - i / (rounds - 1) if rounds > 1 else 1.0
    if schedule == "exponential":
        return p ** i
    if schedule == "first":
        return 1.0 if i == 0 else 0.0
    if schedule == "student":
        return 0.0
    raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")


@dataclass(frozen=True)
class DaggerConfig:
    rounds: int = 8
    steps_per_round: int = 200        # control steps per world and round
    schedule: str = "first"
    p: float = 0.5                    # base of the exponential schedule
    aggregate: bool = True
    cap: int | None = None            # most steps kept in the dataset (oldest rounds dropped)
    grad_steps: int = 500             # per round
    lr: float = 1e-3
    lr_final: float | None = None     # the last round's learning rate (None: ``lr`` in every round)
    batch_worlds: int = 32
    chunk: int = 16
    order: str = "random"             # how gradient steps pick their windows: "random" or "time" (rsl_rl's passes)
    loss: str = "mse"
    target: str = "executed"          # or "teacher": the raw label (see distillkit.distill)
    rules: MaskRules = field(default_factory=MaskRules)

    #: the allowed values of string fields (checked here, offered as choices by the CLI)
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"schedule": SCHEDULES, "loss": LOSSES, "target": TARGETS,
                                                     "order": ORDERS}

    def __post_init__(self) -> None:
        beta(self.schedule, 0, self.rounds, self.p)            # validates the schedule name
        # refuse a bad loss or target now, not after the first round's rollouts
        for name, value, allowed in (("loss", self.loss, LOSSES), ("target", self.target, TARGETS),
                                     ("order", self.order, ORDERS)):
            if value not in allowed:
                raise ValueError(f"DaggerConfig.{name} must be one of {allowed}, got {value!r}")
        if self.lr_final is not None and not 0.0 <= self.lr_final <= self.lr:
            raise ValueError(f"DaggerConfig.lr_final must be None or in [0, lr = {self.lr}] (the rate falls), "
                             f"got {self.lr_final}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def learning_rate(config: DaggerConfig, i: int) -> float:
    """Round ``i``'s learning rate: linear from ``config.lr`` to ``config.lr_final`` over the rounds."""
    if config.lr_final is None or config.rounds == 1:
        return config.lr
    return config.lr + (config.lr_final - config.lr) * i / (config.rounds - 1)


def validated_rounds(selection: Selection | None, rounds: int, round_steps: int) -> list[int]:
    """The rounds (0-based) after which ``selection`` scores the student, with ``round_steps`` env
    steps a round."""
    if selection is None:
        return []
    return [i for i in range(rounds) if selection.due(i * round_steps, (i + 1) * round_steps)]


def dagger(env: BatchedEnv, teacher: Policy, student: Student, config: DaggerConfig, *, seed: int = 0,
           evaluate: Callable[[Student], dict] | None = None, progress: bool = False,
           loss: LossFn | None = None, mix: MixFn = mix_actions, selection: Selection | None = None,
           validate: Callable[[Student], dict] | None = None) -> pd.DataFrame:
    """Run DAgger; returns one row per round (beta, dataset size, mask counts, loss, and whatever
    ``evaluate(student)`` reports). ``loss``: a function (pred, target, mask) -> scalar that
    replaces ``config.loss``, ``mix`` the mixture of teacher and student actions (a learner's own
    functions, run inside the real loop). The student is moved to
    ``env.device`` and trained there; the teacher must already be on it
    (:func:`distillkit.train.load_actor` puts it there).

    ``selection``: at the env steps it names, ``validate(student)`` scores the round's student
    (``{"success", "return"}`` on validation seeds); the student ends with the weights of the
    round that scored best (success, then return), marked ``selected`` in the table."""
    if (selection is None) != (validate is None):
        raise ValueError("dagger: selection and validate go together (got only one of them)")
    round_steps = config.steps_per_round * env.num_envs
    validated = validated_rounds(selection, config.rounds, round_steps)
    if selection is not None and not validated:
        raise ValueError(f"dagger: {selection} validates none of the {config.rounds} rounds of {round_steps} env steps "
                         f"({config.rounds * round_steps} in all)")
    generator = torch.Generator().manual_seed(seed)     # CPU: the same draws on every device
    torch.manual_seed(seed)
    student.to(env.device)
    student.adopt(teacher)
    optimizer = torch.optim.Adam(student.parameters(), lr=config.lr, foreach=True)   # one call for all parameters
    obs = env.reset(seed=seed)
    data = []
    rows = []
    best = None                                     # (score, round, weights) of the best validated student
    rounds = range(config.rounds)
    if progress:
        from tqdm.auto import tqdm
        rounds = tqdm(rounds, desc=f"DAgger ({config.schedule})")
    for i in rounds:
        b = beta(config.schedule, i, config.rounds, config.p)
        student.reset()
        student.eval()
        rollouts, obs = collect(env, teacher, config.steps_per_round, student=student, beta=b, obs=obs,
                                generator=generator, mix=mix)
        student.train()
        student.learn_statistics(rollouts)          # new data only
        mask, counts = make_mask(rollouts, config.rules)
        data = (data if config.aggregate else []) + [(rollouts, mask)]
        while config.cap is not None and len(data) > 1 and sum(r.steps for r, _ in data) > config.cap:
            data.pop(0)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, i)
        losses = fit(student, data, config.grad_steps, batch_worlds=config.batch_worlds, chunk=config.chunk,
                     loss=loss or config.loss, generator=generator, optimizer=optimizer, target=config.target,
                     order=config.order)
        student.eval()
        row = {"round": i, "beta": b, "dataset_steps": sum(r.steps for r, _ in data),
               "kept_this_round": counts["kept"], "loss": sum(losses[-20:]) / len(losses[-20:]),
               "return_during_collection": float(rollouts.reward.sum(0).mean())}
        if evaluate is not None:
            row.update(evaluate(student))
        if i in validated:
            score = validate(student)
            row.update({"validation_success": score["success"], "validation_return": score["return"]})
            key = (score["success"], score["return"])
            if best is None or key > best[0]:
                best = (key, i, copy.deepcopy(student.state_dict()))
        rows.append(row)
    table = pd.DataFrame(rows)
    if best is not None:
        student.load_state_dict(best[2])
        table["selected"] = table["round"] == best[1]
    return table
