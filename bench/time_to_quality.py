"""Wall-clock to a good student: distillkit's DAgger against rsl_rl's DistillationRunner.

The figure a user feels is not env-steps/s but how long until the student is good. Both distil the
shipped teacher (``distillkit/checkpoints/<task>_teacher``) into the same MLP student (the width the
course's student budget uses) on the ``student`` group, in the same env with the same worlds:

- **distillkit**: the course's DAgger as ``python -m distillkit results --section students`` runs it
  (the task's :data:`~distillkit.results.budgets.STUDENT_BUDGETS` entry: rounds, steps per round,
  gradient steps, learning rates), scored after every round;
- **rsl_rl**: ``DistillationRunner`` with Isaac Lab's distillation settings (as in
  ``bench/distill_vs_rsl_rl.py``), scored after every ``--rsl-chunk`` iterations, trained until its
  training clock passes the task's ``time_budget_s``.

A score is the student's mean return, alone, on the same held-out seeds as the teacher's (``--eval-seeds``
x 32 episodes); the clocks stop while it is scored. Reported per task, as medians over training seeds
(each seed a paired repeat, rsl_rl first on even seeds and last on odd ones, so both see the same load):
the training seconds each needs to first score at least 0.9 x the teacher's return, their ratio
(distillkit / rsl_rl, the goal of issue 16 is <= 0.8), and each one's return at equal wall-clock (the
latest score of each at the moment distillkit's run ends, or rsl_rl's if it ends first). distillkit's
final return (its student after the last round, the one the course keeps) is given as mean ± std over
seeds, as ``docs/results.md`` gives the students': a setting that reaches the target sooner but ends
lower or less reliably is no better default.

    python bench/time_to_quality.py --update-docs
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import math
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
from distill_vs_rsl_rl import RSL_STEPS_PER_ENV, rsl_rl_runner, rsl_rl_student

from distillkit.artifacts import shipped_teacher
from distillkit.atomic import write_text_atomic
from distillkit.dagger import dagger
from distillkit.envs import EnvFactory, make_env
from distillkit.evaluate import evaluate_policy, held_out_seeds
from distillkit.leakage import StudentOnly
from distillkit.pipeline import dagger_config
from distillkit.results.budgets import STUDENT_BUDGETS
from distillkit.results.report import machine, write_section
from distillkit.students import make_student
from distillkit.train import load_actor

ROOT = Path(__file__).resolve().parents[1]


def optional_float(text: str) -> float | None:
    return None if text == "none" else float(text)


# DaggerConfig fields --settings may set, with how each reads its value
TUNABLE = {"rounds": int, "steps_per_round": int, "grad_steps": int, "batch_worlds": int, "chunk": int, "lr": float,
           "lr_final": optional_float}
QUALITY = 0.9                       # the share of the teacher's return that counts as a good student
# rsl_rl trains until its clock passes this (s); it only needs to outlast distillkit's run and its own time to the target
TIME_BUDGET_S = {"cartpole": 20.0, "walker_rough": 900.0}


class TrainingClock:
    """Seconds spent training, on the wall clock and on this process's CPU time (which leaves out the
    time spent waiting for a core on a loaded machine): a stopwatch paused while the student is scored."""

    def __init__(self):
        self.start, self.paused = time.perf_counter(), 0.0
        self.cpu_start, self.cpu_paused = time.process_time(), 0.0

    def seconds(self) -> float:
        return time.perf_counter() - self.start - self.paused

    def cpu_seconds(self) -> float:
        return time.process_time() - self.cpu_start - self.cpu_paused

    def score(self, policy, score) -> dict:
        """Read the clocks, then score ``policy`` with them paused."""
        seconds, cpu_seconds = self.seconds(), self.cpu_seconds()
        before, cpu_before = time.perf_counter(), time.process_time()
        value = score(policy)
        self.paused += time.perf_counter() - before
        self.cpu_paused += time.process_time() - cpu_before
        return {"seconds": seconds, "cpu_seconds": cpu_seconds, "return": value}


def student_hidden(task: str) -> tuple[int, ...]:
    hidden = STUDENT_BUDGETS[task].options.get("hidden")
    return tuple(hidden) if hidden else (256, 128, 64)      # MLPStudent's default


def parse_setting(text: str) -> dict:
    """``"steps_per_round=60,lr_final=1e-4"`` -> {"steps_per_round": 60, "lr_final": 0.0001} ("" -> {};
    ``lr_final=none``: the same learning rate in every round)."""
    setting = {}
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        if key not in TUNABLE:
            raise SystemExit(f"--settings: expected key=value pairs with keys from {list(TUNABLE)}, got {part!r}")
        try:
            setting[key] = TUNABLE[key](value)
        except ValueError:
            kind = {int: "an integer", float: "a number", optional_float: "a number or none"}[TUNABLE[key]]
            raise SystemExit(f"--settings: {key} takes {kind}, got {value!r}") from None
    return setting


def distillkit_curve(task: str, seed: int, score, setting: dict) -> list[dict]:
    """The course's DAgger for ``task`` (its student budget, ``setting`` changing some of it), scored
    after every round: [{seconds, env_steps, return}]."""
    budget = STUDENT_BUDGETS[task]
    env = make_env(task, budget.num_envs)
    teacher, _, _ = load_actor(shipped_teacher(task), env)
    torch.manual_seed(seed)
    student = make_student("mlp", env.schema, env.action_dim, hidden=student_hidden(task))
    config = dagger_config(**{"rounds": budget.rounds, "steps_per_round": budget.steps_per_round,
                              "grad_steps": budget.grad_steps, "lr_final": budget.lr_final, "schedule": "first",
                              **setting})
    schema, curve = env.schema, []

    def after_round(trained) -> dict:
        point = clock.score(StudentOnly(trained, schema), score)
        curve.append({**point, "env_steps": (len(curve) + 1) * config.steps_per_round * budget.num_envs})
        return {}

    clock = TrainingClock()
    dagger(env, lambda o: teacher(o), student, config, seed=seed, evaluate=after_round)
    env.close()
    return curve


def rsl_rl_curve(task: str, seed: int, score, chunk: int) -> list[dict]:
    """rsl_rl's DistillationRunner, scored after every ``chunk`` iterations until the task's time budget."""
    n = STUDENT_BUDGETS[task].num_envs
    env = make_env(task, n)
    runner = rsl_rl_runner(task, env, seed, hidden=student_hidden(task))
    curve, iterations, clock = [], 0, TrainingClock()
    while clock.seconds() < TIME_BUDGET_S[task]:
        runner.learn(chunk)
        iterations += chunk
        point = clock.score(rsl_rl_student(runner, env.schema), score)
        curve.append({**point, "env_steps": iterations * RSL_STEPS_PER_ENV * n})
    env.close()
    return curve


def time_to(curve: list[dict], target: float, clock: str = "seconds") -> float:
    """Training seconds (``clock``: "seconds" on the wall clock, "cpu_seconds" on CPU time) at the
    first score of at least ``target`` (infinite: never reached)."""
    return next((p[clock] for p in curve if p["return"] >= target), math.inf)


def return_at(curve: list[dict], seconds: float) -> float:
    """The latest score taken by ``seconds`` of training (NaN: none yet)."""
    taken = [p["return"] for p in curve if p["seconds"] <= seconds]
    return taken[-1] if taken else math.nan


def compare(ours: list[dict], theirs: list[dict], teacher_return: float) -> dict:
    """Time to quality and the returns at equal wall-clock of one paired repeat (distillkit's curve, rsl_rl's)."""
    target = QUALITY * teacher_return
    equal = min(ours[-1]["seconds"], theirs[-1]["seconds"])
    t_ours, t_theirs = time_to(ours, target), time_to(theirs, target)
    return {"target_return": target, "distillkit_seconds_to_target": t_ours, "rsl_rl_seconds_to_target": t_theirs,
            "time_ratio": t_ours / t_theirs,
            "cpu_time_ratio": time_to(ours, target, "cpu_seconds") / time_to(theirs, target, "cpu_seconds"),
            "equal_wall_clock_s": equal,
            "distillkit_return_at_equal": return_at(ours, equal), "rsl_rl_return_at_equal": return_at(theirs, equal)}


def saved_rows(path: Path) -> list[dict]:
    """The paired repeats an earlier run saved in ``path`` (none if it does not exist), their
    comparisons recomputed from the curves (the file writes a time never reached as null)."""
    if not path.exists():
        return []
    rows = json.loads(path.read_text())["rows"]
    return [{**r, **compare(r["curves"]["distillkit"], r["curves"]["rsl_rl"], r["teacher_return"])} for r in rows]


def json_safe(value):
    """``value`` with every infinite or NaN float (a time never reached, a ratio of two) as null."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def ratio_text(rows: list[dict], key: str, bold: bool = False) -> str:
    """The median paired ratio over seeds with its min-max (NaN, where neither run reached the target, left out)."""
    ratios = [r[key] for r in rows if not math.isnan(r[key])]
    if not ratios:
        return "neither reached"
    median = f"{statistics.median(ratios):.2f}"
    return f"{f'**{median}**' if bold else median} ({min(ratios):.2f}-{max(ratios):.2f})"


def mean_std(values: list[float]) -> str:
    """``mean ± std`` over seeds (the sample std; just the value for one seed)."""
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}" if len(values) > 1 else f"{values[0]:.1f}"


def seconds_text(value: float) -> str:
    return "not reached" if math.isinf(value) else f"{value:,.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(TIME_BUDGET_S), choices=list(TIME_BUDGET_S))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    parser.add_argument("--eval-seeds", type=int, default=2)
    parser.add_argument("--rsl-chunk", type=int, default=1, help="rsl_rl iterations between scores")
    parser.add_argument("--settings", nargs="+", default=[""],
                        help="distillkit runs per seed, each its student budget with these changes, e.g. "
                             "'steps_per_round=60,grad_steps=100' ('' = the budget as it is)")
    parser.add_argument("--machine-note", default="", help="said beside the machine in the docs")
    parser.add_argument("--out", default=str(ROOT / "bench" / "out" / "time_to_quality.json"))
    parser.add_argument("--update-docs", action="store_true")
    parser.add_argument("--resume", action="store_true",
                        help="keep the paired repeats already saved in --out and run only the missing seeds "
                             "(the file is rewritten after every seed)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    # A process's first torch optimizer imports torch._dynamo (seconds on a small CPU): pay it before any
    # clock runs, or whichever method trains first in this process pays it.
    importlib.import_module("torch._dynamo")
    out = Path(args.out)
    rows = saved_rows(out) if args.resume else []
    done = {(r["task"], r["seed"]) for r in rows}

    def save() -> dict:
        note = f", {args.machine_note}" if args.machine_note else ""
        result = {"command": "python " + shlex.join(sys.argv), "date": datetime.date.today().isoformat(),
                  "machine": f"{machine()}{note} "
                             f"(1-min load average at the end: {os.getloadavg()[0]:.1f})",
                  "torch_threads": 1, "quality": QUALITY, "time_budget_s": TIME_BUDGET_S, "rows": rows}
        out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out, json.dumps(json_safe(result), indent=2) + "\n")
        return result

    for task in args.tasks:
        seeds, envs = held_out_seeds(args.eval_seeds), EnvFactory(task)
        schema = envs.schema
        deployable = lambda o: StudentOnly.deployable(o, schema)    # noqa: E731
        env = envs(1)
        teacher, _, _ = load_actor(shipped_teacher(task), env)
        env.close()
        teacher_return = float(evaluate_policy(lambda o: teacher(o), envs, seeds, num_envs=32)["return"].mean())

        def score(policy) -> float:
            return float(evaluate_policy(policy, envs, seeds, num_envs=32, observe=deployable)["return"].mean())

        for k, seed in enumerate(args.seeds):
            if (task, seed) in done:
                continue
            order = ["rsl_rl", *args.settings]
            if k % 2:
                order = order[1:] + order[:1]
            curves = {name: (rsl_rl_curve(task, seed, score, args.rsl_chunk) if name == "rsl_rl"
                             else distillkit_curve(task, seed, score, parse_setting(name))) for name in order}
            for setting in args.settings:
                rows.append({"task": task, "setting": setting or "student budget", "seed": seed,
                             "teacher_return": teacher_return,
                             **compare(curves[setting], curves["rsl_rl"], teacher_return),
                             "curves": {"distillkit": curves[setting], "rsl_rl": curves["rsl_rl"]}})
                print(json.dumps({k: v for k, v in rows[-1].items() if k != "curves"}), flush=True)
            save()
    result = save()
    if args.update_docs:
        # one section per task, so that measuring one task leaves the other's table as it was
        for task in args.tasks:
            write_section(f"time_to_quality_{task}", docs_table({**result, "rows": [r for r in rows if r["task"] == task]},
                                                                args), ROOT / "docs" / "benchmarks.md")


def docs_table(result: dict, args) -> str:
    lines = [f"Measured {result['date']} on {result['machine']}, one torch thread. Command: `{result['command']}`. "
             f"Training seeds {args.seeds}, each a paired repeat (rsl_rl first on even seeds, last on odd ones); "
             f"scores on {args.eval_seeds} held-out seed{'s' if args.eval_seeds != 1 else ''} × 32 episodes, the "
             "student alone; medians over seeds "
             "(a time never reached counts as infinite), min-max of the paired time ratio; the CPU-time ratio "
             "is the same on each process's CPU time, which leaves out waiting for a core.", "",
             f"| task | distillkit setting | teacher return | target ({QUALITY} × teacher) | distillkit s to target | "
             "rsl_rl s to target | time ratio (min-max) | CPU-time ratio (min-max) | equal wall-clock s | "
             "distillkit return there | rsl_rl return there | distillkit final return |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for task, setting in dict.fromkeys((r["task"], r["setting"]) for r in result["rows"]):
        rows = [r for r in result["rows"] if (r["task"], r["setting"]) == (task, setting)]
        finals = [r["curves"]["distillkit"][-1]["return"] for r in rows]
        lines.append(
            f"| {task} | {setting} | {rows[0]['teacher_return']:.1f} | {rows[0]['target_return']:.1f} | "
            f"{seconds_text(statistics.median(r['distillkit_seconds_to_target'] for r in rows))} | "
            f"{seconds_text(statistics.median(r['rsl_rl_seconds_to_target'] for r in rows))} | "
            f"{ratio_text(rows, 'time_ratio', bold=True)} | {ratio_text(rows, 'cpu_time_ratio')} | "
            f"{statistics.median(r['equal_wall_clock_s'] for r in rows):,.1f} | "
            f"{statistics.median(r['distillkit_return_at_equal'] for r in rows):.1f} | "
            f"{statistics.median(r['rsl_rl_return_at_equal'] for r in rows):.1f} | {mean_std(finals)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
