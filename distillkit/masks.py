"""Which teacher steps are worth imitating: declarative invalid-step rules.

A teacher's label is a poor target where the teacher itself was failing or where its action
was not what the robot did. Each rule excludes such steps from the imitation loss:

- ``fall_horizon = k``: a fall and the k steps before it in the same episode, **where the teacher
  was driving** (it was already losing balance; imitating it there teaches falling). Where the
  student drove into the fall, the teacher's relabels of those states are kept: they are the
  recovery actions DAgger exists to collect. The default, 25 control steps (0.4-0.5 s), is
  meant to cover the whole stretch in which a failing teacher loses its balance; the masking
  section of ``docs/results.md`` measures it against 10 steps and against no mask;
- ``timeouts``: the last step of an episode cut by its time limit;
- ``saturated``: steps where the teacher's label leaves [-1, 1]. The loss already targets the
  clipped label, so this rule is off by default; switch it on to study teachers whose
  saturation hides their intent (a bang-bang cart-pole teacher saturates often);
- ``reset_transient``: the first steps after a reset, while the robot settles.

The rules are a plain value saved with every distillation run, and :func:`make_mask` reports
how many steps each rule excluded.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from distillkit.rollouts import Rollouts


@dataclass(frozen=True)
class MaskRules:
    fall_horizon: int | None = 25      # None: keep falls
    timeouts: bool = True
    saturated: bool = False
    reset_transient: bool = True

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def none(cls) -> MaskRules:
        """Keep every step (unmasked distillation)."""
        return cls(fall_horizon=None, timeouts=False, saturated=False, reset_transient=False)


def steps_before_falls(rollouts: Rollouts, horizon: int) -> torch.Tensor:
    """(T, N) bool: steps within ``horizon`` steps before a fall, the fall included, same episode
    (whoever drove; :func:`make_mask` keeps those the student drove)."""
    fell, episode = rollouts.validity["fell"], rollouts.episode
    T = fell.shape[0]
    doomed = torch.zeros_like(fell)
    countdown = torch.zeros(fell.shape[1], dtype=torch.long, device=fell.device)
    for t in reversed(range(T)):
        countdown = torch.where(fell[t], torch.full_like(countdown, horizon + 1), countdown)
        doomed[t] = countdown > 0
        countdown = (countdown - 1).clamp_min(0)
        if t > 0:        # never carry a fall back into the previous episode
            countdown[episode[t - 1] != episode[t]] = 0
    return doomed


def make_mask(rollouts: Rollouts, rules: MaskRules) -> tuple[torch.Tensor, dict[str, int]]:
    """(T, N) bool mask of steps to imitate, and how many steps each rule excluded (a step can
    be excluded by several rules; ``kept`` counts the survivors)."""
    excluded = {}
    if rules.fall_horizon is not None:
        excluded["fall_horizon"] = steps_before_falls(rollouts, rules.fall_horizon) & rollouts.teacher_acted
    if rules.timeouts:
        excluded["timeouts"] = rollouts.validity["timeout"]
    if rules.saturated:
        excluded["saturated"] = rollouts.teacher_actions.abs().amax(-1) > 1.0
    if rules.reset_transient:
        excluded["reset_transient"] = rollouts.validity["reset_transient"]
    mask = torch.ones_like(rollouts.done)
    for rule in excluded.values():
        mask &= ~rule
    counts = {name: int(rule.sum()) for name, rule in excluded.items()}
    counts["kept"] = int(mask.sum())
    counts["total"] = mask.numel()
    return mask, counts
