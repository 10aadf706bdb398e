"""EnvFactory: builds envs of the task and engine it names, knows the task's schema without
building an env for a repo task, and refuses an unknown engine or a task its engine lacks."""

import pytest

import distillkit.envs
from distillkit.envs import REGISTRY, EnvFactory
from distillkit.envs.host import HostEnv
from distillkit.envs.mujoco_cpu import MujocoEnv
from distillkit.tasks import TASKS


@pytest.fixture
def built(monkeypatch) -> list[tuple]:
    """Every env built through make_env or MujocoEnv while the test runs: (task, num_envs, kwargs)."""
    calls = []
    make_env, init = distillkit.envs.make_env, MujocoEnv.__init__

    def counting_make_env(task, num_envs, **kwargs):
        calls.append((task, num_envs, kwargs))
        return make_env(task, num_envs, **kwargs)

    def counting_init(self, task, num_envs, **kwargs):
        calls.append((task, num_envs, kwargs))
        init(self, task, num_envs, **kwargs)

    monkeypatch.setattr(distillkit.envs, "make_env", counting_make_env)
    monkeypatch.setattr(MujocoEnv, "__init__", counting_init)
    return calls


@pytest.mark.parametrize("task", sorted(TASKS))
def test_it_builds_envs_of_the_named_task_and_engine(task, built):
    envs = EnvFactory(task)
    env = envs(3, noise=False)
    try:
        assert isinstance(env, MujocoEnv) and env.num_envs == 3 and env.noise is False
        assert env.spec.task == task and env.spec.engine == "mujoco" and str(env.device) == "cpu"
    finally:
        env.close()
    assert built[0] == (task, 3, {"engine": "mujoco", "device": "cpu", "noise": False})


@pytest.mark.parametrize("task", sorted(TASKS))
def test_the_schema_is_a_built_envs_and_is_read_without_building_one(task, built):
    envs = EnvFactory(task)
    schema = envs.schema
    assert built == [], f"reading the schema of a repo task built envs: {built}"
    assert envs.schema is schema                   # read once
    env = EnvFactory(task)(1)
    try:
        assert schema == env.schema
    finally:
        env.close()


def test_the_schema_of_a_repo_task_is_read_without_an_env_on_every_engine_that_runs_them(built):
    for name, engine in REGISTRY.items():
        if engine.repo_tasks:
            assert EnvFactory("cartpole", name).schema == TASKS["cartpole"].make_schema()
    assert built == []


@pytest.mark.parametrize("engine", [pytest.param(name, marks=[pytest.mark.slow] if name == "isaaclab" else [])
                                    for name in REGISTRY])
def test_the_registry_says_which_engines_run_the_repo_tasks(engine):
    entry = REGISTRY[engine]
    if not entry.installed():
        pytest.skip(f"engine {engine!r} is not installed")
    assert entry.repo_tasks == issubclass(entry.load(), HostEnv)


def test_it_is_a_value():
    assert EnvFactory("cartpole") == EnvFactory("cartpole", "mujoco", "cpu")
    assert EnvFactory("cartpole") != EnvFactory("cartpole", "mujoco_warp")
    assert len({EnvFactory("cartpole"), EnvFactory("cartpole")}) == 1
    with pytest.raises(AttributeError):
        EnvFactory("cartpole").task = "walker_rough"


def test_an_unknown_engine_is_refused_by_name_listing_the_engines():
    with pytest.raises(ValueError, match=r"unknown engine 'bullet'; available: \['mujoco', 'mujoco_warp', 'isaaclab'\]"):
        EnvFactory("cartpole", "bullet")


def test_a_task_the_engine_does_not_offer_is_refused_naming_both():
    with pytest.raises(ValueError, match=r"engine 'mujoco' has no task 'hopper'; its tasks: \['cartpole', 'walker_rough'\]"):
        EnvFactory("hopper")
    with pytest.raises(ValueError, match=r"engine 'mujoco' has no task 'anymal_rough'.*engines \['isaaclab'\] run"):
        EnvFactory("anymal_rough")
    with pytest.raises(ValueError, match=r"engine 'isaaclab' has no task 'walker_rough'"):
        EnvFactory("walker_rough", "isaaclab")
