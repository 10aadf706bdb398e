"""Batched environments: one interface (:class:`BatchedEnv`), one module per engine."""

from distillkit.envs.base import VALIDITY_SIGNALS, ActionError, BatchedEnv, StepResult


#: Engine names ``make_env`` (and the CLI's ``--engine``) accept.
ENGINES = ("mujoco", "mujoco_warp", "isaaclab")


def make_env(task: str = "cartpole", num_envs: int = 64, engine: str = "mujoco", **kwargs) -> BatchedEnv:
    """Build ``task`` on ``engine`` (default: MuJoCo C on the CPU)."""
    if engine == "mujoco":
        from distillkit.envs.mujoco_cpu import MujocoEnv

        return MujocoEnv(task, num_envs, **kwargs)
    if engine == "mujoco_warp":
        from distillkit.envs.mujoco_warp import MujocoWarpEnv

        return MujocoWarpEnv(task, num_envs, **kwargs)
    if engine == "isaaclab":
        # Isaac Lab 3.0 kit-less (Newton physics); offline it runs on generated assets (distillkit.assets).
        from distillkit.envs.isaaclab import IsaacLabEnv

        return IsaacLabEnv(task, num_envs, **kwargs)
    raise ValueError(f"unknown engine {engine!r}; available: {list(ENGINES)}")


__all__ = ["ENGINES", "VALIDITY_SIGNALS", "ActionError", "BatchedEnv", "StepResult", "make_env"]
