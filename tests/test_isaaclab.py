"""The Isaac Lab engine, really stepping Isaac Lab 3.0 (kit-less, Newton) on the CPU.

Offline, on the project's generated assets. Isaac Lab allows one simulation per process, so each
test makes its own small env; Warp compiles its kernels on the first env of the session (25-35 s
per task, cached on disk afterwards), later envs take about a second.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch

pytest.importorskip("isaaclab", reason="Isaac Lab engine tests need the 'isaaclab' extra")
os.environ.setdefault("DISTILLKIT_ISAAC_ASSETS", "generated")   # CI is offline: never wait on the bucket

from pxr import Usd, UsdPhysics  # noqa: E402

from distillkit.assets import build_assets, use_isaac_assets  # noqa: E402
from distillkit.assets.usd import ASSETS  # noqa: E402
from distillkit.envs import EnvFactory, make_env  # noqa: E402
from distillkit.leakage import LeakageError, StudentOnly  # noqa: E402
from distillkit.schema import ObservationSchema, SchemaError  # noqa: E402

ENGINE = "isaaclab"


def cartpole(num_envs: int = 8, **kwargs):
    return make_env("cartpole", num_envs, engine=ENGINE, **kwargs)


def small_terrain(cfg) -> None:
    """A 2 x 2 terrain grid: the stock 10 x 20 takes minutes to mesh on a CPU."""
    cfg.scene.terrain.terrain_generator.num_rows = 2
    cfg.scene.terrain.terrain_generator.num_cols = 2


# ------------------------------------------------------------------------------------ assets
def test_generated_assets_carry_the_names_the_stock_tasks_select(tmp_path):
    root = build_assets(tmp_path)
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*.usd*")) == sorted(ASSETS)
    stage = Usd.Stage.Open(str(root / "Isaac/IsaacLab/Robots/ANYbotics/ANYmal-D/anymal_d.usd"))
    robot = stage.GetDefaultPrim()
    bodies = [p.GetName() for p in robot.GetChildren() if p.HasAPI(UsdPhysics.RigidBodyAPI)]
    joints = {p.GetName() for p in stage.Traverse() if p.IsA(UsdPhysics.RevoluteJoint)}
    legs = ("LF", "RF", "LH", "RH")
    assert bodies[0] == "base" and len(bodies) == 17
    assert {f"{leg}_{part}" for leg in legs for part in ("HIP", "THIGH", "SHANK", "FOOT")} <= set(bodies)
    assert joints == {f"{leg}_{j}" for leg in legs for j in ("HAA", "HFE", "KFE")}
    assert robot.HasAPI(UsdPhysics.ArticulationRootAPI)
    stage = Usd.Stage.Open(str(root / "Isaac/IsaacLab/Robots/Classic/Cartpole/cartpole.usd"))
    names = {p.GetName() for p in stage.Traverse() if p.IsA(UsdPhysics.Joint)}
    assert {"slider_to_cart", "cart_to_pole"} <= names


def test_asset_source_is_checked_and_decided_before_isaaclab_reads_it():
    with pytest.raises(ValueError, match="DISTILLKIT_ISAAC_ASSETS must be one of"):
        use_isaac_assets("internet")
    source, root = use_isaac_assets()
    assert os.environ["ISAACSIM_ASSET_ROOT"] == root
    if source == "generated":
        from isaaclab.utils.assets import ISAACLAB_NUCLEUS_DIR

        assert ISAACLAB_NUCLEUS_DIR.startswith(root)


def test_importing_isaaclab_first_is_refused_with_the_fix():
    """Isaac Lab reads ISAACSIM_ASSET_ROOT once, at import: a late decision could not take effect."""
    code = ("import isaaclab.utils.assets\n"
            "from distillkit.assets import use_isaac_assets\n"
            "use_isaac_assets('generated')\n")
    env = {k: v for k, v in os.environ.items() if k != "ISAACSIM_ASSET_ROOT"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode != 0
    assert "isaaclab was imported before distillkit chose its asset root" in run.stderr


# ------------------------------------------------------------------------------ cart-pole env
def test_schema_is_read_from_the_observation_manager():
    env = cartpole(4)
    manager = env.env.observation_manager
    assert "policy" not in manager.active_terms           # the stock group is replaced by role groups
    assert manager.active_terms == {"student": ["joint_pos_rel"], "teacher_only": ["joint_vel_rel", "pole_mass"]}
    assert env.schema.group("student") == ("joint_pos_rel",)
    assert env.schema.group("teacher") == ("joint_pos_rel", "joint_vel_rel", "pole_mass")
    assert env.schema.field("joint_pos_rel").obs_shape == (3, 2)   # a 3-sample history of (cart, pole)
    obs = env.reset(seed=0)
    env.schema.validate_obs(obs, 4)
    result = env.step(torch.zeros(4, 1))
    env.schema.validate_obs(result.obs, 4)
    env.schema.validate_obs(result.final_obs, 4)
    assert env.spec.engine == "isaaclab" and env.spec.details["isaac_task"] == "Isaac-Cartpole"
    assert set(env.spec.reward_weights) == set(env.env.reward_manager.active_terms)
    assert torch.allclose(sum(result.reward_terms.values()), result.reward, atol=1e-6)
    assert torch.allclose(result.reward, env.env.reward_buf)
    # History: the newest sample is last and equals what the env observes now.
    assert torch.equal(result.obs["joint_pos_rel"][:, -1], env.env.scene["robot"].data.joint_pos.torch)
    env.close()


def test_a_forced_fall_is_fell_with_the_true_final_observation():
    env = cartpole(4)
    env.override_ranges({"pole_angle": [1.2, 1.2], "pole_vel": [3.0, 3.0], "cart_vel": [0.0, 0.0]})
    env.reset(seed=1)
    for step in range(30):
        result = env.step(torch.zeros(4, 1))
        if result.done.all():
            break
    assert result.validity["fell"].all() and result.terminated.all()
    assert not result.validity["timeout"].any() and not result.truncated.any()
    final_angle = result.final_obs["joint_pos_rel"][:, -1, 1]
    assert (final_angle.abs() > math.pi / 2).all()                  # pole_fallen fired
    assert torch.allclose(result.obs["joint_pos_rel"][:, :, 1], torch.full((4, 3), 1.2), atol=1e-5)
    assert (result.obs["joint_pos_rel"] == result.obs["joint_pos_rel"][:, :1]).all()   # history restarts
    env.close()


def test_a_forced_time_out_is_timeout_not_fell():
    env = cartpole(4)
    env.override_ranges({"pole_angle": [0.0, 0.0], "pole_vel": [0.0, 0.0], "cart_pos": [0.0, 0.0],
                         "cart_vel": [0.0, 0.0]})
    env.reset(seed=2)
    env.env.episode_length_buf[:] = env.max_episode_steps - 1      # one step before the limit
    result = env.step(torch.zeros(4, 1))
    assert result.validity["timeout"].all() and result.truncated.all()
    assert not result.validity["fell"].any() and not result.terminated.any()
    assert (env.episode_step == 0).all()
    env.close()


def pole_fallen_at(angle: float):
    """A cfg hook moving the cart-pole's pole_fallen bound; one qualname whatever the angle."""
    def hook(cfg) -> None:
        cfg.terminations.pole_fallen.params["bounds"] = (-angle, angle)
    return hook


def test_termination_terms_are_versioned_in_the_spec():
    env = cartpole(2, cfg_hook=pole_fallen_at(math.pi / 2))
    spec = env.spec
    terms = spec.details["terminations"]
    assert set(terms) == set(env.env.termination_manager.active_terms)
    assert terms["time_out"]["time_out"] and not terms["pole_fallen"]["time_out"]
    assert terms["pole_fallen"]["func"] == "joint_pos_out_of_manual_limit"
    assert terms["pole_fallen"]["params"]["bounds"] == pytest.approx([-math.pi / 2, math.pi / 2])
    env.close()
    other = cartpole(2, cfg_hook=pole_fallen_at(math.pi / 3)).spec
    # The same hook (by name) and stock task: only the termination term's bound differs.
    assert other.details["changes_to_stock_task"] == spec.details["changes_to_stock_task"]
    assert other.details["terminations"]["pole_fallen"] != terms["pole_fallen"]
    assert other.digest() != spec.digest()


def test_privileged_perturbation_changes_only_privileged_fields():
    env = cartpole(4, noise=False)
    env.reset(seed=3)
    for _ in range(5):
        env.step(torch.zeros(4, 1))
    before = env.observe()
    env.perturb_privileged(range(4), seed=1)
    after = env.observe()
    assert torch.equal(before["joint_pos_rel"], after["joint_pos_rel"])
    assert torch.equal(before["joint_vel_rel"], after["joint_vel_rel"])
    assert not torch.equal(before["pole_mass"], after["pole_mass"])
    env.close()


def test_student_is_refused_a_privileged_field():
    env = cartpole(2)
    obs = env.reset(seed=0)
    guard = StudentOnly(lambda o: torch.zeros(2, 1), env.schema)
    with pytest.raises(LeakageError, match="pole_mass"):
        guard(obs)
    assert guard(StudentOnly.deployable(obs, env.schema)).shape == (2, 1)
    with pytest.raises(SchemaError, match="'joint_vel_rel' whose role is 'teacher_only'"):
        ObservationSchema("leaky", env.schema.fields, {"student": ("joint_pos_rel", "joint_vel_rel")})
    env.close()


def test_unknown_tasks_and_closed_envs_give_clear_errors():
    """The contract's own errors (actions, ranges, push) are checked in test_env_contract.py."""
    with pytest.raises(KeyError, match="unknown Isaac Lab task 'hopper'.*cartpole"):
        make_env("hopper", 2, engine=ENGINE)
    env = cartpole(2)
    env.reset(seed=0)
    other = cartpole(2)                       # one simulation per process: the first env is closed
    with pytest.raises(RuntimeError, match="one simulation per process"):
        env.step(torch.zeros(2, 1))
    other.close()


# --------------------------------------------------------------------------- end to end (slow)
@pytest.mark.slow
def test_cartpole_teacher_dagger_student_and_leakage_free_evaluation(tmp_path):
    from distillkit.pipeline import dagger_config, evaluate, train_student
    from distillkit.ppo import PPOConfig
    from distillkit.train import train_teacher

    teacher, student, report = tmp_path / "teacher", tmp_path / "student", tmp_path / "eval"
    log = train_teacher("cartpole", teacher, 32 * 24 * 2, num_envs=32, engine=ENGINE, progress=False,
                        config=PPOConfig(actor_hidden=(32, 32), critic_hidden=(32, 32)))
    assert len(log) == 2 and log["env_steps"].iloc[-1] == 32 * 24 * 2
    envs = EnvFactory("cartpole", ENGINE)
    rounds = train_student(envs, teacher, student, num_envs=8, progress=False,
                           config=dagger_config(rounds=2, steps_per_round=40, grad_steps=20))
    assert len(rounds) == 2
    summary = evaluate(envs, teacher, student, report, seeds=1, num_envs=4)
    assert list(summary["perturbation"]) == ["nominal", "push", "heavy_pole"]
    result = json.loads((report / "evaluation.json").read_text())
    assert result["engine"] == ENGINE and result["all_leakage_checks_passed"], result["leakage_checks"]
    assert {c["check"] for c in result["leakage_checks"]} == {"schema", "counterfactual", "poison", "export"}
    assert min(result["seeds"]) >= 1_000_000
    # An Isaac Lab teacher is refused on the MuJoCo engine, naming the engine.
    from distillkit.artifacts import ArtifactError
    from distillkit.train import load_actor

    with pytest.raises(ArtifactError, match="engine"):
        load_actor(teacher, make_env("cartpole", 1))


@pytest.mark.slow
def test_rough_terrain_smoke_with_the_generated_quadruped():
    from distillkit.ppo import PPO, PPOConfig, run_iteration

    env = make_env("anymal_rough", 4, engine=ENGINE, cfg_hook=small_terrain)
    robot = env.env.scene["robot"]
    assert robot.joint_names[:3] == ["LF_HAA", "LF_HFE", "LF_KFE"] and len(robot.joint_names) == 12
    assert env.schema.field("height_scan").shape == (187,)            # the stock 17 x 11 scanner, exact
    assert env.schema.field("height_scan_coarse").shape == (15,)
    assert env.schema.field("height_scan_coarse").noise is not None
    assert env.schema.field("contact_forces").shape == (4,)
    assert set(env.schema.group("teacher")) - set(env.schema.group("student")) == \
        {"base_lin_vel", "height_scan", "contact_forces", "base_mass"}
    assert "actuators: ANYDRIVE_3_SIMPLE_ACTUATOR_CFG" in " ".join(env.spec.details["changes_to_stock_task"])
    env.reset(seed=0)
    for step in range(5):
        result = env.step(torch.zeros(4, env.action_dim))
        assert all(torch.isfinite(v).all() for v in result.obs.values())
        if step == 0:
            assert result.validity["reset_transient"].all()         # settling onto the ground
    assert (result.obs["contact_forces"] > 0).any()                    # feet on the ground
    env.noise_scale = 0.0                    # the coarse scan is then exactly a subset of the exact one
    obs = env.observe()
    coarse, exact = obs["height_scan_coarse"], obs["height_scan"]
    assert all(torch.isin(coarse[i], exact[i]).all() for i in range(4))
    env.noise_scale = 3.0
    terms = dict(zip(env.env.observation_manager.active_terms["student"],
                     env.env.observation_manager._group_obs_term_cfgs["student"]))
    assert terms["base_ang_vel"].noise.n_max == pytest.approx(0.6)    # 3 x the stock 0.2
    ppo = PPO(env, PPOConfig(steps_per_env=8, epochs=1, minibatches=1, actor_hidden=(32,), critic_hidden=(32,)))
    obs, row = run_iteration(ppo, env.reset(seed=1), 0, 0)
    assert row["env_steps"] == 32 and math.isfinite(row["value_loss"])
    env.close()
