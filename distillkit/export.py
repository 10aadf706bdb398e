"""Exporting a student for deployment: ONNX and TorchScript, inputs named by student fields.

The exported graph takes one input per student field, named after it, in the schema's order,
with the observation normaliser baked in, and returns the action. A robot-side loader checks
the names and shapes before the first call. Students with closed-loop state (stacked history,
GRU) keep it outside the graph and are not exported here; export an MLP student.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from distillkit.schema import ObservationSchema


OUTPUT = "student_action"   # the graph's output; no student field may carry this name


class ExportError(ValueError):
    """An exported model does not fit the student fields it is given."""


class NamedInputStudent(nn.Module):
    """The student as a function of positional tensors, one per student field, in schema order."""

    def __init__(self, student: nn.Module):
        super().__init__()
        if getattr(student, "recurrent", False) or getattr(student, "history", 1) != 1:
            raise ExportError("only stateless students (an MLP on the current student fields) can be exported")
        self.student = student
        self.names = list(student.input.names)

    def forward(self, *fields: torch.Tensor) -> torch.Tensor:
        return self.student(dict(zip(self.names, fields)))


def example_inputs(schema: ObservationSchema, batch: int = 1) -> tuple[torch.Tensor, ...]:
    return tuple(torch.zeros(batch, *schema.field(n).obs_shape) for n in schema.group("student"))


def export_onnx(student: nn.Module, schema: ObservationSchema, path: str | os.PathLike) -> Path:
    model = NamedInputStudent(student).eval()
    names = model.names
    if names != list(schema.group("student")):
        raise ExportError(f"student reads {names}, the schema's student group is {list(schema.group('student'))}")
    if OUTPUT in names:
        raise ExportError(f"a student field is named {OUTPUT!r}, the exported graph's output name")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, example_inputs(schema), str(path), input_names=names, output_names=[OUTPUT],
                      dynamic_axes={**{n: {0: "batch"} for n in names}, OUTPUT: {0: "batch"}}, dynamo=False)
    return path


def export_torchscript(student: nn.Module, schema: ObservationSchema, path: str | os.PathLike) -> Path:
    model = NamedInputStudent(student).eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    traced = torch.jit.trace(model, example_inputs(schema))
    traced.save(str(path))
    return path


class OnnxStudent:
    """An exported student loaded for deployment: checks names and shapes, then runs."""

    def __init__(self, path: str | os.PathLike, schema: ObservationSchema):
        import onnxruntime

        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.schema = schema
        self.names = [i.name for i in self.session.get_inputs()]
        expected = list(schema.group("student"))
        if self.names != expected:
            raise ExportError(f"{path}: inputs are {self.names}, the student fields are {expected}")
        for i in self.session.get_inputs():
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
        return torch.from_numpy(self.session.run([OUTPUT], feeds)[0])
