"""Section ``baseline_tuning``: is the unprivileged PPO baseline a tuned competitor? Each setting of
:data:`~distillkit.results.budgets.BASELINE_SWEEP` changes the teacher's PPO settings for the baseline
alone. Every setting, and the teacher's settings as they are, trains the baseline on the tuning seeds
and is scored on validation seeds (another panel than the checkpoint selection's, never the held-out
panel of the claims). The teachers and claims sections train the baseline with
:data:`~distillkit.results.budgets.BASELINE_SETTINGS`; the section says whether that is the winner."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

import pandas as pd

from distillkit.ppo import PPOConfig
from distillkit.results.budgets import BASELINE_SETTINGS, BASELINE_SWEEP, BUDGETS, TUNING_SEEDS, variant_budget
from distillkit.results.jobs import TeacherJob, run_folder, run_jobs, teacher_policy
from distillkit.results.report import machine, measured, render, update_claims_json, write_section
from distillkit.tasks import TASKS

#: the row that keeps the teacher's PPO settings
TEACHERS_SETTINGS = "teacher's settings"
#: the settings are compared on validation seeds from this one on: past the checkpoint selection's,
#: which chose each run's checkpoint and would flatter every run, some more than others by chance
FIRST_TUNING_SEED = 100


def settings(task: str) -> dict[str, dict]:
    """Every row of the sweep: the teacher's settings, then each change of :data:`BASELINE_SWEEP`."""
    return {TEACHERS_SETTINGS: {}, **BASELINE_SWEEP[task]}


def tuning_job(runs: Path, task: str, name: str, changes: dict, seed: int) -> TeacherJob:
    """The baseline trained with ``changes`` to the teacher's settings. The row the baseline uses
    is the teachers section's own run; the others live under ``runs/baseline_tuning/``."""
    budget = variant_budget(task, "unprivileged")
    if changes == BASELINE_SETTINGS[task]:
        return TeacherJob(task, "unprivileged", seed, run_folder(runs / "teachers", task, "unprivileged", seed), budget)
    config = PPOConfig(**{**BUDGETS[task].config.to_dict(), **changes})
    folder = name.replace("'", "").replace(" ", "_")            # "teacher's settings" -> teachers_settings
    return TeacherJob(task, "unprivileged", seed, runs / "baseline_tuning" / task / f"{folder}_seed{seed}",
                      dataclasses.replace(budget, config=config))


def winner(table: pd.DataFrame) -> str:
    """The row with the highest mean validation success, then mean return."""
    return table.sort_values(["success", "return"], ascending=False).index[0]


def verdict(task: str, table: pd.DataFrame) -> str:
    """What the sweep says about the baseline that the claims measure."""
    best = winner(table)
    chosen = next((name for name, changes in settings(task).items() if changes == BASELINE_SETTINGS[task]), None)
    if chosen is None:
        raise ValueError(f"BASELINE_SETTINGS[{task!r}] = {BASELINE_SETTINGS[task]} is no row of the sweep "
                         f"{settings(task)}: the baseline must train with settings the sweep measured")
    if best == chosen:
        return (f"The baseline of the teachers and claims sections trains with **{chosen}**, the best row "
                "(highest validation success, then return).")
    return (f"**The baseline is not the tuned one:** it trains with {chosen}, but {best} scored best here. "
            f"Set `BASELINE_SETTINGS[{task!r}]` in `distillkit/results/budgets.py` to {settings(task)[best]} "
            "and rerun the teachers and claims sections.")


def markdown(table: pd.DataFrame) -> str:
    lines = ["| setting | seeds | validation return | success | fall rate |", "|---|---:|---:|---:|---:|"]
    for name, r in table.iterrows():
        lines.append(f"| {name} | {int(r.seeds)} | {r['return']:.1f} ± {r.return_std:.1f} | {r.success:.2f} | "
                     f"{r.fall_rate:.2f} |")
    return "\n".join(lines)


def against_teacher(table: pd.DataFrame, teacher: pd.Series) -> str:
    """The best baseline next to the privileged teacher of the same training seeds, on the same panel:
    a first look at the teacher claim's margins (the claims section measures the claim itself)."""
    best = table.loc[winner(table)]
    return (f"The privileged teachers of the same training seeds, on the same panel: return {teacher['return']:.1f} "
            f"± {teacher.return_std:.1f}, success {teacher.success:.2f}, fall rate {teacher.fall_rate:.2f}. "
            f"The best row reaches {best['return'] / teacher['return']:.2f} of their return, and its success is "
            f"{teacher.success - best.success:.2f} below theirs (the teacher claim asks for a return ratio of at "
            f"least 1.25 or a success gap of at least 0.25).")


def record(task: str, table: pd.DataFrame, validation_seeds: list[int], command: str) -> dict:
    """The sweep for ``docs/claims.json``: every row's validation scores and the best row's settings."""
    best = winner(table)
    return {"task": task, "task_version": TASKS[task].version, "best": best, "best_settings": settings(task)[best],
            "rows": {name: {"settings": settings(task)[name], **r.to_dict(), "seeds": int(r.seeds)}
                     for name, r in table.iterrows()},
            "training_seeds": list(TUNING_SEEDS), "validation_seeds": list(validation_seeds),
            "date": datetime.date.today().isoformat(), "machine": machine(), "command": command}


def summarise(rows: list[dict]) -> pd.DataFrame:
    """Mean (and std of the return) over training seeds, one row per setting."""
    return pd.DataFrame(rows).groupby("setting", sort=False).agg(
        seeds=("seed", "count"), **{"return": ("return", "mean")}, return_std=("return", "std"),
        success=("success", "mean"), fall_rate=("fall_rate", "mean"))


def run(tasks: list[str], runs: Path, workers: int) -> None:
    from distillkit.envs import EnvFactory
    from distillkit.evaluate import evaluate_policy, validation_seeds

    tasks = [t for t in tasks if t in BASELINE_SWEEP]
    jobs = {(t, name, s): tuning_job(runs, t, name, changes, s)
            for t in tasks for name, changes in settings(t).items() for s in TUNING_SEEDS}
    teachers = {(t, s): TeacherJob(t, "teacher", s, run_folder(runs / "teachers", t, "teacher", s), BUDGETS[t])
                for t in tasks for s in TUNING_SEEDS}
    run_jobs([*teachers.values(), *jobs.values()], workers, "baseline tuning runs")
    for task in tasks:
        envs, budget = EnvFactory(task), BUDGETS[task]
        seeds = validation_seeds(budget.eval_seeds, first=FIRST_TUNING_SEED)

        def score(name: str, seed: int, folder: Path) -> dict:
            actor, _ = teacher_policy(folder, envs)
            ep = evaluate_policy(actor, envs, seeds, num_envs=budget.eval_worlds,
                                 training_seeds=[seed])
            return {"setting": name, "seed": seed, "return": ep["return"].mean(),
                    "success": ep["success"].mean(), "fall_rate": ep["fell"].mean()}

        table = summarise([score(name, seed, job.out) for (t, name, seed), job in jobs.items() if t == task])
        teacher = summarise([score("teacher", seed, job.out) for (t, seed), job in teachers.items() if t == task])
        command = f"python -m distillkit results --section baseline_tuning --tasks {task}"
        # the claims section reads the best row from here to judge whether its baseline is the tuned one
        update_claims_json(task, "baseline_tuning", record(task, table, seeds, command))
        write_section(f"baseline_tuning_{task}", render(
            "baseline_tuning", task=task, table=markdown(table), verdict=verdict(task, table),
            reference=against_teacher(table, teacher.loc["teacher"]),
            seeds=f"{len(TUNING_SEEDS)} training seeds {list(TUNING_SEEDS)}",
            panel=f"{len(seeds)} validation seeds from {seeds[0]:,} × {budget.eval_worlds} episodes",
            measured=measured(command)))
