"""Shipping a trained teacher into the package: its own explicit command
(``python -m distillkit results --ship``), recording where it came from relative to the repository."""

from __future__ import annotations

import shutil
from pathlib import Path

from distillkit.artifacts import CHECKPOINTS, REPO_ROOT, load_tensors, read_manifest, save_artifact
from distillkit.results.jobs import run_folder


def ship_checkpoint(folder: Path, task: str, checkpoints: Path = CHECKPOINTS) -> Path:
    """Copy a teacher's actor, critic, selected actor (a run trained with checkpoint selection) and
    manifest (not its optimiser) into ``checkpoints`` (the package's), recording where it came from
    relative to the repository."""
    manifest = read_manifest(folder)
    dest = checkpoints / f"{task}_teacher"
    if dest.exists():
        shutil.rmtree(dest)
    kept = {k: v for k, v in manifest.items() if k not in ("format", "format_version", "files")}
    source = folder.resolve()
    stems = [stem for stem in ("actor", "critic", "selected_actor") if stem in manifest["files"]]
    save_artifact(dest, {stem: load_tensors(folder, stem, manifest) for stem in stems},
                  {**kept, "shipped_from": str(source.relative_to(REPO_ROOT) if source.is_relative_to(REPO_ROOT) else folder)})
    return dest


def ship(tasks: list[str], runs: Path) -> None:
    """Each task's seed-0 teacher (``runs/teachers``) becomes the package's checkpoint."""
    for task in tasks:
        print(f"shipped {ship_checkpoint(run_folder(runs / 'teachers', task, 'teacher', 0), task)}")
