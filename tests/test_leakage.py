"""Each leakage check passes for an honest student and catches a deliberately leaky one."""

import pytest
import torch

from distillkit.envs import EnvFactory, make_env
from distillkit.export import MEMORY, ExportError, OnnxStudent, export_onnx, export_torchscript
from distillkit.leakage import (
    LeakageError,
    StudentOnly,
    counterfactual_probe,
    export_check,
    poison_test,
    schema_check,
)
from distillkit.models import GroupInput, mlp
from distillkit.students import GRUStudent, HistoryStudent, MLPStudent


class LeakyStudent(MLPStudent):
    """Reads the teacher group: what a careless config (or rsl_rl's fallback) produces."""

    def __init__(self, schema, action_dim):
        super().__init__(schema, action_dim, hidden=(32,))
        self.input = GroupInput(schema, "teacher")
        self.mlp = mlp(self.input.size, (32,), action_dim)


def students(task):
    env = make_env(task, 4)
    torch.manual_seed(0)
    honest, leaky = MLPStudent(env.schema, env.action_dim, hidden=(32,)), LeakyStudent(env.schema, env.action_dim)
    obs = env.reset(seed=0)
    for s in (honest, leaky):                 # give the normalisers realistic statistics
        s.input.normalizer.update(s.input.flat(obs))
    return env.schema, honest.eval(), leaky.eval()


@pytest.mark.parametrize("task", ["cartpole", "walker_rough"])
def test_schema_check(task):
    schema, honest, leaky = students(task)
    assert schema_check(honest.input.names, schema)["passed"]
    result = schema_check(leaky.input.names, schema)
    assert not result["passed"] and "teacher_only" in result["detail"]


@pytest.mark.parametrize("task", ["cartpole", "walker_rough"])
def test_counterfactual_probe(task):
    schema, honest, leaky = students(task)
    ok = counterfactual_probe(honest, EnvFactory(task))
    assert ok["passed"], ok
    bad = counterfactual_probe(leaky, EnvFactory(task))
    assert not bad["passed"] and "student inputs identical: True" in bad["detail"], bad


def test_counterfactual_probe_changes_terrain_only_beyond_the_student_scan():
    schema, honest, _ = students("walker_rough")
    result = counterfactual_probe(honest, EnvFactory("walker_rough"))
    assert "height_scan" in result["detail"] and "friction" in result["detail"]


@pytest.mark.parametrize("task", ["cartpole", "walker_rough"])
def test_poison_test(task):
    schema, honest, leaky = students(task)
    assert poison_test(honest, EnvFactory(task), steps=20)["passed"]
    bad = poison_test(leaky, EnvFactory(task), steps=20)
    assert not bad["passed"] and "finite: False" in bad["detail"]


def test_export_check_and_onnx_matches_torch(tmp_path):
    schema, honest, leaky = students("walker_rough")
    path = export_onnx(honest, schema, tmp_path / "student.onnx")
    assert export_check(path, schema)["passed"]
    env = make_env("walker_rough", 5)
    obs = env.reset(seed=3)
    deployed = OnnxStudent(path, schema)
    assert torch.allclose(deployed(StudentOnly.deployable(obs, schema)), honest(obs), atol=1e-5)
    traced = torch.jit.load(export_torchscript(honest, schema, tmp_path / "student.pt"))
    assert torch.allclose(traced(*[obs[n] for n in schema.group("student")]), honest(obs), atol=1e-5)
    with pytest.raises(ExportError, match="student reads .*height_scan"):
        export_onnx(leaky, schema, tmp_path / "leaky.onnx")


@pytest.mark.parametrize("architecture", ["gru", "history"])
def test_a_student_with_memory_exports_one_step_with_it(tmp_path, architecture):
    """A GRU or stacked-history student's graph: student fields + its memory in, action + next
    memory out; deployed in closed loop (memory fed back, reset at episode starts: an untrained
    student falls within these 120 steps) it acts as the torch student."""
    env = make_env("walker_rough", 4)
    torch.manual_seed(0)
    student = (GRUStudent(env.schema, env.action_dim, hidden_size=16) if architecture == "gru"
               else HistoryStudent(env.schema, env.action_dim, hidden=(32,), history=3)).eval()
    obs = env.reset(seed=0)
    student.input.normalizer.update(student.input.flat(obs))
    path = export_onnx(student, env.schema, tmp_path / f"{architecture}.onnx")
    assert export_check(path, env.schema)["passed"]
    deployed = OnnxStudent(path, env.schema)
    assert deployed.recurrent and deployed.names == list(env.schema.group("student"))
    student.reset()
    restarted = torch.zeros(4, dtype=torch.bool)
    for _ in range(120):
        action = student(obs)
        assert torch.allclose(deployed(StudentOnly.deployable(obs, env.schema)), action, atol=1e-5)
        result = env.step(action)
        obs = result.obs
        student.reset(result.done)
        deployed.reset(result.done)
        restarted |= result.done
    assert restarted.any(), "no episode restarted: the memory's reset went untested"
    traced = torch.jit.load(export_torchscript(student, env.schema, tmp_path / f"{architecture}.pt"))
    memory = torch.zeros(4, student.memory_size)
    assert torch.allclose(traced(*[obs[n] for n in env.schema.group("student")], memory)[0],
                          student.step(obs, memory)[0], atol=1e-5)


def test_export_check_catches_a_graph_with_privileged_inputs(tmp_path):
    schema, _, leaky = students("cartpole")
    names = list(leaky.input.names)
    class Named(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.leaky = leaky
        def forward(self, *fields):
            return self.leaky(dict(zip(names, fields)))
    example = tuple(torch.zeros(1, *schema.field(n).obs_shape) for n in names)
    torch.onnx.export(Named(), example, str(tmp_path / "leaky.onnx"), input_names=names, output_names=["out"], dynamo=False)
    result = export_check(tmp_path / "leaky.onnx", schema)
    assert not result["passed"] and "joint_vel_rel" in result["detail"]
    # a memory input does not excuse a privileged one
    memory_graph = tmp_path / "leaky_memory.onnx"
    torch.onnx.export(Named(), example, str(memory_graph), input_names=names[:-1] + [MEMORY], output_names=["out"],
                      dynamo=False)
    assert not export_check(memory_graph, schema)["passed"]
    with pytest.raises(ExportError, match="inputs are .*joint_vel_rel"):
        OnnxStudent(tmp_path / "leaky.onnx", schema)


def test_student_only_wrapper_refuses_privileged_names():
    schema, honest, _ = students("walker_rough")
    obs = make_env("walker_rough", 2).reset(seed=0)
    guarded = StudentOnly(honest, schema)
    assert guarded(StudentOnly.deployable(obs, schema)).shape == (2, 6)
    with pytest.raises(LeakageError, match="privileged field\\(s\\) \\['base_lin_vel', 'feet_air_time'"):
        guarded(obs)
    with pytest.raises(LeakageError, match="missing"):
        guarded({"joint_pos": obs["joint_pos"]})


def test_export_refuses_a_teacher_actor_for_its_inputs(tmp_path):
    """Chapter 5's demo: the teacher's actor offered for export is refused, naming what it reads."""
    from distillkit.artifacts import shipped_teacher
    from distillkit.train import load_actor

    env = make_env("cartpole", 1)
    teacher, _, _ = load_actor(shipped_teacher("cartpole"), env)
    with pytest.raises(ExportError, match="student reads .*joint_vel_rel"):
        export_onnx(teacher, env.schema, tmp_path / "leaky.onnx")
