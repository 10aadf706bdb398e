"""Section ``student_types``: beyond action matching. Every student architecture
(:data:`distillkit.students.ARCHITECTURES`: MLP, stacked history, GRU, RMA's latent student, Lee
et al.'s action + latent student, an explicit estimator) distilled by DAgger from a teacher with a
privileged encoder, with one budget for all; each alone on the held-out panel with its perturbation
suite, its leakage checks and its export, and a linear probe of what its memory holds about each
privileged field (:mod:`distillkit.inference_probe`)."""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
from pathlib import Path

import pandas as pd
from scipy import stats

from distillkit.results.budgets import (
    ENCODER_LATENT,
    PROBE_STEPS,
    STUDENT_BUDGETS,
    STUDENT_TYPE_SEEDS,
    StudentBudget,
    encoder_teacher,
    student_type_options,
)
from distillkit.results.jobs import StudentJob, TeacherJob, run_folder, run_jobs, teacher_policy
from distillkit.results.report import measured, render, update_claims_json, write_section

#: the student every other type is compared with: action matching by an MLP
ACTION_MATCHING = "mlp"
#: the perturbations of each task's suite that change hidden dynamics or terrain (the table's columns)
HIDDEN = {"cartpole": ("heavy_pole",), "walker_rough": ("low_friction", "heavy_payload", "hard_terrain")}


def type_budget(task: str, architecture: str) -> StudentBudget:
    """The student-types section's budget for ``architecture``: the students' budget, keeping each
    run's last round (budgets.py says why)."""
    return dataclasses.replace(STUDENT_BUDGETS[task], architecture=architecture, selection=None,
                               options=student_type_options(task, architecture))


def student_jobs(task: str, runs: Path) -> list[StudentJob]:
    from distillkit.students import ARCHITECTURES

    variant, _ = encoder_teacher(task)
    return [StudentJob(task, run_folder(runs / "teachers", task, variant, seed),
                       run_folder(runs / "student_types", task, architecture, seed), "first", seed,
                       type_budget(task, architecture))
            for seed in STUDENT_TYPE_SEEDS[task] for architecture in ARCHITECTURES]


def probe_scores(task: str, job: StudentJob) -> dict[str, float]:
    """Held-out R^2 per privileged field (and the teacher's latent) of a linear probe on the
    student's memory, from rollouts the student drives (the teacher labels): fitted on a training
    seed's states, scored on a held-out seed's (a memoryless student: on its input)."""
    import torch

    from distillkit.envs import EnvFactory
    from distillkit.evaluate import held_out_seeds
    from distillkit.inference_probe import probe
    from distillkit.pipeline import load_student
    from distillkit.rollouts import collect

    envs = EnvFactory(task)
    teacher, _ = teacher_policy(job.teacher, envs)
    env = envs(job.budget.num_envs)
    try:
        student, _ = load_student(job.out, env)
        fields = [*env.schema.names_with_role("teacher_only"), "latent"]
        rollouts = []
        for seed in (job.seed, held_out_seeds(1)[0]):
            generator = torch.Generator().manual_seed(seed)
            student.reset()
            with torch.no_grad():
                r, _ = collect(env, teacher, PROBE_STEPS[task], student=student, beta=0.0,
                               obs=env.reset(seed=seed), generator=generator)
            rollouts.append(r)
    finally:
        env.close()
    return probe(student, *rollouts, fields=fields)


def run(tasks: list[str], runs: Path, workers: int) -> None:
    from distillkit.claims import mean_ci, paired

    teachers = {task: encoder_teacher(task) for task in tasks}
    run_jobs([TeacherJob(task, variant, seed, run_folder(runs / "teachers", task, variant, seed), budget)
              for task, (variant, budget) in teachers.items() for seed in STUDENT_TYPE_SEEDS[task]],
             workers, "encoder teachers")
    jobs = {task: student_jobs(task, runs) for task in tasks}
    run_jobs([job for task in tasks for job in jobs[task]], workers, "student runs")
    for task in tasks:
        rows, probes = [], []
        for job in jobs[task]:
            summary = pd.read_csv(job.out / "evaluation" / "summary.csv")
            report = json.loads((job.out / "evaluation" / "evaluation.json").read_text())
            rows.append(summary.assign(architecture=job.budget.architecture, seed=job.seed,
                                       leakage_passed=report["all_leakage_checks_passed"],
                                       exported=any(c["check"] == "export" and c["passed"]
                                                    for c in report["leakage_checks"])))
            probes.append({"architecture": job.budget.architecture, "seed": job.seed, **probe_scores(task, job)})
        frame, probe_frame = pd.concat(rows, ignore_index=True), pd.DataFrame(probes)
        perturbations = ("nominal", *HIDDEN[task])
        record, lines = {}, [
            "| student | " + " | ".join(f"{p}: ÷ teacher (95 % CI)" for p in perturbations)
            + " | success, nominal | tracking error, nominal | leakage checks | exported |",
            "|---|" + "---:|" * (len(perturbations) + 4)]
        for architecture, at in frame.groupby("architecture", sort=False):
            cells, record[architecture] = [], {}
            for p in perturbations:
                part = at[at.perturbation == p]
                ratio = mean_ci(part["return_ratio"])
                record[architecture][p] = {"return_ratio": ratio, "success": mean_ci(part["student_success"]),
                                           "tracking_error": mean_ci(part["student_tracking_error"])}
                cells.append(f"{ratio['mean']:.2f} ({ratio['ci95'][0]:.2f}, {ratio['ci95'][1]:.2f})")
            nominal = at[at.perturbation == "nominal"]
            tracking = nominal["student_tracking_error"].mean()
            runs_of = at.drop_duplicates("seed")
            exported = f"{int(runs_of['exported'].sum())} of {len(runs_of)}"
            lines.append(f"| {architecture} | " + " | ".join(cells)
                         + f" | {nominal['student_success'].mean():.2f} | {'—' if pd.isna(tracking) else f'{tracking:.3f}'} | "
                         f"{int(runs_of['leakage_passed'].sum())} of {len(runs_of)} | {exported} |")
        # the question chapter 07 asks: does matching more than actions beat action matching? Paired
        # by training seed (each seed's students share one teacher), per perturbation
        ratios = frame.pivot_table(index=["perturbation", "seed"], columns="architecture", values="return_ratio")
        versus, paired_lines = {}, [
            "| student − mlp | " + " | ".join(f"{p}: difference (95 % CI), p" for p in perturbations) + " |",
            "|---|" + "---:|" * len(perturbations)]
        for architecture in [a for a in record if a != ACTION_MATCHING]:
            versus[architecture] = {p: paired(ratios.loc[p][architecture], ratios.loc[p][ACTION_MATCHING])
                                    for p in perturbations}
            paired_lines.append(f"| {architecture} | " + " | ".join(
                f"{c['difference']:+.2f} ({c['difference_ci95'][0]:+.2f}, {c['difference_ci95'][1]:+.2f}), "
                f"{c['p_value']:.2f}" for c in versus[architecture].values()) + " |")
        # many comparisons at once: a few p < 0.05 come by chance alone; the adjusted p says what survives
        p_values = [c["p_value"] for by_perturbation in versus.values() for c in by_perturbation.values()
                    if not math.isnan(c["p_value"])]
        smallest_adjusted = float(min(stats.false_discovery_control(p_values))) if p_values else math.nan
        multiple = (f"{sum(p < 0.05 for p in p_values)} of these {len(p_values)} comparisons have p < 0.05; adjusted "
                    f"for all {len(p_values)} (Benjamini–Hochberg, `scipy.stats.false_discovery_control`), the "
                    f"smallest p is {smallest_adjusted:.2f}.")
        fields = [c for c in probe_frame.columns if c not in ("architecture", "seed")]
        r2 = probe_frame.groupby("architecture", sort=False)[fields].mean()
        probe_lines = ["| student | " + " | ".join(fields) + " |", "|---|" + "---:|" * len(fields)]
        for architecture, r in r2.iterrows():
            probe_lines.append(f"| {architecture} | " + " | ".join("—" if pd.isna(v) else f"{v:.2f}" for v in r) + " |")
        command = f"python -m distillkit results --section student_types --tasks {task}"
        b = type_budget(task, ACTION_MATCHING)
        update_claims_json(task, "student_types", {
            "date": datetime.date.today().isoformat(), "command": command,
            "training_seeds": list(STUDENT_TYPE_SEEDS[task]), "encoder_latent": ENCODER_LATENT,
            "students": record, "versus_action_matching": versus, "smallest_adjusted_p": smallest_adjusted,
            "probe_r2": {a: {f: float(v) for f, v in r.items()} for a, r in r2.iterrows()},
            "leakage_passed": bool(frame.drop_duplicates(["architecture", "seed"])["leakage_passed"].all())})
        write_section(f"student_types_{task}", render(
            "student_types", task=task, seeds=f"{len(STUDENT_TYPE_SEEDS[task])} training seeds "
                                              f"{list(STUDENT_TYPE_SEEDS[task])}",
            latent=ENCODER_LATENT, rounds=b.rounds, steps_per_round=b.steps_per_round, num_envs=b.num_envs,
            grad_steps=b.grad_steps, learning=b.learning_text(), selection=b.selection_text(),
            probe_steps=PROBE_STEPS[task], table="\n".join(lines),
            paired_table="\n".join(paired_lines), multiple=multiple,
            probe_table="\n".join(probe_lines), measured=measured(command)))
