"""Call every public function and constructor of micrograd_cpp with bad input and print
what happens, as the Markdown table of docs/reliability.md.

    python docs/bad_inputs.py            # the table
    python docs/bad_inputs.py --check    # exit 1 if a rejected call changed any state

Each row runs one statement against the same fixture: a model with an SGD and an Adam
optimizer, a small labelled graph, and files for Module.load. After it, the script
compares the fixture's state (every parameter's data and grad, the graph's data, grads and
labels, the optimizers' lr, the number of live nodes of both arenas) with the state before.
Rows marked "subprocess" run in a child interpreter, because the call crashes or corrupts
memory (known bugs, see docs/reliability.md); their column shows how the child ended.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import warnings
from typing import Any

SETUP = """
import copy, gc, json, math, pickle, random
from decimal import Decimal
from fractions import Fraction
import numpy as np
import micrograd_cpp as mg
from micrograd_cpp import Value, Value32, nn, viz
from micrograd_cpp import _core

random.seed(0)
model = nn.MLP(2, [3, 1])
sgd = nn.SGD(model.parameters(), lr=0.1)
adam = nn.Adam(model.parameters(), lr=0.01)
v = Value(2.0, label="v")
w = Value(-3.0)
g = (v * w).tanh() + v
g.backward()
v32 = Value32(1.5)
model([1.0, 2.0]).backward()


class Forged:  # pickles as cls(*args) with the given state: a foreign or damaged file

    def __init__(self, cls, args, state):
        self.cls, self.args, self.state = cls, args, state

    def __reduce__(self):
        return (self.cls, self.args, self.state)


good_pickle = pickle.dumps((model, adam, g))
graph_state = list(g.__reduce__()[2])
short_graph_state = tuple(graph_state[:7] + [graph_state[7][:-3]] + graph_state[8:])
v2_pickle = pickle.dumps(Forged(Value, (1.0,), ("micrograd_cpp.Value", 2, "float64", "leaf",
                                                0.0, "")))
adam_v2_pickle = pickle.dumps(Forged(nn.Adam, adam.__reduce__()[1],
                                     ("micrograd_cpp.Adam", 2) + adam.__reduce__()[2][2:]))
short_graph_pickle = pickle.dumps(Forged(Value, (1.0,), short_graph_state))
good_sd = model.state_dict()
"""

NAN = "float('nan')"
INF = "float('inf')"

# (section, statement); a leading "!" runs the statement in a subprocess.
CASES: list[tuple[str, str]] = [
    ("Value / Value32 constructor", 'Value("1.0")'),
    ("Value / Value32 constructor", "Value(None)"),
    ("Value / Value32 constructor", "Value([1.0])"),
    ("Value / Value32 constructor", "Value(1 + 2j)"),
    ("Value / Value32 constructor", "Value(10**400)"),
    ("Value / Value32 constructor", "Value(np.array([1.0]))"),
    ("Value / Value32 constructor", "Value()"),
    ("Value / Value32 constructor", 'Value(1.0, "v")'),
    ("Value / Value32 constructor", "Value(1.0, label=3)"),
    ("Value / Value32 constructor", "Value(1.0, label=None)"),
    ("Value / Value32 constructor", 'Value(1.0, label="\\ud800")'),
    ("Value / Value32 constructor", f"Value({NAN})"),
    ("Value / Value32 constructor", f"Value(-{INF})"),
    ("Value / Value32 constructor", "Value32(1e300)"),
    ("Value / Value32 constructor", "Value(Fraction(1, 3)), Value(Decimal('0.1')), Value(True)"),
    ("Value / Value32 constructor", "class Sub(Value): pass"),
    ("data, grad, label setters", 'setattr(v, "data", "x")'),
    ("data, grad, label setters", 'setattr(v, "grad", None)'),
    ("data, grad, label setters", 'setattr(v, "data", 10**400)'),
    ("data, grad, label setters", 'setattr(v, "label", 5)'),
    ("data, grad, label setters", 'setattr(v, "label", "\\udc00")'),
    ("data, grad, label setters", 'setattr(v, "_op", "+")'),
    ("data, grad, label setters", 'setattr(v, "_prev", set())'),
    ("data, grad, label setters", f'setattr(w, "data", {NAN})'),
    ("operators", 'v + "x"'),
    ("operators", '"x" * v'),
    ("operators", "v - None"),
    ("operators", "v / [1.0]"),
    ("operators", "v ** 1j"),
    ("operators", "2 ** Value32(1.0) + v"),
    ("operators", "v * v32"),
    ("operators", "v32 ** v"),
    ("operators", "v + 10**400"),
    ("operators", "v + np.array([1.0, 2.0])"),
    ("operators", "np.array([1.0, 2.0]) * v"),
    ("operators", "v / 0, Value(0.0) / 0, Value(-8.0) ** (1/3), Value(0.0) ** -1"),
    ("operators", "v < 1"),
    ("operators", "float(v)"),
    ("operators", "abs(v)"),
    ("operators", "v.relu(1)"),
    ("operators", "v.backward(True)"),
    ("operators", "object.__new__(Value)"),
    ("copy and pickle", "copy.copy(v)"),
    ("copy and pickle", "pickle.dumps(v)"),
    ("copy and pickle", "pickle.loads(good_pickle[:-20])"),
    ("copy and pickle", "pickle.loads(good_pickle[:200])"),
    ("copy and pickle", "pickle.loads(b'')"),
    ("copy and pickle", "pickle.loads(v2_pickle)"),
    ("copy and pickle", "pickle.loads(adam_v2_pickle)"),
    ("copy and pickle", "pickle.loads(short_graph_pickle)"),
    ("copy and pickle", "v.__setstate__(tuple(graph_state))"),
    ("copy and pickle", "adam.__setstate__(('micrograd_cpp.Adam', 1, [0.0], [0.0], 1))"),
    ("copy and pickle", "sgd.__setstate__(('micrograd_cpp.SGD', 1, [], -1))"),
    ("nn constructors", "nn.Neuron(0)"),
    ("nn constructors", "nn.Neuron(2.0)"),
    ("nn constructors", "nn.Neuron(True)"),
    ("nn constructors", 'nn.Neuron(2, nonlin="no")'),
    ("nn constructors", "nn.Layer(2, 0)"),
    ("nn constructors", "nn.Layer(2, 3, bias=False)"),
    ("nn constructors", "nn.MLP(0, [1])"),
    ("nn constructors", 'nn.MLP(2, "16")'),
    ("nn constructors", "nn.MLP(2, [4, -1])"),
    ("nn constructors", "nn.MLP(2, [])([1.0, 2.0])"),
    ("nn calls", "model([1.0])"),
    ("nn calls", "model([1.0, 2.0, 3.0])"),
    ("nn calls", 'model([1.0, "2"])'),
    ("nn calls", "model([1.0, None])"),
    ("nn calls", "model(5)"),
    ("nn calls", 'model("ab")'),
    ("nn calls", "model([Value32(1.0), 2.0])"),
    ("nn calls", "model(x for x in [1.0, 2.0])"),
    ("nn calls", "model((x for x in [1.0, 1 / 0]))"),
    ("nn calls", f"model([{NAN}, {INF}])"),
    ("nn calls", "model.layers[0].neurons[0]([1.0])"),
    ("nn calls", "model.layers[1]([1.0, 2.0])"),
    (
        "nn calls",
        "!class M:\n    def __float__(self): xs.clear(); return 1.0\n"
        "xs = [Value(1.0) * 1, M()]\n"
        "print('got', model(xs).data, 'want', model([1.0, 1.0]).data)",
    ),
    ("losses", "nn.mse_loss([], [])"),
    ("losses", "nn.mse_loss([v, w], [1.0])"),
    ("losses", "nn.mse_loss([v, 2.0], [1.0, 2.0])"),
    ("losses", 'nn.mse_loss([v], ["1"])'),
    ("losses", "nn.mse_loss(v, [1.0])"),
    ("losses", "nn.mse_loss([v], [v32])"),
    ("losses", f"nn.mse_loss([v], [{NAN}])"),
    ("losses", "nn.hinge_loss([v, w], [1, None])"),
    ("losses", "nn.hinge_loss([v, w], [1])"),
    ("losses", f"nn.hinge_loss([v], [{INF}])"),
    ("losses", "nn.binary_cross_entropy_with_logits([v], [2.0])"),
    ("losses", "nn.binary_cross_entropy_with_logits([v], [])"),
    ("losses", "nn.cross_entropy_loss([[v, w]], [2])"),
    ("losses", "nn.cross_entropy_loss([[v, w]], [-1])"),
    ("losses", "nn.cross_entropy_loss([[v, w]], [0.0])"),
    ("losses", "nn.cross_entropy_loss([[v, w]], [10**30])"),
    ("losses", "nn.cross_entropy_loss([[]], [0])"),
    ("losses", "nn.cross_entropy_loss([[v, w], [v]], [0, 1])"),
    ("losses", "nn.cross_entropy_loss([v, w], [0, 0])"),
    ("losses", "nn.l2_penalty([v, 2.0], 0.1)"),
    ("losses", 'nn.l2_penalty([v], "x")'),
    ("losses", f"nn.l2_penalty([v], {NAN})"),
    (
        "losses",
        "!class M:\n    def __float__(self): ys.clear(); return 1.0\n"
        "ys = [M(), 1.0, -1.0]\nprint(nn.hinge_loss([v, w, v], ys))",
    ),
    ("optimizers", "nn.SGD(model.parameters(), lr=-0.1)"),
    ("optimizers", f"nn.SGD(model.parameters(), lr={NAN})"),
    ("optimizers", "nn.SGD(model.parameters(), lr='0.1')"),
    ("optimizers", "nn.SGD(model.parameters())"),
    ("optimizers", "nn.SGD([1.0, 2.0], lr=0.1)"),
    ("optimizers", "nn.SGD([v32], lr=0.1)"),
    ("optimizers", "nn.SGD(model.parameters(), lr=0.1, momentum=-0.5)"),
    ("optimizers", f"nn.SGD(model.parameters(), lr={INF}, weight_decay={INF})"),
    ("optimizers", "nn.Adam(model.parameters(), beta1=1.0)"),
    ("optimizers", "nn.Adam(model.parameters(), beta2=-0.1)"),
    ("optimizers", "nn.Adam(model.parameters(), eps=-1e-8)"),
    ("optimizers", f"nn.Adam(model.parameters(), weight_decay={NAN})"),
    ("optimizers", 'setattr(sgd, "lr", -1.0)'),
    ("optimizers", f'setattr(adam, "lr", {NAN})'),
    ("optimizers", 'setattr(adam, "lr", "fast")'),
    ("optimizers", "nn.SGD([], lr=0.1).step()"),
    ("Module.save / load", 'model.save("no/such/dir/m.json")'),
    ("Module.save / load", 'model.save(".")'),
    ("Module.save / load", "model.save(3.5)"),
    ("Module.save / load", "!model.parameters()[0].data = float('nan'); model.save('nan.json')"),
    ("Module.save / load", 'model.load("missing.json")'),
    ("Module.save / load", 'model.load("not_json.json")'),
    ("Module.save / load", 'model.load("empty.json")'),
    ("Module.save / load", 'model.load("list.json")'),
    ("Module.save / load", 'model.load("other_format.json")'),
    ("Module.save / load", 'model.load("version_2.json")'),
    ("Module.save / load", 'model.load("other_shapes.json")'),
    ("Module.save / load", 'model.load("too_few.json")'),
    ("Module.save / load", 'model.load("nan_param.json")'),
    ("Module.save / load", 'model.load("huge_param.json")'),
    ("Module.save / load", 'model.load("string_param.json")'),
    ("Module.save / load", 'model.load("bool_param.json")'),
    ("Module.save / load", 'model.load("binary.json")'),
    ("state_dict / PyTorch", "model.load_state_dict({})"),
    ("state_dict / PyTorch", "model.load_state_dict({**good_sd, '0.weight': [[0.0] * 3] * 3})"),
    ("state_dict / PyTorch", "model.load_state_dict({**good_sd, '2.bias': [0.0, 0.0]})"),
    ("state_dict / PyTorch", f"model.load_state_dict({{**good_sd, '2.bias': [{NAN}]}})"),
    ("state_dict / PyTorch", "model.load_state_dict({**good_sd, '2.bias': ['0.5']})"),
    ("state_dict / PyTorch", "model.load_state_dict([('0.weight', [])])"),
    ("state_dict / PyTorch", "nn.Module().state_dict()"),
    ("state_dict / PyTorch", "nn.from_torch(model)"),
    (
        "state_dict / PyTorch",
        "nn.from_torch(__import__('torch').nn.Sequential("
        "__import__('torch').nn.Linear(2, 3), __import__('torch').nn.Tanh(),"
        " __import__('torch').nn.Linear(3, 1)))",
    ),
    ("viz", "viz.trace(5)"),
    ("viz", "viz.trace(g, max_nodes=2)"),
    ("viz", 'viz.draw_dot(g, rankdir="XY")'),
    ("viz", 'viz.draw_dot(g, format="nope").pipe()'),
    ("viz", "viz.draw_dot([g])"),
    ("viz", 'viz.render(g, "no/such/dir/graph")'),
    ("arena_stats", 'mg.arena_stats("float16")'),
    ("arena_stats", "mg.arena_stats(64)"),
    ("arena_stats", "mg.arena_stats(None)"),
]


def write_files(folder: str, model: Any) -> None:
    """The files the Module.load rows read, in the working directory."""
    good = {
        "format": "micrograd_cpp.parameters",
        "version": 1,
        "model": repr(model),
        "shapes": model.shapes(),
        "parameters": [p.data for p in model.parameters()],
    }
    n = len(good["parameters"])

    def doc(**changes: Any) -> str:
        return json.dumps({**good, **changes})

    files = {
        "not_json.json": '{"format": "micrograd_cpp.parameters", "version": 1,',
        "empty.json": "",
        "list.json": "[1, 2, 3]",
        "other_format.json": doc(format="pickle"),
        "version_2.json": doc(version=2),
        "other_shapes.json": doc(shapes=[[2, 4], [4, 1]]),
        "too_few.json": doc(parameters=[0.0] * (n - 1)),
        "nan_param.json": doc(parameters=[float("nan")] + [0.0] * (n - 1)),
        "huge_param.json": doc(parameters=["HUGE"] + [0.0] * (n - 1)).replace('"HUGE"', "1e400"),
        "string_param.json": doc(parameters=["0.5"] + [0.0] * (n - 1)),
        "bool_param.json": doc(parameters=[True] + [0.0] * (n - 1)),
    }
    for name, text in files.items():
        with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
            f.write(text)
    with open(os.path.join(folder, "binary.json"), "wb") as binary:
        binary.write(b"\xff\xfe\x00garbage")


def state(ns: dict[str, Any]) -> Any:
    gc.collect()
    mg = ns["mg"]
    return (
        [(p.data, p.grad) for p in ns["model"].parameters()],
        [(x.data, x.grad, x.label) for x in (ns["v"], ns["w"], ns["g"], ns["v32"])],
        (ns["sgd"].lr, ns["adam"].lr),
        (mg.arena_stats()["live"], mg.arena_stats("float32")["live"]),
    )


def same(a: Any, b: Any) -> bool:
    """Equal, with nan equal to nan."""
    return json.dumps(a) == json.dumps(b)


def brief(text: str, limit: int = 150) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_in_subprocess(code: str, folder: str) -> str:
    env = dict(os.environ)
    if "ASAN_OPTIONS" in env:  # under .ci/sanitize: the child's report comes back here
        env["ASAN_OPTIONS"] += ":log_path=stderr"
    proc = subprocess.run(
        [sys.executable, "-c", SETUP + code],
        capture_output=True,
        text=True,
        cwd=folder,
        timeout=120,
        env=env,
    )
    if proc.returncode < 0:
        return f"**crash**: killed by signal {-proc.returncode}"
    lines = proc.stderr.strip().splitlines()
    if "Sanitizer" in proc.stderr:
        error = next((ln for ln in lines if "ERROR: AddressSanitizer" in ln), lines[0])
        return f"**memory error** (ASan): {brief(error.split('ERROR: ')[-1])}"
    if proc.returncode != 0:
        return f"`{brief(lines[-1])}`" if lines else f"exit code {proc.returncode}"
    return f"accepted: prints `{brief(proc.stdout.strip())}`"


def run(check: bool) -> int:
    rows: list[tuple[str, str, str, str]] = []
    changed_on_error = 0
    with tempfile.TemporaryDirectory() as folder:
        old_cwd = os.getcwd()
        os.chdir(folder)
        try:
            for section, code in CASES:
                if code.startswith("!"):
                    rows.append(
                        (section, code[1:], run_in_subprocess(code[1:], folder), "(subprocess)")
                    )
                    continue
                ns: dict[str, Any] = {}
                exec(SETUP, ns)
                write_files(folder, ns["model"])
                before = state(ns)
                try:
                    compiled, mode = compile(code, "<case>", "eval"), "eval"
                except SyntaxError:
                    compiled, mode = compile(code, "<case>", "exec"), "exec"
                error = None
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    try:
                        result: Any = None
                        if mode == "eval":
                            result = eval(compiled, ns)
                        else:
                            exec(compiled, ns)
                    except BaseException as e:  # noqa: BLE001 - what happens is the point
                        error = f"`{type(e).__name__}: {brief(str(e))}`"
                # (compared only now: the exception being handled keeps its frames alive)
                if error is not None:
                    ok = same(state(ns), before)
                    changed_on_error += not ok
                    rows.append((section, code, error, "yes" if ok else "**NO**"))
                    continue
                shown = brief(repr(result), 80)
                warned = "".join(f"; warns `{w.category.__name__}`" for w in caught[:1])
                del result
                after = state(ns)
                rows.append(
                    (
                        section,
                        code,
                        f"accepted: `{shown}`{warned}",
                        "yes" if same(after, before) else "changed (as asked)",
                    )
                )
        finally:
            os.chdir(old_cwd)
    if not check:
        print("| call | what happens | state unchanged |")
        print("|---|---|---|")
        last = None
        for section, code, outcome, unchanged in rows:
            if section != last:
                print(f"| **{section}** | | |")
                last = section
            shown = code.replace(":\n    ", ": ").replace("\n", "; ").replace("|", "\\|")
            print(f"| `{shown}` | {outcome.replace('|', chr(92) + '|')} | {unchanged} |")
    crashes = sum("**crash**" in r[2] or "**memory error**" in r[2] for r in rows)
    print(
        f"\n{len(rows)} calls: {changed_on_error} rejected calls changed state, "
        f"{crashes} crashed or corrupted memory (in a subprocess)",
        file=sys.stderr,
    )
    return 1 if check and changed_on_error else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="print nothing; exit 1 if a rejected call changed any state",
    )
    random.seed(0)
    sys.exit(run(parser.parse_args().check))
