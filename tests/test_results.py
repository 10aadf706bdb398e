"""The results generator's writing: templates filled completely, sections replaced one by one."""

import json

import numpy as np
import pandas as pd
import pytest

from distillkit.results import SECTIONS, regenerate
from distillkit.results.report import TEMPLATES, render, write_section
from distillkit.results.tuning import TUNINGS


def test_a_template_needs_every_value_and_fills_it_in():
    text = render("collapse", task="walker_rough", table="| a |", measured="Measured today.")
    assert text.startswith("### walker_rough") and "| a |" in text and "$" not in text
    with pytest.raises(KeyError, match="table"):
        render("collapse", task="walker_rough", measured="Measured today.")
    # one template per section, the two tunings sharing one
    sections = {name for name in SECTIONS if name not in TUNINGS}
    assert sorted(p.stem for p in TEMPLATES.glob("*.md")) == sorted([*sections, "tuning", "claims_summary"])


def test_writing_one_section_leaves_the_others_as_they_were(tmp_path):
    doc = tmp_path / "results.md"
    write_section("teachers_cartpole", "old cart-pole", doc)
    write_section("teachers_walker_rough", "walker", doc)
    write_section("teachers_cartpole", "new cart-pole", doc)
    text = doc.read_text()
    assert "new cart-pole" in text and "old cart-pole" not in text and "walker" in text
    assert text.index("teachers_cartpole:begin") < text.index("teachers_walker_rough:begin")


def test_an_unknown_section_is_refused_by_name():
    with pytest.raises(ValueError, match=r"unknown results sections \['teacher'\]"):
        regenerate(["teacher"], ["cartpole"], None, 1)


def test_a_finished_run_stands_in_only_for_the_same_recipe(tmp_path):
    """A run trained without the budget's worlds, PPO settings, curriculum or checkpoint selection is
    refused, not reused."""
    import dataclasses

    from distillkit.artifacts import FORMAT, FORMAT_VERSION, ArtifactError
    from distillkit.atomic import write_json_atomic
    from distillkit.results.budgets import BUDGETS
    from distillkit.results.jobs import TeacherJob

    budget = BUDGETS["walker_rough"]
    out = tmp_path / "teacher_seed0"
    recorded = {"format": FORMAT, "format_version": FORMAT_VERSION,
                "curriculum": {"kind": "terrain_levels"}, "selection": budget.selection.to_dict(),
                "env_steps": budget.env_steps, "num_envs": budget.num_envs, "ppo": budget.config.to_dict()}
    write_json_atomic(out / "manifest.json", recorded)
    assert TeacherJob("walker_rough", "teacher", 0, out, budget).finished()
    assert not TeacherJob("walker_rough", "teacher", 0, out,
                          dataclasses.replace(budget, env_steps=budget.env_steps + 1)).finished()
    with pytest.raises(ArtifactError, match=r"trained with ppo=.*'actor_group': 'teacher'.*this budget trains with"):
        TeacherJob("walker_rough", "unprivileged", 0, out, budget).finished()
    write_json_atomic(out / "manifest.json", {**recorded, "num_envs": budget.num_envs // 2})
    with pytest.raises(ArtifactError, match=rf"trained with num_envs={budget.num_envs // 2}, this budget trains "
                                            rf"with {budget.num_envs}"):
        TeacherJob("walker_rough", "teacher", 0, out, budget).finished()
    write_json_atomic(out / "manifest.json", {**recorded, "selection": None})
    with pytest.raises(ArtifactError, match="its checkpoint was chosen by selection=None"):
        TeacherJob("walker_rough", "teacher", 0, out, budget).finished()
    write_json_atomic(out / "manifest.json", {**recorded, "curriculum": None})
    with pytest.raises(ArtifactError, match="trained without a curriculum"):
        TeacherJob("walker_rough", "teacher", 0, out, budget).finished()


def test_a_finished_student_stands_in_only_for_the_same_recipe_and_teacher(tmp_path):
    """A student distilled under another DAgger budget, or from a teacher whose weights have changed since,
    is refused, not reused."""
    import dataclasses

    from distillkit.artifacts import FORMAT, FORMAT_VERSION, ArtifactError
    from distillkit.atomic import write_json_atomic
    from distillkit.results.budgets import STUDENT_BUDGETS
    from distillkit.results.jobs import StudentJob

    budget = STUDENT_BUDGETS["walker_rough"]
    out = tmp_path / "first_seed0"
    job = StudentJob("walker_rough", tmp_path / "teacher", out, "first", 0, budget)
    recorded = {"format": FORMAT, "format_version": FORMAT_VERSION, "architecture": budget.architecture,
                "num_envs": budget.num_envs, "dagger": {"rounds": budget.rounds, "steps_per_round": budget.steps_per_round,
                                                        "schedule": "first", "grad_steps": budget.grad_steps, "lr": 1e-3,
                                                        "lr_final": budget.lr_final},
                "teacher": {"fault_rate": 0.0, "files": {"actor": {"sha256": "aa"}}},
                "selection": budget.selection.to_dict() if budget.selection else None}
    write_json_atomic(out / "manifest.json", recorded)
    write_json_atomic(tmp_path / "teacher" / "manifest.json", {"format": FORMAT, "format_version": FORMAT_VERSION,
                                                               "files": {"actor": {"sha256": "aa"}}})
    assert not job.finished(), "trained, not yet evaluated"
    (out / "evaluation").mkdir()
    (out / "evaluation" / "summary.csv").write_text("perturbation\nnominal\n")
    assert not job.finished(), "stopped before the evaluation's last file"
    write_json_atomic(out / "evaluation" / "evaluation.json", {"summary": []})
    assert job.finished()
    longer = dataclasses.replace(job, budget=dataclasses.replace(budget, rounds=budget.rounds + 1))
    with pytest.raises(ArtifactError, match=rf"first_seed0: distilled with .*'rounds': {budget.rounds},.*"
                                            rf"this budget distils with .*'rounds': {budget.rounds + 1},"):
        longer.finished()
    faulty = dataclasses.replace(job, fault_rate=0.5)            # the masking lesson's imperfect teacher
    with pytest.raises(ArtifactError, match=r"'fault_rate': 0\.0, .*this budget distils with .*'fault_rate': 0\.5, "):
        faulty.finished()
    other_rate = 5e-4 if budget.lr_final != 5e-4 else 2e-4
    other_schedule = dataclasses.replace(job, budget=dataclasses.replace(budget, lr_final=other_rate))
    with pytest.raises(ArtifactError, match=rf"'lr_final': {budget.lr_final}.*this budget distils with .*"
                                            rf"'lr_final': {other_rate}"):
        other_schedule.finished()
    last_round = dataclasses.replace(job, budget=dataclasses.replace(budget, selection=None))
    with pytest.raises(ArtifactError, match=r"'selection': \{'every'.*this budget distils with .*'selection': None"):
        last_round.finished()
    write_json_atomic(tmp_path / "teacher" / "manifest.json", {"format": FORMAT, "format_version": FORMAT_VERSION,
                                                               "files": {"actor": {"sha256": "bb"}}})
    with pytest.raises(ArtifactError, match=r"first_seed0: distilled from other weights than .*teacher holds now"):
        job.finished()


def test_a_cached_panel_names_the_weights_it_scored(tmp_path):
    """The claims' cached unprivileged panel is keyed by the evaluated actor's digest: a run that chose
    another checkpoint (or was retrained) is scored again, not read from a stale cache."""
    from distillkit.artifacts import FORMAT, FORMAT_VERSION
    from distillkit.atomic import write_json_atomic
    from distillkit.results.claims import actor_digest

    header = {"format": FORMAT, "format_version": FORMAT_VERSION}
    files = {"actor": {"file": "actor-aaa.safetensors", "sha256": "a" * 64},
             "selected_actor": {"file": "selected_actor-bbb.safetensors", "sha256": "b" * 64}}
    write_json_atomic(tmp_path / "manifest.json", {**header, "files": files})
    assert actor_digest(tmp_path) == "a" * 12, "no selection: the last actor"
    write_json_atomic(tmp_path / "manifest.json", {**header, "files": files, "selected_env_steps": 100})
    assert actor_digest(tmp_path) == "b" * 12


def test_training_minutes_add_up_each_iteration_of_the_log(tmp_path):
    """Iterations of 100 env steps at 10, 20 and 5 steps/s took 10 + 5 + 20 s; a log read as a rate
    (steps / total steps per s) would give another number."""
    from distillkit.results.jobs import training_minutes
    from distillkit.results.teachers import timing_text

    pd.DataFrame({"env_steps": [100, 200, 300], "env_steps_per_s": [10.0, 20.0, 5.0]}).to_csv(
        tmp_path / "metrics.csv", index=False)
    assert training_minutes(tmp_path) == pytest.approx(35 / 60)
    per_run = pd.DataFrame({"variant": ["teacher", "teacher", "unprivileged"], "minutes": [30.0, 34.0, 40.0]})
    assert timing_text(per_run) == "teacher 32 min (slowest 34); unprivileged 40 min (slowest 40)"


def test_the_shipped_teacher_is_the_best_on_validation_success_then_return():
    """Seed 1 has the best return but seed 2 the best success: success decides; a tie on success goes to
    the higher return."""
    from distillkit.results.ship import best_seed

    scores = {0: {"success": 0.80, "return": 1900.0}, 1: {"success": 0.90, "return": 2300.0},
              2: {"success": 0.95, "return": 2100.0}}
    assert best_seed(scores) == 2
    assert best_seed({**scores, 3: {"success": 0.95, "return": 2200.0}}) == 3


def test_only_finished_runs_ship(tmp_path):
    """A run folder that is missing, or whose manifest records fewer env steps than the budget (training
    was interrupted and will resume), is not shippable; a finished one is."""
    import json
    from pathlib import Path

    from distillkit.artifacts import FORMAT, FORMAT_VERSION
    from distillkit.results.ship import unfinished_runs

    def run(name: str, env_steps: int) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "manifest.json").write_text(json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION,
                                                          "env_steps": env_steps}))
        return folder

    finished, interrupted, missing = run("a", 1000), run("b", 400), tmp_path / "c"
    assert unfinished_runs([finished], 1000) == []
    assert unfinished_runs([finished, interrupted, missing], 1000) == [str(interrupted), str(missing)]


@pytest.mark.slow
def test_teacher_tuning_section_trains_scores_and_writes_its_rows_end_to_end(tmp_path, monkeypatch):
    """The teacher's sweep on the quick task at a tiny budget (not a result): the teacher's own runs and a
    row's runs trained where the section says, scored on validation seeds, the table, the verdict and the
    baseline of the same seeds beside it, and the record for docs/claims.json."""
    import dataclasses

    import distillkit.results.report as report
    import distillkit.results.tuning as section
    from distillkit.evaluate import validation_seeds
    from distillkit.results import budgets

    monkeypatch.setitem(budgets.BUDGETS, "cartpole", dataclasses.replace(budgets.BUDGETS["cartpole"], env_steps=6_000,
                                                                         eval_seeds=1, eval_worlds=8))
    monkeypatch.setitem(budgets.TEACHER_SWEEP, "cartpole", {"entropy_coef=0": {"entropy_coef": 0.0}})
    monkeypatch.setattr(section, "TUNING_SEEDS", (0,))
    monkeypatch.setattr(section, "TRAINING_SEEDS", {"cartpole": (0, 1)})
    monkeypatch.setattr(section, "winner", lambda table: "entropy_coef=0")   # so that seed 1 must confirm it
    doc, recorded = tmp_path / "results.md", {}
    monkeypatch.setattr(section, "write_section", lambda name, body: report.write_section(name, body, doc=doc))
    monkeypatch.setattr(section, "update_claims_json", lambda task, key, value: recorded.update({key: value}))
    section.run("teacher_tuning", ["cartpole"], tmp_path / "runs", 1)

    for folder in ("teachers/cartpole/teacher_seed0", "teachers/cartpole/unprivileged_seed0",
                   "teacher_tuning/cartpole/entropy_coef=0_seed0", "teachers/cartpole/teacher_seed1",
                   "teacher_tuning/cartpole/entropy_coef=0_seed1"):
        assert (tmp_path / "runs" / folder / "manifest.json").exists(), folder
    text = doc.read_text()
    assert text.count("<!-- teacher_tuning_cartpole:begin -->") == 1
    assert "#### Tuning the privileged teacher (cartpole)" in text
    assert "| no change | 1 |" in text and "| entropy_coef=0 | 1 |" in text
    assert "The unprivileged baselines of the same training seeds" in text
    record = recorded["teacher_tuning"]
    assert record["policy"] == "teacher" and set(record["rows"]) == {"no change", "entropy_coef=0"}
    assert record["validation_seeds"] == validation_seeds(1, first=section.FIRST_TUNING_SEED)
    assert record["best_settings"] == record["rows"][record["best"]]["settings"]
    assert set(record["confirmation"]["per_seed"]["entropy_coef=0"]["success"]) == {0, 1}
    assert "Two tuning seeds only screen: entropy_coef=0 scored best there, so it and no change (the row it must beat" in text
    assert "| 1 |" in text and "on the means over all 2 training seeds (success" in text


@pytest.mark.slow
def test_student_types_section_runs_every_architecture_end_to_end(tmp_path, monkeypatch):
    """The section on the quick task at a tiny budget (not a result): encoder teachers, every
    architecture by DAgger, evaluations with leakage checks and export, and the probe table."""
    import dataclasses

    import distillkit.results.report as report
    import distillkit.results.student_types as section
    from distillkit.results import budgets
    from distillkit.students import ARCHITECTURES

    monkeypatch.setitem(budgets.BUDGETS, "cartpole", dataclasses.replace(budgets.BUDGETS["cartpole"], env_steps=20_000))
    tiny = dataclasses.replace(budgets.STUDENT_BUDGETS["cartpole"], rounds=2, steps_per_round=60, grad_steps=40,
                               eval_seeds=1, num_envs=8, curve_worlds=8, eval_worlds=8)
    monkeypatch.setattr(section, "STUDENT_BUDGETS", {"cartpole": tiny})
    monkeypatch.setattr(section, "STUDENT_TYPE_SEEDS", {"cartpole": (0, 1)})
    monkeypatch.setattr(section, "PROBE_STEPS", {"cartpole": 60})
    doc, recorded = tmp_path / "results.md", {}
    monkeypatch.setattr(section, "write_section", lambda name, body: report.write_section(name, body, doc=doc))
    monkeypatch.setattr(section, "update_claims_json", lambda task, key, value: recorded.update({key: value}))
    section.run(["cartpole"], tmp_path / "runs", 1)

    text = doc.read_text()
    for architecture in ARCHITECTURES:
        assert f"| {architecture} |" in text
    assert "| student | joint_vel_rel | pole_mass | latent |" in text
    students_table = text.split("Each student type against action matching")[0]
    rows = {line.split(" | ")[0].lstrip("| "): line for line in students_table.splitlines() if line.startswith("| ")}
    assert all(rows[a].endswith("| 2 of 2 |") for a in ARCHITECTURES), "every type exports, in both seeds"
    record = recorded["student_types"]
    assert set(record["students"]) == set(ARCHITECTURES) and record["leakage_passed"]
    assert set(record["probe_r2"]["gru"]) == {"joint_vel_rel", "pole_mass", "latent"}
    # every other type against action matching, paired by seed: its difference is the difference of the means
    versus = record["versus_action_matching"]
    assert set(versus) == set(ARCHITECTURES) - {"mlp"}
    for architecture, by_perturbation in versus.items():
        assert f"| {architecture} | " in text.split("Each student type against action matching")[1]
        for perturbation, comparison in by_perturbation.items():
            means = {a: record["students"][a][perturbation]["return_ratio"]["mean"] for a in (architecture, "mlp")}
            assert comparison["n"] == 2
            assert comparison["difference"] == pytest.approx(means[architecture] - means["mlp"])
    p_values = [c["p_value"] for by_perturbation in versus.values() for c in by_perturbation.values()]
    assert min(p_values) <= record["smallest_adjusted_p"] <= 1, "adjusting for many comparisons only raises a p"
    assert f"of these {len(p_values)} comparisons have p < 0.05" in text


def test_the_encoder_teacher_is_the_claims_teacher_where_that_has_an_encoder(monkeypatch):
    """The student types learn from a teacher with a privileged encoder: the claims' teacher itself where
    its settings have one, else a run of its own with the claims teacher's settings plus the encoder. The
    unprivileged baseline never has one (it reads no privileged field)."""
    import dataclasses
    from pathlib import Path

    from distillkit.results.budgets import BUDGETS, ENCODER_LATENT, encoder_teacher
    from distillkit.results.jobs import TeacherJob

    plain = dataclasses.replace(BUDGETS["cartpole"], config=dataclasses.replace(BUDGETS["cartpole"].config,
                                                                                encoder_latent=0))
    monkeypatch.setitem(BUDGETS, "cartpole", plain)
    variant, budget = encoder_teacher("cartpole")
    assert variant == "encoder_teacher" and budget.config.encoder_latent == ENCODER_LATENT
    assert dataclasses.replace(budget.config, encoder_latent=0) == plain.config
    with_encoder = dataclasses.replace(plain, config=dataclasses.replace(plain.config, encoder_latent=4))
    monkeypatch.setitem(BUDGETS, "cartpole", with_encoder)
    assert encoder_teacher("cartpole") == ("teacher", with_encoder)
    baseline = TeacherJob("cartpole", "unprivileged", 0, Path("unused"), with_encoder).config()
    assert baseline.encoder_latent == 0 and baseline.actor_group == "student"


def test_baseline_tuning_rows_and_the_verdict_on_the_baseline_the_claims_use(tmp_path, monkeypatch):
    """Every sweep row trains the baseline with its change to the task's settings (the row the claims
    use is the teachers section's own run); the verdict names the winner and flags a baseline that is
    not the tuned one."""
    from distillkit.ppo import PPOConfig
    from distillkit.results.budgets import BASELINE_SETTINGS, BASELINE_SWEEP, BUDGETS, variant_budget
    from distillkit.results.tuning import NO_CHANGE, TUNINGS

    task, tuning = "walker_rough", TUNINGS["baseline_tuning"]
    monkeypatch.setitem(BASELINE_SETTINGS, task, {})          # no change is the baseline's row
    reference = tuning.job(tmp_path, task, NO_CHANGE, {}, 0)
    assert reference.out == tmp_path / "teachers" / task / "unprivileged_seed0"
    assert reference.config() == PPOConfig(**{**BUDGETS[task].config.to_dict(), "actor_group": "student",
                                              "encoder_latent": 0})
    name, changes = next(iter(BASELINE_SWEEP[task].items()))
    job = tuning.job(tmp_path, task, name, changes, 1)
    assert job.out == tmp_path / "baseline_tuning" / task / f"{name}_seed1"
    config = job.config()
    assert config.actor_group == "student" and all(getattr(config, k) == v for k, v in changes.items())
    assert job.budget.env_steps == variant_budget(task, "unprivileged").env_steps
    # when another row is the baseline's, no change trains under runs/baseline_tuning/
    monkeypatch.setitem(BASELINE_SETTINGS, task, changes)
    assert tuning.job(tmp_path, task, name, changes, 1).out == tmp_path / "teachers" / task / "unprivileged_seed1"
    assert tuning.job(tmp_path, task, NO_CHANGE, {}, 0).out == \
        tmp_path / "baseline_tuning" / task / "no_change_seed0"
    monkeypatch.setitem(BASELINE_SETTINGS, task, {})

    rows = list(tuning.settings(task))
    table = pd.DataFrame({"success": [0.5, 0.7] + [0.1] * (len(rows) - 2), "return": [900.0] * len(rows)},
                         index=rows)
    confirmed = confirmation(NO_CHANGE, name, incumbent=[0.5, 0.6, 0.5], challenger=[0.7, 0.8, 0.6])
    assert "The baseline is not the tuned one" in tuning.verdict(task, table, confirmed)
    assert f"{changes}" in tuning.verdict(task, table, confirmed)
    table.loc[NO_CHANGE, "success"] = 0.9
    monkeypatch.setitem(BASELINE_SETTINGS, task, {"entropy_coef": 0.123})
    with pytest.raises(ValueError, match=r"baseline's changes for 'walker_rough', \{'entropy_coef': 0.123\} .* are no row"):
        tuning.verdict(task, table, None)
    monkeypatch.setitem(BASELINE_SETTINGS, task, {})
    assert tuning.verdict(task, table, None).startswith(f"The baseline of the teachers and claims sections trains "
                                                        f"with **{NO_CHANGE}**")


def test_the_baseline_gets_the_teachers_env_steps_as_trained_plus_the_students(monkeypatch):
    """PPO collects whole iterations, so a teacher's budget rounds up; the baseline gets what the teacher
    trained plus the student's env steps, whatever the teacher's batch."""
    from distillkit.results.budgets import STUDENT_BUDGETS, TEACHER_SETTINGS, trained_env_steps, variant_budget

    task, b = "walker_rough", STUDENT_BUDGETS["walker_rough"]
    for steps_per_env, iterations in ((24, 1303), (48, 652)):
        monkeypatch.setitem(TEACHER_SETTINGS, task, {"steps_per_env": steps_per_env})
        teacher = variant_budget(task, "teacher")
        assert trained_env_steps(teacher) == iterations * teacher.num_envs * steps_per_env > teacher.env_steps
        assert variant_budget(task, "unprivileged").env_steps == \
            trained_env_steps(teacher) + b.rounds * b.steps_per_round * b.num_envs


def test_teacher_tuning_trains_the_teacher_and_offers_the_baseline_every_row(tmp_path, monkeypatch):
    """The teacher's sweep trains the privileged teacher (its encoder, its budget); the row its settings
    name is the teachers section's runs, which train with those settings; every row it tries is a row of
    the baseline's sweep too, on top of the baseline's own settings; a better row than the teacher's is
    flagged."""
    from distillkit.results.budgets import (
        BASELINE_SETTINGS,
        BASELINE_SWEEP,
        BUDGETS,
        TEACHER_SETTINGS,
        TEACHER_SWEEP,
        variant_budget,
    )
    from distillkit.results.tuning import NO_CHANGE, TUNINGS

    task, tuning = "walker_rough", TUNINGS["teacher_tuning"]
    monkeypatch.setitem(TEACHER_SETTINGS, task, {})           # no change is the teacher's row
    assert tuning.job(tmp_path, task, NO_CHANGE, {}, 1).out == tmp_path / "teachers" / task / "teacher_seed1"
    name, changes = next(iter(TEACHER_SWEEP[task].items()))
    job = tuning.job(tmp_path, task, name, changes, 0)
    assert job.out == tmp_path / "teacher_tuning" / task / f"{name}_seed0"
    assert job.config().to_dict() == {**BUDGETS[task].config.to_dict(), **changes}     # teacher group, encoder
    assert job.budget.env_steps == BUDGETS[task].env_steps
    for task_rows in TEACHER_SWEEP:      # every teacher row, on top of the baseline's own settings
        baseline_rows = list(BASELINE_SWEEP[task_rows].values())
        own = BASELINE_SETTINGS.get(task_rows, {})
        assert all({**own, **changes} in baseline_rows for changes in TEACHER_SWEEP[task_rows].values())
    # once the tuning chose a row, the teachers section's runs train with it and no change moves aside
    monkeypatch.setitem(TEACHER_SETTINGS, task, changes)
    assert variant_budget(task, "teacher").config.to_dict() == {**BUDGETS[task].config.to_dict(), **changes}
    assert tuning.job(tmp_path, task, name, changes, 0).out == tmp_path / "teachers" / task / "teacher_seed0"
    assert tuning.job(tmp_path, task, NO_CHANGE, {}, 0).out == tmp_path / "teacher_tuning" / task / "no_change_seed0"
    monkeypatch.setitem(TEACHER_SETTINGS, task, {})

    rows = list(tuning.settings(task))
    table = pd.DataFrame({"success": [0.8] + [0.9] * (len(rows) - 1), "return": [900.0] * len(rows)}, index=rows)
    confirmed = confirmation(NO_CHANGE, rows[1], incumbent=[0.8, 0.85, 0.8], challenger=[0.9, 0.9, 0.85])
    assert tuning.verdict(task, table, confirmed).startswith("**The teacher is not the tuned one:** it trains with "
                                                             f"{NO_CHANGE}, but {rows[1]} scored best")
    table.loc[NO_CHANGE, "success"] = 0.95
    assert tuning.verdict(task, table, None).startswith("The teacher of the teachers and claims sections trains with")


def confirmation(incumbent_row: str, challenger_row: str, *, incumbent: list[float], challenger: list[float]):
    """A Confirmation of ``challenger_row`` against ``incumbent_row`` with these per-seed successes
    (returns all 900)."""
    from distillkit.results.tuning import Confirmation

    rows = [{"setting": row, "seed": seed, "return": 900.0, "success": value, "fall_rate": 1 - value}
            for row, values in ((incumbent_row, incumbent), (challenger_row, challenger))
            for seed, value in enumerate(values)]
    frame = pd.DataFrame(rows).pivot(index="seed", columns="setting", values=["return", "success", "fall_rate"])
    return Confirmation((incumbent_row, challenger_row), frame.swaplevel(axis=1))


def test_a_screening_winner_must_win_again_on_every_training_seed(tmp_path, monkeypatch):
    """Two tuning seeds only screen: a row that beat the policy's own is the tuned one only if it wins on
    every training seed too (mean success, then return). Overturned, the verdict and the record keep the
    policy's own row; unconfirmed, there is no verdict; the paired test is scipy's. A policy whose own row
    is a change and the screening's best must beat no change over every training seed all the same."""
    from scipy import stats

    from distillkit.results.budgets import TEACHER_SETTINGS, TEACHER_SWEEP
    from distillkit.results.tuning import NO_CHANGE, TUNINGS, record, summarise, tuned_row

    task, tuning = "walker_rough", TUNINGS["teacher_tuning"]
    monkeypatch.setitem(TEACHER_SETTINGS, task, {})           # no change is the teacher's row
    row = next(iter(TEACHER_SWEEP[task]))
    table = summarise([{"setting": name, "seed": seed, "return": 900.0, "success": value, "fall_rate": 0.1}
                       for name in tuning.settings(task) for seed, value in enumerate([0.8, 0.9] if name == row else
                                                                                      [0.7, 0.8])])
    assert tuning.contenders(task, table) == (NO_CHANGE, row)
    with pytest.raises(ValueError, match=f"{row} must beat {NO_CHANGE} over every training seed"):
        tuning.verdict(task, table, None)
    overturned = confirmation(NO_CHANGE, row, incumbent=[0.7, 0.8, 0.95, 0.9, 0.9], challenger=[0.8, 0.9, 0.7, 0.8, 0.8])
    assert not overturned.challenger_wins()
    verdict = tuning.verdict(task, table, overturned)
    assert verdict.startswith(f"The teacher of the teachers and claims sections trains with **{NO_CHANGE}**: {row} "
                              "scored best on the tuning seeds, but not on the means over all 5 training seeds (success 0.800 "
                              "against 0.850")
    assert f"p = {stats.ttest_rel([0.8, 0.9, 0.7, 0.8, 0.8], [0.7, 0.8, 0.95, 0.9, 0.9]).pvalue:.2f}" in verdict
    assert tuned_row(table, overturned) == NO_CHANGE
    saved = record(tuning, task, table, overturned, [2_000_100], "a command")
    assert saved["best"] == NO_CHANGE and saved["best_settings"] == {} and saved["screening_best"] == row
    assert saved["confirmation"]["per_seed"][row]["success"][2] == 0.7
    confirmed = confirmation(NO_CHANGE, row, incumbent=[0.7, 0.8, 0.8, 0.8, 0.8], challenger=[0.8, 0.9, 0.85, 0.8, 0.8])
    assert confirmed.challenger_wins() and tuned_row(table, confirmed) == row
    assert record(tuning, task, table, confirmed, [2_000_100], "a command")["best_settings"] == TEACHER_SWEEP[task][row]
    assert "| 2 | 900.0 | 0.800 | 900.0 | 0.850 |" in confirmed.markdown()

    # the teacher trains with the change that won the screening: it must still beat no change over every seed
    monkeypatch.setitem(TEACHER_SETTINGS, task, TEACHER_SWEEP[task][row])
    assert tuning.contenders(task, table) == (NO_CHANGE, row)
    assert tuning.verdict(task, table, confirmed) == (
        f"The teacher of the teachers and claims sections trains with **{row}**: it scored best here and beat "
        f"{NO_CHANGE} again on the means over all 5 training seeds ({confirmed.summary()}).")
    assert tuning.verdict(task, table, overturned).startswith(
        f"**The teacher is not the tuned one:** it trains with {row}, which scored best here, but {NO_CHANGE} beat "
        "it on the means over all 5 training seeds")
    assert tuned_row(table, overturned) == NO_CHANGE
    table.loc[row, "success"] = 0.1                             # the screening's best is no change now
    assert tuning.contenders(task, table) == (row, NO_CHANGE)


def test_the_claims_know_whether_their_baseline_is_the_tuned_one(tmp_path):
    """The claims section reads the baseline's settings from its runs and compares them with the best
    row of the tuning record: the teacher's settings after the tuning chose another row are not tuned,
    no tuning record (or one without a row the sweep has now) is not tuned, and seeds trained with
    different settings are refused."""
    import json

    from distillkit.artifacts import FORMAT, FORMAT_VERSION
    from distillkit.results.budgets import BASELINE_SWEEP, BUDGETS, TRAINING_SEEDS
    from distillkit.results.claims import baseline_settings, baseline_tuned

    task = "walker_rough"
    name, changes = next(iter(BASELINE_SWEEP[task].items()))
    rows = ["no change", *BASELINE_SWEEP[task]]
    table = pd.DataFrame({"seeds": 2, "return": 900.0, "return_std": 10.0, "success": [0.5] * len(rows),
                          "fall_rate": 0.2}, index=rows)
    table.loc[name, "success"] = 0.8
    from distillkit.results.tuning import TUNINGS, record

    tuning = record(TUNINGS["baseline_tuning"], task, table, None, [2_000_100], "a command")
    assert tuning["best"] == name and tuning["best_settings"] == changes
    teachers = BUDGETS[task].config.to_dict()
    assert baseline_tuned(task, {**teachers, **changes}, tuning)
    assert not baseline_tuned(task, teachers, tuning)
    assert not baseline_tuned(task, {**teachers, **changes}, None)
    assert not baseline_tuned("cartpole", BUDGETS["cartpole"].config.to_dict(), tuning)     # no sweep
    # a sweep run on another version of the task (or one that does not say which) tunes nothing here
    older = {**tuning, "task_version": tuning["task_version"] - 1}
    assert not baseline_tuned(task, {**teachers, **changes}, older)
    unversioned = {key: value for key, value in tuning.items() if key != "task_version"}
    assert not baseline_tuned(task, {**teachers, **changes}, unversioned)
    # a row added to the sweep after the record was measured may be the better one: not tuned until it is
    added = list(BASELINE_SWEEP[task])[-1]
    partial = {**tuning, "rows": {row: values for row, values in tuning["rows"].items() if row != added}}
    assert not baseline_tuned(task, {**teachers, **changes}, partial)

    def write(seed: int, ppo: dict) -> None:
        folder = tmp_path / "teachers" / task / f"unprivileged_seed{seed}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "manifest.json").write_text(json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION,
                                                          "ppo": ppo}))

    for seed in TRAINING_SEEDS[task]:
        write(seed, {**teachers, **changes})
    assert baseline_settings(task, tmp_path) == {**teachers, **changes}
    write(TRAINING_SEEDS[task][-1], teachers)
    with pytest.raises(ValueError, match=rf"seeds \[{TRAINING_SEEDS[task][-1]}\] trained with other PPO settings"):
        baseline_settings(task, tmp_path)


def test_each_tuning_sets_its_best_row_beside_the_claims_other_policy():
    """The section's reference line: the baseline's return ratio and success gap to the teacher, the numbers
    the teacher claim's targets are about, with the best row on its own side of the claim in either
    sweep; a wrong row, side or sign would show."""
    from distillkit.results.tuning import TUNINGS, beside_the_other_policy, summarise

    rows = [{"setting": name, "seed": seed, "return": ret, "success": succ, "fall_rate": 1 - succ}
            for name, seed, ret, succ in [("a", 0, 1000.0, 0.6), ("a", 1, 1200.0, 0.8),
                                          ("b", 0, 1500.0, 0.9), ("b", 1, 1700.0, 0.7)]]
    table = summarise(rows)
    assert list(table.index) == ["a", "b"] and table.loc["b", "return"] == 1600.0
    teacher = summarise([{"setting": "teacher", "seed": s, "return": 2000.0, "success": 0.95, "fall_rate": 0.05}
                         for s in (0, 1)]).loc["teacher"]
    line = beside_the_other_policy(TUNINGS["baseline_tuning"], table, teacher)
    assert line.startswith("The privileged teachers of the same training seeds")
    assert "the baseline reaches 0.80 of the teacher's return" in line          # row b: 1600 / 2000
    assert "its success is 0.15 below the teacher's" in line                  # 0.95 - 0.80
    baseline = summarise([{"setting": "unprivileged", "seed": s, "return": 800.0, "success": 0.4, "fall_rate": 0.5}
                          for s in (0, 1)]).loc["unprivileged"]
    line = beside_the_other_policy(TUNINGS["teacher_tuning"], table, baseline)
    assert line.startswith("The unprivileged baselines of the same training seeds")
    assert "the baseline reaches 0.50 of the teacher's return" in line          # 800 / row b's 1600
    assert "its success is 0.40 below the teacher's" in line                  # 0.80 - 0.40


def test_the_teacher_curves_show_validation_success_where_runs_chose_on_validation(tmp_path):
    """Runs that chose their checkpoints on validation seeds (as the flagship's do) get a second panel: that
    success against env steps (mean over seeds); the same runs without validations (as trained without
    checkpoint selection, like the quick task's) get only their training return."""
    import matplotlib.image

    from distillkit.artifacts import FORMAT, FORMAT_VERSION
    from distillkit.results.figures import plot_curves, validation_curves

    steps = np.arange(1, 11) * 1_000_000
    for runs, validated in ((tmp_path / "validated", True), (tmp_path / "plain", False)):
        for variant in ("teacher", "unprivileged"):
            for seed in range(5):
                folder = runs / "walker_rough" / f"{variant}_seed{seed}"
                folder.mkdir(parents=True)
                pd.DataFrame({"env_steps": steps, "episode_return": np.linspace(100, 1000 + seed, 10)}).to_csv(
                    folder / "metrics.csv", index=False)
                manifest = {"format": FORMAT, "format_version": FORMAT_VERSION}
                if validated:
                    manifest["validations"] = [{"env_steps": int(s), "success": min(1.0, s / 8e6 - 0.01 * seed)}
                                               for s in steps[3:]]
                (folder / "manifest.json").write_text(json.dumps(manifest))
    curves = validation_curves(tmp_path / "validated", "walker_rough", "teacher")
    assert curves.shape == (7, 5) and curves.index.min() == 4_000_000 and curves.to_numpy().max() <= 1
    assert plot_curves(tmp_path / "validated", "walker_rough", ["teacher", "unprivileged"], tmp_path / "walker.png")
    wide = matplotlib.image.imread(tmp_path / "walker.png").shape[1]
    assert validation_curves(tmp_path / "plain", "walker_rough", "teacher") is None
    assert not plot_curves(tmp_path / "plain", "walker_rough", ["teacher", "unprivileged"], tmp_path / "plain.png")
    assert matplotlib.image.imread(tmp_path / "plain.png").shape[1] < 0.6 * wide
