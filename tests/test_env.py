import json

import mujoco
import numpy as np
import pytest
import scipy.optimize
import scipy.stats
import torch

from distillkit.envs import VALIDITY_SIGNALS, make_env
from distillkit.envs.mujoco_cpu import MujocoEnv
from distillkit.schema import SchemaError
from distillkit.tasks import TASKS, TaskSpec, TaskSpecError
from distillkit.tasks.cartpole import Cartpole
from distillkit.tasks.walker import WalkerRough


def random_actions(env, steps, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(env.num_envs, env.action_dim, generator=g) * 2 - 1) * scale for _ in range(steps)]


def rollout_obs(task, seed, steps=100, num_envs=6, nthread=None):
    env = make_env(task, num_envs, nthread=nthread)
    trace = [env.reset(seed=seed)]
    for a in random_actions(env, steps, scale=0.5):
        trace.append(env.step(a).obs)
    env.close()
    return trace


@pytest.mark.parametrize("task", sorted(TASKS))
def test_same_seed_gives_identical_observations_for_100_steps(task):
    a = rollout_obs(task, seed=7, nthread=2)
    b = rollout_obs(task, seed=7, nthread=0)      # thread count must not matter either
    c = rollout_obs(task, seed=8)
    for oa, ob in zip(a, b):
        for name in oa:
            assert torch.equal(oa[name], ob[name]), name
    assert any(not torch.equal(oa[n], oc[n]) for oa, oc in zip(a, c) for n in oa), "seed has no effect"


@pytest.mark.parametrize("task", sorted(TASKS))
def test_observations_match_the_schema_and_rewards_sum(task):
    env = make_env(task, 5)
    obs = env.reset(seed=0)
    env.schema.validate_obs(obs, 5)
    assert list(obs) == list(env.schema.names)
    for a in random_actions(env, 30):
        r = env.step(a)
        env.schema.validate_obs(r.obs, 5)
        env.schema.validate_obs(r.final_obs, 5)
        assert set(r.reward_terms) == set(env.spec.reward_weights)
        # float32 terms summed in another order: equal up to rounding (terms are O(1))
        assert torch.allclose(sum(r.reward_terms.values()), r.reward, atol=1e-5)
        assert set(r.validity) == set(VALIDITY_SIGNALS)
        assert all(v.dtype == torch.bool and v.shape == (5,) for v in r.validity.values())
        assert all(v.dtype == torch.float32 for v in r.obs.values())


class ShortCartpole(Cartpole):
    episode_length_s = 10 / 60          # 10 control steps


def test_truncation_exposes_the_true_final_observation_and_sets_timeout():
    env = MujocoEnv(ShortCartpole(4), 4, noise=False)
    obs = env.reset(seed=1)
    for step in range(10):
        before = env.physics().qpos.copy()
        r = env.step(torch.zeros(4, 1))
        if step < 9:
            assert not r.truncated.any() and not r.validity["timeout"].any()
            obs = r.obs
    failed = r.terminated
    assert (r.truncated == ~failed).all() and r.truncated.any()
    assert torch.equal(r.validity["timeout"], r.truncated)
    for i in torch.nonzero(r.truncated).flatten().tolist():
        final = r.final_obs["joint_pos_rel"][i]            # (history 3, 2)
        # the final observation continues the episode: its history is the previous obs shifted ...
        assert torch.equal(final[:2], obs["joint_pos_rel"][i, 1:])
        # ... and it is not the start of the next episode, which has a filled history
        fresh = r.obs["joint_pos_rel"][i]
        assert torch.equal(fresh[0], fresh[2]) and not torch.equal(final, fresh)
        assert env.episode_step[i] == 0
    # the final observation is the physics state after the last step: one more control step from `before`
    check = MujocoEnv(ShortCartpole(4), 4, noise=False)
    check.reset(seed=1)
    for _ in range(10):
        last = check.step(torch.zeros(4, 1))
    assert torch.equal(last.final_obs["joint_pos_rel"], r.final_obs["joint_pos_rel"])
    assert not np.allclose(before, env.physics().qpos)  # the world really was reset afterwards


def test_pushed_walker_falls_and_sets_fell():
    env = make_env("walker_rough", 4)
    env.reset(seed=0)
    for _ in range(10):
        r = env.step(torch.zeros(4, 6))
    assert not r.validity["fell"].any(), "the walker should stand on its default pose"
    env.push(np.array([1, 3]), np.array([[-4.0, 0.0], [4.0, 0.0]]))
    fell = torch.zeros(4, dtype=torch.bool)
    for _ in range(40):
        r = env.step(torch.zeros(4, 6))
        fell |= r.validity["fell"]
        assert torch.equal(r.validity["fell"], r.terminated)
    assert fell.tolist() == [False, True, False, True]
    assert (r.reward_terms["termination"] <= 0).all()


def test_clipped_actions_set_action_saturated_and_apply_the_clipped_value():
    env_a, env_b = make_env("cartpole", 3, noise=False), make_env("cartpole", 3, noise=False)
    env_a.reset(seed=2), env_b.reset(seed=2)
    big = torch.tensor([[3.0], [0.5], [-1.0]])
    ra = env_a.step(big)
    rb = env_b.step(big.clamp(-1, 1))
    assert ra.validity["action_saturated"].tolist() == [True, False, False]
    assert not rb.validity["action_saturated"].any()
    assert torch.equal(ra.obs["joint_pos_rel"], rb.obs["joint_pos_rel"])
    assert big[0, 0] == 3.0, "the caller's tensor must not be modified"


def test_reset_transient_marks_the_first_steps_of_each_episode():
    env = make_env("walker_rough", 2)
    env.reset(seed=0)
    k = WalkerRough.reset_transient_steps
    flags = [bool(env.step(torch.zeros(2, 6)).validity["reset_transient"][0]) for _ in range(k + 3)]
    assert flags == [True] * k + [False] * 3


def test_the_walker_holds_its_default_pose_while_it_settles_whatever_the_policy_commands():
    k = WalkerRough.reset_transient_steps
    still, kicking = make_env("walker_rough", 2, noise=False), make_env("walker_rough", 2, noise=False)
    still.reset(seed=3), kicking.reset(seed=3)
    wild = torch.tensor([[1.0, -1.0, 1.0, -1.0, 1.0, -1.0], [-0.5, 0.5, -0.5, 0.5, -0.5, 0.5]])
    for _ in range(k):
        a, b = still.step(torch.zeros(2, 6)), kicking.step(wild)
        assert torch.equal(a.obs["joint_pos"], b.obs["joint_pos"])
        assert torch.equal(b.obs["actions"][:, -1], torch.zeros(2, 6)), "the executed action is the hold"
    a, b = still.step(torch.zeros(2, 6)), kicking.step(wild)       # the policy has taken over
    assert not torch.equal(a.obs["joint_pos"], b.obs["joint_pos"])


def test_unknown_names_are_refused():
    env = make_env("cartpole", 2)
    obs = env.reset()
    with pytest.raises(SchemaError, match="has no field\\(s\\) \\['joint_vel'\\]"):
        env.schema.flatten({**obs, "joint_vel": torch.zeros(2, 2)}, "student")
    with pytest.raises(KeyError, match="unknown task 'hopper'"):
        make_env("hopper", 2)
    with pytest.raises(ValueError, match="unknown engine 'bullet'"):
        make_env("cartpole", 2, engine="bullet")


def test_engine_fields_are_checked_against_the_schema():
    class Broken(Cartpole):
        def observe(self, s, last_actions):
            fields = super().observe(s, last_actions)
            fields["pole_mass"] = fields["pole_mass"][:, :0]
            return fields
    env = MujocoEnv(Broken(2), 2)
    with pytest.raises(SchemaError, match="field 'pole_mass': engine for 'cartpole' produced shape \\(2, 0\\)"):
        env.reset(seed=0)


def test_noise_touches_only_fields_with_a_noise_model():
    clean, noisy = make_env("walker_rough", 3, noise=False), make_env("walker_rough", 3, noise=True)
    a, b = clean.reset(seed=4), noisy.reset(seed=4)
    for f in clean.schema.fields:
        same = torch.equal(a[f.name], b[f.name])
        assert same == (f.noise is None), f.name


def test_outlier_noise_replaces_the_stated_share_of_readings_within_its_range():
    """The walker's own scan: 6 cm gaussian noise, and 30 % of readings replaced by outliers on ±0.5 m."""
    clean, noisy = make_env("walker_rough", 64, noise=False), make_env("walker_rough", 64, noise=True)
    noise = clean.schema.field("scan_ahead").noise
    a, b = clean.reset(seed=4), noisy.reset(seed=4)
    errors = []
    for _ in range(20):
        action = torch.zeros(64, 6)
        a, b = clean.step(action).obs, noisy.step(action).obs
        errors.append((b["scan_ahead"][:, -1] - a["scan_ahead"][:, -1]).abs())
    errors = torch.cat(errors)
    outliers = errors > 5 * noise.scale          # a gaussian reading is never 5 sigma off here
    # An outlier lands within 5 sigma of the true reading (near 0 on the start platform) with
    # probability 10 sigma / (2 range): those look like ordinary noise.
    visible = noise.outliers * (1 - 10 * noise.scale / (2 * noise.outlier_range))
    assert abs(outliers.float().mean().item() - visible) < 0.02
    assert (b["scan_ahead"][:, -1].abs() <= noise.outlier_range + 1.0).all()
    # The rest is the gaussian mixed with the hidden outliers, whose |error| is uniform on [0, 5 sigma]:
    # the median of that mixture (0.674 sigma for the gaussian alone; the outliers move it up by ~20 %).
    sigma, p, spread = noise.scale, noise.outliers, noise.outlier_range

    def share_below(m):
        gaussian = (1 - p) * (2 * scipy.stats.norm.cdf(m / sigma) - 1)
        return (gaussian + p * m / spread) / ((1 - p) * (2 * scipy.stats.norm.cdf(5) - 1) + p * 5 * sigma / spread)

    median = scipy.optimize.brentq(lambda m: share_below(m) - 0.5, 0.0, 5 * sigma)
    assert errors[~outliers].median().item() == pytest.approx(median, rel=0.1)


def test_gaps_are_in_the_terrain_as_configured():
    from distillkit.tasks.terrain import TerrainConfig, make_bank

    cfg = TerrainConfig()
    bank = make_bank(cfg)
    drops = np.diff(bank, axis=-1) < -0.8 * cfg.gap_depth           # a gap's near edge
    assert drops.any(axis=-1).mean() > 0.9, "most profiles hold at least one gap"
    # A gap's width at level 0 is cfg.gap_width[0] (to the grid), wider on harder levels.
    def widths(level):
        out = []
        for profile in bank[level]:
            low = profile < profile.max() - 0.8 * cfg.gap_depth
            edges = np.flatnonzero(np.diff(low.astype(int)))
            out += [(b - a) * cfg.resolution for a, b in zip(edges[::2], edges[1::2])]
        return np.array(out)
    assert widths(0).max() <= cfg.gap_width[0] + 2 * cfg.resolution
    assert widths(cfg.levels - 1).max() > widths(0).max()


def test_per_world_randomisation_reaches_the_physics_and_the_privileged_fields():
    env = make_env("walker_rough", 4)
    obs = env.reset(seed=3)
    torso = mujoco.mj_name2id(env.model, mujoco.mjtObj.mjOBJ_BODY, "torso")
    for i, m in enumerate(env.models):
        assert m.geom_friction[0, 0] == pytest.approx(float(obs["friction"][i, 0]))
        assert m.body_mass[torso] - env.model.body_mass[torso] == pytest.approx(float(obs["payload_mass"][i, 0]), abs=1e-5)
    assert len({float(x) for x in obs["friction"][:, 0]}) == 4


def test_height_scan_matches_mujoco_ray_casts():
    """The numpy terrain lookup must agree with the heightfield MuJoCo actually collides with."""
    env = make_env("walker_rough", 3, noise=False)
    obs = env.reset(seed=5)
    for _ in range(5):
        obs = env.step(torch.zeros(3, 6)).obs
    task = env.task
    for i in range(3):
        data = mujoco.MjData(env.models[i])
        mujoco.mj_kinematics(env.models[i], data)          # places the terrain geom
        x, z = env.physics().qpos[i, :2]
        hits = []
        for dx in task.scan_teacher:
            geomid = np.zeros(1, dtype=np.int32)
            start = np.array([x + dx, 0.1, 5.0])
            dist = mujoco.mj_ray(env.models[i], data, start, np.array([0.0, 0.0, -1.0]), None, 1, -1, geomid)
            hits.append(5.0 - dist)
        expected = z - np.array(hits) - task.nominal_height
        assert np.abs(obs["height_scan"][i].numpy() - expected).max() < 1e-5


def test_terrain_bank_is_reproducible_from_its_seed_and_harder_with_level():
    from distillkit.tasks.terrain import TerrainConfig, make_bank

    a, b = make_bank(TerrainConfig(seed=3)), make_bank(TerrainConfig(seed=3))
    c = make_bank(TerrainConfig(seed=4))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    steps = np.abs(np.diff(a, axis=-1))
    steps[steps > 0.8 * TerrainConfig().gap_depth] = 0.0                # a gap's edges are as deep on every level
    roughness = steps.sum(axis=-1).mean(axis=1)                         # per level
    assert np.all(np.diff(roughness) > 0)


def test_task_spec_is_serialisable_and_hashable():
    env = make_env("walker_rough", 2)
    spec = env.spec
    assert spec.engine == "mujoco" and spec.engine_version == mujoco.__version__
    again = TaskSpec.from_dict(json.loads(json.dumps(spec.to_dict())))     # as read from a manifest
    assert again == spec and again.digest() == spec.digest() and hash(again) == hash(spec)
    changed = TaskSpec.from_dict({**spec.to_dict(), "reward_weights": {**spec.reward_weights, "alive": 0.0}})
    assert changed.digest() != spec.digest()
    with pytest.raises(TaskSpecError, match="task spec must have keys"):
        TaskSpec.from_dict({"task": "walker_rough"})
    with pytest.raises(TaskSpecError, match="must be a whole multiple of physics_dt"):
        TaskSpec.from_dict({**spec.to_dict(), "control_dt": 0.013})


def test_range_overrides_change_the_spec_and_unknown_ranges_are_refused():
    env = make_env("walker_rough", 2)
    digest = env.spec.digest()
    env.override_ranges({"friction": [0.3, 0.4]})
    assert env.spec.digest() != digest and env.spec.randomisation["friction"] == [0.3, 0.4]
    with pytest.raises(KeyError, match="no range 'gravity'"):
        env.override_ranges({"gravity": [0.0, 1.0]})


def test_the_terrain_curriculum_moves_worlds_by_how_their_episode_went():
    """Isaac Lab's terrain_levels_vel rule: up a level after walking far enough without falling,
    down after a fall, a random level after mastering the top; off, resets draw from the spec."""
    env = make_env("walker_rough", 6)
    task = env.task
    spec = env.spec.digest()
    settings = task.start_curriculum()
    assert settings["start_level"] == 0 and env.spec.digest() == spec, "evaluation's task spec is unchanged"
    env.reset(seed=0)
    assert (task.level == 0).all()
    top = task.terrain.levels - 1
    task.curriculum_levels[:] = [2, 2, 2, 0, top, top]
    far = task.curriculum_promote * task.command * task.episode_length_s
    task.base_x[:] = far + np.array([0.1, -0.5, 0.1, 0.1, 0.1, -0.5])
    task.fell[:] = [False, False, True, True, False, False]
    levels = task._curriculum_step(np.arange(6), np.random.default_rng(0))
    assert levels[:4].tolist() == [3, 2, 1, 0] and levels[5] == top
    assert 0 <= levels[4] <= top, "mastering the top level restarts anywhere"
    # a fall during a real episode: the world that falls is demoted at its reset
    env.reset(seed=1)
    before = task.level.copy()
    for _ in range(300):
        result = env.step(torch.full((6, 6), 1.0))         # every joint at its limit: the robot falls
        if result.terminated.any():
            break
    fell = result.terminated.numpy()
    assert fell.any() and (task.level[fell] == np.maximum(before[fell] - 1, 0)).all()
    assert (task.level[~fell] == before[~fell]).all()


def test_a_task_without_a_curriculum_says_so():
    with pytest.raises(ValueError, match="task 'cartpole' has no curriculum"):
        make_env("cartpole", 2).task.start_curriculum()


@pytest.mark.parametrize("task", sorted(TASKS))
def test_returned_tensors_are_never_overwritten_and_history_shifts(task):
    """Each step hands out new tensors (a later step or observe() leaves them as they were), and
    a history field of a world that did not reset is the previous one shifted by one sample."""
    env = make_env(task, 6)
    kept = [env.reset(seed=3)]
    copies = [{k: v.clone() for k, v in kept[0].items()}]
    previous = kept[0]
    history = [f.name for f in env.schema.fields if f.history_length > 1]
    assert history, "the test needs a history field"
    for a in random_actions(env, 40, scale=1.5):
        r = env.step(a)
        env.observe()
        for name in history:
            stay = ~r.done
            assert torch.equal(r.obs[name][stay, :-1], previous[name][stay, 1:])
            assert torch.equal(r.final_obs[name][:, :-1], previous[name][:, 1:])
            fresh = r.obs[name][r.done]                 # a reset world's history is its first sample
            assert torch.equal(fresh, fresh[:, -1:].expand_as(fresh))
        kept += [r.obs, r.final_obs]
        previous = r.obs
        copies += [{k: v.clone() for k, v in r.obs.items()}, {k: v.clone() for k, v in r.final_obs.items()}]
    env.close()
    for obs, copy in zip(kept, copies):
        for name in obs:
            assert torch.equal(obs[name], copy[name]), name


def test_cartpole_draws_its_resets_as_five_uniform_draws():
    """Cartpole.reset_worlds draws its five ranges in one call; the numbers are those of five
    calls of uniform in a row (and a range uniform refuses is refused the same way)."""
    task = Cartpole(8)
    task.bind(mujoco.MjModel.from_xml_string(task.mjcf()))
    models = [mujoco.MjModel.from_xml_string(task.mjcf()) for _ in range(8)]
    for override in ({}, {"cart_vel": [0.1, 0.2], "pole_mass_scale": [1.0, 1.0]}):
        task.override_ranges(override)
        ids = np.array([1, 4, 5])
        qpos, qvel = task.reset_worlds(ids, np.random.default_rng(11), models)
        rng, r = np.random.default_rng(11), task.reset_ranges
        draws = [rng.uniform(*pair, size=3) for pair in (r["cart_pos"], r["pole_angle"], r["cart_vel"], r["pole_vel"],
                                                          task.randomisation_ranges["pole_mass_scale"])]
        assert np.array_equal(qpos, np.stack(draws[:2], axis=1)) and np.array_equal(qvel, np.stack(draws[2:4], axis=1))
        assert np.array_equal(task.pole_mass[ids], task.nominal_pole_mass * draws[4])
    task.override_ranges({"cart_pos": [1.0, -1.0]})
    with pytest.raises(ValueError, match="high - low"):
        task.reset_worlds(np.array([0]), np.random.default_rng(0), models)
