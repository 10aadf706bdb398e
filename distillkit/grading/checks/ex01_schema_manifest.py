"""Exercise 01: the cart-pole manifest and the leakage check."""

from __future__ import annotations

import functools
from collections.abc import Callable

from distillkit.grading.checks.common import ENVS, Checks, shipped_teacher_on, student_return
from distillkit.grading.record import graded


@functools.cache
def shipped_reasons() -> dict[str, str]:
    return {f.name: f.reason for f in ENVS.schema.fields}


def learner_manifest(cartpole_manifest: Callable):
    """The learner's manifest, checked to be an ObservationSchema of their own: the env's schema is
    the answer of exercise 01 and cannot be hidden from the learner (the env needs it), so a
    manifest whose reasons are the package's word for word was copied from it and fails."""
    from distillkit.schema import ObservationSchema

    schema = cartpole_manifest()
    assert isinstance(schema, ObservationSchema), f"expected an ObservationSchema, got {type(schema).__name__}"
    copied = [f.name for f in schema.fields if shipped_reasons().get(f.name) == f.reason]
    assert not copied, (f"the reasons of {copied} are the package's own cart-pole schema word for word: "
                        f"your manifest must be yours, not env.schema (it is the answer, so it scores 0)")
    return schema


@graded
def check_manifest(cartpole_manifest: Callable) -> None:
    """Unit checks of the learner's cart-pole manifest against the env's real observation."""
    checks = Checks("manifest")
    env = ENVS(4)
    obs = env.reset(seed=0)
    manifest = lambda: learner_manifest(cartpole_manifest)

    def role(name: str) -> str | None:
        return {f.name: f.role for f in manifest().fields}.get(name)

    with checks.case("returns an ObservationSchema", "build it with ObservationSchema(name, (Field(...), ...))"):
        manifest()
    with checks.case("names and shapes match what the env emits",
                     "one Field per observation key, shape of one sample; joint_pos_rel comes as the last 3 "
                     "samples: history_length=3"):
        manifest().validate_obs(obs, 4)
    with checks.case("joint_pos_rel is deployable",
                     "encoders on the cart slider and the pole hinge exist on the real robot: role 'student'"):
        assert role("joint_pos_rel") == "student", f"role of joint_pos_rel is {role('joint_pos_rel')!r}"
    with checks.case("joint_vel_rel is privileged and the teacher sees it",
                     "the real cart-pole has no velocity sensor: exact velocities are simulator state, "
                     "role 'teacher_only' (critic_only would hide them from the teacher actor)"):
        assert role("joint_vel_rel") == "teacher_only", f"role of joint_vel_rel is {role('joint_vel_rel')!r}"
    with checks.case("pole_mass is privileged and the teacher sees it",
                     "the pole mass is a hidden physics parameter randomised per episode: role 'teacher_only'"):
        assert role("pole_mass") == "teacher_only", f"role of pole_mass is {role('pole_mass')!r}"
    with checks.case("field order is the env's order (the teacher's input layout)",
                     "list the fields as the env emits them: joint_pos_rel, joint_vel_rel, pole_mass; a group's "
                     "field order is the order its fields are concatenated into a network's input"):
        names = list(manifest().names)
        assert names == list(env.schema.names), f"expected {list(env.schema.names)}, got {names}"
    env.close()
    checks.report()


@graded
def check_privileged_inputs(privileged_inputs: Callable) -> None:
    """Unit checks of the learner's leakage check on the shipped cart-pole schema and a schema
    with a critic-only field."""
    from distillkit.schema import Field, ObservationSchema

    checks = Checks("privileged_inputs")
    schema = ENVS.schema
    with checks.case("a student reading the student group leaks nothing", "return [] when every input is a student field"):
        got = privileged_inputs(list(schema.group("student")), schema)
        assert list(got) == [], f"expected [], got {got!r}"
    with checks.case("a network on the teacher group leaks joint_vel_rel and pole_mass",
                     "return every input whose role is not 'student'"):
        got = privileged_inputs(list(schema.group("teacher")), schema)
        assert list(got) == ["joint_vel_rel", "pole_mass"], f"expected ['joint_vel_rel', 'pole_mass'], got {got!r}"
    with checks.case("names come back in input order", "keep the order of input_names (it is the input layout)"):
        got = privileged_inputs(["pole_mass", "joint_pos_rel", "joint_vel_rel"], schema)
        assert list(got) == ["pole_mass", "joint_vel_rel"], f"expected ['pole_mass', 'joint_vel_rel'], got {got!r}"
    with_critic = ObservationSchema("with_critic", (
        Field("joint_pos", (2,), "student", "encoders"),
        Field("base_height", (1,), "critic_only", "simulator state for the value function only")))
    with checks.case("critic_only counts as privileged", "every role other than 'student' is privileged, critic_only too"):
        got = privileged_inputs(["joint_pos", "base_height"], with_critic)
        assert list(got) == ["base_height"], f"expected ['base_height'], got {got!r}"
    with checks.case("an unknown input name is an error",
                     "raise an error naming the unknown field: a typo must never hide a leak"):
        try:
            got = privileged_inputs(["joint_pos_rel", "pole_mas"], schema)
        except Exception as err:
            assert "pole_mas" in str(err), f"the error should name 'pole_mas', it says {err}"
        else:
            raise AssertionError(f"expected an error for the unknown field 'pole_mas', got {got!r}")
    checks.report()


@graded
def check_manifest_closed_loop(cartpole_manifest: Callable, privileged_inputs: Callable) -> None:
    """The shipped teacher balances the pole when its input is assembled by the learner's manifest,
    and the learner's leakage check, fed the networks' real input names, tells teacher from student."""
    from distillkit.students import MLPStudent

    checks = Checks("manifest_closed_loop")
    env = ENVS(1)
    with checks.case("the shipped teacher balances through your manifest's teacher group (return >= 200)",
                     "same fields, roles and order as the env: the teacher was trained on joint_pos_rel, "
                     "joint_vel_rel, pole_mass concatenated in that order"):
        score = student_return(shipped_teacher_on(learner_manifest(cartpole_manifest)))
        assert score >= 200.0, f"mean return {score:.1f} < 200 (the shipped schema gives ~262)"
    with checks.case("your check flags the teacher's inputs and passes the student's",
                     "privileged_inputs must report joint_vel_rel and pole_mass for the teacher, nothing for "
                     "a student built on your student group"):
        schema = learner_manifest(cartpole_manifest)
        teacher_inputs = list(schema.group("teacher"))
        student_inputs = list(MLPStudent(schema, env.action_dim).input.names)
        assert list(privileged_inputs(teacher_inputs, schema)) == ["joint_vel_rel", "pole_mass"], \
            f"teacher inputs {teacher_inputs}"
        assert list(privileged_inputs(student_inputs, schema)) == [], f"student inputs {student_inputs}"
    with checks.case("a student on your student group passes the counterfactual probe",
                     "changing only privileged state (the pole mass) must not change what the student sees"):
        from distillkit.leakage import counterfactual_probe

        result = counterfactual_probe(MLPStudent(learner_manifest(cartpole_manifest), env.action_dim), ENVS)
        assert result["passed"], result["detail"]
    env.close()
    checks.report()
