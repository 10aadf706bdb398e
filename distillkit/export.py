"""Exporting a student for deployment: ONNX and TorchScript, inputs named by student fields.

The exported graph takes one input per student field, named after it, in the schema's order,
with the observation normaliser baked in, and returns the action. A robot-side loader checks
the names and shapes before the first call.

A student with memory (a GRU state, a stacked history) is exported as one step: one more input,
``student_memory`` (batch, memory size), and one more output, ``student_memory_out``, which the
robot feeds back on the next call (zeros at an episode start). The memory is not an observation:
it is the student's own output (a stacked history's memory holds past student fields), so the
graph still reads nothing but student fields.

Before tracing, :func:`check_student_only` refuses a network holding any privileged part: a
layer that reads a privileged field (a teacher's actor or its encoder's input), or, given an
encoder teacher, a tensor of the teacher's encoder (shared or copied). A latent student carries
the teacher's action head, never its encoder: the deployed graph estimates the latent from
student fields alone.
"""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from distillkit.models import EncoderActor, GroupInput
from distillkit.schema import ObservationSchema
from distillkit.students import Student

OUTPUT = "student_action"          # the graph's output; no student field may carry these names
MEMORY = "student_memory"          # the memory of a student with one, in and out:
MEMORY_OUT = "student_memory_out"
RESERVED = (OUTPUT, MEMORY, MEMORY_OUT)


class ExportError(ValueError):
    """An exported model does not fit the student fields it is given."""


class NamedInputStudent(nn.Module):
    """The student as a function of positional tensors, one per student field, in schema order
    (then the memory, for a student with one)."""

    def __init__(self, student: Student):
        super().__init__()
        self.student = student
        self.recurrent = student.memory_size > 0
        self.names = list(student.input.names)
        self.input_names = self.names + ([MEMORY] if self.recurrent else [])
        self.output_names = [OUTPUT] + ([MEMORY_OUT] if self.recurrent else [])

    def forward(self, *inputs: torch.Tensor):
        if not self.recurrent:
            return self.student.step(dict(zip(self.names, inputs)), None)[0]
        *fields, memory = inputs
        return self.student.step(dict(zip(self.names, fields)), memory)

    def example_inputs(self, schema: ObservationSchema, batch: int = 1) -> tuple[torch.Tensor, ...]:
        fields = tuple(torch.zeros(batch, *schema.field(n).obs_shape) for n in self.names)
        return fields + ((torch.zeros(batch, self.student.memory_size),) if self.recurrent else ())


def on_cpu(student: Student) -> Student:
    """The student on the CPU, where the exported graph is traced (a copy if it lives on a GPU)."""
    if all(p.device.type == "cpu" for p in student.parameters()):
        return student
    return copy.deepcopy(student).cpu()


def check_student_only(student: nn.Module, teacher: EncoderActor | None = None) -> None:
    """Refuse a network that holds a privileged part: a :class:`~distillkit.models.GroupInput`
    anywhere in it that reads a privileged field, or, given the ``teacher``, a parameter or
    buffer that is one of its encoder's parameters, shared or with the same values (copied)."""
    for path, module in student.named_modules():
        if isinstance(module, GroupInput):
            privileged = [n for n in module.names if module.schema.field(n).privileged]
            if privileged:
                raise ExportError(f"{type(student).__name__}.{path or 'self'} reads privileged fields {privileged}: "
                                  f"a deployed student reads student fields only")
    if teacher is None:
        return
    encoder = dict(teacher.encoder.named_parameters())
    for name, tensor in [*student.named_parameters(), *student.named_buffers()]:
        for theirs, value in encoder.items():
            if (tensor.shape, tensor.dtype) != (value.shape, value.dtype):
                continue
            if tensor.data_ptr() == value.data_ptr() or torch.equal(tensor.detach().cpu(), value.detach().cpu()):
                raise ExportError(f"{type(student).__name__}.{name} is the teacher's encoder.{theirs}: the teacher's "
                                  f"encoder reads privileged fields and must not be in a deployed student")


def export_onnx(student: Student, schema: ObservationSchema, path: str | os.PathLike, *,
                teacher: EncoderActor | None = None) -> Path:
    """``student`` as an ONNX graph at ``path``, one input per student field (plus its memory),
    after :func:`check_student_only` (with the ``teacher`` whose encoder it must not contain, if
    given)."""
    # what the network reads is checked first: a teacher's actor offered for export is refused for its inputs
    names = list(student.input.names)
    if names != list(schema.group("student")):
        raise ExportError(f"student reads {names}, the schema's student group is {list(schema.group('student'))}")
    clash = sorted(set(names) & set(RESERVED))
    if clash:
        raise ExportError(f"student fields {clash} carry names the exported graph reserves ({RESERVED})")
    if not isinstance(student, Student):
        raise ExportError(f"a {type(student).__name__} is not a distillkit.students.Student: export needs its one-step "
                          f"function and memory size")
    check_student_only(student, teacher)
    model = NamedInputStudent(on_cpu(student)).eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # torch warns that a GRU exported with batch > 1 needs its initial state as an input: ours is (MEMORY)
        warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)   # nn.GRU's Python size checks
        torch.onnx.export(model, model.example_inputs(schema), str(path), input_names=model.input_names,
                          output_names=model.output_names,
                          dynamic_axes={n: {0: "batch"} for n in model.input_names + model.output_names}, dynamo=False)
    return path


def export_torchscript(student: Student, schema: ObservationSchema, path: str | os.PathLike, *,
                       teacher: EncoderActor | None = None) -> Path:
    """``student`` as a TorchScript trace at ``path``, after the same check as :func:`export_onnx`."""
    check_student_only(student, teacher)
    model = NamedInputStudent(on_cpu(student)).eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # nn.GRU checks its input sizes in Python; the trace fixes them, which is what we want
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        traced = torch.jit.trace(model, model.example_inputs(schema))
    traced.save(str(path))
    return path


class OnnxStudent:
    """An exported student loaded for deployment: checks names and shapes, then runs."""

    def __init__(self, path: str | os.PathLike, schema: ObservationSchema):
        import onnxruntime

        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.schema = schema
        inputs = [i.name for i in self.session.get_inputs()]
        self.recurrent = inputs[-1:] == [MEMORY]
        self.names = inputs[:-1] if self.recurrent else inputs
        expected = list(schema.group("student"))
        if self.names != expected:
            raise ExportError(f"{path}: inputs are {inputs}, the student fields are {expected}"
                              + (f" (+ {MEMORY!r} if recurrent)" if not self.recurrent else f" + {MEMORY!r}"))
        self.memory: np.ndarray | None = None
        for i in self.session.get_inputs():
            if i.name == MEMORY:
                self.memory_size = i.shape[1]
                continue
            want = list(schema.field(i.name).obs_shape)
            if list(i.shape[1:]) != want:
                raise ExportError(f"{path}: input {i.name!r} has shape {i.shape}, field needs (batch, *{want})")

    def __call__(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        extra = [n for n in obs if n not in self.names]
        if extra:
            raise ExportError(f"the deployed student takes only {self.names}; got also {extra}")
        feeds = {}
        for n in self.names:
            if n not in obs:
                raise ExportError(f"missing student field {n!r}")
            value = np.asarray(obs[n], dtype=np.float32)
            if value.shape[1:] != self.schema.field(n).obs_shape:
                raise ExportError(f"field {n!r}: expected shape (batch, *{self.schema.field(n).obs_shape}), "
                                  f"got {value.shape}")
            feeds[n] = value
        if not self.recurrent:
            return torch.from_numpy(self.session.run([OUTPUT], feeds)[0])
        batch = len(next(iter(feeds.values())))
        if self.memory is None or len(self.memory) != batch:
            self.memory = np.zeros((batch, self.memory_size), dtype=np.float32)
        action, self.memory = self.session.run([OUTPUT, MEMORY_OUT], {**feeds, MEMORY: self.memory})
        return torch.from_numpy(action)

    def reset(self, done: torch.Tensor | None = None) -> None:
        """Forget the memory of worlds ``done`` (all if None): they start a new episode."""
        if self.memory is None or done is None:
            self.memory = None
        else:
            self.memory[np.asarray(done)] = 0.0
