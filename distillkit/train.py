"""Training a teacher with PPO into a versioned artifact, with checkpoints and resume.

``train_teacher`` runs :mod:`distillkit.ppo` on one env (or, launched by ``torchrun``, on one env
per process with gradients and normaliser statistics pooled across processes), logs a metrics
table (CSV and TensorBoard) and keeps the artifact folder current: weights, optimiser state and a
manifest every ``checkpoint_every`` iterations. Started again on the same folder, it resumes from
the last checkpoint (weights, normalisers, optimiser, learning rate, iteration count and log);
the envs restart from a seed derived from the iteration, so a resumed run continues training
but is not bit-identical to an uninterrupted one.

With a :class:`Selection`, the actor is also scored on validation seeds during training and the
best-scoring checkpoint is kept as the run's *selected* actor, the one :func:`load_actor` returns.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from distillkit.artifacts import (
    ArtifactError,
    check_compatible,
    command_line,
    load_tensors,
    provenance,
    read_manifest,
    save_artifact,
)
from distillkit.envs import EnvFactory, make_env
from distillkit.envs.host import HostEnv
from distillkit.evaluate import EVAL_SEED_BASE, evaluate_policy, validation_seeds
from distillkit.ppo import PPO, PPOConfig, build_actor, is_distributed, run_iteration

KIND = "teacher_ppo"


@dataclass(frozen=True)
class Selection:
    """Choosing a run's checkpoint on validation seeds. From ``start`` env steps on, every ``every``
    env steps, the actor (its mean action) plays ``seeds`` validation seeds x ``worlds`` episodes:
    seeds from :data:`~distillkit.evaluate.VALIDATION_SEED_BASE`, never a training or held-out test
    seed. The checkpoint with the highest success rate (then mean return) is the selected actor.

    Why: PPO's policy keeps moving between checkpoints, and on a hard task the last one is a draw
    among better and worse policies (the walker teacher's held-out success moved by up to 0.16
    between its 6M, 8M and 10M checkpoints). Picking on validation seeds is model selection, as
    early stopping on a validation set; the held-out panel stays untouched for the results."""

    every: int
    start: int
    seeds: int = 4
    worlds: int = 16

    def __post_init__(self) -> None:
        for name in ("every", "seeds", "worlds"):
            if getattr(self, name) < 1:
                raise ValueError(f"Selection.{name} must be >= 1, got {getattr(self, name)}")
        if self.start < 0:
            raise ValueError(f"Selection.start must be >= 0 env steps, got {self.start}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def due(self, before: int, after: int) -> bool:
        """Whether a validation point lies in (before, after] env steps."""
        if after < self.start:
            return False
        points = lambda steps: -1 if steps < self.start else (steps - self.start) // self.every
        return points(after) > points(before)


def validate(actor, task: str, engine: str, device: str, selection: Selection, seed: int) -> dict:
    """The actor's success rate and mean return on the validation seeds."""
    episodes = evaluate_policy(actor, EnvFactory(task, engine, device),
                               validation_seeds(selection.seeds), num_envs=selection.worlds, training_seeds=[seed])
    return {"success": float(episodes["success"].mean()), "return": float(episodes["return"].mean())}


def rank_and_world() -> tuple[int, int]:
    if is_distributed():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Adam's per-parameter state as named tensors (safetensors holds tensors only)."""
    out = {}
    for i, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            out[f"{i}.{key}"] = torch.as_tensor(value).clone()
    return out


def load_optimizer_tensors(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    state_dict = optimizer.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        i, key = name.split(".", 1)
        state.setdefault(int(i), {})[key] = value
    state_dict["state"] = state
    optimizer.load_state_dict(state_dict)


def train_teacher(task: str, out: str | os.PathLike, env_steps: int, *, seed: int = 0, num_envs: int = 64,
                  unprivileged: bool = False, config: PPOConfig | None = None, engine: str = "mujoco",
                  checkpoint_every: int = 50, progress: bool = True, nthread: int | None = None,
                  device: str = "cpu", curriculum: bool = False, selection: Selection | None = None,
                  policy_device: str | None = None) -> pd.DataFrame:
    """Train a PPO teacher (``unprivileged=True``: the actor sees only the student's fields - the
    unprivileged PPO baseline, RL directly on what the student observes)
    for ``env_steps`` env steps in total (all processes together) on ``engine``, simulating and
    training on ``device`` (checkpoints are saved on the CPU). Returns the metrics table.
    ``nthread``: C threads stepping the worlds of the "mujoco" engine (results do not depend on it).
    ``curriculum``: train under the task's curriculum (e.g. the walker's terrain levels); its
    settings are recorded in the artifact, and evaluation keeps the task's own reset distribution.
    ``selection``: score the actor on validation seeds during training and keep the best
    checkpoint as the selected actor (:class:`Selection`).
    ``policy_device``: where the networks train, by default where the env hands out its tensors
    (a host-side engine hands them out on the CPU even when it simulates on a GPU; then
    ``policy_device="cuda"`` puts the networks and the update on the GPU)."""
    config = config or PPOConfig()
    if unprivileged:
        config = PPOConfig(**{**config.to_dict(), "actor_group": "student"})
    rank, world = rank_and_world()
    torch.set_num_threads(1)        # rollouts of small networks: torch's threads only add latency
    env = make_env(task, num_envs, engine=engine, device=device, **({} if nthread is None else {"nthread": nthread}))
    curriculum_settings = None
    if curriculum:
        if not isinstance(env, HostEnv):
            raise ValueError(f"engine {engine!r} runs {task!r} without a repo task's curriculum; "
                             "train with curriculum on the 'mujoco' or 'mujoco_warp' engine")
        curriculum_settings = env.task.start_curriculum()
    ppo = PPO(env, config, seed=seed, device=policy_device)
    out = Path(out)
    steps_per_iteration = config.steps_per_env * num_envs * world
    iterations = math.ceil(env_steps / steps_per_iteration)
    run = {"kind": KIND, "task": task, "engine": engine, "seed": seed, "num_envs": num_envs,
           "world_size": world, "unprivileged": unprivileged, "env_steps_target": env_steps, "ppo": config.to_dict(),
           "curriculum": curriculum_settings, "selection": selection.to_dict() if selection else None,
           # the devices are recorded, not checked on resume: a run may continue on other devices
           "device": device, "policy_device": str(ppo.device)}

    log: list[dict] = []
    start_iteration = 0
    validations: list[dict] = []               # one row per validation: env steps, success, return
    selected: dict[str, torch.Tensor] | None = None
    if (out / "manifest.json").exists():
        start_iteration, log = resume(out, ppo, env, run)
        validations, selected = resume_selection(out)
        run |= resumed_origin(read_manifest(out), int(log[-1]["env_steps"]) if log else 0)
    else:
        run |= {"command": command_line(), "provenance": provenance(), "resumed": []}
    # Each process and each resume gets its own episodes; training seeds stay below the
    # held-out evaluation range.
    obs = env.reset(seed=(seed + 1000 * rank + 7919 * start_iteration) % EVAL_SEED_BASE)

    writer = None
    if rank == 0:
        from torch.utils.tensorboard import SummaryWriter

        out.mkdir(parents=True, exist_ok=True)
        writer = SummaryWriter(str(out / "tensorboard"), purge_step=start_iteration)
    bar = tqdm(total=iterations, initial=start_iteration, disable=not progress or rank != 0,
               desc=f"{'unprivileged' if unprivileged else 'teacher'} PPO on {task}")
    started = time.perf_counter()
    env_steps_done = int(log[-1]["env_steps"]) if log else 0
    for iteration in range(start_iteration, iterations):
        obs, row = run_iteration(ppo, obs, iteration, env_steps_done)
        if rank == 0 and selection is not None and selection.due(env_steps_done, row["env_steps"]):
            # validation envs hand out their tensors where the training env does
            actor = ppo.actor if ppo.device == env.device else copy.deepcopy(ppo.actor).to(env.device)
            score = validate(actor, task, engine, device, selection, seed)
            validations.append({"env_steps": int(row["env_steps"]), **score})
            if max(validations, key=ranking) is validations[-1]:
                selected = {k: v.detach().cpu().clone() for k, v in ppo.actor.state_dict().items()}
        env_steps_done = row["env_steps"]
        log.append(row)
        bar.update(1)
        bar.set_postfix(ret=f"{row['episode_return']:.1f}", fall=f"{row['fall_rate']:.2f}")
        if writer is not None:
            for key, value in row.items():
                if key not in ("iteration", "env_steps") and not math.isnan(value):
                    writer.add_scalar(f"train/{key}", value, env_steps_done)
        last = iteration == iterations - 1
        if rank == 0 and (last or (iteration + 1) % checkpoint_every == 0):
            save_teacher(out, ppo, env, run, log, iteration + 1, time.perf_counter() - started,
                         validations, selected)
    bar.close()
    if writer is not None:
        writer.close()
    env.close()
    return pd.DataFrame(log)


def ranking(validation: dict) -> tuple[float, float]:
    """Validations compare by success rate, then by mean return."""
    return validation["success"], validation["return"]


def save_teacher(out: Path, ppo: PPO, env, run: dict, log: list[dict], iterations_done: int,
                 seconds: float, validations: list[dict], selected: dict[str, torch.Tensor] | None) -> None:
    metrics = pd.DataFrame(log)
    tmp = out / ".metrics.csv.tmp"
    metrics.to_csv(tmp, index=False)
    os.replace(tmp, out / "metrics.csv")
    tail = metrics.tail(10)
    manifest = {
        **run,
        "schema": env.schema.to_dict(),
        "task_spec": env.spec.to_dict(),
        "task_spec_digest": env.spec.digest(),
        "actor_inputs": list(ppo.actor.input.names),
        "critic_inputs": list(ppo.critic.input.names),
        "iterations_done": iterations_done,
        "env_steps": int(metrics["env_steps"].iloc[-1]),
        "learning_rate": ppo.learning_rate,
        "curve": {
            "final_episode_return": float(tail["episode_return"].mean()),
            "final_fall_rate": float(tail["fall_rate"].mean()),
            "best_episode_return": float(metrics["episode_return"].max()),
            "wall_seconds_this_session": round(seconds, 1),
        },
    }
    if validations:
        manifest["validations"] = validations
        manifest["selected_env_steps"] = max(validations, key=ranking)["env_steps"]
    weights = {"actor": ppo.actor.state_dict(), "critic": ppo.critic.state_dict(),
               "optimizer": optimizer_tensors(ppo.optimizer)}
    if run["curriculum"] is not None:
        # rank 0's worlds; on resume every process continues from them
        weights["curriculum"] = {"levels": torch.from_numpy(env.task.curriculum_state())}
    if selected is not None:
        weights["selected_actor"] = selected
    save_artifact(out, weights, manifest)


def resumed_origin(manifest: dict, env_steps: int) -> dict:
    """How a run resumed at ``env_steps`` from the checkpoint ``manifest`` came about: the command and
    code that started it, then every command and code that continued it, this one last. A run that
    several sessions (or commits) trained says so, instead of naming only its last command."""
    return {"command": manifest["command"], "provenance": manifest["provenance"],
            "resumed": [*manifest.get("resumed", []),
                        {"env_steps": env_steps, "command": command_line(), "provenance": provenance()}]}


def resume(out: Path, ppo: PPO, env, run: dict) -> tuple[int, list[dict]]:
    """Load the last checkpoint in ``out`` into ``ppo``; refuse one from another run."""
    manifest = read_manifest(out)
    if manifest.get("kind") != KIND:
        raise ArtifactError(f"{out}: holds a {manifest.get('kind')!r} artifact, not a {KIND!r} to resume")
    check_compatible(manifest, env.schema, env.spec, str(out))
    # read through PPOConfig: a checkpoint from before a config field existed has that field's default
    recorded = {**manifest, "ppo": PPOConfig(**manifest["ppo"]).to_dict()}
    for key in ("task", "engine", "seed", "num_envs", "world_size", "unprivileged", "ppo", "curriculum", "selection"):
        if recorded.get(key) != run[key]:
            raise ArtifactError(f"{out}: cannot resume: the checkpoint has {key}={recorded.get(key)!r}, "
                                f"this run asks for {run[key]!r}; use another --out folder")
    ppo.actor.load_state_dict(load_tensors(out, "actor", manifest))
    ppo.critic.load_state_dict(load_tensors(out, "critic", manifest))
    load_optimizer_tensors(ppo.optimizer, load_tensors(out, "optimizer", manifest))
    if run["curriculum"] is not None:
        env.task.restore_curriculum(load_tensors(out, "curriculum", manifest)["levels"].numpy())
    ppo.learning_rate = manifest["learning_rate"]
    for group in ppo.optimizer.param_groups:
        group["lr"] = ppo.learning_rate
    log = pd.read_csv(out / "metrics.csv").to_dict("records")[: manifest["iterations_done"]]
    return manifest["iterations_done"], log


def resume_selection(out: Path) -> tuple[list[dict], dict[str, torch.Tensor] | None]:
    """The validations so far and the selected actor's weights of the checkpoint in ``out``."""
    manifest = read_manifest(out)
    if "selected_env_steps" not in manifest:
        return [], None
    return list(manifest["validations"]), load_tensors(out, "selected_actor", manifest)


def actor_stem(manifest: dict) -> str:
    """Which weights of a teacher artifact are its actor: the selected checkpoint where the run chose
    one (:class:`Selection`), otherwise the last."""
    return "selected_actor" if "selected_env_steps" in manifest else "actor"


def load_actor(folder: str | os.PathLike, env=None, *, allow_mismatch: bool = False):
    """The trained actor of a teacher artifact (e.g. :func:`distillkit.artifacts.shipped_teacher`): an
    :class:`~distillkit.models.Actor`, or an :class:`~distillkit.models.EncoderActor` where its PPO
    config has ``encoder_latent`` > 0.
    With ``env``: checked against its schema and task spec and put on its device (the weights are
    stored on the CPU and load onto any device). Without: built on the schema the manifest
    records, on the CPU - no env needed to read a teacher.
    A run trained with a :class:`Selection` gives its selected actor (the best checkpoint on the
    validation seeds, ``manifest["selected_env_steps"]``), otherwise its last one.
    Returns ``(actor, manifest, overrides)``; ``overrides`` lists the differences accepted
    with ``allow_mismatch=True`` (record them in whatever you produce with this actor)."""
    from distillkit.schema import ObservationSchema

    manifest = read_manifest(folder)
    if manifest.get("kind") != KIND:
        raise ArtifactError(f"{folder}: holds a {manifest.get('kind')!r} artifact, not a {KIND!r}")
    if env is None:
        schema, overrides = ObservationSchema.from_dict(manifest["schema"], source=f"{folder} (schema)"), []
    else:
        schema, overrides = env.schema, check_compatible(manifest, env.schema, env.spec, str(folder), allow_mismatch)
    actor = build_actor(schema, manifest["task_spec"]["action_dim"], PPOConfig(**manifest["ppo"]))
    try:
        actor.load_state_dict(load_tensors(folder, actor_stem(manifest), manifest))
    except RuntimeError as err:
        raise ArtifactError(f"{folder}/actor.safetensors does not fit this actor: {err}") from None
    actor.eval()
    return actor.to("cpu" if env is None else env.device), manifest, overrides
