"""Which env to build, as one value.

Evaluation, the leakage probes, the widgets and the student pipeline each build envs of one task
on one engine and device. :class:`EnvFactory` is that choice, made once (by the CLI from
``--task/--engine/--device``, by a notebook, by a results job) and passed through as it is,
instead of a task name plus ``engine=`` and ``device=`` keywords that every function re-reads and
re-validates. It also answers the question many callers only had: the task's observation schema,
without building a throwaway env to read it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from distillkit.envs.base import BatchedEnv
from distillkit.envs.registry import ENGINES, get_engine
from distillkit.schema import ObservationSchema
from distillkit.tasks import TASKS as REPO_TASKS


@dataclass(frozen=True)
class EnvFactory:
    """Builds envs of ``task`` on ``engine``, simulating on ``device``: ``envs(num_envs, **kwargs)``
    is ``make_env(task, num_envs, engine=engine, device=device, **kwargs)``. The engine and the
    task are checked here, when the value is made, with an error naming what is wrong.

    The caller owns every env it builds and closes it (``env.close()``, in a ``finally``)."""

    task: str
    engine: str = "mujoco"
    device: str = "cpu"

    def __post_init__(self) -> None:
        engine = get_engine(self.engine)          # ValueError naming the engine and listing the available ones
        if self.task not in engine.tasks:
            elsewhere = [name for name in ENGINES if name != self.engine and self.task in get_engine(name).tasks]
            raise ValueError(f"engine {self.engine!r} has no task {self.task!r}; its tasks: {list(engine.tasks)}"
                             + (f" (engines {elsewhere} run {self.task!r})" if elsewhere else ""))

    def __call__(self, num_envs: int, **kwargs) -> BatchedEnv:
        """A new env of ``num_envs`` worlds; ``kwargs`` go to the engine's env class (e.g. ``noise=False``)."""
        from distillkit.envs import make_env

        return make_env(self.task, num_envs, engine=self.engine, device=self.device, **kwargs)

    @functools.cached_property
    def schema(self) -> ObservationSchema:
        """The task's observation schema, read once. A repo task on an engine that runs
        :mod:`distillkit.tasks` declares it (``make_schema()``, a classmethod): no env is built.
        Another engine reports it from a built env (Isaac Lab reads it from its observation
        manager), so one env of one world is built, read and closed."""
        if get_engine(self.engine).repo_tasks:
            return REPO_TASKS[self.task].make_schema()
        env = self(1)
        try:
            return env.schema
        finally:
            env.close()
