"""Beyond action matching: a teacher with a privileged encoder, the targets rollouts record besides
actions, the latent / action_latent / estimator students, the export check against the teacher's
encoder, and the linear inference probe."""

import copy
import shutil

import pytest
import torch
from safetensors.torch import load_file

from distillkit.artifacts import CHECKPOINTS, read_manifest
from distillkit.dagger import DaggerConfig, dagger
from distillkit.distill import episode_starts, fit
from distillkit.envs import make_env
from distillkit.export import ExportError, OnnxStudent, check_student_only, export_onnx
from distillkit.inference_probe import probe
from distillkit.models import Actor, EncoderActor
from distillkit.ppo import PPOConfig, build_actor
from distillkit.rollouts import Rollouts, collect
from distillkit.schema import Field, ObservationSchema
from distillkit.students import ARCHITECTURES, LatentStudent, StudentError, make_student
from distillkit.train import load_actor, train_teacher

ENCODER = PPOConfig(steps_per_env=8, epochs=2, minibatches=2, actor_hidden=(32,), critic_hidden=(32,),
                    encoder_latent=4, encoder_hidden=(16,))
NEW = {"latent": {"latent_size": 4, "hidden_size": 8, "hidden": [32]},
       "action_latent": {"latent_size": 4, "latent_weight": 0.5, "hidden_size": 8, "hidden": [16]},
       "estimator": {"hidden_size": 8, "hidden": [16]}}
TINY = DaggerConfig(rounds=2, steps_per_round=12, grad_steps=4, schedule="linear", chunk=6)


@pytest.fixture(scope="module")
def teacher_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("encoder_teacher")
    train_teacher("cartpole", out, env_steps=8 * 8 * 2, num_envs=8, config=ENCODER, progress=False, nthread=1)
    return out


@pytest.fixture
def env():
    env = make_env("cartpole", 4)
    yield env
    env.close()


def test_encoder_latent_0_is_the_plain_actor():
    schema = make_env("cartpole", 1).schema
    torch.manual_seed(0)
    plain = build_actor(schema, 1, PPOConfig())
    torch.manual_seed(0)
    before = Actor(schema, "teacher", 1)                 # what PPO built before encoders existed
    assert type(plain) is Actor and plain.state_dict().keys() == before.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), before.state_dict().values()))
    with pytest.raises(ValueError, match="group 'student' has none"):
        build_actor(schema, 1, PPOConfig(actor_group="student", encoder_latent=4))


def test_encoder_teacher_trains_saves_reloads_and_resumes(teacher_folder, env):
    manifest = read_manifest(teacher_folder)
    assert manifest["ppo"]["encoder_latent"] == 4 and manifest["ppo"]["encoder_hidden"] == [16]
    assert manifest["actor_inputs"] == ["joint_pos_rel", "joint_vel_rel", "pole_mass"]
    on_env, _, _ = load_actor(teacher_folder, env)
    alone, _, _ = load_actor(teacher_folder)             # rebuilt from the manifest's own schema and config
    assert isinstance(on_env, EncoderActor) and isinstance(alone, EncoderActor)
    saved = load_file(teacher_folder / manifest["files"]["actor"]["file"])
    assert all(torch.equal(v, saved[k]) for k, v in on_env.state_dict().items())
    obs = env.reset(seed=3)
    assert torch.equal(on_env(obs), alone(obs)) and torch.equal(on_env.latent(obs), alone.latent(obs))
    # the latent summarises the privileged fields only
    moved = {**obs, "joint_pos_rel": obs["joint_pos_rel"] + 0.3}
    assert torch.equal(on_env.latent(moved), on_env.latent(obs))
    assert not torch.equal(on_env.latent({**obs, "pole_mass": obs["pole_mass"] * 2}), on_env.latent(obs))
    # the recorded config rebuilds the same actor to resume into
    copy_folder = teacher_folder.parent / "resumed"
    shutil.copytree(teacher_folder, copy_folder)
    train_teacher("cartpole", copy_folder, env_steps=8 * 8 * 3, num_envs=8, config=ENCODER, progress=False, nthread=1)
    assert read_manifest(copy_folder)["iterations_done"] == 3


def test_collect_records_privileged_values_and_the_teachers_latent(teacher_folder, env):
    teacher, _, _ = load_actor(teacher_folder, env)
    r, _ = collect(env, teacher, 5, obs=env.reset(seed=0))
    assert sorted(r.targets) == ["joint_vel_rel", "latent", "pole_mass"]
    assert r.targets["latent"].shape == (5, 4, 4) and r.targets["pole_mass"] is r.obs["pole_mass"]
    assert torch.equal(r.targets["latent"][0], teacher.latent({k: v[0] for k, v in r.obs.items()}))
    assert r.flat().targets["latent"].shape == (20, 4)
    plain, _ = collect(env, lambda obs: teacher(obs), 5, obs=env.reset(seed=0))   # a function labels actions only
    assert sorted(plain.targets) == ["joint_vel_rel", "pole_mass"]
    assert torch.equal(plain.teacher_actions, r.teacher_actions)


@pytest.mark.parametrize("architecture", list(NEW))
def test_each_new_student_trains_with_dagger_reloads_and_exports(teacher_folder, env, architecture, tmp_path):
    teacher, _, _ = load_actor(teacher_folder, env)
    torch.manual_seed(0)
    student = make_student(architecture, env.schema, env.action_dim, **NEW[architecture])
    rows = dagger(env, teacher, student, TINY)
    assert len(rows) == 2 and rows.loss.notna().all()
    assert student.options() == {**ARCHITECTURES[architecture].defaults, **NEW[architecture]}
    twin = make_student(architecture, env.schema, env.action_dim, **student.options())
    twin.load_state_dict(student.state_dict())
    obs = env.reset(seed=7)
    student.reset()
    assert torch.equal(student.eval()(obs), twin.eval()(obs))
    check_student_only(student, teacher)
    path = export_onnx(student, env.schema, tmp_path / "s.onnx", teacher=teacher)
    deployed = OnnxStudent(path, env.schema)
    assert deployed.names == ["joint_pos_rel"] and deployed.recurrent
    student.reset()
    fields = {k: obs[k] for k in deployed.names}
    assert torch.allclose(deployed(fields), student(obs), atol=1e-5)


def test_the_latent_student_acts_with_the_teachers_head_frozen(teacher_folder, env):
    teacher, _, _ = load_actor(teacher_folder, env)
    student = make_student("latent", env.schema, env.action_dim, **NEW["latent"])
    student.adopt(teacher)
    head = copy.deepcopy(student.head.state_dict())
    obs = env.reset(seed=1)
    given_z = student.head(torch.cat([student.head_input(student.input.flat(obs)), teacher.latent(obs)], dim=-1))
    assert torch.allclose(given_z, teacher(obs), atol=1e-6), "the head with the true latent is the teacher"
    dagger(env, teacher, student, TINY)
    assert all(torch.equal(v, student.head.state_dict()[k]) for k, v in head.items())
    fresh = make_student("latent", env.schema, env.action_dim, **NEW["latent"])
    r, _ = collect(env, teacher, 8, obs=env.reset(seed=0))
    with pytest.raises(RuntimeError, match=r"not the teacher's yet: call student.adopt\(teacher\)"):
        fit(fresh, [(r, torch.ones_like(r.done))], 1)


def test_the_estimate_reaches_the_policy_detached(env):
    student = make_student("estimator", env.schema, env.action_dim, fields=["pole_mass"], hidden_size=8, hidden=[8])
    r, _ = collect(env, lambda obs: torch.zeros(4, 1), 6, obs=env.reset(seed=0))
    starts = episode_starts(r)
    out = student.outputs_window(r.obs, starts, slice(0, 6), torch.arange(4), student.prepare(r.obs, starts))
    out["action"].sum().backward()
    assert student.estimator.weight.grad is None and student.policy[0].weight.grad is not None


def test_the_estimator_regresses_normalised_values_and_reports_them_in_their_units(env):
    """Targets in their own units (a pole mass in kg next to joint velocities) are normalised by
    running statistics before the loss, so no field outweighs another by its scale alone."""
    student = make_student("estimator", env.schema, env.action_dim, hidden_size=8, hidden=[8])
    r, _ = collect(env, lambda obs: torch.zeros(4, 1), 12, obs=env.reset(seed=0))
    student.learn_statistics(r)
    truth = student.truth(r.targets, r.done.shape)
    assert torch.allclose(student.truth_norm.mean.float(), truth.reshape(-1, truth.shape[-1]).mean(0), atol=1e-4)
    starts = episode_starts(r)
    out = student.outputs_window(r.obs, starts, slice(0, 12), torch.arange(4), student.prepare(r.obs, starts))
    scale = torch.sqrt(student.truth_norm.var + student.truth_norm.eps ** 2).float()
    assert torch.allclose(out["estimate"], out["normalised_estimate"] * scale + student.truth_norm.mean.float())
    seen = []
    student.training_loss(r.obs, starts, slice(0, 12), torch.arange(4), student.prepare(r.obs, starts),
                          {"action": torch.zeros(12, 4, 1), **r.targets}, torch.ones(12, 4, dtype=torch.bool),
                          lambda pred, target, mask: seen.append(target) or pred.sum() * 0)
    normalised = seen[1].reshape(-1, truth.shape[-1])
    assert normalised.mean(0).abs().max() < 1e-3 and ((normalised.std(0) - 1).abs() < 0.05).all()


def test_a_learners_loss_trains_every_term(teacher_folder, env):
    """fit's loss= is the loss of every term: action_latent calls it on actions and on latents."""
    teacher, _, _ = load_actor(teacher_folder, env)
    r, _ = collect(env, teacher, 10, obs=env.reset(seed=0))
    student = make_student("action_latent", env.schema, env.action_dim, **NEW["action_latent"])
    shapes = []

    def mine(pred, target, mask):
        shapes.append(tuple(pred.shape))
        return ((pred - target) ** 2).sum(-1)[mask].mean()

    fit(student, [(r, torch.ones_like(r.done))], 2, chunk=5, batch_worlds=4, loss=mine)
    assert shapes == [(5, 4, 1), (5, 4, 4)] * 2


def test_latent_students_need_an_encoder_teacher(teacher_folder, env):
    plain, _, _ = load_actor(CHECKPOINTS / "cartpole_teacher", env)
    for architecture in ("latent", "action_latent"):
        student = make_student(architecture, env.schema, env.action_dim, **NEW[architecture])
        with pytest.raises(StudentError, match="encoder_latent > 0"):
            dagger(env, lambda obs: plain(obs), student, TINY)
        r, _ = collect(env, plain, 6, obs=env.reset(seed=0))
        with pytest.raises(ValueError, match=r"learns from targets \['latent'\], which these rollouts lack"):
            fit(student, [(r, torch.ones_like(r.done))], 1)
    teacher, _, _ = load_actor(teacher_folder, env)
    with pytest.raises(ValueError, match="latent_size=4, not 8"):
        dagger(env, teacher, make_student("action_latent", env.schema, env.action_dim), TINY)


def test_estimator_fields_default_and_refuse_unknown_ones_by_name(env):
    assert make_student("estimator", env.schema, 1).learns_from == ("joint_vel_rel", "pole_mass")
    with pytest.raises(ValueError, match=r"fields \['pole_mas'\] are not teacher_only fields of schema 'cartpole'; "
                                         r"those are \['joint_vel_rel', 'pole_mass'\]"):
        make_student("estimator", env.schema, 1, fields=["pole_mas"])
    with pytest.raises(ValueError, match=r"\['joint_pos_rel'\] are not teacher_only"):
        make_student("estimator", env.schema, 1, fields=["joint_pos_rel"])     # a student field needs no estimate


def test_export_check_refuses_a_network_holding_the_teachers_encoder(teacher_folder, env, tmp_path):
    teacher, _, _ = load_actor(teacher_folder, env)

    class Copied(LatentStudent):                     # carries a copy of the encoder, used or not
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.stolen = copy.deepcopy(teacher.encoder)

    class Shared(LatentStudent):                     # shares the teacher's actor, encoder input and all
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.teacher = teacher

    for bad, match in ((Copied, r"Copied.stolen.0.weight is the teacher's encoder.0.weight"),
                       (Shared, r"Shared.teacher.input reads privileged fields \['joint_vel_rel', 'pole_mass'\]")):
        student = bad(env.schema, env.action_dim, **NEW["latent"])
        student.adopt(teacher)
        with pytest.raises(ExportError, match=match):
            export_onnx(student, env.schema, tmp_path / "bad.onnx", teacher=teacher)
        assert not (tmp_path / "bad.onnx").exists()
    with pytest.raises(ExportError, match="reads privileged fields"):
        check_student_only(Shared(env.schema, env.action_dim, **NEW["latent"]))    # found without the teacher too


# ---------------------------------------------------------------------------------- inference probe
RECALL = ObservationSchema("recall", (
    Field("cue", (1,), "student", "the hidden value, shown at an episode's first step only"),
    Field("hidden", (1,), "teacher_only", "drawn per episode; never observed after its first step")))


def recall_rollouts(seed: int, worlds: int = 64, episodes: int = 3, length: int = 20) -> Rollouts:
    """A field only history reveals, by construction: each episode draws ``hidden``, shows it in
    ``cue`` at its first step and never again; the teacher's action is ``hidden``."""
    g = torch.Generator().manual_seed(seed)
    T = episodes * length
    hidden = (torch.rand(episodes, worlds, 1, generator=g) * 2 - 1).repeat_interleave(length, 0)
    first = (torch.arange(T) % length == 0)[:, None, None]
    no = torch.zeros(T, worlds, dtype=torch.bool)
    done = (torch.arange(T) % length == length - 1)[:, None].expand(T, worlds)
    return Rollouts(obs={"cue": torch.where(first, hidden, torch.zeros_like(hidden)), "hidden": hidden},
                    teacher_actions=hidden, actions=hidden, teacher_acted=~no, reward=torch.zeros(T, worlds), done=done,
                    validity={"fell": no, "timeout": done, "action_saturated": no, "reset_transient": no},
                    episode=(torch.arange(T) // length)[:, None] * worlds + torch.arange(worlds),
                    targets={"hidden": hidden})


@pytest.mark.slow
def test_probe_finds_in_a_trained_memory_what_only_history_reveals():
    """A memoryless student holds the cue one step in 20 (R^2 ~ 0.05, whatever its training); a
    GRU student trained 100 steps to act on it carries it in its memory (measured: 0.97-0.98 over
    4 seeds; untrained 0.5-0.6)."""
    train, test = recall_rollouts(0), recall_rollouts(1)
    torch.manual_seed(0)
    mlp = make_student("mlp", RECALL, 1, hidden=[16])
    gru = make_student("gru", RECALL, 1, hidden_size=16, head=[16])
    for student in (mlp, gru):
        student.input.normalizer.update(student.input.flat(train.flat().obs))
        fit(student, [(train, torch.ones_like(train.done))], 100, chunk=20, lr=3e-3, generator=torch.Generator().manual_seed(0))
    memoryless, memory = probe(mlp, train, test)["hidden"], probe(gru, train, test)["hidden"]
    assert abs(memoryless) < 0.1 and memory > 0.8, (memoryless, memory)


def test_probe_on_cartpole_a_window_reveals_velocity_not_mass():
    """A memoryless student's input (3 samples of positions) holds the velocities linearly, the
    pole's mass not at all (measured 0.90 and -0.03)."""
    env = make_env("cartpole", 16)
    teacher, _, _ = load_actor(CHECKPOINTS / "cartpole_teacher", env)
    train, _ = collect(env, teacher, 100, obs=env.reset(seed=1))
    test, _ = collect(env, teacher, 100, obs=env.reset(seed=2))
    env.close()
    scores = probe(make_student("mlp", env.schema, 1, hidden=[8]), train, test)
    assert scores["joint_vel_rel"] > 0.8 and abs(scores["pole_mass"]) < 0.1, scores
    with pytest.raises(ValueError, match=r"no targets \['latent'\]"):
        probe(make_student("mlp", env.schema, 1), train, test, ["latent"])
