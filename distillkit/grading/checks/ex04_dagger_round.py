"""Exercise 04: beta mixing and one DAgger round; the mixture inside DAgger."""

from __future__ import annotations

from collections.abc import Callable

import torch

from distillkit.grading.checks.common import (
    ENVS,
    STUDENT_RETURN_THRESHOLD,
    STUDENT_ROUNDS,
    Checks,
    assert_close,
    dagger_student,
    fresh,
    shipped_teacher,
    student_return,
)
from distillkit.grading.record import graded


@graded
def check_mix_actions(mix_actions: Callable) -> None:
    checks = Checks("mix_actions")
    N, A = 4000, 2
    teacher = torch.full((N, A), 1.0)
    student = torch.arange(N * A, dtype=torch.float32).reshape(N, A) * -1.0 - 1.0    # all distinct, all < 0
    gen = lambda: torch.Generator().manual_seed(5)
    with checks.case("beta = 1: the teacher acts everywhere", "keep the teacher's action with probability beta"):
        assert_close(mix_actions(*fresh(teacher, student), 1.0, gen()), teacher, "mixed actions")
    with checks.case("beta = 0: the student acts everywhere", "with probability 1 - beta the student's action is executed"):
        assert_close(mix_actions(*fresh(teacher, student), 0.0, gen()), student, "mixed actions")
    with checks.case("whole action vectors are chosen per world",
                     "draw one coin per world (torch.rand(N, generator=generator) < beta) and pick the whole row"):
        mixed = mix_actions(*fresh(teacher, student), 0.3, gen())
        from_teacher = (mixed == teacher).all(-1)
        from_student = (mixed == student).all(-1)
        assert bool((from_teacher | from_student).all()), "some rows mix teacher and student components"
    with checks.case("beta = 0.3: about 30 % of the worlds follow the teacher",
                     "one coin per world, not one for the whole batch: True (teacher) with probability beta"):
        share = float((mix_actions(*fresh(teacher, student), 0.3, gen()) == teacher).all(-1).float().mean())
        assert 0.27 <= share <= 0.33, f"the teacher acts in {share:.1%} of the worlds"
    with checks.case("the same generator state gives the same mixture",
                     "draw the coins from the generator passed in (torch.rand(..., generator=generator))"):
        assert_close(mix_actions(*fresh(teacher, student), 0.3, gen()), mix_actions(*fresh(teacher, student), 0.3, gen()),
                     "mixed actions of a second call")
    checks.report()


@torch.no_grad()
def driven_trajectory(policy, steps: int, seed: int, num_envs: int) -> torch.Tensor:
    """joint_pos_rel along ``steps`` steps of the quick task driven by ``policy`` alone."""
    env = ENVS(num_envs)
    obs = env.reset(seed=seed)
    seen = []
    for _ in range(steps):
        seen.append(obs["joint_pos_rel"])
        obs = env.step(policy(obs)).obs
    env.close()
    return torch.stack(seen)


@graded
def check_dagger_round(dagger_round: Callable) -> None:
    from distillkit.students import MLPStudent

    checks = Checks("dagger_round")
    steps, N, seed = 40, 8, 11
    env = ENVS(N)
    teacher, _ = shipped_teacher(env)
    torch.manual_seed(0)
    student = MLPStudent(env.schema, env.action_dim).eval()
    teach = lambda obs: teacher(obs).detach()
    act = lambda obs: student(obs).detach()

    def one_round(beta, dataset):
        obs = env.reset(seed=seed)
        with torch.no_grad():
            return obs, dagger_round(env, teach, act, dataset, beta, *fresh(obs), torch.Generator().manual_seed(1),
                                    steps=steps)

    dataset: list = []
    with checks.case("one round appends (observations, labels) with one row per step and world",
                     "append a tuple: observations {field: (steps, N, ...)} stacked over steps, labels (steps, N, A)"):
        start, _ = one_round(0.5, dataset)
        assert len(dataset) == 1, f"the dataset has {len(dataset)} entries after one round"
        observations, labels = dataset[0]
        assert set(observations) == set(env.schema.names), f"fields {sorted(observations)}"
        assert tuple(observations["joint_pos_rel"].shape) == (steps, N, 3, 2), \
            f"joint_pos_rel has shape {tuple(observations['joint_pos_rel'].shape)}"
        assert tuple(labels.shape) == (steps, N, env.action_dim), f"labels have shape {tuple(labels.shape)}"
    first_round = "needs the first check to pass: one round must append (observations, labels)"
    with checks.case("the first recorded observation is the one the round starts from",
                     "record each observation before stepping the env with the action chosen for it"):
        assert dataset, first_round
        assert_close(dataset[0][0]["joint_pos_rel"][0], start["joint_pos_rel"], "first observation")
    with checks.case("every visited state is labelled by the teacher, whoever acted",
                     "label = teacher(obs) at every step, also where the student's action is executed"):
        assert dataset, first_round
        observations, labels = dataset[0]
        flat = {k: v.reshape(steps * N, *v.shape[2:]) for k, v in observations.items()}
        assert_close(labels.reshape(steps * N, -1), teach(flat), "labels", atol=1e-5)
    with checks.case("beta = 1 visits the teacher's states",
                     "execute the mixed action: with beta = 1 it is always the teacher's"):
        dataset = []
        one_round(1.0, dataset)
        assert dataset, first_round
        assert_close(dataset[-1][0]["joint_pos_rel"], driven_trajectory(teach, steps, seed, N), "visited joint_pos_rel")
    with checks.case("beta = 0 visits the student's own states (the point of DAgger)",
                     "step the env with the mixed action, not with the teacher's label"):
        dataset = []
        one_round(0.0, dataset)
        assert dataset, first_round
        assert_close(dataset[-1][0]["joint_pos_rel"], driven_trajectory(act, steps, seed, N), "visited joint_pos_rel")
    with checks.case("rounds are aggregated", "append to the dataset passed in; never replace earlier rounds"):
        dataset = []
        for beta in (1.0, 0.5, 0.0):
            one_round(beta, dataset)
        assert len(dataset) == 3, f"the dataset has {len(dataset)} entries after three rounds"
    env.close()
    checks.report()


@graded
def check_dagger_closed_loop(mix_actions: Callable) -> None:
    """The package's DAgger with the learner's mixture inside (the teacher drives the first round,
    the student the others): the executed actions follow beta, and the student balances alone."""
    checks = Checks("dagger_closed_loop")
    teacher_share: list[tuple[float, float]] = []      # (beta, share of worlds executing the teacher's action)

    def mix(teacher_action, student_action, beta, generator):     # the learner's mixture on copies
        mixed = mix_actions(*fresh(teacher_action, student_action), beta, generator)
        if isinstance(mixed, torch.Tensor) and mixed.shape == teacher_action.shape:
            teacher_share.append((beta, float((mixed == teacher_action).all(-1).float().mean())))
        return mixed

    try:
        student = dagger_student(mix=mix)
        failed = None
    except Exception as err:
        failed = err
    with checks.case("inside the package's DAgger, beta = 0 executes the student's action in every world",
                     "the teacher acts where the coin is below beta: with beta = 0 the student drives and meets "
                     "its own mistakes"):
        shares = [share for beta, share in teacher_share if beta == 0.0]
        if failed is not None and not shares:
            raise failed
        assert shares, "your mix_actions was never called with beta = 0"
        assert max(shares) == 0.0, f"with beta = 0 the teacher's action was executed in up to {max(shares):.0%} of the worlds"
    with checks.case(f"{STUDENT_ROUNDS} rounds of the package's DAgger with your mix_actions (beta = 1, then 0) give a "
                     f"student that balances alone (return >= {STUDENT_RETURN_THRESHOLD:g})",
                     "return the mixed actions as a tensor like teacher_action; with beta = 0 the student's own "
                     "states are visited and labelled"):
        if failed is not None:
            raise failed
        score = student_return(student)
        assert score >= STUDENT_RETURN_THRESHOLD, \
            f"mean return {score:.1f} on a held-out seed (the package's mixture gets ~269, doing nothing ~8)"
    checks.report()
