"""The task spec: everything that defines a task's results, versioned and hashable.

Two runs are comparable only if they trained on the same physics, rewards, resets and
randomisation. The spec collects those choices in one plain value; its ``digest()`` goes into
every artifact, and loading an artifact against a different spec is an error, not a warning.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


class TaskSpecError(ValueError):
    """A task spec is malformed, or two specs that must agree do not."""


@dataclass(frozen=True)
class TaskSpec:
    """A task as run on one engine.

    Ranges are ``[low, high]`` pairs of uniform distributions; nested dicts are allowed where a
    task needs more structure (terrain generator settings, command ranges).
    """

    task: str
    task_version: int
    engine: str
    engine_version: str
    physics_dt: float
    control_dt: float
    episode_length_s: float
    action_dim: int
    reward_weights: dict[str, float]
    reset_distribution: dict[str, Any]
    randomisation: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Canonical JSON types (tuples become lists), so a spec equals itself after a round trip
        # through an artifact's manifest.
        for name in ("reward_weights", "reset_distribution", "randomisation", "details"):
            object.__setattr__(self, name, json.loads(json.dumps(getattr(self, name))))
        ratio = self.control_dt / self.physics_dt
        if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            raise TaskSpecError(
                f"task {self.task!r}: control_dt {self.control_dt} must be a whole multiple of physics_dt "
                f"{self.physics_dt}")
        if not self.reward_weights:
            raise TaskSpecError(f"task {self.task!r}: reward_weights is empty")

    @property
    def frame_skip(self) -> int:
        """Physics steps per control step."""
        return round(self.control_dt / self.physics_dt)

    @property
    def max_episode_steps(self) -> int:
        return round(self.episode_length_s / self.control_dt)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskSpec:
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(data, dict) or set(data) != names:
            got = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise TaskSpecError(f"task spec must have keys {sorted(names)}, got {got}")
        return cls(**data)

    def digest(self) -> str:
        """SHA-256 of the canonical JSON: equal digests ⇔ equal specs."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def __hash__(self) -> int:
        return hash(self.digest())
