"""Sections ``teacher_tuning`` and ``baseline_tuning``: is each side of the teacher claim a tuned policy?
Both policies start from the task's PPO settings (``BUDGETS``). Each row of a sweep
(:data:`~distillkit.results.budgets.TEACHER_SWEEP`, :data:`~distillkit.results.budgets.BASELINE_SWEEP`)
changes them for one policy alone: the privileged teacher, or the unprivileged PPO baseline. Every row,
and no change, trains that policy on the tuning seeds and is scored on validation seeds (another panel
than the checkpoint selection's, never the held-out panel of the claims). Two tuning seeds only screen:
the screening's best row is trained and scored on every training seed of the claims beside the row it must
beat (the policy's own; where that is the best, no change) and compared seed by seed (paired t-test), and
a change is the tuned one only if it still wins there. The other
sections train each policy with the changes its tuning chose (``TEACHER_SETTINGS``, ``BASELINE_SETTINGS``);
the section says whether those are the tuned ones, and places the best row next to the other policy of the
claim, so that both sides are tuned alike and in the open."""

from __future__ import annotations

import dataclasses
import datetime
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from distillkit.ppo import PPOConfig
from distillkit.results.budgets import (
    BASELINE_SETTINGS,
    BASELINE_SWEEP,
    BUDGETS,
    TEACHER_SETTINGS,
    TEACHER_SWEEP,
    TRAINING_SEEDS,
    TUNING_SEEDS,
    variant_budget,
)
from distillkit.results.jobs import TeacherJob, run_folder, run_jobs, teacher_policy
from distillkit.results.report import machine, measured, render, update_claims_json, write_section
from distillkit.tasks import TASKS

#: the row that keeps the task's PPO settings as they are
NO_CHANGE = "no change"
#: the settings are compared on validation seeds from this one on: past the checkpoint selection's,
#: which chose each run's checkpoint and would flatter every run, some more than others by chance
FIRST_TUNING_SEED = 100


@dataclass(frozen=True)
class Tuning:
    """One policy's sweep: which run variant it trains, its rows per task (name -> changes to the
    task's PPO settings), the changes the other sections train it with, and where those are set."""

    section: str
    variant: str
    policy: str                      # how the prose names the policy
    description: str                 # ... and introduces it
    sweep: dict[str, dict[str, dict]]
    chosen: dict[str, dict]
    chosen_in: str                   # where the chosen changes are set, for the verdict's advice
    other: str                       # the claim's other variant, which the section places beside the best row

    def settings(self, task: str) -> dict[str, dict]:
        """Every row of the sweep: no change, then each change of the sweep."""
        return {NO_CHANGE: {}, **self.sweep[task]}

    def job(self, runs: Path, task: str, name: str, changes: dict, seed: int) -> TeacherJob:
        """The policy trained with ``changes`` to the task's PPO settings. The row the other sections
        use is the teachers section's own run; the others live under ``runs/<section>/``."""
        budget = variant_budget(task, self.variant)
        if changes == self.chosen.get(task, {}):
            return TeacherJob(task, self.variant, seed, run_folder(runs / "teachers", task, self.variant, seed), budget)
        config = PPOConfig(**{**BUDGETS[task].config.to_dict(), **changes})
        folder = name.replace(" ", "_")                              # "no change" -> no_change
        return TeacherJob(task, self.variant, seed, runs / self.section / task / f"{folder}_seed{seed}",
                          dataclasses.replace(budget, config=config))

    def chosen_row(self, task: str) -> str:
        """The row the other sections train this policy with."""
        chosen = next((name for name, changes in self.settings(task).items()
                       if changes == self.chosen.get(task, {})), None)
        if chosen is None:
            raise ValueError(f"the {self.policy}'s changes for {task!r}, {self.chosen[task]} ({self.chosen_in}), are no "
                             f"row of the sweep {self.settings(task)}: the {self.policy} must train with settings "
                             "the sweep measured")
        return chosen

    def contenders(self, task: str, table: pd.DataFrame) -> tuple[str, str] | None:
        """The rows to compare over every training seed, (incumbent, challenger): the screening's best
        against the policy's own row; where the own row is the best and a change, against no change
        (the own change must still beat the task's settings over every seed). None: no change is both."""
        chosen, best = self.chosen_row(task), winner(table)
        if best != chosen:
            return chosen, best
        return (NO_CHANGE, chosen) if chosen != NO_CHANGE else None

    def verdict(self, task: str, table: pd.DataFrame, confirmation: Confirmation | None) -> str:
        """What the sweep says about the policy that the claims measure."""
        chosen, contenders = self.chosen_row(task), self.contenders(task, table)
        if contenders is None:
            return (f"The {self.policy} of the teachers and claims sections trains with **{chosen}**, the best row "
                    "(highest validation success, then return).")
        if confirmation is None or confirmation.rows != contenders:
            raise ValueError(f"{contenders[1]} must beat {contenders[0]} over every training seed, not only over the "
                             "tuning seeds: the verdict needs both compared there")
        incumbent, challenger = contenders
        # the rule compares means over the seeds: a row may lose on some seeds and still win
        seeds = f"the means over all {confirmation.seeds} training seeds ({confirmation.summary()})"
        tuned = challenger if confirmation.challenger_wins() else incumbent
        if tuned != chosen:
            how = (f"but {challenger} scored best here and again on {seeds}" if tuned == challenger else
                   f"which scored best here, but {incumbent} beat it on {seeds}")
            return (f"**The {self.policy} is not the tuned one:** it trains with {chosen}, {how}. Set "
                    f"{self.chosen_in} for {task!r} to {self.settings(task)[tuned]} and rerun the sections that "
                    "train from it.")
        how = (f"it scored best here and beat {incumbent} again on {seeds}" if tuned == challenger else
               f"{challenger} scored best on the tuning seeds, but not on {seeds}")
        return f"The {self.policy} of the teachers and claims sections trains with **{chosen}**: {how}."


@dataclass(frozen=True)
class Confirmation:
    """Two rows on every training seed (``rows``: incumbent, challenger; see :meth:`Tuning.contenders`):
    one validation score per run (a DataFrame indexed by seed, columns ``(row, metric)``)."""

    rows: tuple[str, str]
    scores: pd.DataFrame

    @property
    def seeds(self) -> int:
        return len(self.scores)

    def mean(self, row: str, metric: str) -> float:
        return float(self.scores[(row, metric)].mean())

    def challenger_wins(self) -> bool:
        """The rule of :func:`winner`, on the means over every training seed."""
        incumbent, challenger = self.rows
        return ((self.mean(challenger, "success"), self.mean(challenger, "return")) >
                (self.mean(incumbent, "success"), self.mean(incumbent, "return")))

    def paired(self, metric: str) -> dict:
        """challenger − incumbent over the training seeds: mean difference, its 95 % CI and the paired
        t-test's p."""
        from distillkit.claims import paired

        incumbent, challenger = self.rows
        return paired(self.scores[(challenger, metric)], self.scores[(incumbent, metric)])

    def summary(self) -> str:
        incumbent, challenger = self.rows
        test = self.paired("success")
        low, high = test["difference_ci95"]
        return (f"success {self.mean(challenger, 'success'):.3f} against {self.mean(incumbent, 'success'):.3f}, "
                f"return {self.mean(challenger, 'return'):.1f} against {self.mean(incumbent, 'return'):.1f}; paired "
                f"success difference {test['difference']:+.3f}, 95 % CI [{low:+.3f}, {high:+.3f}], "
                f"p = {test['p_value']:.2f}")

    def markdown(self) -> str:
        lines = [f"| training seed | {self.rows[0]}: return | success | {self.rows[1]}: return | success |",
                 "|---:|---:|---:|---:|---:|"]
        for seed, r in self.scores.iterrows():
            lines.append(f"| {seed} | " + " | ".join(f"{r[(row, 'return')]:.1f} | {r[(row, 'success')]:.3f}"
                                                     for row in self.rows) + " |")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        incumbent, challenger = self.rows
        return {"incumbent": incumbent, "challenger": challenger, "challenger_wins": self.challenger_wins(),
                "per_seed": {row: {metric: {int(seed): float(v) for seed, v in self.scores[(row, metric)].items()}
                                   for metric in ("return", "success", "fall_rate")} for row in self.rows},
                "paired_success": self.paired("success"), "paired_return": self.paired("return")}


TUNINGS = {
    "teacher_tuning": Tuning("teacher_tuning", "teacher", "teacher", "privileged teacher", TEACHER_SWEEP, TEACHER_SETTINGS,
                             "`TEACHER_SETTINGS` in `distillkit/results/budgets.py`",
                             other="unprivileged"),
    "baseline_tuning": Tuning("baseline_tuning", "unprivileged", "baseline", "unprivileged baseline", BASELINE_SWEEP,
                              BASELINE_SETTINGS,
                              "`BASELINE_SETTINGS` in `distillkit/results/budgets.py`", other="teacher"),
}


def winner(table: pd.DataFrame) -> str:
    """The row with the highest mean validation success, then mean return."""
    return table.sort_values(["success", "return"], ascending=False).index[0]


def markdown(table: pd.DataFrame) -> str:
    lines = ["| setting | seeds | validation return | success | fall rate |", "|---|---:|---:|---:|---:|"]
    for name, r in table.iterrows():
        lines.append(f"| {name} | {int(r.seeds)} | {r['return']:.1f} ± {r.return_std:.1f} | {r.success:.2f} | "
                     f"{r.fall_rate:.2f} |")
    return "\n".join(lines)


def beside_the_other_policy(tuning: Tuning, table: pd.DataFrame, other: pd.Series) -> str:
    """The best row next to the claim's other policy (as the teachers section trains it) of the same
    training seeds, on the same panel: a first look at the teacher claim's margins (the claims section
    measures the claim itself)."""
    best = table.loc[winner(table)]
    teacher, baseline = (best, other) if tuning.variant == "teacher" else (other, best)
    name = "privileged teachers" if tuning.other == "teacher" else "unprivileged baselines"
    return (f"The {name} of the same training seeds, on the same panel: return {other['return']:.1f} "
            f"± {other.return_std:.1f}, success {other.success:.2f}, fall rate {other.fall_rate:.2f}. "
            f"With the best row, the baseline reaches {baseline['return'] / teacher['return']:.2f} of the teacher's "
            f"return, and its success is {teacher.success - baseline.success:.2f} below the teacher's (the teacher "
            "claim asks for a return ratio of at least 1.25 or a success gap of at least 0.25).")


def tuned_row(table: pd.DataFrame, confirmation: Confirmation | None) -> str:
    """The row the tuning picks: the screening's best, unless every training seed overturned it."""
    if confirmation is None:
        return winner(table)
    incumbent, challenger = confirmation.rows
    return challenger if confirmation.challenger_wins() else incumbent


def record(tuning: Tuning, task: str, table: pd.DataFrame, confirmation: Confirmation | None,
           validation_seeds: list[int], command: str) -> dict:
    """The sweep for ``docs/claims.json``: every row's validation scores, the screening's best row, its
    comparison on every training seed and the settings the tuning picks (``best``)."""
    best = tuned_row(table, confirmation)
    return {"task": task, "task_version": TASKS[task].version, "policy": tuning.variant, "best": best,
            "best_settings": tuning.settings(task)[best], "screening_best": winner(table),
            "rows": {name: {"settings": tuning.settings(task)[name], **r.to_dict(), "seeds": int(r.seeds)}
                     for name, r in table.iterrows()},
            "confirmation": confirmation.to_dict() if confirmation else None,
            "training_seeds": list(TUNING_SEEDS), "validation_seeds": list(validation_seeds),
            "date": datetime.date.today().isoformat(), "machine": machine(), "command": command}


def summarise(rows: list[dict]) -> pd.DataFrame:
    """Mean (and std of the return) over training seeds, one row per setting."""
    return pd.DataFrame(rows).groupby("setting", sort=False).agg(
        seeds=("seed", "count"), **{"return": ("return", "mean")}, return_std=("return", "std"),
        success=("success", "mean"), fall_rate=("fall_rate", "mean"))


def confirmation_text(confirmation: Confirmation | None) -> str:
    """The docs paragraph and per-seed table of a confirmation (nothing when no change won the screening
    and is the policy's own row), ending in a blank line."""
    if confirmation is None:
        return ""
    incumbent, challenger = confirmation.rows
    return (f"Two tuning seeds only screen: {challenger} scored best there, so it and {incumbent} (the row it must "
            "beat: the policy's own, or no change where the own row is the best) were both trained on every training "
            "seed of the claims and scored on the same panel (mean over its episodes):\n\n"
            f"{confirmation.markdown()}\n\n")


def run(section: str, tasks: list[str], runs: Path, workers: int) -> None:
    from tqdm.auto import tqdm

    from distillkit.envs import EnvFactory
    from distillkit.evaluate import evaluate_policy, validation_seeds

    tuning = TUNINGS[section]
    tasks = [t for t in tasks if t in tuning.sweep]
    jobs = {(t, name, s): tuning.job(runs, t, name, changes, s)
            for t in tasks for name, changes in tuning.settings(t).items() for s in TUNING_SEEDS}
    others = {(t, s): TeacherJob(t, tuning.other, s, run_folder(runs / "teachers", t, tuning.other, s),
                                 variant_budget(t, tuning.other))
              for t in tasks for s in TUNING_SEEDS}
    run_jobs([*others.values(), *jobs.values()], workers, f"{section} runs")
    for task in tasks:
        envs, budget = EnvFactory(task), BUDGETS[task]
        seeds = validation_seeds(budget.eval_seeds, first=FIRST_TUNING_SEED)

        def score(name: str, seed: int, folder: Path) -> dict:
            actor, _ = teacher_policy(folder, envs)
            ep = evaluate_policy(actor, envs, seeds, num_envs=budget.eval_worlds,
                                 training_seeds=[seed])
            return {"setting": name, "seed": seed, "return": ep["return"].mean(),
                    "success": ep["success"].mean(), "fall_rate": ep["fell"].mean()}

        mine = [(name, seed, job.out) for (t, name, seed), job in jobs.items() if t == task]
        theirs = [(tuning.other, seed, job.out) for (t, seed), job in others.items() if t == task]
        scored = [score(*what) for what in tqdm(mine + theirs, desc=f"{section}: scoring {task} runs")]
        scores = scored[:len(mine)]
        table, other = summarise(scores), summarise(scored[len(mine):])
        confirmation, contenders = None, tuning.contenders(task, table)
        if contenders is not None:
            # two seeds only screen: the best row must win again over every training seed (on the means)
            more = {(name, s): tuning.job(runs, task, name, tuning.settings(task)[name], s)
                    for name in contenders for s in TRAINING_SEEDS[task] if s not in TUNING_SEEDS}
            run_jobs(list(more.values()), workers, f"{section}: {contenders[1]} on every training seed")
            scores += [score(name, seed, job.out)
                       for (name, seed), job in tqdm(more.items(), desc=f"{section}: scoring the other seeds")]
            pair = pd.DataFrame(scores).loc[lambda frame: frame.setting.isin(contenders)]
            confirmation = Confirmation(contenders, pair.pivot(index="seed", columns="setting",
                                                               values=["return", "success", "fall_rate"]).swaplevel(axis=1))
        command = f"python -m distillkit results --section {section} --tasks {task}"
        # the claims section reads the tuned row from here to judge whether its policies are the tuned ones
        update_claims_json(task, section, record(tuning, task, table, confirmation, seeds, command))
        write_section(f"{section}_{task}", render(
            "tuning", policy=tuning.policy, description=tuning.description, task=task, table=markdown(table),
            confirmation=confirmation_text(confirmation),
            verdict=tuning.verdict(task, table, confirmation),
            reference=beside_the_other_policy(tuning, table, other.loc[tuning.other]),
            seeds=f"{len(TUNING_SEEDS)} training seeds {list(TUNING_SEEDS)}",
            panel=f"{len(seeds)} validation seeds from {seeds[0]:,} × {budget.eval_worlds} episodes",
            section=section, measured=measured(command)))
