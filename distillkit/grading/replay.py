"""The grader process: decides each check of a notebook by running its helper again on the records
the sandboxed run wrote (``python -m distillkit.grading.replay RECORDS 'check_x(f, g)' ...``). How
records are written and answered: :mod:`distillkit.grading.record`."""

from __future__ import annotations

import ast
import contextlib
import io
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from distillkit.grading.record import RecordFolder, Replayer


def check_call(cell_source: str) -> tuple[str, list[str]]:
    """(helper name, names of the learner's functions) of a check cell's last line ``check_x(f, g)``."""
    tree = ast.parse(cell_source)
    call = tree.body[-1].value if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and not call.keywords
            and all(isinstance(a, ast.Name) for a in call.args)):
        raise ValueError(f"a check cell must end with a call check_<name>(<your functions>), got:\n{cell_source}")
    return call.func.id, [a.id for a in call.args]


NO_RECORD = "no record of this check: the check cell did not run in your notebook (or its record was removed)"


def replay(helper_name: str, functions: list[str], folder: Path | None, over: Callable[[], bool] = lambda: True,
           ) -> str | None:
    """Run check helper ``helper_name`` on the record of one of its runs (``folder``, written by
    :class:`~distillkit.grading.record.Recorder`; None: there is none): None if it passes, else why
    not. ``over()`` tells whether the notebook's run is over (until then a missing call is waited for)."""
    from distillkit.grading import checks

    if folder is None or not folder.is_dir():
        return NO_RECORD
    replayer = Replayer(RecordFolder(folder, over), {f"a{i}": name for i, name in enumerate(functions)})
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            getattr(checks, helper_name)(*(replayer.handle(f"a{i}", ["__call__"], name)
                                           for i, name in enumerate(functions)))
    except AssertionError as err:              # CheckFailed and ReplayError
        return str(err)
    except Exception as err:
        return f"{type(err).__name__}: {err}"
    return None


def wait_for(path: Path, over: Callable[[], bool]) -> bool:
    """Wait until ``path`` exists (True) or the run is over without it (False)."""
    while not path.exists():
        if over():
            return path.exists()
        time.sleep(0.05)
    return True


def record_of(helper: str, cell: int, records: Path, progress: Path, over: Callable[[], bool]) -> Path | None:
    """The record folder of the run of ``helper`` that check cell ``cell`` made: the first
    ``<helper>.<i>`` that was not there when the cell started (the sandboxed pytest lists the records
    folder in ``progress/<cell>.start``), waiting for it until the cell has run."""
    if not wait_for(progress / f"{cell}.start", over):
        return None
    try:
        before = set(json.loads((progress / f"{cell}.start").read_text()))
    except (OSError, ValueError, TypeError):
        before = set()
    cell_done = lambda: over() or (progress / str(cell)).exists()
    while True:
        finished = cell_done()
        runs = sorted((p for p in records.glob(f"{helper}.*") if p.name not in before and p.suffix[1:].isdigit()),
                      key=lambda p: int(p.suffix[1:]))
        if runs:
            return runs[0]
        if finished:
            return None
        time.sleep(0.05)


def main(argv: list[str]) -> None:
    """``python -m distillkit.grading.replay SPEC``, SPEC a JSON object: ``records`` (the folder the
    sandboxed run writes its records to), ``progress`` (where its pytest marks each code cell ``N``
    as started, ``N.start``, and as run, ``N``) and ``checks`` (each check cell's ``source`` and
    code-cell index ``cell``). Prints one JSON line per check, in order. A check is replayed from
    the moment its cell starts, each recorded call read as it is written, so the replay runs beside
    the notebook; a line on stdin says the run is over (whatever is missing then has no record).
    Torch and the checks are imported first, while the notebook starts."""
    import threading

    from distillkit.grading import checks  # noqa: F401  (imported while the learner's notebook still runs)

    torch.set_num_threads(1)
    spec = json.loads(argv[0])
    records, progress = Path(spec["records"]), Path(spec["progress"])
    ended = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), ended.set()), daemon=True).start()
    for check in spec["checks"]:
        name, functions = check_call(check["source"])
        folder = record_of(name, int(check["cell"]), records, progress, ended.is_set)
        print(json.dumps({"helper": name, "failure": replay(name, functions, folder, ended.is_set)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
