"""Section ``collapse``: each teacher with its privileged actor inputs zeroed / noised / stale /
shuffled at evaluation time, next to the unprivileged PPO baseline trained without them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from distillkit.results.budgets import BUDGETS, TRAINING_SEEDS
from distillkit.results.jobs import run_folder, teacher_policy
from distillkit.results.report import measured, render, write_section


def run(tasks: list[str], runs: Path, workers: int) -> None:
    from distillkit.corruption import MODES, Corrupted
    from distillkit.envs import EnvFactory
    from distillkit.evaluate import evaluate_policy, held_out_seeds

    runs = runs / "teachers"
    for task in tasks:
        envs = EnvFactory(task)
        budget = BUDGETS[task]
        seeds = held_out_seeds(budget.eval_seeds)
        rows = []
        for seed in TRAINING_SEEDS[task]:
            actor, manifest = teacher_policy(run_folder(runs, task, "teacher", seed), envs)
            privileged = [n for n in actor.input.names if actor.input.schema.field(n).privileged]
            baseline, _ = teacher_policy(run_folder(runs, task, "unprivileged", seed), envs)
            policies = {"intact": actor,
                        **{mode: Corrupted(actor, privileged, mode, seed=seed) for mode in MODES},
                        "unprivileged PPO": baseline}
            for name, policy in policies.items():
                ep = evaluate_policy(policy, envs, seeds, num_envs=budget.eval_worlds, training_seeds=[seed])
                rows.append({"seed": seed, "policy": name, "return": ep["return"].mean(),
                             "success": ep["success"].mean()})
        frame = pd.DataFrame(rows)
        intact = frame[frame.policy == "intact"].set_index("seed")
        frame["return_ratio"] = frame["return"] / intact.loc[frame.seed, "return"].to_numpy()
        agg = frame.groupby("policy", sort=False).agg(
            ret=("return", "mean"), ret_std=("return", "std"), ratio=("return_ratio", "mean"),
            ratio_std=("return_ratio", "std"), success=("success", "mean"))
        lines = ["| teacher's privileged inputs | held-out return | ÷ intact teacher | success |",
                 "|---|---:|---:|---:|"]
        for name, r in agg.iterrows():
            lines.append(f"| {name} | {r.ret:.1f} ± {r.ret_std:.1f} | {r.ratio:.2f} ± {r.ratio_std:.2f} | "
                         f"{r.success:.2f} |")
        write_section(f"collapse_{task}", render(
            "collapse", task=task, table="\n".join(lines),
            measured=measured(f"python -m distillkit results --section collapse --tasks {task}")))
