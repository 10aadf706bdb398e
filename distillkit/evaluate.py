"""Closed-loop evaluation on held-out seeds, and the one evaluation artifact of a student.

A policy runs deterministically in ``num_envs`` worlds per seed until each world's first episode
ends; every episode is one row. Evaluation seeds live in their own range, far from training
seeds, and a seed used for training is an error.

:func:`evaluate_student` is the deployment claim's evidence. On one held-out panel and for each
perturbation it runs, in one pass, the teacher (with its privileged inputs) and the student alone
(through :class:`~distillkit.leakage.StudentOnly`, on deployable fields only) while the teacher
labels every state the student visits; it adds the leakage checks and the schema diff, and
writes everything into one artifact folder (JSON, CSV, a plot).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from distillkit.envs import EnvFactory
from distillkit.envs.base import executed
from distillkit.policy import forget

#: The per-step metric (see ``StepResult.metrics``) whose episode mean is the tracking error.
TRACKING_METRIC = "lin_vel_x_error"

#: Held-out evaluation seeds start here; training seeds stay below.
EVAL_SEED_BASE = 1_000_000
#: Validation seeds (choosing a teacher's checkpoint during training) start here: never a training
#: seed, never a held-out test seed.
VALIDATION_SEED_BASE = 2_000_000


def held_out_seeds(count: int) -> list[int]:
    return [EVAL_SEED_BASE + i for i in range(count)]


def validation_seeds(count: int, first: int = 0) -> list[int]:
    """``count`` validation seeds from the ``first``-th on (another panel than the checkpoint selection's
    when ``first`` is past its seeds)."""
    return [VALIDATION_SEED_BASE + first + i for i in range(count)]


def check_held_out(seeds: Iterable[int], training_seeds: Iterable[int]) -> list[int]:
    seeds = list(seeds)
    overlap = sorted(set(seeds) & set(training_seeds))
    if overlap:
        raise ValueError(f"evaluation seeds {overlap} were used for training; use held_out_seeds()")
    return seeds


@dataclass(frozen=True)
class Perturbation:
    """One evaluation condition: range overrides for resets, a push, more sensor noise."""

    name: str
    ranges: dict = field(default_factory=dict)     # see MujocoEnv.override_ranges
    push_step: int | None = None                   # control step at which every world is pushed
    push: tuple[float, ...] = ()                   # velocity change along the task's push dofs
    noise_scale: float = 1.0


PERTURBATIONS = {
    "cartpole": (
        Perturbation("nominal"),
        Perturbation("push", push_step=60, push=(2.0,)),
        Perturbation("heavy_pole", ranges={"pole_mass_scale": [2.0, 3.0]}),
    ),
    "walker_rough": (
        Perturbation("nominal"),
        Perturbation("push", push_step=100, push=(-0.8, 0.0)),
        Perturbation("low_friction", ranges={"friction": [0.4, 0.5]}),
        Perturbation("heavy_payload", ranges={"payload_mass": [24.0, 30.0]}),
        Perturbation("sensor_noise_x3", noise_scale=3.0),
        Perturbation("hard_terrain", ranges={"terrain_level": [4, 5]}),
    ),
}


@torch.no_grad()
def run_episodes(policy: Callable, envs: EnvFactory, seed: int, *, num_envs: int = 32,
                 perturbation: Perturbation = Perturbation("nominal"), labeller: Callable | None = None,
                 observe: Callable = lambda obs: obs) -> pd.DataFrame:
    """One episode per world from ``seed``, in one env of ``num_envs`` worlds built by ``envs`` (and
    closed). ``observe`` maps the env's observation to what the policy gets; ``labeller`` (the
    teacher) labels every visited state, giving the imitation error of the policy on its own
    states (between executed, i.e. clipped, actions). The policy must be on the env's device.
    Rows: world, return, length, fell, tracking_error, success, mse.

    ``tracking_error`` is the episode's mean of the task's ``lin_vel_x_error`` metric (|v_x -
    command|, m/s; NaN for a task that tracks no command). ``success`` is no fall and, where the
    task states a ``tracking_tolerance``, a tracking error within it: standing still is no success."""
    env = envs(num_envs)
    try:
        push = None
        if perturbation.push_step is not None:
            push = env.feature("push", f"perturbation {perturbation.name!r}")
        if perturbation.ranges:
            env.feature("override_ranges", f"perturbation {perturbation.name!r}")(perturbation.ranges)
        env.noise_scale = perturbation.noise_scale
        obs = env.reset(seed=seed)
        forget(policy)
        ret = torch.zeros(num_envs, device=env.device)
        length = torch.zeros(num_envs, dtype=torch.long, device=env.device)
        sq_error = torch.zeros(num_envs, device=env.device)
        fell = torch.zeros(num_envs, dtype=torch.bool, device=env.device)
        tracking = torch.zeros(num_envs, device=env.device)
        tolerance = env.spec.details.get("tracking_tolerance")
        finished = torch.zeros(num_envs, dtype=torch.bool, device=env.device)
        step = 0
        while not finished.all():
            action = policy(observe(obs))
            if labeller is not None:
                sq_error += ((executed(action) - executed(labeller(obs))) ** 2).sum(-1) * ~finished
            if perturbation.push_step is not None and step == perturbation.push_step:
                push(np.arange(num_envs), np.tile(perturbation.push, (num_envs, 1)))
            result = env.step(action)
            running = ~finished
            ret[running] += result.reward[running]
            length[running] += 1
            fell |= result.terminated & running
            if TRACKING_METRIC in result.metrics:
                tracking[running] += result.metrics[TRACKING_METRIC][running]
            finished |= result.done
            forget(policy, result.done)
            obs = result.obs
            step += 1
    finally:
        env.close()
    ret, length, fell, sq_error = ret.cpu(), length.cpu(), fell.cpu(), sq_error.cpu()   # on to pandas
    tracking_error = (tracking.cpu() / length).numpy() if step and tolerance is not None else np.full(num_envs, np.nan)
    success = ~fell.numpy()
    if tolerance is not None:
        success &= tracking_error <= tolerance
    rows = pd.DataFrame({"seed": seed, "world": np.arange(num_envs), "return": ret.numpy(),
                         "length": length.numpy(), "fell": fell.numpy(), "tracking_error": tracking_error,
                         "success": success})
    if labeller is not None:
        rows["mse"] = (sq_error / length).numpy()
    return rows


def evaluate_policy(policy: Callable, envs: EnvFactory, seeds: Iterable[int], *, num_envs: int = 32,
                    training_seeds: Iterable[int] = (), **kwargs) -> pd.DataFrame:
    """:func:`run_episodes` for each held-out seed, concatenated."""
    return pd.concat([run_episodes(policy, envs, s, num_envs=num_envs, **kwargs)
                      for s in check_held_out(seeds, training_seeds)], ignore_index=True)


def evaluate_student(student, teacher, envs: EnvFactory, out: str | Path, *, seeds: Iterable[int],
                     training_seeds: Iterable[int], num_envs: int = 32,
                     perturbations: Iterable[Perturbation] | None = None, export_path: Path | None = None,
                     extra: dict | None = None) -> pd.DataFrame:
    """The one evaluation artifact: teacher and student on the same held-out panel under each
    perturbation (default: the task's whole suite), in envs built by ``envs``; imitation error on
    the student's own states, leakage checks, schema diff. Returns the summary table (one row per
    perturbation)."""
    from distillkit.artifacts import provenance
    from distillkit.atomic import write_json_atomic
    from distillkit.leakage import StudentOnly, counterfactual_probe, export_check, poison_test, schema_check

    seeds = check_held_out(seeds, training_seeds)
    schema = envs.schema
    deployed = StudentOnly(student, schema)
    perturbations = list(PERTURBATIONS[envs.task] if perturbations is None else perturbations)
    episodes = []
    for p in perturbations:
        for s in seeds:
            t = run_episodes(teacher, envs, s, num_envs=num_envs, perturbation=p)
            st = run_episodes(deployed, envs, s, num_envs=num_envs, perturbation=p, labeller=teacher,
                              observe=lambda obs: StudentOnly.deployable(obs, schema))
            episodes += [t.assign(policy="teacher", perturbation=p.name), st.assign(policy="student", perturbation=p.name)]
    episodes = pd.concat(episodes, ignore_index=True)
    summary = summarise_panel(episodes)

    checks = [schema_check(student.input.names, schema),
              counterfactual_probe(student, envs, seed=seeds[0]),
              poison_test(student, envs, seed=seeds[0])]
    if export_path is not None:
        checks.append(export_check(export_path, schema))
    diff = schema.compare_groups("teacher", "student")

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    episodes.to_csv(out / "episodes.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    plot_panel(summary, out / "panel.png", envs.task)
    write_json_atomic(out / "evaluation.json", {
        "task": envs.task, "engine": envs.engine, "device": envs.device, "date": datetime.date.today().isoformat(),
        "seeds": seeds, "training_seeds": sorted(set(training_seeds)), "num_envs": num_envs,
        "perturbations": [asdict(p) for p in perturbations],
        "summary": summary.to_dict("records"),
        "leakage_checks": checks, "all_leakage_checks_passed": all(c["passed"] for c in checks),
        "schema_diff_teacher_vs_student": diff.to_dict("records"),
        "student_inputs": list(student.input.names),
        "provenance": provenance(), **(extra or {}),
    })
    return summary


def summarise_panel(episodes: pd.DataFrame) -> pd.DataFrame:
    g = episodes.groupby(["perturbation", "policy"], sort=False)
    table = g.agg(ret=("return", "mean"), success=("success", "mean"), fall_rate=("fell", "mean")).unstack("policy")
    rows = []
    for p in episodes["perturbation"].unique():
        student_eps = episodes[(episodes.perturbation == p) & (episodes.policy == "student")]
        rows.append({
            "perturbation": p,
            "teacher_return": table.loc[p, ("ret", "teacher")], "student_return": table.loc[p, ("ret", "student")],
            "return_ratio": table.loc[p, ("ret", "student")] / table.loc[p, ("ret", "teacher")],
            "teacher_success": table.loc[p, ("success", "teacher")],
            "student_success": table.loc[p, ("success", "student")],
            "student_fall_rate": table.loc[p, ("fall_rate", "student")],
            "student_tracking_error": student_eps["tracking_error"].mean(),
            "imitation_mse": student_eps["mse"].mean(),
        })
    return pd.DataFrame(rows)


def plot_panel(summary: pd.DataFrame, path: Path, task: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.2))
    x = np.arange(len(summary))
    ax.bar(x - 0.2, summary["teacher_return"], 0.4, label="teacher (privileged)")
    ax.bar(x + 0.2, summary["student_return"], 0.4, label="student (deployable only)")
    ax.set_xticks(x, summary["perturbation"], rotation=20)
    ax.set_ylabel("held-out return")
    ax.set_title(task)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)   # beside the bars, never over them
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
