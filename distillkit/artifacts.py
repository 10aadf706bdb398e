"""Artifacts: folders that hold a result together with everything that defined it.

A training artifact is a folder with

- ``*.safetensors``: weights (never pickles), normaliser statistics included;
- ``manifest.json``: the full observation schema, the task spec (engine and versions, reward terms
  and weights, resets, randomisation), the algorithm's settings, seeds, package version and git
  commit, the exact command, a training-curve summary, and the SHA-256 of every weights file.

Every file is written atomically (temp file + ``os.replace``); weight files are named by their
hash, so a new checkpoint never overwrites the files the current manifest points to, and the
manifest is written last. A run killed at any moment leaves a loadable artifact, and weights that
do not match the manifest's hashes are refused.
Loading checks the schema and the task spec against the env it will run in; a mismatch is an
error naming what differs, unless ``allow_mismatch=True``, which is then recorded.

The teachers shipped inside the package live in :data:`CHECKPOINTS` (one folder per task,
``<task>_teacher``); :func:`shipped_teacher` names one, :func:`distillkit.train.load_actor`
loads it like any other teacher artifact.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from distillkit.atomic import write_json_atomic
from distillkit.schema import ObservationSchema, diff

FORMAT = "distillkit.artifact"
FORMAT_VERSION = 1
REPO_ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"


class ArtifactError(ValueError):
    """An artifact is malformed, torn, or from another task, schema or engine version."""


def shipped_teacher(task: str, kind: str = "teacher") -> Path:
    """The folder of ``task``'s teacher shipped with the package: ``kind`` ``"teacher"`` (the claims'
    teacher) or ``"encoder_teacher"`` (with a privileged encoder, for latent and estimator students)."""
    folder = CHECKPOINTS / f"{task}_{kind}"
    if not (folder / "manifest.json").exists():
        shipped = sorted(p.name for p in CHECKPOINTS.iterdir() if (p / "manifest.json").exists())
        raise ArtifactError(f"no shipped {kind} for task {task!r} in {CHECKPOINTS}; shipped: {shipped}")
    return folder


def save_tensors_atomic(folder: Path, stem: str, tensors: dict[str, torch.Tensor]) -> dict[str, str]:
    """Save tensors as ``<stem>-<hash>.safetensors`` atomically: a new checkpoint never overwrites
    the files the current manifest points to. Returns ``{"file", "sha256"}``."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{stem}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp)
        digest = sha256(Path(tmp))
        name = f"{stem}-{digest[:12]}.safetensors"
        os.replace(tmp, folder / name)
        return {"file": name, "sha256": digest}
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cpu_model() -> str:
    """The processor's model name ("unknown" where the OS does not say). Runs are deterministic on one
    machine; on another kind of CPU the physics and networks can take other SIMD paths and round
    differently, so episodes drift apart (their statistics agree, their per-episode numbers do not)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def provenance() -> dict[str, str]:
    """Package versions, the CPU and the git commit the code ran from."""
    import mujoco
    import numpy

    import distillkit

    try:
        root = Path(__file__).resolve().parents[1]
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10).stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        if dirty and commit != "unknown":
            commit += "+dirty"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return {"distillkit": distillkit.__version__, "git_commit": commit, "torch": torch.__version__,
            "mujoco": mujoco.__version__, "numpy": numpy.__version__, "python": platform.python_version(),
            "cpu": cpu_model()}


def save_artifact(folder: str | os.PathLike, weights: dict[str, dict[str, torch.Tensor]],
                  manifest: dict[str, Any]) -> None:
    """Write ``weights`` (name -> tensors), then ``manifest.json`` pointing at them, then remove
    weight files no manifest points to. Killed at any moment, the folder holds a manifest whose
    files all exist and match: the previous checkpoint or this one."""
    folder = Path(folder)
    files = {stem: save_tensors_atomic(folder, stem, tensors) for stem, tensors in weights.items()}
    write_json_atomic(folder / "manifest.json",
                      {"format": FORMAT, "format_version": FORMAT_VERSION, **manifest, "files": files})
    current = {entry["file"] for entry in files.values()}
    for old in folder.glob("*.safetensors"):
        if old.name not in current:
            old.unlink()


def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    folder = Path(folder)
    path = folder / "manifest.json"
    if not path.exists():
        raise ArtifactError(f"{folder}: no manifest.json - not a distillkit artifact (or not finished writing)")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ArtifactError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ArtifactError(f"{path}: 'format' must be {FORMAT!r}, got {got!r}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{path}: 'format_version' must be {FORMAT_VERSION}, "
                            f"got {manifest.get('format_version')!r}")
    return manifest


def load_tensors(folder: str | os.PathLike, stem: str, manifest: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Load the weights ``stem`` after checking they are the file the manifest describes."""
    entry = manifest.get("files", {}).get(stem)
    if not isinstance(entry, dict) or set(entry) != {"file", "sha256"}:
        raise ArtifactError(f"{folder}/manifest.json: no weights {stem!r} listed "
                            f"(it lists {sorted(manifest.get('files', {}))})")
    path = Path(folder) / entry["file"]
    if not path.exists():
        raise ArtifactError(f"{path}: missing")
    if sha256(path) != entry["sha256"]:
        raise ArtifactError(f"{path}: SHA-256 differs from the manifest's; the file was changed or "
                            f"half-written")
    return load_file(path)


def check_compatible(manifest: dict[str, Any], schema, spec, source: str,
                     allow_mismatch: bool = False) -> list[str]:
    """Compare an artifact's schema and task spec with the env's. Returns the differences
    (empty when they agree); raises unless ``allow_mismatch``."""
    problems = []
    saved_schema = ObservationSchema.from_dict(manifest["schema"], source=f"{source} (schema)")
    if saved_schema != schema:
        table = diff(saved_schema, schema)
        changes = "; ".join(f"{r.group}.{r.field} {r.change}" for r in table.itertuples()) or \
            "same groups, different field details"
        problems.append(f"observation schema differs ({changes})")
    saved_spec = manifest["task_spec"]
    current = spec.to_dict()
    engine_of = lambda s: f"{s.get('engine')!r} {s.get('engine_version')}"
    if engine_of(saved_spec) != engine_of(current):
        # Named first: another engine (or version) means other physics, whatever else agrees.
        problems.append(f"engine: artifact was made on {engine_of(saved_spec)}, env runs {engine_of(current)}")
    for key in sorted(set(saved_spec) | set(current)):
        if key in ("engine", "engine_version"):
            continue
        if saved_spec.get(key) != current.get(key):
            problems.append(f"task spec '{key}': artifact has {saved_spec.get(key)!r}, env has {current.get(key)!r}")
    if problems and not allow_mismatch:
        raise ArtifactError(
            f"{source} was made for another task/schema/engine:\n  - " + "\n  - ".join(problems)
            + "\nRetrain it, or pass allow_mismatch=True to use it anyway (the override is recorded).")
    return problems


def command_line() -> str:
    """The command that is running, as a user would type it."""
    program = Path(sys.argv[0]).name
    if program == "__main__.py":
        program = "python -m distillkit"
    return " ".join([program, *sys.argv[1:]])
