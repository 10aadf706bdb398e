"""Check helpers for the graded exercises: one function per check cell.

Every helper runs a list of small checks on deterministic inputs, with tolerances, against the
learner's functions. It prints exactly one stable line when all pass,

    PASS <name>: k/k checks

and otherwise raises :class:`CheckFailed` naming each failed check with a hint. That line is the
check cell's stored output in the exercise, so nbval (``--nbval-lax``, cells marked
``# NBVAL_CHECK_OUTPUT``) fails the cell on any exception and on any other output. Whatever the
learner's code prints while it is checked is swallowed, so a debugging ``print`` cannot fail a
correct answer.

The ``*_closed_loop`` helpers run the learner's code inside the real pipeline on the quick task
(the shipped cart-pole teacher, the MuJoCo engine, held-out seeds) and check what comes out: a
student that balances the pole, a teacher that balances through the learner's manifest.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import warnings
from collections.abc import Callable, Iterator

import numpy as np
import torch

from distillkit.envs import make_env
from distillkit.envs.base import executed

TASK = "cartpole"


class CheckFailed(AssertionError):
    """Some checks of an exercise failed; the message lists each with what was expected and a hint."""


class Checks:
    """The checks of one check cell. ``with checks.case(what, hint):`` runs one check: an
    AssertionError or any exception from the learner's code inside it fails that check."""

    def __init__(self, name: str):
        self.name = name
        self.total = 0
        self.failures: list[str] = []

    @contextlib.contextmanager
    def case(self, what: str, hint: str) -> Iterator[None]:
        self.total += 1
        try:
            with quiet():
                yield
        except AssertionError as err:
            self.failures.append(f"- {what}: {err}\n  hint: {hint}")
        except Exception as err:       # the learner's code raised: that check fails, the others still run
            raised = "not written yet (NotImplementedError)" if isinstance(err, NotImplementedError) else \
                f"your code raised {type(err).__name__}: {err}"
            self.failures.append(f"- {what}: {raised}\n  hint: {hint}")

    def report(self) -> None:
        if self.failures:
            passed = self.total - len(self.failures)
            raise CheckFailed(f"FAIL {self.name}: {passed}/{self.total} checks passed\n" + "\n".join(self.failures))
        print(f"PASS {self.name}: {self.total}/{self.total} checks")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Swallow prints and warnings of the code under test: the check cell's output must be the PASS line."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def assert_close(got, expected: torch.Tensor, what: str, atol: float = 1e-5) -> None:
    """``got`` must be a tensor of ``expected``'s shape, equal within ``atol``."""
    assert isinstance(got, torch.Tensor), f"{what}: expected a torch.Tensor, got {type(got).__name__}"
    assert tuple(got.shape) == tuple(expected.shape), \
        f"{what}: expected shape {tuple(expected.shape)}, got {tuple(got.shape)}"
    gap = (got.detach().double() - expected.double()).abs()
    if gap.numel() and not bool(gap.max() <= atol):       # NaN fails too
        where = tuple(int(i) for i in torch.nonzero(~(gap <= atol))[0])
        raise AssertionError(f"{what}: at index {where} expected {float(expected[where]):.6g}, "
                             f"got {float(got.detach()[where]):.6g} (tolerance {atol:g})")


# --------------------------------------------------------------------------- the quick task's pieces
def shipped_teacher(env):
    """The shipped cart-pole teacher's actor and critic, checked against ``env``'s schema."""
    from distillkit.artifacts import load_tensors, shipped_teacher
    from distillkit.models import Critic
    from distillkit.ppo import PPOConfig
    from distillkit.train import load_actor

    folder = shipped_teacher(TASK)
    actor, manifest, _ = load_actor(folder, env)
    ppo = PPOConfig(**manifest["ppo"])
    critic = Critic(env.schema, ppo.critic_group, ppo.critic_hidden)
    critic.load_state_dict(load_tensors(folder, "critic", manifest))
    return actor, critic.eval()


def shipped_teacher_on(schema):
    """The shipped teacher's weights in an actor that reads its input through ``schema``'s teacher
    group: same weights, but the fields are concatenated as ``schema`` orders them."""
    from distillkit.artifacts import load_tensors, read_manifest, shipped_teacher
    from distillkit.models import Actor
    from distillkit.ppo import PPOConfig

    folder = shipped_teacher(TASK)
    manifest = read_manifest(folder)
    ppo = PPOConfig(**manifest["ppo"])
    actor = Actor(schema, ppo.actor_group, 1, ppo.actor_hidden, ppo.init_std)
    actor.load_state_dict(load_tensors(folder, "actor", manifest))
    return actor.eval()


def student_return(policy, *, observe=lambda obs: obs, num_envs: int = 32) -> float:
    """Mean return of ``policy`` alone, one episode per world, on the first held-out seed."""
    from distillkit.evaluate import evaluate_policy, held_out_seeds

    return float(evaluate_policy(policy, TASK, held_out_seeds(1), num_envs=num_envs, observe=observe)["return"].mean())


# Closed-loop budgets: DAgger on the quick task (4 rounds, the first driven by the teacher) takes
# ~7 s on one core; the shipped teacher scores ~262 and a policy that does nothing ~8 (max 300).
DAGGER_ROUNDS, STEPS_PER_ROUND, GRAD_STEPS, NUM_ENVS = 4, 150, 200, 32
STUDENT_RETURN_THRESHOLD = 150.0


def train_on_dataset(student, dataset: list[tuple[dict, torch.Tensor]], grad_steps: int = GRAD_STEPS,
                     *, seed: int = 0, batch: int = 512, lr: float = 1e-3) -> None:
    """Fit an MLP ``student`` to the teacher's labels in ``dataset`` (a list of rounds, each
    ``(observations {field: (T, N, ...)}, labels (T, N, A))``): the normaliser takes in the newest
    round, then ``grad_steps`` Adam steps on random minibatches of all rounds (mean squared
    error to the executed, i.e. clipped, label)."""
    flat = lambda x: x.reshape(-1, *x.shape[2:])
    newest_obs, _ = dataset[-1]
    student.input.normalizer.update(student.input.flat({k: flat(v) for k, v in newest_obs.items()}))
    obs = {k: torch.cat([flat(o[k]) for o, _ in dataset]) for k in newest_obs}
    labels = executed(torch.cat([flat(lab) for _, lab in dataset]))
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(student.parameters(), lr=lr)
    for _ in range(grad_steps):
        idx = torch.randint(len(labels), (batch,), generator=generator)
        loss = ((student({k: v[idx] for k, v in obs.items()}) - labels[idx]) ** 2).sum(-1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


# ======================================================================= 01: schema manifest and leakage
def check_manifest(cartpole_manifest: Callable) -> None:
    """Unit checks of the learner's cart-pole manifest against the env's real observation."""
    from distillkit.schema import ObservationSchema

    checks = Checks("manifest")
    env = make_env(TASK, 4)
    obs = env.reset(seed=0)

    def manifest() -> ObservationSchema:
        schema = cartpole_manifest()
        assert isinstance(schema, ObservationSchema), f"expected an ObservationSchema, got {type(schema).__name__}"
        return schema

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


def check_privileged_inputs(privileged_inputs: Callable) -> None:
    """Unit checks of the learner's leakage check on the shipped cart-pole schema and a schema
    with a critic-only field."""
    from distillkit.schema import Field, ObservationSchema

    checks = Checks("privileged_inputs")
    schema = make_env(TASK, 1).schema
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


def check_manifest_closed_loop(cartpole_manifest: Callable, privileged_inputs: Callable) -> None:
    """The shipped teacher balances the pole when its input is assembled by the learner's manifest,
    and the learner's leakage check, fed the networks' real input names, tells teacher from student."""
    from distillkit.students import MLPStudent

    checks = Checks("manifest_closed_loop")
    env = make_env(TASK, 1)
    with checks.case("the shipped teacher balances through your manifest's teacher group (return >= 200)",
                     "same fields, roles and order as the env: the teacher was trained on joint_pos_rel, "
                     "joint_vel_rel, pole_mass concatenated in that order"):
        score = student_return(shipped_teacher_on(cartpole_manifest()))
        assert score >= 200.0, f"mean return {score:.1f} < 200 (the shipped schema gives ~262)"
    with checks.case("your check flags the teacher's inputs and passes the student's",
                     "privileged_inputs must report joint_vel_rel and pole_mass for the teacher, nothing for "
                     "a student built on your student group"):
        schema = cartpole_manifest()
        teacher_inputs = list(schema.group("teacher"))
        student_inputs = list(MLPStudent(schema, env.action_dim).input.names)
        assert list(privileged_inputs(teacher_inputs, schema)) == ["joint_vel_rel", "pole_mass"], \
            f"teacher inputs {teacher_inputs}"
        assert list(privileged_inputs(student_inputs, schema)) == [], f"student inputs {student_inputs}"
    with checks.case("a student on your student group passes the counterfactual probe",
                     "changing only privileged state (the pole mass) must not change what the student sees"):
        from distillkit.leakage import counterfactual_probe

        result = counterfactual_probe(MLPStudent(cartpole_manifest(), env.action_dim), TASK)
        assert result["passed"], result["detail"]
    env.close()
    checks.report()


# ============================================================================ 02: GAE with time-outs
def reference_gae(rewards, values, dones, last_values, gamma, lam):
    from distillkit.ppo import compute_gae

    return compute_gae(rewards, values, dones, last_values, gamma, lam)


def check_gae(gae: Callable) -> None:
    checks = Checks("gae")
    g = torch.Generator().manual_seed(2)
    T, N = 7, 5
    rewards, values = torch.randn(T, N, generator=g), torch.randn(T, N, generator=g)
    last_values = torch.randn(N, generator=g)
    no_dones = torch.zeros(T, N, dtype=torch.bool)
    dones = torch.rand(T, N, generator=g) < 0.25
    with checks.case("returns (advantages, returns) of shape (T, N) with returns = advantages + values",
                     "return two tensors; returns are the critic's regression targets A_t + V(o_t)"):
        adv, ret = gae(rewards, values, no_dones, last_values, 0.99, 0.95)
        assert tuple(adv.shape) == (T, N) and tuple(ret.shape) == (T, N), \
            f"shapes {tuple(adv.shape)}, {tuple(ret.shape)}"
        assert_close(ret, adv + values, "returns - advantages - values")
    with checks.case("one step: A = r + gamma * V(next) - V",
                     "delta_t = r_t + gamma * V(o_{t+1}) - V(o_t); after the last step V(o_{t+1}) is last_values"):
        adv, _ = gae(torch.tensor([[1.0]]), torch.tensor([[0.5]]), torch.tensor([[False]]), torch.tensor([2.0]), 0.9, 0.95)
        assert_close(adv, torch.tensor([[1.0 + 0.9 * 2.0 - 0.5]]), "advantage")
    with checks.case("a done step does not bootstrap: A = r - V",
                     "multiply gamma * V(next) by (1 - done_t): the next observation belongs to a new episode"):
        adv, _ = gae(torch.tensor([[1.0]]), torch.tensor([[0.5]]), torch.tensor([[True]]), torch.tensor([2.0]), 0.9, 0.95)
        assert_close(adv, torch.tensor([[0.5]]), "advantage")
    with checks.case("lambda = 0 gives the one-step TD errors",
                     "A_t = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}: with lambda = 0 nothing is carried"):
        adv, _ = gae(rewards, values, no_dones, last_values, 0.99, 0.0)
        next_values = torch.cat([values[1:], last_values[None]])
        assert_close(adv, rewards + 0.99 * next_values - values, "advantages")
    with checks.case("gamma = lambda = 1 gives the return to go plus the final value, minus V",
                     "go backwards in time and carry the advantage: A_t = delta_t + gamma * lambda * A_{t+1}"):
        adv, _ = gae(rewards, values, no_dones, last_values, 1.0, 1.0)
        to_go = rewards.flip(0).cumsum(0).flip(0) + last_values
        assert_close(adv, to_go - values, "advantages", atol=1e-4)
    with checks.case("nothing is carried across an episode end",
                     "multiply the carried advantage by (1 - done_t) as well, not only the bootstrap"):
        adv, _ = gae(rewards, values, dones, last_values, 0.99, 0.95)
        assert_close(adv, reference_gae(rewards, values, dones, last_values, 0.99, 0.95)[0], "advantages")
    checks.report()


def check_bootstrap(bootstrap_timeouts: Callable) -> None:
    checks = Checks("timeout_bootstrap")
    rewards = torch.tensor([[1.0, 1.0, 1.0], [0.5, -2.0, 1.0]])
    truncated = torch.tensor([[False, False, True], [True, False, False]])
    final_values = torch.tensor([[7.0, 8.0, 10.0], [20.0, 30.0, 40.0]])
    expected = rewards + 0.9 * final_values * truncated
    with checks.case("a time-out adds gamma * V(final observation)",
                     "the episode was cut, not ended: add gamma * final_values where truncated"):
        assert_close(bootstrap_timeouts(rewards.clone(), truncated, final_values, 0.9)[truncated],
                     expected[truncated], "rewards at time-outs")
    with checks.case("other steps keep their reward",
                     "add nothing where truncated is False (falls are real ends; ordinary steps bootstrap in GAE)"):
        assert_close(bootstrap_timeouts(rewards.clone(), truncated, final_values, 0.9)[~truncated],
                     expected[~truncated], "rewards elsewhere")
    with checks.case("the input rewards are left as they were",
                     "return a new tensor (rewards + ...), do not add in place: the raw rewards are logged"):
        before = rewards.clone()
        bootstrap_timeouts(rewards, truncated, final_values, 0.9)
        assert torch.equal(rewards, before), "rewards were modified in place"
    checks.report()


@torch.no_grad()
def check_gae_closed_loop(gae: Callable, bootstrap_timeouts: Callable) -> None:
    """The learner's bootstrap and GAE inside the package's PPO rollout, with the shipped teacher's
    actor and critic, long enough that every surviving episode times out; each against the same
    rollout computed with PPO's own function, the other function being PPO's in both."""
    from distillkit.artifacts import read_manifest
    from distillkit.artifacts import shipped_teacher as shipped_folder
    from distillkit.ppo import PPO, PPOConfig, compute_gae
    from distillkit.ppo import bootstrap_timeouts as reference_bootstrap

    checks = Checks("gae_closed_loop")
    env = make_env(TASK, 16)
    actor, critic = shipped_teacher(env)
    config = dataclasses.replace(PPOConfig(**read_manifest(shipped_folder(TASK))["ppo"]),
                                 steps_per_env=310, gamma=0.99, lam=0.95)     # episodes last 300 control steps

    def rollout(bootstrap: Callable, advantages: Callable) -> dict:
        ppo = PPO(env, config, bootstrap=bootstrap, advantages=advantages)
        ppo.actor.load_state_dict(actor.state_dict())
        ppo.critic.load_state_dict(critic.state_dict())
        torch.manual_seed(3)                      # the same sampled actions, so the same rollout
        return ppo.collect(env.reset(seed=3))[0]

    expected = rollout(reference_bootstrap, compute_gae)
    with checks.case("your bootstrap on a real rollout (every surviving episode times out)",
                     "V(final observation) comes from the observation the env returns before its auto-reset"):
        got = rollout(bootstrap_timeouts, compute_gae)
        assert_close(got["rewards"], expected["rewards"], "bootstrapped rewards", atol=1e-4)
    with checks.case("your advantages and returns on the real rollout match PPO's",
                     "dones = terminated or truncated; time-outs are in the rewards already"):
        got = rollout(reference_bootstrap, gae)
        assert_close(got["advantages"], expected["advantages"], "advantages", atol=1e-3)
        assert_close(got["returns"], expected["returns"], "returns", atol=1e-3)
    env.close()
    checks.report()


# ==================================================================== 03: masked distillation loss
def check_masked_loss(masked_loss: Callable) -> None:
    checks = Checks("masked_loss")
    g = torch.Generator().manual_seed(3)
    T, N, A = 6, 4, 3
    pred, target = torch.randn(T, N, A, generator=g), torch.randn(T, N, A, generator=g)
    mask = torch.rand(T, N, generator=g) < 0.6
    per_step = ((pred - target) ** 2).sum(-1)
    with checks.case("returns a scalar tensor", "return a 0-dim torch tensor (not .item()): it is back-propagated"):
        value = masked_loss(pred, target, torch.ones(T, N, dtype=torch.bool))
        assert isinstance(value, torch.Tensor) and value.dim() == 0, f"got {value!r}"
    with checks.case("every step kept, one action dimension: the mean squared error",
                     "per step: squared error; then the mean over steps"):
        assert_close(masked_loss(pred[..., :1], target[..., :1], torch.ones(T, N, dtype=torch.bool)),
                     ((pred[..., 0] - target[..., 0]) ** 2).mean(), "loss")
    with checks.case("errors add up over action dimensions and average over steps",
                     "sum the squared error over the action dimensions, then average over steps "
                     "(a mean over every element would divide by A too)"):
        assert_close(masked_loss(pred, target, torch.ones(T, N, dtype=torch.bool)), per_step.mean(), "loss")
    with checks.case("masked steps do not count, however wrong",
                     "multiply each step's error by the mask"):
        wild = target.clone()
        wild[~mask] += 1000.0
        assert_close(masked_loss(pred, wild, mask), per_step[mask].mean(), "loss", atol=1e-4)
    with checks.case("the average is over kept steps only",
                     "divide by the number of kept steps (mask.sum()), not by T * N"):
        assert_close(masked_loss(pred, target, mask), per_step[mask].mean(), "loss")
    with checks.case("no kept step gives 0, not NaN", "divide by the number of kept steps clamped to at least 1"):
        assert_close(masked_loss(pred, target, torch.zeros(T, N, dtype=torch.bool)), torch.tensor(0.0), "loss")
    with checks.case("masked steps get no gradient, kept steps the right one",
                     "compute it with torch operations on pred (no .detach(), no numpy)"):
        p = pred.clone().requires_grad_(True)
        masked_loss(p, target, mask).backward()
        expected = 2 * (pred - target) * mask[..., None] / mask.sum()
        assert_close(p.grad, expected, "gradient", atol=1e-5)
    checks.report()


def dagger_student(loss: Callable | None = None):
    """A DAgger student of the shipped teacher on the quick task (4 rounds, the teacher drives the
    first), trained by the package's DAgger with ``loss(pred, target, mask)`` in place of its
    masked loss (None: the package's own)."""
    from distillkit.dagger import DaggerConfig, dagger
    from distillkit.students import MLPStudent

    env = make_env(TASK, NUM_ENVS)
    teacher, _ = shipped_teacher(env)
    torch.manual_seed(0)
    student = MLPStudent(env.schema, env.action_dim)
    config = DaggerConfig(rounds=DAGGER_ROUNDS, steps_per_round=STEPS_PER_ROUND, schedule="first", grad_steps=GRAD_STEPS)
    dagger(env, lambda obs: teacher(obs), student, config, seed=0, loss=loss)
    env.close()
    return student.eval()


def check_masked_loss_closed_loop(masked_loss: Callable) -> None:
    from distillkit.leakage import StudentOnly

    checks = Checks("masked_loss_closed_loop")
    with checks.case(f"a DAgger student trained with your loss balances alone (return >= {STUDENT_RETURN_THRESHOLD:g})",
                     "the loss must fall as the student's action approaches the teacher's executed action"):
        student = dagger_student(masked_loss)
        schema = make_env(TASK, 1).schema
        score = student_return(StudentOnly(student, schema), observe=lambda obs: StudentOnly.deployable(obs, schema))
        assert math.isfinite(score) and score >= STUDENT_RETURN_THRESHOLD, \
            f"mean return {score:.1f} on a held-out seed (the package's loss gives ~233, doing nothing ~8)"
    checks.report()


# ================================================================================ 04: one DAgger round
def check_mix_actions(mix_actions: Callable) -> None:
    checks = Checks("mix_actions")
    N, A = 4000, 2
    teacher = torch.full((N, A), 1.0)
    student = torch.arange(N * A, dtype=torch.float32).reshape(N, A) * -1.0 - 1.0    # all distinct, all < 0
    gen = lambda: torch.Generator().manual_seed(5)
    with checks.case("beta = 1: the teacher acts everywhere", "keep the teacher's action with probability beta"):
        assert_close(mix_actions(teacher, student, 1.0, gen()), teacher, "mixed actions")
    with checks.case("beta = 0: the student acts everywhere", "with probability 1 - beta the student's action is executed"):
        assert_close(mix_actions(teacher, student, 0.0, gen()), student, "mixed actions")
    with checks.case("whole action vectors are chosen per world",
                     "draw one coin per world (torch.rand(N, generator=generator) < beta) and pick the whole row"):
        mixed = mix_actions(teacher, student, 0.3, gen())
        from_teacher = (mixed == teacher).all(-1)
        from_student = (mixed == student).all(-1)
        assert bool((from_teacher | from_student).all()), "some rows mix teacher and student components"
    with checks.case("beta = 0.3: about 30 % of the worlds follow the teacher",
                     "one coin per world, not one for the whole batch: True (teacher) with probability beta"):
        share = float((mix_actions(teacher, student, 0.3, gen()) == teacher).all(-1).float().mean())
        assert 0.27 <= share <= 0.33, f"the teacher acts in {share:.1%} of the worlds"
    with checks.case("the same generator state gives the same mixture",
                     "draw the coins from the generator passed in (torch.rand(..., generator=generator))"):
        assert_close(mix_actions(teacher, student, 0.3, gen()), mix_actions(teacher, student, 0.3, gen()),
                     "mixed actions of a second call")
    checks.report()


@torch.no_grad()
def driven_trajectory(policy, steps: int, seed: int, num_envs: int) -> torch.Tensor:
    """joint_pos_rel along ``steps`` steps of the quick task driven by ``policy`` alone."""
    env = make_env(TASK, num_envs)
    obs = env.reset(seed=seed)
    seen = []
    for _ in range(steps):
        seen.append(obs["joint_pos_rel"])
        obs = env.step(policy(obs)).obs
    env.close()
    return torch.stack(seen)


def check_dagger_round(dagger_round: Callable) -> None:
    from distillkit.students import MLPStudent

    checks = Checks("dagger_round")
    steps, N, seed = 40, 8, 11
    env = make_env(TASK, N)
    teacher, _ = shipped_teacher(env)
    torch.manual_seed(0)
    student = MLPStudent(env.schema, env.action_dim).eval()
    teach = lambda obs: teacher(obs).detach()
    act = lambda obs: student(obs).detach()

    def one_round(beta, dataset):
        obs = env.reset(seed=seed)
        with torch.no_grad():
            return obs, dagger_round(env, teach, act, dataset, beta, obs, torch.Generator().manual_seed(1), steps=steps)

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


def check_dagger_closed_loop(dagger_round: Callable) -> None:
    from distillkit.students import MLPStudent

    checks = Checks("dagger_closed_loop")
    with checks.case(f"4 rounds of your DAgger (beta = 1, 0, 0, 0) give a student that balances alone "
                     f"(return >= {STUDENT_RETURN_THRESHOLD:g})",
                     "the teacher labels every visited state (label = teacher(obs)); the mixture decides only who acts"):
        env = make_env(TASK, NUM_ENVS)
        teacher, _ = shipped_teacher(env)
        torch.manual_seed(0)
        student = MLPStudent(env.schema, env.action_dim)
        generator = torch.Generator().manual_seed(0)
        dataset: list = []
        obs = env.reset(seed=0)
        for i, beta in enumerate((1.0, 0.0, 0.0, 0.0)[:DAGGER_ROUNDS]):
            student.eval()
            with torch.no_grad():
                obs = dagger_round(env, lambda o: teacher(o), student, dataset, beta, obs, generator,
                                   steps=STEPS_PER_ROUND)
            student.train()
            train_on_dataset(student, dataset, seed=i)
        env.close()
        score = student_return(student.eval())
        assert score >= STUDENT_RETURN_THRESHOLD, \
            f"mean return {score:.1f} on a held-out seed (the solution gets ~256, doing nothing ~8)"
    checks.report()


# ================================================================= 05: the student-only evaluation wrapper
def check_student_only(deployable: Callable, StudentOnlyPolicy: type) -> None:
    from distillkit.students import MLPStudent

    checks = Checks("student_only")
    env = make_env(TASK, 4)
    obs = env.reset(seed=0)
    schema = env.schema
    torch.manual_seed(0)
    student = MLPStudent(schema, env.action_dim).eval()
    with checks.case("deployable() keeps exactly the student fields",
                     "return {name: obs[name] for name in schema.group('student')}"):
        got = deployable(obs, schema)
        assert list(got) == list(schema.group("student")), f"got fields {list(got)}"
        assert all(got[n] is obs[n] or torch.equal(got[n], obs[n]) for n in got), "values changed"
    with checks.case("the wrapper runs the student on deployable fields",
                     "StudentOnlyPolicy(student, schema)(obs) returns student(obs)"):
        policy = StudentOnlyPolicy(student, schema)
        with torch.no_grad():
            assert_close(policy(deployable(obs, schema)), student(obs), "actions")
    with checks.case("a privileged field is refused with an error naming it",
                     "raise (LeakageError) when any key of obs is privileged; never drop it quietly"):
        policy = StudentOnlyPolicy(student, schema)
        try:
            policy(obs)
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
    with checks.case("reset(done) reaches the student", "forward reset(done) to the student when it has one"):
        history = MLPStudent(schema, env.action_dim, history=2).eval()
        policy = StudentOnlyPolicy(history, schema)
        with torch.no_grad():
            policy(deployable(obs, schema))
            done = torch.tensor([True, False, False, False])
            policy.reset(done)
            assert history._fresh is not None and torch.equal(history._fresh, done), "the student was not reset"
    env.close()
    checks.report()


def probe_env():
    """The quick task without sensor noise: two observations of one state then differ only where the state does."""
    return make_env(TASK, 8, noise=False)


@torch.no_grad()
def check_counterfactual_probe(action_change_without_privilege: Callable) -> None:
    from distillkit.students import MLPStudent

    checks = Checks("counterfactual_probe")
    teacher, _ = shipped_teacher(probe_env())
    torch.manual_seed(0)
    student = MLPStudent(probe_env().schema, 1).eval()

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


def check_student_only_closed_loop(deployable: Callable, StudentOnlyPolicy: type) -> None:
    checks = Checks("student_only_closed_loop")
    schema = make_env(TASK, 1).schema
    student = dagger_student()
    with checks.case(f"a DAgger student evaluated through your wrapper balances (return >= {STUDENT_RETURN_THRESHOLD:g})",
                     "deployable(obs, schema) is what the wrapper is handed at every step"):
        score = student_return(StudentOnlyPolicy(student, schema), observe=lambda obs: deployable(obs, schema))
        assert score >= STUDENT_RETURN_THRESHOLD, f"mean return {score:.1f} on a held-out seed"
    with checks.case("the shipped teacher cannot be evaluated through your wrapper",
                     "the teacher needs joint_vel_rel and pole_mass: handed the full observation the wrapper must "
                     "refuse them"):
        teacher, _ = shipped_teacher(make_env(TASK, 1))
        try:
            student_return(StudentOnlyPolicy(teacher, schema))
        except Exception as err:
            assert "pole_mass" in str(err), f"refused, but the error does not name pole_mass: {err}"
        else:
            raise AssertionError("the teacher ran with its privileged inputs through the wrapper")
    checks.report()
