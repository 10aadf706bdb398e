"""PPO: GAE and time-out bootstrap checked against rsl_rl (an oracle, installed as a pinned dev
dependency), learning on the quick task, and the recurrent actor's memory through rollouts,
updates and evaluations."""

import pytest
import torch

from distillkit.envs import make_env
from distillkit.ppo import PPO, PPOConfig, compute_gae, run_iteration

rsl_rl = pytest.importorskip("rsl_rl", reason="rsl-rl-lib is a dev dependency")
from rsl_rl.algorithms import PPO as RslPPO  # noqa: E402
from rsl_rl.models import MLPModel  # noqa: E402
from rsl_rl.storage import RolloutStorage  # noqa: E402
from tensordict import TensorDict  # noqa: E402  (comes with rsl-rl-lib)

T, N, GAMMA, LAM = 16, 8, 0.98, 0.9


def synthetic_rollout(seed=0):
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(T + 1, N, 3, generator=g)
    rewards = torch.randn(T, N, generator=g)
    values = torch.randn(T, N, generator=g)
    u = torch.rand(T, N, generator=g)
    terminated, timeouts = u < 0.1, (u >= 0.1) & (u < 0.2)
    final_values = torch.randn(T, N, generator=g)        # V of the true final observation at time-outs
    return obs, rewards, values, terminated, timeouts, final_values


def rsl_rl_returns(obs, rewards, values, terminated, timeouts):
    """Feed the rollout through rsl_rl's own PPO (process_env_step + compute_returns)."""
    td = lambda o: TensorDict({"policy": o}, batch_size=[N])
    groups = {"actor": ["policy"], "critic": ["policy"]}
    actor = MLPModel(td(obs[0]), groups, "actor", 2, hidden_dims=[8],
                     distribution_cfg={"class_name": "GaussianDistribution", "init_std": 1.0})
    critic = MLPModel(td(obs[0]), groups, "critic", 1, hidden_dims=[8])
    storage = RolloutStorage("rl", N, T, td(obs[0]), (2,))
    ppo = RslPPO(actor, critic, storage, gamma=GAMMA, lam=LAM, normalize_advantage_per_mini_batch=True)
    for t in range(T):
        ppo.act(td(obs[t]))
        ppo.transition.values = values[t].unsqueeze(1)        # the synthetic V(s_t)
        ppo.process_env_step(td(obs[t + 1]), rewards[t], terminated[t] | timeouts[t], {"time_outs": timeouts[t]})
    last_values = critic(td(obs[T])).detach().squeeze(1)
    ppo.compute_returns(td(obs[T]))
    return storage.advantages.squeeze(-1), storage.returns.squeeze(-1), last_values


def test_gae_matches_rsl_rl_when_time_outs_bootstrap_from_the_current_state():
    obs, rewards, values, terminated, timeouts, _ = synthetic_rollout()
    rsl_adv, rsl_ret, last_values = rsl_rl_returns(obs, rewards, values, terminated, timeouts)
    # rsl_rl's semantics: r_t += gamma * V(s_t) on time-outs
    boot = rewards + GAMMA * values * timeouts
    adv, ret = compute_gae(boot, values, terminated | timeouts, last_values, GAMMA, LAM)
    assert torch.allclose(adv, rsl_adv, atol=1e-6) and torch.allclose(ret, rsl_ret, atol=1e-6)


def test_true_final_observation_bootstrap_differs_from_rsl_rl_exactly_at_time_outs():
    obs, rewards, values, terminated, timeouts, final_values = synthetic_rollout(1)
    rsl_adv, _, last_values = rsl_rl_returns(obs, rewards, values, terminated, timeouts)
    ours = rewards + GAMMA * final_values * timeouts            # distillkit: V(s_final)
    adv, _ = compute_gae(ours, values, terminated | timeouts, last_values, GAMMA, LAM)
    # The TD errors differ by gamma * (V(s_final) - V(s_t)) at time-out steps and nowhere else,
    # and GAE spreads that difference backwards within the episode.
    expected = compute_gae(GAMMA * (final_values - values) * timeouts, torch.zeros_like(values),
                           terminated | timeouts, torch.zeros(N), GAMMA, LAM)[0]
    assert torch.allclose(adv - rsl_adv, expected, atol=1e-5)
    assert (adv - rsl_adv).abs().max() > 0.1, "the two semantics should really differ here"


def test_gae_by_hand():
    # two steps, episode ends after the second; gamma = lambda = 0.5
    adv, ret = compute_gae(torch.tensor([[1.0], [2.0]]), torch.tensor([[0.5], [1.0]]),
                           torch.tensor([[False], [True]]), torch.tensor([9.0]), 0.5, 0.5)
    # delta_1 = 2 - 1 = 1; delta_0 = 1 + 0.5 * 1 - 0.5 = 1; A_0 = 1 + 0.25 * 1
    assert torch.allclose(adv, torch.tensor([[1.25], [1.0]]))
    assert torch.allclose(ret, torch.tensor([[1.75], [2.0]]))


def test_timeout_bootstrap_uses_the_critic_on_the_final_observation():
    """Same worlds, same actions, three bootstraps: the rewards at the time-out step differ by
    gamma * V(s_final) (ours) and gamma * V(s_t) (rsl_rl's), which are not the same."""
    rewards = {}
    for mode in ("final_obs", "current_obs", "none"):
        env = make_env("cartpole", 4)
        ppo = PPO(env, PPOConfig(steps_per_env=4, timeout_bootstrap=mode), seed=0)
        obs = env.reset(seed=0)
        env.episode_step[:] = env.max_episode_steps - 2         # every world times out at the second step
        rollout, _, _ = ppo.collect(obs)
        assert rollout["dones"][1].all() and not rollout["dones"][0].any()
        rewards[mode] = rollout["rewards"]
    final = rewards["final_obs"][1] - rewards["none"][1]
    current = rewards["current_obs"][1] - rewards["none"][1]
    assert (final != 0).all() and (current != 0).all()
    assert not torch.allclose(final, current), "V(s_final) and V(s_t) should differ"
    assert torch.equal(rewards["final_obs"][2:], rewards["none"][2:]), "only the time-out step changes"
    with pytest.raises(ValueError, match="timeout_bootstrap must be one of"):
        PPOConfig(timeout_bootstrap="last")


def test_normalisers_are_frozen_inside_an_update_and_learn_after_it():
    env = make_env("cartpole", 8)
    ppo = PPO(env, PPOConfig(steps_per_env=8, epochs=1, minibatches=2), seed=0)
    obs = env.reset(seed=0)
    rollout, obs, _ = ppo.collect(obs)
    before = ppo.actor.input.normalizer.mean.clone()
    seen = []
    original = ppo.actor.input.normalizer.forward
    ppo.actor.input.normalizer.forward = lambda x: (seen.append(ppo.actor.input.normalizer.mean.clone()), original(x))[1]
    ppo.update(rollout)
    assert all(torch.equal(m, before) for m in seen), "statistics moved during the update"
    assert not torch.equal(ppo.actor.input.normalizer.mean, before)
    assert ppo.actor.input.normalizer.count == 8 * 8


def test_the_entropy_bonus_decays_linearly_to_zero_when_asked():
    """entropy_decay_steps > 0: c_e falls linearly from entropy_coef to 0 and stays there, and the
    update uses the bonus of its env-step count (past the decay, an update is the bonus-free one)."""
    constant, decaying = PPOConfig(entropy_coef=0.01), PPOConfig(entropy_coef=0.01, entropy_decay_steps=1000)
    assert [constant.entropy_coef_at(n) for n in (0, 500, 5000)] == [0.01, 0.01, 0.01]
    assert [decaying.entropy_coef_at(n) for n in (0, 250, 1000, 5000)] == pytest.approx([0.01, 0.0075, 0.0, 0.0])
    with pytest.raises(ValueError, match="entropy_decay_steps must be >= 0"):
        PPOConfig(entropy_decay_steps=-1)

    def updated(config, env_steps):
        env = make_env("cartpole", 8)
        ppo = PPO(env, PPOConfig(steps_per_env=8, epochs=1, minibatches=2, **config), seed=0)
        rollout, _, _ = ppo.collect(env.reset(seed=0))
        ppo.update(rollout, env_steps)
        return torch.cat([p.detach().flatten() for p in ppo.parameters()])

    late = updated({"entropy_coef": 0.5, "entropy_decay_steps": 1000}, 1000)
    assert torch.equal(late, updated({"entropy_coef": 0.0}, 1000))
    assert not torch.equal(late, updated({"entropy_coef": 0.5, "entropy_decay_steps": 1000}, 0))


@pytest.mark.slow
def test_teacher_learns_to_balance_the_quick_task():
    torch.set_num_threads(1)
    env = make_env("cartpole", 64)
    ppo = PPO(env, PPOConfig(), seed=0)
    obs = env.reset(seed=0)
    rows = []
    for it in range(60):
        obs, row = run_iteration(ppo, obs, it, 0)
        rows.append(row)
    first, last = rows[0]["episode_return"], max(r["episode_return"] for r in rows[-10:])
    assert first < 50 and last > 250, (first, last)


def recurrent_ppo(num_envs=8, steps=64, seed=0):
    """Recurrent unprivileged PPO on the cart-pole (a GRU on the student's fields), with a random
    policy's rollout long enough for several episodes to end inside it."""
    env = make_env("cartpole", num_envs)
    config = PPOConfig(steps_per_env=steps, epochs=1, minibatches=2, actor_group="student", actor_memory=16)
    return env, PPO(env, config, seed=seed)


def test_a_recurrent_actor_acts_with_the_memory_the_update_rebuilds():
    """The update recomputes every action's mean from the rollout's first memory through the
    episode restarts; it must be the mean the actions were drawn from (ratio 1 before any step)."""
    env, ppo = recurrent_ppo()
    obs = env.reset(seed=0)
    _, obs, _ = ppo.collect(obs)                  # the second rollout starts from a non-zero memory
    rollout, _, ended = ppo.collect(obs)
    assert len(ended["return"]) >= 4 and rollout["memory"].abs().sum() > 0
    with torch.no_grad():
        rebuilt = ppo.actor.sequence_mean(rollout["obs"], rollout["starts"], rollout["memory"])
        torch.testing.assert_close(rebuilt, rollout["means"], rtol=1e-5, atol=1e-5)
        # the bad case: a memory carried across an episode's end gives other actions after it
        carried = ppo.actor.sequence_mean(rollout["obs"], torch.zeros_like(rollout["starts"]), rollout["memory"])
    after_restart = rollout["starts"].cumsum(0) > 0
    assert not torch.allclose(carried[after_restart], rollout["means"][after_restart], atol=1e-3)
    torch.testing.assert_close(carried[~after_restart], rollout["means"][~after_restart], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("memory", [0, 16])
def test_each_minibatch_indexes_the_steps_its_means_were_drawn_on(memory):
    """Before any gradient step, the means a minibatch recomputes are the means its steps' actions
    were drawn from, at the indices it names (a world-major index of the time-major steps, or a
    mean read from another step, fails this)."""
    env = make_env("cartpole", 8)
    config = PPOConfig(steps_per_env=64, epochs=1, minibatches=2, actor_group="student", actor_memory=memory)
    ppo = PPO(env, config, seed=0)
    obs = env.reset(seed=0)
    _, obs, _ = ppo.collect(obs)
    rollout, _, _ = ppo.collect(obs)
    T, N = rollout["rewards"].shape
    drawn = rollout["means"].reshape(T * N, -1)
    x = None if memory else ppo.actor.input({k: v.reshape(T * N, *v.shape[2:]) for k, v in rollout["obs"].items()})
    with torch.no_grad():
        batches = list(ppo._minibatches(rollout, x))
    assert sorted(torch.cat([idx for idx, _ in batches]).tolist()) == list(range(T * N))
    for idx, mean in batches:
        torch.testing.assert_close(mean, drawn[idx], rtol=1e-5, atol=1e-5)
    env.close()


def test_a_validation_between_iterations_leaves_the_rollout_memory_alone():
    from distillkit.envs import EnvFactory
    from distillkit.evaluate import evaluate_policy, validation_seeds

    env, ppo = recurrent_ppo()
    _, obs, _ = ppo.collect(env.reset(seed=0))
    memory = ppo.memory.clone()
    with torch.no_grad():
        evaluate_policy(ppo.actor, EnvFactory("cartpole"), validation_seeds(1), num_envs=3)
    assert ppo.actor.memory is None or ppo.actor.memory.shape[0] == 3, "the evaluation ran on its own memory"
    rollout, _, _ = ppo.collect(obs)
    assert torch.equal(rollout["memory"], memory)


def test_an_evaluation_starts_every_episode_of_a_recurrent_actor_from_zero_memory():
    from distillkit.envs import EnvFactory
    from distillkit.evaluate import run_episodes

    _, ppo = recurrent_ppo()
    with torch.no_grad():
        first = run_episodes(ppo.actor, EnvFactory("cartpole"), seed=1_000_000, num_envs=4)
        again = run_episodes(ppo.actor, EnvFactory("cartpole"), seed=1_000_000, num_envs=4)
        # the bad case: the same actor hidden behind a function is never told to forget
        hidden = lambda o: ppo.actor(o)
        run_episodes(hidden, EnvFactory("cartpole"), seed=1_000_000, num_envs=4)
        stale = run_episodes(hidden, EnvFactory("cartpole"), seed=1_000_000, num_envs=4)
    assert first.equals(again)
    assert not first["return"].equals(stale["return"])


def test_a_recurrent_actor_needs_a_world_per_minibatch_and_no_encoder():
    with pytest.raises(ValueError, match=r"num_envs \(2\) must be >= PPOConfig.minibatches \(4\)"):
        PPO(make_env("cartpole", 2), PPOConfig(actor_group="student", actor_memory=8, minibatches=4))
    with pytest.raises(ValueError, match="not both"):
        PPOConfig(actor_memory=8, encoder_latent=8)
    with pytest.raises(ValueError, match="actor_memory must be >= 0"):
        PPOConfig(actor_memory=-1)


@pytest.mark.slow
def test_recurrent_unprivileged_ppo_learns_the_quick_task_from_the_student_fields(tmp_path):
    """A GRU actor on positions only learns to balance, and its run loads back as the same
    recurrent actor (an artifact records ``actor_memory``)."""
    import pandas as pd

    from distillkit.models import RecurrentActor
    from distillkit.train import load_actor, train_teacher

    torch.set_num_threads(1)
    config = PPOConfig(actor_memory=32, actor_hidden=(64,), critic_hidden=(64, 64), entropy_coef=0.005)
    train_teacher("cartpole", tmp_path, 120_000, num_envs=64, unprivileged=True, config=config, progress=False)
    log = pd.read_csv(tmp_path / "metrics.csv")
    assert log["episode_return"].iloc[:3].max() < 50 and log["episode_return"].iloc[-5:].max() > 200, \
        log["episode_return"].tolist()
    env = make_env("cartpole", 1)
    actor, manifest, _ = load_actor(tmp_path, env)
    assert isinstance(actor, RecurrentActor) and manifest["ppo"]["actor_memory"] == 32
    assert list(actor.input.names) == list(env.schema.group("student"))
