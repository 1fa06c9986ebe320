"""``Graph(root, inputs=...)`` and ``g.set_inputs(values)``: what may be written into the
captured leaves, and the errors for what may not.

The spec (issue 13): ``inputs`` is a sequence of leaf Values of the graph, a non-leaf or
a value not in the graph is a ValueError naming its position; ``set_inputs`` takes a flat
sequence, a NumPy float array (contiguous float64/float32, any shape, read flat in C
order) without a Python call per element, or any iterable of numbers; a wrong length is a
ValueError, a wrong type a TypeError, and either changes nothing.

Assumptions where the spec leaves a choice, each test saying which:

* A non-Value in ``inputs`` is a TypeError (Python's convention for a wrong type); a Value
  of the other precision may be a TypeError or a ValueError (it is also "not in the
  graph"). Both name the position.
* Integer, bool and float16 arrays are iterables of numbers, so they may be accepted (with
  exactly float(x) written) or refused with a TypeError; never read as the wrong bytes.
  Complex, string and object-of-non-numbers arrays hold no real numbers: TypeError.
* A non-C-contiguous array (transposed, Fortran order, strided 2-D) gives its values in C
  order, or is refused with a TypeError or ValueError; a strided 1-D array is an
  iterable of numbers and must work.

Expected values come from Python's float() and NumPy's float32 rounding, never from
micrograd_cpp.
"""

from __future__ import annotations

import array
import math
import re
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

import micrograd_cpp as mg
import numpy as np
import pytest
from conftest import live
from micrograd.engine import Value as MGValue
from test_graph import NOT_VALUES, Dtype, bits, same

K = 6  # inputs of the standard graph
CLASSES = {"float64": mg.Value, "float32": mg.Value32}


def rounded(x: float, dtype: str) -> float:
    """x as a leaf of that precision holds it."""
    if dtype == "float64":
        return float(x)
    with np.errstate(all="ignore"):
        return float(np.float32(x))


def make_graph(dtype: str) -> tuple[mg.Graph, list[Any], Any]:
    """A graph of K input leaves: f = sum((i + 1) * x_i) + x_0 * x_1, its inputs, f."""
    cls = CLASSES[dtype]
    xs = [cls(0.5 * i) for i in range(K)]
    f = xs[0] * xs[1]
    for i, x in enumerate(xs):
        f = f + x * float(i + 1)
    return mg.Graph(f, inputs=xs), xs, f


def eager_root(values: list[float], dtype: str) -> float:
    """f of make_graph, rebuilt from fresh leaves."""
    cls = CLASSES[dtype]
    xs = [cls(v) for v in values]
    f = xs[0] * xs[1]
    for i, x in enumerate(xs):
        f = f + x * float(i + 1)
    return float(f.data)


def state(xs: list[Any], f: Any) -> list[str]:
    return [bits(v.data) for v in [*xs, f]]


def check_written(g: mg.Graph, xs: list[Any], f: Any, want: list[float], dtype: str) -> None:
    """The inputs hold `want` (rounded to the precision), and forward() uses them."""
    expected = [rounded(w, dtype) for w in want]
    got = [x.data for x in xs]
    assert all(same(a, b) for a, b in zip(got, expected, strict=True)), (got, expected)
    g.forward()
    assert same(f.data, eager_root(expected, dtype))


DTYPES: list[Dtype] = ["float64", "float32"]
VALUES = [1.5, -2.25, 0.1, 3.0, 1e-3, -7.0]


def as_generator(values: list[float]) -> Iterator[float]:
    yield from values


KINDS: dict[str, Callable[[list[float]], Any]] = {
    "list": list,
    "tuple": tuple,
    "generator": as_generator,
    "map": lambda v: map(float, v),
    "float64": lambda v: np.array(v, dtype=np.float64),
    "float32": lambda v: np.array(v, dtype=np.float32),
    "float64-2d": lambda v: np.array(v, dtype=np.float64).reshape(2, 3),
    "float32-3d": lambda v: np.array(v, dtype=np.float32).reshape(3, 1, 2),
    "float64-strided-1d": lambda v: np.array([x for x in v for _ in (0, 1)])[::2],
    "float64-readonly": lambda v: readonly(np.array(v)),
    "float64-big-endian": lambda v: np.array(v, dtype=">f8"),
    "float32-big-endian": lambda v: np.array(v, dtype=">f4"),
    "array.array-d": lambda v: array.array("d", v),
    "memoryview-f": lambda v: memoryview(array.array("f", v)),
}


def readonly(a: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    a.setflags(write=False)
    return a


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", list(KINDS))
def test_set_inputs_accepts(kind: str, dtype: str) -> None:
    g, xs, f = make_graph(dtype)
    values = KINDS[kind](VALUES)
    g.set_inputs(values)
    # a float32 array holds the float32 roundings; those are the numbers written
    iterables = ("list", "tuple", "generator", "map")
    want = VALUES if kind in iterables else [float(v) for v in np.ravel(np.asarray(values))]
    check_written(g, xs, f, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_set_inputs_mixed_number_types(dtype: str) -> None:
    values: list[Any] = [2, 2.5, np.float32(0.1), Fraction(1, 3), np.int64(-7), True]
    g, xs, f = make_graph(dtype)
    g.set_inputs(values)
    check_written(g, xs, f, [float(v) for v in values], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_set_inputs_writes_ieee_specials_bit_for_bit(dtype: str) -> None:
    values = [math.nan, math.inf, -math.inf, -0.0, 5e-324, 1e300]
    for container in (list, np.array):
        g, xs, f = make_graph(dtype)
        g.set_inputs(container(values))
        want = [rounded(v, dtype) for v in values]
        assert all(same(x.data, w) for x, w in zip(xs, want, strict=True))


def test_set_inputs_reads_an_array_without_iterating_it() -> None:
    """A float array is read as a buffer, not element by element through Python."""

    class NoIteration(np.ndarray[Any, Any]):
        def __iter__(self) -> Any:
            raise AssertionError("set_inputs iterated the array in Python")

        def __getitem__(self, key: Any) -> Any:
            raise AssertionError("set_inputs indexed the array in Python")

    for np_dtype in (np.float64, np.float32):
        g, xs, f = make_graph("float64")
        values = np.array(VALUES, dtype=np_dtype).view(NoIteration)
        g.set_inputs(values)
        want = [float(v) for v in np.array(VALUES, dtype=np_dtype)]
        check_written(g, xs, f, want, "float64")


NON_C_CONTIGUOUS: dict[str, Callable[[list[float]], Any]] = {
    "transposed": lambda v: np.array(v).reshape(3, 2).T,
    "fortran": lambda v: np.asfortranarray(np.array(v).reshape(2, 3)),
    "strided-2d": lambda v: np.array(v + v).reshape(2, 6)[:, ::2],
    "float32-transposed": lambda v: np.array(v, dtype=np.float32).reshape(3, 2).T,
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", list(NON_C_CONTIGUOUS))
def test_set_inputs_non_c_contiguous_arrays(kind: str, dtype: str) -> None:
    """Read flat in C order (what np.ravel gives), or refused: never the memory order."""
    g, xs, f = make_graph(dtype)
    arr = NON_C_CONTIGUOUS[kind](VALUES)
    assert not arr.flags.c_contiguous and arr.size == K
    before = state(xs, f)
    try:
        g.set_inputs(arr)
    except (TypeError, ValueError):
        assert state(xs, f) == before
        return
    check_written(g, xs, f, [float(v) for v in np.ravel(arr, order="C")], dtype)


WRONG_LENGTH: dict[str, Callable[[], Any]] = {
    "empty-list": lambda: [],
    "short-list": lambda: VALUES[:-1],
    "long-list": lambda: VALUES + [1.0],
    "short-tuple": lambda: tuple(VALUES[:-1]),
    "long-generator": lambda: as_generator(VALUES + [1.0, 2.0]),
    "short-array": lambda: np.array(VALUES[:-1]),
    "long-array": lambda: np.array(VALUES + [1.0], dtype=np.float32),
    "2d-array": lambda: np.zeros((2, 4)),
    "empty-array": lambda: np.zeros(0),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", list(WRONG_LENGTH))
def test_set_inputs_wrong_length(kind: str, dtype: str) -> None:
    g, xs, f = make_graph(dtype)
    g.forward()
    before = state(xs, f)
    with pytest.raises(ValueError, match=rf"\b{K}\b"):  # says how many it needs
        g.set_inputs(WRONG_LENGTH[kind]())
    assert state(xs, f) == before
    g.set_inputs(VALUES)  # still usable
    check_written(g, xs, f, VALUES, dtype)


WRONG_TYPE: dict[str, Any] = {
    "str-in-list": [1.0, 2.0, 3.0, "4", 5.0, 6.0],
    "none-in-list": [1.0, 2.0, 3.0, 4.0, 5.0, None],
    "complex-in-list": [1.0, 2.0, 3.0, 4.0, 1j, 6.0],
    "value-in-list": [1.0, 2.0, MGValue(3.0), 4.0, 5.0, 6.0],
    "complex-array": np.array(VALUES, dtype=np.complex128),
    "string-array": np.array([str(v) for v in VALUES]),
    "object-array-of-strings": np.array([str(v) for v in VALUES], dtype=object),
    "float": 1.0,
    "none": None,
    "string": "123456",
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", list(WRONG_TYPE))
def test_set_inputs_wrong_type(kind: str, dtype: str) -> None:
    """Not numbers: a TypeError, and nothing written (not even the numbers before the bad
    element)."""
    g, xs, f = make_graph(dtype)
    g.forward()
    before = state(xs, f)
    with pytest.raises(TypeError):
        g.set_inputs(WRONG_TYPE[kind])
    assert state(xs, f) == before


OTHER_NUMBER_ARRAYS: dict[str, Any] = {
    "int64": np.arange(K, dtype=np.int64) - 2,
    "int32": np.arange(K, dtype=np.int32) * 3,
    "uint8": np.arange(K, dtype=np.uint8),
    "bool": np.array([True, False] * (K // 2)),
    "float16": np.array(VALUES, dtype=np.float16),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", list(OTHER_NUMBER_ARRAYS))
def test_set_inputs_other_numeric_arrays(kind: str, dtype: str) -> None:
    """Arrays of numbers that are not float64/float32: their exact values, or refused with
    a TypeError that changes nothing (the spec allows both); never reinterpreted bytes."""
    g, xs, f = make_graph(dtype)
    g.forward()
    before = state(xs, f)
    arr = OTHER_NUMBER_ARRAYS[kind]
    try:
        g.set_inputs(arr)
    except TypeError:
        assert state(xs, f) == before
        return
    check_written(g, xs, f, [float(v) for v in arr], dtype)


def test_graph_without_inputs() -> None:
    a = mg.Value(2.0)
    f = a * a
    g = mg.Graph(f)
    assert g.inputs == []
    g.set_inputs([])
    g.set_inputs(np.zeros(0))
    with pytest.raises(ValueError):
        g.set_inputs([1.0])
    assert (a.data, f.data) == (2.0, 4.0)


def test_inputs_may_be_a_tuple_and_a_number_leaf() -> None:
    """Any leaf of the graph may be an input, the leaf a number operand became too."""
    a = mg.Value(2.0)
    c = a * 3.0
    f = c + a
    (three,) = [p for p in c._prev if p is not a]
    g = mg.Graph(f, inputs=(three, a))
    assert g.inputs[0] is three and g.inputs[1] is a
    g.set_inputs([5.0, 1.5])
    g.forward()
    assert (three.data, a.data, c.data, f.data) == (5.0, 1.5, 7.5, 9.0)


# --------------------------------------------------------------------------------------
# Bad `inputs` at capture: an error naming the position, and no leak
# --------------------------------------------------------------------------------------


def names_position(err: pytest.ExceptionInfo[BaseException], position: int) -> bool:
    return re.search(rf"\b{position}\b", str(err.value)) is not None


@pytest.mark.parametrize("dtype", DTYPES)
def test_capture_refuses_a_non_leaf_input(dtype: Dtype) -> None:
    cls = CLASSES[dtype]
    base = live(dtype)
    a, b, c = cls(1.0), cls(2.0), cls(3.0)
    ab = a * b
    f = ab + c
    with pytest.raises(ValueError) as err:
        mg.Graph(f, inputs=[a, b, ab, c])
    assert names_position(err, 2), str(err.value)
    with pytest.raises(ValueError) as err:
        mg.Graph(f, inputs=[a, b, c, f])  # the root is not a leaf either
    assert names_position(err, 3), str(err.value)
    del a, b, c, ab, f, err
    assert live(dtype) == base


@pytest.mark.parametrize("dtype", DTYPES)
def test_capture_refuses_a_value_not_in_the_graph(dtype: Dtype) -> None:
    cls = CLASSES[dtype]
    a, b, stranger = cls(1.0), cls(2.0), cls(3.0)
    f = a * b
    unreached = stranger + a  # uses a, but f does not use it
    with pytest.raises(ValueError) as err:
        mg.Graph(f, inputs=[a, stranger])
    assert names_position(err, 1), str(err.value)
    with pytest.raises(ValueError) as err:
        mg.Graph(f, inputs=[b, a, unreached])  # not a leaf, not in the graph
    assert names_position(err, 2), str(err.value)


@pytest.mark.parametrize("kind", list(NOT_VALUES))
def test_capture_refuses_a_non_value_input(kind: str) -> None:
    a, b = mg.Value(1.0), mg.Value(2.0)
    f = a * b
    with pytest.raises(TypeError) as err:
        mg.Graph(f, inputs=[a, b, NOT_VALUES[kind]()])
    assert names_position(err, 2), str(err.value)


@pytest.mark.parametrize("dtype", DTYPES)
def test_capture_refuses_a_value_of_the_other_precision(dtype: Dtype) -> None:
    cls = CLASSES[dtype]
    other = CLASSES["float32" if dtype == "float64" else "float64"]
    a, b = cls(1.0), cls(2.0)
    f = a * b
    with pytest.raises((TypeError, ValueError)) as err:
        mg.Graph(f, inputs=[a, other(1.0)])
    assert names_position(err, 1), str(err.value)


@pytest.mark.parametrize("kind", ["int", "Value"])
def test_capture_refuses_inputs_that_are_not_a_sequence(kind: str) -> None:
    a = mg.Value(1.0)
    with pytest.raises(TypeError):
        bad: Any = 5 if kind == "int" else mg.Value(1.0)
        mg.Graph(a * a, inputs=bad)
