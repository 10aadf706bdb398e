"""Env-steps/s of the MuJoCo C engine against the raw C limit, measured in paired repeats.

For each task and N, the env steps N worlds on one thread (``nthread=0``) under a workload. A
first, untimed pass records every transition (state and control). The **C limit** replays exactly
those transitions - same models, states, controls, N and frame skip - through ``mujoco.rollout``
with no Python between steps: physics only. The ratio env / C limit is what the env's Python
(observations, rewards, noise, history, resets, torch hand-over) costs.

The two are interleaved, as ``bench/isaaclab_overhead.py`` does: each repeat resets the env to
the same seed and runs the same actions (the env is deterministic, which the bench checks against
the recording), in chunks of ``--chunk`` control steps; each chunk is timed once in the env and
once replayed in the C limit, in alternating order, so a change of machine load hits both alike.
A repeat gives one paired ratio; the table reports medians over repeats and the spread
(min-max) of the paired ratio. Wall-clock is the measure; the thread's CPU time (which leaves out
time the process waits for a core on a shared machine) is reported beside it.

Workloads:
- ``stand``: zero actions, the robot holds its default pose on the PD targets (contacts on,
  resets rare, like a trained policy's steady state);
- ``random``: uniform actions in [-0.3, 0.3] each step: frequent falls, so many resets.

A second pass splits one env-step's CPU time at N = 64 into physics, the task's rewards and
failures, the task's observations, resets (the task's draw and the engine's restart) and the
env's own host code, and shows the terrain lookups behind the privileged ``height_scan`` and the
fall check, by timing those calls.

    python bench/env_throughput.py                 # writes bench/out/env_throughput.json
    python bench/env_throughput.py --update-docs   # and the table in docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

import mujoco
import numpy as np
import torch
from mujoco import rollout

from distillkit.envs.mujoco_cpu import CTRL, MujocoEnv
from distillkit.results.report import machine, write_section
from distillkit.tasks import terrain

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = {"stand": 0.0, "random": 0.3}
WARMUP = 20


def draw_actions(env: MujocoEnv, steps: int, scale: float, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.as_tensor(rng.uniform(-scale, scale, (WARMUP + steps, env.num_envs, env.action_dim)),
                           dtype=torch.float32)


def record(env: MujocoEnv, actions: torch.Tensor, seed: int):
    """An untimed pass: the state before each measured step, its control, the final state and
    the resets."""
    env.reset(seed=seed)
    for a in actions[:WARMUP]:
        env.step(a)
    states, ctrls, resets = [], [], 0
    for a in actions[WARMUP:]:
        states.append(env.state.copy())
        ctrls.append(env.task.ctrl(np.clip(a.numpy().astype(np.float64), -1, 1)))
        resets += int(env.step(a).done.sum())
    return np.stack(states), np.stack(ctrls), env.state.copy(), resets


class Replay:
    """The C limit of chunks of recorded transitions: one ``rollout`` call per chunk, every world
    of every step of the chunk one row, on the calling thread."""

    def __init__(self, env: MujocoEnv, states: np.ndarray, ctrls: np.ndarray, chunk: int):
        self.env, self.chunk = env, chunk
        self.states = states.reshape(-1, chunk * env.num_envs, states.shape[-1])
        rows = chunk * env.num_envs
        control = np.repeat(ctrls.reshape(-1, rows, 1, ctrls.shape[-1]), env.frame_skip, axis=2)
        self.control = np.ascontiguousarray(control)
        self.models = env.models * chunk
        self.out = np.empty((rows, env.frame_skip, states.shape[-1]))
        self.sens = np.empty((rows, env.frame_skip, env.model.nsensordata))
        self.pool = rollout.Rollout(nthread=0)
        self.data = [mujoco.MjData(env.model)]

    def __call__(self, k: int) -> None:
        self.pool.rollout(self.models, self.data, self.states[k], self.control[k], control_spec=CTRL,
                          skip_checks=True, nstep=self.env.frame_skip, state=self.out, sensordata=self.sens)

    def close(self) -> None:
        self.pool.close()


def paired_repeats(task: str, n: int, steps: int, scale: float, repeats: int, chunk: int, seed: int = 0) -> dict:
    """One cell of the table: ``repeats`` paired measurements of the env and the C limit."""
    if steps % chunk:
        raise ValueError(f"--steps {steps} must be a multiple of --chunk {chunk}")
    env = MujocoEnv(task, n, nthread=0)
    actions = draw_actions(env, steps, scale, seed)
    states, ctrls, final_state, resets = record(env, actions, seed)
    replay = Replay(env, states, ctrls, chunk)
    wall = {"env": [], "c_limit": []}
    cpu = {"env": [], "c_limit": []}
    for r in range(repeats):
        env.reset(seed=seed)
        for a in actions[:WARMUP]:
            env.step(a)
        spent = {"env": [0.0, 0.0], "c_limit": [0.0, 0.0]}     # wall, cpu
        for k in range(steps // chunk):
            block = actions[WARMUP + k * chunk:WARMUP + (k + 1) * chunk]
            for which in (("env", "c_limit") if (r + k) % 2 == 0 else ("c_limit", "env")):
                w0, c0 = time.perf_counter(), time.thread_time()
                if which == "env":
                    for a in block:
                        env.step(a)
                else:
                    replay(k)
                spent[which][0] += time.perf_counter() - w0
                spent[which][1] += time.thread_time() - c0
        if not np.array_equal(env.state, final_state):
            raise RuntimeError(f"{task}: repeat {r} did not reproduce the recorded transitions")
        for which in spent:
            wall[which].append(spent[which][0])
            cpu[which].append(spent[which][1])
    replay.close()
    env.close()
    ratios = [c / e for c, e in zip(wall["c_limit"], wall["env"])]
    cpu_ratios = [c / e for c, e in zip(cpu["c_limit"], cpu["env"])]
    work = n * steps
    return {
        "task": task, "num_envs": n,
        "env_steps_per_s": work / statistics.median(wall["env"]),
        "c_limit_steps_per_s": work / statistics.median(wall["c_limit"]),
        "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
        "cpu_ratio": statistics.median(cpu_ratios), "cpu_ratio_min": min(cpu_ratios),
        "cpu_ratio_max": max(cpu_ratios),
        "ratios": ratios, "cpu_ratios": cpu_ratios,
        "resets_per_1000_env_steps": 1000 * resets / work,
    }


def breakdown(task: str, n: int, steps: int, scale: float) -> dict[str, float]:
    """CPU microseconds per env-step spent in each part, from timers around those calls."""
    env = MujocoEnv(task, n, nthread=0)
    spent = {"physics": 0.0, "rewards_and_failures": 0.0, "observations": 0.0, "resets": 0.0,
             "terrain_lookups": 0.0}
    clock = time.thread_time

    def timed(inner, key):
        def wrapper(*args, **kwargs):
            start = clock()
            out = inner(*args, **kwargs)
            spent[key] += clock() - start
            return out
        return wrapper

    env._pool.rollout = timed(env._pool.rollout, "physics")
    env.task.evaluate = timed(env.task.evaluate, "rewards_and_failures")
    env.task.observe = timed(env.task.observe, "observations")
    # Height-scan and fall-check lookups in the terrain (the privileged ``height_scan``).
    task_module = sys.modules[type(env.task).__module__]
    if hasattr(task_module, "height_at"):
        task_module.height_at = timed(terrain.height_at, "terrain_lookups")
    try:
        env.reset(seed=0)
        env._reset_worlds = timed(env._reset_worlds, "resets")
        actions = draw_actions(env, steps, scale, 0)
        for a in actions[:WARMUP]:
            env.step(a)
        spent.update({k: 0.0 for k in spent})
        total = 0.0
        for a in actions[WARMUP:]:
            start = clock()
            env.step(a)
            total += clock() - start
    finally:
        if hasattr(task_module, "height_at"):
            task_module.height_at = terrain.height_at
    env.close()
    per_step = {k: v / (steps * n) * 1e6 for k, v in spent.items()}
    per_step["total"] = total / (steps * n) * 1e6
    per_step["env_host_code"] = per_step["total"] - sum(per_step[k] for k in (
        "physics", "rewards_and_failures", "observations", "resets"))
    return per_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["walker_rough", "cartpole"])
    parser.add_argument("--num-envs", nargs="+", type=int, default=[16, 64, 256])
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--steps", type=int, default=200, help="control steps per repeat")
    parser.add_argument("--chunk", type=int, default=10, help="control steps per interleaved chunk")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-breakdown", action="store_true", help="skip the breakdown pass")
    parser.add_argument("--machine-note", default="", help="said of the machine in the docs (e.g. shared)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "out" / "env_throughput.json"))
    parser.add_argument("--update-docs", action="store_true", help="rewrite the table in docs/benchmarks.md")
    args = parser.parse_args()
    torch.set_num_threads(1)

    rows = []
    for task in args.tasks:
        for n in args.num_envs:
            for workload in args.workloads:
                row = paired_repeats(task, n, args.steps, WORKLOADS[workload], args.repeats, args.chunk)
                rows.append({"workload": workload, **row})
                print(f"{task:13s} N={n:4d} {workload:6s} env {row['env_steps_per_s']:9.0f}/s  "
                      f"C limit {row['c_limit_steps_per_s']:9.0f}/s  ratio {row['ratio']:.3f} "
                      f"[{row['ratio_min']:.3f}-{row['ratio_max']:.3f}]  CPU-time ratio {row['cpu_ratio']:.3f}",
                      flush=True)
    parts = []
    if not args.no_breakdown:
        for task in args.tasks:
            for workload in args.workloads:
                parts.append({"task": task, "num_envs": 64, "workload": workload,
                              **breakdown(task, 64, args.steps, WORKLOADS[workload])})
                print(task, workload, {k: round(v, 2) for k, v in parts[-1].items() if isinstance(v, float)},
                      flush=True)

    result = {
        "command": "python " + shlex.join(sys.argv),
        "date": datetime.date.today().isoformat(),
        "machine": machine()
                   + (f" ({args.machine_note})" if args.machine_note else ""),
        "load_average_1min_at_end": os.getloadavg()[0],
        "mujoco": mujoco.__version__, "threads": 1, "steps": args.steps, "chunk": args.chunk,
        "repeats": args.repeats, "throughput": rows, "breakdown_us_per_env_step": parts,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    if args.update_docs:
        update_docs(result)


def update_docs(result: dict) -> None:
    lines = [
        f"Measured {result['date']} on {result['machine']}, 1-min load average {result['load_average_1min_at_end']:.1f} "
        f"at the end; mujoco {result['mujoco']}, one thread; {result['repeats']} paired repeats of "
        f"{result['steps']} control steps, interleaved in chunks of {result['chunk']}; medians, and the "
        f"min-max of the paired ratio. Command: `{result['command']}`.",
        "",
        "| task | N | workload | env-steps/s | C limit env-steps/s | ratio (median) | ratio min-max | "
        "CPU-time ratio | resets / 1000 steps |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["throughput"]:
        lines.append(f"| {r['task']} | {r['num_envs']} | {r['workload']} | {r['env_steps_per_s']:,.0f} | "
                     f"{r['c_limit_steps_per_s']:,.0f} | **{r['ratio']:.3f}** | "
                     f"{r['ratio_min']:.3f}-{r['ratio_max']:.3f} | {r['cpu_ratio']:.3f} | "
                     f"{r['resets_per_1000_env_steps']:.1f} |")
    if result["breakdown_us_per_env_step"]:
        lines += [
            "",
            "Where one env-step's CPU time goes at N = 64 (µs per env-step, one run; timers around the "
            "calls add a little):",
            "",
            "| task | workload | physics | rewards + failures | observations (task) | resets | "
            "terrain lookups (in the previous three) | env host code | total |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for p in result["breakdown_us_per_env_step"]:
            lines.append(f"| {p['task']} | {p['workload']} | {p['physics']:.2f} | {p['rewards_and_failures']:.2f} | "
                         f"{p['observations']:.2f} | {p['resets']:.2f} | {p['terrain_lookups']:.2f} | "
                         f"{p['env_host_code']:.2f} | {p['total']:.2f} |")
    write_section("env_throughput", "\n".join(lines), ROOT / "docs" / "benchmarks.md")


if __name__ == "__main__":
    main()
