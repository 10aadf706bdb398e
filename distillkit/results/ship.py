"""Shipping trained teachers into the package: its own explicit command
(``python -m distillkit results --ship``), recording where each came from relative to the repository.
Two kinds ship: the claims' teacher (section ``teachers``) and the teacher with a privileged encoder
(section ``student_types``), which chapter 7's latent and estimator students learn from."""

from __future__ import annotations

import shutil
from pathlib import Path

from distillkit.artifacts import CHECKPOINTS, REPO_ROOT, load_tensors, read_manifest, save_artifact
from distillkit.envs import EnvFactory
from distillkit.results.budgets import BUDGETS, STUDENT_TYPE_SEEDS, TRAINING_SEEDS, encoder_teacher
from distillkit.results.jobs import run_folder, teacher_policy

#: each kind of teacher that ships: the seeds its section trains, and the section
KINDS = {"teacher": (TRAINING_SEEDS, "teachers"), "encoder_teacher": (STUDENT_TYPE_SEEDS, "student_types")}


def ship_checkpoint(folder: Path, task: str, checkpoints: Path = CHECKPOINTS, chosen_by: str = "",
                    kind: str = "teacher") -> Path:
    """Copy a teacher's actor, critic, selected actor (a run trained with checkpoint selection) and
    manifest (not its optimiser) into ``checkpoints`` (the package's), recording where it came from
    relative to the repository."""
    manifest = read_manifest(folder)
    dest = checkpoints / f"{task}_{kind}"
    if dest.exists():
        shutil.rmtree(dest)
    kept = {k: v for k, v in manifest.items() if k not in ("format", "format_version", "files")}
    source = folder.resolve()
    stems = [stem for stem in ("actor", "critic", "selected_actor") if stem in manifest["files"]]
    save_artifact(dest, {stem: load_tensors(folder, stem, manifest) for stem in stems},
                  {**kept, "shipped_from": str(source.relative_to(REPO_ROOT) if source.is_relative_to(REPO_ROOT) else folder),
                  "shipped_because": chosen_by})
    return dest


def validation_scores(task: str, folders: dict[int, Path]) -> dict[int, dict]:
    """Each seed's teacher (``folders``) on the validation seeds (never the held-out panel the results
    are measured on): success rate and mean return."""
    from distillkit.evaluate import evaluate_policy, validation_seeds

    envs, budget = EnvFactory(task), BUDGETS[task]
    scores = {}
    for seed, folder in folders.items():
        actor, _ = teacher_policy(folder, envs)
        ep = evaluate_policy(actor, envs, validation_seeds(budget.eval_seeds),
                             num_envs=budget.eval_worlds, training_seeds=[seed])
        scores[seed] = {"success": float(ep["success"].mean()), "return": float(ep["return"].mean())}
    return scores


def unfinished_runs(folders, env_steps: int) -> list[str]:
    """The run folders without a finished run of ``env_steps``: missing, or interrupted (an interrupted run
    already has a manifest and weights, which must not ship as a teacher)."""
    return [str(f) for f in folders
            if not (f / "manifest.json").exists() or read_manifest(f)["env_steps"] < env_steps]


def best_seed(scores: dict[int, dict]) -> int:
    """The seed with the highest validation success, then return."""
    return max(scores, key=lambda seed: (scores[seed]["success"], scores[seed]["return"]))


def ship(tasks: list[str], runs: Path, kinds: list[str] | None = None) -> None:
    """Each task's best teacher of each kind on the validation seeds (``runs/teachers``) becomes the
    package's checkpoint: the chapters demonstrate with a reliable expert, as a practitioner would
    deploy the best of their training seeds; the results average every seed. A kind whose section
    has not run yet is skipped, saying so. ``kinds``: which of :data:`KINDS` to ship (None: every kind)."""
    for task in tasks:
        for kind in kinds or KINDS:
            seeds, section = KINDS[kind]
            # where the claims' teacher has an encoder (the flagship), it is also the encoder teacher
            variant = encoder_teacher(task)[0] if kind == "encoder_teacher" else kind
            folders = {seed: run_folder(runs / "teachers", task, variant, seed) for seed in seeds[task]}
            unfinished = unfinished_runs(folders.values(), BUDGETS[task].env_steps)
            if unfinished:
                print(f"not shipped: {task} {kind} (runs missing or still training: {unfinished}; "
                      f"`python -m distillkit results --section {section} --tasks {task}` trains them)")
                continue
            scores = validation_scores(task, folders)
            seed = best_seed(scores)
            because = (f"training seed {seed} of {sorted(scores)}: the highest validation success, then return "
                       f"({', '.join(f'seed {s}: {v['success']:.2f}, {v['return']:.0f}' for s, v in scores.items())})")
            dest = ship_checkpoint(folders[seed], task, chosen_by=because, kind=kind)
            print(f"shipped {dest}\n  {because}")
