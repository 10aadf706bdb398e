"""Generate ``exercises/*.ipynb`` from ``solutions/*.ipynb`` (nbgrader's convention, in plain nbformat).

In every code cell, each region from a ``### BEGIN SOLUTION`` line to its ``### END SOLUTION``
line becomes ``# YOUR CODE HERE`` and ``raise NotImplementedError()`` at the region's indentation;
in a markdown cell (a written answer, marked by an instructor) it becomes ``YOUR ANSWER HERE``.
Check cells (tag ``check``, first line ``# NBVAL_CHECK_OUTPUT``) are copied whole: source, the
stored ``PASS <name>: k/k checks`` output, execution count and id, because they are the grader's
reference. Every other cell loses its outputs. Cell ids are kept, so the grader can find each
check cell in a learner's copy. After the first cell, every exercise gets :data:`ABOUT_PASS_LINES`:
why a check cell shows PASS before the learner has written anything, and how to keep a copy.

    python -m distillkit.grading.generate                   # rewrite exercises/
    python -m distillkit.grading.generate --run-solutions   # run solutions/ first (they store the PASS lines)
    python -m distillkit.grading.generate --check           # fail if exercises/ differs (CI)
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CHECK_TAG, CHECK_MARKER = "check", "# NBVAL_CHECK_OUTPUT"
PASS_LINE = re.compile(r"^PASS (?P<name>[A-Za-z0-9_]+): (?P<k>\d+)/(?P=k) checks\n$")
ABOUT_PASS_LINES_ID = "about-pass-lines"
ABOUT_PASS_LINES = """**Before you start: the PASS lines you see are not yours yet.** Each check cell below shows
`PASS <name>: k/k checks` as a *stored* output: what the reference solution printed, kept in the file
so that the grader (nbval) has a line to compare with. Until you run a check cell on your own code,
that line says nothing about your work: run every cell (*Kernel ▸ Restart Kernel and Run All Cells*)
and read what each check prints for you.

**Keep your own copy** before you write: *File ▸ Save Notebook As…* and name it, for example,
`my_copy.ipynb`; that is the file you grade."""


class ExerciseError(ValueError):
    """A solution or exercise notebook breaks the exercise conventions; the message names file and cell."""


def is_check_cell(cell) -> bool:
    return cell.cell_type == "code" and CHECK_TAG in cell.get("metadata", {}).get("tags", [])


def check_name(cell, where: str) -> str:
    """The check's name from the cell's stored PASS line; raises if the cell is not a valid check cell."""
    if not cell.source.startswith(CHECK_MARKER + "\n"):
        raise ExerciseError(f"{where}: a check cell's first line must be exactly {CHECK_MARKER!r}")
    if cell.get("execution_count") is None:
        raise ExerciseError(f"{where}: execution_count is null, so nbval would never compare its output; "
                            f"run the solution notebook and save it")
    outputs = cell.get("outputs", [])
    text = outputs[0].get("text", "") if len(outputs) == 1 and outputs[0].get("output_type") == "stream" \
        and outputs[0].get("name") == "stdout" else None
    match = PASS_LINE.match(text or "")
    if not match:
        raise ExerciseError(f"{where}: expected one stored stdout output 'PASS <name>: k/k checks', got {outputs!r}")
    return match["name"]


def strip_solutions(source: str, where: str, markdown: bool = False) -> str:
    out, inside, indent = [], False, ""
    for line in source.split("\n"):
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ExerciseError(f"{where}: {BEGIN!r} inside another solution region")
            inside, indent = True, line[:len(line) - len(line.lstrip())]
            out += ["*YOUR ANSWER HERE*"] if markdown else [f"{indent}# YOUR CODE HERE", f"{indent}raise NotImplementedError()"]
        elif stripped == END:
            if not inside:
                raise ExerciseError(f"{where}: {END!r} without {BEGIN!r}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ExerciseError(f"{where}: {BEGIN!r} is never closed")
    return "\n".join(out)


def make_exercise(solution: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    exercise = copy.deepcopy(solution)
    regions = 0
    for i, cell in enumerate(exercise.cells):
        where = f"{name} cell {i} (id {cell.get('id')})"
        if "id" not in cell:
            raise ExerciseError(f"{where}: cells need ids (nbformat >= 4.5) for the grader to match check cells")
        cell.get("metadata", {}).pop("execution", None)         # run timestamps would churn every regeneration
        if is_check_cell(cell):
            check_name(cell, where)
            if BEGIN in cell.source:
                raise ExerciseError(f"{where}: a check cell cannot hold a solution region")
            continue
        if cell.cell_type == "code":
            regions += cell.source.count(BEGIN)
            cell.source = strip_solutions(cell.source, where)
            cell.outputs = []
            cell.execution_count = None
        elif cell.cell_type == "markdown" and BEGIN in cell.source:
            cell.source = strip_solutions(cell.source, where, markdown=True)
    if not regions:
        raise ExerciseError(f"{name}: no {BEGIN!r} region, nothing for the learner to write")
    if not any(is_check_cell(c) for c in exercise.cells):
        raise ExerciseError(f"{name}: no check cell (tag {CHECK_TAG!r})")
    about = nbformat.v4.new_markdown_cell(ABOUT_PASS_LINES)
    about.id = ABOUT_PASS_LINES_ID
    exercise.cells.insert(1, about)
    return exercise


def run_solutions(solutions: Path) -> None:
    """Execute every solution notebook in place (in its folder), so check cells store their PASS lines."""
    from nbclient import NotebookClient

    for path in sorted(solutions.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        NotebookClient(notebook, timeout=600, kernel_name="python3", record_timing=False,
                       resources={"metadata": {"path": str(solutions)}}).execute()
        nbformat.write(notebook, path)
        print(f"ran {path}")


def generate(solutions: Path, exercises: Path, check: bool = False) -> list[str]:
    """Write (or, with ``check``, compare) one exercise per solution; returns the problems found."""
    problems = []
    sources = sorted(solutions.glob("*.ipynb"))
    if not sources:
        raise ExerciseError(f"no solution notebooks in {solutions}")
    for path in sources:
        text = nbformat.writes(make_exercise(nbformat.read(path, as_version=4), path.name)) + "\n"
        target = exercises / path.name
        if check:
            if not target.exists():
                problems.append(f"{target} is missing")
            elif target.read_text() != text:
                problems.append(f"{target} differs from what {path} generates")
        else:
            exercises.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    wanted = {p.name for p in sources}
    problems += [f"{p} has no solution in {solutions}" for p in sorted(exercises.glob("*.ipynb")) if p.name not in wanted]
    return problems


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m distillkit.grading.generate", description=__doc__.split("\n")[0])
    parser.add_argument("--solutions", type=Path, default=ROOT / "solutions")
    parser.add_argument("--exercises", type=Path, default=ROOT / "exercises")
    parser.add_argument("--check", action="store_true", help="fail if exercises/ differs from what would be generated")
    parser.add_argument("--run-solutions", action="store_true",
                        help="first execute solutions/*.ipynb in place (after editing a solution or a check)")
    args = parser.parse_args(argv)
    try:
        if args.run_solutions:
            run_solutions(args.solutions)
        problems = generate(args.solutions, args.exercises, check=args.check)
    except ExerciseError as err:
        sys.exit(f"error: {err}")
    if problems:
        sys.exit("exercises are out of date (run `python -m distillkit.grading.generate`):\n  " + "\n  ".join(problems))
    print(f"exercises {'up to date' if args.check else 'written'}: {args.exercises}")


if __name__ == "__main__":
    main()
