"""Masked action distillation: students that read only deployable fields, and how they learn.

The loss is the teacher-action matching error on the steps the mask keeps:

    L = sum_t m_t * l(pi_student(o_t^student), clip(a_t^teacher)) / sum_t m_t,
    l = squared error (``mse``) or Huber (``huber``), summed over action dimensions.

By default the target is the teacher's action as the env executes it (``target="executed"``,
clipped to [-1, 1]): beyond the limit the robot cannot tell a teacher's 3 from its 1, so neither
should the student's loss. ``target="teacher"`` regresses on the raw label instead, as rsl_rl does.
The raw label keeps a saturating teacher's margin: a student that under-fits it still saturates,
where one fitted to the clipped label lands inside the limit. With few gradient steps per env step
that difference is large (``bench/distill_vs_rsl_rl.py`` measures it).

Students (all deterministic, all reading the ``student`` group only):

- :class:`Student` with ``history=1``: an MLP on the current student fields;
- :class:`Student` with ``history=H``: an MLP on the last H student observations stacked
  (repeating an episode's first observation until H exist);
- :class:`GRUStudent`: a recurrent student trained with truncated back-propagation through time:
  the hidden state is carried along each world's sequence (reset at episode starts) and gradients
  flow back ``chunk`` steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from distillkit.envs.base import executed
from distillkit.models import GroupInput, mlp
from distillkit.rollouts import Rollouts
from distillkit.schema import ObservationSchema

LOSSES = ("mse", "huber")
TARGETS = ("executed", "teacher")


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


class Student(nn.Module):
    """MLP student on the ``student`` group, optionally on a stack of the last ``history`` steps."""

    recurrent = False

    def __init__(self, schema: ObservationSchema, action_dim: int, hidden: Sequence[int] = (256, 128, 64),
                 history: int = 1):
        super().__init__()
        self.input = GroupInput(schema, "student")
        self.history = history
        self.mlp = mlp(self.input.size * history, hidden, action_dim)
        self._buffer: torch.Tensor | None = None     # closed loop: the last `history` raw inputs
        self._fresh: torch.Tensor | None = None      # worlds whose history restarts next step

    def stack(self, raw: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
        """(T, N, D) raw inputs -> (T, N, history * D), oldest first; looking back never crosses
        an episode start (the episode's first observation is repeated instead)."""
        T, N, D = raw.shape
        t = torch.arange(T, device=raw.device)[:, None].expand(T, N)
        start = torch.where(starts, t, torch.zeros_like(t)).cummax(0).values   # latest start <= t
        frames = [raw.gather(0, torch.maximum(t - lag, start)[..., None].expand(T, N, D))
                  for lag in reversed(range(self.history))]
        return torch.cat(frames, dim=-1)

    def forward_sequence(self, obs: dict[str, torch.Tensor], starts: torch.Tensor) -> torch.Tensor:
        """Actions for a (T, N) sequence of observations."""
        T, N = starts.shape
        raw = self.input.flat({k: v.reshape(T * N, *v.shape[2:]) for k, v in obs.items()}).reshape(T, N, -1)
        x = self.stack(raw, starts) if self.history > 1 else raw
        return self.mlp(self._normalise(x))

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        return self.input.normalizer(x.reshape(*shape[:-1], self.history, -1)).reshape(shape)

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """One step in closed loop; call :meth:`reset` for worlds whose episode restarted."""
        raw = self.input.flat(obs)
        if self.history == 1:
            return self.mlp(self.input.normalizer(raw))
        n = raw.shape[0]
        filled = raw.unsqueeze(1).repeat(1, self.history, 1)
        if self._buffer is None or self._buffer.shape[0] != n:
            self._buffer = filled
        else:
            self._buffer = torch.cat([self._buffer[:, 1:], raw.unsqueeze(1)], dim=1)
            if self._fresh is not None:
                self._buffer[self._fresh] = filled[self._fresh]
        self._fresh = None
        return self.mlp(self._normalise(self._buffer.reshape(n, -1)))

    def reset(self, done: torch.Tensor | None = None) -> None:
        """Worlds ``done`` (all if None) start a new episode: their history restarts next step."""
        if done is None:
            self._buffer, self._fresh = None, None
        else:
            self._fresh = done.clone() if self._fresh is None else self._fresh | done


class GRUStudent(nn.Module):
    """Recurrent student: a GRU over the normalised student group, then an MLP head."""

    recurrent = True

    def __init__(self, schema: ObservationSchema, action_dim: int, hidden_size: int = 128,
                 head: Sequence[int] = (128, 64)):
        super().__init__()
        self.input = GroupInput(schema, "student")
        self.gru = nn.GRU(self.input.size, hidden_size)
        self.head = mlp(hidden_size, head, action_dim)
        self.hidden_size = hidden_size
        self._hidden: torch.Tensor | None = None

    def forward_sequence(self, obs: dict[str, torch.Tensor], starts: torch.Tensor,
                         hidden: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Actions for a (T, N) sequence from initial ``hidden`` (zeros if None); the hidden
        state is zeroed at episode starts. Returns actions and the hidden state before each step."""
        T, N = starts.shape
        x = self.input({k: v.reshape(T * N, *v.shape[2:]) for k, v in obs.items()}).reshape(T, N, -1)
        h = torch.zeros(1, N, self.hidden_size, device=x.device) if hidden is None else hidden.unsqueeze(0)
        outputs, before = [], []
        for t in range(T):
            h = h * (~starts[t]).to(h.dtype)[None, :, None]
            before.append(h[0])
            out, h = self.gru(x[t:t + 1], h)
            outputs.append(out[0])
        return self.head(torch.stack(outputs)), torch.stack(before)

    def step(self, obs: dict[str, torch.Tensor], hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step as a pure function: (action, next hidden) from the fields and the (N, hidden)
        memory. The exported graph is this function."""
        out, h = self.gru(self.input(obs).unsqueeze(0), hidden.unsqueeze(0))
        return self.head(out[0]), h[0]

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """One step in closed loop, carrying the memory; call :meth:`reset` at episode starts."""
        any_field = next(iter(obs.values()))
        if self._hidden is None or self._hidden.shape[0] != any_field.shape[0]:
            self._hidden = torch.zeros(any_field.shape[0], self.hidden_size, device=any_field.device)
        action, self._hidden = self.step(obs, self._hidden)
        return action

    def reset(self, done: torch.Tensor | None = None) -> None:
        if self._hidden is None or done is None:
            self._hidden = None
        else:
            self._hidden[done] = 0.0


def fit(student: nn.Module, data: list[tuple[Rollouts, torch.Tensor]], grad_steps: int, *, lr: float = 1e-3,
        batch_worlds: int = 32, chunk: int = 16, loss: str = "mse", generator: torch.Generator | None = None,
        optimizer: torch.optim.Optimizer | None = None, target: str = "executed") -> list[float]:
    """Train ``student`` on (rollouts, mask) pairs for ``grad_steps`` Adam steps of masked
    distillation; each step takes ``chunk`` consecutive steps of ``batch_worlds`` worlds from one
    rollout. The student's normaliser is left as it is: update it with new data before
    (:func:`distillkit.dagger.dagger` does, once per round). Student and data share one device;
    the minibatches are drawn from ``generator`` on the CPU, the same on every device."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    optimizer = optimizer or torch.optim.Adam(student.parameters(), lr=lr)
    starts = [episode_starts(r) for r, _ in data]
    hidden = [None] * len(data)
    # TBPTT: the hidden state at each chunk's start comes from one pass over the whole sequence
    # with the weights this call starts from (as rsl_rl stores hidden states during a rollout).
    if getattr(student, "recurrent", False):
        with torch.no_grad():
            hidden = [student.forward_sequence(r.obs, s)[1] for (r, _), s in zip(data, starts)]
    losses = []
    for _ in range(grad_steps):
        i = int(torch.randint(len(data), (1,), generator=generator))
        rollouts, mask = data[i]
        T, N = mask.shape
        length = min(chunk, T)
        t0 = int(torch.randint(T - length + 1, (1,), generator=generator))
        worlds = torch.randperm(N, generator=generator)[:batch_worlds].to(mask.device)
        window = slice(t0, t0 + length)
        obs = {k: v[window][:, worlds] for k, v in rollouts.obs.items()}
        chunk_starts = starts[i][window][:, worlds].clone()
        if student.recurrent:
            pred, _ = student.forward_sequence(obs, chunk_starts, hidden[i][t0][worlds])
        else:
            if student.history > 1 and t0 > 0:      # give the stack its real past
                context = max(0, t0 - student.history + 1)
                obs = {k: v[context:t0 + length][:, worlds] for k, v in rollouts.obs.items()}
                chunk_starts = starts[i][context:t0 + length][:, worlds].clone()
                chunk_starts[0] = True
                pred = student.forward_sequence(obs, chunk_starts)[t0 - context:]
            else:
                chunk_starts[0] = True
                pred = student.forward_sequence(obs, chunk_starts)
        label = rollouts.teacher_actions[window][:, worlds]
        value = distillation_loss(pred, executed(label) if target == "executed" else label, mask[window][:, worlds], loss)
        optimizer.zero_grad()
        value.backward()
        nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        optimizer.step()
        losses.append(value.item())
    return losses
