"""What a task on the MuJoCo engines defines: the model, resets, fields, rewards and failures.

A task is the MDP for N worlds, written in numpy against MuJoCo state arrays. It never steps
physics itself: the engine does (the C library on the CPU, MuJoCo Warp on a GPU), so the same
task runs on both. Per-world episode data (commands, terrain, physics parameters) live on the
task object, in arrays indexed by world.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np

from distillkit.schema import ObservationSchema
from distillkit.tasks.spec import TaskSpec


@dataclass
class PhysicsState:
    """Read-only views of the physics of some worlds after a step (or a reset): all N worlds,
    or the rows ``ids`` (per-world task arrays are indexed with ``ids`` to match)."""

    qpos: np.ndarray        # (worlds, nq)
    qvel: np.ndarray        # (worlds, nv)
    sensordata: np.ndarray  # (worlds, nsensordata)
    ids: np.ndarray | slice = slice(None)


class MujocoTask(ABC):
    """Subclasses set the class attributes and implement the abstract methods."""

    name: str
    version: int               # bump whenever anything that changes results changes
    physics_dt: float
    control_dt: float
    episode_length_s: float
    action_dim: int
    reward_weights: dict[str, float]
    reset_transient_steps: int = 0
    # True: for the reset transient the actuators hold the task's default pose (action 0) whatever
    # the policy commands, as a robot settles under its stand controller before the policy takes
    # over; the env reports the executed (zero) action as the world's last action.
    hold_pose_while_settling: bool = False
    push_dofs: tuple[int, ...] = ()  # qvel entries a push changes (see MujocoEnv.push)

    def __init__(self, num_envs: int):
        self.num_envs = num_envs
        self.schema = self.make_schema()

    # ------------------------------------------------------------------ defined by each task
    @classmethod
    @abstractmethod
    def make_schema(cls) -> ObservationSchema:
        """Every field the task emits, with its role and why."""

    @abstractmethod
    def mjcf(self) -> str:
        """The MJCF model, written by this repo."""

    @abstractmethod
    def describe(self) -> dict[str, dict[str, Any]]:
        """``reset_distribution``, ``randomisation`` and ``details`` for the task spec."""

    @abstractmethod
    def reset_worlds(self, ids: np.ndarray, rng: np.random.Generator,
                     models: list[mujoco.MjModel]) -> tuple[np.ndarray, np.ndarray]:
        """Draw a new episode for worlds ``ids``; may edit their models (physics randomisation,
        terrain). Returns initial ``qpos`` (len(ids), nq) and ``qvel`` (len(ids), nv)."""

    @abstractmethod
    def perturb_privileged(self, s: PhysicsState, ids: np.ndarray, rng: np.random.Generator,
                           models: list[mujoco.MjModel]) -> None:
        """Change only what a deployed robot cannot sense (hidden physics parameters, terrain
        beyond the student's scan) in worlds ``ids``, whose physics ``s`` shows: the
        counterfactual leakage probe's lever."""

    @abstractmethod
    def ctrl(self, actions: np.ndarray) -> np.ndarray:
        """Map clipped actions in [-1, 1] to MuJoCo ``ctrl`` (N, nu)."""

    @abstractmethod
    def observe(self, s: PhysicsState, last_actions: np.ndarray) -> dict[str, np.ndarray]:
        """Clean value of every schema field for the worlds of ``s``, (worlds, *shape)."""

    @abstractmethod
    def evaluate(self, s: PhysicsState, actions: np.ndarray,
                 last_actions: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Unweighted reward terms (names = ``reward_weights`` keys) and failures (N,) bool,
        for the control step that applied ``actions`` after ``last_actions``."""

    # ----------------------------------------------------------------------------- shared
    def bind(self, model: mujoco.MjModel) -> None:
        """Remember the compiled model and where each named sensor sits in ``sensordata``."""
        self.model = model
        self._sensor_slices = {}
        for sid in range(model.nsensor):
            name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_SENSOR, sid)
            adr = int(model.sensor_adr[sid])
            self._sensor_slices[name] = slice(adr, adr + int(model.sensor_dim[sid]))

    def start_curriculum(self) -> dict[str, Any]:
        """Training only: from the next resets on, draw each world's difficulty from how its last
        episode went instead of from the reset distribution. Returns the curriculum's settings (the
        trainer records them in its artifact; the task spec, and so evaluation, is unchanged)."""
        raise ValueError(f"task {self.name!r} has no curriculum")

    def curriculum_state(self) -> np.ndarray:
        """Where each world stands in the curriculum, saved with a training checkpoint so that a
        resumed run continues from these difficulties instead of starting over."""
        raise ValueError(f"task {self.name!r} has no curriculum")

    def restore_curriculum(self, state: np.ndarray) -> None:
        """Continue a curriculum from :meth:`curriculum_state` of a checkpoint."""
        raise ValueError(f"task {self.name!r} has no curriculum")

    def override_ranges(self, ranges: dict[str, list]) -> None:
        """Change entries of the reset distribution or the randomisation (e.g. only the hardest
        terrain, low friction) for the next resets. The engine then rebuilds its spec, so results
        under an override carry its digest."""
        reset, randomisation = dict(self.reset_ranges), dict(getattr(self, "randomisation_ranges", {}))
        for key, value in ranges.items():
            if key in reset:
                reset[key] = list(value)
            elif key in randomisation:
                randomisation[key] = list(value)
            else:
                raise KeyError(f"task {self.name!r} has no range {key!r}; it has {sorted(reset) + sorted(randomisation)}")
        self.reset_ranges = reset
        self.randomisation_ranges = randomisation

    def spec(self, engine: str, engine_version: str) -> TaskSpec:
        about = self.describe()
        return TaskSpec(
            task=self.name, task_version=self.version, engine=engine, engine_version=engine_version,
            physics_dt=self.physics_dt, control_dt=self.control_dt,
            episode_length_s=self.episode_length_s, action_dim=self.action_dim,
            reward_weights=dict(self.reward_weights),
            reset_distribution=about["reset_distribution"],
            randomisation=about["randomisation"],
            details=about["details"],
        )


def uniform(rng: np.random.Generator, low_high, size) -> np.ndarray:
    """Draw from U[low, high]; ranges are stored as [low, high] pairs in the task spec."""
    low, high = low_high
    return rng.uniform(low, high, size=size)
