"""A few PPO iterations of distillkit's teacher on one engine and device: env-steps/s of each
iteration, split into collection (env steps and policy inference) and the update.

    python bench/gpu_ppo.py --engine mujoco_warp --device cuda --num-envs 4096 --iterations 3

The first iteration includes any kernel compilation the engine still has to do; the summary's
rate is the median of the later ones. bench/gpu_check.sh runs it on the GPU machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from distillkit.envs import make_env
from distillkit.ppo import PPO, PPOConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="walker_rough")
    parser.add_argument("--engine", default="mujoco_warp")
    parser.add_argument("--device", default="cuda", help="the engine's device (mujoco_warp: its Warp device)")
    parser.add_argument("--num-envs", type=int, default=4096)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--policy-device", default=None,
                        help="where the networks run (default: where the env hands out its tensors)")
    parser.add_argument("--torch-threads", type=int, default=1, help="as distillkit.train sets")
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)

    start = time.perf_counter()
    env = make_env(args.task, args.num_envs, engine=args.engine, device=args.device)
    ppo = PPO(env, PPOConfig(), seed=0, device=args.policy_device)
    obs = env.reset(seed=0)
    build = time.perf_counter() - start
    rows = []
    steps = ppo.config.steps_per_env * env.num_envs
    for it in range(args.iterations):
        t0 = time.perf_counter()
        rollout, obs, ended = ppo.collect(obs)
        t1 = time.perf_counter()
        ppo.update(rollout)
        t2 = time.perf_counter()
        rows.append({"iteration": it, "env_steps": steps, "collect_s": t1 - t0, "update_s": t2 - t1,
                     "env_steps_per_s": steps / (t2 - t0), "collect_env_steps_per_s": steps / (t1 - t0),
                     "episodes_ended": len(ended["return"])})
        print(json.dumps(rows[-1]), flush=True)
    env.close()
    later = rows[1:] or rows
    result = {"task": args.task, "engine": args.engine, "device": args.device, "num_envs": args.num_envs,
              "tensors_on": str(env.device), "networks_on": str(ppo.device), "torch_threads": args.torch_threads,
              "build_s": build,
              "env_steps_per_s": statistics.median(r["env_steps_per_s"] for r in later),
              "collect_env_steps_per_s": statistics.median(r["collect_env_steps_per_s"] for r in later),
              "update_s": statistics.median(r["update_s"] for r in later), "iterations": rows}
    print(json.dumps({k: v for k, v in result.items() if k != "iterations"}), flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
