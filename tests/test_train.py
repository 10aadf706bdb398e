"""Training artifacts: what they record, how loading refuses a mismatch, resume, multi-process."""

import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file

from distillkit.artifacts import ArtifactError, read_manifest
from distillkit.envs import make_env
from distillkit.envs.mujoco_cpu import MujocoEnv
from distillkit.ppo import PPO, PPOConfig
from distillkit.tasks.cartpole import Cartpole
from distillkit.train import Selection, load_actor, resume, save_teacher, train_teacher, validate

SMALL = PPOConfig(steps_per_env=8, epochs=2, minibatches=2, actor_hidden=(32,), critic_hidden=(32,))


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher")
    train_teacher("cartpole", out, env_steps=8 * 16 * 3, num_envs=16, config=SMALL, checkpoint_every=2,
                  progress=False)
    return out


def test_artifact_records_what_defines_the_result(teacher):
    m = read_manifest(teacher)
    env = make_env("cartpole", 4)
    assert m["schema"] == env.schema.to_dict()
    assert m["task_spec"] == env.spec.to_dict() and m["task_spec_digest"] == env.spec.digest()
    assert m["task_spec"]["engine"] == "mujoco" and m["task_spec"]["reward_weights"]["alive"] == 1.0
    assert m["ppo"] == SMALL.to_dict() and m["seed"] == 0 and m["iterations_done"] == 3
    assert m["actor_inputs"] == ["joint_pos_rel", "joint_vel_rel", "pole_mass"]
    assert set(m["files"]) == {"actor", "critic", "optimizer"}
    assert sorted(p.name for p in teacher.glob("*.safetensors")) == sorted(f["file"] for f in m["files"].values())
    assert {"distillkit", "git_commit", "torch", "mujoco", "numpy", "cpu"} <= set(m["provenance"])
    assert "final_episode_return" in m["curve"] and m["command"]
    metrics = pd.read_csv(teacher / "metrics.csv")
    assert list(metrics.iteration) == [0, 1, 2]
    assert list((teacher / "tensorboard").iterdir()), "no TensorBoard event file"
    assert not list(teacher.glob(".*.tmp"))


def test_loaded_actor_reproduces_the_saved_weights(teacher):
    env = make_env("cartpole", 4)
    actor, manifest, overrides = load_actor(teacher, env)
    assert overrides == []
    saved = load_file(teacher / read_manifest(teacher)["files"]["actor"]["file"])
    for k, v in actor.state_dict().items():
        assert torch.equal(v, saved[k]), k
    assert actor.input.normalizer.count > 0


class HeavierPole(Cartpole):
    nominal_pole_mass = 0.5


def test_loading_into_another_task_version_is_refused_unless_overridden(teacher):
    env = MujocoEnv(HeavierPole(4), 4)
    with pytest.raises(ArtifactError, match="made for another task/schema/engine") as err:
        load_actor(teacher, env)
    assert "'details'" in str(err.value) and "nominal_pole_mass" in str(err.value)
    actor, _, overrides = load_actor(teacher, env, allow_mismatch=True)
    assert overrides and "details" in overrides[0]


def test_loading_into_another_schema_is_refused(teacher, tmp_path):
    class NoMass(Cartpole):
        @classmethod
        def make_schema(cls):
            s = super().make_schema()
            return type(s)(s.name, s.fields[:2])
    with pytest.raises(ArtifactError, match="observation schema differs \\(teacher.pole_mass removed"):
        load_actor(teacher, MujocoEnv(NoMass(2), 2))


def test_tampered_or_torn_artifacts_are_refused(teacher, tmp_path):
    env = make_env("cartpole", 2)
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in teacher.iterdir():
        if f.is_file():
            (copy / f.name).write_bytes(f.read_bytes())
    actor_file = copy / read_manifest(copy)["files"]["actor"]["file"]
    weights = load_file(actor_file)
    weights["log_std"] = weights["log_std"] + 1
    save_file(weights, actor_file)
    with pytest.raises(ArtifactError, match="actor-.*.safetensors: SHA-256 differs from the manifest's"):
        load_actor(copy, env)
    (copy / "manifest.json").write_text("{\"format\": \"distillkit.artifact\"")
    with pytest.raises(ArtifactError, match="manifest.json: not valid JSON"):
        load_actor(copy, env)
    (copy / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match="no manifest.json"):
        load_actor(copy, env)


def test_resume_continues_from_the_last_checkpoint(tmp_path, monkeypatch):
    out = tmp_path / "run"
    train_teacher("cartpole", out, env_steps=8 * 16 * 2, num_envs=16, config=SMALL, progress=False)
    first = read_manifest(out)
    assert first["iterations_done"] == 2
    actor_weights = lambda: load_file(out / read_manifest(out)["files"]["actor"]["file"])
    weights = actor_weights()
    assert first["resumed"] == [] and first["command"]
    # a longer target on the same folder, from another command, picks up at iteration 2
    monkeypatch.setattr(sys, "argv", ["continue_run.py", "--longer"])
    log = train_teacher("cartpole", out, env_steps=8 * 16 * 4, num_envs=16, config=SMALL, progress=False)
    assert list(log.iteration) == [0, 1, 2, 3]
    resumed = read_manifest(out)
    assert resumed["iterations_done"] == 4
    # the run's history: the command and code that started it stay, the resume is added beside them
    assert (resumed["command"], resumed["provenance"]) == (first["command"], first["provenance"])
    assert [(r["env_steps"], r["command"]) for r in resumed["resumed"]] == [(first["env_steps"], "continue_run.py --longer")]
    assert resumed["resumed"][0]["provenance"]["git_commit"]
    assert not torch.equal(actor_weights()["log_std"], weights["log_std"])
    with pytest.raises(ArtifactError, match="cannot resume: the checkpoint has seed=0, this run asks for 1"):
        train_teacher("cartpole", out, env_steps=8 * 16 * 5, num_envs=16, seed=1, config=SMALL, progress=False)


def test_a_checkpoint_interrupted_before_its_manifest_leaves_the_previous_one_loadable(teacher, tmp_path, monkeypatch):
    """The weights of a new checkpoint are written, then the process dies before the manifest."""
    import distillkit.artifacts as artifacts

    copy = tmp_path / "copy"
    copy.mkdir()
    for f in teacher.iterdir():
        if f.is_file():
            (copy / f.name).write_bytes(f.read_bytes())
    def die(*args, **kwargs):
        raise KeyboardInterrupt("killed")
    monkeypatch.setattr(artifacts, "write_json_atomic", die)
    actor, _, _ = load_actor(copy, make_env("cartpole", 2))
    bumped = {k: v + 1 if k == "log_std" else v for k, v in actor.state_dict().items()}
    with pytest.raises(KeyboardInterrupt):
        artifacts.save_artifact(copy, {"actor": bumped}, {"kind": "teacher_ppo"})
    monkeypatch.undo()
    reloaded, _, _ = load_actor(copy, make_env("cartpole", 2))
    assert torch.equal(reloaded.log_std, actor.log_std), "the previous checkpoint must still load"


def test_a_killed_run_resumes_from_its_checkpoint(tmp_path):
    """Kill a training process after its first checkpoint; the rerun continues from there."""
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "distillkit", "train-teacher", "--task", "cartpole", "--steps", "200000",
           "--num-envs", "16", "--steps-per-env", "8", "--out", str(out), "--checkpoint-every", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / "manifest.json").exists() and read_manifest(out)["iterations_done"] >= 2:
                break
            time.sleep(0.1)
    finally:
        proc.kill()
        proc.wait()
    done = read_manifest(out)["iterations_done"]
    assert done >= 2
    cmd[cmd.index("200000")] = str(16 * 8 * (done + 1))
    subprocess.run(cmd, check=True, capture_output=True)
    m = read_manifest(out)
    assert m["iterations_done"] == done + 1
    assert len(pd.read_csv(out / "metrics.csv")) == done + 1


@pytest.mark.slow
def test_two_gloo_processes_keep_identical_parameters(tmp_path):
    out = tmp_path / "ddp"
    script = tmp_path / "check.py"
    script.write_text(f"""
import torch, torch.distributed as dist
from safetensors.torch import save_file
from distillkit.envs import make_env
from distillkit.ppo import PPO, PPOConfig, leave_process_group, run_iteration
dist.init_process_group("gloo")
rank = dist.get_rank()
torch.set_num_threads(1)
env = make_env("cartpole", 8)
ppo = PPO(env, PPOConfig(steps_per_env=8, epochs=2, minibatches=2, actor_hidden=(16,), critic_hidden=(16,)), seed=0)
obs = env.reset(seed=100 + rank)                     # each rank sees different worlds
for it in range(3):
    obs, row = run_iteration(ppo, obs, it, 0)
state = {{**{{"actor." + k: v for k, v in ppo.actor.state_dict().items()}},
          **{{"critic." + k: v for k, v in ppo.critic.state_dict().items()}}}}
save_file({{k: v.contiguous() for k, v in state.items()}}, "{out}" + f"_{{rank}}.safetensors")
leave_process_group()
""")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # --standalone: torchrun picks a free port itself (a fixed one can still be held by another run)
    ran = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                          str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]
    a, b = load_file(f"{out}_0.safetensors"), load_file(f"{out}_1.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert a["actor.input.normalizer.count"] == 2 * 8 * 8 * 3, "statistics pooled over both ranks"


def test_shipping_a_teacher_keeps_weights_and_records_a_repository_path(teacher, tmp_path):
    from distillkit.artifacts import REPO_ROOT as ROOT
    from distillkit.results.ship import ship_checkpoint

    inside = ROOT / "runs" / "test_ship" / "teacher_seed0"
    shutil.rmtree(inside, ignore_errors=True)
    shutil.copytree(teacher, inside)
    shipped = ship_checkpoint(inside, "cartpole", checkpoints=tmp_path)
    m = read_manifest(shipped)
    assert m["shipped_from"] == "runs/test_ship/teacher_seed0"         # never this machine's absolute path
    assert set(m["files"]) == {"actor", "critic"}                        # no optimiser state in the package
    env = make_env("cartpole", 1)
    original, shipped_actor = load_actor(teacher, env)[0], load_actor(shipped, env)[0]
    assert all(torch.equal(a, b) for a, b in zip(original.state_dict().values(), shipped_actor.state_dict().values()))


def test_a_curriculum_run_records_it_and_refuses_to_resume_without_it(tmp_path):
    out = tmp_path / "run"
    walker = PPOConfig(steps_per_env=4, epochs=1, minibatches=1, actor_hidden=(16,), critic_hidden=(16,))
    train_teacher("walker_rough", out, env_steps=4 * 4 * 2, num_envs=4, config=walker, progress=False, curriculum=True)
    manifest = read_manifest(out)
    assert manifest["curriculum"]["kind"] == "terrain_levels"
    assert manifest["task_spec_digest"] == make_env("walker_rough", 1).spec.digest(), "evaluation envs still load it"
    with pytest.raises(ArtifactError, match="cannot resume: the checkpoint has curriculum="):
        train_teacher("walker_rough", out, env_steps=4 * 4 * 3, num_envs=4, config=walker, progress=False)


def test_a_resumed_curriculum_run_continues_from_the_checkpointed_levels(tmp_path):
    out = tmp_path / "run"
    walker = PPOConfig(steps_per_env=4, epochs=1, minibatches=1, actor_hidden=(16,), critic_hidden=(16,))
    train_teacher("walker_rough", out, env_steps=4 * 4, num_envs=4, config=walker, progress=False, curriculum=True,
                  policy_device="cpu")
    manifest = read_manifest(out)
    assert (manifest["device"], manifest["policy_device"]) == ("cpu", "cpu")     # where the env ran, where PPO trained
    # a checkpoint taken while the worlds stood on levels 1..4
    env = make_env("walker_rough", 4)
    env.task.start_curriculum()
    env.task.restore_curriculum(np.array([1, 2, 3, 4]))
    ppo = PPO(env, walker, seed=0)
    run = {key: manifest[key] for key in ("kind", "task", "engine", "seed", "num_envs", "world_size",
                                          "unprivileged", "ppo", "curriculum", "selection", "device")}
    save_teacher(out, ppo, env, run, pd.read_csv(out / "metrics.csv").to_dict("records"), 1, 0.0, [], None)
    fresh = make_env("walker_rough", 4)
    fresh.task.start_curriculum()
    resume(out, PPO(fresh, walker, seed=0), fresh, run)
    assert fresh.task.curriculum_levels.tolist() == [1, 2, 3, 4]
    with pytest.raises(ValueError, match=r"curriculum levels: expected 4 levels in 0\.\.5, got values 0\.\.6"):
        fresh.task.restore_curriculum(np.array([0, 6, 1, 1]))


def test_selection_validation_points():
    selection = Selection(every=50, start=100)
    assert [selection.due(a, b) for a, b in [(0, 99), (0, 100), (100, 149), (149, 150), (120, 260)]] == \
        [False, True, False, True, True]
    with pytest.raises(ValueError, match="Selection.every must be >= 1, got 0"):
        Selection(every=0, start=0)


def test_selection_keeps_the_best_validated_checkpoint_and_resumes_it(tmp_path):
    """The artifact gives the checkpoint that scored best on the validation seeds (re-scored exactly,
    deterministic on the CPU), not the last one; a resumed run keeps its validations."""
    iteration = 8 * 16
    selection = Selection(every=2 * iteration, start=2 * iteration, seeds=1, worlds=4)
    out = tmp_path / "run"
    train = lambda steps, **kw: train_teacher("cartpole", out, env_steps=steps, num_envs=16, config=SMALL,
                                              checkpoint_every=2, progress=False, **kw)
    train(4 * iteration, selection=selection)
    assert [v["env_steps"] for v in read_manifest(out)["validations"]] == [2 * iteration, 4 * iteration]
    train(8 * iteration, selection=selection)
    manifest = read_manifest(out)
    validations = manifest["validations"]
    assert [v["env_steps"] for v in validations] == [2 * iteration, 4 * iteration, 6 * iteration, 8 * iteration]
    best = max(validations, key=lambda v: (v["success"], v["return"]))
    assert manifest["selected_env_steps"] == best["env_steps"]
    env = make_env("cartpole", 2)
    selected, _, _ = load_actor(out, env)
    assert validate(selected, "cartpole", "mujoco", "cpu", selection, seed=0) == \
        {"success": best["success"], "return": best["return"]}
    last = load_file(out / manifest["files"]["actor"]["file"])
    if best is not validations[-1]:
        assert not torch.equal(selected.log_std, last["log_std"]), "the last checkpoint was given, not the best"
    with pytest.raises(ArtifactError, match="cannot resume: the checkpoint has selection="):
        train(10 * iteration)
    plain = tmp_path / "plain"
    train_teacher("cartpole", plain, env_steps=2 * iteration, num_envs=16, config=SMALL, progress=False)
    assert "validations" not in read_manifest(plain), "no selection: the last checkpoint, no validations"
    from distillkit.results.ship import ship_checkpoint

    shipped = ship_checkpoint(out, "cartpole", checkpoints=tmp_path / "package")
    assert set(read_manifest(shipped)["files"]) == {"actor", "critic", "selected_actor"}
    assert all(torch.equal(a, b) for a, b in zip(selected.state_dict().values(),
                                                  load_actor(shipped, env)[0].state_dict().values())), \
        "the package's teacher is the run's selected checkpoint"


def test_an_atomically_written_file_is_as_readable_as_a_plainly_written_one(tmp_path):
    """mkstemp's temp file is owner-only (0o600); the written file must get open()'s mode, 0o666
    less the umask, or a manifest or rendered chapter is unreadable to everyone else."""
    import os
    import stat
    import tempfile

    from distillkit.atomic import write_text_atomic

    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "atomic.txt", "x")
        (tmp_path / "plain.txt").write_text("x")
        _, raw = tempfile.mkstemp(dir=tmp_path)
    finally:
        os.umask(old)
    mode = lambda name: stat.S_IMODE((tmp_path / name).stat().st_mode)
    assert mode("atomic.txt") == mode("plain.txt") == 0o644
    assert mode(raw) == 0o600, "the bad case this guards against"
