"""Record once, replay: ``Graph`` captures a graph as a flat C++ program; ``jit`` traces a
function of numbers into one and replays it on later calls.

A training step builds the same graph every time; only the leaves' numbers change.
``Graph(loss)`` records it once, then ``g.forward()`` and ``g.backward()`` recompute it in
C++ from the leaves' current data (parameters, inputs, constants), bit for bit what
building it again would give::

    loss = total_loss(model, X, y)     # built once, eagerly
    g = Graph(loss)
    for k in range(100):
        g.forward()                    # loss.data, and every node you hold, updated
        model.zero_grad()
        g.backward()                   # as loss.backward() on a freshly built graph
        for p in model.parameters():
            p.data -= 0.1 * p.grad

What a replay cannot see: the structure is the one captured. An ``if x.data > 0`` taken
while the graph was built, a Python number computed from ``.data`` (it is a constant leaf
now), a batch of another size or a model of another shape: build and capture again.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from ._core import Graph, Value, Value32

__all__ = ["Graph", "Jit", "jit"]

R = TypeVar("R")
Scalar = Value | Value32


def _is_array(x: object) -> bool:
    # A NumPy array or scalar (or another array with a shape and a dtype), without
    # importing NumPy.
    return hasattr(x, "__array_interface__") and hasattr(x, "shape") and hasattr(x, "dtype")


def _structure(arg: Any, numbers: list[Any], path: str) -> Any:
    """A hashable description of arg's structure; appends its numbers (or arrays) to
    ``numbers`` in order."""
    if isinstance(arg, (Value, Value32)):
        numbers.append(arg.data)
        return type(arg).__name__
    if _is_array(arg):
        if arg.dtype.kind not in "fiub":
            raise TypeError(
                f"jit: {path} is an array of dtype {arg.dtype}; "
                "only arrays of real numbers can be inputs"
            )
        if arg.shape == ():  # a NumPy scalar
            numbers.append(arg)
            return "Value"
        numbers.append(arg if arg.dtype.name in ("float64", "float32") else arg.astype("float64"))
        return ("array", tuple(arg.shape), "float32" if arg.dtype.name == "float32" else "float64")
    if isinstance(arg, (list, tuple)):
        return (
            type(arg).__name__,
            tuple(_structure(a, numbers, f"{path}[{i}]") for i, a in enumerate(arg)),
        )
    if hasattr(arg, "__float__") and not isinstance(arg, complex):  # int, float, Fraction
        numbers.append(arg)
        return "Value"
    raise TypeError(
        f"jit: {path} must be a number, a Value, a NumPy array or a list or tuple "
        f"of them, not {type(arg).__name__!r}"
    )


def _leaves(structure: Any, numbers: Iterator[Any], made: list[Scalar]) -> Any:
    """The function's arguments at trace time: the structure with a new leaf per number."""
    if structure in ("Value", "Value32"):
        leaf: Scalar = (Value32 if structure == "Value32" else Value)(next(numbers))
        made.append(leaf)
        return leaf
    if structure[0] == "array":
        cls = Value32 if structure[2] == "float32" else Value
        flat: list[Any] = [cls(x) for x in next(numbers).reshape(-1).tolist()]
        made.extend(flat)
        for size in reversed(structure[1][1:]):  # nested lists in the array's shape
            flat = [flat[i : i + size] for i in range(0, len(flat), size)]
        return flat
    items = [_leaves(s, numbers, made) for s in structure[1]]
    return items if structure[0] == "list" else tuple(items)


def _flat(numbers: list[Any]) -> Any:
    """One sequence for Graph.set_inputs: an array when every input came as one."""
    if numbers and all(_is_array(n) and n.shape != () for n in numbers):
        if len(numbers) == 1:
            return numbers[0]
        import numpy as np  # arrays were passed: NumPy is there

        return np.concatenate([np.asarray(n, dtype=np.float64).reshape(-1) for n in numbers])
    out: list[Any] = []
    for n in numbers:
        if _is_array(n) and n.shape != ():
            out.extend(n.reshape(-1).tolist())
        else:
            out.append(n)
    return out


class _Trace:
    """One traced structure: its graph and the function's outputs."""

    def __init__(self, graph: Graph, outputs: Any) -> None:
        self.graph = graph
        self.outputs = outputs


class Jit(Generic[R]):
    """A function traced into a ``Graph`` on its first call and replayed on later calls
    with new numbers of the same structure (see ``jit``)."""

    def __init__(self, fn: Callable[..., R], cache: int) -> None:
        if not callable(fn):
            raise TypeError(f"jit: expected a function, got {type(fn).__name__!r}")
        if isinstance(cache, bool) or not isinstance(cache, int) or cache < 1:
            raise ValueError(f"jit: cache must be a positive int, got {cache!r}")
        self._fn = fn
        self._cache = cache
        self._traces: OrderedDict[Any, _Trace] = OrderedDict()
        self._last: _Trace | None = None
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any) -> R:
        numbers: list[Any] = []
        key = tuple(_structure(a, numbers, f"argument {i}") for i, a in enumerate(args))
        trace = self._traces.get(key)
        if trace is None:
            trace = self._trace(key, numbers)
        else:
            self._traces.move_to_end(key)
            trace.graph.set_inputs(_flat(numbers))
            trace.graph.forward()
        self._last = trace
        return trace.outputs  # type: ignore[no-any-return]

    def _trace(self, key: Any, numbers: list[Any]) -> _Trace:
        inputs: list[Scalar] = []
        numbered = iter(numbers)
        args = [_leaves(s, numbered, inputs) for s in key]
        outputs = self._fn(*args)
        if isinstance(outputs, (Value, Value32)):
            root = outputs
        elif (
            isinstance(outputs, (list, tuple))
            and outputs
            and all(isinstance(o, (Value, Value32)) for o in outputs)
        ):
            root = outputs[0]
            for o in outputs[1:]:  # one graph for them all: their sum's
                root = root + o
        else:
            raise TypeError(
                f"jit: {getattr(self._fn, '__name__', 'the function')} must return "
                f"a Value or a non-empty list or tuple of Values, not "
                f"{type(outputs).__name__!r}"
            )
        try:
            trace = _Trace(Graph(root, inputs), outputs)
        except ValueError as e:  # "Graph: inputs[i] is not in the graph of root"
            raise ValueError(
                f"jit: an input number is not used by the result ({e}); pass "
                "only the numbers that the function computes from"
            ) from None
        self._traces[key] = trace
        if len(self._traces) > self._cache:
            self._traces.popitem(last=False)
        return trace

    @property
    def graph(self) -> Graph:
        """The graph of the last call (for a function with several outputs, the graph of
        their sum): ``f.graph.backward()`` backpropagates from its result."""
        if self._last is None:
            raise RuntimeError("jit: the function has not been called yet")
        return self._last.graph

    def __repr__(self) -> str:
        return f"jit({getattr(self._fn, '__qualname__', self._fn)!r}, traces={len(self._traces)})"


def jit(fn: Callable[..., R] | None = None, *, cache: int = 8) -> Any:
    """Trace ``fn`` into a ``Graph`` on its first call; replay it on later calls.

    ``fn``'s positional arguments are numbers, Values, NumPy arrays of real numbers, or
    (nested) lists and tuples of them. At the first call with a given structure (the
    nesting, the lengths and shapes, Value or Value32), every number becomes a new leaf
    Value (a float32 array or a Value32: a Value32 leaf; an array: nested lists of leaves)
    and ``fn`` runs on them, eagerly; its result (a Value, or a list or tuple of Values)
    is captured as a Graph. A later call with the same structure writes the new numbers
    into those leaves and replays the graph in C++, returning the same Value objects with
    the new data. A new structure traces again; the last ``cache`` structures are kept.

    Parameters used from the enclosing scope (a model's weights) are leaves of the graph,
    read live: update them between calls. ``f.graph.backward()`` backpropagates the last
    call's result. What a replay cannot see (branches on ``.data``, numbers computed from
    data) is frozen at the trace: see ``Graph``.

    Every call returns the same output objects, updated in place: copy ``.data`` out to
    keep a result past the next call. For the same reason a jitted function is not for
    several threads at once (one thread's call overwrites another's results).

    Named ``jit`` as JAX's and tinygrad's ``TinyJit``, which trace and replay in the same
    way (``compile`` would shadow Python's builtin under ``from micrograd_cpp import *``).
    """
    if fn is None:
        return lambda f: Jit(f, cache)
    return Jit(fn, cache)
