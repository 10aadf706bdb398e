"""Command line: ``distillkit <command>`` or ``python -m distillkit <command>``.

- ``demo``: builds both tasks on the default CPU engine, prints each schema with what the teacher
  sees that the student cannot, runs a short rollout and prints its throughput; then, from the
  shipped teachers, trains a DAgger student and prints its leakage-free evaluation table.
- ``schema``: prints a task's schema, or writes it as JSON (``--out``).
- ``results``: trains what is missing, evaluates on held-out seeds, rewrites ``docs/results.md``.
- ``distill`` / ``dagger`` / ``evaluate`` / ``export``: the student pipeline (see pipeline.py).
- ``grade``: grades a learner's copy of an exercise (or a class folder of them) with nbval, after
  putting the exercise's pristine check cells back (see distillkit/grading/grade.py).
- ``train-teacher``: PPO teacher (or the ``--unprivileged`` baseline) into an artifact folder; under
  ``torchrun`` every process runs its own envs and gradients are pooled.

The commands that take ``--engine`` accept that engine's tasks: the MuJoCo engines run
``distillkit.tasks`` (``cartpole``, ``walker_rough``), Isaac Lab its own table (``cartpole``,
``anymal_rough``); a task of another engine is refused, naming the engines that run it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
import typing
from pathlib import Path

# The package, torch, numpy and pandas are imported by the commands that use them: `distillkit grade`
# (the grader's own process, on every grade's clock) imports none of them.
if typing.TYPE_CHECKING:
    from distillkit.envs import EnvFactory


def demo(args: argparse.Namespace) -> None:
    import numpy as np
    import pandas as pd
    import torch
    from tqdm.auto import tqdm

    from distillkit.envs import EnvFactory

    pd.set_option("display.width", 200)
    pd.set_option("display.max_colwidth", 70)
    torch.set_num_threads(1)
    for task in args.tasks:
        envs = EnvFactory(task, args.engine, args.device)
        env = envs(args.num_envs)
        spec = env.spec
        print(f"\n=== {task} v{spec.task_version} on {spec.engine} {spec.engine_version} "
              f"(spec {spec.digest()[:12]}) ===")
        print(f"control dt {spec.control_dt:.4f} s, {spec.frame_skip} physics steps each, "
              f"episodes of {spec.episode_length_s:g} s, {env.num_envs} worlds")
        print("\nObservation schema:")
        print(env.schema.table().drop(columns="reason").to_string())
        print("\nWhat the teacher sees and the student does not (teacher vs student group):")
        print(env.schema.compare_groups("teacher", "student")[["field", "role", "reason"]].to_string(index=False))
        sizes = {g: env.schema.group_size(g) for g in ("student", "teacher", "critic")}
        print(f"\nNetwork input widths: {sizes}")

        env.reset(seed=0)
        rng = np.random.default_rng(0)
        episode_return = torch.zeros(env.num_envs)
        returns, falls, timeouts = [], 0, 0
        start = time.perf_counter()
        for _ in tqdm(range(args.steps), desc=f"{task}: random-action rollout", leave=False):
            actions = torch.as_tensor(rng.uniform(-0.3, 0.3, (env.num_envs, env.action_dim)), dtype=torch.float32)
            result = env.step(actions)
            episode_return += result.reward
            done = result.done
            returns += episode_return[done].tolist()
            episode_return[done] = 0.0
            falls += int(result.validity["fell"].sum())
            timeouts += int(result.validity["timeout"].sum())
        elapsed = time.perf_counter() - start
        env.close()
        mean_return = f"{np.mean(returns):.2f}" if returns else "n/a (no episode ended)"
        print(f"Rollout: {args.steps} steps x {env.num_envs} worlds, random actions in [-0.3, 0.3]: "
              f"{len(returns)} episodes ended ({falls} falls, {timeouts} time-outs), "
              f"mean return {mean_return}")
        threads = f"{env.nthread} C threads; " if args.engine == "mujoco" else ""   # MuJoCo C steps worlds in threads
        bench = {"mujoco": "`python bench/env_throughput.py` compares with the C limit",
                 "mujoco_warp": "`python bench/warp_throughput.py` compares with raw mujoco_warp"}.get(args.engine, "")
        print(f"Throughput: {args.steps * env.num_envs / elapsed:,.0f} env-steps/s on {spec.engine} "
              f"({threads}{bench})")
        if args.skip_pipeline:
            continue
        if args.engine != "mujoco":
            print(f"\n(the shipped teachers were trained on the 'mujoco' engine and are refused on {args.engine!r}: "
                  f"train one with `distillkit train-teacher --engine {args.engine}` for the student pipeline)")
            continue
        demo_pipeline(envs, DEMO_BUDGETS[task])


# Small budgets: the demo shows every step of the pipeline in minutes; docs/results.md has the
# full-budget numbers. The flagship's student is the MLP of docs/results.md (the same network class
# as the unprivileged PPO baseline's actor).
DEMO_BUDGETS = {
    "cartpole": dict(architecture="mlp", rounds=5, steps_per_round=150, grad_steps=300, seeds=2, num_envs=32),
    "walker_rough": dict(architecture="mlp", options={"hidden": (128, 64)}, rounds=5, steps_per_round=400,
                         grad_steps=600, seeds=1, num_envs=32),
}


def demo_pipeline(envs: EnvFactory, budget: dict) -> None:
    """Shipped teacher -> DAgger student -> leakage-free evaluation (with ONNX export)."""
    import json

    from distillkit.artifacts import shipped_teacher
    from distillkit.pipeline import dagger_config, train_student
    from distillkit.pipeline import evaluate as run_evaluation

    task = envs.task
    teacher = shipped_teacher(task)
    if not (teacher / "manifest.json").exists():
        print(f"\n(no shipped {task} teacher: `python -m distillkit results --section teachers` makes it)")
        return
    out = Path("runs") / "demo" / task
    print(f"\nDAgger {budget['architecture'].upper()} student from the shipped teacher ({budget['rounds']} rounds, "
          f"the first driven by the teacher):")
    config = dagger_config(rounds=budget["rounds"], steps_per_round=budget["steps_per_round"], schedule="first",
                           grad_steps=budget["grad_steps"])
    rounds = train_student(envs, teacher, out / "student", config=config, architecture=budget["architecture"],
                           num_envs=budget["num_envs"], options=budget.get("options"))
    print(rounds[["round", "beta", "dataset_steps", "loss", "return_during_collection"]].to_string(index=False))
    print(f"\nEvaluation of the student alone on {budget['seeds']} held-out seed(s), privileged inputs removed:")
    summary = run_evaluation(envs, teacher, out / "student", out / "evaluation", seeds=budget["seeds"],
                             num_envs=budget["num_envs"])
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    checks = json.loads((out / "evaluation" / "evaluation.json").read_text())["leakage_checks"]
    print("Leakage checks: " + ", ".join(f"{c['check']} {'passed' if c['passed'] else 'FAILED'}" for c in checks))
    print(f"Artifacts: {out}/student, {out}/evaluation (evaluation.json, summary.csv, panel.png, student.onnx)")


def schema(args: argparse.Namespace) -> None:
    import pandas as pd

    from distillkit.tasks import TASKS

    s = TASKS[args.task].make_schema()
    if args.out:
        s.save(args.out)
        print(f"wrote {args.out}")
    else:
        pd.set_option("display.width", 200)
        pd.set_option("display.max_colwidth", 90)
        print(s.table().to_string())


def process_devices(device: str, policy_device: str | None, local_rank: int) -> tuple[str, str | None]:
    """The engine's and the networks' devices of one torchrun process: a bare ``cuda`` becomes that
    process's own GPU (``cuda:<local_rank>``), anything else stays as given."""
    own_gpu = f"cuda:{local_rank}"
    return (own_gpu if device == "cuda" else device,
            own_gpu if policy_device == "cuda" else policy_device)


def train_teacher(args: argparse.Namespace) -> None:
    import torch

    from distillkit.ppo import PPOConfig, leave_process_group
    from distillkit.train import train_teacher as train

    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    device, policy_device = args.device, args.policy_device
    if distributed:           # launched by torchrun: one process per CPU core or GPU
        # gloo reduces CPU and CUDA tensors alike, wherever the engine's tensors put PPO's networks.
        torch.distributed.init_process_group("gloo")
        device, policy_device = process_devices(device, policy_device, int(os.environ.get("LOCAL_RANK", "0")))
    config = config_from_args(PPOConfig, args)
    metrics = train(args.task, args.out, args.steps, seed=args.seed, num_envs=args.num_envs, unprivileged=args.unprivileged,
                    config=config, engine=args.engine, device=device, checkpoint_every=args.checkpoint_every,
                    curriculum=args.curriculum, policy_device=policy_device,
                    selection=selection_from_args(args))
    if not distributed or torch.distributed.get_rank() == 0:
        tail = metrics.tail(10)
        print(f"{args.out}: {int(metrics.env_steps.iloc[-1]):,} env steps, last 10 iterations: "
              f"return {tail.episode_return.mean():.2f}, fall rate {tail.fall_rate.mean():.2f}")
    if distributed:
        leave_process_group()


def render_course(args: argparse.Namespace) -> None:
    from distillkit.render import NOTEBOOKS, RENDERED, render_chapter

    every = sorted(NOTEBOOKS.glob("*.ipynb"))
    chapters = [NOTEBOOKS / n for n in args.chapters] if args.chapters else every
    missing = [p.name for p in chapters if not p.exists()]
    if missing:
        raise FileNotFoundError(f"no chapter {missing} in {NOTEBOOKS}; the chapters are {[p.name for p in every]}")
    for path in chapters:
        start = time.perf_counter()
        written = render_chapter(path, RENDERED, fast=args.fast)
        # the chapter's run time, full or FAST, is what its header's "Time" should say
        print(f"{path.name}: executed and rendered in {time.perf_counter() - start:.0f} s"
              f"{' (FAST)' if args.fast else ''}; wrote {', '.join(str(w) for w in written)}", flush=True)


def results(args: argparse.Namespace) -> None:
    from distillkit.results import regenerate
    from distillkit.results.ship import ship

    if args.ship is not None:
        ship(args.tasks, Path(args.runs), kinds=args.ship or None)
    else:
        regenerate(args.section, args.tasks, Path(args.runs), args.jobs)


def student(args: argparse.Namespace) -> None:
    from distillkit.dagger import DaggerConfig
    from distillkit.envs import EnvFactory
    from distillkit.masks import MaskRules
    from distillkit.pipeline import train_student

    fixed = {"schedule": "bc"} if args.command == "distill" else {}
    config = config_from_args(DaggerConfig, args, rules=config_from_args(MaskRules, args), **fixed)
    rounds = train_student(EnvFactory(args.task, args.engine, args.device), args.teacher, args.out, config=config,
                           architecture=args.architecture, num_envs=args.num_envs, seed=args.seed,
                           selection=selection_from_args(args))
    print(rounds.to_string(index=False))
    print(f"wrote {args.out}")


def evaluate(args: argparse.Namespace) -> None:
    import pandas as pd

    from distillkit.envs import EnvFactory
    from distillkit.pipeline import evaluate as run

    pd.set_option("display.width", 200)
    summary = run(EnvFactory(args.task, args.engine, args.device), args.teacher, args.student, args.out,
                  seeds=args.seeds, num_envs=args.num_envs)
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"wrote {args.out}/evaluation.json (with leakage checks), episodes.csv, summary.csv, panel.png")


def export(args: argparse.Namespace) -> None:
    from distillkit.envs import EnvFactory
    from distillkit.export import export_onnx, export_torchscript
    from distillkit.pipeline import load_student

    env = EnvFactory(args.task, args.engine, args.device)(1)    # the artifact is checked against its schema and spec
    try:
        model, _ = load_student(args.student, env)
    finally:
        env.close()
    out = Path(args.out)
    print(export_onnx(model, env.schema, out / "student.onnx"))
    print(export_torchscript(model, env.schema, out / "student.torchscript.pt"))


def add_config_options(p: argparse.ArgumentParser, config: type, *, skip: tuple[str, ...] = ()) -> None:
    """One option per field of the dataclass ``config`` (``--field-name``), its type, default and
    choices read from the class, so that each default lives in one place. A bool field that
    defaults to True is switched off with ``--no-field-name``; an optional number takes ``none``."""
    group = p.add_argument_group(f"{config.__name__} (defaults from {config.__module__})")
    hints, defaults = typing.get_type_hints(config), config()
    for f in dataclasses.fields(config):
        if f.name in skip:
            continue
        kind, default = hints[f.name], getattr(defaults, f.name)
        flag = f"--{f.name.replace('_', '-')}"
        if kind is bool:
            group.add_argument(f"--no-{f.name.replace('_', '-')}" if default else flag, dest=f.name,
                               action="store_false" if default else "store_true", default=default,
                               help=f"(default: {f.name} = {default})")
        elif typing.get_origin(kind) is tuple:
            group.add_argument(flag, type=int, nargs="+", default=list(default), metavar="WIDTH",
                               help=f"layer widths (default: {' '.join(map(str, default))})")
        elif type(None) in typing.get_args(kind):
            value_type = next(t for t in typing.get_args(kind) if t is not type(None))
            group.add_argument(flag, type=lambda text, t=value_type: None if text.lower() == "none" else t(text),
                               default=default, metavar=f"{value_type.__name__.upper()}|none",
                               help=f"(default: {default})")
        else:
            group.add_argument(flag, type=kind, default=default, choices=getattr(config, "CHOICES", {}).get(f.name),
                               help=f"(default: {default})")


def config_from_args(config: type, args: argparse.Namespace, **fixed):
    """The ``config`` dataclass from the options :func:`add_config_options` added (``fixed``
    fields set by the command itself)."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(config) if hasattr(args, f.name)}
    return config(**{**given, **fixed})


def add_selection_options(p: argparse.ArgumentParser, what: str, kept: str) -> None:
    p.add_argument("--select-every", type=int, metavar="STEPS",
                   help=f"score {what} on validation seeds every STEPS env steps and keep the best {kept} "
                        f"as the one the artifact gives (default: the last {kept})")
    p.add_argument("--select-start", type=int, metavar="STEPS",
                   help="with --select-every: the first validation at this many env steps (default 0)")


def selection_from_args(args: argparse.Namespace):
    from distillkit.train import Selection

    if args.select_every is None:
        return None
    return Selection(args.select_every, 0 if args.select_start is None else args.select_start)


def check_selection(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse --select-every/--select-start that cannot work before anything trains: a bad setting, or
    (dagger, distill) one that scores none of the rounds."""
    from distillkit.dagger import validated_rounds

    if args.select_every is None:
        # a start alone would otherwise be dropped without a word, and the run would keep its last checkpoint
        parser.error(f"--select-start {args.select_start} needs --select-every STEPS (how often to score on "
                     "validation seeds); got no --select-every")
    try:
        selection = selection_from_args(args)
    except ValueError as err:
        parser.error(f"--select-every/--select-start: {err}")
    if args.command in ("dagger", "distill") and not validated_rounds(selection, args.rounds,
                                                                      args.steps_per_round * args.num_envs):
        parser.error(f"--select-every {args.select_every} --select-start {args.select_start} scores none of the "
                     f"{args.rounds} rounds of {args.steps_per_round} steps x {args.num_envs} worlds "
                     f"({args.rounds * args.steps_per_round * args.num_envs} env steps in all)")


def add_engine_options(p: argparse.ArgumentParser) -> None:
    from distillkit.envs import ENGINES

    p.add_argument("--engine", default="mujoco", choices=list(ENGINES),
                   help="physics engine; artifacts made on one engine are refused on another")
    p.add_argument("--device", default="cpu",
                   help="where the engine simulates: cpu, or cuda[:i] for the engines that run on a GPU")


def engine_tasks(engine: str) -> list[str]:
    """The tasks ``engine`` runs, from the engine registry (no engine is imported); ImportError
    if its packages are not installed."""
    from distillkit.envs import REGISTRY

    REGISTRY[engine].check_installed()
    return list(REGISTRY[engine].tasks)


def check_tasks(parser: argparse.ArgumentParser, engine: str, tasks: list[str]) -> None:
    """Refuse a task the chosen engine does not run, naming the engines that do."""
    try:
        available = engine_tasks(engine)
    except ImportError as err:
        parser.error(f"--engine {engine} is not installed here ({err})")
    for task in tasks:
        if task in available:
            continue
        from distillkit.envs import ENGINES

        elsewhere = []
        for other in ENGINES:
            try:
                if other != engine and task in engine_tasks(other):
                    elsewhere.append(other)
            except ImportError:             # an engine whose extra is not installed runs nothing
                pass
        if elsewhere:
            parser.error(f"task {task!r} exists on engines {elsewhere}, not on {engine!r}")
        parser.error(f"unknown task {task!r}; engine {engine!r} runs {available}")


def grade(args: argparse.Namespace) -> None:
    import sys

    from distillkit.grading.generate import ExerciseError
    from distillkit.grading.grade import GradingError
    from distillkit.grading.grade import main as run

    try:
        code = run(args.exercise, args.submission, args.out, args.cell_timeout)
    except (GradingError, ExerciseError) as err:
        print(f"distillkit grade: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    raise SystemExit(code)


def add_grade_command(commands) -> None:
    p = commands.add_parser("grade", help="grade a learner's exercise notebook, or a folder of them into a CSV")
    p.add_argument("exercise", help="the shipped exercise, e.g. exercises/02_gae_timeouts.ipynb")
    p.add_argument("submission", help="a learner's notebook, or a folder of <student>.ipynb / <student>/<exercise>")
    p.add_argument("--out", help="CSV path in class mode (default: <folder>/grades_<exercise>.csv)")
    p.add_argument("--cell-timeout", type=int, default=600, help="seconds per cell")
    p.set_defaults(run=grade)


def main(argv: list[str] | None = None) -> None:
    import sys

    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="distillkit", description="Privileged-information distillation course kit")
    commands = parser.add_subparsers(dest="command", required=True)
    if argv[:1] == ["grade"]:           # the grader needs none of the package's other commands (nor torch)
        add_grade_command(commands)
        args = parser.parse_args(argv)
        args.run(args)
        return

    from distillkit.dagger import DaggerConfig
    from distillkit.envs import REGISTRY
    from distillkit.masks import MaskRules
    from distillkit.ppo import PPOConfig
    from distillkit.students import ARCHITECTURES
    from distillkit.tasks import TASKS

    TASK_HELP = "a task of the chosen engine (" + "; ".join(f"{e.name}: {', '.join(e.tasks)}" for e in REGISTRY.values()) + ")"

    p = commands.add_parser("demo", help="build the engine's tasks, print their schemas, step them")
    p.add_argument("--tasks", nargs="+", metavar="TASK", help="default: every task of the engine")
    p.add_argument("--num-envs", type=int, default=64)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--skip-pipeline", action="store_true", help="only build and step the tasks")
    add_engine_options(p)
    p.set_defaults(run=demo)

    p = commands.add_parser("schema", help="print a task's observation schema or save it as JSON")
    p.add_argument("task", choices=list(TASKS))
    p.add_argument("--out", help="write the schema manifest (JSON) here")
    p.set_defaults(run=schema)

    p = commands.add_parser("train-teacher", help="train a PPO teacher into an artifact folder (resumes if it exists)")
    p.add_argument("--task", required=True, help=TASK_HELP)
    p.add_argument("--steps", type=int, required=True, help="env steps in total (all processes)")
    p.add_argument("--out", required=True, help="artifact folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-envs", type=int, default=64, help="worlds per process")
    p.add_argument("--unprivileged", action="store_true",
                   help="actor on the student's fields only: the unprivileged PPO baseline")
    p.add_argument("--curriculum", action="store_true",
                   help="train under the task's curriculum (the walker's terrain levels); evaluation is unchanged")
    add_selection_options(p, "the actor", "checkpoint")
    add_engine_options(p)
    p.add_argument("--policy-device", default=None,
                   help="where the networks train (default: where the env hands out its tensors, the CPU for "
                        "--engine mujoco_warp, whose task code runs on the host; cuda puts the update on the GPU)")
    p.add_argument("--checkpoint-every", type=int, default=50, help="iterations between checkpoints")
    add_config_options(p, PPOConfig, skip=("actor_group", "critic_group"))      # the groups follow --unprivileged
    p.set_defaults(run=train_teacher)

    p = commands.add_parser("render-course", help="execute every chapter in full and write it as HTML and slides "
                                                   "(docs/instructor/rendered/)")
    p.add_argument("--fast", action="store_true", help="CI's tiny budgets instead of the full ones (a quick preview)")
    p.add_argument("--chapters", nargs="+", metavar="NAME", help="chapter file names (default: every chapter)")
    p.set_defaults(run=render_course)

    p = commands.add_parser("results", help="train what is missing, evaluate, rewrite docs/results.md")
    from distillkit.results import SECTIONS
    from distillkit.results.ship import KINDS as SHIPPED_KINDS

    p.add_argument("--section", nargs="+", default=list(SECTIONS), choices=list(SECTIONS))
    p.add_argument("--ship", nargs="*", choices=list(SHIPPED_KINDS), default=None, metavar="KIND",
                   help="copy each task's best teacher on validation seeds into distillkit/checkpoints/ (and do "
                        f"nothing else): the kinds named, every kind if none is ({', '.join(SHIPPED_KINDS)})")
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    p.add_argument("--runs", default="runs", help="where training runs live (reused when present)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="training runs in parallel")
    p.set_defaults(run=results)

    for name, help_text in (("distill", "behaviour cloning (masked) from a teacher artifact into a student"),
                            ("dagger", "DAgger from a teacher artifact into a student")):
        p = commands.add_parser(name, help=help_text)
        p.add_argument("--task", required=True, help=TASK_HELP)
        p.add_argument("--teacher", required=True, help="teacher artifact folder")
        p.add_argument("--out", required=True, help="student artifact folder")
        p.add_argument("--architecture", default="mlp", choices=list(ARCHITECTURES),
                       help="; ".join(f"{arch}: {row.summary}" for arch, row in ARCHITECTURES.items()))
        # distill is behaviour cloning: its schedule is fixed (beta = 1)
        add_config_options(p, DaggerConfig, skip=("rules",) + (("schedule", "p") if name == "distill" else ()))
        add_config_options(p, MaskRules)
        p.add_argument("--num-envs", type=int, default=32)
        p.add_argument("--seed", type=int, default=0)
        add_selection_options(p, "the student after a round", "round's student")
        add_engine_options(p)
        p.set_defaults(run=student)

    p = commands.add_parser("evaluate", help="the student alone on held-out seeds, perturbations, leakage checks")
    p.add_argument("--task", required=True, help=TASK_HELP)
    p.add_argument("--teacher", required=True)
    p.add_argument("--student", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seeds", type=int, default=4, help="held-out seeds")
    p.add_argument("--num-envs", type=int, default=32)
    add_engine_options(p)
    p.set_defaults(run=evaluate)

    p = commands.add_parser("export", help="ONNX and TorchScript of an MLP or GRU student, inputs named by student fields")
    p.add_argument("--task", required=True, help=TASK_HELP)
    p.add_argument("--student", required=True)
    p.add_argument("--out", required=True)
    add_engine_options(p)
    p.set_defaults(run=export)

    add_grade_command(commands)

    args = parser.parse_args(argv)
    if getattr(args, "engine", None) == "mujoco" and args.device != "cpu":
        parser.error(f"--engine mujoco runs on the CPU only (got --device {args.device}); "
                     f"choose an engine that runs on a GPU")
    if hasattr(args, "engine"):         # which tasks exist depends on the engine: checked once both are parsed
        if args.command == "demo" and not args.tasks:
            args.tasks = engine_tasks(args.engine)
        check_tasks(parser, args.engine, args.tasks if args.command == "demo" else [args.task])
    if getattr(args, "select_every", None) is not None or getattr(args, "select_start", None) is not None:
        check_selection(parser, args)
    from distillkit.artifacts import ArtifactError
    from distillkit.envs import EngineFeatureError
    from distillkit.envs.base import ActionError
    from distillkit.export import ExportError
    from distillkit.schema import SchemaError
    from distillkit.students import StudentError
    from distillkit.tasks.spec import TaskSpecError

    try:
        args.run(args)
    except (ArtifactError, SchemaError, TaskSpecError, ActionError, ExportError, EngineFeatureError, StudentError,
            FileNotFoundError) as err:
        parser.exit(2, f"distillkit {args.command}: error: {err}\n")


if __name__ == "__main__":
    main()
