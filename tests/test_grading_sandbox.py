"""The grader against the learner's *code*: the sandbox, record and replay, and every attack
category graded 0 on every exercise (the table in README.md, "Graded exercises").

Each attack is written into the exercise as shipped (every ``raise NotImplementedError()`` left in
place), as a learner would write it.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import inspect
import json
import sys
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from distillkit.grading import checks, sandbox
from distillkit.grading.generate import is_check_cell
from distillkit.grading.grade import KERNEL_WATCH, grade, grade_class, run_nbval
from distillkit.grading.record import Calls, Encoder, Recorder, Replayer, ReplayError, graded
from distillkit.grading.replay import check_call, replay

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS, EXERCISES = ROOT / "solutions", ROOT / "exercises"
NAMES = sorted(p.name for p in SOLUTIONS.glob("*.ipynb"))


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def pass_lines(name: str) -> dict[str, str]:
    """{check helper: the PASS line its check cell must print} of an exercise."""
    return {check_call(c.source)[0]: c.outputs[0]["text"] for c in read(EXERCISES / name).cells if is_check_cell(c)}


# What each exercise asks for, taken from the package (the reference implementations).
REFERENCE_USE = {
    "01_schema_manifest.ipynb": """
from distillkit.leakage import schema_check
cartpole_manifest = lambda: make_env("cartpole", 1).schema
def privileged_inputs(input_names, schema):
    detail = schema_check(input_names, schema)["detail"]
    return [n for n in input_names if f"{n} (" in detail]
""",
    "02_gae_timeouts.ipynb": "from distillkit.ppo import bootstrap_timeouts, compute_gae as gae\n",
    "03_masked_distillation.ipynb": "from distillkit.distill import distillation_loss as masked_loss\n",
    "04_dagger_round.ipynb": """
from distillkit.rollouts import collect, mix_actions
def dagger_round(env, teacher, student, dataset, beta, obs, generator, steps=150):
    rollouts, obs = collect(env, teacher, steps, student=student, beta=beta, obs=obs, generator=generator)
    dataset.append((rollouts.obs, rollouts.teacher_actions))
    return obs
""",
    "05_student_only.ipynb": """
from distillkit.envs import EnvFactory
from distillkit.leakage import StudentOnly, counterfactual_probe
deployable, StudentOnlyPolicy = StudentOnly.deployable, StudentOnly
def action_change_without_privilege(policy, env, seed=0, warmup=20):
    return 0.0 if counterfactual_probe(policy, EnvFactory("cartpole"), seed=seed, warmup=warmup)["passed"] else 1.0
""",
    # the design exercise's answer key is the env's own schema (its other answers are choices, and
    # the package's probes are the tools it asks for)
    "06_design_privileged_teacher.ipynb": """
from distillkit.envs import EnvFactory
walker_design = lambda: EnvFactory("walker_rough").schema
""",
    # the package's paired test for the statistics; the experiment stays a stub (its answer is a
    # measurement: no package function returns it)
    "07_mask_analysis.ipynb": """
from distillkit.claims import paired
def paired_comparison(treated, control):
    test = paired(treated, control)
    return {"difference": test["difference"], "ci_low": test["difference_ci95"][0],
            "ci_high": test["difference_ci95"][1], "p_value": test["p_value"]}
""",
}


def attacks(name: str) -> dict[str, str]:
    """Attack category -> the learner cell that carries it out, for exercise ``name``."""
    lines = pass_lines(name)
    printers = "\n".join(f"_fake.{helper} = lambda *a, _line={line!r}: print(_line, end='')"
                         for helper, line in lines.items())
    fake_module = f"import types\n_fake = types.ModuleType('distillkit.grading.checks')\n{printers}\n"
    return {
        # the check helpers replaced by functions printing the PASS lines the exercise displays
        "monkeypatched helpers": fake_module.replace("_fake = types.ModuleType('distillkit.grading.checks')",
                                                     "import distillkit.grading.checks as _fake"),
        # the module the check cells import from replaced in sys.modules
        "swapped sys.modules": fake_module + "import sys, distillkit.grading\n"
                                             "sys.modules['distillkit.grading.checks'] = distillkit.grading.checks = _fake\n",
        # an IPython input transformer rewrites every check cell into a print of its PASS line
        "IPython hooks": f"""
_lines = {lines!r}
def _forge(cell_lines):
    source = "".join(cell_lines)
    return [f"print({{line!r}}, end='')\\n" for helper, line in _lines.items() if helper + "(" in source][:1] or cell_lines
get_ipython().input_transformers_post.append(_forge)
""",
        # builtins.__import__ hands the check cells a module of PASS printers
        # (written into every solution cell: the real import is kept once, or the second cell's
        # hook would call the first one's, itself, forever)
        "patched builtins": fake_module + """
import builtins
if not hasattr(builtins, "_real_import"):
    builtins._real_import = builtins.__import__
def _import(name, globals=None, locals=None, fromlist=(), level=0):
    if name == "distillkit.grading.checks":
        return _fake
    return builtins._real_import(name, globals, locals, fromlist, level)
builtins.__import__ = _import
""",
        # rewrite the installed package's checker (an editable install: the repository's own file)
        # so that every helper, in this grade and every later one, prints its PASS line
        "files outside the sandbox": f"""
import pathlib, distillkit.grading.checks as _checks
_lines = {lines!r}
_patch = "".join(f"\\ndef {{helper}}(*a):\\n    print({{line!r}}, end='')\\n" for helper, line in _lines.items())
for _path in [pathlib.Path(_checks.__file__), pathlib.Path(_checks.__file__).parent / "grade.py"]:
    try:
        _path.write_text(_path.read_text() + _patch)
    except OSError as err:
        print("could not write", _path, err)
import importlib; importlib.reload(_checks)
""",
        "reference implementation": REFERENCE_USE[name],
        # the check cells' stored outputs are PASS lines (below), and every record the checks wrote
        # is overwritten after each cell with calls that all "succeeded"
        "forged outputs": """
import json, os, pathlib
def _forge_records(*_):
    for path in pathlib.Path(os.environ.get("DISTILLKIT_GRADING_RECORDS", "/nonexistent")).rglob("[0-9]*.json"):
        call = json.loads(path.read_text())
        call.pop("error", None)
        call["result"] = {"k": "py", "v": 0.0}
        path.write_text(json.dumps(call))
get_ipython().events.register("post_run_cell", _forge_records)
""",
    }


def attacked(name: str, attack: str) -> nbformat.NotebookNode:
    """The exercise as shipped with the attack written into every solution cell, right after the
    stub it leaves in place (so the attack's definitions are the ones the check cells get). Only
    the setup, solution and check cells are kept: a demo cell (exercise 04 runs DAgger once more)
    adds grading time and no way in."""
    nb = read(EXERCISES / name)
    nb.cells = [c for c in nb.cells if c.cell_type == "code" and (c.id == "setup" or c.id.startswith("solution-")
                                                                   or is_check_cell(c))]
    for cell in nb.cells:
        if cell.id.startswith("solution-"):
            lines = cell.source.split("\n")
            end = max(node.end_lineno for node in ast.parse(cell.source).body
                      if isinstance(node, (ast.FunctionDef, ast.ClassDef)))
            cell.source = "\n".join(lines[:end] + [attacks(name)[attack]] + lines[end:])
    if attack == "forged outputs":
        for i, cell in enumerate(c for c in nb.cells if is_check_cell(c)):
            cell.execution_count = 40 + i              # a saved run whose check cells all printed PASS
    return nb


def package_fingerprint() -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(sandbox.PACKAGE.rglob("*.py"))}


ATTACKS = list(attacks(NAMES[1]))


# ------------------------------------------------------------------------------ record and replay
def solution_function(name: str, function: str):
    namespace: dict = {}
    for cell in read(SOLUTIONS / name).cells:
        if cell.cell_type == "code" and (cell.id == "setup" or cell.id.startswith("solution-")):
            exec(compile(cell.source, f"{name}:{cell.id}", "exec"), namespace)
    return namespace[function]


def recorded(helper, *functions, folder: Path) -> Path:
    """Run ``helper`` as the sandbox does, recording into ``folder``; returns its record."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DISTILLKIT_GRADING_RECORDS", str(folder))
        try:
            helper(*functions)
        except checks.CheckFailed:
            pass
    runs = sorted(folder.glob(f"{helper.__name__}.*"))
    return runs[-1]


def test_replay_passes_an_honest_record_and_fails_a_forged_or_missing_one(tmp_path):
    gae = solution_function(NAMES[1], "gae")
    record = recorded(checks.check_gae, gae, folder=tmp_path)
    assert record.name == "check_gae.1" and (record / "end.json").exists()
    assert replay("check_gae", ["gae"], record) is None

    first, second = (json.loads((record / f"{j}.json").read_text()) for j in (1, 2))
    forged = dict(second, result={"k": "tuple", "v": [{"k": "py", "v": 0.0}, {"k": "py", "v": 0.0}]})
    (record / "2.json").write_text(json.dumps(forged))                  # call 2 answered with numbers
    assert "one step" in replay("check_gae", ["gae"], record)
    (record / "2.json").write_text(json.dumps(second))

    other = json.loads(json.dumps(first))
    other["args"]["v"][4] = {"k": "py", "v": 0.5}                       # recorded for another gamma
    (record / "1.json").write_text(json.dumps(other))
    assert "the grader's inputs differ" in replay("check_gae", ["gae"], record)
    (record / "1.json").write_text(json.dumps(first))

    def gae_setting_its_own_questions(rewards, values, dones, last_values, gamma, lam):
        for tensor in (rewards, values, last_values):
            tensor.zero_()          # all-zero inputs: all-zero advantages are right for them
        return torch.zeros_like(rewards), torch.zeros_like(rewards)

    zeroing = recorded(checks.check_gae, gae_setting_its_own_questions, folder=tmp_path / "zeroing")
    assert "FAIL gae: 0/6" in replay("check_gae", ["gae"], zeroing)

    for j in range(3, 7):
        (record / f"{j}.json").unlink()
    assert "has no record of it" in replay("check_gae", ["gae"], record)
    (record / "1.json").write_text("not json")
    assert "unreadable" in replay("check_gae", ["gae"], record)
    assert "no record of this check" in replay("check_gae", ["gae"], None)
    assert "no record of this check" in replay("check_gae", ["gae"], tmp_path / "check_gae.9")


def test_replay_reads_calls_while_they_are_written(tmp_path):
    """A replay started before the kernel's run waits for each call, so it can run beside the notebook."""
    import threading
    import time

    record = recorded(checks.check_gae, solution_function(NAMES[1], "gae"), folder=tmp_path / "done")
    live = tmp_path / "live" / record.name
    live.mkdir(parents=True)

    def write_slowly():          # in the Recorder's order: a call's tensors, then its entry; each file whole
        order = lambda p: (p.name == "end.json", int(p.name.split(".")[0]) if p.name[0].isdigit() else 0, p.suffix == ".json")
        for path in sorted(record.iterdir(), key=order):
            time.sleep(0.05)
            (live / (path.name + ".partial")).write_bytes(path.read_bytes())
            (live / (path.name + ".partial")).rename(live / path.name)

    writer = threading.Thread(target=write_slowly)
    writer.start()
    assert replay("check_gae", ["gae"], live, over=lambda: False) is None
    writer.join()


def test_replay_carries_gradients_mutations_and_learner_objects(tmp_path):
    """masked_loss's gradient, bootstrap's in-place write and the wrapper class's instances cross as data."""
    record = recorded(checks.check_masked_loss, solution_function(NAMES[2], "masked_loss"), folder=tmp_path)
    assert replay("check_masked_loss", ["masked_loss"], record) is None

    def in_place(rewards, truncated, final_values, gamma):
        rewards += gamma * final_values * truncated
        return rewards

    record = recorded(checks.check_bootstrap, in_place, folder=tmp_path)
    assert "do not add in place" in replay("check_bootstrap", ["bootstrap_timeouts"], record)

    deployable, wrapper = (solution_function(NAMES[4], f) for f in ("deployable", "StudentOnlyPolicy"))
    record = recorded(checks.check_student_only, deployable, wrapper, folder=tmp_path)
    assert replay("check_student_only", ["deployable", "StudentOnlyPolicy"], record) is None

    class NoReset(wrapper):
        def reset(self, done=None):
            pass

    record = recorded(checks.check_student_only, deployable, NoReset, folder=tmp_path)
    assert record.name == "check_student_only.2"
    assert "forward reset(done)" in replay("check_student_only", ["deployable", "StudentOnlyPolicy"], record)


def test_replay_carries_mask_rules_and_refuses_forged_ones(tmp_path):
    """Exercise 06's answers cross as data: MaskRules with the types it declares, NumPy verdicts as bools."""
    mask_design = solution_function(NAMES[5], "mask_design")
    record = recorded(checks.check_design_masks, mask_design, folder=tmp_path)
    assert replay("check_design_masks", ["mask_design"], record) is None
    honest = json.loads((record / "1.json").read_text())
    assert honest["result"]["k"] == "mask_rules"
    forged = json.loads(json.dumps(honest))
    forged["result"]["v"]["fall_horizon"] = "10"
    (record / "1.json").write_text(json.dumps(forged))
    assert "fall_horizon must be an int or None" in replay("check_design_masks", ["mask_design"], record)
    del forged["result"]["v"]["timeouts"]
    (record / "1.json").write_text(json.dumps(forged))
    assert "expected the settings" in replay("check_design_masks", ["mask_design"], record)
    assert Encoder().encode(np.bool_(False)) == {"k": "py", "v": False}


def test_replay_refuses_a_record_made_on_other_inputs():
    """The grader's inputs are its own: a record of a call on other inputs answers nothing."""
    recorder = Recorder()
    recorder.handle("a0", solution_function(NAMES[1], "gae"))(
        torch.ones(2, 1), torch.zeros(2, 1), torch.zeros(2, 1, dtype=torch.bool), torch.ones(1), 0.9, 0.95)
    stand_in = Replayer(Calls(recorder.calls, recorder.tensors), {"a0": "gae"}).handle("a0", ["__call__"], "gae")
    with pytest.raises(ReplayError, match="call 1 to your code \\(gae\\): the grader's inputs differ"):
        stand_in(torch.ones(2, 1) * 2, torch.zeros(2, 1), torch.zeros(2, 1, dtype=torch.bool), torch.ones(1), 0.9, 0.95)


def test_graded_helpers_only_record_inside_the_grader(tmp_path, monkeypatch, capsys):
    calls = []

    @graded
    def check_twice(f):
        calls.append(type(f).__name__)
        f(1.0)
        f(2.0)

    check_twice(lambda x: x)
    assert calls == ["function"] and not list(tmp_path.iterdir())
    monkeypatch.setenv("DISTILLKIT_GRADING_RECORDS", str(tmp_path))
    check_twice(lambda x: x)
    assert calls[-1] == "Handle"
    record = tmp_path / "check_twice.1"
    assert [json.loads((record / f"{j}.json").read_text())["args"]["v"][0]["v"] for j in (1, 2)] == [1.0, 2.0]
    assert json.loads((record / "end.json").read_text()) == {"calls": 2}


# -------------------------------------------------------------------------------------- sandbox
def sandboxed(tmp_path: Path, code: str, exercise: str = "02_gae_timeouts", **limits) -> sandbox.SandboxRun:
    work = tmp_path / "work"
    work.mkdir(parents=True)
    return sandbox.run(["python", "-c", code], work, exercise, sandbox.Limits(**limits), {})


def test_sandbox_hides_the_machine_and_protects_the_package(tmp_path):
    before = package_fingerprint()
    readme = (ROOT / "README.md").read_bytes()
    run = sandboxed(tmp_path, f"""
import os, socket, pathlib
import distillkit.grading.checks as c
for target in [c.__file__, {str(ROOT / 'README.md')!r}, {str(tmp_path / 'outside')!r}, "/sandbox/inside"]:
    try:
        pathlib.Path(target).write_text("x")
        print("wrote", target)
    except OSError as err:
        print("refused", target, type(err).__name__)
print("solutions visible:", os.path.exists({str(SOLUTIONS)!r}), "git visible:", os.path.exists({str(ROOT / '.git')!r}))
try:
    socket.create_connection(("1.1.1.1", 80), timeout=2)
except OSError as err:
    print("network:", type(err).__name__)
from distillkit.ppo import compute_gae
try:
    compute_gae(None, None, None, None, 0.9, 0.9)
except RuntimeError as err:
    print(err)
cache = pathlib.Path(c.__file__).parent / "__pycache__"
print("pycache:", os.listdir(cache) if cache.exists() else "none")
print("processes:", sorted(p for p in os.listdir("/proc") if p.isdigit()))
""")
    out = run.output
    assert run.returncode == 0 and run.problem == "", out
    assert f"refused {checks.__file__} OSError" in out, out
    # outside /tmp the repository's folder does not exist in the sandbox; a repository under /tmp (a CI
    # clone) has its path in the sandbox's private /tmp, where a write lands and is thrown away
    assert (ROOT / "README.md").read_bytes() == readme
    assert f"refused {tmp_path / 'outside'}" in out and "wrote /sandbox/inside" in out, out
    assert "solutions visible: False git visible: False" in out and "network: OSError" in out, out
    assert "distillkit.ppo.compute_gae is not available while exercise 02_gae_timeouts is graded" in out, out
    assert "pycache: []" in out or "pycache: none" in out, out
    assert "processes: ['1', '2']" in out, out                 # bwrap's init and python: nothing of the host
    assert package_fingerprint() == before


def test_sandbox_limits_time_and_output(tmp_path):
    slow = sandboxed(tmp_path / "a", "while True: pass", wall_s=3)
    assert slow.returncode is None and slow.problem == "time-out: still running after 3 s"
    loud = sandboxed(tmp_path / "b", "import sys\nwhile True: sys.stdout.write('x' * 65536)", output_mb=1)
    assert loud.problem == "output limit: more than 1 MB of output"
    greedy = sandboxed(tmp_path / "c", "x = bytearray(3 * 2**30)", memory_gb=2)
    assert "MemoryError" in greedy.output and greedy.returncode == 1


def test_sandbox_replaces_each_reference_and_only_those():
    for exercise, references in sandbox.REFERENCES.items():
        for module, name in references:
            original = ast.parse(sandbox.module_file(module).read_text())
            source = sandbox.without_references(module, [name], exercise)
            replaced = ast.parse(source)
            changed = [a.name for a, b in zip(original.body, replaced.body) if ast.dump(a) != ast.dump(b)]
            assert changed == [name], (module, changed)
            overlay = types.ModuleType(f"{module}_without_{name}")      # a module of its own: dataclasses look it up
            with pytest.MonkeyPatch.context() as mp:
                mp.setitem(sys.modules, overlay.__name__, overlay)
                exec(compile(source, module, "exec"), overlay.__dict__)
            target = getattr(overlay, name)
            function = target.__init__ if isinstance(target, type) else target
            required = [p for p in inspect.signature(function).parameters.values() if p.default is p.empty]
            with pytest.raises(RuntimeError, match=f"{module}.{name} is not available while exercise {exercise}"):
                function(*[None] * len(required))
    with pytest.raises(sandbox.SandboxError, match="defines no top-level"):
        sandbox.without_references("distillkit.ppo", ["no_such_function"], "x")


def test_the_kernel_watch_counts_a_dead_kernel_only_while_a_cell_runs():
    """nbval stops the kernel itself after the last cell, before pytest writes its report: a watch
    that counted that as a death made clean submissions 'crash' now and then (seen in class runs)."""
    conftest: dict = {}
    exec(compile(KERNEL_WATCH, "conftest.py", "exec"), conftest)
    alive = types.SimpleNamespace(is_alive=lambda: True)
    dead = types.SimpleNamespace(is_alive=lambda: False)
    session = lambda kernel: types.SimpleNamespace(items=[types.SimpleNamespace(parent=types.SimpleNamespace(kernel=kernel))])
    assert not conftest["kernel_died"](session(dead)), "between cells and after the last one, a stopped kernel is no crash"
    conftest["CELL_RUNNING"].set()
    assert conftest["kernel_died"](session(dead)), "a kernel dead while a cell runs is a crash"
    assert not conftest["kernel_died"](session(alive))
    assert not conftest["kernel_died"](types.SimpleNamespace(items=[])), "no notebook collected yet"


@pytest.mark.slow
def test_sandbox_problems_are_named_and_the_run_still_reports(tmp_path):
    """A cell that never ends, a kernel that dies, a cell out of memory: each named, none hangs."""
    def run(case: str, source: str, **kwargs):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell(source), nbformat.v4.new_code_cell("x")]
        work = tmp_path / case
        work.mkdir()
        return run_nbval(nb, "n.ipynb", work, "none", **kwargs)

    results, problem = run("loop", "while True:\n    pass", timeout_s=5, limits=sandbox.Limits())
    assert problem == "time-out: a cell ran longer than 5 s" and results[0] is None, (problem, results)
    results, problem = run("dies", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", timeout_s=600,
                           limits=sandbox.Limits(wall_s=300))
    assert problem == "crash: the kernel died", problem
    results, problem = run("hog", "hog = bytearray(8 * 2**30)", timeout_s=60, limits=sandbox.Limits(memory_gb=4))
    assert problem == "memory: a cell ran out of its 4 GB" and "MemoryError" in results[1], (problem, results)


# ------------------------------------------------------------------------- attacks x exercises
@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_every_attack_scores_zero(name, tmp_path):
    """One row of the attacks x exercises table: every attack on exercise ``name`` scores 0."""
    before = package_fingerprint()
    for i, attack in enumerate(ATTACKS):
        nbformat.write(attacked(name, attack), tmp_path / f"{i}.ipynb")
    with ThreadPoolExecutor(max_workers=2) as pool:          # each grade is its own sandbox
        results = dict(zip(ATTACKS, pool.map(lambda i: grade(EXERCISES / name, tmp_path / f"{i}.ipynb"),
                                             range(len(ATTACKS)))))
    scores = {attack: f"{r.score}/{r.max_score}" for attack, r in results.items()}
    print(name, scores)
    assert all(r.score == 0 and r.max_score >= 2 for r in results.values()), scores
    assert package_fingerprint() == before
    for attack, result in results.items():
        details = " ".join(c.detail for c in result.checks)
        if attack in ("monkeypatched helpers", "swapped sys.modules", "IPython hooks", "patched builtins"):
            assert "no record of this check" in details, (attack, result.summary())
        if attack == "reference implementation":
            expected = {"01": "the package's own cart-pole schema",
                        "06": "reasons copied word for word"}.get(name[:2], "is not available while exercise")
            assert expected in details, (attack, result.summary())
        if attack == "files outside the sandbox":
            assert "not written yet (NotImplementedError)" in details, (attack, result.summary())


@pytest.mark.slow
def test_one_tampering_submission_leaves_the_class_unchanged(tmp_path):
    """Graded in one class run: a submission that tries to rewrite the checker and the other
    submissions, one that runs out of memory and one whose kernel dies; the honest one keeps
    full marks, and each problem lands in the sandbox column."""
    name = NAMES[2]
    folder = tmp_path / "class"
    folder.mkdir()
    solved = read(EXERCISES / name)
    solution = {c.id: c for c in read(SOLUTIONS / name).cells}
    for cell in solved.cells:
        if cell.id.startswith("solution-"):
            cell.source = solution[cell.id].source
    before = package_fingerprint()
    tamper = attacked(name, "files outside the sandbox")
    tamper.cells[1].source += f"""
for _other in pathlib.Path({str(folder)!r}).glob("*.ipynb"):
    try:
        _other.write_text("{{}}")
    except OSError as err:
        print("could not write", _other, err)
"""
    greedy, dying = read(EXERCISES / name), read(EXERCISES / name)
    greedy.cells.insert(1, nbformat.v4.new_code_cell("hog = bytearray(32 * 2**30)", id="hog"))
    dying.cells.insert(1, nbformat.v4.new_code_cell("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", id="die"))
    for student, nb in (("alice", solved), ("bob", tamper), ("carol", greedy), ("dave", dying), ("zoe", solved)):
        nbformat.write(nb, folder / f"{student}.ipynb")
    out = grade_class(EXERCISES / name, folder, echo=lambda line: None)
    rows = {r["student"]: r for r in csv.DictReader(out.open())}
    assert (rows["alice"]["score"], rows["zoe"]["score"], rows["bob"]["score"]) == ("2", "2", "0"), rows
    assert rows["alice"]["sandbox"] == rows["zoe"]["sandbox"] == rows["bob"]["sandbox"] == ""
    assert rows["carol"]["sandbox"].startswith("memory") and rows["carol"]["score"] == "0", rows["carol"]
    assert rows["dave"]["sandbox"].startswith("crash") and rows["dave"]["score"] == "0", rows["dave"]
    assert package_fingerprint() == before
    assert read(folder / "zoe.ipynb") == solved


def test_the_private_tmp_does_not_hide_an_environment_or_package_under_tmp(tmp_path):
    """A clean CI clone may sit in a temporary folder: the sandbox's own /tmp must be mounted
    before the environment, the package and their overlays, or it covers them (bwrap applies
    mounts in order)."""
    work = tmp_path / "work"
    work.mkdir()
    args = sandbox.mounts(work, "02_gae_timeouts.ipynb")
    private_tmp = next(i for i in range(len(args) - 1) if args[i] == "--tmpfs" and args[i + 1] == "/tmp")
    destinations = [i for i in range(len(args) - 2) if args[i] in ("--ro-bind", "--bind")]
    assert all(private_tmp < i for i in destinations)
    assert all(private_tmp < i for i in range(len(args) - 1) if args[i] == "--tmpfs" and args[i + 1] != "/tmp")
