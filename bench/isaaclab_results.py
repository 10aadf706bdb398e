"""The course pipeline on Isaac Lab cart-pole, on the CPU: teacher -> DAgger student -> leakage probes.

For each training seed: a privileged PPO teacher on ``Isaac-Cartpole`` (distillkit's role groups:
the teacher sees joint velocities and the randomised pole mass), a DAgger student on joint
positions with a 3-sample history, and the one evaluation artifact (held-out seeds; nominal, push
and heavy-pole panels; the four leakage checks). The table goes into ``docs/results.md``.

Isaac Lab multiplies every reward term by the control step (1/60 s), so returns here are about
1/60 of distillkit's MuJoCo cart-pole returns for the same behaviour (at most 5.0 per 5 s episode).
Runs live under ``runs/isaaclab/`` and are reused when finished.

    python bench/isaaclab_results.py                 # ~10 min on 2 CPU cores
    python bench/isaaclab_results.py --update-docs   # and the section in docs/results.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from pathlib import Path

import pandas as pd

from distillkit.envs import EnvFactory
from distillkit.pipeline import dagger_config, evaluate, train_student
from distillkit.ppo import PPOConfig
from distillkit.results.report import write_section
from distillkit.train import train_teacher

ROOT = Path(__file__).resolve().parents[1]
ENGINE, TASK = "isaaclab", "cartpole"
ENVS = EnvFactory(TASK, ENGINE)
TEACHER = dict(env_steps=196_608, num_envs=256, config=PPOConfig(entropy_coef=0.005))
STUDENT = dict(rounds=4, steps_per_round=150, grad_steps=300, num_envs=64)
EVAL = dict(seeds=2, num_envs=32)


def run_seed(runs: Path, seed: int) -> tuple[pd.DataFrame, dict]:
    teacher, student = runs / f"teacher_seed{seed}", runs / f"student_seed{seed}"
    if not (teacher / "manifest.json").exists() or json.loads((teacher / "manifest.json").read_text()).get(
            "env_steps", 0) < TEACHER["env_steps"]:
        train_teacher(TASK, teacher, TEACHER["env_steps"], seed=seed, num_envs=TEACHER["num_envs"],
                      config=TEACHER["config"], engine=ENGINE, progress=False)
    if not (student / "manifest.json").exists():
        config = dagger_config(rounds=STUDENT["rounds"], steps_per_round=STUDENT["steps_per_round"],
                               grad_steps=STUDENT["grad_steps"])
        train_student(ENVS, teacher, student, config=config, num_envs=STUDENT["num_envs"], seed=seed, progress=False)
    report = student / "evaluation"
    if not (report / "evaluation.json").exists():
        evaluate(ENVS, teacher, student, report, seeds=EVAL["seeds"], num_envs=EVAL["num_envs"])
    return pd.read_csv(report / "summary.csv").assign(seed=seed), json.loads((report / "evaluation.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--runs", default=str(ROOT / "runs" / "isaaclab"))
    parser.add_argument("--update-docs", action="store_true")
    args = parser.parse_args()

    panels, reports = [], []
    for seed in args.seeds:
        panel, report = run_seed(Path(args.runs), seed)
        panels.append(panel)
        reports.append(report)
    panel = pd.concat(panels)
    agg = panel.groupby("perturbation", sort=False).agg(
        teacher=("teacher_return", "mean"), teacher_std=("teacher_return", "std"),
        student=("student_return", "mean"), student_std=("student_return", "std"),
        ratio=("return_ratio", "mean"), ratio_std=("return_ratio", "std"),
        t_success=("teacher_success", "mean"), success=("student_success", "mean"), mse=("imitation_mse", "mean"))
    checks = pd.DataFrame([c | {"seed": s} for r, s in zip(reports, args.seeds) for c in r["leakage_checks"]])
    lines = ["| perturbation | teacher return | student return | student ÷ teacher | success: teacher / student | "
             "imitation MSE |", "|---|---:|---:|---:|---:|---:|"]
    for p, r in agg.iterrows():
        lines.append(f"| {p} | {r.teacher:.2f} ± {r.teacher_std:.2f} | {r.student:.2f} ± {r.student_std:.2f} | "
                     f"**{r.ratio:.2f}** ± {r.ratio_std:.2f} | {r.t_success:.2f} / {r.success:.2f} | {r.mse:.4f} |")
    tally = ", ".join(f"{name} {int(g['passed'].sum())}/{len(g)}" for name, g in checks.groupby("check", sort=False))
    spec = reports[0]
    body = f"""
## Isaac Lab cart-pole: the same pipeline on Isaac Lab 3.0 (CPU)

`Isaac-Cartpole` on Isaac Lab 3.0 kit-less (Newton / MuJoCo Warp on Warp's CPU device) with the project's
generated assets (`distillkit.assets`), through `make_env("cartpole", n, engine="isaaclab")`. The teacher
(PPO, {TEACHER['env_steps']:,} env steps, {TEACHER['num_envs']} envs) sees joint velocities and the pole mass
(randomised ×0.5–2 per episode); the student (DAgger, β = 1(i=1), {STUDENT['rounds']} rounds ×
{STUDENT['steps_per_round']} steps × {STUDENT['num_envs']} envs, {STUDENT['grad_steps']} gradient steps per round)
sees joint positions with a 3-sample history. Each student is evaluated alone (student-only wrapper) on
{EVAL['seeds']} held-out seeds × {EVAL['num_envs']} episodes per perturbation, with its teacher on the same panel.
Mean ± std over training seeds {args.seeds}. Returns are Isaac Lab's, scaled by the control step (≤ 5.0 per
episode), so they are not comparable with the MuJoCo cart-pole's. Leakage checks passed: {tally}.

{chr(10).join(lines)}

Measured {datetime.date.today().isoformat()} on {platform.machine()}, {os.cpu_count()} cores (shared), Python
{platform.python_version()}, Isaac Lab {spec.get('provenance', {}).get('isaaclab', '3.0.0')}. Command:
`python bench/isaaclab_results.py --update-docs`.
"""
    print(body)
    out = ROOT / "bench" / "out" / "isaaclab_results.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"panel": panel.to_dict("records"), "leakage_checks": checks.to_dict("records"),
                               "command": "python " + " ".join(sys.argv)}, indent=2, default=str) + "\n")
    if args.update_docs:
        write_section("isaaclab_cartpole", body)


if __name__ == "__main__":
    main()
