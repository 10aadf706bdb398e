"""Env-steps/s of the MuJoCo Warp engine against raw ``mujoco_warp.step``, measured in the same run.

For each task, the distillkit env (``engine="mujoco_warp"``) steps N worlds under uniform random
actions in [-0.3, 0.3] (frequent falls, so resets are part of the cost), and every transition
(qpos, qvel, ctrl of all worlds) is recorded. The **raw** figure then replays exactly those
transitions on the same Warp model and data: per control step, the ``frame_skip`` calls of
``mujoco_warp.step`` the env makes (captured in one CUDA graph on a GPU, as the env does) and
nothing else: no resets, observations or rewards. The ratio env / raw is what the env adds: the
task's numpy observations, rewards and resets on the host, the host <-> device copies, the
overflow check, noise, history and the torch hand-over. (Per-world parameters and terrain during
the replay are those of the last episodes; the physics cost hardly depends on them.)

The env and the raw replay are interleaved in paired repeats (each repeat resets the env to the
same seed and runs the same actions, and replays the recorded transitions raw, the order
alternating), as ``bench/isaaclab_overhead.py`` does; the table reports medians over repeats and
the min-max of the paired ratio.

    python bench/warp_throughput.py                                   # Warp CPU device, 8 worlds
    python bench/warp_throughput.py --device cuda --worlds 4096 --out bench/out/warp_throughput_cuda.json
    python bench/warp_throughput.py --update-docs      # and its table in docs/benchmarks.md (one per device kind)
    python bench/warp_throughput.py --from-json gpu_check.json   # the table from bench/gpu_check.sh's result

On the CPU keep the worlds few: each world-step costs ~130-190 us there. The first
run compiles Warp's kernels (10-30 s on the CPU, more for CUDA), cached afterwards; the build
time is reported separately and not counted in either rate.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import warp as wp

from distillkit.envs.mujoco_warp import MujocoWarpEnv, mjw
from distillkit.results.report import machine, write_section

ROOT = Path(__file__).resolve().parents[1]
ACTION_SCALE = 0.3


def run_env(env: MujocoWarpEnv, steps: int, seed: int = 0, record: bool = False):
    """Seconds for ``steps`` env steps, of which seconds inside the physics, the resets, and (if
    ``record``) the transitions stepped (device copies of qpos, qvel and ctrl before each step's
    physics; copying them is then counted in the env's time)."""
    rng = np.random.default_rng(seed)
    actions = torch.as_tensor(rng.uniform(-ACTION_SCALE, ACTION_SCALE, (steps, env.num_envs, env.action_dim)),
                              dtype=torch.float32)
    physics, transitions = 0.0, []
    inner = env._run_physics

    def timed_physics():
        nonlocal physics
        if record:
            transitions.append({k: env._dev[k].clone() for k in ("qpos", "qvel", "ctrl")})
        start = time.perf_counter()
        inner()
        wp.synchronize_device(env.wp_device)
        physics += time.perf_counter() - start

    env._run_physics = timed_physics
    resets, elapsed = 0, 0.0
    for t in range(steps):
        start = time.perf_counter()
        resets += int(env.step(actions[t]).done.sum())
        elapsed += time.perf_counter() - start
    env._run_physics = inner
    return elapsed, physics, resets, transitions


def run_raw(env: MujocoWarpEnv, transitions: list[dict]) -> float:
    """Seconds to step the recorded transitions: per control step, the env's ``frame_skip`` calls
    of ``mujoco_warp.step`` (one CUDA graph on a GPU) and nothing else. Writing each transition's
    state into the Warp arrays is not timed."""
    total = 0.0
    for state in transitions:
        for k, v in state.items():
            env._dev[k].copy_(v)
        env._torch_wrote()
        wp.synchronize_device(env.wp_device)
        start = time.perf_counter()
        env._launch("steps", env._cold_steps)
        wp.synchronize_device(env.wp_device)
        total += time.perf_counter() - start
    return total


def measure(task: str, worlds: int, device: str, steps: int, repeats: int) -> dict:
    """``repeats`` paired measurements: each repeat runs the env for ``steps`` control steps from
    the same seed and replays the first repeat's transitions raw, in alternating order."""
    start = time.perf_counter()
    env = MujocoWarpEnv(task, worlds, device=device)
    env.reset(seed=0)
    env.step(torch.zeros(worlds, env.action_dim))          # compiles (or loads) kernels, captures the graph
    build = time.perf_counter() - start
    run_env(env, min(steps, 5), seed=1)                    # warm-up
    env.reset(seed=0)
    _, _, _, transitions = run_env(env, steps, record=True)   # the transitions the raw replays step
    elapsed, physics, raw, resets = [], [], [], 0
    for r in range(repeats):
        for which in (("env", "raw") if r % 2 == 0 else ("raw", "env")):
            if which == "raw":
                raw.append(run_raw(env, transitions))
                continue
            env.reset(seed=0)
            seconds, inside, done, _ = run_env(env, steps)
            elapsed.append(seconds)
            physics.append(inside)
            resets += done
    env.close()
    ratios = [r / e for r, e in zip(raw, elapsed)]
    return {
        "task": task, "worlds": worlds, "device": device, "control_steps": steps, "repeats": repeats,
        "env_steps_per_s": worlds * steps / statistics.median(elapsed),
        "raw_env_steps_per_s": worlds * steps / statistics.median(raw),
        "ratio_env_to_raw": statistics.median(ratios),
        "ratio_min": min(ratios), "ratio_max": max(ratios),
        "physics_share_of_env_step": statistics.median(p / e for p, e in zip(physics, elapsed)),
        "resets_per_1000_env_steps": 1000 * resets / (worlds * steps * repeats),
        "build_and_first_step_s": build,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="Warp device: cpu or cuda[:i]")
    parser.add_argument("--worlds", type=int, default=8)
    parser.add_argument("--tasks", nargs="+", default=["walker_rough", "cartpole"])
    parser.add_argument("--steps", type=int, default=30, help="control steps per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="paired repeats of env and raw")
    parser.add_argument("--out", default=str(ROOT / "bench" / "out" / "warp_throughput.json"))
    parser.add_argument("--update-docs", action="store_true", help="rewrite this device kind's table in docs/benchmarks.md")
    parser.add_argument("--from-json", help="only write the docs table from this result (this script's JSON, or the "
                                            "gpu_check.json that bench/gpu_check.sh brings back)")
    args = parser.parse_args()
    if args.from_json:
        result = json.loads(Path(args.from_json).read_text())
        result = result.get("mujoco_warp_walker_rough", {}).get("result") or result
        update_docs(result, "cpu" if result["device"] == "Warp CPU device" else "cuda")
        return
    torch.set_num_threads(1)

    rows = []
    for task in args.tasks:
        rows.append(measure(task, args.worlds, args.device, args.steps, args.repeats))
        r = rows[-1]
        print(f"{task:13s} N={args.worlds:5d} {args.device}: env {r['env_steps_per_s']:10,.0f}/s  "
              f"raw mujoco_warp {r['raw_env_steps_per_s']:10,.0f}/s  ratio {r['ratio_env_to_raw']:.3f} "
              f"[{r['ratio_min']:.3f}-{r['ratio_max']:.3f}]  "
              f"(physics {r['physics_share_of_env_step']:.0%} of an env step; build {r['build_and_first_step_s']:.1f} s)",
              flush=True)
    device = wp.get_device(args.device)
    result = {
        "command": "python bench/warp_throughput.py " + " ".join(
            f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in vars(args).items() if k not in ("out", "update_docs", "from_json"))
        + (" --update-docs" if args.update_docs else ""),
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "load_average_1min": os.getloadavg()[0],   # other processes share the cores: ratios, not rates, compare
        "device": device.name if device.is_cuda else "Warp CPU device",
        "mujoco_warp": mjw.__version__, "warp": wp.__version__, "torch_threads": 1,
        "throughput": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    if args.update_docs:
        update_docs(result, "cuda" if device.is_cuda else "cpu")


def update_docs(result: dict, kind: str) -> None:
    lines = [
        f"Measured {result['date']} on {result['machine']} (1-min load average {result['load_average_1min']:.1f}), "
        f"{result['device']}, mujoco_warp {result['mujoco_warp']}, warp {result['warp']}; "
        f"{result['throughput'][0].get('repeats', 1)} paired repeats, medians. "
        f"Command: `{result['command']}`.",
        "",
        "| task | worlds | env env-steps/s | raw mujoco_warp env-steps/s | ratio (median) | ratio min-max | "
        "physics share of an env step |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["throughput"]:
        lines.append(f"| {r['task']} | {r['worlds']} | {r['env_steps_per_s']:,.0f} | {r['raw_env_steps_per_s']:,.0f} | "
                     f"**{r['ratio_env_to_raw']:.3f}** | {r['ratio_min']:.3f}-{r['ratio_max']:.3f} | "
                     f"{r['physics_share_of_env_step']:.0%} |")
    write_section(f"warp_throughput_{kind}", "\n".join(lines), ROOT / "docs" / "benchmarks.md")


if __name__ == "__main__":
    main()
