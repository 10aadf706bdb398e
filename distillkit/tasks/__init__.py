"""Tasks written in this repo (MJCF + MDP), run by the MuJoCo engines.

- ``cartpole``: the quick task (trains in well under a minute on a CPU).
- ``walker_rough``: the flagship, a planar biped on procedurally generated rough terrain.
"""

from __future__ import annotations

from distillkit.tasks.base import MujocoTask
from distillkit.tasks.cartpole import Cartpole
from distillkit.tasks.spec import TaskSpec, TaskSpecError
from distillkit.tasks.walker import WalkerRough

TASKS: dict[str, type[MujocoTask]] = {
    Cartpole.name: Cartpole,
    WalkerRough.name: WalkerRough,
}


def make_mujoco_task(name: str, num_envs: int) -> MujocoTask:
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; available: {sorted(TASKS)}")
    return TASKS[name](num_envs)


__all__ = ["TASKS", "MujocoTask", "TaskSpec", "TaskSpecError", "make_mujoco_task"]
