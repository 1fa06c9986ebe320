"""NumPy arrays of values broadcast an op with a Value over their items, as they do with
micrograd's Values (NumPy's object arrays are the oracle: micrograd itself, run here),
while NumPy scalars keep giving a single Value.

One difference, on purpose: ``Value(2.0) * arr`` is an array of Values here, as
``arr * Value(2.0)`` is in both libraries; micrograd gives a single Value whose data is
an array there (its ``__mul__`` wraps the array in a Value), which no scalar op can use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import micrograd_cpp as mg
import numpy as np
import pytest
from conftest import BINARY_OPS
from micrograd.engine import Value as MGValue

OPS: dict[str, Callable[[Any, Any], Any]] = {
    op.label: op.fn for name, op in BINARY_OPS.items() if name != "pow"
}
DATA = [1.5, -2.0, 0.25]


def objects(cls: Any) -> Any:
    return np.array([cls(x) for x in DATA], dtype=object)


@pytest.mark.parametrize("cls", [mg.Value, mg.Value32], ids=lambda c: c.__name__)
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("array_left", [True, False], ids=["arr op v", "v op arr"])
def test_object_array_with_a_value(cls: Any, op: str, array_left: bool) -> None:
    f = OPS[op]
    arr, v = objects(cls), cls(2.0)
    out = f(arr, v) if array_left else f(v, arr)
    # micrograd, with the array on the left (the order micrograd broadcasts)
    marr, mv = objects(MGValue), MGValue(2.0)
    mout = f(marr, mv) if array_left else np.array([f(mv, a) for a in marr], dtype=object)
    assert isinstance(out, np.ndarray) and out.dtype == object and out.shape == (3,)
    assert all(type(o) is cls for o in out)
    want = [float(np.float32(m.data)) if cls is mg.Value32 else m.data for m in mout]
    assert [o.data for o in out] == pytest.approx(want, rel=1e-6 if cls is mg.Value32 else 0)
    # gradients flow back to the value and to every item
    total, mtotal = out.sum(), mout.sum()
    total.backward()
    mtotal.backward()
    assert v.grad == pytest.approx(mv.grad, rel=1e-6)
    assert [a.grad for a in arr] == pytest.approx([a.grad for a in marr], rel=1e-6)


def test_powers_and_numbers() -> None:
    arr, marr = objects(mg.Value), objects(MGValue)
    out, mout = arr**2, marr**2
    assert [o.data for o in out] == [m.data for m in mout] and out[0]._op == "**2"
    assert [o.data for o in arr * 3.0] == [m.data for m in marr * 3.0]
    assert [o.data for o in 1 + arr] == [m.data for m in 1 + marr]


def test_float_array_with_a_value() -> None:
    v, mv = mg.Value(2.0), MGValue(2.0)
    floats = np.array([1.0, 2.5])
    out, mout = floats * v, floats * mv
    assert isinstance(out, np.ndarray) and [o.data for o in out] == [m.data for m in mout]
    summed: Any = v + floats  # micrograd: Value(data=array([3., 4.5])), see the docstring
    assert [o.data for o in summed] == [3.0, 4.5]
    powers: Any = v ** np.array([2, 3])
    assert [o.data for o in powers] == [4.0, 8.0]


def test_two_dimensional_arrays_broadcast() -> None:
    grid = np.array([[mg.Value(1.0), mg.Value(2.0)], [mg.Value(3.0), mg.Value(4.0)]])
    out = grid * mg.Value(0.5)
    assert out.shape == (2, 2) and [[o.data for o in row] for row in out] == [
        [0.5, 1.0],
        [1.5, 2.0],
    ]


@pytest.mark.parametrize(
    "scalar",
    [np.float64(2.0), np.float32(2.0), np.int64(2), np.array(2.0)],
    ids=lambda s: f"{type(s).__name__}",
)
def test_numpy_scalars_give_a_value(scalar: Any) -> None:
    v = mg.Value(3.0)
    for f in OPS.values():  # (micrograd's v / np.int64(2) raises: it computes 2**-1)
        x = float(scalar)
        for out, want in ((f(scalar, v), f(x, 3.0)), (f(v, scalar), f(3.0, x))):
            assert type(out) is mg.Value and out.data == want
    assert (v ** np.int64(2))._op == "**2" and (np.int64(2) ** v).data == 8.0


def test_neuron_written_with_numpy_matches_micrograd() -> None:
    w, x = [0.5, -1.25, 2.0], [1.0, 0.5, -0.25]
    ours = (np.array([mg.Value(a) for a in w]) * np.array([mg.Value(b) for b in x])).sum()
    theirs = (np.array([MGValue(a) for a in w]) * np.array([MGValue(b) for b in x])).sum()
    assert ours.data == theirs.data


def test_numpy_scalar_operands_give_a_value_in_micrograds_loop() -> None:
    """micrograd's demo writes `(1 + -yi*scorei).relu()` with NumPy int labels."""
    labels = np.array([1, -1, 1])
    scores, mscores = [mg.Value(x) for x in DATA], [MGValue(x) for x in DATA]
    ours = [(1 + -yi * s).relu() for yi, s in zip(labels, scores, strict=True)]
    theirs = [(1 + -yi * s).relu() for yi, s in zip(labels, mscores, strict=True)]
    assert all(type(o) is mg.Value for o in ours)
    assert [o.data for o in ours] == [float(t.data) for t in theirs]


def test_what_numpy_refuses() -> None:
    """Value sets __array_ufunc__ = None, so that NumPy scalars hand `x op v` to Value at
    once: NumPy then takes no Value as a ufunc operand of its own, and an in-place op of
    an array with a Value (which NumPy does not hand over) says so. Arrays of Values,
    and `arr = arr * v`, work as above."""
    arr, v = objects(mg.Value), mg.Value(2.0)
    with pytest.raises(TypeError, match="does not support ufuncs"):
        np.exp(cast(Any, v))
    with pytest.raises(TypeError, match="does not support ufuncs"):
        arr *= v
    assert [o.data for o in np.exp(arr)] == [o.exp().data for o in objects(mg.Value)]
