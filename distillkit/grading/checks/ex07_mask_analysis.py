"""Exercise 07 (analysis): what a mask is worth, measured over seeds with a paired test."""

from __future__ import annotations

import math
from collections.abc import Callable

from distillkit.grading.checks.common import Checks
from distillkit.grading.record import graded
from distillkit.masks import MaskRules

#: The seeds the check runs the learner's experiment with (the exercise's own table uses 0-4).
EXPERIMENT_SEEDS = (0, 1)
#: What the answers must show, from the reference solution's BC students of the faulty cart-pole
#: teacher (3 rounds x 150 steps x 32 worlds, 150 gradient steps a round; the solution notebook's
#: stored table): unmasked students balance poorly, students with the default rules several times
#: longer; the intact teacher scores ~269 and doing nothing ~8 (a return is at most 300). The
#: ranges leave room for other correct set-ups of that budget.
RETURN_RANGE = (0.0, 300.0)
UNMASKED_AT_MOST = 120.0
MASKED_AT_LEAST = 80.0
MASK_GAIN_AT_LEAST = 40.0


@graded
def check_paired_comparison(paired_comparison: Callable) -> None:
    checks = Checks("paired_comparison")
    treated = [212.0, 150.5, 98.0, 240.0, 171.0]
    control = [40.0, 35.5, 61.0, 20.0, 58.0]
    answers = {}
    for name, a, b in (("five seeds", treated, control), ("reversed", control, treated),
                       ("three seeds", treated[:3], control[:3])):
        try:
            answers[name] = paired_comparison(list(a), list(b))
        except Exception as err:          # reported by the cases below, each with its hint
            answers[name] = err
    keys = {"difference", "ci_low", "ci_high", "p_value"}

    def answer(name: str) -> dict:
        got = answers[name]
        if isinstance(got, Exception):
            raise got
        assert isinstance(got, dict) and keys <= set(got), f"expected a dict with keys {sorted(keys)}, got {got!r}"
        return {k: float(got[k]) for k in keys}

    from distillkit.claims import paired

    def expected(a, b) -> dict:
        test = paired(a, b)
        return {"difference": test["difference"], "ci_low": test["difference_ci95"][0],
                "ci_high": test["difference_ci95"][1], "p_value": test["p_value"]}

    with checks.case("returns difference, ci_low, ci_high and p_value",
                     "return a dict {'difference': ..., 'ci_low': ..., 'ci_high': ..., 'p_value': ...} of floats"):
        answer("five seeds")
    with checks.case("the difference is the mean of treated - control, seed by seed",
                     "subtract per seed (a paired design), then average"):
        assert math.isclose(answer("five seeds")["difference"], expected(treated, control)["difference"],
                            rel_tol=1e-6), f"got {answer('five seeds')['difference']:.3f}"
    with checks.case("the 95 % interval is Student's t-interval of the per-seed differences",
                     "scipy.stats.t.interval(0.95, n - 1, loc=mean, scale=scipy.stats.sem(differences)): "
                     "with five seeds a normal 1.96 interval is too narrow"):
        for name, a, b in (("five seeds", treated, control), ("three seeds", treated[:3], control[:3])):
            got, want = answer(name), expected(a, b)
            for k in ("ci_low", "ci_high"):
                assert math.isclose(got[k], want[k], rel_tol=1e-4, abs_tol=1e-6), \
                    f"{name}: {k} {got[k]:.3f}, expected {want[k]:.3f}"
    with checks.case("the p-value is the two-sided paired t-test's",
                     "scipy.stats.ttest_rel(treated, control).pvalue; ttest_ind ignores the pairing"):
        for name, a, b in (("five seeds", treated, control), ("three seeds", treated[:3], control[:3])):
            got, want = answer(name)["p_value"], expected(a, b)["p_value"]
            assert math.isclose(got, want, rel_tol=1e-4), f"{name}: p = {got:.5f}, expected {want:.5f}"
    with checks.case("swapping the two sides flips the difference and its interval, not the p-value",
                     "difference = treated - control; the interval follows it"):
        got, want = answer("reversed"), expected(control, treated)
        for k in keys:
            assert math.isclose(got[k], want[k], rel_tol=1e-4, abs_tol=1e-6), f"{k} {got[k]:.3f}, expected {want[k]:.3f}"
    checks.report()


@graded
def check_mask_experiment(mask_experiment: Callable) -> None:
    checks = Checks("mask_experiment")
    returns: dict[str, list] = {"unmasked": [], "masked": []}
    for seed in EXPERIMENT_SEEDS:
        for variant, rules in (("unmasked", MaskRules.none()), ("masked", MaskRules())):
            try:
                returns[variant].append(mask_experiment(rules, seed))
            except Exception as err:      # reported by the cases below
                returns[variant].append(err)

    def values(variant: str) -> list[float]:
        for got in returns[variant]:
            if isinstance(got, Exception):
                raise got
        return [float(v) for v in returns[variant]]

    with checks.case(f"every run returns the student's mean held-out return, a number in {list(RETURN_RANGE)}",
                     "return one float: the mean return of the student alone on held-out episodes"):
        for variant in returns:
            for seed, value in zip(EXPERIMENT_SEEDS, values(variant)):
                assert math.isfinite(value) and RETURN_RANGE[0] <= value <= RETURN_RANGE[1], \
                    f"{variant}, seed {seed}: {value!r}"
    with checks.case(f"unmasked students of the faulty teacher balance poorly (mean return <= {UNMASKED_AT_MOST:g})",
                     "the teacher must be the faulty one (Faulty(teacher, 0.5, seed=seed)) and it must drive "
                     "every step (schedule 'bc')"):
        mean = sum(values("unmasked")) / len(EXPERIMENT_SEEDS)
        assert mean <= UNMASKED_AT_MOST, f"mean {mean:.1f} over seeds {list(EXPERIMENT_SEEDS)}"
    with checks.case(f"students trained with the default rules balance (mean return >= {MASKED_AT_LEAST:g})",
                     "pass the rules to the distillation (DaggerConfig(rules=rules)) and keep the stated budget"):
        mean = sum(values("masked")) / len(EXPERIMENT_SEEDS)
        assert mean >= MASKED_AT_LEAST, f"mean {mean:.1f} over seeds {list(EXPERIMENT_SEEDS)}"
    with checks.case(f"the rules change the result: masked beats unmasked by >= {MASK_GAIN_AT_LEAST:g} on average",
                     "the experiment must use its `rules` argument, and the seed for the teacher's faults, the "
                     "student's initial weights and the data"):
        gain = sum(values("masked")) / len(EXPERIMENT_SEEDS) - sum(values("unmasked")) / len(EXPERIMENT_SEEDS)
        assert gain >= MASK_GAIN_AT_LEAST, f"masked - unmasked = {gain:.1f}"
    checks.report()
