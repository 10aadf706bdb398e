"""The MuJoCo Warp engine against the C engine, on the Warp CPU device (a GPU only changes speed).

Parity: from the same reset (same seed, so the same states, physics parameters and terrain) the
same action sequence must give the same trajectory on both engines. Tolerances, and why:

- ``QPOS_TOL = 1e-4`` and ``QVEL_TOL = 1e-3``: MuJoCo Warp computes in float32 (relative error
  ~1e-7) with a solver tolerance of 1e-6, the C library in float64. Measured largest gaps
  (2026-11-29, Warp CPU device, 6 worlds, seeds 0-4; `python tests/test_mujoco_warp.py` prints them): cart-pole
  over 1 s 1e-6 in qpos and 3e-6 in qvel; the walker in the air over 0.4 s 2e-6 in qpos and
  1e-4 in qvel (joint speeds of ~10 rad/s). A different action sequence or pole mass moves them
  by > 1e-2 within a few steps.
- Ground contact differs by design: for a capsule on a heightfield MuJoCo Warp keeps at most four
  contacts per geom pair, at least 1 mm apart (``ccd_hfield_kernel`` in
  ``mujoco_warp/_src/collision_convex.py``), where the C library keeps one per heightfield prism
  (several nearly coincident ones under a flat foot), so contact forces differ and trajectories
  drift apart once the feet land. The walker's contact phase is therefore checked on its base
  pose (x, z, pitch) only, over 0.2 s from a reset 2 cm above the ground, with
  ``CONTACT_BASE_TOL = 0.1`` (m, rad): measured 0.01-0.07 over seeds 0-4 (walker version 3), while a
  different action sequence moved it by 0.45-0.58. Since version 4 the walker holds its pose for the
  first 10 steps after a reset whatever it is told, so the check that other actions move it runs 25
  steps.

Warp compiles its kernels on first use (10-30 s on the CPU) and caches them in the user's cache
folder; the module-scoped fixtures build each env once.
"""

import subprocess
import sys

import numpy as np
import pytest
import torch

from distillkit.artifacts import CHECKPOINTS, ArtifactError
from distillkit.dagger import DaggerConfig, dagger
from distillkit.envs import EngineFeatureError, EnvFactory, make_env
from distillkit.envs.mujoco_cpu import MujocoEnv
from distillkit.evaluate import Perturbation, run_episodes
from distillkit.ppo import PPOConfig
from distillkit.students import MLPStudent
from distillkit.train import load_actor, train_teacher

QPOS_TOL, QVEL_TOL = 1e-4, 1e-3
CONTACT_BASE_TOL = 0.1
NUM_ENVS = 6


@pytest.fixture(scope="module")
def pairs():
    """(C env, Warp env) per task, sensor noise off, built once."""
    built = {task: (make_env(task, NUM_ENVS, noise=False, nthread=0),
                    make_env(task, NUM_ENVS, engine="mujoco_warp", noise=False))
             for task in ("cartpole", "walker_rough")}
    yield built
    for c, w in built.values():
        c.close()
        w.close()


def random_actions(env, steps: int, seed: int) -> list[torch.Tensor]:
    rng = np.random.default_rng(seed)
    return [torch.as_tensor(rng.uniform(-1, 1, (env.num_envs, env.action_dim)), dtype=torch.float32)
            for _ in range(steps)]


def trajectory(env, seed: int, actions, lift: float = 0.0) -> np.ndarray:
    """(steps, worlds, nq + nv) physics states after each action, from ``reset(seed)``; ``lift``
    raises every robot by that many metres after the reset (a contact-free fall)."""
    env.reset(seed=seed)
    if lift:
        env.physics().qpos[:, 1] += lift            # the C engine's physics() are views of its state
        if env.spec.engine == "mujoco_warp":        # the Warp engine's are host copies: upload them
            env._upload(("qpos",), np.arange(env.num_envs), {"qpos": env.qpos})
    states = []
    for a in actions:
        env.step(a)
        s = env.physics()
        states.append(np.concatenate([s.qpos, s.qvel], axis=1).copy())
    return np.stack(states)


def gaps(a: np.ndarray, b: np.ndarray, nq: int) -> tuple[float, float]:
    """Largest qpos and qvel difference between two trajectories."""
    diff = np.abs(a - b)
    return float(diff[..., :nq].max()), float(diff[..., nq:].max())


def agree(a: np.ndarray, b: np.ndarray, nq: int) -> bool:
    qpos_gap, qvel_gap = gaps(a, b, nq)
    return qpos_gap <= QPOS_TOL and qvel_gap <= QVEL_TOL


# ------------------------------------------------------------------------------------ parity
def test_cartpole_trajectories_agree_over_one_second(pairs):
    c, w = pairs["cartpole"]
    actions = random_actions(c, 60, seed=1)
    reference, warp = trajectory(c, 5, actions), trajectory(w, 5, actions)
    assert agree(reference, warp, c.model.nq), gaps(reference, warp, c.model.nq)


def test_walker_trajectories_agree_in_the_air(pairs):
    c, w = pairs["walker_rough"]
    actions = random_actions(c, 20, seed=1)        # 0.4 s of a 1 m fall: joints, limits, payload
    reference = trajectory(c, 5, actions, lift=1.0)
    warp = trajectory(w, 5, actions, lift=1.0)
    assert agree(reference, warp, c.model.nq), gaps(reference, warp, c.model.nq)


def test_walker_base_pose_agrees_through_touchdown(pairs):
    c, w = pairs["walker_rough"]
    actions = random_actions(c, 10, seed=1)
    base = lambda states: states[..., :3]            # x, z, pitch
    gap = np.abs(base(trajectory(c, 5, actions)) - base(trajectory(w, 5, actions))).max()
    assert gap <= CONTACT_BASE_TOL


def test_parity_check_catches_other_actions_and_other_physics(pairs):
    c, w = pairs["cartpole"]
    actions = random_actions(c, 30, seed=1)
    reference = trajectory(c, 5, actions)
    assert not agree(reference, trajectory(w, 5, random_actions(c, 30, seed=2)), c.model.nq)
    w.reset(seed=5)
    w.perturb_privileged(np.arange(NUM_ENVS), seed=9)     # other pole masses in the Warp worlds
    states = []
    for a in actions:
        w.step(a)
        states.append(np.concatenate([w.physics().qpos, w.physics().qvel], axis=1).copy())
    assert not agree(reference, np.stack(states), c.model.nq)

    cw, ww = pairs["walker_rough"]
    # 25 steps: for its first 10 (the settle after a reset) the walker holds its pose whatever it is told
    other = trajectory(ww, 5, random_actions(cw, 25, seed=2))
    assert np.abs(trajectory(cw, 5, random_actions(cw, 25, seed=1))[..., :3] - other[..., :3]).max() > CONTACT_BASE_TOL


def test_each_world_gets_its_own_terrain_and_physics_parameters(pairs):
    c, w = pairs["walker_rough"]
    c.reset(seed=3)
    w.reset(seed=3)
    heights = w.wp_model.hfield_data.numpy().reshape(NUM_ENVS, -1)
    masses, friction = w.wp_model.body_mass.numpy(), w.wp_model.geom_friction.numpy()
    for i in range(NUM_ENVS):
        np.testing.assert_array_equal(heights[i], c.models[i].hfield_data)
        np.testing.assert_allclose(masses[i], c.models[i].body_mass, rtol=1e-6)
        np.testing.assert_allclose(friction[i], c.models[i].geom_friction, rtol=1e-6)
    assert len({float(m[w.task.torso_body]) for m in masses}) == NUM_ENVS     # payloads differ per world
    assert (w.wp_model.geom_dataid.numpy()[:, 0] == np.arange(NUM_ENVS)).all()  # world i reads heightfield i


def test_observations_rewards_and_signals_match_the_c_engine(pairs):
    c, w = pairs["cartpole"]
    names = c.reset(seed=4).keys()
    w.reset(seed=4)
    resets = 0
    for a in random_actions(c, 120, seed=3):
        rc, rw = c.step(a), w.step(a)
        for name in names:
            torch.testing.assert_close(rw.obs[name], rc.obs[name], atol=1e-4, rtol=0)
        torch.testing.assert_close(rw.reward, rc.reward, atol=1e-4, rtol=0)
        for signal in rc.validity:
            assert torch.equal(rw.validity[signal], rc.validity[signal]), signal
        resets += int(rc.done.sum())
    assert resets > 0            # auto-resets happened, and the new episodes agree too


# -------------------------------------------------------------------- artifacts and perturbations
def test_a_teacher_from_the_c_engine_is_refused_naming_the_engine(pairs):
    c, w = pairs["cartpole"]
    with pytest.raises(ArtifactError, match="engine: artifact was made on 'mujoco' .*, env runs 'mujoco_warp'"):
        load_actor(CHECKPOINTS / "cartpole_teacher", w)
    overrides = load_actor(CHECKPOINTS / "cartpole_teacher", w, allow_mismatch=True)[2]
    assert overrides and overrides[0].startswith("engine:")


def test_perturbations_run_on_warp_and_a_missing_feature_names_the_engine():
    push = Perturbation("push", push_step=2, push=(2.0,))
    zero = lambda obs: torch.zeros(len(obs["pole_mass"]), 1)
    rows = run_episodes(zero, EnvFactory("cartpole", "mujoco_warp"), 1_000_000, num_envs=2, perturbation=push)
    assert len(rows) == 2

    class NoPush(MujocoEnv):          # a real engine without the optional push
        features = MujocoEnv.features - {"push"}
        push = None
    env = NoPush("cartpole", 2)
    with pytest.raises(EngineFeatureError, match="engine 'mujoco' does not support push\\(\\), needed for"):
        env.feature("push", "perturbation 'push'")


# ------------------------------------------------------------------------- the pipeline, unchanged
def test_ppo_and_a_dagger_round_run_on_warp(tmp_path):
    config = PPOConfig(steps_per_env=8, epochs=1, minibatches=2, actor_hidden=(16,), critic_hidden=(16,))
    metrics = train_teacher("cartpole", tmp_path / "teacher", env_steps=8 * 4 * 2, num_envs=4, config=config,
                            engine="mujoco_warp", progress=False)
    assert len(metrics) == 2 and metrics["env_steps"].iloc[-1] == 64
    env = make_env("cartpole", 4, engine="mujoco_warp")
    teacher, manifest, overrides = load_actor(tmp_path / "teacher", env)
    assert manifest["task_spec"]["engine"] == "mujoco_warp" and manifest["engine"] == "mujoco_warp" and not overrides
    student = MLPStudent(env.schema, env.action_dim)
    rounds = dagger(env, lambda obs: teacher(obs), student, DaggerConfig(rounds=1, steps_per_round=10, grad_steps=5))
    assert rounds["dataset_steps"].tolist() == [40] and np.isfinite(rounds["loss"]).all()




def test_rsl_rl_adapter_steps_a_warp_env():
    from distillkit.envs.rsl_rl import RslRlVecEnv

    env = make_env("walker_rough", 3, engine="mujoco_warp")
    vec = RslRlVecEnv(env, seed=1)
    assert vec.get_observations()["student"].shape == (3, env.schema.group_size("student"))
    obs, rewards, dones, extras = vec.step(torch.zeros(3, 6))
    assert rewards.shape == (3,) and vec.episode_length_buf.tolist() == [1, 1, 1]

@pytest.mark.slow
def test_cli_runs_on_warp_and_refuses_a_gpu_for_the_c_engine():
    run = lambda *args: subprocess.run([sys.executable, "-m", "distillkit", *args], capture_output=True, text=True,
                                       timeout=600)
    result = run("demo", "--engine", "mujoco_warp", "--tasks", "cartpole", "--skip-pipeline", "--steps", "3",
                 "--num-envs", "2")
    assert result.returncode == 0, result.stderr
    assert "=== cartpole v1 on mujoco_warp" in result.stdout and "env-steps/s on mujoco_warp" in result.stdout
    result = run("demo", "--engine", "mujoco", "--device", "cuda")
    assert result.returncode == 2 and "--engine mujoco runs on the CPU only" in result.stderr

if __name__ == "__main__":
    # The measured gaps quoted in the module docstring.
    for task, steps, lift in (("cartpole", 60, 0.0), ("walker_rough", 20, 1.0), ("walker_rough", 10, 0.0)):
        c = make_env(task, NUM_ENVS, noise=False, nthread=0)
        w = make_env(task, NUM_ENVS, engine="mujoco_warp", noise=False)
        for seed in range(5):
            actions, other = random_actions(c, steps, seed), random_actions(c, steps, seed + 10)
            reference = trajectory(c, seed, actions, lift)
            same, different = trajectory(w, seed, actions, lift), trajectory(w, seed, other, lift)
            base = lambda t: (f", base-pose gap {np.abs(reference[..., :3] - t[..., :3]).max():.3f}"
                              if task == "walker_rough" else "")
            print(f"{task:13s} {steps * c.spec.control_dt:.1f} s, lift {lift} m, seed {seed}: "
                  f"(qpos, qvel) gap {gaps(reference, same, c.model.nq)}{base(same)}; "
                  f"other actions: {gaps(reference, different, c.model.nq)}{base(different)}")
