"""Taking privileged information away from a policy at evaluation time.

A teacher trained with exact terrain and true velocity is only as good as those inputs. These
corruptions replace chosen fields of an observation before the policy sees them, so a chapter (or
a widget) can switch privileged fields off and watch the closed loop collapse:

- ``zeroed``: the field is set to the policy's normaliser mean, i.e. 0 after normalisation: the
  information is removed and nothing else (a raw 0 could itself be an extreme value);
- ``noise``: Gaussian noise of one normaliser standard deviation is added;
- ``stale``: the value freezes at what the world saw at the start of its episode;
- ``shuffled``: each world gets another world's value (right statistics, wrong world).
"""

from __future__ import annotations

import torch

from distillkit.models import GroupInput
from distillkit.policy import forget

MODES = ("zeroed", "noise", "stale", "shuffled")


class Corrupted:
    """Wraps a policy (a module whose ``input`` is a :class:`GroupInput`) so that ``fields`` are
    corrupted with ``mode`` before every call. Call :meth:`reset` with the done mask each step
    (``stale`` remembers each world's first value). Noise and shuffles are drawn on the CPU from
    ``seed``, the same on every device, and moved to the observation's device."""

    def __init__(self, policy, fields: list[str], mode: str, seed: int = 0):
        if mode not in MODES:
            raise ValueError(f"corruption mode must be one of {MODES}, got {mode!r}")
        group_input: GroupInput = policy.input
        unknown = [f for f in fields if f not in group_input.names]
        if unknown:
            raise ValueError(f"the policy does not read {unknown}; it reads {list(group_input.names)}")
        self.policy, self.fields, self.mode = policy, list(fields), mode
        self.generator = torch.Generator().manual_seed(seed)
        # per-field normaliser mean and std, in the field's own shape
        self.mean, self.std = {}, {}
        offset = 0
        schema = group_input.schema
        norm = group_input.normalizer
        for name in group_input.names:
            f = schema.field(name)
            size = f.size
            if name in self.fields:
                sl = slice(offset, offset + size)
                self.mean[name] = norm.mean[sl].float().reshape(f.obs_shape)
                self.std[name] = torch.sqrt(norm.var[sl].float() + norm.eps ** 2).reshape(f.obs_shape)
            offset += size
        self.first: dict[str, torch.Tensor] = {}
        self.fresh: torch.Tensor | None = None

    def corrupt(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = dict(obs)
        for name in self.fields:
            value = obs[name]
            if self.mode == "zeroed":
                out[name] = self.mean[name].expand_as(value).clone()
            elif self.mode == "noise":
                noise = torch.randn(value.shape, generator=self.generator).to(value.device)
                out[name] = value + noise * self.std[name]
            elif self.mode == "shuffled":
                out[name] = value[torch.randperm(value.shape[0], generator=self.generator).to(value.device)]
            else:   # stale
                first = self.first.get(name)
                if first is None or first.shape != value.shape:
                    first = value.clone()
                elif self.fresh is not None:
                    first[self.fresh] = value[self.fresh]
                self.first[name] = first
                out[name] = first.clone()
        self.fresh = None
        return out

    def __call__(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.policy(self.corrupt(obs))

    def reset(self, done: torch.Tensor | None = None) -> None:
        if done is None:
            self.first, self.fresh = {}, None
        else:
            self.fresh = done.clone() if self.fresh is None else self.fresh | done
        forget(self.policy, done)


class Faulty:
    """An imperfect teacher by design, for the masking lesson: in a fraction ``rate`` of episodes
    a fault strikes at a random step between ``onset[0]`` and ``onset[1]``, and from then until
    the episode ends the teacher commands the negation of what it would do - which drives the
    robot to the ground within a few steps. Those steps, and only those, are bad targets; they
    all lie just before a fall, where the fall mask rule looks.

    Whether and when each episode faults is drawn on the CPU from ``seed``. Call :meth:`reset`
    with the done mask after every step (the rollout collector and the evaluator do)."""

    def __init__(self, policy, rate: float, seed: int = 0, onset: tuple[int, int] = (50, 400)):
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate must be in [0, 1], got {rate}")
        if not 0 <= onset[0] <= onset[1]:
            raise ValueError(f"fault onset must be a range (first, last) of steps with 0 <= first <= last, got {onset}")
        self.policy, self.rate, self.onset = policy, rate, onset
        self.generator = torch.Generator().manual_seed(seed)
        self.step = self.strike = None          # per world: steps into the episode, fault step (-1: none)

    def _draw(self, n: int) -> torch.Tensor:
        faulty = torch.rand(n, generator=self.generator) < self.rate
        when = torch.randint(self.onset[0], self.onset[1] + 1, (n,), generator=self.generator)
        return torch.where(faulty, when, torch.full_like(when, -1))

    def __call__(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        action = self.policy(obs)
        n = action.shape[0]
        if self.step is None or self.step.shape[0] != n:
            self.step, self.strike = torch.zeros(n, dtype=torch.long), self._draw(n)
        failing = (self.strike >= 0) & (self.step >= self.strike)
        return torch.where(failing.to(action.device)[:, None], -action, action)

    def reset(self, done: torch.Tensor | None = None) -> None:
        if self.step is None:
            return
        if done is None:
            self.step = self.strike = None
            return
        done = done.cpu()
        self.step += 1
        self.step[done] = 0
        self.strike[done] = self._draw(int(done.sum()))
        forget(self.policy, done)
