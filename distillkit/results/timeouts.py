"""Section ``timeouts``: the quick task trained with each time-out bootstrap (true final
observation, rsl_rl's current-state approximation, none)."""

from __future__ import annotations

from pathlib import Path

from distillkit.results.budgets import TRAINING_SEEDS, seeds_text, variant_budget
from distillkit.results.jobs import TeacherJob, run_folder, run_jobs, summarise_runs
from distillkit.results.report import markdown_table, mean_std, measured, render, write_section

TASK = "cartpole"          # a study on the quick task only
VARIANTS = ["timeout_final_obs", "timeout_current_obs", "timeout_none"]


def run(tasks: list[str], runs: Path, workers: int) -> None:
    if TASK not in tasks:
        return
    runs, budget = runs / "timeouts", variant_budget(TASK, "teacher")
    run_jobs([TeacherJob(TASK, v, s, run_folder(runs, TASK, v, s), budget) for v in VARIANTS
              for s in TRAINING_SEEDS[TASK]], workers, "training runs")
    table = mean_std(summarise_runs(runs, TASK, VARIANTS, budget), ["task", "variant"])
    write_section("timeouts", render("timeouts", seeds=seeds_text(TASK), table=markdown_table(table),
                                     measured=measured("python -m distillkit results --section timeouts")))
