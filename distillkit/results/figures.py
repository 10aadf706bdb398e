"""The figures of ``docs/results.md``: training curves, BC vs DAgger over rounds, the claims panel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from distillkit.results.budgets import TRAINING_SEEDS
from distillkit.results.jobs import run_folder


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, ax, path: Path) -> None:
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    pyplot().close(fig)


def validation_curves(runs: Path, task: str, variant: str) -> pd.DataFrame | None:
    """The validation success that chose each run's checkpoint, by env step (rows) and training seed
    (columns); None where the runs were trained without checkpoint selection."""
    from distillkit.artifacts import read_manifest

    manifests = {s: read_manifest(run_folder(runs, task, variant, s)) for s in TRAINING_SEEDS[task]}
    if not all(m.get("validations") for m in manifests.values()):
        return None
    return pd.DataFrame({s: pd.Series({v["env_steps"]: v["success"] for v in m["validations"]})
                         for s, m in manifests.items()}).dropna()


def plot_curves(runs: Path, task: str, variants: list[str], path: Path) -> bool:
    """Training return per variant (mean ± std over seeds) and, where the runs chose their checkpoint on
    validation seeds, the validation success against env steps beside it. Returns whether that panel is
    drawn. Under a curriculum, training episodes get harder as a policy improves, so only the validation
    panel compares two policies on one distribution."""
    validation = {v: validation_curves(runs, task, v) for v in variants}
    validated = all(c is not None for c in validation.values())
    fig, axes = pyplot().subplots(1, 2 if validated else 1, figsize=(11 if validated else 6, 3.5), squeeze=False)
    ax = axes[0, 0]
    seeds = TRAINING_SEEDS[task]
    for variant in variants:
        curves = [pd.read_csv(run_folder(runs, task, variant, s) / "metrics.csv") for s in seeds]
        steps = curves[0]["env_steps"].to_numpy()
        length = min(len(c) for c in curves)
        values = np.stack([c["episode_return"].to_numpy()[:length] for c in curves])
        values = pd.DataFrame(values.T).ffill().rolling(5, min_periods=1).mean().to_numpy().T
        # the first iterations end no episode in any seed: nothing to average there
        ended = ~np.isnan(values).all(axis=0)
        values, at = values[:, ended], steps[:length][ended]
        mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
        ax.plot(at, mean, label=variant)
        ax.fill_between(at, mean - std, mean + std, alpha=0.25)
    ax.set_xlabel("env steps")
    ax.set_ylabel("training episode return")
    ax.set_title(f"{task}: mean ± std over {len(seeds)} seeds")
    ax.legend()
    if validated:
        ax = axes[0, 1]
        for variant, curves in validation.items():
            mean, std = curves.mean(axis=1), curves.std(axis=1, ddof=0)
            ax.plot(curves.index, mean, marker=".", label=variant)
            ax.fill_between(curves.index, mean - std, mean + std, alpha=0.25)
        ax.set_ylim(0, 1)
        ax.set_xlabel("env steps")
        ax.set_ylabel("validation success")
        ax.set_title("success on the validation seeds that choose the checkpoint")
    save_figure(fig, ax, path)
    return validated


def plot_student_curves(curves: pd.DataFrame, task: str, path: Path) -> None:
    fig, ax = pyplot().subplots(figsize=(6, 3.5))
    for schedule, label in (("bc", "BC (β = 1)"), ("first", "DAgger")):
        c = curves[curves.schedule == schedule].groupby("round")["eval_return"]
        mean, std = c.mean(), c.std().fillna(0)
        ax.plot(mean.index + 1, mean, marker="o", label=label)
        ax.fill_between(mean.index + 1, mean - std, mean + std, alpha=0.2)
    ax.axhline(curves["teacher_return"].mean(), color="k", linestyle="--", label="teacher")
    ax.set_xlabel("round")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("held-out return of the student alone")
    ax.set_title(f"{task}: mean ± std over {curves.seed.nunique()} seeds")
    save_figure(fig, ax, path)


def plot_claims(summary: dict, task: str, path: Path) -> None:
    from distillkit.claims import LABELS, POLICIES

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, metric, title in ((axes[0], "return", "held-out return"), (axes[1], "success", "success rate")):
        entries = [summary[p]["nominal"][metric] for p in POLICIES]
        means = np.array([e["mean"] for e in entries])
        errors = np.abs(np.array([e["ci95"] for e in entries]).T - means)
        ax.bar(range(len(POLICIES)), means, yerr=np.nan_to_num(errors), capsize=4,
               color=["#4c72b0", "#8c8c8c", "#dd8452", "#55a868"])
        ax.set_xticks(range(len(POLICIES)), [LABELS[p].replace(" ", "\n", 1) for p in POLICIES], fontsize=8)
        ax.set_title(f"{title} (nominal, 95 % CI)", fontsize=10)
    fig.suptitle(task, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
