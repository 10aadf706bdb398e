"""Section ``claims``: teacher, unprivileged PPO, BC and DAgger students on one held-out panel; the
three claims with 95 % confidence intervals and paired tests (:mod:`distillkit.claims`), into one
artifact per task (``runs/claims/<task>/``) and ``docs/claims.json``; the flagship's summary goes
into the README."""

from __future__ import annotations

import dataclasses
import datetime
import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from distillkit.artifacts import REPO_ROOT, read_manifest
from distillkit.results.budgets import BASELINE_SWEEP, BUDGETS, STUDENT_BUDGETS, TRAINING_SEEDS, StudentBudget, variant_budget
from distillkit.results.figures import plot_claims
from distillkit.results.jobs import run_folder, teacher_policy
from distillkit.results.report import figure_path, machine, measured, read_claims_json, render, update_claims_json, write_section
from distillkit.tasks import TASKS


@dataclass(frozen=True)
class PanelJob:
    """One seed's unprivileged PPO policy on the students' held-out panel, cached as CSV in ``out``."""

    task: str
    folder: Path
    out: Path
    budget: StudentBudget


def _unprivileged_panel(job: PanelJob) -> str:
    import torch

    from distillkit.envs import EnvFactory
    from distillkit.evaluate import PERTURBATIONS, held_out_seeds, run_episodes

    torch.set_num_threads(1)
    envs = EnvFactory(job.task)
    actor, _ = teacher_policy(job.folder, envs)
    episodes = [run_episodes(actor, envs, s, num_envs=job.budget.eval_worlds, perturbation=p)
                .assign(policy="unprivileged", perturbation=p.name)
                for p in PERTURBATIONS[job.task] for s in held_out_seeds(job.budget.eval_seeds)]
    job.out.parent.mkdir(parents=True, exist_ok=True)
    pd.concat(episodes, ignore_index=True).to_csv(job.out, index=False)
    return str(job.out)


def actor_digest(folder: Path) -> str:
    """The first 12 hex digits of the SHA-256 of the actor a run is evaluated with: a cached panel
    names the weights it scored, so a retrained or resumed run is evaluated again."""
    from distillkit.train import actor_stem

    manifest = read_manifest(folder)
    return manifest["files"][actor_stem(manifest)]["sha256"][:12]


def panel_episodes(task: str, runs: Path, workers: int) -> pd.DataFrame:
    """Every episode of the four policies on one held-out panel: the teacher and both students from
    the students' evaluation artifacts (teacher and student ran there on the same seeds and
    perturbations), unprivileged PPO evaluated here on the same seeds and perturbations."""
    jobs = [PanelJob(task, folder, runs / "claims" / task / f"unprivileged_seed{seed}_{actor_digest(folder)}.csv",
                     STUDENT_BUDGETS[task])
            for seed in TRAINING_SEEDS[task] for folder in [run_folder(runs / "teachers", task, "unprivileged", seed)]]
    todo = [job for job in jobs if not job.out.exists()]
    if todo:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(_unprivileged_panel, todo))
    frames = []
    for seed, job in zip(TRAINING_SEEDS[task], jobs):
        frames.append(pd.read_csv(job.out).assign(training_seed=seed))
        for schedule, policy in (("first", "dagger"), ("bc", "bc")):
            ep = pd.read_csv(run_folder(runs / "students", task, schedule, seed) / "evaluation" / "episodes.csv")
            frames.append(ep[ep.policy == "student"].assign(policy=policy, training_seed=seed))
            if schedule == "first":
                frames.append(ep[ep.policy == "teacher"].assign(training_seed=seed))
    return pd.concat(frames, ignore_index=True)


def baseline_settings(task: str, runs: Path) -> dict:
    """The PPO settings every seed's unprivileged baseline trained with (read from the runs'
    manifests; seeds trained with different settings are refused)."""
    found = {seed: read_manifest(run_folder(runs / "teachers", task, "unprivileged", seed))["ppo"]
             for seed in TRAINING_SEEDS[task]}
    first_seed, first = next(iter(found.items()))
    other = [seed for seed, ppo in found.items() if ppo != first]
    if other:
        raise ValueError(f"the unprivileged runs of {task} seeds {other} trained with other PPO settings than seed "
                         f"{first_seed} ({first}): one baseline, one set of settings; retrain them")
    return first


def baseline_tuned(task: str, ppo: dict, tuning: dict | None) -> bool:
    """Whether a baseline that trained with ``ppo`` is the tuned one: on every setting the sweep varies, it
    has the teacher's value changed by the best row of ``tuning`` (the ``baseline_tuning`` record of
    ``docs/claims.json``), that sweep ran on the task's current version and it measured every row the
    sweep has now. No sweep, no tuning record, a record of another task version, or one that lacks a row
    added since: not tuned (settings tuned on another task prove nothing here, and a row nobody measured
    may be the better one)."""
    if task not in BASELINE_SWEEP or tuning is None or tuning.get("task_version") != TASKS[task].version:
        return False
    measured = [row["settings"] for row in tuning.get("rows", {}).values()]
    if any(changes not in measured for changes in [{}, *BASELINE_SWEEP[task].values()]):
        return False
    wanted = {**BUDGETS[task].config.to_dict(), **tuning["best_settings"]}
    varied = {key for changes in BASELINE_SWEEP[task].values() for key in changes}
    return all(ppo[key] == wanted[key] for key in varied)


def run(tasks: list[str], runs: Path, workers: int) -> None:
    from distillkit import claims as stats
    from distillkit.artifacts import provenance
    from distillkit.atomic import write_json_atomic

    for task in tasks:
        episodes = panel_episodes(task, runs, workers)
        seeds = stats.per_seed(episodes)
        summary, tests = stats.summarise(seeds), stats.comparisons(seeds)
        baseline_ppo = baseline_settings(task, runs)
        tuned = baseline_tuned(task, baseline_ppo, read_claims_json(task, "baseline_tuning"))
        verdict = stats.headline(summary, tests, baseline_tuned=tuned)
        record = {
            "task": task, "task_version": TASKS[task].version, "date": datetime.date.today().isoformat(),
            "machine": machine(), "command": f"python -m distillkit results --section claims --tasks {task}",
            "training_seeds": list(TRAINING_SEEDS[task]),
            "held_out_seeds": sorted(int(s) for s in episodes["seed"].unique()),
            "episodes_per_policy_seed_perturbation": int(seeds["episodes"].iloc[0]),
            "budgets": {**{f"{variant}_env_steps": read_manifest(run_folder(runs / "teachers", task, variant, 0))["env_steps"]
                           for variant in ("teacher", "unprivileged")},
                        "student": dataclasses.asdict(STUDENT_BUDGETS[task]),
                        "ppo": variant_budget(task, "teacher").config.to_dict(),
                        "unprivileged_ppo": baseline_ppo},
            "success": "no fall, and on tasks with a speed command a mean |v_x - command| within the task's "
                       "tracking tolerance",
            "policies": summary, "paired_tests": tests, "headline": verdict,
        }
        out = runs / "claims" / task
        out.mkdir(parents=True, exist_ok=True)
        episodes.to_csv(out / "episodes.csv", index=False)
        write_json_atomic(out / "claims.json", stats.json_safe({**record, "provenance": provenance()}))
        for key, value in record.items():
            update_claims_json(task, key, value)
        figure = figure_path(f"claims_{task}")
        plot_claims(summary, task, figure)
        write_section(f"claims_{task}", claims_markdown(task, record, figure))
        if task == "walker_rough":
            write_section("claims-summary", claims_summary(record), REPO_ROOT / "README.md")


def _ci(entry: dict, digits: int) -> str:
    low, high = entry["ci95"]
    return f"{entry['mean']:.{digits}f} ({low:.{digits}f}, {high:.{digits}f})"


def claims_summary(record: dict) -> str:
    """The README's few lines on the flagship's claims (nominal panel)."""
    from distillkit.claims import LABELS, POLICIES

    nominal = {p: record["policies"][p]["nominal"] for p in POLICIES}
    rows = ["| flagship, nominal held-out panel | return (95 % CI) | success | fall rate |", "|---|---:|---:|---:|"]
    for policy, e in nominal.items():
        rows.append(f"| {LABELS[policy]} | {_ci(e['return'], 0)} | {e['success']['mean']:.2f} | "
                    f"{e['fall_rate']['mean']:.2f} |")
    verdict = record["headline"]
    missed = [v["target"] for v in verdict["targets"].values() if not v["met"]]
    shown = lambda ok: "shown" if ok else "not shown"
    return render("claims_summary", table="\n".join(rows), training_seeds=len(record["training_seeds"]),
                  teacher_claim=shown(verdict["teacher_claim_shown"]),
                  deployment_claim=shown(verdict["deployment_claim_shown"]),
                  missed="(all met)" if not missed else "(not met: " + "; ".join(missed) + ")",
                  date=record["date"], machine=record["machine"], command=record["command"])


def claims_markdown(task: str, record: dict, figure: Path) -> str:
    from distillkit.claims import LABELS, POLICIES, value_text

    summary, verdict = record["policies"], record["headline"]
    lines = ["| perturbation | policy | return (95 % CI) | success (95 % CI) | fall rate | tracking error (m/s) |",
             "|---|---|---:|---:|---:|---:|"]
    for perturbation in summary["teacher"]:
        for policy in POLICIES:
            e = summary[policy][perturbation]
            tracking = "–" if math.isnan(e["tracking_error"]["mean"]) else f"{e['tracking_error']['mean']:.2f}"
            lines.append(f"| {perturbation} | {LABELS[policy]} | {_ci(e['return'], 1)} | {_ci(e['success'], 2)} | "
                         f"{e['fall_rate']['mean']:.2f} | {tracking} |")
    tests = ["| comparison (nominal) | metric | mean difference (95 % CI) | paired p |", "|---|---|---:|---:|"]
    for t in record["paired_tests"]:
        if t["perturbation"] == "nominal":
            low, high = t["difference_ci95"]
            tests.append(f"| {LABELS[t['a']]} − {LABELS[t['b']]} | {t['metric']} | "
                         f"{t['difference']:+.2f} ({low:+.2f}, {high:+.2f}) | {t['p_value']:.3g} |")
    targets = ["| target | measured | met |", "|---|---:|---|"]
    for v in verdict["targets"].values():
        targets.append(f"| {v['target']} | {value_text(v['value'])} | {'yes' if v['met'] else '**no**'} |")
    shown = lambda ok: "shown" if ok else "**not shown**"
    return render("claims", task=task, teacher_claim=shown(verdict["teacher_claim_shown"]),
                  deployment_claim=shown(verdict["deployment_claim_shown"]),
                  training_seeds=len(record["training_seeds"]),
                  episodes=record["episodes_per_policy_seed_perturbation"], held_out_seeds=record["held_out_seeds"],
                  table="\n".join(lines), tests="\n".join(tests), targets="\n".join(targets), figure=figure.name,
                  measured=measured(record["command"]))
