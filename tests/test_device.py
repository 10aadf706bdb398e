"""Everything above the env follows ``env.device``: networks, buffers, rollouts and evaluation
tensors are created where the env hands out its observations (a GPU engine: on the GPU), and
checkpoints are saved on the CPU so that they load anywhere.

Runs on "cpu" everywhere and on "cuda:0" where a GPU exists (the MuJoCo C engine hands out its
tensors on the device it is given, so no GPU physics is needed for this check)."""

import pytest
import torch

from distillkit.artifacts import CHECKPOINTS
from distillkit.corruption import Corrupted
from distillkit.dagger import DaggerConfig, dagger
from distillkit.envs import EnvFactory, make_env
from distillkit.evaluate import held_out_seeds, run_episodes
from distillkit.ppo import PPO, PPOConfig, run_iteration
from distillkit.rollouts import collect
from distillkit.students import GRUStudent, HistoryStudent, MLPStudent
from distillkit.train import load_actor, train_teacher

DEVICES = ["cpu", pytest.param("cuda:0", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                   reason="no CUDA device on this machine"))]
TINY = PPOConfig(steps_per_env=4, epochs=1, minibatches=2, actor_hidden=(16,), critic_hidden=(16,))


def tensors_of(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {**dict(module.named_parameters()), **dict(module.named_buffers())}


def off_device(tensors: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.device]:
    """The tensors that are not on ``device``, with where they are instead."""
    return {name: t.device for name, t in tensors.items() if t.device != device}


@pytest.mark.parametrize("device", DEVICES)
def test_ppo_networks_buffers_and_rollouts_live_on_the_env_device(device):
    env = make_env("cartpole", 4, device=device)
    ppo = PPO(env, TINY)
    assert ppo.device == env.device == torch.device(device)
    assert off_device(tensors_of(ppo.actor) | tensors_of(ppo.critic), env.device) == {}
    assert off_device({"episode_return": ppo.episode_return, "episode_length": ppo.episode_length}, env.device) == {}

    rollout, obs, _ = ppo.collect(env.reset(seed=0))
    assert off_device({k: v for k, v in rollout.items() if k != "obs"} | rollout["obs"] | obs, env.device) == {}
    losses = ppo.update(rollout)
    assert all(isinstance(v, float) for v in losses.values())
    # the normalisers took in the rollout and stayed where the networks are
    assert ppo.actor.input.normalizer.count.item() == TINY.steps_per_env * env.num_envs
    assert off_device(tensors_of(ppo.actor) | tensors_of(ppo.critic), env.device) == {}
    _, row = run_iteration(ppo, obs, 1, 0)
    assert row["env_steps"] == TINY.steps_per_env * env.num_envs


@pytest.mark.parametrize("device", DEVICES)
def test_a_teacher_trained_on_a_device_is_saved_on_the_cpu_and_loads_onto_any_env_device(device, tmp_path):
    train_teacher("cartpole", tmp_path, 16, num_envs=4, config=TINY, device=device, progress=False)
    for env_device in ("cpu", device):
        env = make_env("cartpole", 2, device=env_device)
        actor, _, _ = load_actor(tmp_path, env)
        assert off_device(tensors_of(actor), env.device) == {}
        assert actor(env.reset(seed=0)).device == env.device


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("architecture", ["mlp", "history", "gru"])
def test_dagger_moves_the_student_to_the_env_device_and_keeps_its_data_there(device, architecture):
    env = make_env("cartpole", 4, device=device)
    teacher, _, _ = load_actor(CHECKPOINTS / "cartpole_teacher", env)
    assert off_device(tensors_of(teacher), env.device) == {}
    student = {"mlp": lambda: MLPStudent(env.schema, env.action_dim, hidden=(16,)),
               "history": lambda: HistoryStudent(env.schema, env.action_dim, hidden=(16,), history=3),
               "gru": lambda: GRUStudent(env.schema, env.action_dim, hidden_size=8, head=(8,))}[architecture]()
    config = DaggerConfig(rounds=2, steps_per_round=12, schedule="linear", grad_steps=3, batch_worlds=2, chunk=4)
    rounds = dagger(env, teacher, student, config)
    assert len(rounds) == 2
    assert off_device(tensors_of(student), env.device) == {}

    student.reset()
    rollouts, obs = collect(env, teacher, 5, student=student, beta=0.5, generator=torch.Generator().manual_seed(0))
    data = {"teacher_actions": rollouts.teacher_actions, "actions": rollouts.actions, "reward": rollouts.reward,
            "done": rollouts.done, "episode": rollouts.episode} | rollouts.obs | rollouts.validity | obs
    assert off_device(data, env.device) == {}


@pytest.mark.parametrize("device", DEVICES)
def test_evaluation_and_corruption_run_on_the_env_device_and_return_plain_numbers(device):
    env = make_env("cartpole", 1, device=device)
    teacher, _, _ = load_actor(CHECKPOINTS / "cartpole_teacher", env)
    seed, envs = held_out_seeds(1)[0], EnvFactory("cartpole", device=device)
    rows = run_episodes(teacher, envs, seed, num_envs=3, labeller=teacher)
    assert len(rows) == 3 and rows["mse"].notna().all()
    for mode in ("zeroed", "noise", "stale", "shuffled"):
        corrupted = Corrupted(teacher, ["joint_vel_rel"], mode)
        rows = run_episodes(corrupted, envs, seed, num_envs=3)
        assert len(rows) == 3, mode


def test_the_device_check_catches_a_tensor_elsewhere():
    # "meta" exists on every machine; it only shows that off_device would name a stray tensor.
    stray = {"on_cpu": torch.zeros(1), "elsewhere": torch.zeros(1, device="meta")}
    assert off_device(stray, torch.device("cpu")) == {"elsewhere": torch.device("meta")}
