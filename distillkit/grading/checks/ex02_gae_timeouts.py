"""Exercise 02: GAE with time-outs, inside PPO's rollout."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

from distillkit.grading.checks.common import ENVS, TASK, Checks, assert_close, fresh, shipped_teacher
from distillkit.grading.record import graded


def reference_gae(rewards, values, dones, last_values, gamma, lam):
    from distillkit.ppo import compute_gae

    return compute_gae(rewards, values, dones, last_values, gamma, lam)


@graded
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
        adv, ret = gae(*fresh(rewards, values, no_dones, last_values), 0.99, 0.95)
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
        adv, _ = gae(*fresh(rewards, values, no_dones, last_values), 0.99, 0.0)
        next_values = torch.cat([values[1:], last_values[None]])
        assert_close(adv, rewards + 0.99 * next_values - values, "advantages")
    with checks.case("gamma = lambda = 1 gives the return to go plus the final value, minus V",
                     "go backwards in time and carry the advantage: A_t = delta_t + gamma * lambda * A_{t+1}"):
        adv, _ = gae(*fresh(rewards, values, no_dones, last_values), 1.0, 1.0)
        to_go = rewards.flip(0).cumsum(0).flip(0) + last_values
        assert_close(adv, to_go - values, "advantages", atol=1e-4)
    with checks.case("nothing is carried across an episode end",
                     "multiply the carried advantage by (1 - done_t) as well, not only the bootstrap"):
        adv, _ = gae(*fresh(rewards, values, dones, last_values), 0.99, 0.95)
        assert_close(adv, reference_gae(rewards, values, dones, last_values, 0.99, 0.95)[0], "advantages")
    checks.report()


@graded
def check_bootstrap(bootstrap_timeouts: Callable) -> None:
    checks = Checks("timeout_bootstrap")
    rewards = torch.tensor([[1.0, 1.0, 1.0], [0.5, -2.0, 1.0]])
    truncated = torch.tensor([[False, False, True], [True, False, False]])
    final_values = torch.tensor([[7.0, 8.0, 10.0], [20.0, 30.0, 40.0]])
    expected = rewards + 0.9 * final_values * truncated
    with checks.case("a time-out adds gamma * V(final observation)",
                     "the episode was cut, not ended: add gamma * final_values where truncated"):
        assert_close(bootstrap_timeouts(*fresh(rewards, truncated, final_values), 0.9)[truncated],
                     expected[truncated], "rewards at time-outs")
    with checks.case("other steps keep their reward",
                     "add nothing where truncated is False (falls are real ends; ordinary steps bootstrap in GAE)"):
        assert_close(bootstrap_timeouts(*fresh(rewards, truncated, final_values), 0.9)[~truncated],
                     expected[~truncated], "rewards elsewhere")
    with checks.case("the input rewards are left as they were",
                     "return a new tensor (rewards + ...), do not add in place: the raw rewards are logged"):
        before = rewards.clone()
        bootstrap_timeouts(rewards, *fresh(truncated, final_values), 0.9)
        assert torch.equal(rewards, before), "rewards were modified in place"
    checks.report()


@graded
@torch.no_grad()
def check_gae_closed_loop(gae: Callable, bootstrap_timeouts: Callable) -> None:
    """The learner's bootstrap and GAE inside one rollout of the package's PPO, with the shipped
    teacher's actor and critic, long enough that every surviving episode times out. Each is checked
    against PPO's own function on exactly the inputs PPO handed it there (so a wrong bootstrap
    cannot fail the GAE check). Should the learner's bootstrap raise or return no (N,) tensor, the
    rollout goes on with the raw rewards. PPO's own functions are called only after the learner's:
    in the grader's sandbox they are unavailable."""
    from distillkit.artifacts import read_manifest
    from distillkit.artifacts import shipped_teacher as shipped_folder
    from distillkit.ppo import PPO, PPOConfig

    checks = Checks("gae_closed_loop")
    env = ENVS(16)
    actor, critic = shipped_teacher(env)
    config = dataclasses.replace(PPOConfig(**read_manifest(shipped_folder(TASK))["ppo"]),
                                 steps_per_env=310, gamma=0.99, lam=0.95)     # episodes last 300 control steps
    asked: list[tuple] = []
    answers: list = []

    def learner_bootstrap(rewards, truncated, final_values, gamma):      # on copies: the grader keeps the originals
        asked.append(fresh(rewards, truncated, final_values, gamma))
        try:
            answers.append(bootstrap_timeouts(*fresh(rewards, truncated, final_values), gamma))
        except Exception as err:
            answers.append(err)
        answer = answers[-1]
        usable = isinstance(answer, torch.Tensor) and answer.shape == rewards.shape and answer.dtype == rewards.dtype
        return answer.detach().clone() if usable else rewards

    learner_gae = lambda rewards, values, dones, last_values, gamma, lam: gae(*fresh(rewards, values, dones, last_values),
                                                                             gamma, lam)
    ppo = PPO(env, config, bootstrap=learner_bootstrap, advantages=learner_gae)
    ppo.actor.load_state_dict(actor.state_dict())
    ppo.critic.load_state_dict(critic.state_dict())
    torch.manual_seed(3)                      # the same sampled actions, so the same rollout
    try:
        got, obs, _ = ppo.collect(env.reset(seed=3))
        failed = None
    except Exception as err:                  # the learner's gae raised (it runs last, after every step)
        got, obs, failed = None, None, err
    env.close()
    with checks.case("your bootstrap on a real rollout (every surviving episode times out)",
                     "V(final observation) comes from the observation the env returns before its auto-reset"):
        assert asked, "PPO's rollout never called your bootstrap (no episode timed out?)"
        from distillkit.ppo import bootstrap_timeouts as reference

        for args, answer in zip(asked, answers):
            if isinstance(answer, Exception):
                raise answer
            assert_close(answer, reference(*args), "bootstrapped rewards", atol=1e-4)
    with checks.case("your advantages and returns on the real rollout match PPO's",
                     "dones = terminated or truncated; time-outs are in the rewards already"):
        if failed is not None:
            raise failed
        from distillkit.ppo import compute_gae

        expected_adv, expected_ret = compute_gae(got["rewards"], got["values"], got["dones"], critic(obs),
                                                 config.gamma, config.lam)
        assert_close(got["advantages"], expected_adv, "advantages", atol=1e-3)
        assert_close(got["returns"], expected_ret, "returns", atol=1e-3)
    checks.report()
