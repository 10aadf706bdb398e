"""Students: networks that read only the deployable (``student``) fields, behind one protocol.

Every student type implements :class:`Student`, and only through it do training
(:func:`distillkit.distill.fit`), DAgger, evaluation, the leakage checks and export use it:

- **acting**: ``student(obs)`` is one closed-loop step; ``reset(done)`` tells it which worlds
  started a new episode (so a student with memory forgets them);
- **training**: ``forward_window`` gives the actions for a window of recorded steps of some worlds,
  with whatever past the student needs (``prepare`` computes that past once per dataset);
  ``training_loss`` is what :func:`~distillkit.distill.fit` minimises on such a window: action
  matching by default, plus terms for the named targets in ``learns_from`` (the teacher's latent,
  privileged field values) for the students that go beyond action matching; ``adopt`` takes what
  a student reuses from the teacher (the latent student: the teacher's action head);
- **export**: ``step(obs, memory)`` is one step as a pure function; ``memory_size`` is the size of
  the memory that function carries (0: none). Every past a student acts on is in that memory (a
  GRU state, a stacked history), so the exported graph is the whole student.

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

from distillkit.models import EncoderActor, GroupInput, RunningNorm, gru_sequence, mlp
from distillkit.policy import Obs, Policy
from distillkit.rollouts import Rollouts
from distillkit.schema import ObservationSchema

RSL_RL_HIDDEN = (256, 128, 64)     # rsl_rl's default MLP widths


class StudentError(ValueError):
    """A student that cannot be built as asked, or cannot learn from the teacher it was given."""

#: a loss function: (predicted, target, mask) -> the scalar to minimise; masked over (T, N) steps,
#: any width: fit applies it to actions, and the students beyond action matching to their other targets too
LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class Student(nn.Module, ABC):
    """The student protocol. ``input`` reads (and normalises) the ``student`` group: it is the
    only way a student sees an observation."""

    input: GroupInput
    #: size of the memory ``step`` carries in and out (a GRU state, a stacked history); 0: none
    memory_size: int = 0
    #: named targets besides the teacher's action that ``training_loss`` reads (keys of ``Rollouts.targets``)
    learns_from: tuple[str, ...] = ()

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

    def learn_statistics(self, rollouts: Rollouts) -> None:
        """Update the running statistics from newly collected ``rollouts`` (DAgger calls it once
        per round, on that round's data only): by default, the input normaliser's."""
        self.input.normalizer.update(self.input.flat(rollouts.flat().obs))

    def adopt(self, teacher: Policy) -> None:
        """Take what this student reuses from ``teacher`` (:func:`distillkit.dagger.dagger` calls
        it before training); nothing by default."""

    def training_loss(self, obs: Obs, starts: torch.Tensor, window: slice, worlds: torch.Tensor,
                      prepared: torch.Tensor | None, targets: dict[str, torch.Tensor], mask: torch.Tensor,
                      loss: LossFn) -> torch.Tensor:
        """The scalar :func:`~distillkit.distill.fit` minimises on one window (arguments as for
        ``forward_window``): ``targets`` holds ``"action"`` and each name in ``learns_from``, sliced
        to the window; ``loss`` is the action-matching loss (a named one or a learner's). By
        default: action matching alone. A student that learns from more adds one ``loss`` term
        per target."""
        return loss(self.forward_window(obs, starts, window, worlds, prepared), targets["action"], mask)


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


class MemoryStudent(Student):
    """A student whose past is its memory: acting in closed loop is its one-step function, with
    the memory it carries from step to step (zeros at an episode start), so the robot's loop and
    the exported graph act alike."""

    _memory: torch.Tensor | None = None

    def forward(self, obs: Obs) -> torch.Tensor:
        any_field = next(iter(obs.values()))
        if self._memory is None or self._memory.shape[0] != any_field.shape[0]:
            self._memory = torch.zeros(any_field.shape[0], self.memory_size, device=any_field.device)
        action, self._memory = self.step(obs, self._memory)
        return action

    def reset(self, done: torch.Tensor | None = None) -> None:
        if self._memory is None or done is None:
            self._memory = None
        else:
            self._memory[done] = 0.0


class HistoryStudent(MemoryStudent):
    """An MLP on the last ``history`` student observations stacked, oldest first (an episode's
    first observation is repeated until ``history`` exist). Its memory is the previous
    ``history - 1`` raw observations and a flag that the episode is under way (zeros: it starts
    now), so the stack travels in and out of the exported graph like a GRU's state."""

    def __init__(self, schema: ObservationSchema, action_dim: int, hidden: Sequence[int] = RSL_RL_HIDDEN,
                 history: int = 4):
        super().__init__()
        if history < 2:
            raise ValueError(f"a history student stacks at least 2 steps, got history={history} (use 'mlp')")
        self.input = GroupInput(schema, "student")
        self.hidden, self.history = tuple(hidden), history
        self.mlp = mlp(self.input.size * history, self.hidden, action_dim)
        self.memory_size = self.input.size * (history - 1) + 1

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
        raw = self.input.flat(obs)
        past = memory[:, :-1].reshape(-1, self.history - 1, raw.shape[1])
        under_way = memory[:, -1:, None] > 0.5
        # at an episode start the stack is the first observation repeated, as in training's stack
        past = torch.where(under_way, past, raw.unsqueeze(1).expand(-1, self.history - 1, -1))
        frames = torch.cat([past, raw.unsqueeze(1)], dim=1)
        action = self.mlp(self._normalise(frames.flatten(1)))
        return action, torch.cat([frames[:, 1:].flatten(1), torch.ones_like(memory[:, -1:])], dim=1)

    def options(self) -> dict:
        return {"hidden": list(self.hidden), "history": self.history}


class RecurrentStudent(MemoryStudent):
    """A GRU over the normalised student group, trained with truncated back-propagation through
    time (the memory is carried along each world's sequence, zeroed at episode starts); what the
    memory becomes (the action, a latent, an estimate) is each subclass's ``readout``."""

    def __init__(self, schema: ObservationSchema, hidden_size: int):
        super().__init__()
        self.input = GroupInput(schema, "student")
        self.gru = nn.GRU(self.input.size, hidden_size)
        self.hidden_size = self.memory_size = hidden_size

    @abstractmethod
    def readout(self, raw: torch.Tensor, out: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named outputs, ``"action"`` and whatever ``training_loss`` compares with targets, from
        the raw (unnormalised) student group ``raw`` (..., D) and the GRU's output ``out`` at the
        same step (..., hidden_size)."""

    def outputs_sequence(self, obs: Obs, starts: torch.Tensor, hidden: torch.Tensor | None = None
                         ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """``readout`` for a (T, N) sequence from initial ``hidden`` (zeros if None); the memory is
        zeroed at episode starts. Returns the outputs and the memory before each step."""
        T, N = starts.shape
        raw = self.input.flat({k: v.reshape(T * N, *v.shape[2:]) for k, v in obs.items()}).reshape(T, N, -1)
        x = self.input.normalizer(raw)
        memory = torch.zeros(N, self.hidden_size, device=x.device) if hidden is None else hidden
        outputs, before = gru_sequence(self.gru, x, starts, memory)
        return self.readout(raw, outputs), before

    def forward_sequence(self, obs: Obs, starts: torch.Tensor,
                         hidden: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Actions for a (T, N) sequence and the memory before each step."""
        outputs, before = self.outputs_sequence(obs, starts, hidden)
        return outputs["action"], before

    @torch.no_grad()
    def prepare(self, obs, starts):
        # TBPTT: the memory at each chunk's start comes from one pass over the whole sequence with
        # the weights training starts from (as rsl_rl stores hidden states during a rollout).
        return self.outputs_sequence(obs, starts)[1]

    def outputs_window(self, obs, starts, window, worlds, prepared) -> dict[str, torch.Tensor]:
        """``readout`` for a window of recorded steps (arguments as for ``forward_window``)."""
        chunk = {k: v[window][:, worlds] for k, v in obs.items()}
        return self.outputs_sequence(chunk, starts[window][:, worlds], prepared[window.start][worlds])[0]

    def forward_window(self, obs, starts, window, worlds, prepared):
        return self.outputs_window(obs, starts, window, worlds, prepared)["action"]

    def step_outputs(self, obs: Obs, memory: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """``readout`` for one step from ``memory`` (N, hidden_size): every named output (the action,
        a latent estimate, an estimate in the fields' units) and the memory after the step."""
        raw = self.input.flat(obs)
        out, h = self.gru(self.input.normalizer(raw).unsqueeze(0), memory.unsqueeze(0))
        return self.readout(raw, out[0]), h[0]

    def step(self, obs, memory):
        outputs, memory = self.step_outputs(obs, memory)
        return outputs["action"], memory


class GRUStudent(RecurrentStudent):
    """A GRU over the student fields, then an MLP head: actions from the memory alone."""

    def __init__(self, schema: ObservationSchema, action_dim: int, hidden_size: int = 128,
                 head: Sequence[int] = (128, 64)):
        super().__init__(schema, hidden_size)
        self.head = mlp(hidden_size, head, action_dim)
        self.head_widths = tuple(head)

    def readout(self, raw, out):
        return {"action": self.head(out)}

    def options(self) -> dict:
        return {"hidden_size": self.hidden_size, "head": list(self.head_widths)}


def latent_teacher(kind: str, teacher: Policy, latent_size: int) -> EncoderActor:
    """``teacher`` if it labels latents of ``latent_size`` (an encoder teacher), else a clear error."""
    if not isinstance(teacher, EncoderActor):
        raise StudentError(f"the {kind!r} student learns the latent of a teacher with a privileged encoder: give the "
                        f"teacher's EncoderActor itself (load_actor of a teacher trained with PPOConfig.encoder_latent "
                        f"> 0), not a {type(teacher).__name__}")
    if teacher.latent_size != latent_size:
        raise StudentError(f"the teacher's latent has {teacher.latent_size} values; build the {kind!r} student with "
                         f"latent_size={teacher.latent_size}, not {latent_size}")
    return teacher


class LatentStudent(RecurrentStudent):
    """RMA's phase 2 (Kumar et al. 2021): an adaptation module, here the GRU over the student
    fields, regresses the teacher's latent z, and the teacher's own action head, frozen, acts on
    [student fields, z estimate]. Only the latent is learnt (loss: latent error through ``loss``):
    the head already maps a good latent to good actions, so the student's actions are as good as
    its estimate of z. ``hidden`` are the teacher's actor widths (``PPOConfig.actor_hidden``)."""

    learns_from = ("latent",)

    def __init__(self, schema: ObservationSchema, action_dim: int, latent_size: int = 8, hidden_size: int = 64,
                 hidden: Sequence[int] = RSL_RL_HIDDEN):
        super().__init__(schema, hidden_size)
        self.latent_size, self.hidden = latent_size, tuple(hidden)
        self.to_latent = nn.Linear(hidden_size, latent_size)
        # the teacher's head and its normalisation of the student fields: copied by `adopt`, never trained
        self.head_input = RunningNorm(self.input.size)
        self.head = mlp(self.input.size + latent_size, self.hidden, action_dim).requires_grad_(False)

    def readout(self, raw, out):
        latent = self.to_latent(out)
        return {"action": self.head(torch.cat([self.head_input(raw), latent], dim=-1)), "latent": latent}

    def adopt(self, teacher):
        teacher = latent_teacher("latent", teacher, self.latent_size)
        if teacher.plain_names != self.input.names:
            raise StudentError(f"the teacher's head reads {list(teacher.plain_names)} beside its latent; this student "
                             f"reads {list(self.input.names)}: they must be the same fields")
        if teacher.hidden != self.hidden:
            raise StudentError(f"the teacher's head has widths {list(teacher.hidden)}; build the 'latent' student with "
                             f"hidden={list(teacher.hidden)}")
        self.head.load_state_dict(teacher.mlp.state_dict())
        plain, norm = ~teacher.privileged_columns, teacher.input.normalizer
        self.head_input.mean.copy_(norm.mean[plain])
        self.head_input.var.copy_(norm.var[plain])
        self.head_input.count.copy_(norm.count)

    def training_loss(self, obs, starts, window, worlds, prepared, targets, mask, loss):
        # a trained teacher's normaliser has seen data; a head never adopted has not
        if self.head_input.count == 0:
            raise RuntimeError("this latent student's action head is not the teacher's yet: call "
                               "student.adopt(teacher) first (dagger does)")
        return loss(self.outputs_window(obs, starts, window, worlds, prepared)["latent"], targets["latent"], mask)

    def options(self) -> dict:
        return {"latent_size": self.latent_size, "hidden_size": self.hidden_size, "hidden": list(self.hidden)}


class ActionLatentStudent(RecurrentStudent):
    """Lee et al. 2020's student: a history encoder (here the GRU over the student fields)
    estimates the teacher's latent, and the student's own MLP acts on [student fields, latent
    estimate]; both are learnt at once: loss = action error + ``latent_weight`` * latent error
    (each through ``loss``). The latent term shapes the memory into the teacher's summary of the
    privileged state; the action term lets the policy make up for what the estimate misses."""

    learns_from = ("latent",)

    def __init__(self, schema: ObservationSchema, action_dim: int, latent_size: int = 8, latent_weight: float = 1.0,
                 hidden_size: int = 64, hidden: Sequence[int] = RSL_RL_HIDDEN):
        super().__init__(schema, hidden_size)
        self.latent_size, self.latent_weight, self.hidden = latent_size, latent_weight, tuple(hidden)
        self.to_latent = nn.Linear(hidden_size, latent_size)
        self.policy = mlp(self.input.size + latent_size, self.hidden, action_dim)

    def readout(self, raw, out):
        latent = self.to_latent(out)
        return {"action": self.policy(torch.cat([self.input.normalizer(raw), latent], dim=-1)), "latent": latent}

    def adopt(self, teacher):
        latent_teacher("action_latent", teacher, self.latent_size)     # checked now, not after a round of rollouts

    def training_loss(self, obs, starts, window, worlds, prepared, targets, mask, loss):
        out = self.outputs_window(obs, starts, window, worlds, prepared)
        return loss(out["action"], targets["action"], mask) + self.latent_weight * loss(out["latent"], targets["latent"], mask)

    def options(self) -> dict:
        return {"latent_size": self.latent_size, "latent_weight": self.latent_weight, "hidden_size": self.hidden_size,
                "hidden": list(self.hidden)}


class EstimatorStudent(RecurrentStudent):
    """An explicit estimator (Ji et al. 2022; walk-these-ways, Margolis and Agrawal 2022): the GRU
    over the student fields regresses the true values of named ``teacher_only`` fields, and an MLP
    acts on [student fields, estimate]. Loss = action error + estimation error (each through
    ``loss``). The estimator regresses the values normalised by running statistics of the targets,
    so a payload in kg does not outweigh a friction coefficient in the loss, and the policy reads
    that normalised estimate; ``outputs["estimate"]`` is in the fields' own units.

    The policy reads the estimate *detached*: the estimator learns from the estimation error
    alone, so the estimate stays what its name says (a friction, a mass) and can be checked as
    such, where gradients from the action error would bend it into one more free latent.
    ``fields``: None is every ``teacher_only`` field of at most 2 values (the hidden physics
    parameters and velocities, not a height scan); the manifest records the option as given, the
    schema it records resolves it."""

    def __init__(self, schema: ObservationSchema, action_dim: int, fields: Sequence[str] | None = None,
                 hidden_size: int = 64, hidden: Sequence[int] = RSL_RL_HIDDEN):
        super().__init__(schema, hidden_size)
        allowed = schema.names_with_role("teacher_only")
        self.fields_option = None if fields is None else list(fields)
        chosen = tuple(n for n in allowed if schema.field(n).size <= 2) if fields is None else tuple(fields)
        unknown = [n for n in chosen if n not in allowed]
        if unknown:
            raise StudentError(f"estimator fields {unknown} are not teacher_only fields of schema {schema.name!r}; "
                             f"those are {list(allowed)}")
        if not chosen:
            raise StudentError(f"an estimator needs teacher_only fields to estimate: name them (fields=...) from "
                             f"{list(allowed)}")
        self.learns_from, self.hidden = chosen, tuple(hidden)
        self.estimator = nn.Linear(hidden_size, sum(schema.field(n).size for n in chosen))
        self.truth_norm = RunningNorm(self.estimator.out_features)
        self.policy = mlp(self.input.size + self.estimator.out_features, self.hidden, action_dim)

    def readout(self, raw, out):
        normalised = self.estimator(out)
        scale = torch.sqrt(self.truth_norm.var + self.truth_norm.eps ** 2).to(normalised.dtype)
        return {"action": self.policy(torch.cat([self.input.normalizer(raw), normalised.detach()], dim=-1)),
                "normalised_estimate": normalised,
                "estimate": normalised * scale + self.truth_norm.mean.to(normalised.dtype)}

    def truth(self, targets: dict[str, torch.Tensor], shape: torch.Size) -> torch.Tensor:
        """The estimated fields' true values side by side, (*shape, estimate size)."""
        return torch.cat([targets[n].reshape(*shape, -1) for n in self.learns_from], dim=-1)

    def learn_statistics(self, rollouts):
        super().learn_statistics(rollouts)
        self.truth_norm.update(self.truth(rollouts.targets, rollouts.done.shape))

    def training_loss(self, obs, starts, window, worlds, prepared, targets, mask, loss):
        out = self.outputs_window(obs, starts, window, worlds, prepared)
        truth = self.truth_norm(self.truth(targets, mask.shape))
        return loss(out["action"], targets["action"], mask) + loss(out["normalised_estimate"], truth, mask)

    def options(self) -> dict:
        return {"fields": self.fields_option, "hidden_size": self.hidden_size, "hidden": list(self.hidden)}


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
    "latent": Architecture(LatentStudent, "RMA phase 2: a GRU regresses the encoder teacher's latent, its action "
                                          "head acts (frozen)", {"latent_size": 8, "hidden_size": 64}),
    "action_latent": Architecture(ActionLatentStudent, "Lee et al. 2020: a GRU estimates the encoder teacher's "
                                                       "latent, an MLP acts; action + latent loss",
                                  {"latent_size": 8, "latent_weight": 1.0, "hidden_size": 64}),
    "estimator": Architecture(EstimatorStudent, "a GRU estimates privileged values, an MLP acts on them; action + "
                                                "estimation loss", {"fields": None, "hidden_size": 64}),
}


def make_student(architecture: str, schema: ObservationSchema, action_dim: int, **options) -> Student:
    """A student of ``architecture`` (a key of :data:`ARCHITECTURES`) with ``options`` over its
    defaults, e.g. ``hidden=(128, 64)`` for an MLP."""
    if architecture not in ARCHITECTURES:
        raise StudentError(f"architecture must be one of {list(ARCHITECTURES)}, got {architecture!r}")
    row = ARCHITECTURES[architecture]
    options = {**row.defaults, **options}
    accepted = [name for name in inspect.signature(row.make).parameters if name not in ("schema", "action_dim")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise StudentError(f"a {architecture!r} student has no options {unknown}; its options are {accepted}")
    return row.make(schema, action_dim, **options)
