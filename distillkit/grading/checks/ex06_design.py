"""Exercise 06: the design exercise, on the flagship walker. The learner's schema, student choice,
mask rules and proof of student-only input are checked on the real walker env; the written
justifications are marked by an instructor with ``solutions/06_design_rubric.md``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from distillkit.envs import EnvFactory
from distillkit.grading.checks.common import Checks
from distillkit.grading.record import graded
from distillkit.tasks.walker import WalkerRough

WALKER = EnvFactory("walker_rough")
ACTION_DIM = WalkerRough.action_dim
#: privileged fields that decide the walker's episodes: the teacher *actor* must read them
DECISIVE = ("height_scan", "friction", "payload_mass")
#: 50 Hz control: a fall horizon of more than 1 s throws away whole strides of good teaching
MAX_FALL_HORIZON = 50


def learner_schema(walker_design: Callable):
    from distillkit.schema import ObservationSchema

    schema = walker_design()
    assert isinstance(schema, ObservationSchema), f"expected an ObservationSchema, got {type(schema).__name__}"
    return schema


@graded
def check_design_schema(walker_design: Callable) -> None:
    """The learner's schema against the walker's real observation and against what its robot can
    sense (the env's own roles say which quantities exist only in the simulator)."""
    checks = Checks("design_schema")
    env = WALKER(2)
    obs = env.reset(seed=0)
    truth = env.schema
    env.close()

    def roles() -> dict[str, str]:
        return {f.name: f.role for f in learner_schema(walker_design).fields}

    with checks.case("returns an ObservationSchema that builds",
                     "ObservationSchema('walker_rough', (Field(name, shape, role, reason, ...), ...)); read the "
                     "error message: it names the field and what is wrong"):
        learner_schema(walker_design)
    with checks.case("one field per observation the env emits, with its shape and history",
                     "the setup cell lists every name and its shape (worlds, history, *shape): the proprioceptive "
                     "fields and the robot's scan carry history_length=6"):
        learner_schema(walker_design).validate_obs(obs, 2)
    with checks.case("the student reads nothing the robot cannot sense",
                     "a field computed from the simulator's state (exact terrain, true velocity, contact "
                     "forces, hidden physics, generator labels, reward internals) cannot be a 'student' field"):
        leaks = [n for n, role in roles().items() if role == "student" and n in truth.privileged_names]
        assert not leaks, f"privileged quantities given to the student: {leaks}"
    with checks.case("the student keeps every sensor the robot has",
                     "joint encoders, the IMU, the command, the last actions and the robot's own depth scan are "
                     "measured on the real robot: role 'student' (a student without them cannot walk)"):
        lost = [n for n, role in roles().items() if role != "student" and n in truth.group("student")]
        assert not lost, f"deployable sensors hidden from the student: {lost}"
    with checks.case("the teacher actor reads what decides the episodes",
                     f"{', '.join(DECISIVE)}: role 'teacher_only' (a 'critic_only' field never reaches the actor, "
                     "so the teacher could not act on it)"):
        hidden = [n for n in DECISIVE if roles().get(n) != "teacher_only"]
        assert not hidden, f"not in the teacher's actor input: {hidden}"
    with checks.case("the reasons are your own, not the package's",
                     "the env's schema is the answer: write why each field has its role in your own words "
                     "(copied word for word from env.schema, a reason scores nothing)"):
        shipped = {f.name: f.reason for f in truth.fields}
        copied = [f.name for f in learner_schema(walker_design).fields if shipped.get(f.name) == f.reason]
        assert not copied, f"reasons copied word for word from the package's walker schema: {copied}"
    with checks.case("every field has its own reason",
                     "one line per field saying why it has its role (what sensor measures it, or why the robot "
                     "cannot); the same sentence pasted everywhere explains nothing"):
        reasons = [f.reason.strip() for f in learner_schema(walker_design).fields]
        short = [f.name for f in learner_schema(walker_design).fields if len(f.reason.split()) < 3]
        assert not short, f"reasons of fewer than 3 words: {short}"
        assert len(set(reasons)) == len(reasons), "some fields share one reason word for word"
    checks.report()


def student_from(walker_design: Callable, student_design: Callable) -> nn.Module:
    from distillkit.students import make_student

    architecture, options = student_design()
    torch.manual_seed(0)
    return make_student(architecture, learner_schema(walker_design), ACTION_DIM, **dict(options)).eval()


@graded
def check_design_student(walker_design: Callable, student_design: Callable) -> None:
    """A student of the learner's choice, built on the learner's schema, on the real walker: its
    inputs are deployable fields and it passes the counterfactual and poison probes."""
    from distillkit.leakage import counterfactual_probe, poison_test, schema_check
    from distillkit.students import ARCHITECTURES

    checks = Checks("design_student")
    with checks.case("student_design() names an architecture and its options",
                     f"return (architecture, options): one of {list(ARCHITECTURES)} and a dict of its options, "
                     "e.g. ('gru', {}) or ('estimator', {'fields': ['friction', 'payload_mass']})"):
        architecture, options = student_design()
        assert architecture in ARCHITECTURES, f"unknown architecture {architecture!r}"
        assert isinstance(options, dict), f"options must be a dict, got {type(options).__name__}"
        student_from(walker_design, student_design)
    with checks.case("the student can remember: it sees a history or has memory",
                     "friction and payload are only revealed by how the body answered the last actions: pick a "
                     "history, recurrent, latent or estimator student (an 'mlp' reads the current step only)"):
        assert student_design()[0] != "mlp", "an 'mlp' student reads the current observation only"
    with checks.case("the student's inputs are deployable fields", "build the student on your schema's student group"):
        student = student_from(walker_design, student_design)
        result = schema_check(list(student.input.names), WALKER.schema)
        assert result["passed"], result["detail"]
    with checks.case("counterfactual probe on the walker: privileged state changes, the student's action does not",
                     "no privileged field may reach the student's input, not even through the schema's student group"):
        result = counterfactual_probe(student_from(walker_design, student_design), WALKER, num_envs=4)
        assert result["passed"], result["detail"]
    with checks.case("poison probe on the walker: NaN in every privileged field changes nothing",
                     "the student's forward pass may not read any privileged tensor"):
        result = poison_test(student_from(walker_design, student_design), WALKER, num_envs=4, steps=30)
        assert result["passed"], result["detail"]
    checks.report()


def walker_rollout():
    """A real walker rollout in which both teacher and student drive and robots fall: a teacher that
    holds the default pose (it falls on rough ground) mixed half and half with a random student."""
    from distillkit.rollouts import collect

    env = WALKER(8)
    generator = torch.Generator().manual_seed(0)
    hold = lambda obs: torch.zeros(env.num_envs, env.action_dim)
    flail = lambda obs: torch.rand(env.num_envs, env.action_dim, generator=generator) * 2 - 1
    env.reset(seed=0)
    rollouts, _ = collect(env, hold, 120, student=flail, beta=0.5, generator=generator)
    env.close()
    return rollouts


@graded
def check_design_masks(mask_design: Callable) -> None:
    """The learner's mask rules, run on a real walker rollout by the package's make_mask."""
    from distillkit.masks import MaskRules, make_mask

    checks = Checks("design_masks")

    def rules() -> MaskRules:
        got = mask_design()
        assert isinstance(got, MaskRules), f"expected MaskRules, got {type(got).__name__}"
        return got

    with checks.case("returns MaskRules", "MaskRules(fall_horizon=..., timeouts=..., saturated=..., reset_transient=...)"):
        rules()
    with checks.case(f"the teacher's steps before a fall are excluded, within 1 s (1-{MAX_FALL_HORIZON} steps)",
                     "a teacher losing its balance teaches falling: set fall_horizon to a number of control steps "
                     "(50 Hz); None keeps them, and a horizon of seconds throws away whole strides"):
        horizon = rules().fall_horizon
        assert horizon is not None and 1 <= horizon <= MAX_FALL_HORIZON, f"fall_horizon={horizon!r}"
    with checks.case("the landing after a reset is excluded",
                     "for 0.2 s after a reset the robot settles in its default pose whatever the policy commands: "
                     "reset_transient=True"):
        assert rules().reset_transient, "reset_transient=False"
    with checks.case("on a real rollout your rules exclude the teacher's pre-fall steps and keep most steps",
                     "the rules are for the few bad targets, not for most of the data"):
        rollouts = walker_rollout()
        mask, counts = make_mask(rollouts, rules())
        assert counts.get("fall_horizon", 0) > 0, f"no pre-fall teacher step excluded: {counts}"
        assert counts["kept"] >= 0.5 * counts["total"], f"kept {counts['kept']} of {counts['total']} steps"
    checks.report()


class _ReadsPrivileged(nn.Module):
    """A leaky student: declares student inputs only, yet its forward pass reads the friction."""

    def __init__(self, student: nn.Module):
        super().__init__()
        self.student, self.input = student, student.input

    def forward(self, obs):
        return self.student(obs) + obs["friction"].reshape(-1, 1)


@graded
def check_design_proof(prove_student_only: Callable) -> None:
    """The learner's proof that a student receives no privileged state, run on three students: a
    clean one, one that declares a privileged input, and one that reads a privileged tensor
    without declaring it."""
    from distillkit.schema import ObservationSchema
    from distillkit.students import MLPStudent

    checks = Checks("design_proof")
    truth = WALKER.schema
    torch.manual_seed(0)
    clean = MLPStudent(truth, ACTION_DIM).eval()
    declared_schema = ObservationSchema(truth.name, tuple(
        dataclasses.replace(f, role="student") if f.name == "height_scan" else f for f in truth.fields))
    declared = MLPStudent(declared_schema, ACTION_DIM).eval()
    hidden = _ReadsPrivileged(MLPStudent(truth, ACTION_DIM)).eval()

    def verdict(student) -> bool:
        results = list(prove_student_only(student, WALKER))
        assert results and all(isinstance(r, dict) and {"check", "passed"} <= set(r) for r in results), \
            "return a list of check results, each a dict with at least 'check' and 'passed'"
        verdicts = [r["passed"] for r in results]
        assert all(isinstance(v, (bool, np.bool_)) for v in verdicts), \
            f"'passed' must be True or False, got {[type(v).__name__ for v in verdicts]}"
        return bool(all(verdicts))

    with checks.case("a clean student passes your proof", "every check must pass for a student on the student group"):
        assert verdict(clean), "your proof rejects a student that reads only student fields"
    with checks.case("a student that declares a privileged input fails your proof",
                     "compare the student's input names with the env's schema (distillkit.leakage.schema_check)"):
        assert not verdict(declared), "a student reading height_scan passed"
    with checks.case("a student that reads a privileged tensor without declaring it fails your proof",
                     "names are not enough: run the student on the env and change or poison only privileged "
                     "state (counterfactual_probe, poison_test)"):
        assert not verdict(hidden), "a student whose forward pass reads obs['friction'] passed"
    checks.report()
