"""Section ``students``: behaviour cloning vs DAgger from each trained teacher, curves over rounds,
and each final student alone on the held-out panel with its perturbation suite and leakage checks."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from distillkit.results.budgets import STUDENT_BUDGETS, TRAINING_SEEDS, seeds_text
from distillkit.results.figures import plot_student_curves
from distillkit.results.jobs import StudentJob, run_folder, run_jobs, teacher_policy
from distillkit.results.report import figure_path, measured, render, write_section

SCHEDULES = {"bc": "BC (β = 1)", "first": "DAgger (β = 1(i=1))"}


def run(tasks: list[str], runs: Path, workers: int) -> None:
    from distillkit.envs import EnvFactory
    from distillkit.evaluate import evaluate_policy, held_out_seeds

    run_jobs([StudentJob(task, run_folder(runs / "teachers", task, "teacher", seed),
                         run_folder(runs / "students", task, schedule, seed), schedule, seed, STUDENT_BUDGETS[task])
              for task in tasks for seed in TRAINING_SEEDS[task] for schedule in SCHEDULES], workers, "student runs")
    for task in tasks:
        b, envs = STUDENT_BUDGETS[task], EnvFactory(task)
        seeds = held_out_seeds(b.eval_seeds)
        panels, curves, leak_checks = [], [], []
        for seed in TRAINING_SEEDS[task]:
            teacher, _ = teacher_policy(run_folder(runs / "teachers", task, "teacher", seed), envs)
            teacher_return = evaluate_policy(teacher, envs, seeds, num_envs=b.curve_worlds,
                                             training_seeds=[seed])["return"].mean()
            for schedule in SCHEDULES:
                out = run_folder(runs / "students", task, schedule, seed)
                curves.append(pd.read_csv(out / "rounds.csv").assign(schedule=schedule, seed=seed,
                                                                    teacher_return=teacher_return))
                panels.append(pd.read_csv(out / "evaluation" / "summary.csv").assign(schedule=schedule, seed=seed))
                report = json.loads((out / "evaluation" / "evaluation.json").read_text())
                leak_checks.append(report["all_leakage_checks_passed"])
        figure = figure_path(f"bc_vs_dagger_{task}")
        plot_student_curves(pd.concat(curves), task, figure)
        agg = pd.concat(panels).groupby(["schedule", "perturbation"], sort=False).agg(
            teacher=("teacher_return", "mean"), student=("student_return", "mean"), ratio=("return_ratio", "mean"),
            ratio_std=("return_ratio", "std"), success=("student_success", "mean"),
            t_success=("teacher_success", "mean"), mse=("imitation_mse", "mean"))
        lines = ["| student | perturbation | teacher return | student return | student ÷ teacher | "
                 "student success (teacher) | imitation MSE |", "|---|---|---:|---:|---:|---:|---:|"]
        for (schedule, p), r in agg.iterrows():
            lines.append(f"| {SCHEDULES[schedule]} | {p} | {r.teacher:.1f} | {r.student:.1f} | "
                         f"**{r.ratio:.2f}** ± {r.ratio_std:.2f} | {r.success:.2f} ({r.t_success:.2f}) | {r.mse:.3f} |")
        write_section(f"students_{task}", render(
            "students", task=task, architecture=b.architecture.upper(), seeds=seeds_text(task), rounds=b.rounds,
            steps_per_round=b.steps_per_round, num_envs=b.num_envs, grad_steps=b.grad_steps, learning=b.learning_text(),
            selection=b.selection_text(),
            leak_passed=sum(leak_checks), leak_total=len(leak_checks), table="\n".join(lines), figure=figure.name,
            measured=measured(f"python -m distillkit results --section students --tasks {task}")))
