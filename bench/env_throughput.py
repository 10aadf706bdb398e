"""Env-steps/s of the MuJoCo C engine against the raw C limit, measured in the same run.

For each task and N, the env steps N worlds on one thread (``nthread=0``) under a workload, and
records every transition (state and control). The **C limit** then replays exactly those
transitions - same models, states, controls, N and frame skip - in one ``mujoco.rollout`` call
with no Python between steps: physics only. The ratio env / C limit is what the env's Python
(observations, rewards, noise, history, resets, torch hand-over) costs.

Workloads:
- ``stand``: zero actions, the robot holds its default pose on the PD targets (contacts on,
  resets rare, like a trained policy's steady state);
- ``random``: uniform actions in [-0.3, 0.3] each step: frequent falls, so many resets.

A second pass splits one env-step's time into physics, rewards and failures, observations
and the rest, and shows the terrain lookups behind the privileged ``height_scan`` and the fall
check, by timing those calls.

    python bench/env_throughput.py                 # writes bench/out/env_throughput.json
    python bench/env_throughput.py --update-docs   # and the table in docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import mujoco
import numpy as np
import torch
from mujoco import rollout

from distillkit.envs.mujoco_cpu import CTRL, MujocoEnv
from distillkit.results.report import write_section
from distillkit.tasks import terrain

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = {"stand": 0.0, "random": 0.3}


def run_env(task: str, n: int, steps: int, scale: float, seed: int = 0):
    env = MujocoEnv(task, n, nthread=0)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    actions = torch.as_tensor(rng.uniform(-scale, scale, (steps + 20, n, env.action_dim)), dtype=torch.float32)
    for t in range(20):                            # warm-up
        env.step(actions[t])
    states, ctrls, resets = [], [], 0
    elapsed = 0.0
    for t in range(20, steps + 20):
        states.append(env.state.copy())
        ctrls.append(env.task.ctrl(np.clip(actions[t].numpy().astype(np.float64), -1, 1)))
        start = time.perf_counter()
        result = env.step(actions[t])
        elapsed += time.perf_counter() - start
        resets += int(result.done.sum())
    return env, np.concatenate(states), np.concatenate(ctrls), elapsed, resets


def c_limit(env: MujocoEnv, states: np.ndarray, ctrls: np.ndarray, repeats: int = 3) -> float:
    """Best-of-``repeats`` seconds to step the recorded transitions in one rollout call."""
    rows = len(states)
    models = env.models * (rows // env.num_envs)
    control = np.ascontiguousarray(np.repeat(ctrls[:, None, :], env.frame_skip, axis=1))
    out = np.empty((rows, env.frame_skip, states.shape[1]))
    sens = np.empty((rows, env.frame_skip, env.model.nsensordata))
    pool = rollout.Rollout(nthread=0)
    data = [mujoco.MjData(env.model)]
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        pool.rollout(models, data, states, control, control_spec=CTRL, skip_checks=True,
                     nstep=env.frame_skip, state=out, sensordata=sens)
        best = min(best, time.perf_counter() - start)
    pool.close()
    return best


def breakdown(task: str, n: int, steps: int, scale: float) -> dict[str, float]:
    """Microseconds per env-step spent in each part, from timers around those calls."""
    env = MujocoEnv(task, n, nthread=0)
    spent = {"physics": 0.0, "rewards_and_failures": 0.0, "observations": 0.0, "terrain_lookups": 0.0}

    def timed(inner, key):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            out = inner(*args, **kwargs)
            spent[key] += time.perf_counter() - start
            return out
        return wrapper

    env._pool.rollout = timed(env._pool.rollout, "physics")
    env.task.evaluate = timed(env.task.evaluate, "rewards_and_failures")
    env._sense = timed(env._sense, "observations")
    # Height-scan and fall-check lookups in the terrain (the privileged ``height_scan``).
    task_module = sys.modules[type(env.task).__module__]
    if hasattr(task_module, "height_at"):
        task_module.height_at = timed(terrain.height_at, "terrain_lookups")
    try:
        env.reset(seed=0)
        rng = np.random.default_rng(0)
        actions = torch.as_tensor(rng.uniform(-scale, scale, (steps, n, env.action_dim)), dtype=torch.float32)
        total = 0.0
        for t in range(steps):
            start = time.perf_counter()
            env.step(actions[t])
            total += time.perf_counter() - start
    finally:
        if hasattr(task_module, "height_at"):
            task_module.height_at = terrain.height_at
    per_step = {k: v / (steps * n) * 1e6 for k, v in spent.items()}
    per_step["total"] = total / (steps * n) * 1e6
    per_step["other"] = per_step["total"] - per_step["physics"] - per_step["rewards_and_failures"] \
        - per_step["observations"]
    return per_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["walker_rough", "cartpole"])
    parser.add_argument("--num-envs", nargs="+", type=int, default=[16, 64, 256])
    parser.add_argument("--steps", type=int, default=200, help="control steps per measurement")
    parser.add_argument("--out", default=str(ROOT / "bench" / "out" / "env_throughput.json"))
    parser.add_argument("--update-docs", action="store_true", help="rewrite the table in docs/benchmarks.md")
    args = parser.parse_args()
    torch.set_num_threads(1)

    rows = []
    for task in args.tasks:
        for n in args.num_envs:
            for workload, scale in WORKLOADS.items():
                env, states, ctrls, elapsed, resets = run_env(task, n, args.steps, scale)
                limit = c_limit(env, states, ctrls)
                env.close()
                rows.append({
                    "task": task, "num_envs": n, "workload": workload,
                    "env_steps_per_s": n * args.steps / elapsed,
                    "c_limit_steps_per_s": n * args.steps / limit,
                    "ratio": limit / elapsed,
                    "resets_per_1000_env_steps": 1000 * resets / (n * args.steps),
                })
                print(f"{task:13s} N={n:4d} {workload:6s} env {rows[-1]['env_steps_per_s']:9.0f}/s  "
                      f"C limit {rows[-1]['c_limit_steps_per_s']:9.0f}/s  ratio {rows[-1]['ratio']:.3f}",
                      flush=True)
    parts = []
    for task in args.tasks:
        for workload, scale in WORKLOADS.items():
            parts.append({"task": task, "num_envs": 64, "workload": workload,
                          **breakdown(task, 64, args.steps, scale)})
            print(task, workload, {k: round(v, 2) for k, v in parts[-1].items() if isinstance(v, float)})

    result = {
        "command": "python bench/env_throughput.py --update-docs",
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, "
                   f"{os.cpu_count()} cores, Python {platform.python_version()}",
        "mujoco": mujoco.__version__, "threads": 1, "steps": args.steps,
        "throughput": rows, "breakdown_us_per_env_step": parts,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    if args.update_docs:
        update_docs(result)


def update_docs(result: dict) -> None:
    lines = [
        f"Measured {result['date']} on {result['machine']}, mujoco {result['mujoco']}, one thread, "
        f"{result['steps']} control steps per cell. Command: `{result['command']}`.",
        "",
        "| task | N | workload | env-steps/s | C limit env-steps/s | ratio | resets / 1000 steps |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in result["throughput"]:
        lines.append(f"| {r['task']} | {r['num_envs']} | {r['workload']} | {r['env_steps_per_s']:,.0f} | "
                     f"{r['c_limit_steps_per_s']:,.0f} | **{r['ratio']:.3f}** | "
                     f"{r['resets_per_1000_env_steps']:.1f} |")
    lines += [
        "",
        "Where one env-step's time goes at N = 64 (µs per env-step; timers around the calls add a "
        "little):",
        "",
        "| task | workload | physics | rewards + failures | observations | terrain lookups (scans, fall check) | other | total |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for p in result["breakdown_us_per_env_step"]:
        lines.append(f"| {p['task']} | {p['workload']} | {p['physics']:.2f} | {p['rewards_and_failures']:.2f} | "
                     f"{p['observations']:.2f} | {p['terrain_lookups']:.2f} | {p['other']:.2f} | {p['total']:.2f} |")
    write_section("env_throughput", "\n".join(lines), ROOT / "docs" / "benchmarks.md")


if __name__ == "__main__":
    main()
