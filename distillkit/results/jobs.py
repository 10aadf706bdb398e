"""Training and evaluation jobs, as typed values run in a process pool; finished work is reused
and interrupted runs resume."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pandas as pd

from distillkit.artifacts import ArtifactError, read_manifest
from distillkit.envs import EnvFactory
from distillkit.ppo import PPOConfig
from distillkit.results.budgets import TRAINING_SEEDS, Budget, StudentBudget


def run_folder(runs: Path, task: str, variant: str, seed: int) -> Path:
    return runs / task / f"{variant}_seed{seed}"


@dataclass(frozen=True)
class TeacherJob:
    """One PPO run: ``variant`` is ``teacher``, ``unprivileged`` or ``timeout_<bootstrap>``."""

    task: str
    variant: str
    seed: int
    out: Path
    budget: Budget

    def config(self) -> PPOConfig:
        """The PPO settings this run trains with: the budget's, with the variant's actor group or
        time-out bootstrap."""
        changes = {}
        if self.variant == "unprivileged":
            # the student's fields only, so no privileged field to encode: a plain MLP like the students
            changes.update(actor_group="student", encoder_latent=0)
        if self.variant.startswith("timeout_"):
            changes["timeout_bootstrap"] = self.variant.removeprefix("timeout_")
        return PPOConfig(**{**self.budget.config.to_dict(), **changes})

    def finished(self) -> bool:
        if not (self.out / "manifest.json").exists():
            return False
        manifest = read_manifest(self.out)
        recorded = {"num_envs": manifest.get("num_envs"),
                    "ppo": PPOConfig(**manifest["ppo"]).to_dict() if "ppo" in manifest else None}
        wanted = {"num_envs": self.budget.num_envs, "ppo": self.config().to_dict()}
        for key in wanted:
            if recorded[key] != wanted[key]:
                raise ArtifactError(f"{self.out}: trained with {key}={recorded[key]}, this budget trains with "
                                    f"{wanted[key]}; move it away or use another runs folder")
        if bool(manifest.get("curriculum")) != self.budget.curriculum:
            # a run of the same length under another training recipe must not stand in for this one
            raise ArtifactError(f"{self.out}: trained {'with' if manifest.get('curriculum') else 'without'} a "
                                f"curriculum, this budget trains {'with' if self.budget.curriculum else 'without'}; "
                                "move it away or use another runs folder")
        selection = self.budget.selection.to_dict() if self.budget.selection else None
        if manifest.get("selection") != selection:
            raise ArtifactError(f"{self.out}: its checkpoint was chosen by selection={manifest.get('selection')}, "
                                f"this budget chooses by {selection}; move it away or use another runs folder")
        return manifest["env_steps"] >= self.budget.env_steps


@dataclass(frozen=True)
class StudentJob:
    """One distillation run from ``teacher`` and its evaluation artifact (on ``perturbations``, all
    when None); ``curve``: a held-out score after every round, and an ONNX export."""

    task: str
    teacher: Path
    out: Path
    schedule: str
    seed: int
    budget: StudentBudget
    rules: dict = field(default_factory=dict)
    curve: bool = True
    fault_rate: float = 0.0
    perturbations: list[str] | None = None

    def recipe(self) -> dict:
        """What the student's manifest must record for this job (DAgger settings, network, worlds,
        the teacher's fault rate)."""
        b = self.budget
        return {"dagger": {"rounds": b.rounds, "steps_per_round": b.steps_per_round, "schedule": self.schedule,
                           "grad_steps": b.grad_steps, "lr_final": b.lr_final,
                           **({"rules": self.rules} if self.rules else {})},
                "architecture": b.architecture, "num_envs": b.num_envs, "fault_rate": self.fault_rate,
                "selection": b.selection.to_dict() if b.selection else None}

    def finished(self) -> bool:
        if (self.out / "manifest.json").exists():
            manifest, wanted = read_manifest(self.out), self.recipe()
            recorded = {"dagger": {k: manifest["dagger"].get(k) for k in wanted["dagger"]},
                        "architecture": manifest["architecture"], "num_envs": manifest["num_envs"],
                        "fault_rate": manifest["teacher"].get("fault_rate", 0.0), "selection": manifest.get("selection")}
            if recorded != wanted:
                # a student distilled under another budget must not stand in for this one
                raise ArtifactError(f"{self.out}: distilled with {recorded}, this budget distils with {wanted}; "
                                    "move it away or use another runs folder")
            if manifest["teacher"]["files"] != read_manifest(self.teacher)["files"]:
                # a retrained or extended teacher: its student learned from weights that are gone
                raise ArtifactError(f"{self.out}: distilled from other weights than {self.teacher} holds now (the "
                                    "teacher was retrained or trained further since); move the student away")
        # evaluation.json is the evaluation's last file: a run stopped while writing the rest is not finished
        return (self.out / "evaluation" / "evaluation.json").exists()


def _train(job: TeacherJob) -> str:
    """One training run in a worker process (resumes or returns at once if already finished)."""
    from distillkit.train import train_teacher

    train_teacher(job.task, job.out, job.budget.env_steps, seed=job.seed, num_envs=job.budget.num_envs,
                  unprivileged=job.variant == "unprivileged", config=job.config(), progress=False, nthread=1,
                  curriculum=job.budget.curriculum, selection=job.budget.selection)
    return str(job.out)


def _distil(job: StudentJob) -> str:
    """One student run in a worker process; finished steps are skipped."""
    import torch

    from distillkit.pipeline import dagger_config, evaluate, train_student

    b = job.budget
    envs = EnvFactory(job.task)
    torch.set_num_threads(1)          # one run per core: torch's own threads would only contend
    if not (job.out / "manifest.json").exists():
        config = dagger_config(rounds=b.rounds, steps_per_round=b.steps_per_round, schedule=job.schedule,
                               grad_steps=b.grad_steps, lr_final=b.lr_final, **job.rules)
        train_student(envs, job.teacher, job.out, config=config, architecture=b.architecture, num_envs=b.num_envs,
                      seed=job.seed, progress=False, teacher_fault=job.fault_rate, options=b.options, selection=b.selection,
                      evaluate_round=partial(held_out_score, envs=envs, seed=job.seed, b=b) if job.curve else None)
    if not job.finished():
        evaluate(envs, job.teacher, job.out, job.out / "evaluation", seeds=b.eval_seeds, num_envs=b.eval_worlds,
                 export=job.curve, perturbations=job.perturbations)
    return str(job.out)


def run_jobs(jobs: list[TeacherJob] | list[StudentJob], workers: int, what: str) -> None:
    """Run the unfinished ``jobs``, ``workers`` at a time, with a progress bar."""
    todo = [job for job in jobs if not job.finished()]
    if not todo:
        return
    from tqdm.auto import tqdm

    worker = _train if isinstance(todo[0], TeacherJob) else _distil
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for _ in tqdm(pool.map(worker, todo), total=len(todo), desc=what):
            pass


def held_out_score(student, *, envs: EnvFactory, seed: int, b: StudentBudget) -> dict:
    """The student alone (student-only wrapper) on the held-out seeds: one point of the BC/DAgger curve."""
    from distillkit.evaluate import evaluate_policy, held_out_seeds
    from distillkit.leakage import StudentOnly

    schema = envs.schema
    episodes = evaluate_policy(StudentOnly(student, schema), envs, held_out_seeds(b.eval_seeds),
                               num_envs=b.curve_worlds, training_seeds=[seed],
                               observe=lambda o: StudentOnly.deployable(o, schema))
    return {"eval_return": episodes["return"].mean()}


def teacher_policy(folder: Path, envs: EnvFactory):
    """A run's actor, checked against an env of ``envs`` as the task is now (a run of an older task
    version is refused)."""
    from distillkit.train import load_actor

    env = envs(1)
    try:
        actor, manifest, _ = load_actor(folder, env)
    finally:
        env.close()
    return actor, manifest


def evaluate_run(folder: Path, envs: EnvFactory, budget: Budget) -> pd.DataFrame:
    from distillkit.evaluate import evaluate_policy, held_out_seeds

    actor, manifest = teacher_policy(folder, envs)
    return evaluate_policy(actor, envs, held_out_seeds(budget.eval_seeds),
                           num_envs=budget.eval_worlds, training_seeds=[manifest["seed"]])


def training_minutes(folder: Path) -> float:
    """Minutes a run's PPO iterations took (rollouts and updates, summed over every session that
    trained it; checkpoint validation excluded), from its training log."""
    log = pd.read_csv(folder / "metrics.csv")
    steps = log["env_steps"].diff().fillna(log["env_steps"].iloc[0])
    return float((steps / log["env_steps_per_s"]).sum() / 60)


def summarise_runs(runs: Path, task: str, variants: list[str], budget: Budget) -> pd.DataFrame:
    """One row per (variant, training seed): held-out mean return, success, fall rate, tracking
    error, episode length."""
    rows, envs = [], EnvFactory(task)
    for variant in variants:
        for seed in TRAINING_SEEDS[task]:
            folder = run_folder(runs, task, variant, seed)
            ep = evaluate_run(folder, envs, budget)
            manifest = read_manifest(folder)
            rows.append({"task": task, "variant": variant, "seed": seed, "env_steps": manifest["env_steps"],
                         "return": ep["return"].mean(), "success": ep["success"].mean(),
                         "fall_rate": ep["fell"].mean(), "tracking_error": ep["tracking_error"].mean(),
                         "length": ep["length"].mean(), "episodes": len(ep),
                         "minutes": training_minutes(folder)})
    return pd.DataFrame(rows)
