"""Engine logs go to a file, not into a learner's notebook.

The GPU engines print what a learner does not need to read: Isaac Lab a table per manager and
timings every time an env is built (hundreds of lines per env), Warp a warning from C when it finds
no CUDA driver (a red box in JupyterLab on every CPU-only machine, although the CPU device is what
that machine runs). Code that calls them runs inside :func:`engine_logs`, which sends everything
printed there to ``runs/logs/<engine>_<date>_<pid>.log`` and prints one line saying where, once per
engine and process. ``DISTILLKIT_ENGINE_LOGS=console`` keeps it all on the console.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

#: Where :func:`engine_logs` writes (one file per engine and process, created on first use).
LOG_DIR = Path(__file__).resolve().parents[2] / "runs" / "logs"
#: What each engine's file holds, for the line that says where it is.
WHAT = {"isaaclab": "Isaac Lab's engine logs (its [INFO] tables and warnings)",
        "mujoco_warp": "MuJoCo Warp's engine logs (Warp's start-up messages, e.g. that this machine has no CUDA driver)"}
_files: dict[str, TextIO] = {}


def log_file(engine: str) -> TextIO:
    """This process's log file for ``engine``, opened (and announced on stdout) on first use."""
    if engine not in WHAT:
        raise ValueError(f"engine logs exist for {sorted(WHAT)}, not {engine!r}")
    if engine not in _files:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        path = LOG_DIR / f"{engine}_{datetime.datetime.now():%Y-%m-%d_%H-%M-%S}_{os.getpid()}.log"
        _files[engine] = open(path, "a", buffering=1, encoding="utf-8")
        shown = os.path.relpath(path) if not os.path.relpath(path).startswith("..") else str(path)
        print(f"{WHAT[engine]} go to {shown}", flush=True)
    return _files[engine]


@contextlib.contextmanager
def engine_logs(engine: str) -> Iterator[None]:
    """Send everything printed or logged to the console inside the block - by Python code (stdout,
    stderr, stream handlers of the root logger) and by C libraries (file descriptors 1 and 2) - to
    this process's ``runs/logs/<engine>_*.log``."""
    if os.environ.get("DISTILLKIT_ENGINE_LOGS") == "console":
        yield
        return
    log = log_file(engine)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    handlers = [h for h in logging.getLogger().handlers
                if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)]
    streams = [h.stream for h in handlers]
    for handler in handlers:
        handler.setStream(log)
    saved = []
    try:
        for fd in (1, 2):
            try:
                saved.append((fd, os.dup(fd)))
                os.dup2(log.fileno(), fd)
            except OSError:           # no such descriptor (an embedding without a console): Python's streams only
                pass
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            yield
    finally:
        log.flush()
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
        for handler, stream in zip(handlers, streams):
            handler.setStream(stream)
