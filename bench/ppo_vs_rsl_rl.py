"""distillkit's PPO against rsl_rl's OnPolicyRunner on the same env, in one run.

Both train a teacher on the same distillkit env (rsl_rl through ``RslRlVecEnv`` with explicit
observation groups: actor = ``teacher``, critic = ``critic``) with the same networks, env count,
steps per iteration, epochs, minibatches, learning-rate schedule, entropy coefficient and
observation normalisation, for the same number of iterations. Reported per task:

- training throughput in env-steps/s (collection and update) and distillkit / rsl_rl;
- return at equal env steps: each final policy's mean action, evaluated on the same held-out
  seeds with :func:`distillkit.evaluate.evaluate_policy`.

Differences that remain by design: distillkit bootstraps time-outs from the true final
observation, rsl_rl from the current one.

    python bench/ppo_vs_rsl_rl.py --update-docs
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path

import torch
from tensordict import TensorDict

from distillkit.envs import EnvFactory, make_env
from distillkit.envs.rsl_rl import RslRlVecEnv, checked_obs_groups
from distillkit.evaluate import evaluate_policy, held_out_seeds
from distillkit.ppo import PPO, PPOConfig, run_iteration
from distillkit.results.report import write_section
from distillkit.schema import GROUPS

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {  # task: (num_envs, iterations, hidden sizes, entropy coefficient)
    "cartpole": (64, 60, (64, 64), 0.005),
    "walker_rough": (64, 150, (256, 128, 64), 0.005),
}


def rsl_rl_config(config: PPOConfig, hidden) -> dict:
    return {
        "num_steps_per_env": config.steps_per_env, "save_interval": 10_000, "multi_gpu": None,
        "obs_groups": checked_obs_groups({"actor": ["teacher"], "critic": ["critic"]}, "PPO"),
        "algorithm": {"class_name": "PPO", "num_learning_epochs": config.epochs,
                      "num_mini_batches": config.minibatches, "clip_param": config.clip, "gamma": config.gamma,
                      "lam": config.lam, "value_loss_coef": config.value_coef, "entropy_coef": config.entropy_coef,
                      "learning_rate": config.learning_rate, "max_grad_norm": config.max_grad_norm,
                      "use_clipped_value_loss": True, "schedule": "adaptive", "desired_kl": config.desired_kl},
        "actor": {"class_name": "MLPModel", "hidden_dims": list(hidden), "activation": "elu",
                  "obs_normalization": True,
                  "distribution_cfg": {"class_name": "GaussianDistribution", "init_std": config.init_std}},
        "critic": {"class_name": "MLPModel", "hidden_dims": list(hidden), "activation": "elu",
                   "obs_normalization": True},
    }


def run_distillkit(task: str, n: int, iterations: int, config: PPOConfig, seed: int):
    env = make_env(task, n)
    ppo = PPO(env, config, seed=seed)
    obs = env.reset(seed=seed)
    start = time.perf_counter()
    steps = 0
    for it in range(iterations):
        obs, row = run_iteration(ppo, obs, it, steps)
        steps = row["env_steps"]
    seconds = time.perf_counter() - start
    env.close()
    actor = ppo.actor.eval()
    return steps / seconds, lambda o: actor(o)


def run_rsl_rl(task: str, n: int, iterations: int, config: PPOConfig, hidden, seed: int):
    from rsl_rl.runners import OnPolicyRunner

    torch.manual_seed(seed)
    env = make_env(task, n)
    vec = RslRlVecEnv(env, seed=seed)
    runner = OnPolicyRunner(vec, rsl_rl_config(config, hidden), log_dir=None, device="cpu")
    start = time.perf_counter()
    runner.learn(iterations)
    seconds = time.perf_counter() - start
    policy = runner.get_inference_policy(device="cpu")
    schema = env.schema
    env.close()
    groups = lambda o: TensorDict({g: schema.flatten(o, g) for g in GROUPS}, batch_size=[next(iter(o.values())).shape[0]])
    return iterations * config.steps_per_env * n / seconds, lambda o: policy(groups(o))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(SETTINGS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-seeds", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench" / "out" / "ppo_vs_rsl_rl.json"))
    parser.add_argument("--update-docs", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for task in args.tasks:
        n, iterations, hidden, entropy = SETTINGS[task]
        config = PPOConfig(actor_hidden=hidden, critic_hidden=hidden, entropy_coef=entropy)
        ours_sps, ours_policy = run_distillkit(task, n, iterations, config, args.seed)
        rsl_sps, rsl_policy = run_rsl_rl(task, n, iterations, config, hidden, args.seed)
        seeds, envs = held_out_seeds(args.eval_seeds), EnvFactory(task)
        ours = evaluate_policy(ours_policy, envs, seeds, num_envs=16)["return"]
        theirs = evaluate_policy(rsl_policy, envs, seeds, num_envs=16)["return"]
        rows.append({"task": task, "num_envs": n, "iterations": iterations,
                     "env_steps": iterations * n * config.steps_per_env,
                     "distillkit_steps_per_s": ours_sps, "rsl_rl_steps_per_s": rsl_sps,
                     "speed_ratio": ours_sps / rsl_sps,
                     "distillkit_return": float(ours.mean()), "distillkit_return_std": float(ours.std()),
                     "rsl_rl_return": float(theirs.mean()), "rsl_rl_return_std": float(theirs.std())})
        print(json.dumps(rows[-1]), flush=True)
    result = {"command": "python bench/ppo_vs_rsl_rl.py --update-docs", "date": datetime.date.today().isoformat(),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
              "torch_threads": 1, "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    if args.update_docs:
        lines = [f"Measured {result['date']} on {result['machine']}, one torch thread. "
                 f"Command: `{result['command']}`.", "",
                 "| task | envs | env steps | distillkit env-steps/s | rsl_rl env-steps/s | ratio | "
                 "distillkit return | rsl_rl return |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            lines.append(f"| {r['task']} | {r['num_envs']} | {r['env_steps']:,} | {r['distillkit_steps_per_s']:,.0f} | "
                         f"{r['rsl_rl_steps_per_s']:,.0f} | **{r['speed_ratio']:.2f}** | "
                         f"{r['distillkit_return']:.1f} ± {r['distillkit_return_std']:.1f} | "
                         f"{r['rsl_rl_return']:.1f} ± {r['rsl_rl_return_std']:.1f} |")
        write_section("ppo_vs_rsl_rl", "\n".join(lines), ROOT / "docs" / "benchmarks.md")

if __name__ == "__main__":
    main()
