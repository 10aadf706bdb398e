"""Proving that a student uses no privileged information.

Four checks, each returning ``{"check", "passed", "detail"}`` (and each shown catching a leaky
student in ``tests/test_leakage.py``):

a. **schema**: the student's input fields are student fields, none ``teacher_only`` or
   ``critic_only`` (a schema diff of its inputs against the privileged roles);
b. **counterfactual probe**: two simulator states that agree on every deployable quantity but
   differ in privileged ones (hidden physics parameters, terrain beyond the student's scan) must
   give identical student observations and identical student actions;
c. **poison**: filling every privileged tensor with NaN during a student rollout changes nothing;
d. **export**: the exported actor's input names are exactly the student fields.

:class:`StudentOnly` is the deployment-side guard: it hands the student only student fields and
refuses any privileged name outright.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from distillkit.envs import EnvFactory
from distillkit.policy import forget
from distillkit.schema import ObservationSchema


class LeakageError(RuntimeError):
    """A privileged field reached a place only deployable fields may reach."""


class StudentOnly:
    """Wraps a student for evaluation and deployment: it receives named fields, and any
    privileged name among them is an error, not something to drop quietly."""

    def __init__(self, student: nn.Module, schema: ObservationSchema):
        self.student, self.schema = student, schema
        self.names = schema.group("student")
        self.privileged = set(schema.privileged_names)

    @staticmethod
    def deployable(obs: dict[str, torch.Tensor], schema: ObservationSchema) -> dict[str, torch.Tensor]:
        """What a real robot would have: the student fields of an observation."""
        return {n: obs[n] for n in schema.group("student")}

    def __call__(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        leaked = sorted(n for n in obs if n in self.privileged)
        if leaked:
            raise LeakageError(f"privileged field(s) {leaked} reached the student-only policy; "
                               f"pass StudentOnly.deployable(obs) instead")
        missing = [n for n in self.names if n not in obs]
        if missing:
            raise LeakageError(f"student field(s) {missing} missing")
        return self.student(obs)

    def reset(self, done: torch.Tensor | None = None) -> None:
        forget(self.student, done)


def schema_check(input_names, schema: ObservationSchema) -> dict:
    """(a) The student's inputs against the schema's roles."""
    rows = [(n, schema.field(n).role if n in schema.names else "unknown") for n in input_names]
    bad = [f"{n} ({role})" for n, role in rows if role != "student"]
    return {"check": "schema", "passed": not bad,
            "detail": f"inputs {list(input_names)}" + (f"; not deployable: {bad}" if bad else ": all student fields")}


@torch.no_grad()
def counterfactual_probe(student: nn.Module, envs: EnvFactory, *, seed: int = 0, num_envs: int = 8,
                         warmup: int = 20) -> dict:
    """(b) Observe some worlds (sensor noise off), change only privileged quantities in them and
    observe the same state again: student observations and actions must not change. One env
    (built by ``envs``, closed), not two in lockstep, so the probe also runs where an engine
    allows one simulation per process (Isaac Lab)."""
    env = envs(num_envs, noise=False)
    try:
        perturb_privileged = env.feature("perturb_privileged", "the counterfactual leakage probe")
        env.reset(seed=seed)
        for _ in range(warmup):
            env.step(torch.zeros(num_envs, env.action_dim))
        obs_a = env.observe()
        perturb_privileged(np.arange(num_envs), seed=seed + 1)
        obs_b = env.observe()
        schema = env.schema
    finally:
        env.close()
    changed = [n for n in schema.privileged_names if not torch.equal(obs_a[n], obs_b[n])]
    same_inputs = all(torch.equal(obs_a[n], obs_b[n]) for n in schema.group("student"))
    forget(student)
    act_a = student(obs_a)
    forget(student)
    act_b = student(obs_b)
    same_actions = torch.equal(act_a, act_b)
    gap = float((act_a - act_b).abs().max())
    return {"check": "counterfactual", "passed": bool(changed) and same_inputs and same_actions,
            "detail": f"changed privileged fields {changed}; student inputs identical: {same_inputs}; "
                      f"max action difference {gap:.3g}"}


@torch.no_grad()
def poison_test(student: nn.Module, envs: EnvFactory, *, seed: int = 0, num_envs: int = 8, steps: int = 50) -> dict:
    """(c) The student in closed loop twice from the same seed (one env built by ``envs``, closed):
    once with clean observations, once with every privileged tensor filled with NaN. Its actions
    must be identical and finite."""
    env = envs(num_envs)
    try:
        schema = env.schema
        traces = []
        for poison in (False, True):
            obs = env.reset(seed=seed)
            forget(student)
            actions = []
            for _ in range(steps):
                seen = {k: (torch.full_like(v, math.nan) if poison and k in schema.privileged_names else v)
                        for k, v in obs.items()}
                action = student(seen)
                actions.append(action)
                result = env.step(torch.nan_to_num(action))
                forget(student, result.done)
                obs = result.obs
            traces.append(torch.stack(actions))
    finally:
        env.close()
    finite = bool(torch.isfinite(traces[1]).all())
    identical = finite and torch.equal(traces[0], traces[1])
    return {"check": "poison", "passed": identical,
            "detail": f"{steps} steps x {num_envs} worlds; poisoned actions finite: {finite}, identical: {identical}"}


def export_check(onnx_path, schema: ObservationSchema) -> dict:
    """(d) The exported graph's input names against the student fields."""
    import onnxruntime

    from distillkit.export import MEMORY

    names = [i.name for i in onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).get_inputs()]
    fields = names[:-1] if names[-1:] == [MEMORY] else names    # a recurrent student's own memory is no field
    expected = list(schema.group("student"))
    return {"check": "export", "passed": fields == expected,
            "detail": f"exported inputs {names}" + ("" if fields == expected else f"; student fields are {expected}")}
