"""Section ``teachers``: the privileged teacher vs unprivileged PPO (the same PPO, tuned for it, and
network on the student's fields, with the teacher's plus the student's env steps), per task, over the task's
training seeds; training curves."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from distillkit.results.budgets import BUDGETS, TRAINING_SEEDS, Budget, seeds_text, variant_budget
from distillkit.results.figures import plot_curves
from distillkit.results.jobs import TeacherJob, run_folder, run_jobs, summarise_runs
from distillkit.results.report import figure_path, markdown_table, mean_std, measured, render, write_section

VARIANTS = ["teacher", "unprivileged"]


def selection_text(budget: Budget) -> str:
    s = budget.selection
    if s is None:
        return "Each run's last checkpoint is evaluated."
    return (f"Each run's checkpoint is chosen on validation seeds (from 2,000,000; {s.seeds} seeds x {s.worlds} "
            f"episodes, every {s.every:,} env steps from {s.start:,}: the highest success rate, then return), the "
            "same way for both; the held-out seeds below are never used to choose.")


def curriculum_text(budget: Budget) -> str:
    if not budget.curriculum:
        return "no curriculum"
    return ("both trained under the task's terrain curriculum (every world starts on level 0, moves up after an "
            "episode walked far enough, down after a fall); evaluation keeps the task's own reset distribution")


def curves_text(validated: bool) -> str:
    """What the figure's panels show."""
    if not validated:
        return "The figure: each policy's training return."
    return ("Left, each policy's training return: under the curriculum a policy that improves meets harder terrain, so "
            "its training return can stall while it gets better. Right, its success on the validation seeds that "
            "choose the checkpoint, one fixed distribution: how far apart the curves are at each budget is how much "
            "sooner privileged state makes a good expert, and where they meet, RL on the student's inputs has "
            "caught up.")


def timing_text(per_run: pd.DataFrame) -> str:
    """How long one run trained, per policy: the mean and the slowest run."""
    parts = [f"{variant} {group.minutes.mean():.0f} min (slowest {group.minutes.max():.0f})"
             for variant, group in per_run.groupby("variant", sort=False)]
    return "; ".join(parts)


def run(tasks: list[str], runs: Path, workers: int) -> None:
    runs = runs / "teachers"
    # Seed by seed, each teacher beside its baseline: a section interrupted after some hours (the flagship's
    # ten runs take hours on 2 cores, resumed across sessions) already holds pairs to compare.
    run_jobs([TeacherJob(t, v, s, run_folder(runs, t, v, s), variant_budget(t, v))
              for t in tasks for s in TRAINING_SEEDS[t] for v in VARIANTS], workers, "training runs")
    for task in tasks:
        budget = BUDGETS[task]
        per_run = summarise_runs(runs, task, VARIANTS, budget)
        table = mean_std(per_run, ["task", "variant"])
        figure = figure_path(f"teacher_curves_{task}")
        validated = plot_curves(runs, task, VARIANTS, figure)
        write_section(f"teachers_{task}", render(
            "teachers", task=task, unprivileged_steps=f"{variant_budget(task, 'unprivileged').env_steps:,}",
            num_envs=budget.num_envs, curriculum=curriculum_text(budget), selection=selection_text(budget),
            seeds=seeds_text(task), eval_seeds=budget.eval_seeds,
            eval_worlds=budget.eval_worlds, table=markdown_table(table), timing=timing_text(per_run),
            figure=figure.name, curves=curves_text(validated),
            measured=measured(f"python -m distillkit results --section teachers --tasks {task}")))
