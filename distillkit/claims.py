"""The course's three claims, measured separately on one held-out panel, with statistics a learner
can trust.

- **Teacher claim**: privileged state makes a better expert than RL on the student's own inputs.
  Evidence: the teacher against the *unprivileged* PPO baseline (the same PPO, tuned for it, and network class
  on the student's fields, with at least the teacher's plus the student's env steps).
- **Imitation claim**: the student matches the teacher's useful actions on valid states.
  Evidence: the imitation error on the student's own states, and DAgger against behaviour cloning.
- **Deployment claim**: the student, alone and with every privileged input removed, still succeeds.
  Evidence: the student's return and success against the teacher's, and how much of the gap
  between unprivileged PPO and the teacher it closes: (student - unprivileged) / (teacher -
  unprivileged).

Every policy is trained with several seeds; a training seed is one sample. Per policy and
perturbation we report the mean over seeds with a 95 % confidence interval (Student's t, from
``scipy.stats``); two policies are compared *paired by training seed* (the students of seed s are
distilled from the teacher of seed s, and every policy is evaluated on the same held-out episodes):
the mean paired difference, its 95 % interval and the p-value of the paired t-test
(``scipy.stats.ttest_rel``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

#: The policies on the panel, in the order tables show them.
POLICIES = ("teacher", "unprivileged", "bc", "dagger")
LABELS = {"teacher": "teacher (privileged)", "unprivileged": "unprivileged PPO", "bc": "BC student",
          "dagger": "DAgger student"}
METRICS = ("return", "success", "fall_rate", "tracking_error")

#: What the flagship must show (the claims issue's targets); each verdict is computed, never typed.
TARGETS = {
    "teacher_success": ("teacher success, nominal", ">=", 0.90),
    "teacher_fall_rate": ("teacher fall rate, nominal", "<=", 0.10),
    "teacher_vs_unprivileged_return_ratio": ("teacher ÷ unprivileged PPO return, nominal", ">=", 1.25),
    "teacher_vs_unprivileged_success_gap": ("teacher − unprivileged PPO success, nominal", ">=", 0.25),
    "teacher_vs_unprivileged_p": ("paired p-value, teacher vs unprivileged PPO (return), nominal", "<", 0.05),
    "dagger_vs_teacher_return_ratio": ("DAgger student ÷ teacher return, nominal", ">=", 0.90),
    "gap_closure": ("gap closure (DAgger − unprivileged) ÷ (teacher − unprivileged), nominal", ">=", 0.80),
    "bc_vs_teacher_return_ratio": ("BC student ÷ teacher return, nominal", "<=", 0.60),
}
#: The teacher claim also needs a fair competitor: a baseline trained with the settings its tuning chose.
BASELINE_TUNED = "unprivileged PPO trained with the best settings of its tuning (section baseline_tuning)"


def per_seed(episodes: pd.DataFrame) -> pd.DataFrame:
    """Episodes (columns policy, perturbation, training_seed, return, success, fell,
    tracking_error) -> one row per (policy, perturbation, training seed) with the means."""
    g = episodes.groupby(["policy", "perturbation", "training_seed"], sort=False)
    return g.agg(**{"return": ("return", "mean"), "success": ("success", "mean"), "fall_rate": ("fell", "mean"),
                    "tracking_error": ("tracking_error", "mean"), "episodes": ("return", "size")}).reset_index()


def mean_ci(values, confidence: float = 0.95, bounds: tuple[float, float] | None = None) -> dict:
    """Mean, the t-interval around it and n. With one value the interval is undefined (NaN).
    ``bounds``: the range the quantity lives in (a rate: (0, 1)); the interval is cut to it."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return {"mean": math.nan, "ci95": [math.nan, math.nan], "n": 0}
    mean = float(x.mean())
    if n < 2 or np.all(x == x[0]):
        half = math.nan if n < 2 else 0.0
        return {"mean": mean, "ci95": [mean - half, mean + half], "n": n}
    low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=stats.sem(x))
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return {"mean": mean, "ci95": [float(low), float(high)], "n": n}


def paired(a, b) -> dict:
    """Paired comparison of two policies over the same training seeds: mean of a - b, its 95 %
    t-interval and the two-sided paired t-test's p-value (``scipy.stats.ttest_rel``)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired samples need one value per training seed on both sides, got {a.shape} and {b.shape}")
    diff = mean_ci(a - b)
    if len(a) < 2 or np.all(a - b == (a - b)[0]):
        p = math.nan if len(a) < 2 or (a - b)[0] == 0 else 0.0
    else:
        p = float(stats.ttest_rel(a, b).pvalue)
    return {"difference": diff["mean"], "difference_ci95": diff["ci95"], "p_value": p, "n": len(a)}


def summarise(seeds: pd.DataFrame) -> dict:
    """{policy: {perturbation: {metric: {mean, ci95, n}}}} from :func:`per_seed` rows."""
    out: dict = {}
    for (policy, perturbation), rows in seeds.groupby(["policy", "perturbation"], sort=False):
        out.setdefault(policy, {})[perturbation] = {
            m: mean_ci(rows[m], bounds=(0.0, 1.0) if m in ("success", "fall_rate") else None) for m in METRICS}
    return out


def comparisons(seeds: pd.DataFrame) -> list[dict]:
    """The paired tests behind the claims, per perturbation and metric (return and success)."""
    pairs = (("teacher", "unprivileged"), ("dagger", "unprivileged"), ("dagger", "teacher"), ("dagger", "bc"))
    tests = []
    for perturbation in seeds["perturbation"].unique():
        at = seeds[seeds.perturbation == perturbation]
        for a, b in pairs:
            left = at[at.policy == a].set_index("training_seed")
            right = at[at.policy == b].set_index("training_seed")
            common = sorted(set(left.index) & set(right.index))
            if not common:
                continue
            for metric in ("return", "success"):
                tests.append({"perturbation": perturbation, "a": a, "b": b, "metric": metric,
                              **paired(left.loc[common, metric], right.loc[common, metric])})
    return tests


def headline(summary: dict, tests: list[dict], baseline_tuned: bool, perturbation: str = "nominal") -> dict:
    """The numbers the targets are judged on (nominal panel) and each target's verdict.
    ``baseline_tuned``: whether unprivileged PPO trained with the settings its tuning found best; a
    teacher that only beats an untuned baseline does not show the teacher claim."""
    m = lambda policy, metric: summary[policy][perturbation][metric]["mean"]
    teacher, unprivileged, dagger, bc = (m(p, "return") for p in ("teacher", "unprivileged", "dagger", "bc"))
    test = next(t for t in tests if t["perturbation"] == perturbation and t["a"] == "teacher"
                and t["b"] == "unprivileged" and t["metric"] == "return")
    values = {
        "teacher_success": m("teacher", "success"),
        "teacher_fall_rate": m("teacher", "fall_rate"),
        "teacher_vs_unprivileged_return_ratio": teacher / unprivileged,
        "teacher_vs_unprivileged_success_gap": m("teacher", "success") - m("unprivileged", "success"),
        "teacher_vs_unprivileged_p": test["p_value"],
        "dagger_vs_teacher_return_ratio": dagger / teacher,
        # a gap the paired test cannot tell from zero cannot be closed: its ratio would be noise over noise
        "gap_closure": ((dagger - unprivileged) / (teacher - unprivileged) if test["difference_ci95"][0] > 0
                        else math.nan),
        "bc_vs_teacher_return_ratio": bc / teacher,
    }
    verdicts = {}
    for key, (text, op, threshold) in TARGETS.items():
        value = values[key]                # NaN (undefined) meets no target
        met = {">=": value >= threshold, "<=": value <= threshold, "<": value < threshold}[op]
        verdicts[key] = {"target": f"{text} {op} {threshold}", "value": value, "met": bool(met)}
    verdicts["baseline_tuned"] = {"target": BASELINE_TUNED, "value": bool(baseline_tuned), "met": bool(baseline_tuned)}
    # The teacher claim holds if the return ratio or the success gap reaches its target, significantly,
    # against a tuned baseline.
    teacher_claim = ((verdicts["teacher_vs_unprivileged_return_ratio"]["met"]
                      or verdicts["teacher_vs_unprivileged_success_gap"]["met"])
                     and verdicts["teacher_vs_unprivileged_p"]["met"] and verdicts["baseline_tuned"]["met"])
    return {"values": values, "targets": verdicts, "teacher_claim_shown": bool(teacher_claim),
            "deployment_claim_shown": bool(verdicts["dagger_vs_teacher_return_ratio"]["met"]
                                           and verdicts["gap_closure"]["met"])}


def json_safe(value):
    """``value`` with every NaN replaced by None, so the file is strict JSON (``null``)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        return json_safe(value.item())
    return value


# ------------------------------------------------------------------------- reading the results
#: Which rows and targets each claim is judged on (chapters show one claim each).
CLAIM_VIEWS = {
    "teacher": (("teacher", "unprivileged"),
                ("teacher_success", "teacher_fall_rate", "teacher_vs_unprivileged_return_ratio",
                 "teacher_vs_unprivileged_success_gap", "teacher_vs_unprivileged_p", "baseline_tuned")),
    "imitation": (("teacher", "bc", "dagger"), ("bc_vs_teacher_return_ratio", "dagger_vs_teacher_return_ratio")),
    "deployment": (("teacher", "unprivileged", "dagger"), ("dagger_vs_teacher_return_ratio", "gap_closure")),
}


def load(task: str, path=None) -> dict:
    """The task's record from ``docs/claims.json`` (written by ``python -m distillkit results
    --section claims``), with a clear error when it is missing."""
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "docs" / "claims.json" if path is None else Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: `python -m distillkit results --section claims` writes it")
    tasks = json.loads(path.read_text())["tasks"]
    if task not in tasks:
        raise KeyError(f"{path} has no claims for task {task!r}; it has {sorted(tasks)}")
    return tasks[task]


def measured_on(record: dict) -> str:
    """Where a task's claims come from, in one line, and whether the task has changed since."""
    from distillkit.tasks import TASKS

    task, version = record["task"], record.get("task_version")
    line = (f"{task}{'' if version is None else f' version {version}'}: measured {record['date']} on "
            f"{record['machine']} by `{record['command']}`")
    current = TASKS[task].version if task in TASKS else None
    if None not in (current, version) and version != current:
        line += (f". The task is now version {current}: these numbers are the earlier version's until the "
                 f"command measures it again")
    return line


def claim_table(record: dict, claim: str, perturbations=("nominal",)) -> pd.DataFrame:
    """One claim's evidence as a small table: return and success with their 95 % CIs, fall rate
    and tracking error, per policy and perturbation (numbers rounded for reading)."""
    if claim not in CLAIM_VIEWS:
        raise ValueError(f"claim must be one of {sorted(CLAIM_VIEWS)}, got {claim!r}")
    policies, _ = CLAIM_VIEWS[claim]
    rows = []
    for perturbation in perturbations:
        for policy in policies:
            e = record["policies"][policy][perturbation]
            ci = lambda m, d: f"{e[m]['mean']:.{d}f} ({e[m]['ci95'][0]:.{d}f} to {e[m]['ci95'][1]:.{d}f})"
            tracking = e["tracking_error"]["mean"]
            rows.append({"perturbation": perturbation, "policy": LABELS[policy], "return (95 % CI)": ci("return", 0),
                         "success (95 % CI)": ci("success", 2), "fall rate": round(e["fall_rate"]["mean"], 2),
                         "tracking error (m/s)": None if tracking is None else round(tracking, 2)})
    return pd.DataFrame(rows).set_index(["perturbation", "policy"])


def student_types_table(section: dict) -> pd.DataFrame:
    """The student types' comparison (a task's ``student_types`` record, written by ``python -m
    distillkit results --section student_types``) as a small table: each type's return divided by
    the teacher's with its 95 % CI per perturbation, and its nominal success."""
    rows = []
    for architecture, by_perturbation in section["students"].items():
        row = {"student": architecture}
        for perturbation, e in by_perturbation.items():
            ratio = e["return_ratio"]
            row[f"{perturbation}: ÷ teacher (95 % CI)"] = (f"{ratio['mean']:.2f} ({ratio['ci95'][0]:.2f} to "
                                                           f"{ratio['ci95'][1]:.2f})")
        row["success, nominal"] = round(by_perturbation["nominal"]["success"]["mean"], 2)
        rows.append(row)
    return pd.DataFrame(rows).set_index("student")


def versus_action_matching_table(section: dict) -> pd.DataFrame:
    """Each student type against action matching (a task's ``student_types`` record): the paired
    difference of return ÷ teacher with its 95 % CI and p-value, per perturbation."""
    if "versus_action_matching" not in section:
        raise KeyError(f"this student_types record has no 'versus_action_matching' (it has {sorted(section)}): it was "
                       "written before the paired comparison; run `python -m distillkit results --section "
                       "student_types` again")
    rows = []
    for architecture, by_perturbation in section["versus_action_matching"].items():
        row = {"student − mlp": architecture}
        for perturbation, c in by_perturbation.items():
            low, high = c["difference_ci95"]
            row[perturbation] = f"{c['difference']:+.2f} ({low:+.2f} to {high:+.2f}), p {c['p_value']:.2f}"
        rows.append(row)
    return pd.DataFrame(rows).set_index("student − mlp")


def value_text(value) -> str:
    """A target's measured value as a table shows it: yes/no, undefined (NaN, or null in JSON), or
    three significant digits, trailing zeros kept (a ratio of 1.10, not 1.1)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if value is None or math.isnan(value):
        return "undefined"
    return f"{value:#.3g}"


def claim_verdict(record: dict, claim: str) -> pd.DataFrame:
    """The targets a claim is judged on, what was measured and whether it was met."""
    _, keys = CLAIM_VIEWS[claim]
    targets = record["headline"]["targets"]
    # records measured before the baseline's tuning was checked say nothing about it: not met
    unchecked = {"target": BASELINE_TUNED, "value": "not recorded", "met": False}
    rows = []
    for key in keys:
        t = targets.get(key, unchecked) if key == "baseline_tuned" else targets[key]
        measured = value_text(t["value"])
        rows.append({"target": t["target"], "measured": measured, "met": "yes" if t["met"] else "no"})
    return pd.DataFrame(rows).set_index("target")
