"""Shared test helpers, and the one op-spec table that every op test reads.

Each unary method of ``Value`` has a row in ``UNARY_OPS``: its label, its value and
derivative written with Python's ``math`` (independently of the C++ core), smooth points
for finite differences, and PyTorch's function for it. Adding an op to the core means one
row here; the tests of values, gradients, finite differences, labels, errors, random
graphs (tests/test_fuzz.py) and replays pick it up. Its binary operators are in
``BINARY_OPS``.
"""

from __future__ import annotations

import gc
import json
import math
import operator
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import micrograd_cpp as mg


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    return math.exp(x) / (1.0 + math.exp(x))  # no overflow for large negative x


def _softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _sign(x: float) -> float:
    return 0.0 if x == 0 or math.isnan(x) else math.copysign(1.0, x)


@dataclass(frozen=True)
class UnaryOp:
    """A unary method of Value (``v.name()``), specified independently of the core."""

    name: str
    label: str  # the result's ``_op``
    value: Callable[[float], float]
    derivative: Callable[[float], float]
    points: tuple[float, ...]  # where value and derivative are smooth
    torch: str  # the name of PyTorch's function (``torch.<name>``; softplus: special)
    micrograd: bool  # micrograd's Value has the method

    def apply(self, v: Any) -> Any:
        return getattr(v, self.name)()

    def on_first(self, a: Any, b: Any) -> Any:
        """apply(a), for tables of expressions in two values."""
        return self.apply(a)

    def torch_fn(self, torch: Any) -> Callable[[Any], Any]:
        if self.name == "softplus":  # torch.nn.functional.softplus thresholds at x > 20
            return lambda t: torch.logaddexp(t, torch.zeros_like(t))
        fn: Callable[[Any], Any] = getattr(torch, self.torch)
        return fn


UNARY_OPS: dict[str, UnaryOp] = {
    op.name: op
    for op in (
        UnaryOp(
            "relu",
            "ReLU",
            lambda x: 0.0 if x < 0 else x,
            lambda x: 1.0 if x > 0 else 0.0,
            (-2.0, -0.5, 0.5, 3.0),
            "relu",
            True,
        ),
        UnaryOp(
            "tanh",
            "tanh",
            math.tanh,
            lambda x: 1.0 / math.cosh(x) ** 2,
            (-3.0, -1.2, -0.5, -0.0, 0.0, 0.1, 0.7, 2.5),
            "tanh",
            False,
        ),
        UnaryOp(
            "sigmoid",
            "sigmoid",
            _sigmoid,
            lambda x: math.exp(-abs(x)) / (1.0 + math.exp(-abs(x))) ** 2,
            (-6.0, -3.0, -0.5, 0.0, 0.25, 1.0, 4.0, 6.0),
            "sigmoid",
            False,
        ),
        UnaryOp(
            "exp",
            "exp",
            math.exp,
            math.exp,
            (-20.0, -1.5, -0.1, 0.0, 0.3, 1.0, 2.0, 10.0),
            "exp",
            False,
        ),
        UnaryOp(
            "log",
            "log",
            math.log,
            lambda x: 1.0 / x,
            (1e-3, 0.2, 0.5, 1.0, 2.5, 10.0, 1e6),
            "log",
            False,
        ),
        UnaryOp(
            "softplus",
            "softplus",
            _softplus,
            _sigmoid,
            (-30.0, -2.0, -0.5, 0.0, 0.5, 3.0, 40.0),
            "logaddexp",
            False,
        ),
        UnaryOp("abs", "abs", math.fabs, _sign, (-3.5, -1.0, -1e-3, 1e-3, 0.25, 2.0), "abs", False),
    )
}


@dataclass(frozen=True)
class BinaryOp:
    """A binary operator of Value: ``fn(x, y)``, and ``inplace(x, y)`` for ``x op= y``."""

    label: str  # the result's ``_op``, also the operator's symbol
    fn: Callable[[Any, Any], Any]
    inplace: Callable[[Any, Any], Any]


# By the name of the operator module's function (``operator.<name>``).
BINARY_OPS: dict[str, BinaryOp] = {
    name: BinaryOp(label, getattr(operator, name), getattr(operator, f"i{name}"))
    for name, label in (("add", "+"), ("sub", "-"), ("mul", "*"), ("truediv", "/"), ("pow", "**"))
}


def live(dtype: str = "float64") -> int:
    """Nodes alive in the arena of one precision, after a collection (so that values only
    garbage holds do not count)."""
    gc.collect()
    return int(mg.arena_stats(dtype)["live"])


def walk(root: Any) -> list[Any]:
    """Every node reachable from root through _prev, once each (by identity), without
    recursion. Reading _prev of a fused node expands it."""
    seen: dict[int, Any] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen[id(node)] = node
            stack.extend(node._prev)
    return list(seen.values())


def run_script(script: str, *args: str, timeout: float = 300) -> dict[str, Any]:
    """Runs ``python -c script *args`` and returns the JSON object it prints; it must exit
    with 0. The script can import this file's helpers (``from conftest import live``)."""
    path = os.pathsep.join(
        p for p in (str(Path(__file__).parent), os.environ.get("PYTHONPATH")) if p
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, PYTHONPATH=path, PYTHONFAULTHANDLER="1"),
    )
    assert proc.returncode == 0, f"exit code {proc.returncode}\n{proc.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def readme_graph(value: Any) -> tuple[list[Any], Any]:
    """micrograd's README expression built with ``value`` (a Value class, ours or
    micrograd's): its two leaves, and its root (not yet backpropagated)."""
    a, b = value(-4.0), value(2.0)
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    return [a, b], g
