"""Parity of ``micrograd_cpp.Value`` with micrograd itself, used as the oracle.

Every expected value here is produced by ``micrograd.engine.Value`` in the same
test run (or is a literal from the spec that micrograd reproduces).  Values and
gradients must be bitwise identical (NaN equal to NaN, sign of zero included),
except (a) true division, which may differ from micrograd's ``a * b**-1`` by one
rounding and is compared with a relative tolerance of 1e-15, and (b) gradients
that sum three or more rounded terms into one node, whose order follows
micrograd's ``_prev`` set order and so varies from run to run (rel tol 1e-12).
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import micrograd_cpp as mg
import pytest
from conftest import readme_graph
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from micrograd.engine import Value as MGValue

DIV_REL_TOL = 1e-15
ACCUMULATION_REL_TOL = 1e-12
# Upstream gradient fed into every op under test, so that the chain rule
# multiplications by out.grad round (a plain 1.0 would hide ordering mistakes).
UPSTREAM = 0.3

SPREAD: list[float] = [-3.5, -1.0, -0.3, -0.0, 0.0, 1e-3, 0.25, 1.0, 2.0, 7.5, 1234.5678]
EXPONENTS: list[int | float] = [0, 1, 2, 3, -1, -2, 0.5, 2.0, -1.5, 3.7]


def same(got: float, want: float | int) -> bool:
    """Exact float equality; NaN equals NaN and the sign of zero must agree.

    micrograd keeps Python ints where it started from ints (relu's 0, integer
    constants), and int arithmetic has no -0.0; the sign is then not compared.
    """
    got_f, want_f = float(got), float(want)
    if math.isnan(got_f) or math.isnan(want_f):
        return math.isnan(got_f) and math.isnan(want_f)
    if isinstance(want, int):
        return got_f == want_f
    return got_f == want_f and math.copysign(1.0, got_f) == math.copysign(1.0, want_f)


def close_div(got: float, want: float, scale: float = 0.0) -> bool:
    got, want = float(got), float(want)
    if math.isnan(got) or math.isnan(want):
        return math.isnan(got) and math.isnan(want)
    return math.isclose(got, want, rel_tol=DIV_REL_TOL, abs_tol=DIV_REL_TOL * scale)


def close_accumulated(got: float, want: float) -> bool:
    """For gradients summed in a different order than micrograd's set order."""
    return math.isclose(float(got), float(want), rel_tol=ACCUMULATION_REL_TOL)


def mismatches(
    pairs: list[tuple[str, float, float]], eq: Callable[[float, float], bool]
) -> list[str]:
    return [f"{name}: got {g!r}, micrograd {w!r}" for name, g, w in pairs if not eq(g, w)]


# ---------------------------------------------------------------------------
# micrograd's own test suite (test/test_engine.py), micrograd as the oracle
# ---------------------------------------------------------------------------


def sanity_graph(V: type) -> tuple[Any, Any]:
    x = V(-4.0)
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    y = h + q + q * x
    y.backward()
    return x, y


def more_ops_graph(V: type) -> tuple[Any, Any, Any]:
    (a, b), g = readme_graph(V)
    g.backward()
    return a, b, g


def test_sanity_check() -> None:
    xmg, ymg = sanity_graph(mg.Value)
    xref, yref = sanity_graph(MGValue)
    # forward pass went well
    assert ymg.data == yref.data
    # backward pass went well
    assert xmg.grad == xref.grad


def test_more_ops() -> None:
    amg, bmg, gmg = more_ops_graph(mg.Value)
    aref, bref, gref = more_ops_graph(MGValue)
    tol = 1e-6
    # forward pass went well
    assert abs(gmg.data - gref.data) < tol
    # backward pass went well
    assert abs(amg.grad - aref.grad) < tol
    assert abs(bmg.grad - bref.grad) < tol


# ---------------------------------------------------------------------------
# Every op micrograd has, on a spread of inputs
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    fn: Callable[..., Any]
    arity: int
    domain: Callable[..., bool] = lambda *xs: True
    div: bool = False
    # Size of gradient contributions that cancel (a / a), as the absolute
    # scale for the division tolerance: both results are then rounding noise.
    cancel_scale: Callable[..., float] = lambda *xs: 0.0


def _pow_domain(p: int | float) -> Callable[[float], bool]:
    """Inputs on which micrograd's ``x ** p`` and its gradient are real and finite."""

    def ok(x: float) -> bool:
        if not float(p).is_integer() and not x > 0:
            return False  # negative base, fractional power: complex in Python
        return not (x == 0 and p - 1 < 0)  # ZeroDivisionError in Python

    return ok


def _nonzero_last(*xs: float) -> bool:
    return xs[-1] != 0


def _nonzero_all(*xs: float) -> bool:
    return all(x != 0 for x in xs)


CASES: list[Case] = [
    Case("add", operator.add, 2),
    Case("mul", operator.mul, 2),
    Case("sub", operator.sub, 2),
    Case("truediv", operator.truediv, 2, _nonzero_last, div=True),
    Case("iadd", operator.iadd, 2),
    Case("isub", operator.isub, 2),
    Case("imul", operator.imul, 2),
    Case("itruediv", operator.itruediv, 2, _nonzero_last, div=True),
    Case("add_self", lambda a: a + a, 1),
    Case("sub_self", lambda a: a - a, 1),
    Case("mul_self", lambda a: a * a, 1),
    Case(
        "truediv_self",
        lambda a: a / a,
        1,
        _nonzero_all,
        div=True,
        cancel_scale=lambda a: UPSTREAM / abs(a),
    ),
    Case("neg", operator.neg, 1),
    Case("relu", lambda a: a.relu(), 1),
    Case("add_num", lambda a: a + 2.5, 1),
    Case("radd_float", lambda a: 2.5 + a, 1),
    Case("radd_int", lambda a: 3 + a, 1),
    Case("sub_num", lambda a: a - 2.5, 1),
    Case("rsub_float", lambda a: 2.5 - a, 1),
    Case("rsub_int", lambda a: 1 - a, 1),
    Case("mul_num", lambda a: a * -1.5, 1),
    Case("rmul_float", lambda a: 0.1 * a, 1),
    Case("rmul_int", lambda a: 2 * a, 1),
    Case("truediv_num", lambda a: a / 3.0, 1, div=True),
    Case("rtruediv_float", lambda a: 3.0 / a, 1, _nonzero_all, div=True),
    Case("rtruediv_int", lambda a: 1 / a, 1, _nonzero_all, div=True),
    Case("relu_of_sub", lambda a: (a - 1.0).relu() * a, 1),
    *[Case(f"pow_{p!r}", lambda a, p=p: a**p, 1, _pow_domain(p)) for p in EXPONENTS],
]

EXACT_BINARY = [c for c in CASES if c.arity == 2 and not c.div]
EXACT_UNARY = [c for c in CASES if c.arity == 1 and not c.div]


def compare_case(case: Case, xs: tuple[float, ...]) -> list[str]:
    """Build ``case`` in both engines on inputs ``xs``; return the mismatches."""
    ours = [mg.Value(x) for x in xs]
    theirs = [MGValue(float(x)) for x in xs]
    y_ours, y_ref = case.fn(*ours), case.fn(*theirs)
    (y_ours * UPSTREAM).backward()
    (y_ref * UPSTREAM).backward()
    pairs = [("data", y_ours.data, y_ref.data), ("out.grad", y_ours.grad, y_ref.grad)]
    for k, (o, t) in enumerate(zip(ours, theirs, strict=True)):
        pairs.append((f"x{k}.grad", o.grad, t.grad))
    scale = case.cancel_scale(*xs)
    found = mismatches(pairs, (lambda g, w: close_div(g, w, scale)) if case.div else same)
    return [f"{case.name}{xs}: {m}" for m in found]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_op_matches_micrograd_on_spread(case: Case) -> None:
    inputs = [xs for xs in itertools.product(SPREAD, repeat=case.arity) if case.domain(*xs)]
    assert len(inputs) >= 5  # the domain filter must leave a real spread
    failures = [m for xs in inputs for m in compare_case(case, xs)]
    assert not failures, "\n".join(failures[:20])


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
# Keeps micrograd's float ** negative power and its gradient clear of OverflowError.
not_tiny = finite.filter(lambda x: x == 0 or abs(x) >= 1e-6)


@pytest.mark.parametrize("case", EXACT_BINARY, ids=lambda c: c.name)
@settings(max_examples=60, deadline=None)
@given(a=finite, b=finite)
def test_binary_op_matches_micrograd_hypothesis(case: Case, a: float, b: float) -> None:
    assert compare_case(case, (a, b)) == []


@pytest.mark.parametrize("case", EXACT_UNARY, ids=lambda c: c.name)
@settings(max_examples=40, deadline=None)
@given(a=not_tiny)
def test_unary_op_matches_micrograd_hypothesis(case: Case, a: float) -> None:
    assume(case.domain(a))
    assert compare_case(case, (a,)) == []


@settings(max_examples=60, deadline=None)
@given(a=finite.filter(lambda x: abs(x) > 1e-3), b=finite.filter(lambda x: abs(x) > 1e-3))
def test_truediv_matches_micrograd_hypothesis(a: float, b: float) -> None:
    assert compare_case(Case("truediv", operator.truediv, 2, div=True), (a, b)) == []


# ---------------------------------------------------------------------------
# _op labels and _prev structure
# ---------------------------------------------------------------------------

# Expressions micrograd builds natively: our label must equal micrograd's.
MICROGRAD_LABELED: dict[str, Callable[[Any, Any], Any]] = {
    "leaf": lambda a, b: a,
    "add": lambda a, b: a + b,
    "add_num": lambda a, b: a + 1,
    "radd": lambda a, b: 1.5 + a,
    "mul": lambda a, b: a * b,
    "mul_num": lambda a, b: a * 2,
    "rmul": lambda a, b: 2.5 * a,
    "pow_int2": lambda a, b: a**2,
    "pow_float2": lambda a, b: a**2.0,
    "pow_int_neg1": lambda a, b: a**-1,
    "pow_half": lambda a, b: a**0.5,
    "pow_0_1": lambda a, b: a**0.1,
    "relu": lambda a, b: a.relu(),
}


CLASSES = [mg.Value, mg.Value32]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", list(MICROGRAD_LABELED))
def test_op_label_matches_micrograd(name: str, cls: type) -> None:
    # labels are micrograd's f"**{other}" of the exponent as given, for both dtypes
    fn = MICROGRAD_LABELED[name]
    ours = fn(cls(1.25), cls(-0.5))
    ref = fn(MGValue(1.25), MGValue(-0.5))
    assert ours._op == ref._op


@pytest.mark.parametrize(
    ("expr", "label"),
    [
        (lambda a, b: a - b, "-"),
        (lambda a, b: a - 2, "-"),
        (lambda a, b: 1 - a, "-"),
        (lambda a, b: -a, "neg"),
        (lambda a, b: a / b, "/"),
        (lambda a, b: a / 2, "/"),
        (lambda a, b: 1 / a, "/"),
        (lambda a, b: a**b, "**"),
        (lambda a, b: 2**a, "**"),
    ],
    ids=[
        "sub",
        "sub_num",
        "rsub",
        "neg",
        "div",
        "div_num",
        "rtruediv",
        "pow_value",
        "rpow",
    ],
)
@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_own_op_labels(expr: Callable[[Any, Any], Any], label: str, cls: type) -> None:
    # micrograd has no node of its own for these; the spec fixes the label (the unary
    # methods' labels are in conftest.UNARY_OPS, checked by test_engine_ops).
    assert expr(cls(1.25), cls(-0.5))._op == label


PREV_EXPRS: dict[str, Callable[[Any, Any], Any]] = {
    "leaf": lambda a, b: a,
    "add": lambda a, b: a + b,
    "add_self": lambda a, b: a + a,
    "mul_self": lambda a, b: a * a,
    "mul_num": lambda a, b: a * 2,
    "rmul_num": lambda a, b: 2 * a,
    "add_num": lambda a, b: a + 1,
    "radd_num": lambda a, b: 3.5 + a,
    "pow": lambda a, b: a**3,
    "relu": lambda a, b: a.relu(),
}


@pytest.mark.parametrize("name", list(PREV_EXPRS))
def test_prev_structure_matches_micrograd(name: str) -> None:
    fn = PREV_EXPRS[name]
    ours = fn(mg.Value(1.25), mg.Value(-0.5))
    ref = fn(MGValue(1.25), MGValue(-0.5))
    assert isinstance(ours._prev, set)

    def summary(node: Any) -> list[tuple[float, str]]:
        return sorted((float(p.data), p._op) for p in node._prev)

    assert summary(ours) == summary(ref)


# ---------------------------------------------------------------------------
# backward() semantics
# ---------------------------------------------------------------------------


def chain_graph(V: type) -> tuple[dict[str, Any], Any]:
    x = V(1.5)
    y = 2 * x
    z = 3 * y
    return {"x": x, "y": y, "z": z}, z


def sanity_nodes(V: type) -> tuple[dict[str, Any], Any]:
    x = V(-4.0)
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    y = h + q + q * x
    return {"x": x, "z": z, "q": q, "h": h, "y": y}, y


def shared_graph(V: type) -> tuple[dict[str, Any], Any]:
    a, b = V(0.7), V(-1.3)
    c = a * b
    d = c + a
    e = d * c
    f = (e * e + d).relu() + b**2  # no node has more than two consumers
    return {"a": a, "b": b, "c": c, "d": d, "e": e, "f": f}, f


def composite_graph(V: type) -> tuple[dict[str, Any], Any]:
    a, b = V(0.7), V(-1.3)
    c = a - b
    d = -c * a + (1 - b)
    e = (d - c).relu() - 2.0
    return {"a": a, "b": b, "c": c, "d": d, "e": e}, e


def division_graph(V: type) -> tuple[dict[str, Any], Any]:
    a, b = V(0.7), V(-1.3)
    c = a / b
    d = c * a + 1 / b
    e = d / 3.0  # no node has more than two consumers: summation order is fixed
    return {"a": a, "b": b, "c": c, "d": d, "e": e}, e


# Graphs of ops micrograd has as single nodes: any number of backward passes
# must agree, stale interior grads included.
NATIVE_GRAPHS = {
    # one consumer per node: a fixed summation order, so exact
    "chain": (chain_graph, same),
    # every value and gradient is a small integer: no rounding, so exact
    "sanity": (sanity_nodes, same),
    # floats with shared nodes: a second pass sums stale + two new terms in
    # micrograd's set order, so only equal up to accumulation order
    "shared": (shared_graph, close_accumulated),
}
# With composites, micrograd has hidden interior nodes (b * -1 inside a - b,
# b**-1 inside a / b) whose stale grads a second backward() also re-adds, so
# only a single pass is comparable.
COMPOSITE_GRAPHS = {"composite": (composite_graph, same), "division": (division_graph, close_div)}


def _run_backward(
    build: Callable[[type], tuple[dict[str, Any], Any]],
    eq: Callable[[float, float], bool],
    passes: int,
) -> list[str]:
    ours, root_ours = build(mg.Value)
    ref, root_ref = build(MGValue)
    for _ in range(passes):
        root_ours.backward()
        root_ref.backward()
    pairs = [(f"{k}.grad", ours[k].grad, ref[k].grad) for k in ref]
    pairs += [(f"{k}.data", ours[k].data, ref[k].data) for k in ref]
    return mismatches(pairs, eq)


@pytest.mark.parametrize("passes", [1, 2, 3])
@pytest.mark.parametrize("graph", list(NATIVE_GRAPHS))
def test_repeated_backward_matches_micrograd(graph: str, passes: int) -> None:
    build, eq = NATIVE_GRAPHS[graph]
    assert _run_backward(build, eq, passes) == []


@pytest.mark.parametrize("graph", list(COMPOSITE_GRAPHS))
def test_composite_graph_backward_matches_micrograd(graph: str) -> None:
    build, eq = COMPOSITE_GRAPHS[graph]
    assert _run_backward(build, eq, 1) == []


def test_backward_twice_on_chain_literal() -> None:
    nodes, z = chain_graph(mg.Value)
    z.backward()
    assert (nodes["x"].grad, nodes["y"].grad, z.grad) == (6.0, 3.0, 1.0)
    z.backward()
    assert (nodes["x"].grad, nodes["y"].grad, z.grad) == (18.0, 6.0, 1.0)


def preset_grads_graph(V: type) -> tuple[dict[str, Any], Any]:
    """Grads written by hand before backward: root is reset, the rest accumulate."""
    x = V(2.0)
    w = V(-3.0)
    y = x * w
    z = y + x
    unrelated = V(5.0)
    sibling = x * 4.0  # depends on x, but is not reachable from z
    for node, g in ((x, 10.0), (w, 0.5), (y, -1.0), (z, 7.0), (unrelated, 2.0), (sibling, 9.0)):
        node.grad = g
    return {"x": x, "w": w, "y": y, "z": z, "unrelated": unrelated, "sibling": sibling}, z


def test_backward_resets_root_accumulates_rest_and_touches_nothing_else() -> None:
    ours, root_ours = preset_grads_graph(mg.Value)
    ref, root_ref = preset_grads_graph(MGValue)
    root_ours.backward()
    root_ref.backward()
    assert mismatches([(k, ours[k].grad, ref[k].grad) for k in ref], same) == []
    # literal cross-check of the same semantics
    assert ours["z"].grad == 1.0
    assert ours["unrelated"].grad == 2.0
    assert ours["sibling"].grad == 9.0
    # x: preset 10, + 1 from z = y + x, + w * y.grad where y.grad = preset -1 + 1
    assert ours["x"].grad == 10.0 + 1.0 + (-3.0) * (-1.0 + 1.0)
    assert ours["w"].grad == 0.5 + 2.0 * (-1.0 + 1.0)


def test_backward_on_leaf_matches_micrograd() -> None:
    ours, ref = mg.Value(3.0), MGValue(3.0)
    ours.grad = 4.0
    ref.grad = 4.0
    ours.backward()
    ref.backward()
    assert ours.grad == ref.grad == 1.0


def test_repr_matches_micrograd_once_grads_are_floats() -> None:
    # micrograd keeps ints where it started with ints; with float data and a
    # float upstream factor all its grads are floats, so the strings must agree.
    def build(V: type) -> tuple[Any, Any]:
        x = V(2.5)
        y = (x * 1.5 + 0.25).relu() * 0.5
        y.backward()
        return x, y

    (xo, yo), (xr, yr) = build(mg.Value), build(MGValue)
    assert isinstance(xr.grad, float)
    assert repr(xo) == repr(xr)
    assert repr(yo) == f"Value(data={yr.data}, grad=1.0)"
