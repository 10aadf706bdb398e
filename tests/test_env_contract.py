"""The env contract (:class:`distillkit.envs.base.BatchedEnv`), checked the same way on every
installed engine of the registry: adding an engine adds its run here.

Every engine offers the cart-pole, with the same range names, so it is the task checked. Isaac Lab
runs one simulation per process, so each test builds its own env (about a second once Warp has
compiled its kernels, which the first Isaac Lab and MuJoCo Warp envs of a session do).
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

os.environ.setdefault("DISTILLKIT_ISAAC_ASSETS", "generated")   # CI is offline: never wait on the bucket

from distillkit.envs import REGISTRY, VALIDITY_SIGNALS, ActionError, BatchedEnv, StepResult, make_env  # noqa: E402
from distillkit.envs.base import OPTIONAL_FEATURES  # noqa: E402

INSTALLED = [name for name, engine in REGISTRY.items() if engine.installed()]
NUM_ENVS = 4
TASK = "cartpole"


@pytest.fixture(params=INSTALLED)
def engine(request) -> str:
    return request.param


def build(engine: str, noise: bool = True) -> BatchedEnv:
    return make_env(TASK, NUM_ENVS, engine=engine, noise=noise)


def zeros(env: BatchedEnv) -> torch.Tensor:
    return torch.zeros(env.num_envs, env.action_dim)


def test_every_registered_engine_is_checked_here():
    assert set(INSTALLED) == {"mujoco", "mujoco_warp", "isaaclab"}, "an engine is not installed: its contract goes unchecked"


def test_the_registry_entry_matches_the_engine_class(engine):
    entry = REGISTRY[engine]
    cls = entry.load()
    assert issubclass(cls, BatchedEnv) and cls.engine == engine
    assert set(cls.tasks) == set(entry.tasks) and TASK in entry.tasks
    assert cls.features <= set(OPTIONAL_FEATURES)
    for feature in OPTIONAL_FEATURES:
        assert (getattr(cls, feature) is not None) == (feature in cls.features), feature


def test_features_are_declared_not_discovered():
    with pytest.raises(TypeError, match="declares feature 'push' but does not implement push"):
        type("Undeclared", (BatchedEnv,), {"features": frozenset({"push"})})
    with pytest.raises(TypeError, match="implements push\\(\\) but does not declare it"):
        type("Silent", (BatchedEnv,), {"push": lambda self, ids, change: None})
    with pytest.raises(TypeError, match="features names \\['fly'\\]"):
        type("Unknown", (BatchedEnv,), {"features": frozenset({"fly"})})


def test_reset_step_and_observe_hand_out_the_schema(engine):
    env = build(engine, noise=False)
    assert env.spec.engine == engine and env.spec.task == TASK
    assert env.max_episode_steps == env.spec.max_episode_steps and env.action_dim == env.spec.action_dim
    obs = env.reset(seed=0)
    env.schema.validate_obs(obs, NUM_ENVS)
    assert list(obs) == list(env.schema.names)
    assert all(v.dtype == torch.float32 and v.device == env.device for v in obs.values())
    for _ in range(5):
        result = env.step(zeros(env))
    assert isinstance(result, StepResult)
    env.schema.validate_obs(result.obs, NUM_ENVS)
    env.schema.validate_obs(result.final_obs, NUM_ENVS)
    assert set(result.reward_terms) == set(env.spec.reward_weights)
    assert result.reward.shape == (NUM_ENVS,)
    assert torch.allclose(sum(result.reward_terms.values()), result.reward, atol=1e-5)
    assert list(result.validity) == list(VALIDITY_SIGNALS)
    assert all(v.dtype == torch.bool and v.shape == (NUM_ENVS,) for v in result.validity.values())
    assert torch.equal(result.terminated, result.validity["fell"])
    assert torch.equal(result.truncated, result.validity["timeout"])
    assert (torch.as_tensor(env.episode_step) == 5).all()
    # Observed again without stepping (and without noise): the same observation.
    again = env.observe()
    assert all(torch.equal(again[name], result.obs[name]) for name in result.obs)
    env.close()


def test_the_same_seed_gives_the_same_episodes(engine):
    env = build(engine)
    actions = [torch.full((NUM_ENVS, env.action_dim), 0.3 * (-1) ** k) for k in range(10)]
    runs = []
    for _ in range(2):
        trace = [env.reset(seed=5)]
        trace += [env.step(a).obs for a in actions]
        runs.append(trace)
    assert all(torch.equal(a[n], b[n]) for a, b in zip(*runs) for n in a)
    other = env.reset(seed=6)
    assert any(not torch.equal(other[n], runs[0][0][n]) for n in other), "the seed has no effect"
    env.close()


def test_actions_are_clipped_and_flagged(engine):
    env = build(engine)
    with pytest.raises(RuntimeError, match="call reset\\(\\) before step\\(\\)"):
        env.step(zeros(env))
    with pytest.raises(RuntimeError, match="call reset\\(\\) before observe\\(\\)"):
        env.observe()
    env.reset(seed=5)
    actions = torch.tensor([[0.5], [1.5], [-2.0], [1.0]])
    result = env.step(actions)
    assert result.validity["action_saturated"].tolist() == [False, True, True, False]
    assert actions[1, 0] == 1.5, "the caller's tensor must not be modified"
    assert not result.validity["reset_transient"].any()         # the cart-pole has no settling phase
    env.close()


@pytest.mark.parametrize("actions, message", [
    (torch.zeros(3, 1), "actions must have shape \\(4, 1\\) \\(num_envs, action_dim\\), got \\(3, 1\\)"),
    (torch.zeros(4), "got \\(4,\\)"),
    (torch.tensor([[0.0], [math.nan], [0.0], [0.0]]), "NaN/inf in env\\(s\\) \\[1\\]"),
    (np.full((4, 1), np.inf), "NaN/inf in env\\(s\\) \\[0, 1, 2, 3\\]"),
])
def test_bad_actions_get_a_clear_error(engine, actions, message):
    env = build(engine)
    env.reset(seed=0)
    with pytest.raises(ActionError, match=message):
        env.step(actions)
    env.close()


def test_optional_features_do_what_they_declare(engine):
    env = build(engine, noise=False)
    if env.supports("override_ranges"):
        digest = env.spec.digest()
        env.override_ranges({"pole_angle": [0.1, 0.1]})
        assert env.spec.digest() != digest
        with pytest.raises(KeyError, match="no range 'gravity'"):
            env.override_ranges({"gravity": [0.0, 1.0]})
    if env.supports("push"):
        with pytest.raises(ValueError, match="velocity_change must have shape"):
            env.push([0, 1], [[1.0, 2.0]])
        runs = []
        for push in (False, True):
            env.reset(seed=3)
            for _ in range(3):
                env.step(zeros(env))
            if push:
                env.push([0], [[2.0]])               # spin world 0's pole: only its next step changes
            runs.append(env.step(zeros(env)).obs)
        changed = [any(not torch.equal(runs[0][n][i], runs[1][n][i]) for n in runs[0]) for i in range(NUM_ENVS)]
        assert changed == [True] + [False] * (NUM_ENVS - 1)
    env.reset(seed=3)
    if env.supports("perturb_privileged"):
        before = env.observe()
        env.perturb_privileged(np.arange(NUM_ENVS), seed=1)
        after = env.observe()
        privileged = [f.name for f in env.schema.fields if f.role != "student"]
        assert all(torch.equal(before[n], after[n]) for n in env.schema.group("student"))
        assert any(not torch.equal(before[n], after[n]) for n in privileged)
    for feature in set(OPTIONAL_FEATURES) - env.features:
        assert getattr(env, feature) is None and not env.supports(feature)
    env.close()
