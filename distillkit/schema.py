"""The observation schema: which named fields exist, who may see them, and why.

Privilege is the variable this course studies, so it is written down, not implied. Every field an
engine emits has a *role*:

- ``student``      deployable: a real robot could measure it (proprioception, IMU, commands, a
                   noisy local height scan). May carry a noise model of that sensor.
- ``teacher_only`` privileged actor input: simulator-only state (exact terrain, true base velocity,
                   contact forces, hidden physics parameters). Exact, never noisy.
- ``critic_only``  seen by the value function alone (asymmetric critic); never by an actor.

Groups follow from roles and are nested: ``student`` ⊂ ``teacher`` ⊂ ``critic``. A group may be
overridden explicitly (e.g. a teacher that drops the noisy scan because it has the exact one), but
no override can put a privileged field into the student group or a critic-only field into an actor.

Observations travel as a dict ``{field name: tensor}`` until the first layer of a network; a group's
field order is its concatenation order, fixed here and saved with every artifact.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import torch

from distillkit.atomic import write_json_atomic

FORMAT = "distillkit.schema"
FORMAT_VERSION = 1

ROLES = ("student", "teacher_only", "critic_only")
GROUPS = ("student", "teacher", "critic")
# Which roles each group may hold: the whole leakage rule in one table.
ROLES_ALLOWED_IN_GROUP = {
    "student": ("student",),
    "teacher": ("student", "teacher_only"),
    "critic": ("student", "teacher_only", "critic_only"),
}
NOISE_KINDS = ("gaussian", "uniform")


class SchemaError(ValueError):
    """A schema, or data checked against one, is malformed. The message names the field."""


@dataclass(frozen=True)
class Noise:
    """Sensor noise: additive ``gaussian`` (``scale`` = std) or ``uniform`` (on ±``scale``), and
    optionally outliers: each reading, with probability ``outliers``, is replaced by a draw
    uniform on ±``outlier_range`` (a depth sensor's reflections and missed returns). The env
    draws it every step for every world when its ``noise`` flag is on."""

    kind: str
    scale: float
    outliers: float = 0.0
    outlier_range: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in NOISE_KINDS:
            raise SchemaError(f"noise kind {self.kind!r} is unknown; expected one of {NOISE_KINDS}")
        if not (isinstance(self.scale, (int, float)) and self.scale >= 0):
            raise SchemaError(f"noise scale must be a number >= 0, got {self.scale!r}")
        if not (isinstance(self.outliers, (int, float)) and 0 <= self.outliers <= 1):
            raise SchemaError(f"noise outliers must be a probability in [0, 1], got {self.outliers!r}")
        if not (isinstance(self.outlier_range, (int, float)) and self.outlier_range >= 0):
            raise SchemaError(f"noise outlier_range must be a number >= 0, got {self.outlier_range!r}")

    def to_dict(self) -> dict[str, Any]:
        """Outlier keys only when there are outliers, so schemas without them keep their form."""
        outliers = {"outliers": self.outliers, "outlier_range": self.outlier_range} if self.outliers else {}
        return {"kind": self.kind, "scale": self.scale, **outliers}

    def describe(self) -> str:
        outliers = f"+outliers({self.outliers:g}, ±{self.outlier_range:g})" if self.outliers else ""
        return f"{self.kind}({self.scale:g}){outliers}"


@dataclass(frozen=True)
class Field:
    """One named observation term.

    ``shape`` is the shape of one sample of the sensor; with ``history_length`` > 1 the env emits
    the last ``history_length`` samples, oldest first, so the tensor per env is
    ``(history_length, *shape)``.
    """

    name: str
    shape: tuple[int, ...]
    role: str
    reason: str
    noise: Noise | None = None
    history_length: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise SchemaError(f"field name {self.name!r} must be a Python identifier")
        where = f"field {self.name!r}"
        if self.role not in ROLES:
            raise SchemaError(f"{where}: role {self.role!r} is unknown; expected one of {ROLES}")
        shape = self.shape
        if not (isinstance(shape, (tuple, list)) and len(shape) >= 1
                and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)):
            raise SchemaError(f"{where}: shape must be a non-empty tuple of positive ints, got {shape!r}")
        object.__setattr__(self, "shape", tuple(shape))
        if not (isinstance(self.reason, str) and self.reason.strip()):
            raise SchemaError(f"{where}: give a one-line reason why it is or is not deployable")
        if self.noise is not None and self.role != "student":
            raise SchemaError(
                f"{where}: only deployable (student) sensors carry a noise model; "
                f"a {self.role} field is exact simulator state")
        if not (isinstance(self.history_length, int) and self.history_length >= 1):
            raise SchemaError(f"{where}: history_length must be an int >= 1, got {self.history_length!r}")

    @property
    def privileged(self) -> bool:
        return self.role != "student"

    @property
    def obs_shape(self) -> tuple[int, ...]:
        """Shape of this field's tensor for one env (history stacked in front)."""
        return self.shape if self.history_length == 1 else (self.history_length, *self.shape)

    @property
    def size(self) -> int:
        """Number of scalars this field contributes to a flat network input."""
        n = self.history_length
        for d in self.shape:
            n *= d
        return n

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "role": self.role,
            "reason": self.reason,
            "noise": None if self.noise is None else self.noise.to_dict(),
            "history_length": self.history_length,
        }

    def describe(self) -> str:
        """A short text of everything that defines the field, for diffs."""
        noise = "none" if self.noise is None else self.noise.describe()
        return f"shape={list(self.shape)} role={self.role} noise={noise} history={self.history_length}"


@dataclass(frozen=True)
class ObservationSchema:
    """Named fields, their roles, and the field order of each group."""

    name: str
    fields: tuple[Field, ...]
    group_overrides: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", tuple(self.fields))
        seen: set[str] = set()
        for f in self.fields:
            if not isinstance(f, Field):
                raise SchemaError(f"schema {self.name!r}: expected Field objects, got {type(f).__name__}")
            if f.name in seen:
                raise SchemaError(f"schema {self.name!r}: duplicate field name {f.name!r}")
            seen.add(f.name)
        overrides = {g: tuple(names) for g, names in dict(self.group_overrides).items()}
        object.__setattr__(self, "group_overrides", overrides)
        for group, names in overrides.items():
            if group not in GROUPS:
                raise SchemaError(f"schema {self.name!r}: group {group!r} is unknown; expected one of {GROUPS}")
            if len(set(names)) != len(names):
                raise SchemaError(f"schema {self.name!r}: group {group!r} lists a field twice: {list(names)}")
            for n in names:
                if n not in seen:
                    raise SchemaError(f"schema {self.name!r}: group {group!r} names unknown field {n!r}")
        for group in GROUPS:
            for n in self.group(group):
                role = self.field(n).role
                if role not in ROLES_ALLOWED_IN_GROUP[group]:
                    raise SchemaError(
                        f"schema {self.name!r}: group {group!r} would see field {n!r} whose role is "
                        f"{role!r} ({self.field(n).reason}); the {group} group may only hold roles "
                        f"{ROLES_ALLOWED_IN_GROUP[group]}")

    # ----------------------------------------------------------------------------------- queries
    # The fields never change (a frozen dataclass of tuples), so their names and each group's
    # names are computed once: ``flatten`` runs for every network call.
    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @cached_property
    def _groups(self) -> dict[str, tuple[str, ...]]:
        return {g: self.group_overrides[g] if g in self.group_overrides
                else tuple(f.name for f in self.fields if f.role in ROLES_ALLOWED_IN_GROUP[g]) for g in GROUPS}

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise SchemaError(f"schema {self.name!r} has no field {name!r}; fields are {list(self.names)}")

    def group(self, group: str) -> tuple[str, ...]:
        """Field names of a group, in concatenation order."""
        if group not in GROUPS:
            raise SchemaError(f"group {group!r} is unknown; expected one of {GROUPS}")
        return self._groups[group]

    def group_size(self, group: str) -> int:
        """Width of the flat vector the group's fields concatenate to."""
        return sum(self.field(n).size for n in self.group(group))

    @property
    def privileged_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.privileged)

    def names_with_role(self, role: str) -> tuple[str, ...]:
        """Names of the fields of one role, in schema order (e.g. ``teacher_only``: what an estimator may regress)."""
        if role not in ROLES:
            raise SchemaError(f"role {role!r} is unknown; expected one of {ROLES}")
        return tuple(f.name for f in self.fields if f.role == role)

    # ------------------------------------------------------------------------ checking tensors
    def validate_obs(self, obs: Mapping[str, torch.Tensor], num_envs: int) -> None:
        """Raise if ``obs`` is not exactly this schema's fields with the declared shapes."""
        missing = [n for n in self.names if n not in obs]
        unknown = [n for n in obs if n not in self.names]
        if missing or unknown:
            raise SchemaError(
                f"observation does not match schema {self.name!r}: missing {missing}, unknown {unknown}")
        for f in self.fields:
            got = tuple(obs[f.name].shape)
            want = (num_envs, *f.obs_shape)
            if got != want:
                raise SchemaError(f"field {f.name!r}: expected shape {want}, got {got}")

    def flatten(self, obs: Mapping[str, torch.Tensor], group: str) -> torch.Tensor:
        """Concatenate a group's fields into ``(num_envs, group_size)``: the only flattening there is."""
        names, known = self.group(group), self.names
        unknown = [n for n in obs if n not in known]
        if unknown:
            raise SchemaError(f"schema {self.name!r} has no field(s) {unknown}")
        parts = []
        for n in names:
            if n not in obs:
                raise SchemaError(f"group {group!r} needs field {n!r}, which the observation lacks")
            parts.append(obs[n].reshape(obs[n].shape[0], -1))
        return torch.cat(parts, dim=-1)

    # -------------------------------------------------------------------------- (de)serialising
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "fields": [f.to_dict() for f in self.fields],
            "group_overrides": {g: list(v) for g, v in self.group_overrides.items()},
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> ObservationSchema:
        def fail(msg: str) -> SchemaError:
            return SchemaError(f"{source}: {msg}")

        if not isinstance(data, dict):
            raise fail(f"expected a JSON object, got {type(data).__name__}")
        if data.get("format") != FORMAT:
            raise fail(f"'format' must be {FORMAT!r}, got {data.get('format')!r}")
        if data.get("format_version") != FORMAT_VERSION:
            raise fail(f"'format_version' must be {FORMAT_VERSION}, got {data.get('format_version')!r}")
        for key, kind in (("name", str), ("fields", list), ("group_overrides", dict)):
            if not isinstance(data.get(key), kind):
                raise fail(f"'{key}' must be a {kind.__name__}, got {type(data.get(key)).__name__}")
        fields = []
        for i, fd in enumerate(data["fields"]):
            if not isinstance(fd, dict):
                raise fail(f"fields[{i}] must be an object, got {type(fd).__name__}")
            expected = {"name", "shape", "role", "reason", "noise", "history_length"}
            if set(fd) != expected:
                raise fail(f"fields[{i}] ({fd.get('name')!r}) must have keys {sorted(expected)}, "
                           f"got {sorted(fd)}")
            noise = fd["noise"]
            try:
                if noise is not None:
                    if not (isinstance(noise, dict) and set(noise) in ({"kind", "scale"},
                                                                      {"kind", "scale", "outliers", "outlier_range"})):
                        raise SchemaError(f"noise must be null, {{kind, scale}} or {{kind, scale, outliers, "
                                          f"outlier_range}}, got {noise!r}")
                    noise = Noise(**noise)
                shape = fd["shape"]
                fields.append(Field(
                    name=fd["name"],
                    shape=tuple(shape) if isinstance(shape, list) else shape,
                    role=fd["role"], reason=fd["reason"], noise=noise,
                    history_length=fd["history_length"]))
            except SchemaError as err:
                raise fail(f"fields[{i}]: {err}") from None
        try:
            return cls(data["name"], tuple(fields), data["group_overrides"])
        except SchemaError as err:
            raise fail(str(err)) from None

    def save(self, path: str | os.PathLike) -> None:
        write_json_atomic(Path(path), self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> ObservationSchema:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise SchemaError(f"{path}: not valid JSON ({err})") from None
        return cls.from_dict(data, source=str(path))

    # ------------------------------------------------------------------------------- displaying
    def table(self):
        """The manifest as a pandas DataFrame: one row per field, with group membership."""
        import pandas as pd

        rows = []
        for f in self.fields:
            row = {"field": f.name, "shape": f.obs_shape, "role": f.role}
            for g in GROUPS:
                row[g] = "✓" if f.name in self.group(g) else ""
            row["noise"] = "" if f.noise is None else f"{f.noise.kind}({f.noise.scale:g})"
            row["reason"] = f.reason
            rows.append(row)
        return pd.DataFrame(rows).set_index("field")

    def compare_groups(self, a: str = "teacher", b: str = "student"):
        """Fields one group sees and the other does not (e.g. what the teacher knows that the student can't)."""
        import pandas as pd

        ga, gb = self.group(a), self.group(b)
        rows = [{"field": n, "seen_by": a, "not_by": b, "role": self.field(n).role,
                 "reason": self.field(n).reason} for n in ga if n not in gb]
        rows += [{"field": n, "seen_by": b, "not_by": a, "role": self.field(n).role,
                  "reason": self.field(n).reason} for n in gb if n not in ga]
        return pd.DataFrame(rows, columns=["field", "seen_by", "not_by", "role", "reason"])


def diff(a: ObservationSchema, b: ObservationSchema):
    """What changed from schema ``a`` to schema ``b``, per group: a pandas DataFrame with columns
    ``group, field, change, before, after``; ``change`` is added / removed / changed / moved
    (moved = same field, different position, i.e. a different network input layout)."""
    import pandas as pd

    rows = []
    for group in GROUPS:
        ga, gb = a.group(group), b.group(group)
        for n in ga:
            if n not in gb:
                rows.append((group, n, "removed", a.field(n).describe(), ""))
        for n in gb:
            if n not in ga:
                rows.append((group, n, "added", "", b.field(n).describe()))
        common_a = [n for n in ga if n in gb]
        common_b = [n for n in gb if n in ga]
        for n in common_a:
            before, after = a.field(n).describe(), b.field(n).describe()
            if before != after:
                rows.append((group, n, "changed", before, after))
            elif common_a.index(n) != common_b.index(n):
                rows.append((group, n, "moved", f"position {ga.index(n)}", f"position {gb.index(n)}"))
    return pd.DataFrame(rows, columns=["group", "field", "change", "before", "after"])

