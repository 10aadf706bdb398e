"""How a check's verdict is computed outside the learner's process: record, then replay.

A check helper (``distillkit.grading.checks.check_*``) takes the learner's functions and calls them
on inputs it builds itself. Graded, each helper runs twice.

1. **Record**, in the learner's kernel inside the sandbox, when the check cell runs: every learner
   function handed to the helper is wrapped, and each call is written to
   ``$DISTILLKIT_GRADING_RECORDS/<helper>.json`` (tensors in ``<helper>.safetensors``): its
   arguments, its result or exception, how it changed its arguments (a tensor written in place, a
   list appended to, a generator drawn from) and, for a scalar tensor result, its gradient with
   respect to the tensor arguments that require one. The learner's code runs in that process, so
   none of it is trusted.
2. **Replay**, in a fresh grader process outside the sandbox (``python -m distillkit.grading.replay``):
   the same helper runs with stand-ins for the learner's functions that hand back the recorded
   results, call by call. Every input and every expected value is the grader's own; a recorded call
   whose arguments differ from the grader's fails the check. A record therefore passes only if it
   holds the right answers to the grader's own questions.

Only plain data crosses: JSON and safetensors (never pickle). A learner object the helper keeps
calling (an instance of the learner's class) crosses as a handle: the names of its methods, and
its method calls recorded like any other.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import functools
import io
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from distillkit.schema import ObservationSchema

RECORDS_ENV = "DISTILLKIT_GRADING_RECORDS"


class ReplayError(AssertionError):
    """A recorded call does not answer the grader's call: missing, or made with other arguments."""


# ------------------------------------------------------------------------------------------- codec
class Encoder:
    """Values -> JSON-able trees; tensors are copied aside (they may change after the call)."""

    def __init__(self):
        self.tensors: dict[str, torch.Tensor] = {}

    def tensor(self, value: torch.Tensor) -> str:
        key = f"t{len(self.tensors)}"
        self.tensors[key] = value.detach().cpu().clone().contiguous()
        return key

    def encode(self, value) -> dict:
        if value is None or isinstance(value, (bool, str)):
            return {"k": "py", "v": value}
        if isinstance(value, (int, np.integer)):
            return {"k": "py", "v": int(value)}
        if isinstance(value, (float, np.floating)):
            return {"k": "py", "v": float(value)}
        if isinstance(value, torch.Tensor):
            return {"k": "tensor", "t": self.tensor(value)}
        if isinstance(value, np.ndarray) and value.dtype != object:
            return {"k": "ndarray", "t": self.tensor(torch.from_numpy(np.ascontiguousarray(value)))}
        if isinstance(value, torch.Generator):
            return {"k": "generator", "t": self.tensor(value.get_state())}
        if isinstance(value, ObservationSchema):
            return {"k": "schema", "v": value.to_dict()}
        if isinstance(value, (list, tuple)):
            return {"k": type(value).__name__ if type(value) in (list, tuple) else "tuple",
                    "v": [self.encode(v) for v in value]}
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return {"k": "dict", "v": [[str(k), self.encode(v)] for k, v in value.items()]}
        return {"k": "opaque", "type": type(value).__name__}


class Opaque:
    """What the grader gets for a value that does not cross as data (an env, a module, a function)."""


def opaque(type_name: str) -> Opaque:
    name = type_name if type_name.isidentifier() else "Opaque"
    return type(name, (Opaque,), {})()           # so "expected an X, got <type>" messages still read right


def decode(node: dict, tensors: dict[str, torch.Tensor]):
    kind = node["k"]
    if kind == "py":
        if not (node["v"] is None or isinstance(node["v"], (bool, int, float, str))):
            raise ReplayError(f"a recorded value has the unexpected type {type(node['v']).__name__}")
        return node["v"]
    if kind in ("tensor", "ndarray", "generator"):
        tensor = tensors[node["t"]].clone()
        if kind == "ndarray":
            return tensor.numpy()
        if kind == "generator":
            generator = torch.Generator()
            generator.set_state(tensor)
            return generator
        return tensor
    if kind == "schema":
        return ObservationSchema.from_dict(node["v"], "the recorded schema")
    if kind in ("list", "tuple"):
        items = [decode(v, tensors) for v in node["v"]]
        return items if kind == "list" else tuple(items)
    if kind == "dict":
        return {str(k): decode(v, tensors) for k, v in node["v"]}
    if kind == "opaque":
        return opaque(str(node["type"]))
    raise ReplayError(f"a recorded value has the unknown kind {kind!r}")


def same(a: dict, b: dict, ta: dict, tb: dict) -> bool:
    """Two encoded values are the same: tensors equal within float round-off, the rest exactly."""
    if a.get("k") != b.get("k"):
        return False
    kind = a["k"]
    if kind == "py":
        x, y = a["v"], b.get("v")
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            return True
        return type(x) is type(y) and x == y
    if kind in ("tensor", "ndarray", "generator"):
        x, y = ta[a["t"]], tb[b["t"]]
        if x.dtype != y.dtype or x.shape != y.shape:
            return False
        if x.is_floating_point():
            return torch.allclose(x, y, rtol=1e-5, atol=1e-6, equal_nan=True)
        return torch.equal(x, y)
    if kind in ("list", "tuple", "dict"):
        xs, ys = a["v"], b["v"]
        if kind == "dict":
            if [k for k, _ in xs] != [k for k, _ in ys]:
                return False
            xs, ys = [v for _, v in xs], [v for _, v in ys]
        return len(xs) == len(ys) and all(same(x, y, ta, tb) for x, y in zip(xs, ys))
    if kind == "schema":
        return a["v"] == b["v"]
    return a.get("type") == b.get("type")          # opaque: the grader's own object, compared by type only


# ------------------------------------------------------------------------------------------ handles
class Handle:
    """A learner function, class or object as the check helper sees it while graded: calling it, or
    one of its methods, goes through ``call(method, args, kwargs)`` (recording or replaying)."""

    def __init__(self, type_name: str, methods: list[str], call: Callable):
        object.__setattr__(self, "_type_name", type_name)
        object.__setattr__(self, "_methods", methods)
        object.__setattr__(self, "_call", call)

    def __call__(self, *args, **kwargs):
        if "__call__" not in self._methods:
            raise TypeError(f"'{self._type_name}' object is not callable")
        return self._call("__call__", args, kwargs)

    def __getattr__(self, name: str):
        if name in self._methods:
            return lambda *args, **kwargs: self._call(name, args, kwargs)
        raise AttributeError(f"'{self._type_name}' object has no method {name!r}")


def methods_of(value) -> list[str]:
    names = [n for n in dir(type(value)) if not n.startswith("_") and callable(getattr(value, n, None))]
    return (["__call__"] if callable(value) else []) + names


class _Recorded(torch.autograd.Function):
    """A recorded scalar result that back-propagates the recorded gradient into the grader's inputs."""

    @staticmethod
    def forward(ctx, value, grads, *inputs):
        ctx.grads = grads
        return value.clone()

    @staticmethod
    def backward(ctx, grad_output):
        return (None, None, *[None if g is None else g * grad_output for g in ctx.grads])


def tensor_args(args: tuple, kwargs: dict) -> list[tuple[str, torch.Tensor]]:
    return [(str(i), a) for i, a in enumerate(args) if isinstance(a, torch.Tensor)] + \
        [(k, a) for k, a in kwargs.items() if isinstance(a, torch.Tensor)]


def mutable_args(args: tuple, kwargs: dict) -> list[tuple[str, object]]:
    return [(str(i), a) for i, a in enumerate(args)] + list(kwargs.items())


# ------------------------------------------------------------------------------------------- record
class Recorder:
    def __init__(self):
        self.encoder = Encoder()
        self.calls: list[dict] = []
        self.depth = 0                  # > 0 while a learner call runs: calls made inside it are part of it
        self.handles = 0

    def handle(self, target: str, value) -> Handle:
        return Handle(type(value).__name__, methods_of(value),
                      lambda method, args, kwargs: self.call(target, method, value, args, kwargs))

    def call(self, target: str, method: str, value, args: tuple, kwargs: dict):
        function = value if method == "__call__" else getattr(value, method)
        if self.depth:
            return function(*args, **kwargs)
        entry = {"target": target, "method": method, "args": self.encoder.encode(list(args)),
                 "kwargs": self.encoder.encode(kwargs)}
        before = {k: a.detach().clone() for k, a in tensor_args(args, kwargs)}
        self.calls.append(entry)
        self.depth += 1
        try:
            result = function(*args, **kwargs)
        except Exception as err:
            entry["error"] = {"type": type(err).__name__, "message": safe_str(err)}
            raise
        finally:
            self.depth -= 1
            entry["mutated"] = self.mutations(args, kwargs, before)
        entry["grads"] = self.gradients(result, args, kwargs)
        entry["result"] = self.encoder.encode(result)
        if entry["result"]["k"] == "opaque":         # an object the helper goes on using: a handle
            self.handles += 1
            entry["result"] = {"k": "handle", "id": f"h{self.handles}", "type": type(result).__name__,
                               "methods": methods_of(result)}
            return self.handle(entry["result"]["id"], result)
        return result

    def mutations(self, args: tuple, kwargs: dict, before: dict) -> dict:
        changed = {}
        for key, arg in mutable_args(args, kwargs):
            if isinstance(arg, torch.Tensor):
                if not torch.equal(arg.detach().cpu(), before[key].cpu()):
                    changed[key] = self.encoder.encode(arg)
            elif isinstance(arg, (list, dict, torch.Generator)):
                changed[key] = self.encoder.encode(arg)
        return changed

    def gradients(self, result, args: tuple, kwargs: dict) -> list | None:
        if not (isinstance(result, torch.Tensor) and result.requires_grad and result.numel() == 1):
            return None
        inputs = [(k, a) for k, a in tensor_args(args, kwargs) if a.requires_grad]
        if not inputs:
            return None
        grads = torch.autograd.grad(result, [a for _, a in inputs], retain_graph=True, allow_unused=True)
        return [[k, None if g is None else self.encoder.tensor(g)] for (k, _), g in zip(inputs, grads)]

    def save(self, stem: Path) -> None:
        stem.parent.mkdir(parents=True, exist_ok=True)
        save_file(self.encoder.tensors, str(stem.with_suffix(".safetensors")))
        stem.with_suffix(".json").write_text(json.dumps({"calls": self.calls}))


def safe_str(err: BaseException) -> str:
    try:
        return str(err)
    except Exception:
        return f"<{type(err).__name__} whose message cannot be printed>"


@contextlib.contextmanager
def grader_settings():
    """The torch settings the replay runs with, so a learner's setup cannot shift the check's inputs."""
    threads, dtype = torch.get_num_threads(), torch.get_default_dtype()
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float32)
    try:
        with torch.enable_grad():
            yield
    finally:
        torch.set_num_threads(threads)
        torch.set_default_dtype(dtype)


def graded(helper: Callable) -> Callable:
    """Decorates a check helper: with ``$DISTILLKIT_GRADING_RECORDS`` set (the grader's sandbox),
    it records the calls to the learner's functions; otherwise it just runs."""
    @functools.wraps(helper)
    def run(*functions):
        folder = os.environ.get(RECORDS_ENV)
        if folder is None:
            return helper(*functions)
        recorder = Recorder()
        try:
            with grader_settings():
                return helper(*(recorder.handle(f"a{i}", f) for i, f in enumerate(functions)))
        finally:
            recorder.save(Path(folder) / helper.__name__)
    return run


# ------------------------------------------------------------------------------------------- replay
def rebuilt_error(error: dict) -> Exception:
    name, message = str(error.get("type")), str(error.get("message"))
    cls = getattr(builtins, name, None)
    if not (isinstance(cls, type) and issubclass(cls, Exception)):
        cls = type(name if name.isidentifier() else "Error", (Exception,), {})
    return cls(message)


class Replayer:
    def __init__(self, calls: list[dict], tensors: dict[str, torch.Tensor], labels: dict[str, str]):
        self.calls, self.tensors, self.labels, self.next = calls, tensors, labels, 0

    def handle(self, target: str, methods: list[str], type_name: str) -> Handle:
        return Handle(type_name, methods, lambda method, args, kwargs: self.call(target, method, args, kwargs))

    def call(self, target: str, method: str, args: tuple, kwargs: dict):
        name = self.labels.get(target, "an object your code returned")
        what = f"call {self.next + 1} to your code ({name}{'' if method == '__call__' else '.' + method})"
        if self.next >= len(self.calls):
            raise ReplayError(f"{what}: your notebook's run has no record of it (the check cell did not run "
                              f"to here, or its records were changed)")
        entry = self.calls[self.next]
        self.next += 1
        if (entry.get("target"), entry.get("method")) != (target, method):
            raise ReplayError(f"{what}: the record holds a call to {entry.get('method')} of {entry.get('target')} "
                              f"here (records changed?)")
        mine = Encoder()
        asked = {"args": mine.encode(list(args)), "kwargs": mine.encode(kwargs)}
        if not all(same(asked[k], entry[k], mine.tensors, self.tensors) for k in asked):
            raise ReplayError(f"{what}: the grader's inputs differ from those your notebook's run recorded "
                              f"(did your code change torch settings, global random state or the package?)")
        arguments = dict(mutable_args(args, kwargs))
        for key, node in entry.get("mutated", {}).items():
            self.apply(arguments[key], decode(node, self.tensors))
        if "error" in entry:
            raise rebuilt_error(entry["error"])
        if "result" not in entry:
            raise ReplayError(f"{what}: the record holds neither a result nor an error")
        result = entry["result"]
        if result["k"] == "handle":
            return self.handle(result["id"], [str(m) for m in result["methods"]], str(result["type"]))
        value = decode(result, self.tensors)
        if entry.get("grads"):
            inputs = dict(tensor_args(args, kwargs))
            keys = [k for k, _ in entry["grads"]]
            grads = tuple(None if t is None else self.tensors[t] for _, t in entry["grads"])
            for key, grad in zip(keys, grads):
                if grad is not None and grad.shape != inputs[key].shape:
                    raise ReplayError(f"{what}: the recorded gradient has the wrong shape")
            value = _Recorded.apply(value, grads, *[inputs[k] for k in keys])
        return value

    @staticmethod
    def apply(arg, value) -> None:
        """The grader's argument takes the state the learner's call left it in."""
        if isinstance(arg, torch.Tensor) and isinstance(value, torch.Tensor) and value.shape == arg.shape:
            with torch.no_grad():
                arg.copy_(value)
        elif isinstance(arg, list) and isinstance(value, list):
            arg[:] = value
        elif isinstance(arg, dict) and isinstance(value, dict):
            arg.clear()
            arg.update(value)
        elif isinstance(arg, torch.Generator) and isinstance(value, torch.Generator):
            arg.set_state(value.get_state())
        else:
            raise ReplayError(f"the record changes a {type(arg).__name__} argument into a {type(value).__name__}")


def check_call(cell_source: str) -> tuple[str, list[str]]:
    """(helper name, names of the learner's functions) of a check cell's last line ``check_x(f, g)``."""
    tree = ast.parse(cell_source)
    call = tree.body[-1].value if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and not call.keywords
            and all(isinstance(a, ast.Name) for a in call.args)):
        raise ValueError(f"a check cell must end with a call check_<name>(<your functions>), got:\n{cell_source}")
    return call.func.id, [a.id for a in call.args]


def replay(helper_name: str, functions: list[str], records: Path) -> str | None:
    """Run check helper ``helper_name`` on the records in ``records``: None if it passes, else why not."""
    from distillkit.grading import checks

    stem = records / helper_name
    try:
        data = json.loads(stem.with_suffix(".json").read_text())
        tensors = load_file(str(stem.with_suffix(".safetensors")))
        calls = data["calls"]
        assert isinstance(calls, list)
    except FileNotFoundError:
        return "no record of this check: the check cell did not run in your notebook (or its record was removed)"
    except Exception as err:
        return f"the record of this check is unreadable ({type(err).__name__}): it was not written by the check"
    replayer = Replayer(calls, tensors, {f"a{i}": name for i, name in enumerate(functions)})
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            getattr(checks, helper_name)(*(replayer.handle(f"a{i}", ["__call__"], name)
                                           for i, name in enumerate(functions)))
    except AssertionError as err:              # CheckFailed and ReplayError
        return str(err)
    except Exception as err:
        return f"{type(err).__name__}: {err}"
    return None


def main(argv: list[str]) -> None:
    """``python -m distillkit.grading.replay RECORDS 'check_x(f, g)' ...``: one JSON line per check, in
    order, once a line on stdin says the records are complete (the imports happen before)."""
    from distillkit.grading import checks  # noqa: F401  (imported while the learner's notebook still runs)

    torch.set_num_threads(1)
    sys.stdin.readline()
    records = Path(argv[0])
    for source in argv[1:]:
        name, functions = check_call(source)
        print(json.dumps({"helper": name, "failure": replay(name, functions, records)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
