"""Writing results into the docs: marked sections of Markdown files, prose from templates in
``docs/templates/``, tables, and ``docs/claims.json``."""

from __future__ import annotations

import datetime
import json
import os
import platform
import string
from pathlib import Path

import numpy as np
import pandas as pd

from distillkit.artifacts import REPO_ROOT
from distillkit.atomic import write_json_atomic

TEMPLATES = REPO_ROOT / "docs" / "templates"


def render(template: str, **values) -> str:
    """``docs/templates/<template>.md`` with its ``$names`` filled in (a missing value is an error)."""
    return string.Template((TEMPLATES / f"{template}.md").read_text()).substitute(values)


def write_section(name: str, body: str, doc: Path = REPO_ROOT / "docs" / "results.md") -> None:
    """Replace the text between ``<!-- name:begin -->`` and ``<!-- name:end -->`` in ``doc`` (added
    at the end if absent); every other section stays as it is."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = doc.read_text() if doc.exists() else "# Results\n"
    if begin not in text:
        text = text.rstrip() + f"\n\n{begin}\n{end}\n"
    head, rest = text.split(begin)
    _, tail = rest.split(end)
    doc.write_text(head + begin + "\n" + body.strip() + "\n" + end + tail)


CLAIMS_JSON = REPO_ROOT / "docs" / "claims.json"


def read_claims_json(task: str, key: str, doc: Path = CLAIMS_JSON):
    """One entry of a task's record in ``docs/claims.json``; None when the file, the task or the
    entry is missing (a section that writes it has not run yet)."""
    if not doc.exists():
        return None
    return json.loads(doc.read_text())["tasks"].get(task, {}).get(key)


def update_claims_json(task: str, key: str, value, doc: Path = CLAIMS_JSON) -> None:
    """Set one entry of a task's record in ``docs/claims.json``, leaving every other entry (and
    every other task) as it is; written atomically."""
    from distillkit.claims import json_safe

    everything = json.loads(doc.read_text()) if doc.exists() else {"format": "distillkit.claims", "tasks": {}}
    everything["tasks"].setdefault(task, {})[key] = json_safe(value)
    write_json_atomic(doc, everything)


def machine() -> str:
    """Where a number was measured: architecture and CPU model (per-episode results reproduce only on
    the same kind of CPU), cores, Python."""
    from distillkit.artifacts import cpu_model

    return f"{platform.machine()} ({cpu_model()}), {os.cpu_count()} cores, Python {platform.python_version()}"


def measured(command: str) -> str:
    return f"Measured {datetime.date.today().isoformat()} on {machine()}. Command: `{command}`."


def mean_std(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    agg = frame.groupby(by, sort=False).agg(
        env_steps=("env_steps", "first"), seeds=("seed", "count"),
        return_mean=("return", "mean"), return_std=("return", "std"),
        success_mean=("success", "mean"), fall_rate_mean=("fall_rate", "mean"),
        fall_rate_std=("fall_rate", "std"), tracking_mean=("tracking_error", "mean"),
        length_mean=("length", "mean"))
    return agg.reset_index()


def markdown_table(frame: pd.DataFrame) -> str:
    lines = ["| task | policy | env steps | seeds | held-out return | success | fall rate | tracking error (m/s) | "
             "episode length |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in frame.itertuples():
        tracking = "–" if np.isnan(r.tracking_mean) else f"{r.tracking_mean:.2f}"
        lines.append(f"| {r.task} | {r.variant} | {r.env_steps:,} | {r.seeds} | "
                     f"{r.return_mean:.1f} ± {r.return_std:.1f} | {r.success_mean:.2f} | "
                     f"{r.fall_rate_mean:.2f} ± {r.fall_rate_std:.2f} | {tracking} | {r.length_mean:.0f} |")
    return "\n".join(lines)


def figure_path(name: str) -> Path:
    return REPO_ROOT / "docs" / "figures" / f"{name}.png"
