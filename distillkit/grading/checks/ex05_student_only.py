"""Exercise 05: the student-only evaluation wrapper and the counterfactual probe."""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch

from distillkit.grading.checks.common import (
    ENVS,
    STUDENT_RETURN_THRESHOLD,
    Checks,
    assert_close,
    dagger_student,
    fresh,
    shipped_teacher,
    student_return,
)
from distillkit.grading.record import graded


@graded
def check_student_only(deployable: Callable, StudentOnlyPolicy: type) -> None:
    from distillkit.students import MLPStudent

    checks = Checks("student_only")
    env = ENVS(4)
    obs = env.reset(seed=0)
    schema = env.schema
    torch.manual_seed(0)
    student = MLPStudent(schema, env.action_dim).eval()
    with checks.case("deployable() keeps exactly the student fields",
                     "return {name: obs[name] for name in schema.group('student')}"):
        got = deployable(*fresh(obs), schema)
        assert list(got) == list(schema.group("student")), f"got fields {list(got)}"
        assert all(torch.equal(got[n], obs[n]) for n in got), "values changed"
    with checks.case("the wrapper runs the student on deployable fields",
                     "StudentOnlyPolicy(student, schema)(obs) returns student(obs)"):
        policy = StudentOnlyPolicy(student, schema)
        with torch.no_grad():
            assert_close(policy(deployable(*fresh(obs), schema)), student(obs), "actions")
    with checks.case("a privileged field is refused with an error naming it",
                     "raise (LeakageError) when any key of obs is privileged; never drop it quietly"):
        policy = StudentOnlyPolicy(student, schema)
        try:
            policy(*fresh(obs))
        except Exception as err:
            assert "joint_vel_rel" in str(err) and "pole_mass" in str(err), f"the error should name both fields: {err}"
        else:
            raise AssertionError("the full observation (with joint_vel_rel and pole_mass) was accepted")
    with checks.case("a missing student field is an error naming it", "check every name of schema.group('student') is there"):
        policy = StudentOnlyPolicy(student, schema)
        try:
            policy({})
        except Exception as err:
            assert "joint_pos_rel" in str(err), f"the error should name joint_pos_rel: {err}"
        else:
            raise AssertionError("an empty observation was accepted")
    with checks.case("reset(done) reaches the student",
                     "forward reset(done) to the student (distillkit.policy.forget does it for any policy)"):
        from distillkit.students import HistoryStudent

        # seen through the actions (the data the grader gets back): after reset(done) a world's
        # observation history restarts, so its next action is the one of a fresh episode
        torch.manual_seed(1)
        history = HistoryStudent(schema, env.action_dim, history=2).eval()
        twin = copy.deepcopy(history)
        later = env.step(torch.zeros(env.num_envs, env.action_dim)).obs
        done = torch.tensor([True, False, False, False])
        policy = StudentOnlyPolicy(history, schema)
        with torch.no_grad():
            policy({n: obs[n] for n in schema.group("student")})
            policy.reset(done)
            got = policy({n: later[n] for n in schema.group("student")})
            twin(obs)
            twin.reset(done)
            assert_close(got, twin(later), "actions after reset(done) (world 0 restarted)")
    env.close()
    checks.report()


def probe_env():
    """The quick task without sensor noise: two observations of one state then differ only where the state does."""
    return ENVS(8, noise=False)


@graded
@torch.no_grad()
def check_counterfactual_probe(action_change_without_privilege: Callable) -> None:
    from distillkit.students import MLPStudent

    checks = Checks("counterfactual_probe")
    env = probe_env()
    teacher, _ = shipped_teacher(env)
    env.close()
    torch.manual_seed(0)
    student = MLPStudent(ENVS.schema, 1).eval()

    def reference(policy, seed: int = 0, warmup: int = 20) -> float:
        env = probe_env()
        env.reset(seed=seed)
        for _ in range(warmup):
            env.step(torch.zeros(env.num_envs, env.action_dim))
        before = policy(env.observe())
        env.perturb_privileged(np.arange(env.num_envs), seed=seed + 1)
        return float((policy(env.observe()) - before).abs().max())

    with checks.case("the shipped teacher's action changes with the pole mass alone",
                     "change only privileged state between the two observations: "
                     "env.perturb_privileged(np.arange(env.num_envs), seed=seed + 1)"):
        gap = float(action_change_without_privilege(teacher, probe_env()))
        assert gap > 1e-3, f"largest action change {gap:.3g}; the teacher reads pole_mass, it must react"
    with checks.case("a student on the student group does not react at all",
                     "observe the same state again with env.observe(), without stepping: a step moves the "
                     "robot, and then even a deployable student's action changes"):
        gap = float(action_change_without_privilege(student, probe_env()))
        assert gap == 0.0, f"largest action change {gap:.3g}, expected exactly 0"
    with checks.case("the probe measures the state the spec describes",
                     "env.reset(seed=seed), warmup steps of zero actions, observe, perturb with seed + 1, observe; "
                     "return the largest absolute action difference"):
        for seed in (0, 4):
            got = float(action_change_without_privilege(teacher, probe_env(), seed=seed))
            want = reference(teacher, seed=seed)
            assert abs(got - want) <= 1e-5, f"seed {seed}: expected {want:.6g}, got {got:.6g}"
    checks.report()


@graded
def check_student_only_closed_loop(deployable: Callable, StudentOnlyPolicy: type) -> None:
    from distillkit.students import MLPStudent

    checks = Checks("student_only_closed_loop")
    schema = ENVS.schema
    with checks.case(f"a DAgger student evaluated through your wrapper balances (return >= {STUDENT_RETURN_THRESHOLD:g})",
                     "deployable(obs, schema) is what the wrapper is handed at every step"):
        env = ENVS(1)
        obs = env.reset(seed=0)
        env.close()
        torch.manual_seed(0)
        StudentOnlyPolicy(MLPStudent(schema, 1).eval(), schema)(deployable(*fresh(obs), schema))  # runs at all?
        student = dagger_student()        # only then is the student trained (in the sandbox and in the replay)
        score = student_return(StudentOnlyPolicy(student, schema), observe=lambda obs: deployable(obs, schema))
        assert score >= STUDENT_RETURN_THRESHOLD, f"mean return {score:.1f} on a held-out seed"
    with checks.case("the shipped teacher cannot be evaluated through your wrapper",
                     "the teacher needs joint_vel_rel and pole_mass: handed the full observation the wrapper must "
                     "refuse them"):
        env = ENVS(1)
        teacher, _ = shipped_teacher(env)
        env.close()
        try:
            student_return(StudentOnlyPolicy(teacher, schema))
        except Exception as err:
            assert "pole_mass" in str(err), f"refused, but the error does not name pole_mass: {err}"
        else:
            raise AssertionError("the teacher ran with its privileged inputs through the wrapper")
    checks.report()
