import json

import pytest
import torch

from distillkit.schema import ROLES_ALLOWED_IN_GROUP, Field, Noise, ObservationSchema, SchemaError, diff
from distillkit.tasks import TASKS


def small_schema(**overrides) -> ObservationSchema:
    return ObservationSchema("small", (
        Field("joint_pos", (2,), "student", "encoders", noise=Noise("gaussian", 0.01), history_length=3),
        Field("height_scan", (4,), "teacher_only", "exact map"),
        Field("terrain_level", (1,), "critic_only", "generator label"),
    ), overrides)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_task_groups_nest_and_student_holds_no_privileged_field(task):
    schema = TASKS[task].make_schema()
    student, teacher, critic = (set(schema.group(g)) for g in ("student", "teacher", "critic"))
    assert student <= teacher <= critic
    assert all(schema.field(n).role == "student" for n in student)
    assert schema.privileged_names, "a course task needs privileged fields"
    assert not student & set(schema.privileged_names)
    for group, allowed in ROLES_ALLOWED_IN_GROUP.items():
        assert {schema.field(n).role for n in schema.group(group)} <= set(allowed)


def test_groups_derive_from_roles_in_schema_order():
    s = small_schema()
    assert s.group("student") == ("joint_pos",)
    assert s.group("teacher") == ("joint_pos", "height_scan")
    assert s.group("critic") == ("joint_pos", "height_scan", "terrain_level")
    assert s.group_size("teacher") == 3 * 2 + 4


@pytest.mark.parametrize("group, names, message", [
    ("student", ("joint_pos", "height_scan"), "group 'student' would see field 'height_scan' whose role is 'teacher_only'"),
    ("student", ("terrain_level",), "role is 'critic_only'"),
    ("teacher", ("joint_pos", "terrain_level"), "group 'teacher' would see field 'terrain_level'"),
    ("student", ("joint_pos", "joint_pos"), "lists a field twice"),
    ("student", ("joint_vel",), "names unknown field 'joint_vel'"),
    ("actor", ("joint_pos",), "group 'actor' is unknown"),
])
def test_group_overrides_are_checked(group, names, message):
    with pytest.raises(SchemaError, match=message):
        small_schema(**{group: names})


def test_allowed_override_is_used():
    s = small_schema(teacher=("height_scan",))
    assert s.group("teacher") == ("height_scan",)


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="a", shape=(2,), role="deployable", reason="r"), "role 'deployable' is unknown"),
    (dict(name="a", shape=(0,), role="student", reason="r"), "shape must be a non-empty tuple of positive ints"),
    (dict(name="a", shape=(), role="student", reason="r"), "shape must be"),
    (dict(name="a", shape=(2.0,), role="student", reason="r"), "shape must be"),
    (dict(name="a b", shape=(2,), role="student", reason="r"), "must be a Python identifier"),
    (dict(name="a", shape=(2,), role="student", reason=" "), "give a one-line reason"),
    (dict(name="a", shape=(2,), role="teacher_only", reason="r", noise=Noise("gaussian", 0.1)),
     "only deployable \\(student\\) sensors carry a noise model"),
    (dict(name="a", shape=(2,), role="student", reason="r", history_length=0), "history_length must be"),
])
def test_bad_fields_are_refused_with_the_field_named(kwargs, message):
    with pytest.raises(SchemaError, match=message):
        Field(**kwargs)


def test_bad_noise_and_duplicate_names_are_refused():
    with pytest.raises(SchemaError, match="noise kind 'laplace' is unknown"):
        Noise("laplace", 0.1)
    with pytest.raises(SchemaError, match="noise scale must be a number >= 0"):
        Noise("gaussian", -1)
    with pytest.raises(SchemaError, match="noise outliers must be a probability in \\[0, 1\\], got 1.5"):
        Noise("gaussian", 0.1, outliers=1.5, outlier_range=0.5)
    with pytest.raises(SchemaError, match="noise outlier_range must be a number >= 0"):
        Noise("gaussian", 0.1, outliers=0.1, outlier_range=-1)
    f = Field("a", (1,), "student", "r")
    with pytest.raises(SchemaError, match="duplicate field name 'a'"):
        ObservationSchema("dup", (f, f))


def test_save_load_roundtrip(tmp_path):
    s = small_schema(teacher=("height_scan", "joint_pos"))
    path = tmp_path / "schema.json"
    s.save(path)
    assert ObservationSchema.load(path) == s
    assert not list(tmp_path.glob(".*.tmp")), "atomic write left a temp file behind"


@pytest.mark.parametrize("corrupt, message", [
    (lambda d: d.update(format_version=99), "'format_version' must be 1, got 99"),
    (lambda d: d.update(format="something"), "'format' must be 'distillkit.schema'"),
    (lambda d: d.pop("fields"), "'fields' must be a list, got NoneType"),
    (lambda d: d["fields"][1].update(role="secret"), "fields\\[1\\]: field 'height_scan': role 'secret' is unknown"),
    (lambda d: d["fields"][0].update(shape=[2, -1]), "fields\\[0\\]: field 'joint_pos': shape must be"),
    (lambda d: d["fields"][0].pop("reason"), "fields\\[0\\] \\('joint_pos'\\) must have keys"),
    (lambda d: d["fields"][0].update(noise={"kind": "gaussian"}), "noise must be null, \\{kind, scale\\} or"),
    (lambda d: d["group_overrides"].update(student=["height_scan"]), "would see field 'height_scan'"),
    (lambda d: d["fields"].append(dict(d["fields"][0])), "duplicate field name 'joint_pos'"),
])
def test_corrupted_manifest_gives_a_clear_error_naming_file_and_field(tmp_path, corrupt, message):
    data = small_schema().to_dict()
    corrupt(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SchemaError, match=message) as err:
        ObservationSchema.load(path)
    assert str(path) in str(err.value)


def test_truncated_json_is_reported(tmp_path):
    path = tmp_path / "cut.json"
    path.write_text(json.dumps(small_schema().to_dict())[:40])
    with pytest.raises(SchemaError, match="cut.json: not valid JSON"):
        ObservationSchema.load(path)


def test_diff_reports_added_removed_changed_and_moved_per_group():
    a = small_schema()
    b = ObservationSchema("small", (
        Field("height_scan", (8,), "teacher_only", "exact map, denser"),
        Field("joint_pos", (2,), "student", "encoders", noise=Noise("gaussian", 0.01), history_length=3),
        Field("friction", (1,), "teacher_only", "hidden parameter"),
    ))
    table = diff(a, b)
    rows = {(r.group, r.field): r.change for r in table.itertuples()}
    assert rows[("teacher", "height_scan")] == "changed"
    assert rows[("teacher", "friction")] == "added"
    assert rows[("critic", "terrain_level")] == "removed"
    assert ("student", "joint_pos") not in rows
    # same fields in another order: a different network input layout
    c = ObservationSchema("small", (a.fields[1], a.fields[0], a.fields[2]))
    moved = diff(a, c)
    assert set(moved.change) == {"moved"} and set(moved.group) == {"teacher", "critic"}
    assert diff(a, a).empty


def test_compare_groups_lists_what_only_the_teacher_sees():
    table = small_schema().compare_groups("teacher", "student")
    assert list(table.field) == ["height_scan"]
    assert list(table.seen_by) == ["teacher"]


def test_flatten_follows_group_order_and_rejects_unknown_names():
    s = small_schema()
    obs = {"joint_pos": torch.arange(12.).reshape(2, 3, 2), "height_scan": torch.ones(2, 4) * -1,
           "terrain_level": torch.zeros(2, 1)}
    flat = s.flatten(obs, "teacher")
    assert flat.shape == (2, 10)
    assert torch.equal(flat[0, :6], torch.arange(6.)) and torch.equal(flat[0, 6:], -torch.ones(4))
    with pytest.raises(SchemaError, match="has no field\\(s\\) \\['secret'\\]"):
        s.flatten({**obs, "secret": torch.zeros(2, 1)}, "student")
    with pytest.raises(SchemaError, match="needs field 'height_scan'"):
        s.flatten({"joint_pos": obs["joint_pos"]}, "teacher")


def test_validate_obs_names_the_wrong_field():
    s = small_schema()
    good = {"joint_pos": torch.zeros(4, 3, 2), "height_scan": torch.zeros(4, 4), "terrain_level": torch.zeros(4, 1)}
    s.validate_obs(good, 4)
    with pytest.raises(SchemaError, match="field 'height_scan': expected shape \\(4, 4\\), got \\(4, 5\\)"):
        s.validate_obs({**good, "height_scan": torch.zeros(4, 5)}, 4)
    with pytest.raises(SchemaError, match="unknown \\['extra'\\]"):
        s.validate_obs({**good, "extra": torch.zeros(4, 1)}, 4)


def test_outlier_noise_round_trips_and_plain_noise_keeps_its_form():
    plain = Field("a", (2,), "student", "r", noise=Noise("gaussian", 0.1))
    scan = Field("b", (3,), "student", "r", noise=Noise("gaussian", 0.03, outliers=0.15, outlier_range=0.5))
    schema = ObservationSchema("s", (plain, scan))
    data = json.loads(json.dumps(schema.to_dict()))
    assert data["fields"][0]["noise"] == {"kind": "gaussian", "scale": 0.1}     # as before outliers existed
    assert ObservationSchema.from_dict(data) == schema
    data["fields"][1]["noise"]["outliers"] = 0.2
    assert ObservationSchema.from_dict(data) != schema
    del data["fields"][1]["noise"]["outlier_range"]
    with pytest.raises(SchemaError, match="noise must be null, \\{kind, scale\\} or"):
        ObservationSchema.from_dict(data)
