"""The privileged-field panel, driven headless: setting a widget's value fires its observers."""

import pytest
import torch

from distillkit.envs import EnvFactory
from distillkit.students import MLPStudent
from distillkit.widgets import PrivilegedFieldPanel

CARTPOLE = EnvFactory("cartpole")


@pytest.fixture(scope="module")
def panel():
    torch.set_num_threads(1)
    return PrivilegedFieldPanel(CARTPOLE, num_envs=8)


def untick_and_compare(panel: PrivilegedFieldPanel, field: str) -> tuple[dict, dict]:
    """Untick ``field`` and check that the teacher's metrics and the summary text changed;
    restores the tick. Returns the intact and the corrupted result."""
    panel.checkboxes[field].value = True
    intact, summary_intact = panel.last, panel.summary.value
    panel.checkboxes[field].value = False
    corrupted, summary_corrupted = panel.last, panel.summary.value
    panel.checkboxes[field].value = True
    assert corrupted is not intact, "unticking a field did not re-run the closed loop"
    assert corrupted["return"] != intact["return"] or corrupted["fall_rate"] != intact["fall_rate"], \
        f"unticking {field} left the teacher's metrics unchanged: {intact['return']:.1f}"
    assert summary_corrupted != summary_intact and f"{field} zeroed" in summary_corrupted, summary_corrupted
    return intact, corrupted


def test_unticking_a_privileged_field_collapses_the_teacher(panel):
    assert panel.privileged == ["joint_vel_rel", "pole_mass"]
    assert "all privileged inputs intact" in panel.summary.value
    intact, corrupted = untick_and_compare(panel, "joint_vel_rel")
    # the cart-pole teacher cannot balance without its velocity input (docs/results.md: 0.09 of its return)
    assert corrupted["return"] < 0.5 * intact["return"] and corrupted["fall_rate"] > intact["fall_rate"]
    assert "teacher: joint_vel_rel zeroed" in panel.results and "all privileged inputs intact" in panel.summary.value
    assert panel.summary.value.startswith("<b>teacher</b>: return ")


def test_the_check_catches_a_panel_that_ignores_its_checkboxes():
    class DeafPanel(PrivilegedFieldPanel):
        def corrupted(self):
            return {}

    with pytest.raises(AssertionError, match="left the teacher's metrics unchanged"):
        untick_and_compare(DeafPanel(CARTPOLE, num_envs=8), "joint_vel_rel")


def test_corruption_mode_changes_the_run(panel):
    panel.checkboxes["joint_vel_rel"].value = False
    zeroed = panel.last
    panel.modes["joint_vel_rel"].value = "noise"
    noised = panel.last
    panel.modes["joint_vel_rel"].value = "zeroed"
    panel.checkboxes["joint_vel_rel"].value = True
    assert "joint_vel_rel noise" in noised["label"] and noised["return"] != zeroed["return"]
    assert set(panel.results) >= {"teacher: joint_vel_rel zeroed", "teacher: joint_vel_rel noise"}
    assert noised["trace"] and len(panel.plot.value) > 1000      # a PNG was drawn


def test_the_schema_refuses_to_give_the_student_a_privileged_field(panel):
    panel.give_field.value = "joint_vel_rel"
    panel.give_button.click()
    text = panel.guard.value
    assert text.startswith("<b>refused</b>")
    for words in ("joint_vel_rel", "teacher_only", "the deployed robot has no velocity sensor", "student"):
        assert words in text, text
    assert panel.schema.group("student") == ("joint_pos_rel",)         # nothing changed


def test_the_student_runs_alone_on_deployable_fields():
    torch.manual_seed(0)
    schema = CARTPOLE.schema
    student = MLPStudent(schema, 1, hidden=(16,)).eval()
    p = PrivilegedFieldPanel(CARTPOLE, student=student, num_envs=8)
    p.policy.value = "student"
    assert p.last["policy"] == "student" and "deployable fields only" in p.summary.value
    assert all(box.disabled for box in p.checkboxes.values())      # the student never sees them


@pytest.mark.slow
def test_video_of_one_rollout():
    p = PrivilegedFieldPanel(CARTPOLE, num_envs=4, video=True, run=False)
    p.record.value = True                         # re-runs the panel and records one rollout
    assert p.video.value[4:8] == b"ftyp"          # an MP4 file
    assert p.video.layout.display == ""


def test_only_a_corruption_that_hurts_is_drawn_as_a_failure(panel):
    panel.checkboxes["joint_vel_rel"].value = True
    panel.checkboxes["pole_mass"].value = False          # the cart-pole teacher barely reads the pole mass
    harmless = "teacher: pole_mass zeroed"
    panel.checkboxes["pole_mass"].value = True
    panel.checkboxes["joint_vel_rel"].value = False       # ... but cannot balance without velocities
    hurtful = "teacher: joint_vel_rel zeroed"
    panel.checkboxes["joint_vel_rel"].value = True
    assert panel.colour(hurtful) == "tab:red" and "it hurts" in panel.verdict(panel.results[hurtful])
    ratio = panel.results[harmless]["return"] / panel.results["teacher: all privileged inputs intact"]["return"]
    assert ratio >= 0.8, f"pole_mass zeroed kept {ratio:.2f}: pick another harmless corruption for this test"
    assert panel.colour(harmless) == "tab:gray" and "no real harm" in panel.verdict(panel.results[harmless])
    assert "success" in panel.summary.value


@pytest.mark.parametrize("platform, environ, expected", [
    ("linux", {}, "egl"),                                       # a server, CI, a container: offscreen EGL
    ("linux", {"DISPLAY": ":0"}, None),                         # a desktop: MuJoCo's default (GLFW)
    ("linux", {"WAYLAND_DISPLAY": "wayland-0"}, None),
    ("linux", {"MUJOCO_GL": "osmesa"}, "osmesa"),               # the user's choice is kept
    ("linux", {"DISPLAY": ":0", "MUJOCO_GL": "egl"}, "egl"),
    ("darwin", {}, None),                                       # the case that failed: egl set unconditionally,
    ("win32", {}, None),                                        # which MuJoCo rejects outside Linux
    ("darwin", {"MUJOCO_GL": "cgl"}, "cgl"),
])
def test_mujoco_gl_is_chosen_per_platform(platform, environ, expected):
    from distillkit.video import choose_mujoco_gl

    assert choose_mujoco_gl(platform, environ, find_library=lambda name: f"lib{name}.so") == expected


@pytest.mark.parametrize("libraries, expected", [({"EGL", "OSMesa"}, "egl"), ({"OSMesa"}, "osmesa"),
                                                 (set(), "disable")])
def test_headless_linux_without_egl_falls_back(libraries, expected):
    """A headless Linux machine without libEGL: MUJOCO_GL=egl would make `import mujoco` itself fail."""
    from distillkit.video import choose_mujoco_gl

    assert choose_mujoco_gl("linux", {}, find_library=lambda name: name if name in libraries else None) == expected


def test_without_any_gl_library_mujoco_imports_and_rendering_is_skipped_with_a_message():
    import os
    import subprocess
    import sys

    code = ("import ctypes.util; ctypes.util.find_library = lambda name: None\n"
            "import distillkit.video as video\n"
            "print(video.configure_rendering())\n"
            "import mujoco\n"
            "print(video.rendering_problem())\n")
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "DISPLAY", "WAYLAND_DISPLAY")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    chosen, problem = done.stdout.strip().splitlines()[-2:]
    assert chosen == "disable" and problem.startswith("MuJoCo's rendering is off"), done.stdout


def test_configure_rendering_leaves_the_users_choice_and_sets_nothing_off_linux(monkeypatch):
    import distillkit.video as video

    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    assert video.configure_rendering() == "osmesa"
    monkeypatch.delenv("MUJOCO_GL")
    monkeypatch.setattr(video.sys, "platform", "darwin")       # (the module reads sys.platform when called)
    assert video.configure_rendering() is None and "MUJOCO_GL" not in video.os.environ


def test_no_renderer_gives_a_message_not_an_error(monkeypatch):
    import distillkit.video as video

    def broken(*args, **kwargs):
        raise RuntimeError("Cannot initialize a EGL device display")

    monkeypatch.setattr(video, "renderer", broken)
    video.rendering_problem.cache_clear()
    try:
        problem = video.rendering_problem()
    finally:
        video.rendering_problem.cache_clear()
    assert problem.startswith("MuJoCo cannot render offscreen here") and "EGL device" in problem
