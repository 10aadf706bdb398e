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

The two runs of a task are interleaved in ``--repeats`` paired repeats (training seeds seed,
seed + 1, ...; the order alternates), as ``bench/isaaclab_overhead.py`` does: the throughput
ratio is the median of the paired ratios, with their min-max; returns are the mean over the
repeats' final policies (± std over repeats with more than one).

``--profile`` instead runs distillkit's side alone for ``--profile-iterations`` iterations and
splits its time into physics (the ``mujoco.rollout`` call), the rest of the env step (the env's
host code and the task's numpy observations, rewards and resets), policy inference during
collection (actor and critic forward passes), the rest of the collection (sampling, log-probs,
bootstrap, stacking, GAE, episode bookkeeping) and the update (minibatch forward/backward,
optimiser, normaliser), by timers around those calls (wall-clock; the thread CPU time beside it
leaves out the physics, which runs on the env's C threads), then runs a third as many
iterations under cProfile for its top functions.

    python bench/ppo_vs_rsl_rl.py --update-docs
    python bench/ppo_vs_rsl_rl.py --profile --tasks cartpole walker_rough --profile-iterations 10
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import io
import json
import os
import pstats
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
from tensordict import TensorDict

from distillkit.envs import EnvFactory, make_env
from distillkit.envs.rsl_rl import RslRlVecEnv, checked_obs_groups
from distillkit.evaluate import evaluate_policy, held_out_seeds
from distillkit.ppo import PPO, PPOConfig, run_iteration
from distillkit.results.report import machine, write_section
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


def profile_distillkit(task: str, n: int, iterations: int, config: PPOConfig, seed: int = 0, top: int = 15) -> dict:
    """Seconds per iteration of distillkit's PPO spent in each part (timers around those calls,
    thread CPU time and wall-clock), and cProfile's top functions by own time."""
    env = make_env(task, n)
    ppo = PPO(env, config, seed=seed)
    obs = env.reset(seed=seed)
    obs, _ = run_iteration(ppo, obs, 0, 0)                      # warm-up, off the clock
    wall = {k: 0.0 for k in ("physics", "env_step", "inference", "collect", "update", "iteration")}
    cpu = dict(wall)
    collecting = [False]

    def timed(inner, key, only_collecting=False):
        def wrapper(*args, **kwargs):
            if only_collecting and not collecting[0]:
                return inner(*args, **kwargs)
            w, c = time.perf_counter(), time.thread_time()
            try:
                return inner(*args, **kwargs)
            finally:
                wall[key] += time.perf_counter() - w
                cpu[key] += time.thread_time() - c
        return wrapper

    def collect(inner):
        def wrapper(*args, **kwargs):
            collecting[0] = True
            try:
                return inner(*args, **kwargs)
            finally:
                collecting[0] = False
        return wrapper

    env._pool.rollout = timed(env._pool.rollout, "physics")
    env.step = timed(env.step, "env_step")
    ppo.actor.distribution = timed(ppo.actor.distribution, "inference", only_collecting=True)
    ppo.critic.forward = timed(ppo.critic.forward, "inference", only_collecting=True)
    ppo.collect = collect(timed(ppo.collect, "collect"))
    ppo.update = timed(ppo.update, "update")
    steps = 0
    for it in range(iterations):
        w, c = time.perf_counter(), time.thread_time()
        obs, row = run_iteration(ppo, obs, it + 1, steps)
        wall["iteration"] += time.perf_counter() - w
        cpu["iteration"] += time.thread_time() - c
        steps = row["env_steps"]
    timed_wall, timed_cpu = dict(wall), dict(cpu)               # the timed iterations; cProfile's come after
    profiler = cProfile.Profile()
    for it in range(max(2, iterations // 3)):
        profiler.enable()
        obs, row = run_iteration(ppo, obs, iterations + it + 1, steps)
        profiler.disable()
        steps = row["env_steps"]
    env.close()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)

    def parts(t: dict) -> dict:
        per = {k: v / iterations for k, v in t.items()}
        return {"physics": per["physics"], "env_host_and_task": per["env_step"] - per["physics"],
                "policy_inference": per["inference"],
                "collection_other": per["collect"] - per["env_step"] - per["inference"],
                "update": per["update"], "other": per["iteration"] - per["collect"] - per["update"],
                "iteration": per["iteration"]}
    return {"task": task, "num_envs": n, "iterations": iterations, "env_steps_per_iteration": config.steps_per_env * n,
            "wall_s_per_iteration": parts(timed_wall), "cpu_s_per_iteration": parts(timed_cpu),
            "cprofile_top": text.getvalue().split("\n")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(SETTINGS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="paired repeats (training seeds seed, seed + 1, ...)")
    parser.add_argument("--eval-seeds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="profile distillkit's side instead (see above)")
    parser.add_argument("--profile-iterations", type=int, default=10)
    parser.add_argument("--out", default=str(ROOT / "bench" / "out" / "ppo_vs_rsl_rl.json"))
    parser.add_argument("--update-docs", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.profile:
        profiles = []
        for task in args.tasks:
            n, _, hidden, entropy = SETTINGS[task]
            config = PPOConfig(actor_hidden=hidden, critic_hidden=hidden, entropy_coef=entropy)
            profiles.append(profile_distillkit(task, n, args.profile_iterations, config, args.seed))
            p = profiles[-1]
            print("\n".join(p["cprofile_top"][:40]))
            for clock in ("wall_s_per_iteration", "cpu_s_per_iteration"):
                t = p[clock]
                print(f"{task} {clock}: " + ", ".join(f"{k} {v * 1e3:.1f} ms ({v / t['iteration']:.0%})"
                                                      for k, v in t.items()), flush=True)
        out = Path(args.out).with_name("ppo_profile.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"command": "python " + shlex.join(sys.argv), "date": datetime.date.today().isoformat(),
                                   "load_average_1min": os.getloadavg()[0], "profiles": profiles}, indent=2) + "\n")
        return
    rows = []
    for task in args.tasks:
        n, iterations, hidden, entropy = SETTINGS[task]
        config = PPOConfig(actor_hidden=hidden, critic_hidden=hidden, entropy_coef=entropy)
        seeds, envs = held_out_seeds(args.eval_seeds), EnvFactory(task)
        ours_sps, rsl_sps, ours_returns, rsl_returns = [], [], [], []
        for r in range(args.repeats):
            seed = args.seed + r
            for side in (("distillkit", "rsl_rl") if r % 2 == 0 else ("rsl_rl", "distillkit")):
                if side == "distillkit":
                    sps, policy = run_distillkit(task, n, iterations, config, seed)
                    ours_sps.append(sps)
                    ours_returns.append(float(evaluate_policy(policy, envs, seeds, num_envs=16)["return"].mean()))
                else:
                    sps, policy = run_rsl_rl(task, n, iterations, config, hidden, seed)
                    rsl_sps.append(sps)
                    rsl_returns.append(float(evaluate_policy(policy, envs, seeds, num_envs=16)["return"].mean()))
            print(f"{task} repeat {r}: distillkit {ours_sps[-1]:,.0f}/s return {ours_returns[-1]:.1f}, "
                  f"rsl_rl {rsl_sps[-1]:,.0f}/s return {rsl_returns[-1]:.1f}", flush=True)
        ratios = [o / t for o, t in zip(ours_sps, rsl_sps)]
        spread = lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0
        rows.append({"task": task, "num_envs": n, "iterations": iterations, "repeats": args.repeats,
                     "env_steps": iterations * n * config.steps_per_env,
                     "distillkit_steps_per_s": statistics.median(ours_sps), "rsl_rl_steps_per_s": statistics.median(rsl_sps),
                     "speed_ratio": statistics.median(ratios), "speed_ratio_min": min(ratios),
                     "speed_ratio_max": max(ratios), "speed_ratios": ratios,
                     "distillkit_return": statistics.mean(ours_returns), "distillkit_return_std": spread(ours_returns),
                     "rsl_rl_return": statistics.mean(rsl_returns), "rsl_rl_return_std": spread(rsl_returns),
                     "distillkit_returns": ours_returns, "rsl_rl_returns": rsl_returns})
        print(json.dumps(rows[-1]), flush=True)
    result = {"command": "python " + shlex.join(sys.argv), "date": datetime.date.today().isoformat(),
              "machine": machine(),
              "load_average_1min_at_end": os.getloadavg()[0], "torch_threads": 1, "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    if args.update_docs:
        lines = [f"Measured {result['date']} on {result['machine']} (1-min load average "
                 f"{result['load_average_1min_at_end']:.1f} at the end), one torch thread; {args.repeats} paired "
                 f"repeats (training seeds {args.seed}..{args.seed + args.repeats - 1}, order alternating): median "
                 f"env-steps/s and paired ratio (min-max), mean return of the repeats' final policies ± std over "
                 f"repeats. Command: `{result['command']}`.", "",
                 "| task | envs | env steps | distillkit env-steps/s | rsl_rl env-steps/s | ratio | ratio min-max | "
                 "distillkit return | rsl_rl return |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            lines.append(f"| {r['task']} | {r['num_envs']} | {r['env_steps']:,} | {r['distillkit_steps_per_s']:,.0f} | "
                         f"{r['rsl_rl_steps_per_s']:,.0f} | **{r['speed_ratio']:.2f}** | "
                         f"{r['speed_ratio_min']:.2f}-{r['speed_ratio_max']:.2f} | "
                         f"{r['distillkit_return']:.1f} ± {r['distillkit_return_std']:.1f} | "
                         f"{r['rsl_rl_return']:.1f} ± {r['rsl_rl_return_std']:.1f} |")
        write_section("ppo_vs_rsl_rl", "\n".join(lines), ROOT / "docs" / "benchmarks.md")

if __name__ == "__main__":
    main()
