"""Grade a learner's copy of an exercise, or a class folder of them, with nbval.

nbval compares a cell's new output with the output stored in the notebook it runs, so a learner's
own file cannot be its reference: cleared outputs, a saved FAIL output or an edited check cell
would each be graded wrong. The grader therefore

1. copies the learner's notebook, clears the outputs of the learner's cells (so none of them is
   compared), and drops every check cell it holds (by id, tag or marker);
2. puts the pristine check cells of the shipped exercise back (source, stored PASS output,
   execution count, id), each after the cell it followed in the exercise;
3. runs ``pytest --nbval-lax`` on that copy in a temporary folder: every cell runs in one kernel,
   and a check cell passes only if it runs without error and prints exactly its stored PASS line;
4. reports each check with the hint of what failed, and a score: passed check cells / all.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat.corpus.words import generate_corpus_id

from distillkit.grading.generate import CHECK_MARKER, check_name, is_check_cell

CELL_TIMEOUT_S = 600
ANSI = re.compile(r"(\x1b|#x1B)\[[0-9;]*m")      # junit XML writes ESC as "#x1B"


class GradingError(ValueError):
    """The exercise or the submission cannot be graded; the message names the file."""


@dataclass
class CheckResult:
    name: str
    passed: bool
    detail: str = ""        # why it failed: the helper's per-check hints, or nbval's complaint


@dataclass
class Grade:
    submission: Path
    checks: list[CheckResult]
    cell_errors: list[str] = field(default_factory=list)   # learner cells that raised (not scored)
    notes: list[str] = field(default_factory=list)

    @property
    def score(self) -> int:
        return sum(c.passed for c in self.checks)

    @property
    def max_score(self) -> int:
        return len(self.checks)

    def summary(self) -> str:
        lines = [f"{self.submission}:"]
        for c in self.checks:
            lines.append(f"  {'PASS' if c.passed else 'FAIL'} {c.name}")
            lines += [f"       {line}" for line in c.detail.splitlines()]
        lines += [f"  note: {n}" for n in self.notes]
        if self.cell_errors:
            lines.append("  your cells that raised: " + "; ".join(self.cell_errors))
        lines.append(f"score: {self.score}/{self.max_score}")
        return "\n".join(lines)


def read_notebook(path: Path, what: str) -> nbformat.NotebookNode:
    try:
        return nbformat.read(path, as_version=4)
    except FileNotFoundError:
        raise GradingError(f"{what} {path} does not exist") from None
    except Exception as err:       # nbformat raises several kinds for a damaged file
        raise GradingError(f"{what} {path} is not a readable notebook: {type(err).__name__}: {err}") from None


def pristine_checks(exercise: nbformat.NotebookNode, path: Path) -> list[tuple[str | None, nbformat.NotebookNode]]:
    """Each check cell of the exercise with the id of the non-check cell it follows (None: first)."""
    anchored, anchor = [], None
    for i, cell in enumerate(exercise.cells):
        if is_check_cell(cell):
            check_name(cell, f"{path} cell {i}")       # raises if the exercise itself is malformed
            anchored.append((anchor, cell))
        else:
            anchor = cell.get("id")
    if not anchored:
        raise GradingError(f"exercise {path} has no check cell (tag 'check')")
    return anchored


def restore_checks(exercise: nbformat.NotebookNode, submission: nbformat.NotebookNode, exercise_path: Path,
                   ) -> tuple[nbformat.NotebookNode, list[str]]:
    """The learner's notebook with its outputs cleared and the exercise's pristine check cells in
    place of whatever check cells it holds. Returns it and notes on what was repaired."""
    anchored = pristine_checks(exercise, exercise_path)
    check_ids = {cell.id for _, cell in anchored}
    notes = []
    kept = []
    for cell in submission.cells:
        if cell.get("id") in check_ids or is_check_cell(cell) or \
                (cell.cell_type == "code" and cell.source.lstrip().startswith(CHECK_MARKER)):
            continue
        cell = nbformat.from_dict(dict(cell))
        cell.setdefault("id", generate_corpus_id())         # files saved as nbformat < 4.5 have no cell ids
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None     # unrun cells are run but never compared
        kept.append(cell)
    present = {cell.get("id") for cell in submission.cells}
    missing = [check_name(cell, "") for _, cell in anchored if cell.id not in present]
    if missing:
        notes.append(f"check cell(s) {missing} were missing from the submission and were put back")
    kept_ids = {cell.get("id") for cell in kept}
    if not kept_ids & {cell.get("id") for cell in exercise.cells}:
        notes.append("no cell id in common with the exercise: is this a copy of it? check cells appended at the end")
    cells = [nbformat.from_dict(dict(cell)) for anchor, cell in anchored if anchor is None]
    for cell in kept:
        cells.append(cell)
        cells += [nbformat.from_dict(dict(c)) for anchor, c in anchored if anchor is not None and anchor == cell.get("id")]
    placed = {cell.get("id") for cell in cells}
    cells += [nbformat.from_dict(dict(c)) for _, c in anchored if c.id not in placed]   # their anchor was deleted
    restored = nbformat.from_dict({**submission, "cells": cells})
    restored.metadata = exercise.metadata
    restored.nbformat, restored.nbformat_minor = exercise.nbformat, exercise.nbformat_minor
    return restored, notes


def run_nbval(notebook: nbformat.NotebookNode, name: str, timeout_s: int = CELL_TIMEOUT_S) -> dict[int, str | None]:
    """Run ``pytest --nbval-lax`` on ``notebook`` in a temporary folder. Returns, per code cell
    index, None if it passed, else the failure text (ANSI colours removed)."""
    with tempfile.TemporaryDirectory(prefix="distillkit-grade-") as tmp:
        tmp = Path(tmp)
        nbformat.write(notebook, tmp / name)
        (tmp / "pytest.ini").write_text("[pytest]\n")          # no project configuration leaks in
        report = tmp / "report.xml"
        cmd = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env",
               f"--nbval-cell-timeout={timeout_s}", "-p", "no:cacheprovider", "-q", f"--junitxml={report}", name]
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, env=os.environ.copy())
        if not report.exists():
            raise GradingError(f"nbval did not run on {name} (exit {proc.returncode}):\n"
                               f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        results: dict[int, str | None] = {}
        for case in ET.parse(report).getroot().iter("testcase"):
            match = re.fullmatch(r"Cell (\d+)", case.get("name", ""))
            if not match:
                continue
            problem = case.find("failure")
            if problem is None:
                problem = case.find("error")
            results[int(match[1])] = None if problem is None else \
                ANSI.sub("", problem.text or problem.get("message") or "failed")
        return results


def explain(failure: str) -> str:
    """What the learner should read of a failed cell: the helper's FAIL block if there is one."""
    lines = failure.splitlines()
    starts = [i for i, line in enumerate(lines) if re.search(r"FAIL [A-Za-z0-9_]+: \d+/\d+ checks passed", line)]
    if starts:
        first = lines[starts[-1]]
        block = [first[first.index("FAIL "):]]
        for line in lines[starts[-1] + 1:]:
            if not line.startswith(("- ", "  ")) or not line.strip():
                break
            block.append(line)
        return "\n".join(block)
    if "Cell outputs differ" in failure:
        return "ran, but its output differs from the expected PASS line (did your code print during the check?)"
    errors = [line.strip() for line in lines
              if re.match(r"^([A-Za-z_][A-Za-z0-9_]*\.)*[A-Za-z_]*(Error|Exception|Exit|Interrupt)\b", line.strip())]
    return errors[-1].rstrip(": ") if errors else "failed"


def grade(exercise_path: str | os.PathLike, submission_path: str | os.PathLike, timeout_s: int = CELL_TIMEOUT_S) -> Grade:
    """Grade one learner notebook against the shipped exercise."""
    exercise_path, submission_path = Path(exercise_path), Path(submission_path)
    exercise = read_notebook(exercise_path, "exercise")
    submission = read_notebook(submission_path, "submission")
    restored, notes = restore_checks(exercise, submission, exercise_path)
    results = run_nbval(restored, exercise_path.name, timeout_s)
    checks, cell_errors = [], []
    code_index = 0
    for cell in restored.cells:
        if cell.cell_type != "code":
            continue
        if code_index not in results:
            outcome = "did not run (nbval stopped before this cell)"
        else:
            outcome = results[code_index] and explain(results[code_index])
        if is_check_cell(cell):
            checks.append(CheckResult(check_name(cell, str(exercise_path)), outcome is None, outcome or ""))
        elif outcome is not None:
            first_line = next((line for line in cell.source.splitlines() if line.strip()), "")
            cell_errors.append(f"the cell starting {first_line[:60]!r}: {outcome}")
        code_index += 1
    return Grade(submission_path, checks, cell_errors, notes)


def submissions_in(folder: Path, exercise_name: str) -> list[tuple[str, Path]]:
    """(student, notebook): ``folder/<student>.ipynb`` or ``folder/<student>/<exercise name>``."""
    found = [(p.stem, p) for p in sorted(folder.glob("*.ipynb"))]
    found += [(p.parent.name, p) for p in sorted(folder.glob(f"*/{exercise_name}"))]
    if not found:
        raise GradingError(f"no submissions in {folder}: expected <student>.ipynb or <student>/{exercise_name}")
    return found


def grade_class(exercise_path: str | os.PathLike, folder: str | os.PathLike, out: str | os.PathLike | None = None,
                timeout_s: int = CELL_TIMEOUT_S, echo=print) -> Path:
    """Grade every submission in ``folder`` into a CSV: one row per student, one column per check."""
    exercise_path, folder = Path(exercise_path), Path(folder)
    names = [check_name(cell, str(exercise_path)) for _, cell in
             pristine_checks(read_notebook(exercise_path, "exercise"), exercise_path)]
    out = Path(out) if out else folder / f"grades_{exercise_path.stem}.csv"
    rows = []
    for student, path in submissions_in(folder, exercise_path.name):
        try:
            result = grade(exercise_path, path, timeout_s)
        except GradingError as err:          # one unreadable file must not stop the class
            rows.append({"student": student, "file": str(path), "score": 0, "max_score": len(names),
                         **{n: 0 for n in names}, "problem": str(err)})
            echo(f"{student}: 0/{len(names)} ({err})")
            continue
        passed = {c.name: int(c.passed) for c in result.checks}
        failed = [f"{c.name}: {c.detail.splitlines()[1] if len(c.detail.splitlines()) > 1 else c.detail}"
                  for c in result.checks if not c.passed]
        rows.append({"student": student, "file": str(path), "score": result.score, "max_score": result.max_score,
                     **{n: passed.get(n, 0) for n in names}, "problem": " | ".join(failed + result.notes)})
        echo(f"{student}: {result.score}/{result.max_score}")
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["student", "file", "score", "max_score", *names, "problem"])
        writer.writeheader()
        writer.writerows(rows)
    return out


def main(exercise: str, target: str, out: str | None = None, timeout_s: int = CELL_TIMEOUT_S) -> int:
    """``distillkit grade``: a notebook gives a per-check summary (exit 0 only with full marks), a
    folder a per-student CSV."""
    if Path(target).is_dir():
        path = grade_class(exercise, target, out, timeout_s)
        print(f"wrote {path}")
        return 0
    result = grade(exercise, target, timeout_s)
    print(result.summary())
    return 0 if result.score == result.max_score else 1
