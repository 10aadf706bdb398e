"""The privileged-field panel: take a teacher's privileged inputs away and watch the closed loop.

One row per privileged field the teacher reads: a checkbox (ticked = the teacher gets the true
value) and a corruption mode for when it is unticked (``distillkit.corruption``: zeroed, noise,
stale, shuffled). Every change re-runs the chosen policy - the teacher, or the student alone on
deployable fields - on one fixed held-out panel and redraws return and fall-rate bars (one bar
per configuration tried so far) and a trace of one rollout. The summary line is plain text, e.g.
``teacher: return 2044.2, success 0.81, fall rate 0.06 — all privileged inputs intact``. A
corrupted configuration is drawn red only when it *hurts* (its return falls below
:data:`HURTS_BELOW` of the intact teacher's); one that changes nothing is drawn grey.

The "give the student a field" control asks the schema to put a privileged field into the
student group; the schema's guard refuses, and the panel shows its reason.

Usage in a notebook::

    from distillkit.envs import EnvFactory
    from distillkit.widgets import PrivilegedFieldPanel
    PrivilegedFieldPanel(EnvFactory("walker_rough"))   # shipped teacher; pass student=... to compare

Headless use (tests): setting a widget's ``.value`` fires its observers synchronously, and
``button.click()`` runs its handlers.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable
from pathlib import Path

import ipywidgets as widgets
import torch

from distillkit.corruption import MODES, Corrupted
from distillkit.envs import EnvFactory
from distillkit.evaluate import evaluate_policy, held_out_seeds
from distillkit.leakage import StudentOnly
from distillkit.schema import ObservationSchema, SchemaError

#: The panel's figure: drawn at this width in pixels and shown no wider (labels stay readable).
PLOT_WIDTH_PX, PLOT_DPI = 900, 100

#: A configuration "hurts" when its return is below this fraction of the intact teacher's.
HURTS_BELOW = 0.8

#: One quantity of world 0 per task, traced over a rollout: (label, obs -> value per world).
TRACES: dict[str, tuple[str, Callable]] = {
    "cartpole": ("pole angle (rad)", lambda obs: obs["joint_pos_rel"][:, -1, 1]),
    "walker_rough": ("forward speed (m/s)", lambda obs: obs["base_lin_vel"][:, 0]),
}


def load_teacher(envs: EnvFactory, folder: str | Path | None = None):
    """The trained actor of a teacher artifact (default: the shipped checkpoint of ``envs.task``),
    checked against an env of ``envs`` (one world, closed) and on its device."""
    from distillkit.artifacts import shipped_teacher
    from distillkit.train import load_actor

    env = envs(1)
    try:
        actor, _, _ = load_actor(shipped_teacher(envs.task) if folder is None else folder, env)
    finally:
        env.close()
    return actor


class PrivilegedFieldPanel(widgets.VBox):
    """Args:
        envs: which env to run (task, engine, device), an :class:`~distillkit.envs.EnvFactory`.
        teacher: the teacher's actor (default: the shipped checkpoint).
        student: optional student module, evaluated alone through :class:`StudentOnly`.
        num_envs: worlds (= episodes) per run, all from the one held-out ``seed``.
        video: add a "record a video" checkbox (MuJoCo CPU engine; a few seconds per run).
    """

    def __init__(self, envs: EnvFactory, teacher=None, student=None, *, num_envs: int = 16, seed: int | None = None,
                 video: bool = False, run: bool = True):
        self.envs, self.num_envs = envs, num_envs
        self.seed = held_out_seeds(1)[0] if seed is None else seed
        self.teacher = load_teacher(envs) if teacher is None else teacher
        self.student = student
        self.schema: ObservationSchema = self.teacher.input.schema
        self.privileged = [n for n in self.teacher.input.names if self.schema.field(n).privileged]
        self.results: dict[str, dict] = {}      # configuration label -> return, fall rate, trace
        self.last: dict | None = None

        auto = {"width": "auto"}         # sized to their text: fixed widths cut labels ("▶ ru…")
        self.checkboxes = {n: widgets.Checkbox(value=True, description=n, indent=False, layout={"width": "220px"})
                           for n in self.privileged}
        self.modes = {n: widgets.Dropdown(options=MODES, value="zeroed", layout={"width": "110px"})
                      for n in self.privileged}
        self.policy = widgets.ToggleButtons(options=["teacher"] + (["student"] if student is not None else []),
                                            description="policy", style={"button_width": "auto"})
        self.auto = widgets.Checkbox(value=True, description="re-run on every change", indent=False, layout=auto)
        self.run_button = widgets.Button(description="run", icon="play", tooltip="run the closed loop now",
                                         layout=auto)
        self.summary = widgets.HTML()
        # its own row, at its natural aspect ratio: beside the controls it was stretched to their height
        self.plot = widgets.Image(format="png", layout={"width": "100%", "max_width": f"{PLOT_WIDTH_PX}px",
                                                        "height": "auto", "object_fit": "contain"})
        self.record = widgets.Checkbox(value=False, description="record a video of one rollout", indent=False,
                                       layout=auto)
        self.video = widgets.Video(format="mp4", autoplay=True, loop=True, layout={"width": "320px", "display": "none"})
        # "Give the student a field": the schema's guard decides.
        self.give_field = widgets.Dropdown(options=list(self.schema.privileged_names), description="field",
                                           layout=auto)
        self.give_button = widgets.Button(description="give to student", tooltip="ask the schema to give the "
                                          "student this privileged field", layout=auto)
        self.guard = widgets.HTML()

        for name in self.privileged:
            self.checkboxes[name].observe(self._changed, "value")
            # a new mode changes nothing while the field is ticked (intact)
            self.modes[name].observe(lambda change, n=name: self.checkboxes[n].value or self._changed(), "value")
        self.policy.observe(self._changed, "value")
        self.record.observe(self._changed, "value")
        self.run_button.on_click(lambda _: self.run())
        self.give_button.on_click(lambda _: self.give_student_field(self.give_field.value))

        rows = [widgets.HBox([self.checkboxes[n], self.modes[n]]) for n in self.privileged]
        controls = [widgets.HTML(f"<b>privileged inputs of the {envs.task} teacher</b> (untick to corrupt)"),
                    *rows, self.policy, widgets.HBox([self.run_button, self.auto])]
        if video:
            controls.append(self.record)
        give = widgets.VBox([widgets.HTML("<b>give the student a privileged field</b>"),
                             widgets.HBox([self.give_field, self.give_button]), self.guard])
        children = [widgets.VBox(controls), self.plot, self.summary, give]
        if video:
            children.insert(3, self.video)
        super().__init__(children)
        if run:
            self.run()

    # ------------------------------------------------------------------------------ state
    def corrupted(self) -> dict[str, str]:
        """Unticked fields and their corruption modes."""
        return {n: self.modes[n].value for n in self.privileged if not self.checkboxes[n].value}

    def label(self) -> str:
        if self.policy.value == "student":
            return "deployable fields only"
        corrupted = self.corrupted()
        if not corrupted:
            return "all privileged inputs intact"
        return ", ".join(f"{n} {mode}" for n, mode in corrupted.items())

    def current_policy(self) -> tuple[Callable, Callable]:
        """The policy to run and what it observes of the env's observation."""
        if self.policy.value == "student":
            return StudentOnly(self.student, self.schema), lambda obs: StudentOnly.deployable(obs, self.schema)
        corrupted = self.corrupted()
        policy = CorruptedTeacher(self.teacher, corrupted, seed=self.seed) if corrupted else self.teacher
        return policy, lambda obs: obs

    # -------------------------------------------------------------------------------- run
    def _changed(self, _change=None) -> None:
        for name in self.privileged:        # the teacher's inputs do not matter to the student
            self.checkboxes[name].disabled = self.modes[name].disabled = self.policy.value == "student"
        if self.auto.value:
            self.run()

    def run(self) -> dict:
        """Run the current configuration on the held-out panel; update bars, trace and summary."""
        who, label = self.policy.value, self.label()
        self.summary.value = f"running {who} ({html.escape(label)}) on {self.num_envs} held-out episodes…"
        policy, observe = self.current_policy()
        trace_label, trace_of = TRACES.get(self.envs.task, (None, None))
        trace: list[float] = []

        def record(obs):                  # world 0's true state, whatever the policy is shown
            if trace_of is not None:
                trace.append(float(trace_of(obs)[0]))
            return observe(obs)

        with torch.no_grad():
            episodes = evaluate_policy(policy, self.envs, [self.seed], num_envs=self.num_envs, observe=record)
        length0 = int(episodes.loc[episodes.world == 0, "length"].iloc[0])
        result = {"policy": who, "label": label, "return": float(episodes["return"].mean()),
                  "success": float(episodes["success"].mean()), "fall_rate": float(episodes["fell"].mean()),
                  "trace": trace[:length0], "trace_label": trace_label}
        self.results[f"{who}: {label}"] = result
        self.last = result
        verdict = self.verdict(result)
        self.summary.value = (f"<b>{who}</b>: return {result['return']:.1f}, success {result['success']:.2f}, "
                              f"fall rate {result['fall_rate']:.2f} — {html.escape(label)}"
                              + (f" ({verdict})" if verdict else ""))
        self.plot.value = self.figure_png()
        if self.record.value:
            self.video.value = self.render_video(policy, observe)
            self.video.layout.display = ""                 # shown once there is a video
        return result

    def summary_text(self) -> str:
        """The summary line as plain text (for ``print``: the widget shows it as HTML)."""
        return html.unescape(re.sub(r"<[^>]+>", "", self.summary.value))

    def verdict(self, result: dict) -> str:
        """How a corrupted teacher compares with the intact one, once the intact one has run."""
        intact = self.results.get("teacher: all privileged inputs intact")
        if result["policy"] != "teacher" or intact is None or result is intact:
            return ""
        ratio = result["return"] / intact["return"]
        return f"{ratio:.2f} of the intact return: " + ("it hurts" if ratio < HURTS_BELOW else "no real harm")

    def colour(self, key: str) -> str:
        result = self.results[key]
        if result["policy"] == "student":
            return "tab:green"
        if key.endswith("intact"):
            return "tab:blue"
        return "tab:red" if self.verdict(result).endswith("it hurts") else "tab:gray"

    def render_video(self, policy: Callable, observe: Callable) -> bytes:
        from distillkit.video import render_rollout, to_mp4

        if self.envs.engine != "mujoco":
            raise ValueError(f"videos are rendered by the MuJoCo CPU engine; this panel runs on {self.envs.engine!r}")
        frames, fps = render_rollout(policy, self.envs.task, self.seed, seconds=6.0, observe=observe)
        return to_mp4(frames, fps)

    def figure_png(self) -> bytes:
        """Return and fall-rate bars for every configuration tried, and the latest trace."""
        from matplotlib.figure import Figure

        labels = list(self.results)
        fig = Figure(figsize=(PLOT_WIDTH_PX / PLOT_DPI, 3.3))
        ax_ret, ax_fall, ax_trace = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 1.4]})
        colours = [self.colour(k) for k in labels]
        short = [k.replace("teacher: ", "T: ").replace("student: ", "S: ") for k in labels]
        ax_ret.barh(short, [self.results[k]["return"] for k in labels], color=colours)
        ax_ret.set_title("held-out return")
        ax_fall.barh(short, [self.results[k]["fall_rate"] for k in labels], color=colours)
        ax_fall.set_xlim(0, 1)
        ax_fall.set_yticks([])
        ax_fall.set_title("fall rate")
        for key, result in self.results.items():
            if result["trace"] and (result is self.last or key.endswith("intact")):
                ax_trace.plot(result["trace"], label=key.replace("teacher: ", "T: ").replace("student: ", "S: "),
                              lw=2 if result is self.last else 1)
        if self.last and self.last["trace_label"]:
            ax_trace.set_title(f"world 0: {self.last['trace_label']}")
            ax_trace.set_xlabel("control step")
            # under the axes, not over the trace
            ax_trace.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.22), frameon=False)
        for ax in (ax_ret, ax_fall, ax_trace):
            ax.tick_params(labelsize=9)
        for ax in (ax_ret, ax_fall):
            ax.invert_yaxis()                 # the first configuration tried on top
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=PLOT_DPI, bbox_inches="tight")
        return buffer.getvalue()

    # ---------------------------------------------------------------------- schema guard
    def give_student_field(self, name: str) -> str:
        """Ask the schema for a student group that also holds ``name``; show and return the verdict."""
        student = self.schema.group("student")
        try:
            ObservationSchema(self.schema.name, self.schema.fields,
                              {**self.schema.group_overrides, "student": (*student, name)})
        except SchemaError as err:
            verdict = f"refused: {err}"
        else:
            verdict = f"accepted: {name} is deployable"
        self.guard.value = f"<b>{html.escape(verdict.split(':')[0])}</b>:{html.escape(verdict.split(':', 1)[1])}"
        return verdict


class CorruptedTeacher:
    """The teacher with each field of ``modes`` corrupted in its own mode (field -> mode)."""

    def __init__(self, teacher, modes: dict[str, str], seed: int = 0):
        self.teacher = teacher
        by_mode: dict[str, list[str]] = {}
        for name, mode in modes.items():
            by_mode.setdefault(mode, []).append(name)
        self.corruptions = [Corrupted(teacher, names, mode, seed=seed) for mode, names in by_mode.items()]

    def __call__(self, obs):
        for corruption in self.corruptions:
            obs = corruption.corrupt(obs)
        return self.teacher(obs)

    def reset(self, done=None) -> None:
        for corruption in self.corruptions:
            corruption.reset(done)
