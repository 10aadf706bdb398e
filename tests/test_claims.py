"""The claims' statistics (CIs, paired tests, verdicts) and the success definition they rest on."""

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from distillkit import claims
from distillkit.artifacts import CHECKPOINTS
from distillkit.claims import comparisons, headline, mean_ci, paired, per_seed, summarise
from distillkit.envs import EnvFactory, make_env
from distillkit.evaluate import Perturbation, run_episodes
from distillkit.train import load_actor


def test_mean_ci_is_students_t_interval_over_seeds():
    r = mean_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    half = stats.t.ppf(0.975, 4) * np.std([1, 2, 3, 4, 5], ddof=1) / np.sqrt(5)
    assert r["mean"] == 3.0 and r["n"] == 5
    assert r["ci95"] == pytest.approx([3.0 - half, 3.0 + half])
    assert np.isnan(mean_ci([7.0])["ci95"][0])          # one seed: no interval, not a zero-width one
    rate = mean_ci([0.0, 0.0, 0.1, 0.9, 1.0], bounds=(0.0, 1.0))
    assert rate["ci95"][0] == 0.0 and rate["ci95"][1] == 1.0 and mean_ci([0.0, 0.0, 0.1, 0.9, 1.0])["ci95"][0] < 0


def test_paired_test_detects_a_consistent_gap_and_not_noise():
    rng = np.random.default_rng(0)
    base = rng.normal(100, 20, size=5)                  # seeds differ a lot ...
    better = base + 10 + rng.normal(0, 1, size=5)       # ... but the gap within each seed is steady
    test = paired(better, base)
    assert test["p_value"] < 0.01 and test["difference_ci95"][0] > 0
    # an unpaired test on the same numbers would not see it: seed-to-seed spread hides the gap
    assert stats.ttest_ind(better, base).pvalue > 0.05
    same = paired(base + rng.normal(0, 1, size=5), base)
    assert same["p_value"] > 0.05 and same["difference_ci95"][0] < 0 < same["difference_ci95"][1]
    with pytest.raises(ValueError, match="one value per training seed"):
        paired([1.0, 2.0], [1.0])


def panel(teacher: float, unprivileged: float, dagger: float, bc: float) -> pd.DataFrame:
    """Synthetic episodes: 5 seeds × 4 episodes per policy, returns around the given means."""
    rng = np.random.default_rng(1)
    rows = []
    for policy, level in (("teacher", teacher), ("unprivileged", unprivileged), ("dagger", dagger), ("bc", bc)):
        for seed in range(5):
            for _ in range(4):
                ret = level + rng.normal(0, 5)
                rows.append({"policy": policy, "perturbation": "nominal", "training_seed": seed, "return": ret,
                             "success": ret > 900, "fell": ret < 500, "tracking_error": 0.1})
    return pd.DataFrame(rows)


def test_verdicts_follow_the_numbers():
    seeds = per_seed(panel(teacher=1800, unprivileged=1200, dagger=1750, bc=600))
    verdict = headline(summarise(seeds), comparisons(seeds), baseline_tuned=True)
    assert verdict["teacher_claim_shown"] and verdict["deployment_claim_shown"]
    assert verdict["targets"]["gap_closure"]["value"] == pytest.approx((1750 - 1200) / 600, abs=0.05)
    assert verdict["targets"]["bc_vs_teacher_return_ratio"]["met"]
    # the same numbers against a baseline that was not tuned: the teacher claim is not shown
    untuned = headline(summarise(seeds), comparisons(seeds), baseline_tuned=False)
    assert not untuned["teacher_claim_shown"] and not untuned["targets"]["baseline_tuned"]["met"]
    assert untuned["deployment_claim_shown"]
    # the flagship as it was: a teacher only 1.065x unprivileged PPO does not show the teacher claim
    seeds = per_seed(panel(teacher=1855, unprivileged=1742, dagger=1799, bc=477))
    verdict = headline(summarise(seeds), comparisons(seeds), baseline_tuned=True)
    assert not verdict["teacher_claim_shown"]
    assert not verdict["targets"]["teacher_vs_unprivileged_return_ratio"]["met"]
    # no gap between teacher and baseline: nothing to close, so the closure is undefined and not met
    seeds = per_seed(panel(teacher=1800, unprivileged=1800, dagger=1805, bc=600))
    verdict = headline(summarise(seeds), comparisons(seeds), baseline_tuned=True)
    assert np.isnan(verdict["values"]["gap_closure"]) and not verdict["targets"]["gap_closure"]["met"]
    assert verdict["targets"]["dagger_vs_teacher_return_ratio"]["met"] and not verdict["deployment_claim_shown"]


def test_the_teacher_verdict_says_whether_the_baseline_was_tuned():
    """The chapter's verdict table has a row for the baseline's tuning; a record measured before that
    check existed shows it as not recorded and not met, never as met."""
    seeds = per_seed(panel(teacher=1800, unprivileged=1200, dagger=1750, bc=600))
    record = {"headline": headline(summarise(seeds), comparisons(seeds), baseline_tuned=True)}
    row = claims.claim_verdict(record, "teacher").loc[claims.BASELINE_TUNED]
    assert (row["measured"], row["met"]) == ("yes", "yes")
    del record["headline"]["targets"]["baseline_tuned"]
    row = claims.claim_verdict(record, "teacher").loc[claims.BASELINE_TUNED]
    assert (row["measured"], row["met"]) == ("not recorded", "no")
    assert claims.claim_verdict(record, "teacher").loc[
        "teacher ÷ unprivileged PPO return, nominal >= 1.25", "measured"] == "1.50"
    record["headline"]["targets"]["gap_closure"]["value"] = None        # NaN as docs/claims.json stores it
    assert claims.claim_verdict(record, "deployment")["measured"].iloc[-1] == "undefined"


@pytest.mark.slow
def test_a_walker_that_walks_at_the_wrong_speed_does_not_succeed():
    """Success is no fall *and* the commanded speed tracked: staying upright is not enough."""
    env = make_env("walker_rough", 1)
    teacher, _, _ = load_actor(CHECKPOINTS / "walker_rough_teacher", env)
    env.close()
    slow = Perturbation("slow command", ranges={"command_vx": [0.4, 0.5]})
    honest = run_episodes(lambda o: teacher(o), EnvFactory("walker_rough"), seed=1_000_000, num_envs=4, perturbation=slow)
    # the same teacher told the command is 1.2 m/s: it walks, too fast for what was asked
    told_fast = lambda o: teacher({**o, "velocity_commands": torch.full_like(o["velocity_commands"], 1.2)})
    hurried = run_episodes(told_fast, EnvFactory("walker_rough"), seed=1_000_000, num_envs=4, perturbation=slow)
    assert honest["success"].mean() >= 0.75 and (honest["tracking_error"] < 0.25).mean() >= 0.75
    upright = hurried[~hurried.fell]
    assert len(upright) >= 2, "the hurried teacher should mostly stay up for this test to mean anything"
    assert (upright["tracking_error"] > 0.25).all() and not upright["success"].any()


def test_the_cartpole_tracks_no_command_so_success_is_not_falling():
    cartpole = run_episodes(lambda obs: torch.zeros(obs["joint_pos_rel"].shape[0], 1), EnvFactory("cartpole"),
                            seed=1_000_000, num_envs=4)
    assert cartpole["tracking_error"].isna().all()
    assert (cartpole["success"] == ~cartpole["fell"]).all()


def test_measured_on_says_when_the_task_has_changed_since_its_claims_were_measured():
    from distillkit.tasks import TASKS

    current = TASKS["walker_rough"].version
    record = {"task": "walker_rough", "task_version": current, "date": "2026-12-03", "machine": "x86_64, 2 cores",
              "command": "python -m distillkit results --section claims --tasks walker_rough"}
    assert "is now version" not in claims.measured_on(record)
    stale = claims.measured_on({**record, "task_version": current - 1})
    assert f"version {current - 1}: measured 2026-12-03" in stale and f"The task is now version {current}" in stale


def test_the_student_types_table_shows_each_ratio_with_its_interval():
    from distillkit.claims import student_types_table

    entry = lambda mean, lo, hi: {"mean": mean, "ci95": [lo, hi], "n": 3}
    section = {"students": {
        "mlp": {"nominal": {"return_ratio": entry(0.976, 0.881, 1.072), "success": entry(0.9375, 0.8, 1.0)},
                "heavy_pole": {"return_ratio": entry(0.5, 0.4, 0.6), "success": entry(0.5, 0.4, 0.6)}},
        "latent": {"nominal": {"return_ratio": entry(0.93, 0.77, 1.08), "success": entry(0.81, 0.7, 0.9)},
                   "heavy_pole": {"return_ratio": entry(0.94, 0.82, 1.06), "success": entry(0.8, 0.7, 0.9)}}}}
    table = student_types_table(section)
    assert list(table.index) == ["mlp", "latent"]
    assert table.loc["mlp", "nominal: ÷ teacher (95 % CI)"] == "0.98 (0.88 to 1.07)"
    assert table.loc["mlp", "heavy_pole: ÷ teacher (95 % CI)"] == "0.50 (0.40 to 0.60)", "each perturbation its own"
    assert table.loc["latent", "success, nominal"] == 0.81


def test_the_versus_action_matching_table_signs_each_difference():
    from distillkit.claims import versus_action_matching_table

    comparison = lambda d, lo, hi, p: {"difference": d, "difference_ci95": [lo, hi], "p_value": p, "n": 3}
    section = {"versus_action_matching": {
        "latent": {"nominal": comparison(0.068, -0.08, 0.22, 0.191), "heavy_pole": comparison(-0.01, -0.06, 0.04, 0.49)}}}
    table = versus_action_matching_table(section)
    assert list(table.index) == ["latent"]
    assert table.loc["latent", "nominal"] == "+0.07 (-0.08 to +0.22), p 0.19"
    assert table.loc["latent", "heavy_pole"] == "-0.01 (-0.06 to +0.04), p 0.49", "each perturbation its own, signed"


def test_the_versus_action_matching_table_names_what_an_old_record_lacks():
    from distillkit.claims import versus_action_matching_table

    with pytest.raises(KeyError, match="no 'versus_action_matching'.*run `python -m distillkit results"):
        versus_action_matching_table({"students": {}, "leakage": {}})
