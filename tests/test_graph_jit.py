"""``micrograd_cpp.jit``: trace a function of Values once, replay it for new numbers.

The spec (issue 13, provisional in its details): ``jit(fn)`` traces fn on its first call,
with Values made from its positional arguments (numbers, or nested lists of them), and
on later calls with the same structure (same nesting and lengths) replays the captured
graph with the new numbers, returning the same output Value objects, updated. A
structure change traces again (a few traces are kept).

The oracle is the undecorated function called eagerly on Values of the same numbers;
outputs are compared bit for bit.
"""

from __future__ import annotations

import math
import random
from typing import Any

import micrograd_cpp as mg
import pytest
from micrograd_cpp import nn
from test_graph import same


def as_values(arg: Any) -> Any:
    """Numbers as Values, in the same nesting."""
    return [as_values(a) for a in arg] if isinstance(arg, list) else mg.Value(arg)


def eager(fn: Any, *args: Any) -> list[float]:
    """fn called eagerly on Values of args; its outputs' data, flattened."""
    out = fn(*(as_values(a) for a in args))
    return [v.data for v in (out if isinstance(out, list) else [out])]


def data(out: Any) -> list[float]:
    return [v.data for v in (out if isinstance(out, list) else [out])]


def neuronish(x: Any, w: Any, b: Any) -> Any:
    return (x * w + b).tanh() * x + (x / w).exp() - b.sigmoid() ** 2


def rows(xs: Any, ws: Any) -> Any:
    out = []
    for row in xs:
        acc = ws[0] * 0.0
        for x, w in zip(row, ws, strict=True):
            acc = acc + x * w
        out.append(acc.relu() + acc.softplus())
    return out


def test_jit_replays_new_numbers_like_eager() -> None:
    fast = mg.jit(neuronish)
    rng = random.Random(0)
    first = fast(0.5, 1.5, -0.25)
    assert isinstance(first, mg.Value)
    assert same(first.data, eager(neuronish, 0.5, 1.5, -0.25)[0])
    for _ in range(50):
        args = [rng.uniform(0.1, 2.0), rng.uniform(0.1, 2.0), rng.uniform(-2.0, 2.0)]
        out = fast(*args)
        assert out is first  # replayed: the same output object, updated
        assert same(out.data, eager(neuronish, *args)[0]), args


def test_jit_ints_and_floats_are_the_same_structure() -> None:
    fast = mg.jit(neuronish)
    first = fast(1.0, 2.0, 3.0)
    out = fast(2, 3, -1)
    assert out is first
    assert same(out.data, eager(neuronish, 2.0, 3.0, -1.0)[0])


def test_jit_nested_lists_and_list_outputs() -> None:
    fast = mg.jit(rows)
    rng = random.Random(1)

    def draw(n: int, m: int) -> tuple[list[list[float]], list[float]]:
        return (
            [[rng.uniform(-2, 2) for _ in range(m)] for _ in range(n)],
            [rng.uniform(-1, 1) for _ in range(m)],
        )

    xs, ws = draw(4, 3)
    first = fast(xs, ws)
    assert isinstance(first, list) and len(first) == 4
    assert all(same(a, b) for a, b in zip(data(first), eager(rows, xs, ws), strict=True))
    for _ in range(10):
        xs, ws = draw(4, 3)
        out = fast(xs, ws)
        assert isinstance(out, list)
        assert all(o is f for o, f in zip(out, first, strict=True))
        assert all(same(a, b) for a, b in zip(data(out), eager(rows, xs, ws), strict=True))


def test_jit_structure_change_traces_again() -> None:
    fast = mg.jit(rows)
    shapes = [(4, 3), (2, 3), (4, 5), (4, 3), (2, 3)]  # new ones, then back to known ones
    rng = random.Random(2)
    for n, m in shapes:
        xs = [[rng.uniform(-2, 2) for _ in range(m)] for _ in range(n)]
        ws = [rng.uniform(-1, 1) for _ in range(m)]
        out = fast(xs, ws)
        assert isinstance(out, list) and len(out) == n
        assert all(same(a, b) for a, b in zip(data(out), eager(rows, xs, ws), strict=True))


def test_jit_reads_parameters_live() -> None:
    """Values the function closes over (a model's parameters) are leaves of the trace,
    read live: changing them between calls needs no new trace."""
    random.seed(3)
    model = nn.MLP(2, [4, 1])

    def loss(X: Any, targets: Any) -> Any:
        scores: list[Any] = [model(row) for row in X]
        return nn.mse_loss(scores, targets)

    fast = mg.jit(loss)
    X, t = [[0.5, -1.0], [1.5, 2.0], [-0.5, 0.25]], [1.0, -1.0, 0.5]
    first = fast(X, t)
    for step in range(5):
        for p in model.parameters():
            p.data += 0.1 * (step + 1)
        X = [[x + 0.3 for x in row] for row in X]
        out = fast(X, t)
        assert out is first
        assert same(out.data, eager(loss, X, t)[0])


def test_jit_freezes_python_control_flow_on_data() -> None:
    """Documented: a branch taken on .data during the trace is replayed as traced, while the
    structure (here: the arguments' structure) is unchanged."""

    def branchy(x: Any) -> Any:
        return x * 2.0 if x.data > 0 else x * 3.0

    fast = mg.jit(branchy)
    assert fast(1.0).data == 2.0
    assert fast(-1.0).data == -2.0  # the traced branch; eagerly it would be -3.0
    assert math.isclose(branchy(mg.Value(-1.0)).data, -3.0)


def test_jit_output_of_the_function_must_be_values() -> None:
    fast = mg.jit(lambda x: 1.0)
    with pytest.raises(TypeError):
        fast(1.0)


def test_jit_numpy_arrays_and_values_as_arguments() -> None:
    """Arrays become nested lists of leaves (float32 ones: Value32 leaves); a Value passes
    its data."""
    import numpy as np

    def scores(X: Any, w: Any) -> Any:
        return [(row[0] * w + row[1]).tanh() for row in X]

    fast = mg.jit(scores)
    rng = np.random.default_rng(5)
    first = fast(rng.uniform(-2, 2, (5, 2)), mg.Value(0.5))
    for _ in range(5):
        X, w = rng.uniform(-2, 2, (5, 2)), float(rng.uniform(-1, 1))
        out = fast(X, mg.Value(w))
        assert all(o is f for o, f in zip(out, first, strict=True))
        assert all(same(a, b) for a, b in zip(data(out), eager(scores, X.tolist(), w), strict=True))
    X32 = rng.uniform(-2, 2, (5, 2)).astype(np.float32)
    out = fast(X32, mg.Value32(0.25))  # another structure: float32 leaves
    assert all(isinstance(o, mg.Value32) for o in out)
    want = scores([[mg.Value32(float(v)) for v in row] for row in X32], mg.Value32(0.25))
    assert all(same(o.data, e.data) for o, e in zip(out, want, strict=True))


def test_jit_graph_backward_gives_the_eager_gradients() -> None:
    """f.graph.backward() backpropagates the last call's result (several outputs: their
    sum), as backward() on an eager build of the same call does."""
    random.seed(9)
    model = nn.MLP(3, [4, 1])

    def loss(x: Any) -> Any:
        score: Any = model(x)
        return nn.mse_loss([score], [0.5])

    fast = mg.jit(loss)
    fast([1.0, 2.0, 3.0])
    out = fast([0.5, -1.0, 2.0])
    model.zero_grad()
    fast.graph.backward()
    got = [out.data] + [p.grad for p in model.parameters()]
    model.zero_grad()
    e = loss([mg.Value(0.5), mg.Value(-1.0), mg.Value(2.0)])
    e.backward()
    want = [e.data] + [p.grad for p in model.parameters()]
    assert all(same(a, b) for a, b in zip(got, want, strict=True))
