"""The engines distillkit runs: name -> the module and class implementing the env contract, and the
tasks each offers. ``make_env`` and the CLI read this table; adding an engine is one module, one
line here and its run of ``tests/test_env_contract.py``.

Engine modules are imported only when an env is made: each pulls in its own heavy dependencies
(Warp compiles kernels, Isaac Lab takes seconds to import), which listing engines or tasks must not.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

from distillkit.envs.base import BatchedEnv
from distillkit.tasks import TASKS as REPO_TASKS


@dataclass(frozen=True)
class Engine:
    """One engine: where its env class lives and what it needs installed."""

    name: str
    module: str                 # the module defining the env class
    env_class: str              # its class, a BatchedEnv
    tasks: tuple[str, ...]      # task names it offers (its env class may accept aliases too)
    requires: tuple[str, ...]   # top-level packages it imports
    about: str
    repo_tasks: bool = False    # runs distillkit.tasks (a HostEnv): a task's schema is its class's make_schema()

    def missing(self) -> list[str]:
        """The packages it needs that are not installed (checked without importing them)."""
        return [package for package in self.requires if importlib.util.find_spec(package) is None]

    def installed(self) -> bool:
        return not self.missing()

    def check_installed(self) -> None:
        """ImportError naming the missing packages, if any."""
        if self.missing():
            raise ImportError(f"engine {self.name!r} needs the packages {self.missing()}, not installed here")

    def load(self) -> type[BatchedEnv]:
        """The env class (importing the engine's module)."""
        self.check_installed()
        return getattr(importlib.import_module(self.module), self.env_class)


REGISTRY: dict[str, Engine] = {engine.name: engine for engine in (
    Engine("mujoco", "distillkit.envs.mujoco_cpu", "MujocoEnv", tuple(REPO_TASKS), ("mujoco",),
           "MuJoCo C on the CPU, worlds on a C thread pool", repo_tasks=True),
    Engine("mujoco_warp", "distillkit.envs.mujoco_warp", "MujocoWarpEnv", tuple(REPO_TASKS),
           ("mujoco_warp", "warp"), "MuJoCo Warp, all worlds together on a GPU (or the Warp CPU device)",
           repo_tasks=True),
    # Isaac Lab 3.0 kit-less (Newton physics); offline it runs on generated assets (distillkit.assets).
    Engine("isaaclab", "distillkit.envs.isaaclab", "IsaacLabEnv", ("cartpole", "anymal_rough"),
           ("isaaclab", "isaaclab_tasks"), "Isaac Lab's stock manager-based tasks, on the CPU or a GPU"),
)}

#: Engine names ``make_env`` (and the CLI's ``--engine``) accept.
ENGINES = tuple(REGISTRY)


def get_engine(name: str) -> Engine:
    """The registry entry of engine ``name``, or an error listing the engines."""
    if name not in REGISTRY:
        raise ValueError(f"unknown engine {name!r}; available: {list(ENGINES)}")
    return REGISTRY[name]
