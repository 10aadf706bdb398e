"""Grade a learner's copy of an exercise, or a class folder of them.

The learner's notebook is code the grader must not trust: run in the grader's kernel it could
replace the check helpers, the modules they import, builtins or IPython hooks, call the package's
own implementation of the function it is asked to write, or rewrite files the next grade depends
on. The grader therefore

1. copies the learner's notebook, clears the outputs of the learner's cells and drops every check
   cell it holds (by id, tag or marker), then puts the pristine check cells of the shipped exercise
   back (source, stored PASS output, execution count, id), each after the cell it followed;
2. runs ``pytest --nbval-lax`` on that copy in a fresh sandbox (:mod:`distillkit.grading.sandbox`):
   the package and the environment read-only, the package's answers to this exercise unavailable,
   a private HOME and work folder, no network, limits on time, memory and output. Every cell runs
   in one kernel, as in JupyterLab; the check cells print their PASS/FAIL lines there, and record
   every call to the learner's functions (:mod:`distillkit.grading.replay`);
3. decides each check in a separate grader process outside the sandbox, by replaying the check
   helper on those records: a PASS line printed in the learner's kernel is never the grade;
4. reports each check with the hint of what failed, the learner cells that raised, any sandbox
   problem (time-out, memory, crash, output limit), and a score: passed checks / all.
"""

from __future__ import annotations

import csv
import json
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

from distillkit.grading import sandbox
from distillkit.grading.generate import CHECK_MARKER, check_name, is_check_cell

CELL_TIMEOUT_S = 600
# The sandboxed pytest's conftest.py: nbval waits for a dead kernel's reply forever (past its cell
# timeout); this ends the run instead, with an exit status the grader reports as a crash. Only a
# kernel that is dead while a cell runs counts: after the last cell nbval stops the kernel itself,
# before pytest writes its report (watching then made clean runs "crash" now and then).
KERNEL_DIED = 70
KERNEL_WATCH = f"""\
import json, os, pathlib, re, threading, time

import pytest

CELL_RUNNING = threading.Event()


def pytest_runtest_logstart(nodeid, location):
    # progress for the grader's replay: cell N starts, with the record runs there before it
    match = re.search(r"::Cell (\\d+)$", nodeid)
    if match:
        runs = json.dumps(sorted(os.listdir("records")))
        pathlib.Path("progress", match[1] + ".start.partial").write_text(runs)
        os.replace(pathlib.Path("progress", match[1] + ".start.partial"), pathlib.Path("progress", match[1] + ".start"))


def pytest_runtest_logreport(report):
    # cell N has run (its check record, if any, is complete)
    match = re.search(r"::Cell (\\d+)$", report.nodeid)
    if report.when == "teardown" and match:
        pathlib.Path("progress", match[1]).touch()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    CELL_RUNNING.set()
    try:
        yield
    finally:
        CELL_RUNNING.clear()


def kernel_died(session):
    kernel = next((getattr(item.parent, "kernel", None) for item in session.items), None)
    return CELL_RUNNING.is_set() and kernel is not None and not kernel.is_alive()


def pytest_collection_finish(session):
    def watch():
        while True:
            time.sleep(1)
            if kernel_died(session):
                os._exit({KERNEL_DIED})
    threading.Thread(target=watch, daemon=True).start()
"""
# The sandboxed run's pytest: no plugin but nbval (the environment's other pytest plugins cost ~3 s
# to load), and jsonschema without its optional IRI checker (rfc3987_syntax builds a grammar for
# ~2.6 s when nbformat's validator imports it; notebooks hold no IRI).
PYTEST_RUNNER = """\
import sys

sys.modules.setdefault("rfc3987_syntax", None)
import pytest

sys.exit(pytest.main(sys.argv[1:]))
"""
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
    sandbox: str = ""           # what went wrong with the sandboxed run: time-out, memory, crash, output limit

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
        if self.sandbox:
            lines.append(f"  sandbox: {self.sandbox}")
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


def run_nbval(notebook: nbformat.NotebookNode, name: str, work: Path, exercise: str, timeout_s: int,
              limits: sandbox.Limits) -> tuple[dict[int, str | None], str]:
    """Run ``pytest --nbval-lax`` on ``notebook`` in a sandbox over ``work`` (its records land in
    ``work/records``). Returns, per code cell index, None if it passed, else the failure text (ANSI
    colours removed), and the sandbox problem ("" if none)."""
    nbformat.write(notebook, work / name)
    (work / "pytest.ini").write_text("[pytest]\n")          # no project configuration leaks in
    (work / "conftest.py").write_text(KERNEL_WATCH)
    (work / "run_pytest.py").write_text(PYTEST_RUNNER)
    (work / "records").mkdir(exist_ok=True)
    (work / "progress").mkdir(exist_ok=True)
    cmd = ["python", "run_pytest.py", "-p", "nbval", "--nbval-lax", "--nbval-current-env", f"--nbval-cell-timeout={timeout_s}",
           "-p", "no:cacheprovider", "-q", "--junitxml=report.xml", name]
    run = sandbox.run(cmd, work, exercise, limits, {sandbox.RECORDS_ENV: str(sandbox.INSIDE / "records"),
                                                    "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    report = work / "report.xml"
    results: dict[int, str | None] = {}
    try:
        root = ET.parse(report).getroot()
    except (OSError, ET.ParseError):        # the run died before pytest wrote its report
        if run.problem:
            return results, run.problem
        if run.returncode == KERNEL_DIED:
            return results, "crash: the kernel died"
        return results, f"crash: the notebook run ended without a report (exit {run.returncode}): {run.output[-300:].strip()}"
    for case in root.iter("testcase"):
        match = re.fullmatch(r"Cell (\d+)", case.get("name", ""))
        if not match:
            continue
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        results[int(match[1])] = None if problem is None else \
            ANSI.sub("", problem.text or problem.get("message") or "failed")
    failures = "\n".join(r for r in results.values() if r)
    if not run.problem and any(m in failures for m in ("MemoryError", "can't allocate memory", "Cannot allocate memory")):
        return results, f"memory: a cell ran out of its {limits.memory_gb:g} GB"
    if not run.problem and re.search(r"Timeout of [\d.]+ seconds exceeded", failures):      # nbval's words
        return results, f"time-out: a cell ran longer than {timeout_s} s"
    return results, run.problem


def start_replay(checks: list[tuple[int, nbformat.NotebookNode]], work: Path, cwd: Path) -> subprocess.Popen:
    """The grader process that decides each check (code-cell index, cell) by replaying its helper
    on the records, outside the sandbox. It starts now, imports torch and the package while the
    notebook starts, and replays each check once its cell has run (:mod:`distillkit.grading.replay`)."""
    spec = {"records": str(work / "records"), "progress": str(work / "progress"),
            "checks": [{"source": cell.source, "cell": index} for index, cell in checks]}
    (work / "records").mkdir()
    (work / "progress").mkdir()
    cmd = [sys.executable, "-m", "distillkit.grading.replay", json.dumps(spec)]
    env = {k: v for k, v in os.environ.items() if k != sandbox.RECORDS_ENV}
    env["PYTHONPATH"] = str(sandbox.PACKAGE.parent)      # this package, whatever an editable install points at
    return subprocess.Popen(cmd, cwd=cwd, env=env, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def verdicts(replay: subprocess.Popen, count: int) -> list[str | None]:
    """Each check: None if it passed, else why not."""
    out, err = replay.communicate("records complete\n")
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if replay.returncode or len(lines) != count:
        raise GradingError(f"the grader's replay failed (exit {replay.returncode}):\n{err[-2000:]}")
    return [line["failure"] for line in lines]


def explain(failure: str) -> str:
    """What the learner should read of a failed cell of theirs: its last error line."""
    lines = failure.splitlines()
    errors = [line.strip() for line in lines
              if re.match(r"^([A-Za-z_][A-Za-z0-9_]*\.)*[A-Za-z_]*(Error|Exception|Exit|Interrupt)\b", line.strip())]
    return errors[-1].rstrip(": ") if errors else "failed"


def grade(exercise_path: str | os.PathLike, submission_path: str | os.PathLike, timeout_s: int = CELL_TIMEOUT_S,
          limits: sandbox.Limits = sandbox.Limits()) -> Grade:
    """Grade one learner notebook against the shipped exercise."""
    exercise_path, submission_path = Path(exercise_path), Path(submission_path)
    exercise = read_notebook(exercise_path, "exercise")
    submission = read_notebook(submission_path, "submission")
    restored, notes = restore_checks(exercise, submission, exercise_path)
    code_cells = [cell for cell in restored.cells if cell.cell_type == "code"]
    check_cells = [(i, cell) for i, cell in enumerate(code_cells) if is_check_cell(cell)]
    with tempfile.TemporaryDirectory(prefix="distillkit-grade-") as tmp:
        work, cwd = Path(tmp) / "work", Path(tmp) / "replay"
        work.mkdir()
        cwd.mkdir()
        replay = start_replay(check_cells, work, cwd)
        try:
            results, problem = run_nbval(restored, exercise_path.name, work, exercise_path.stem, timeout_s, limits)
        except BaseException:
            replay.kill()
            replay.wait()
            raise
        failures = iter(verdicts(replay, len(check_cells)))
    checks, cell_errors = [], []
    code_index = 0
    for cell in restored.cells:
        if cell.cell_type != "code":
            continue
        if is_check_cell(cell):
            failure = next(failures)
            checks.append(CheckResult(check_name(cell, str(exercise_path)), failure is None, failure or ""))
        elif results.get(code_index) is not None:
            first_line = next((line for line in cell.source.splitlines() if line.strip()), "")
            cell_errors.append(f"the cell starting {first_line[:60]!r}: {explain(results[code_index])}")
        code_index += 1
    if any(sandbox.UNAVAILABLE.format(exercise=exercise_path.stem) in c.detail for c in checks):
        notes.append("your code called the package's own implementation of what this exercise asks for: "
                     "unavailable while grading, so the checks that use it score 0")
    return Grade(submission_path, checks, cell_errors, notes, problem)


def submissions_in(folder: Path, exercise_name: str) -> list[tuple[str, Path]]:
    """(student, notebook): ``folder/<student>.ipynb`` or ``folder/<student>/<exercise name>``."""
    found = [(p.stem, p) for p in sorted(folder.glob("*.ipynb"))]
    found += [(p.parent.name, p) for p in sorted(folder.glob(f"*/{exercise_name}"))]
    if not found:
        raise GradingError(f"no submissions in {folder}: expected <student>.ipynb or <student>/{exercise_name}")
    return found


def grade_class(exercise_path: str | os.PathLike, folder: str | os.PathLike, out: str | os.PathLike | None = None,
                timeout_s: int = CELL_TIMEOUT_S, echo=print, limits: sandbox.Limits = sandbox.Limits()) -> Path:
    """Grade every submission in ``folder`` into a CSV: one row per student, one column per check,
    a ``problem`` column (the first hint of each failed check, notes) and a ``sandbox`` column
    (time-out, memory, crash or output limit of that submission's run). Each submission runs in its
    own sandbox, one after another."""
    exercise_path, folder = Path(exercise_path), Path(folder)
    names = [check_name(cell, str(exercise_path)) for _, cell in
             pristine_checks(read_notebook(exercise_path, "exercise"), exercise_path)]
    out = Path(out) if out else folder / f"grades_{exercise_path.stem}.csv"
    rows = []
    for student, path in submissions_in(folder, exercise_path.name):
        try:
            result = grade(exercise_path, path, timeout_s, limits)
        except GradingError as err:          # one unreadable file must not stop the class
            rows.append({"student": student, "file": str(path), "score": 0, "max_score": len(names),
                         **{n: 0 for n in names}, "problem": str(err), "sandbox": ""})
            echo(f"{student}: 0/{len(names)} ({err})")
            continue
        passed = {c.name: int(c.passed) for c in result.checks}
        failed = [f"{c.name}: {c.detail.splitlines()[1] if len(c.detail.splitlines()) > 1 else c.detail}"
                  for c in result.checks if not c.passed]
        rows.append({"student": student, "file": str(path), "score": result.score, "max_score": result.max_score,
                     **{n: passed.get(n, 0) for n in names}, "problem": " | ".join(failed + result.notes),
                     "sandbox": result.sandbox})
        echo(f"{student}: {result.score}/{result.max_score}" + (f" (sandbox: {result.sandbox})" if result.sandbox else ""))
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["student", "file", "score", "max_score", *names, "problem", "sandbox"])
        writer.writeheader()
        writer.writerows(rows)
    return out


def main(exercise: str, target: str, out: str | None = None, timeout_s: int = CELL_TIMEOUT_S) -> int:
    """``distillkit grade``: a notebook gives a per-check summary (exit 0 only with full marks), a
    folder a per-student CSV."""
    try:
        if Path(target).is_dir():
            print(f"wrote {grade_class(exercise, target, out, timeout_s)}")
            return 0
        result = grade(exercise, target, timeout_s)
    except sandbox.SandboxError as err:         # the machine cannot grade at all: say why, as for a bad file
        raise GradingError(str(err)) from None
    print(result.summary())
    return 0 if result.score == result.max_score else 1
