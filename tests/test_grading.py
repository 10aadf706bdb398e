"""Graded exercises: the generator, the check helpers and the nbval grader.

Fast tests call the check helpers in-process with the solutions' own functions (read from
solutions/*.ipynb) and with known-wrong variants, each of which must fail with the hint that names
its mistake. Slow tests run the grader (nbval in a sandbox, verdicts replayed outside it) on every
exercise's stub and solution, and on the learner-file tricks that fool a naive nbval run.
tests/test_grading_sandbox.py covers the learner-code attacks.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
import torch

from distillkit.envs import EnvFactory
from distillkit.grading import checks
from distillkit.grading.generate import (
    ABOUT_PASS_LINES,
    ABOUT_PASS_LINES_ID,
    ExerciseError,
    generate,
    is_check_cell,
    make_exercise,
)
from distillkit.grading.generate import main as generate_main
from distillkit.grading.grade import grade, grade_class, restore_checks
from distillkit.leakage import schema_check
from distillkit.masks import MaskRules
from distillkit.schema import ObservationSchema

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS, EXERCISES = ROOT / "solutions", ROOT / "exercises"
NAMES = sorted(p.name for p in SOLUTIONS.glob("*.ipynb"))


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def solution_namespace(name: str) -> dict:
    """The solution notebook's setup and solution cells executed here: the reference functions."""
    namespace: dict = {}
    for cell in read(SOLUTIONS / name).cells:
        if cell.cell_type == "code" and (cell.id == "setup" or cell.id.startswith("solution-")):
            exec(compile(cell.source, f"{name}:{cell.id}", "exec"), namespace)
    return namespace


def fails_with(helper, *functions, hint: str) -> str:
    with pytest.raises(checks.CheckFailed) as err:
        helper(*functions)
    message = str(err.value)
    assert hint in message, message
    return message


# ----------------------------------------------------------------------------------- generator
def test_exercises_are_up_to_date_with_solutions():
    assert NAMES == ["01_schema_manifest.ipynb", "02_gae_timeouts.ipynb", "03_masked_distillation.ipynb",
                     "04_dagger_round.ipynb", "05_student_only.ipynb", "06_design_privileged_teacher.ipynb",
                     "07_mask_analysis.ipynb"]
    assert generate(SOLUTIONS, EXERCISES, check=True) == []


@pytest.mark.parametrize("name", NAMES)
def test_exercise_keeps_check_cells_and_strips_solutions(name):
    solution, exercise = read(SOLUTIONS / name), read(EXERCISES / name)
    ids = [c.id for c in solution.cells]
    assert [c.id for c in exercise.cells] == ids[:1] + [ABOUT_PASS_LINES_ID] + ids[1:]
    assert exercise.cells[1].source == ABOUT_PASS_LINES and "my_copy.ipynb" in ABOUT_PASS_LINES
    del exercise.cells[1]
    for sol, ex in zip(solution.cells, exercise.cells):
        if is_check_cell(sol):
            assert (ex.source, ex.outputs, ex.execution_count) == (sol.source, sol.outputs, sol.execution_count)
            assert ex.outputs[0]["text"].startswith("PASS ")
        elif sol.cell_type == "code":
            assert "BEGIN SOLUTION" not in ex.source and ex.outputs == [] and ex.execution_count is None
            if "### BEGIN SOLUTION" in sol.source:
                assert "# YOUR CODE HERE" in ex.source and "raise NotImplementedError()" in ex.source


def test_generator_check_fails_on_a_hand_edited_exercise(tmp_path):
    exercises = tmp_path / "exercises"
    generate(SOLUTIONS, exercises)
    edited = read(exercises / NAMES[1])
    stub = next(c for c in edited.cells if "raise NotImplementedError()" in c.source)
    stub.source = stub.source.replace("raise NotImplementedError()", "return rewards")
    nbformat.write(edited, exercises / NAMES[1])
    (exercises / "99_orphan.ipynb").write_text((exercises / NAMES[0]).read_text())
    with pytest.raises(SystemExit) as err:
        generate_main(["--check", "--solutions", str(SOLUTIONS), "--exercises", str(exercises)])
    assert f"{NAMES[1]} differs" in str(err.value) and "99_orphan.ipynb has no solution" in str(err.value)
    (exercises / "99_orphan.ipynb").unlink()
    generate_main(["--solutions", str(SOLUTIONS), "--exercises", str(exercises)])     # regenerating repairs it
    generate_main(["--check", "--solutions", str(SOLUTIONS), "--exercises", str(exercises)])


def test_generator_refuses_malformed_solutions():
    solution = read(SOLUTIONS / NAMES[2])
    unclosed = copy.deepcopy(solution)
    cell = next(c for c in unclosed.cells if "### END SOLUTION" in c.source)
    cell.source = cell.source.replace("### END SOLUTION", "")
    with pytest.raises(ExerciseError, match=r"never closed"):
        make_exercise(unclosed, "x.ipynb")
    unrun = copy.deepcopy(solution)
    next(c for c in unrun.cells if is_check_cell(c)).execution_count = None
    with pytest.raises(ExerciseError, match=r"execution_count is null"):
        make_exercise(unrun, "x.ipynb")
    failing = copy.deepcopy(solution)
    next(c for c in failing.cells if is_check_cell(c)).outputs[0]["text"] = "PASS masked_loss: 6/7 checks\n"
    with pytest.raises(ExerciseError, match=r"PASS <name>: k/k checks"):
        make_exercise(failing, "x.ipynb")


# ------------------------------------------------------------------------- check helpers, fast
def test_check_line_is_exactly_one_stable_line(capsys):
    ns = solution_namespace(NAMES[2])
    checks.check_masked_loss(ns["masked_loss"])

    def chatty(pred, target, mask):
        print("debugging output")
        return ns["masked_loss"](pred, target, mask)

    checks.check_masked_loss(chatty)
    assert capsys.readouterr().out == "PASS masked_loss: 7/7 checks\n" * 2


def test_01_known_wrong_variants():
    ns = solution_namespace(NAMES[0])
    Field, ObservationSchema = ns["Field"], ns["ObservationSchema"]
    right = ns["cartpole_manifest"]().fields
    checks.check_manifest(ns["cartpole_manifest"])
    checks.check_privileged_inputs(ns["privileged_inputs"])

    def with_role(name, role):
        return lambda: ObservationSchema("cartpole", tuple(
            Field(f.name, f.shape, role, f.reason, None, f.history_length) if f.name == name else f for f in right))

    fails_with(checks.check_manifest, with_role("joint_vel_rel", "student"), hint="no velocity sensor")
    fails_with(checks.check_manifest, with_role("pole_mass", "critic_only"), hint="hidden physics parameter")
    fails_with(checks.check_manifest, lambda: ObservationSchema("cartpole", (
        Field("joint_pos_rel", (2,), "student", "encoders"), *right[1:])), hint="history_length=3")
    fails_with(checks.check_manifest, lambda: ObservationSchema("cartpole", (right[0], right[2], right[1])),
               hint="a group's field order")
    fails_with(checks.check_privileged_inputs, lambda names, schema: [n for n in names if n in schema.names and
                                                                     schema.field(n).role == "teacher_only"],
               hint="critic_only too")
    fails_with(checks.check_privileged_inputs, lambda names, schema: [n for n in names if n in schema.names and
                                                                     schema.field(n).privileged],
               hint="a typo must never hide a leak")
    fails_with(checks.check_privileged_inputs, lambda names, schema: [
        n for n in schema.names if n in names and schema.field(n).privileged], hint="keep the order of input_names")


def test_02_known_wrong_variants():
    ns = solution_namespace(NAMES[1])
    gae, bootstrap = ns["gae"], ns["bootstrap_timeouts"]
    checks.check_gae(gae)
    checks.check_bootstrap(bootstrap)

    def gae_carrying_across_episodes(rewards, values, dones, last_values, gamma, lam):
        advantages, carried, next_values = torch.zeros_like(rewards), torch.zeros_like(last_values), last_values
        for t in reversed(range(rewards.shape[0])):
            not_done = 1.0 - dones[t].float()
            carried = rewards[t] + gamma * next_values * not_done - values[t] + gamma * lam * carried
            advantages[t], next_values = carried, values[t]
        return advantages, advantages + values

    def gae_forwards(rewards, values, dones, last_values, gamma, lam):
        deltas = rewards + gamma * torch.cat([values[1:], last_values[None]]) * (1 - dones.float()) - values
        return deltas, deltas + values

    fails_with(checks.check_gae, gae_carrying_across_episodes, hint="not only the bootstrap")
    fails_with(checks.check_gae, gae_forwards, hint="go backwards in time")
    fails_with(checks.check_gae, lambda r, v, d, lv, g, lam: gae(r, v, torch.zeros_like(d), lv, g, lam),
               hint="the next observation belongs to a new episode")
    fails_with(checks.check_bootstrap, lambda r, tr, fv, g: r + g * fv, hint="add nothing where truncated is False")

    def in_place(rewards, truncated, final_values, gamma):
        rewards += gamma * final_values * truncated
        return rewards

    fails_with(checks.check_bootstrap, in_place, hint="do not add in place")


def test_03_known_wrong_variants():
    loss = solution_namespace(NAMES[2])["masked_loss"]
    checks.check_masked_loss(loss)
    fails_with(checks.check_masked_loss, lambda p, t, m: ((p - t) ** 2).sum(-1).mean(),
               hint="multiply each step's error by the mask")
    fails_with(checks.check_masked_loss, lambda p, t, m: (((p - t) ** 2).sum(-1) * m).sum() / m.numel(),
               hint="not by T * N")
    fails_with(checks.check_masked_loss, lambda p, t, m: (((p - t) ** 2).mean(-1) * m).sum() / m.sum().clamp_min(1),
               hint="a mean over every element would divide by A too")
    fails_with(checks.check_masked_loss, lambda p, t, m: ((p - t) ** 2).sum(-1)[m].mean(), hint="clamped to at least 1")
    fails_with(checks.check_masked_loss, lambda p, t, m: loss(p.detach(), t, m), hint="no .detach()")


def test_04_known_wrong_variants():
    ns = solution_namespace(NAMES[3])
    mix = ns["mix_actions"]
    checks.check_mix_actions(mix)
    checks.check_dagger_round(ns["dagger_round"])
    fails_with(checks.check_mix_actions, lambda t, s, beta, g: t if float(torch.rand(1, generator=g)) < beta else s,
               hint="not one for the whole batch")
    fails_with(checks.check_mix_actions, lambda t, s, beta, g: torch.where(torch.rand(t.shape, generator=g) < beta, t, s),
               hint="pick the whole row")
    fails_with(checks.check_mix_actions, lambda t, s, beta, g: torch.where((torch.rand(t.shape[0]) < beta)[:, None], t, s),
               hint="from the generator passed in")

    def round_driven_by_teacher(env, teacher, student, dataset, beta, obs, generator, steps=150):
        observations, labels = [], []
        for _ in range(steps):
            label = teacher(obs)
            mix(label, student(obs), beta, generator)
            observations.append(obs)
            labels.append(label)
            obs = env.step(label).obs
        dataset.append(({k: torch.stack([o[k] for o in observations]) for k in obs}, torch.stack(labels)))
        return obs

    def round_labelled_by_executor(env, teacher, student, dataset, beta, obs, generator, steps=150):
        observations, labels = [], []
        for _ in range(steps):
            action = mix(teacher(obs), student(obs), beta, generator)
            observations.append(obs)
            labels.append(action)
            obs = env.step(action).obs
        dataset.append(({k: torch.stack([o[k] for o in observations]) for k in obs}, torch.stack(labels)))
        return obs

    def round_replacing_dataset(env, teacher, student, dataset, beta, obs, generator, steps=150):
        obs = ns["dagger_round"](env, teacher, student, dataset, beta, obs, generator, steps)
        del dataset[:-1]
        return obs

    fails_with(checks.check_dagger_round, round_driven_by_teacher, hint="not with the teacher's label")
    fails_with(checks.check_dagger_round, round_labelled_by_executor, hint="also where the student's action is executed")
    fails_with(checks.check_dagger_round, round_replacing_dataset, hint="never replace earlier rounds")


def test_05_known_wrong_variants():
    ns = solution_namespace(NAMES[4])
    deployable, wrapper = ns["deployable"], ns["StudentOnlyPolicy"]
    checks.check_student_only(deployable, wrapper)

    class Dropping(wrapper):
        def __call__(self, obs):
            return self.student({n: obs[n] for n in self.schema.group("student")})

    class NoReset(wrapper):
        def reset(self, done=None):
            pass

    fails_with(checks.check_student_only, lambda obs, schema: dict(obs), wrapper, hint="schema.group('student')")
    fails_with(checks.check_student_only, deployable, Dropping, hint="never drop it quietly")
    fails_with(checks.check_student_only, deployable, NoReset, hint="forward reset(done)")

    probe = ns["action_change_without_privilege"]
    checks.check_counterfactual_probe(probe)

    def probe_without_perturbation(policy, env, seed=0, warmup=20):
        env.reset(seed=seed)
        for _ in range(warmup):
            env.step(torch.zeros(env.num_envs, env.action_dim))
        return float((policy(env.observe()) - policy(env.observe())).abs().max())

    def probe_stepping_in_between(policy, env, seed=0, warmup=20):
        env.reset(seed=seed)
        for _ in range(warmup):
            env.step(torch.zeros(env.num_envs, env.action_dim))
        before = policy(env.observe())
        env.perturb_privileged(range(env.num_envs), seed=seed + 1)
        after = policy(env.step(torch.zeros(env.num_envs, env.action_dim)).obs)
        return float((after - before).abs().max())

    with torch.no_grad():
        fails_with(checks.check_counterfactual_probe, probe_without_perturbation, hint="change only privileged state")
        fails_with(checks.check_counterfactual_probe, probe_stepping_in_between, hint="without stepping")
        fails_with(checks.check_counterfactual_probe, lambda policy, env, seed=0, warmup=20: probe(policy, env, seed, 0),
                   hint="warmup steps of zero actions")


def test_06_known_wrong_variants():
    ns = solution_namespace(NAMES[5])
    design, student, masks, proof = (ns[n] for n in ("walker_design", "student_design", "mask_design", "prove_student_only"))
    checks.check_design_schema(design)
    checks.check_design_student(design, student)
    checks.check_design_masks(masks)
    checks.check_design_proof(proof)

    def with_role(name: str, role: str):
        schema = design()
        return lambda: ObservationSchema(schema.name, tuple(
            dataclasses.replace(f, role=role, noise=None) if f.name == name else f for f in schema.fields))

    fails_with(checks.check_design_schema, lambda: EnvFactory("walker_rough").schema, hint="in your own words")
    fails_with(checks.check_design_schema, with_role("base_lin_vel", "student"), hint="cannot be a 'student' field")
    fails_with(checks.check_design_schema, with_role("friction", "critic_only"), hint="never reaches the actor")
    fails_with(checks.check_design_schema, with_role("scan_ahead", "teacher_only"), hint="own depth scan")
    leaky = fails_with(checks.check_design_student, with_role("height_scan", "student"), lambda: ("gru", {}),
                       hint="not even through the schema's student group")
    assert "NaN in every privileged field" in leaky, leaky
    fails_with(checks.check_design_student, design, lambda: ("mlp", {}), hint="current step only")
    fails_with(checks.check_design_masks, MaskRules.none, hint="None keeps them")
    fails_with(checks.check_design_masks, lambda: MaskRules(fall_horizon=10, reset_transient=False),
               hint="reset_transient=True")
    fails_with(checks.check_design_proof, lambda student, envs: [schema_check(list(student.input.names), envs.schema)],
               hint="names are not enough")
    fails_with(checks.check_design_proof, lambda student, envs: [{"check": "trust me", "passed": True}],
               hint="distillkit.leakage.schema_check")


def test_07_known_wrong_variants():
    import scipy.stats

    ns = solution_namespace(NAMES[6])
    paired = ns["paired_comparison"]
    checks.check_paired_comparison(paired)

    def normal_interval(treated, control):
        out = paired(treated, control)
        d = [t - c for t, c in zip(treated, control)]
        half = 1.96 * scipy.stats.sem(d)
        return {**out, "ci_low": out["difference"] - half, "ci_high": out["difference"] + half}

    fails_with(checks.check_paired_comparison, normal_interval, hint="a normal 1.96 interval is too narrow")
    fails_with(checks.check_paired_comparison,
               lambda t, c: {**paired(t, c), "p_value": float(scipy.stats.ttest_ind(t, c).pvalue)},
               hint="ttest_ind ignores the pairing")
    fails_with(checks.check_paired_comparison, lambda t, c: paired(c, t), hint="difference = treated - control")
    fails_with(checks.check_paired_comparison, lambda t, c: (1.0, 0.0, 2.0, 0.5), hint="return a dict")


@pytest.mark.slow
def test_07_experiment_passes_the_solution_and_catches_wrong_experiments(capsys):
    ns = solution_namespace(NAMES[6])
    experiment = ns["mask_experiment"]
    checks.check_mask_experiment(experiment)
    assert capsys.readouterr().out.count("PASS ") == 1
    # the rules never reach the distillation: masked and unmasked students are the same
    fails_with(checks.check_mask_experiment, lambda rules, seed: experiment(ns["MaskRules"].none(), seed),
               hint="must use its `rules` argument")
    # made-up numbers outside what a cart-pole return can be
    fails_with(checks.check_mask_experiment, lambda rules, seed: 1000.0, hint="mean held-out return")


def test_a_written_answer_becomes_a_prompt_in_the_exercise():
    solution = read(SOLUTIONS / NAMES[5])
    answer = next(c for c in solution.cells if c.cell_type == "markdown" and "### BEGIN SOLUTION" in c.source)
    exercise = {c.id: c for c in read(EXERCISES / NAMES[5]).cells}
    assert exercise[answer.id].source == "*YOUR ANSWER HERE*"


# --------------------------------------------------------------------- check helpers, closed loop
@pytest.mark.slow
def test_closed_loop_checks_pass_the_solutions_and_catch_wrong_code(capsys):
    # exercise 06 has no closed-loop check: its checks and their wrong variants are test_06_known_wrong_variants
    ns1, ns2, ns3, ns4, ns5 = (solution_namespace(n) for n in NAMES[:5])
    checks.check_manifest_closed_loop(ns1["cartpole_manifest"], ns1["privileged_inputs"])
    checks.check_gae_closed_loop(ns2["gae"], ns2["bootstrap_timeouts"])
    checks.check_masked_loss_closed_loop(ns3["masked_loss"])
    checks.check_dagger_closed_loop(ns4["mix_actions"])
    checks.check_student_only_closed_loop(ns5["deployable"], ns5["StudentOnlyPolicy"])
    assert capsys.readouterr().out.count("PASS ") == 5

    fields = ns1["cartpole_manifest"]().fields
    reordered = lambda: ns1["ObservationSchema"]("cartpole", (fields[0], fields[2], fields[1]))
    fails_with(checks.check_manifest_closed_loop, reordered, ns1["privileged_inputs"], hint="concatenated in that order")
    # inside PPO's rollout: time-outs treated as ends, and an episode's advantage carried into the next
    fails_with(checks.check_gae_closed_loop, ns2["gae"], lambda rewards, truncated, final_values, gamma: rewards,
               hint="V(final observation)")
    fails_with(checks.check_gae_closed_loop,
               lambda r, v, d, last, gamma, lam: ns2["gae"](r, v, torch.zeros_like(d), last, gamma, lam),
               ns2["bootstrap_timeouts"], hint="dones = terminated or truncated")
    # gradient ascent on the imitation error: the student never learns to balance
    fails_with(checks.check_masked_loss_closed_loop, lambda p, t, m: -ns3["masked_loss"](p, t, m),
               hint="the loss must fall")

    # the coin read the wrong way round: the student drives the first round, the teacher all later ones
    inverted = lambda t, s, beta, generator: ns4["mix_actions"](s, t, beta, generator)
    fails_with(checks.check_dagger_closed_loop, inverted, hint="the teacher acts where the coin is below beta")


# ------------------------------------------------------------------------------------- grader
def learner_copy(name: str, *, solved: bool) -> nbformat.NotebookNode:
    """The exercise as a learner would save it: with the solution's code spliced into the
    solution cells (matched by id) when ``solved``, outputs as the exercise ships them."""
    exercise = read(EXERCISES / name)
    if solved:
        solution = {c.id: c for c in read(SOLUTIONS / name).cells}
        for cell in exercise.cells:
            if cell.id.startswith("solution-"):
                cell.source = solution[cell.id].source
    return exercise


def check_cell_list(nb) -> list:
    return [c for c in nb.cells if is_check_cell(c)]


def check_cell(nb, number: int = 0):
    return check_cell_list(nb)[number]


def test_restore_checks_puts_pristine_cells_back_in_place():
    exercise = read(EXERCISES / NAMES[0])
    learner = learner_copy(NAMES[0], solved=True)
    first, second, third = (check_cell(learner, i) for i in range(3))
    first.source = "# NBVAL_CHECK_OUTPUT\nprint('PASS manifest: 6/6 checks')"
    second.metadata["tags"] = []                            # untagged, still found by id
    learner.cells.remove(third)
    solution_cell = next(c for c in learner.cells if c.id == "solution-manifest")
    solution_cell.outputs = [nbformat.v4.new_output("error", ename="NotImplementedError", evalue="", traceback=[])]
    solution_cell.execution_count = 7
    restored, notes = restore_checks(exercise, learner, EXERCISES / NAMES[0])
    assert [c.id for c in restored.cells] == [c.id for c in exercise.cells]
    for got, want in zip(restored.cells, exercise.cells):
        if is_check_cell(want):
            assert (got.source, got.outputs, got.execution_count) == (want.source, want.outputs, want.execution_count)
        elif got.cell_type == "code":
            assert got.outputs == [] and got.execution_count is None
    assert notes == ["check cell(s) ['manifest_closed_loop'] were missing from the submission and were put back"]
    nbformat.validate(restored)


def test_restore_checks_accepts_a_copy_saved_without_cell_ids():
    exercise = read(EXERCISES / NAMES[1])
    old_format = learner_copy(NAMES[1], solved=True)
    old_format.nbformat_minor = 4
    for cell in old_format.cells:
        del cell["id"]
    restored, notes = restore_checks(exercise, old_format, EXERCISES / NAMES[1])
    nbformat.validate(restored)
    assert [c.source for c in restored.cells if is_check_cell(c)] == [c.source for c in exercise.cells if is_check_cell(c)]
    assert any("no cell id in common" in n for n in notes)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_grader_fails_every_stub_and_passes_every_solution(name, tmp_path):
    stub = grade(EXERCISES / name, EXERCISES / name)
    assert stub.max_score >= 2 and stub.score == 0, stub.summary()
    assert all("not written yet (NotImplementedError)" in c.detail for c in stub.checks), stub.summary()
    solved = tmp_path / name
    nbformat.write(learner_copy(name, solved=True), solved)
    result = grade(EXERCISES / name, solved)
    assert result.score == result.max_score and not result.cell_errors, result.summary()


def wrong_manifest_copy() -> nbformat.NotebookNode:
    """Exercise 01 with a manifest that calls the pole mass deployable (a leak)."""
    nb = learner_copy(NAMES[0], solved=True)
    cell = next(c for c in nb.cells if c.id == "solution-manifest")
    cell.source = cell.source.replace('Field("pole_mass", (1,), "teacher_only"', 'Field("pole_mass", (1,), "student"')
    assert '"pole_mass", (1,), "student"' in cell.source
    return nb


def saved_as_run(nb: nbformat.NotebookNode, outputs_of_checks: list[dict]) -> nbformat.NotebookNode:
    for i, cell in enumerate(c for c in nb.cells if is_check_cell(c)):
        cell.outputs = [nbformat.from_dict(outputs_of_checks[i])]
        cell.execution_count = 10 + i
    return nb


@pytest.mark.slow
def test_grader_is_not_fooled_by_learner_file_tricks(tmp_path):
    """Graded as-is, nbval gets three of these wrong; the restored check cells get all right."""
    name = NAMES[0]
    exercise = EXERCISES / name
    pristine = [c.outputs[0] for c in read(exercise).cells if is_check_cell(c)]
    fail_output = {"output_type": "error", "ename": "CheckFailed", "evalue": "FAIL manifest: 3/6 checks passed",
                   "traceback": []}
    stale_error = {"output_type": "error", "ename": "NotImplementedError", "evalue": "", "traceback": []}

    cleared = wrong_manifest_copy()                                   # wrong code, "clear all outputs"
    for cell in check_cell_list(cleared):
        cell.outputs, cell.execution_count = [], None
    saved_fail = saved_as_run(wrong_manifest_copy(), [fail_output] * 3)          # wrong code run and saved
    forged_pass = saved_as_run(wrong_manifest_copy(), [dict(o) for o in pristine])   # a PASS line pasted in
    stale = saved_as_run(learner_copy(name, solved=True), [stale_error] * 3)       # right code, stale errors
    deleted_right = learner_copy(name, solved=True)
    deleted_right.cells.remove(check_cell(deleted_right, 0))
    deleted_wrong = wrong_manifest_copy()
    deleted_wrong.cells.remove(check_cell(deleted_wrong, 0))
    edited = wrong_manifest_copy()
    check_cell(edited, 0).source = "# NBVAL_CHECK_OUTPUT\nprint('PASS manifest: 6/6 checks')"
    check_cell(edited, 2).source = "# NBVAL_CHECK_OUTPUT\nprint('PASS manifest_closed_loop: 3/3 checks')"
    cases = {"cleared": (cleared, False), "saved_fail": (saved_fail, False), "forged_pass": (forged_pass, False),
             "stale_error": (stale, True), "deleted_right": (deleted_right, True),
             "deleted_wrong": (deleted_wrong, False), "edited": (edited, False)}
    for case, (nb, _) in cases.items():
        nbformat.write(nb, tmp_path / f"{case}.ipynb")
    with ThreadPoolExecutor(max_workers=2) as pool:          # each grade is its own nbval process and kernel
        results = dict(zip(cases, pool.map(lambda case: grade(exercise, tmp_path / f"{case}.ipynb"), cases)))
    for case, (nb, deserves_full_marks) in cases.items():
        result = results[case]
        by_name = {c.name: c for c in result.checks}
        if deserves_full_marks:
            assert result.score == result.max_score == 3, (case, result.summary())
        else:
            # the leak is caught by the manifest's role check and by the counterfactual probe
            assert not by_name["manifest"].passed and "hidden physics parameter" in by_name["manifest"].detail, \
                (case, result.summary())
            assert not by_name["manifest_closed_loop"].passed, (case, result.summary())
            assert by_name["privileged_inputs"].passed, (case, result.summary())
        if case.startswith("deleted"):
            assert any("['manifest'] were missing" in n for n in result.notes), result.notes


@pytest.mark.slow
def test_class_mode_writes_one_row_per_student(tmp_path):
    name = NAMES[2]
    folder = tmp_path / "class"
    (folder / "bob").mkdir(parents=True)
    nbformat.write(learner_copy(name, solved=True), folder / "alice.ipynb")
    nbformat.write(learner_copy(name, solved=False), folder / "bob" / name)
    (folder / "carol.ipynb").write_text("{ not a notebook")
    lines = []
    out = grade_class(EXERCISES / name, folder, echo=lines.append)
    rows = {r["student"]: r for r in csv.DictReader(out.open())}
    assert out == folder / "grades_03_masked_distillation.csv"
    assert (rows["alice"]["score"], rows["alice"]["masked_loss"], rows["alice"]["masked_loss_closed_loop"]) == ("2", "1", "1")
    assert (rows["bob"]["score"], rows["bob"]["max_score"]) == ("0", "2")
    assert "not written yet" in rows["bob"]["problem"]
    assert rows["carol"]["score"] == "0" and "not a readable notebook" in rows["carol"]["problem"]
    assert lines[0] == "alice: 2/2" and lines[1].startswith("carol: 0/2 (submission") and lines[2] == "bob: 0/2"
