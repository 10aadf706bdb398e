"""The course pipeline as commands: teacher artifact -> student artifact -> evaluation -> export.

Each step reads and writes artifact folders (safetensors + manifest), so every result names the
teacher, data, mask rules, DAgger settings and seeds it came from.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch

from distillkit.artifacts import (
    ArtifactError,
    check_compatible,
    command_line,
    load_tensors,
    provenance,
    read_manifest,
    save_artifact,
)
from distillkit.dagger import DaggerConfig, dagger
from distillkit.envs import EnvFactory
from distillkit.evaluate import PERTURBATIONS, evaluate_policy, evaluate_student, held_out_seeds, validation_seeds
from distillkit.masks import MaskRules
from distillkit.students import make_student
from distillkit.train import Selection, load_actor

KIND = "student"


def train_student(envs: EnvFactory, teacher_folder: str | Path, out: str | Path, *, config: DaggerConfig,
                  architecture: str = "mlp", num_envs: int = 32, seed: int = 0, progress: bool = True,
                  allow_mismatch: bool = False, evaluate_round: Callable | None = None,
                  teacher_fault: float = 0.0, options: dict | None = None,
                  selection: Selection | None = None) -> pd.DataFrame:
    """DAgger (``schedule="bc"`` for behaviour cloning) from a teacher artifact into a student
    artifact, in one env of ``num_envs`` worlds built by ``envs`` (task, engine, device; closed
    when done). Returns the per-round table (with ``evaluate_round(student)``'s numbers, if
    given). A teacher made on another engine is refused unless ``allow_mismatch``. ``options``
    override the architecture's defaults (:data:`distillkit.students.ARCHITECTURES`), e.g.
    ``{"hidden": (128, 64)}``. ``teacher_fault > 0`` makes the teacher imperfect by design
    (:class:`distillkit.corruption.Faulty`: that fraction of its episodes end in a fault that
    drives the robot down), for the masking lesson. ``selection``: the student the artifact keeps
    is the round's that scored best on validation seeds (:func:`validate_student`), not the last."""
    from distillkit.corruption import Faulty

    env = envs(num_envs)
    try:
        actor, teacher_manifest, overrides = load_actor(teacher_folder, env, allow_mismatch=allow_mismatch)
        teacher = Faulty(actor, teacher_fault, seed=seed) if teacher_fault > 0 else actor
        torch.manual_seed(seed)                    # the student's initial weights come from the seed too
        student = make_student(architecture, env.schema, env.action_dim, **(options or {}))
        validate = (lambda student: validate_student(student, envs, selection, seed)) if selection else None
        rounds = dagger(env, teacher, student, config, seed=seed, progress=progress, evaluate=evaluate_round,
                        selection=selection, validate=validate)
    finally:
        env.close()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rounds.to_csv(out / "rounds.csv", index=False)
    save_artifact(out, {"student": student.state_dict()}, {
        "kind": KIND, "task": envs.task, "engine": envs.engine, "device": envs.device, "architecture": architecture,
        "options": student.options(), "seed": seed, "num_envs": num_envs,
        "dagger": {**config.to_dict(), "rules": config.rules.to_dict()},
        "selection": selection.to_dict() if selection else None,
        "selected_round": int(rounds.loc[rounds["selected"], "round"].iloc[0]) if selection else config.rounds - 1,
        "teacher": {"folder": str(teacher_folder), "task_spec_digest": teacher_manifest["task_spec_digest"],
                    "files": teacher_manifest["files"], "overrides_accepted": overrides, "fault_rate": teacher_fault},
        "schema": env.schema.to_dict(), "task_spec": env.spec.to_dict(), "task_spec_digest": env.spec.digest(),
        "student_inputs": list(student.input.names), "training_seeds": [seed],
        "provenance": provenance(), "command": command_line(),
    })
    return rounds


def validate_student(student, envs: EnvFactory, selection: Selection, seed: int) -> dict:
    """The student alone (student fields only) on ``selection``'s validation seeds: its success rate
    and mean return, as :func:`distillkit.train.validate` scores a PPO checkpoint."""
    from distillkit.leakage import StudentOnly

    episodes = evaluate_policy(StudentOnly(student, envs.schema), envs, validation_seeds(selection.seeds),
                               num_envs=selection.worlds, training_seeds=[seed],
                               observe=lambda obs: StudentOnly.deployable(obs, envs.schema))
    return {"success": float(episodes["success"].mean()), "return": float(episodes["return"].mean())}


def load_student(folder: str | Path, env, *, allow_mismatch: bool = False):
    manifest = read_manifest(folder)
    if manifest.get("kind") != KIND:
        raise ArtifactError(f"{folder}: holds a {manifest.get('kind')!r} artifact, not a {KIND!r}")
    check_compatible(manifest, env.schema, env.spec, str(folder), allow_mismatch)
    if "options" not in manifest:
        raise ArtifactError(f"{folder}/manifest.json has no 'options' (the student's constructor options): it was "
                            f"made before the student protocol; retrain it")
    student = make_student(manifest["architecture"], env.schema, env.action_dim, **manifest["options"])
    try:
        student.load_state_dict(load_tensors(folder, "student", manifest))
    except RuntimeError as err:
        raise ArtifactError(f"{folder}/student.safetensors does not fit a {manifest['architecture']} student: {err}") from None
    return student.to(env.device).eval(), manifest


def evaluate(envs: EnvFactory, teacher_folder: str | Path, student_folder: str | Path, out: str | Path, *,
             seeds: int = 4, num_envs: int = 32, export: bool = True,
             perturbations: list[str] | None = None) -> pd.DataFrame:
    """The evaluation artifact of a student (and its ONNX export + the export check),
    in envs built by ``envs``: teacher and student must have been made on its engine. ``perturbations``:
    names from the task's suite (default: all of it)."""
    suite = {p.name: p for p in PERTURBATIONS[envs.task]}
    unknown = sorted(set(perturbations or ()) - set(suite))
    if unknown:
        raise ValueError(f"{envs.task} has no perturbations {unknown}; its suite is {sorted(suite)}")
    env = envs(1)                                  # the artifacts are checked against a real env's schema and spec
    try:
        teacher, teacher_manifest, _ = load_actor(teacher_folder, env)
        student, manifest = load_student(student_folder, env)
    finally:
        env.close()
    out = Path(out)
    export_path = None
    if export:
        from distillkit.export import export_onnx

        export_path = export_onnx(student, envs.schema, out / "student.onnx")
    training = set(manifest["training_seeds"]) | {teacher_manifest["seed"]}
    chosen = None if perturbations is None else [suite[name] for name in perturbations]
    return evaluate_student(student, lambda obs: teacher(obs), envs, out, seeds=held_out_seeds(seeds),
                            training_seeds=training, num_envs=num_envs, export_path=export_path, perturbations=chosen,
                            extra={"teacher": str(teacher_folder), "student": str(student_folder),
                                   "student_manifest": {k: manifest[k] for k in ("architecture", "dagger", "seed")}})


def dagger_config(**kwargs) -> DaggerConfig:
    """A DaggerConfig from flat keyword arguments (mask rules included)."""
    rules = {f.name: kwargs.pop(f.name) for f in dataclasses.fields(MaskRules) if f.name in kwargs}
    return DaggerConfig(**kwargs, rules=MaskRules(**rules))
