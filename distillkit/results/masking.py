"""Section ``masking``: masked vs unmasked distillation from a teacher that is imperfect by design:
in FAULT_RATE of its episodes a fault makes it command the opposite of its action until the robot
falls (:class:`distillkit.corruption.Faulty`). Three students per seed: every step imitated, the
fall rule over 10 steps, and the default rules (the fall rule over 25 steps)."""

from __future__ import annotations

import datetime
from pathlib import Path

import pandas as pd

from distillkit.masks import MaskRules
from distillkit.results.budgets import FAULT_RATE, MASKING_BUDGETS, TRAINING_SEEDS, seeds_text
from distillkit.results.jobs import StudentJob, run_folder, run_jobs
from distillkit.results.report import measured, render, update_claims_json, write_section

# Behaviour cloning, where the teacher drives every step and the fall rule applies to all of them;
# in DAgger's later rounds the student drives and the rule keeps those steps (see distillkit.masks).
SCHEDULES = {"bc": "BC (the teacher drives)"}
#: variant -> (its run folder's suffix, what the table calls it, its mask rules)
VARIANTS = {"unmasked": ("unmasked", "unmasked: every step", MaskRules.none()),
            "fall_rule_10": ("fall10", "the default rules, fall rule over 10 steps", MaskRules(fall_horizon=10)),
            "masked": ("masked", "masked: the default rules (fall rule over 25 steps)", MaskRules())}


def run(tasks: list[str], runs: Path, workers: int) -> None:
    from distillkit.claims import mean_ci, paired

    tasks = [task for task in tasks if task in MASKING_BUDGETS]      # the quick task only: see MASKING_BUDGETS
    run_jobs([StudentJob(task, run_folder(runs / "teachers", task, "teacher", seed),
                         run_folder(runs / "masking", task, f"{schedule}_{suffix}", seed), schedule, seed,
                         MASKING_BUDGETS[task], rules.to_dict(), curve=False, fault_rate=FAULT_RATE,
                         perturbations=["nominal"])
              for task in tasks for seed in TRAINING_SEEDS[task] for schedule in SCHEDULES
              for suffix, _, rules in VARIANTS.values()], workers, "student runs")
    for task in tasks:
        rows = []
        for seed in TRAINING_SEEDS[task]:
            for schedule in SCHEDULES:
                for variant, (suffix, _, _) in VARIANTS.items():
                    out = run_folder(runs / "masking", task, f"{schedule}_{suffix}", seed)
                    s = pd.read_csv(out / "evaluation" / "summary.csv").set_index("perturbation").loc["nominal"]
                    kept = pd.read_csv(out / "rounds.csv").kept_this_round.sum()
                    rows.append({"seed": seed, "schedule": schedule, "variant": variant, "return": s.student_return,
                                 "success": s.student_success, "teacher_return": s.teacher_return, "kept": kept})
        frame = pd.DataFrame(rows)
        lines = ["| distillation | mask | student return (95 % CI) | student success | steps kept | "
                 "− unmasked (95 % CI), paired p |", "|---|---|---:|---:|---:|---:|"]
        tests = {}
        for schedule, label in SCHEDULES.items():
            at = frame[frame.schedule == schedule]
            by_variant = {v: at[at.variant == v].set_index("seed").sort_index() for v in VARIANTS}
            for variant, (_, name, _) in VARIANTS.items():
                part = by_variant[variant]
                r = mean_ci(part["return"])
                diff = ""
                if variant != "unmasked":
                    test = tests[f"{variant}_minus_unmasked_return"] = paired(part["return"], by_variant["unmasked"]["return"])
                    diff = (f"{test['difference']:+.1f} ({test['difference_ci95'][0]:+.1f}, "
                            f"{test['difference_ci95'][1]:+.1f}), p = {test['p_value']:.3f}")
                lines.append(f"| {label} | {name} | {r['mean']:.1f} ({r['ci95'][0]:.1f}, {r['ci95'][1]:.1f}) | "
                             f"{part['success'].mean():.2f} | {part['kept'].mean():,.0f} | {diff} |")
        teacher = frame.drop_duplicates("seed")["teacher_return"]
        b = MASKING_BUDGETS[task]
        update_claims_json(task, "masking", {
            "fault_rate": FAULT_RATE, "schedule": "bc", "date": datetime.date.today().isoformat(),
            "command": f"python -m distillkit results --section masking --tasks {task}",
            **{variant: {"return": mean_ci(part["return"]), "success": mean_ci(part["success"])}
               for variant, part in frame.groupby("variant")}, **tests})
        write_section(f"masking_{task}", render(
            "masking", task=task, seeds=seeds_text(task), fault_rate=f"{FAULT_RATE:.0%}",
            architecture=b.architecture.upper(), rounds=b.rounds, steps_per_round=b.steps_per_round,
            num_envs=b.num_envs, teacher_return=f"{teacher.mean():.1f}", table="\n".join(lines),
            measured=measured(f"python -m distillkit results --section masking --tasks {task}")))
