"""distillkit's DAgger against rsl_rl's DistillationRunner: same env, same teacher, same env steps.

Both distil the shipped teacher (``distillkit/checkpoints/<task>_teacher``) into an MLP student of
the same size on the ``student`` group, for the same number of env steps and worlds:

- **distillkit**: DAgger with beta = 1(i = 1) (the teacher drives the first round, the student
  every later one), the teacher relabels every visited state, data aggregated, invalid steps
  masked, ``grad_steps`` Adam steps per round;
- **rsl_rl**: ``DistillationRunner`` (the student acts with its own Gaussian noise, the teacher
  labels, the buffer is cleared after each update, nothing masked), with Isaac Lab's distillation
  settings (num_steps_per_env 120, 2 epochs, gradient_length 15, lr 1e-3, student init_std 0.1).
  rsl_rl's teacher is distillkit's trained actor behind rsl_rl's model interface
  (:class:`TeacherForRslRl`), reading the flat ``teacher`` group, so both label with the same
  network; the student reads only the ``student`` group (``checked_obs_groups`` enforces it);
- **distillkit in rsl_rl's configuration**, with rsl_rl's raw-label target and with distillkit's
  default clipped target, and the ablation of the rest of rsl_rl's setup: its student's exploration
  noise (sigma = 0.1 on the actions the student executes), its time-ordered passes through the
  buffer (``DaggerConfig.order = "time"``), and both (see :func:`distillkit_configs`).

Reported per task: student-training env-steps/s (collection, labelling and updates, no
evaluation) and the ratio distillkit / rsl_rl; each student's return alone on the same held-out
seeds, beside the teacher's. Each training seed is a paired repeat: rsl_rl's run of the seed and
the three distillkit runs one after the other, rsl_rl first on even seeds and last on odd ones;
the table gives medians and the min-max of the paired ratios over seeds.

    python bench/distill_vs_rsl_rl.py --update-docs
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
import time
from pathlib import Path

import torch
from tensordict import TensorDict
from torch import nn

from distillkit.artifacts import shipped_teacher
from distillkit.dagger import dagger
from distillkit.envs import EnvFactory, make_env
from distillkit.envs.rsl_rl import RslRlVecEnv, checked_obs_groups
from distillkit.evaluate import evaluate_policy, held_out_seeds
from distillkit.leakage import StudentOnly
from distillkit.models import FeedForwardActor
from distillkit.pipeline import dagger_config
from distillkit.results.report import machine, write_section
from distillkit.rollouts import MixFn, mix_actions
from distillkit.students import make_student
from distillkit.train import load_actor

ROOT = Path(__file__).resolve().parents[1]
HIDDEN = (256, 128, 64)                     # distillkit's MLPStudent default, used for both students
RSL_STEPS_PER_ENV = 120                     # Isaac Lab's AnymalDFlatDistillationRunnerCfg
RSL_STUDENT_NOISE = 0.1                     # its init_noise_std: the student acts from a Gaussian of this std
SETTINGS = {  # task: (worlds, DAgger rounds, steps per round, gradient steps per round)
    "cartpole": (32, 8, 120, 300),          # steps per round: a multiple of rsl_rl's 120, so both see
    "walker_rough": (32, 8, 240, 500),      # exactly the same number of env steps
}


class TeacherForRslRl(nn.Module):
    """A trained distillkit :class:`~distillkit.models.FeedForwardActor` (a plain or an encoder
    teacher) behind rsl_rl's model interface: its mean action on the flat ``teacher`` group of
    rsl_rl's TensorDict (the same vector ``schema.flatten(obs, "teacher")`` that the actor's own
    input layer builds)."""

    def __init__(self, actor: FeedForwardActor):
        super().__init__()
        self.actor = actor

    def forward(self, obs: TensorDict, **_) -> torch.Tensor:
        return self.actor.mean(self.actor.input.normalizer(obs["teacher"]))

    def reset(self, dones=None, hidden_state=None) -> None:       # feed-forward: nothing to reset
        pass

    def get_hidden_state(self):
        return None


def noisy_student_mix(std: float) -> MixFn:
    """DAgger's mixture with Gaussian noise of ``std`` on the student's actions, as rsl_rl's student
    acts (the noise drawn from the rollout's generator on the CPU)."""
    def mix(teacher_action, student_action, beta, generator):
        noise = torch.randn(student_action.shape, generator=generator).to(student_action.device)
        return mix_actions(teacher_action, student_action + std * noise, beta, generator)
    return mix


def distillkit_configs(task: str) -> dict[str, tuple]:
    """Each distillkit run: (its DaggerConfig, its mixture of teacher and student actions).
    distillkit's DAgger as the course runs it, and distillkit set up like rsl_rl's runner (the
    student acts from the start, no aggregation, 2 epochs x 120/15 = 16 gradient steps per 120
    env steps, the raw teacher label as target), once more with distillkit's default target (the
    executed, clipped label). The second row separates the cost of the code from the cost of the
    method; the third measures what the target costs when gradient steps are few; the last three
    add rsl_rl's student noise, its time-ordered passes, and both, to the second."""
    n, rounds, steps, grad_steps = SETTINGS[task]
    iterations = rounds * steps // RSL_STEPS_PER_ENV
    like_rsl_rl = dict(rounds=iterations, steps_per_round=RSL_STEPS_PER_ENV, schedule="student", aggregate=False,
                       grad_steps=2 * RSL_STEPS_PER_ENV // 15, batch_worlds=n, chunk=15, target="teacher")
    noisy = noisy_student_mix(RSL_STUDENT_NOISE)
    return {"distillkit DAgger": (dagger_config(rounds=rounds, steps_per_round=steps, schedule="first",
                                                grad_steps=grad_steps), mix_actions),
            "distillkit, rsl_rl's configuration": (dagger_config(**like_rsl_rl), mix_actions),
            "the same, clipped target": (dagger_config(**{**like_rsl_rl, "target": "executed"}), mix_actions),
            "rsl_rl's configuration + student noise σ = 0.1": (dagger_config(**like_rsl_rl), noisy),
            "rsl_rl's configuration + time-ordered passes": (dagger_config(**like_rsl_rl, order="time"), mix_actions),
            "rsl_rl's configuration + both": (dagger_config(**like_rsl_rl, order="time"), noisy)}


def run_distillkit(task: str, config, mix: MixFn, seed: int):
    n = SETTINGS[task][0]
    env = make_env(task, n)
    teacher, _, _ = load_actor(shipped_teacher(task), env)
    torch.manual_seed(seed)
    student = make_student("mlp", env.schema, env.action_dim)
    start = time.perf_counter()
    dagger(env, lambda o: teacher(o), student, config, seed=seed, mix=mix)
    seconds = time.perf_counter() - start
    schema = env.schema
    env.close()
    return config.rounds * config.steps_per_round * n, seconds, StudentOnly(student.eval(), schema)


def rsl_rl_runner(task: str, env, seed: int, hidden=HIDDEN):
    """rsl_rl's ``DistillationRunner`` on ``env`` with Isaac Lab's distillation settings, labelling
    with the shipped teacher; its student an MLP of ``hidden`` on the ``student`` group."""
    from rsl_rl.runners import DistillationRunner

    torch.manual_seed(seed)
    teacher, _, _ = load_actor(shipped_teacher(task), env)
    vec = RslRlVecEnv(env, seed=seed)
    config = {
        "num_steps_per_env": RSL_STEPS_PER_ENV, "save_interval": 10_000, "multi_gpu": None,
        "obs_groups": checked_obs_groups({"student": ["student"], "teacher": ["teacher"]}, "Distillation"),
        "algorithm": {"class_name": "Distillation", "num_learning_epochs": 2, "learning_rate": 1e-3,
                      "gradient_length": 15},
        "student": {"class_name": "MLPModel", "hidden_dims": list(hidden), "activation": "elu",
                    "obs_normalization": True,
                    "distribution_cfg": {"class_name": "GaussianDistribution", "init_std": 0.1}},
        "teacher": {"class_name": "MLPModel", "hidden_dims": list(HIDDEN), "activation": "elu",
                    "obs_normalization": False},
    }
    runner = DistillationRunner(vec, config, log_dir=None, device="cpu")
    runner.alg.teacher = runner.alg._raw_teacher = TeacherForRslRl(teacher).eval()
    runner.alg.teacher_loaded = True
    return runner


def rsl_rl_student(runner, schema):
    """The runner's current student as a policy on distillkit observations (rsl_rl's student sees a
    TensorDict holding the student group only)."""
    policy = runner.get_inference_policy(device="cpu")

    def student(obs):
        return policy(TensorDict({"student": schema.flatten(obs, "student")}, batch_size=[next(iter(obs.values())).shape[0]]))
    return student


def run_rsl_rl(task: str, seed: int):
    n, rounds, steps, _ = SETTINGS[task]
    env_steps = rounds * steps * n
    iterations = env_steps // (RSL_STEPS_PER_ENV * n)
    env = make_env(task, n)
    runner = rsl_rl_runner(task, env, seed)
    start = time.perf_counter()
    runner.learn(iterations)
    seconds = time.perf_counter() - start
    student = rsl_rl_student(runner, env.schema)
    env.close()
    return iterations * RSL_STEPS_PER_ENV * n, seconds, student


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(SETTINGS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    parser.add_argument("--eval-seeds", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "bench" / "out" / "distill_vs_rsl_rl.json"))
    parser.add_argument("--update-docs", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []           # one per task, training seed and distillkit run; rsl_rl's run of that seed beside it
    for task in args.tasks:
        seeds, envs = held_out_seeds(args.eval_seeds), EnvFactory(task)
        schema = envs.schema
        deployable = lambda o: StudentOnly.deployable(o, schema)
        env = envs(1)
        teacher, _, _ = load_actor(shipped_teacher(task), env)
        env.close()
        teacher_return = evaluate_policy(lambda o: teacher(o), envs, seeds, num_envs=32)["return"].mean()
        for k, seed in enumerate(args.seeds):
            # rsl_rl's run of the seed first on even repeats, last on odd ones: the pairs see the same load
            order = ["rsl_rl", *distillkit_configs(task)]
            if k % 2:
                order = order[1:] + order[:1]
            measured = {}
            for name in order:
                if name == "rsl_rl":
                    steps, seconds, theirs = run_rsl_rl(task, seed)
                    measured[name] = steps, seconds, evaluate_policy(theirs, envs, seeds, num_envs=32,
                                                                     observe=deployable)["return"].mean()
                else:
                    steps, seconds, ours = run_distillkit(task, *distillkit_configs(task)[name], seed)
                    measured[name] = steps, seconds, evaluate_policy(ours, envs, seeds, num_envs=32,
                                                                     observe=deployable)["return"].mean()
            rsl_steps, rsl_seconds, rsl_return = measured["rsl_rl"]
            for name in distillkit_configs(task):
                steps, seconds, ours_return = measured[name]
                assert steps == rsl_steps, f"{name}: {steps} env steps, rsl_rl {rsl_steps}: the comparison needs equal steps"
                rows.append({"task": task, "distillkit": name, "seed": seed, "num_envs": SETTINGS[task][0],
                             "env_steps": steps, "distillkit_steps_per_s": steps / seconds,
                             "rsl_rl_steps_per_s": rsl_steps / rsl_seconds,
                             "speed_ratio": (steps / seconds) / (rsl_steps / rsl_seconds),
                             "teacher_return": float(teacher_return), "distillkit_return": float(ours_return),
                             "rsl_rl_return": float(rsl_return)})
                print(json.dumps(rows[-1]), flush=True)
    result = {"command": "python " + shlex.join(sys.argv), "date": datetime.date.today().isoformat(),
              "machine": f"{machine()} "
                         f"(1-min load average at the end: {os.getloadavg()[0]:.1f})",
              "torch_threads": 1, "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    if args.update_docs:
        import pandas as pd

        table = pd.DataFrame(rows).groupby(["task", "distillkit"], sort=False).agg(
            worlds=("num_envs", "first"), env_steps=("env_steps", "first"), ours_sps=("distillkit_steps_per_s", "median"),
            rsl_sps=("rsl_rl_steps_per_s", "median"), ratio=("speed_ratio", "median"), ratio_min=("speed_ratio", "min"),
            ratio_max=("speed_ratio", "max"),
            teacher=("teacher_return", "first"), ours=("distillkit_return", "mean"), ours_std=("distillkit_return", "std"),
            rsl=("rsl_rl_return", "mean"), rsl_std=("rsl_rl_return", "std"))
        lines = [f"Measured {result['date']} on {result['machine']}, one torch thread. "
                 f"Command: `{result['command']}`. Each training seed {args.seeds} is a paired repeat (rsl_rl's run first "
                 f"on even ones, last on odd ones): median env-steps/s and paired ratio (min-max over seeds); returns "
                 f"mean ± std over seeds, each student's return its mean over {args.eval_seeds} held-out seeds × 32 "
                 f"episodes, the student alone.", "",
                 "| task | distillkit run | worlds | env steps | distillkit env-steps/s | rsl_rl env-steps/s | ratio | "
                 "teacher return | distillkit student | rsl_rl student |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for (task, name), r in table.iterrows():
            lines.append(f"| {task} | {name} | {r.worlds:.0f} | {r.env_steps:,.0f} | {r.ours_sps:,.0f} | {r.rsl_sps:,.0f} | "
                         f"**{r.ratio:.2f}** ({r.ratio_min:.2f}-{r.ratio_max:.2f}) | {r.teacher:.1f} | "
                         f"{r.ours:.1f} ± {r.ours_std:.1f} | {r.rsl:.1f} ± {r.rsl_std:.1f} |")
        write_section("distill_vs_rsl_rl", "\n".join(lines), ROOT / "docs" / "benchmarks.md")


if __name__ == "__main__":
    main()
