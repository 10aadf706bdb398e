"""Batched environments: one contract (:class:`BatchedEnv`), one module per engine, one registry
(:mod:`distillkit.envs.registry`) naming them, and :class:`EnvFactory`, the one value that says
which env to build (task, engine, device) and knows its task's schema."""

from distillkit.envs.base import VALIDITY_SIGNALS, ActionError, BatchedEnv, EngineFeatureError, StepResult
from distillkit.envs.factory import EnvFactory
from distillkit.envs.registry import ENGINES, REGISTRY, get_engine


def make_env(task: str = "cartpole", num_envs: int = 64, engine: str = "mujoco", **kwargs) -> BatchedEnv:
    """Build ``task`` on ``engine`` (default: MuJoCo C on the CPU); ``kwargs`` go to the engine's
    env class (e.g. ``nthread`` on ``mujoco``, ``cfg_hook`` on ``isaaclab``)."""
    return get_engine(engine).load()(task, num_envs, **kwargs)


__all__ = ["ENGINES", "REGISTRY", "VALIDITY_SIGNALS", "ActionError", "BatchedEnv", "EngineFeatureError", "EnvFactory",
           "StepResult", "get_engine", "make_env"]
