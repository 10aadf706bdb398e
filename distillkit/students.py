"""Students: networks that read only the deployable (``student``) fields, behind one protocol.

Every student type implements :class:`Student`, and only through it do training
(:func:`distillkit.distill.fit`), DAgger, evaluation, the leakage checks and export use it:

- **acting**: ``student(obs)`` is one closed-loop step; ``reset(done)`` tells it which worlds
  started a new episode (so a student with memory forgets them);
- **training**: ``forward_window`` gives the actions for a window of recorded steps of some worlds,
  with whatever past the student needs (``prepare`` computes that past once per dataset);
- **export**: ``step(obs, memory)`` is one step as a pure function; ``memory_size`` is the size of
  the memory that function carries (0: none), ``exportable`` says whether a graph can hold the
  whole student.

:data:`ARCHITECTURES` is the one table of student types that training, the CLI and export read:
adding a type is one class here and one row there.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from distillkit.models import GroupInput, mlp
from distillkit.policy import Obs
from distillkit.schema import ObservationSchema

RSL_RL_HIDDEN = (256, 128, 64)     # rsl_rl's default MLP widths


class Student(nn.Module, ABC):
    """The student protocol. ``input`` reads (and normalises) the ``student`` group: it is the
    only way a student sees an observation."""

    input: GroupInput
    #: size of the memory ``step`` carries in and out (a recurrent student's hidden state); 0: none
    memory_size: int = 0
    #: False where past inputs live outside any graph (a stacked history): such a student is not exported
    exportable: bool = True

    @abstractmethod
    def forward(self, obs: Obs) -> torch.Tensor:
        """One closed-loop step: (N, action_dim) actions for N worlds."""

    @abstractmethod
    def reset(self, done: torch.Tensor | None = None) -> None:
        """Worlds ``done`` (every world if None) start a new episode at the next step."""

    def prepare(self, obs: Obs, starts: torch.Tensor) -> torch.Tensor | None:
        """What ``forward_window`` needs from before a window, computed once for a whole (T, N)
        recorded sequence with the current weights (a recurrent student: its memory before each
        step). None for a student whose past is in the recording itself."""
        return None

    @abstractmethod
    def forward_window(self, obs: Obs, starts: torch.Tensor, window: slice, worlds: torch.Tensor,
                       prepared: torch.Tensor | None) -> torch.Tensor:
        """Actions (len(window), len(worlds), action_dim) for steps ``window`` of ``worlds`` in a
        recorded (T, N) sequence ``obs`` whose episodes begin where ``starts`` is True."""

    @abstractmethod
    def step(self, obs: Obs, memory: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One step as a pure function of the fields and the (N, memory_size) memory (None when
        ``memory_size`` is 0): (action, next memory). The exported graph is this function."""

    def options(self) -> dict:
        """The constructor options a manifest records, so the loader rebuilds this student."""
        return {}


class MLPStudent(Student):
    """An MLP on the current student fields."""

    def __init__(self, schema: ObservationSchema, action_dim: int, hidden: Sequence[int] = RSL_RL_HIDDEN):
        super().__init__()
        self.input = GroupInput(schema, "student")
        self.hidden = tuple(hidden)
        self.mlp = mlp(self.input.size, self.hidden, action_dim)

    def forward(self, obs: Obs) -> torch.Tensor:
        return self.mlp(self.input(obs))

    def reset(self, done: torch.Tensor | None = None) -> None:
        pass                                   # nothing to forget

    def forward_window(self, obs, starts, window, worlds, prepared):
        T, N = starts[window].shape[0], len(worlds)
        flat = self.input({k: v[window][:, worlds].reshape(T * N, *v.shape[2:]) for k, v in obs.items()})
        return self.mlp(flat.reshape(T, N, -1))

    def step(self, obs, memory):
        return self(obs), memory

    def options(self) -> dict:
        return {"hidden": list(self.hidden)}


class HistoryStudent(Student):
    """An MLP on the last ``history`` student observations stacked, oldest first (an episode's
    first observation is repeated until ``history`` exist)."""

    exportable = False

    def __init__(self, schema: ObservationSchema, action_dim: int, hidden: Sequence[int] = RSL_RL_HIDDEN,
                 history: int = 4):
        super().__init__()
        if history < 2:
            raise ValueError(f"a history student stacks at least 2 steps, got history={history} (use 'mlp')")
        self.input = GroupInput(schema, "student")
        self.hidden, self.history = tuple(hidden), history
        self.mlp = mlp(self.input.size * history, self.hidden, action_dim)
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

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        return self.input.normalizer(x.reshape(*shape[:-1], self.history, -1)).reshape(shape)

    def forward(self, obs: Obs) -> torch.Tensor:
        raw = self.input.flat(obs)
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
        if done is None:
            self._buffer, self._fresh = None, None
        else:
            self._fresh = done.clone() if self._fresh is None else self._fresh | done

    def forward_window(self, obs, starts, window, worlds, prepared):
        # the stack reaches back history - 1 steps before the window: give it that real past
        context = max(0, window.start - self.history + 1)
        span = slice(context, window.stop)
        chunk = {k: v[span][:, worlds] for k, v in obs.items()}
        chunk_starts = starts[span][:, worlds].clone()
        chunk_starts[0] = True                   # the recording begins there as far as the stack knows
        T, N = chunk_starts.shape
        raw = self.input.flat({k: v.reshape(T * N, *v.shape[2:]) for k, v in chunk.items()}).reshape(T, N, -1)
        return self.mlp(self._normalise(self.stack(raw, chunk_starts)))[window.start - context:]

    def step(self, obs, memory):
        raise TypeError("a stacked-history student keeps past fields outside any graph: it has no one-step function")

    def options(self) -> dict:
        return {"hidden": list(self.hidden), "history": self.history}


class GRUStudent(Student):
    """A GRU over the normalised student group, then an MLP head; trained with truncated
    back-propagation through time (the memory is carried along each world's sequence, zeroed at
    episode starts)."""

    def __init__(self, schema: ObservationSchema, action_dim: int, hidden_size: int = 128,
                 head: Sequence[int] = (128, 64)):
        super().__init__()
        self.input = GroupInput(schema, "student")
        self.gru = nn.GRU(self.input.size, hidden_size)
        self.head = mlp(hidden_size, head, action_dim)
        self.hidden_size, self.head_widths = hidden_size, tuple(head)
        self.memory_size = hidden_size
        self._hidden: torch.Tensor | None = None

    def forward_sequence(self, obs: Obs, starts: torch.Tensor,
                         hidden: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Actions for a (T, N) sequence from initial ``hidden`` (zeros if None); the memory is
        zeroed at episode starts. Returns actions and the memory before each step."""
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

    @torch.no_grad()
    def prepare(self, obs, starts):
        # TBPTT: the memory at each chunk's start comes from one pass over the whole sequence with
        # the weights training starts from (as rsl_rl stores hidden states during a rollout).
        return self.forward_sequence(obs, starts)[1]

    def forward_window(self, obs, starts, window, worlds, prepared):
        chunk = {k: v[window][:, worlds] for k, v in obs.items()}
        return self.forward_sequence(chunk, starts[window][:, worlds], prepared[window.start][worlds])[0]

    def step(self, obs, memory):
        out, h = self.gru(self.input(obs).unsqueeze(0), memory.unsqueeze(0))
        return self.head(out[0]), h[0]

    def forward(self, obs: Obs) -> torch.Tensor:
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

    def options(self) -> dict:
        return {"hidden_size": self.hidden_size, "head": list(self.head_widths)}


@dataclass(frozen=True)
class Architecture:
    """One row of the table: the class, the options it gets unless told otherwise, and a line for
    the CLI's help."""

    make: Callable[..., Student]
    summary: str
    defaults: dict = field(default_factory=dict)


ARCHITECTURES: dict[str, Architecture] = {
    "mlp": Architecture(MLPStudent, "an MLP on the current student fields"),
    "history": Architecture(HistoryStudent, "an MLP on the last 4 student observations stacked", {"history": 4}),
    "gru": Architecture(GRUStudent, "a GRU over the student fields, trained with truncated BPTT"),
}


def make_student(architecture: str, schema: ObservationSchema, action_dim: int, **options) -> Student:
    """A student of ``architecture`` (a key of :data:`ARCHITECTURES`) with ``options`` over its
    defaults, e.g. ``hidden=(128, 64)`` for an MLP."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {list(ARCHITECTURES)}, got {architecture!r}")
    row = ARCHITECTURES[architecture]
    options = {**row.defaults, **options}
    accepted = [name for name in inspect.signature(row.make).parameters if name not in ("schema", "action_dim")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"a {architecture!r} student has no options {unknown}; its options are {accepted}")
    return row.make(schema, action_dim, **options)
