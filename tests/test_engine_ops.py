"""Ops micrograd lacks, the object model, IEEE edges, NumPy scalars and float32.

Expected values come from analytic formulas evaluated with Python's ``math``,
from central finite differences of those formulas, from NumPy float32
arithmetic, or from literals fixed by the spec; never from micrograd_cpp.
"""

from __future__ import annotations

import gc
import math
import operator
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import micrograd_cpp as mg
import numpy as np
import pytest
from conftest import BINARY_OPS, UNARY_OPS

UPSTREAM = 0.3  # non-unit upstream gradient fed into the op under test
VALUE_REL = 1e-14  # analytic value vs libm formula (implementation may reorder)
GRAD_REL = 1e-12  # analytic derivative
FD_REL, FD_ABS = 1e-6, 1e-9  # central finite differences


def close(got: float, want: float, rel: float, abs_: float = 0.0) -> bool:
    if math.isnan(want) or math.isinf(want):
        return math.isnan(got) if math.isnan(want) else got == want
    return math.isclose(got, want, rel_tol=rel, abs_tol=abs_)


def central_diff(f: Callable[[float], float], x: float) -> float:
    h = 1e-5 * max(abs(x), 1e-3)
    return (f(x + h) - f(x - h)) / (2 * h)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def f32(x: float) -> float:
    return float(np.float32(x))


# ---------------------------------------------------------------------------
# Construction, data/grad, module layout
# ---------------------------------------------------------------------------


def test_engine_module_exposes_same_classes() -> None:
    assert mg.engine.Value is mg.Value
    assert mg.engine.Value32 is mg.Value32


@pytest.mark.parametrize(
    ("arg", "want"),
    [
        (2, 2.0),
        (-7, -7.0),
        (2**53 + 1, float(2**53 + 1)),
        (True, 1.0),
        (False, 0.0),
        (2.5, 2.5),
        (-0.0, -0.0),
        (np.float64(2.5), 2.5),
        (np.int64(3), 3.0),
        (np.int32(-4), -4.0),
        (np.uint8(7), 7.0),
        (np.float16(0.5), 0.5),
        (np.float32(0.1), f32(0.1)),
        (float("inf"), math.inf),
    ],
    ids=repr,
)
def test_construction_gives_float_data_and_zero_grad(arg: Any, want: float) -> None:
    v = mg.Value(arg)
    assert type(v.data) is float and type(v.grad) is float
    assert v.data == want and math.copysign(1, v.data) == math.copysign(1, want)
    assert v.grad == 0.0
    assert v._op == "" and v._prev == set()


def test_nan_construction() -> None:
    assert math.isnan(mg.Value(float("nan")).data)


def test_data_and_grad_are_writable_floats() -> None:
    v = mg.Value(1.0)
    v.data = 3
    v.grad = 2
    assert (v.data, v.grad) == (3.0, 2.0)
    assert type(v.data) is float and type(v.grad) is float
    # the written data is what later ops and the backward pass use
    y = v * v
    y.backward()
    assert (y.data, v.grad) == (9.0, 2.0 + 6.0)


@pytest.mark.parametrize(
    ("cls", "arg", "expected"),
    [
        (mg.Value, 2.5, "Value(data=2.5, grad=0.0)"),
        (mg.Value, 2, "Value(data=2.0, grad=0.0)"),
        (mg.Value, -0.1, "Value(data=-0.1, grad=0.0)"),
        (mg.Value, float("inf"), "Value(data=inf, grad=0.0)"),
        (mg.Value, float("nan"), "Value(data=nan, grad=0.0)"),
        (mg.Value32, 2.5, "Value32(data=2.5, grad=0.0)"),
        (mg.Value32, 0.1, f"Value32(data={f32(0.1)}, grad=0.0)"),
    ],
)
def test_repr(cls: type, arg: float, expected: str) -> None:
    assert repr(cls(arg)) == expected


def test_repr_after_backward() -> None:
    x = mg.Value(2.5)
    y = x * 3
    y.backward()
    assert repr(x) == "Value(data=2.5, grad=3.0)"
    assert repr(y) == "Value(data=7.5, grad=1.0)"


@pytest.mark.parametrize(
    ("op", "want", "dwant"),
    [
        (operator.iadd, 3.5, 1.0),
        (operator.isub, -0.5, 1.0),
        (operator.imul, 3.0, 2.0),
        (operator.itruediv, 0.75, 0.5),
        (operator.ipow, 2.25, 3.0),
    ],
    ids=["iadd", "isub", "imul", "itruediv", "ipow"],
)
@pytest.mark.parametrize("rhs_is_value", [False, True], ids=["number", "value"])
def test_inplace_ops_rebind_to_a_new_node(
    op: Callable[[Any, Any], Any], want: float, dwant: float, rhs_is_value: bool
) -> None:
    a = mg.Value(1.5)
    before = a
    a = op(a, mg.Value(2.0) if rhs_is_value else 2)
    assert a is not before and before in a._prev
    assert (a.data, before.data) == (want, 1.5)
    a.backward()
    assert before.grad == dwant


# ---------------------------------------------------------------------------
# _prev: a set of the inputs with stable identity
# ---------------------------------------------------------------------------


def test_prev_contains_the_input_objects() -> None:
    a, b = mg.Value(2.0), mg.Value(3.0)
    c = a * b
    assert isinstance(c._prev, set)
    assert a in c._prev and b in c._prev and len(c._prev) == 2
    assert {id(p) for p in c._prev} == {id(a), id(b)}


def test_prev_of_self_op_has_one_member() -> None:
    a = mg.Value(2.0)
    for expr in (a + a, a * a, a - a, a / a, a**a):
        assert expr._prev == {a}, expr._op


def test_number_operand_becomes_leaf_in_prev() -> None:
    a = mg.Value(1.5)
    for expr, const in ((a * 2, 2.0), (2 * a, 2.0), (a + 0.5, 0.5), (1 - a, 1.0), (1 / a, 1.0)):
        assert len(expr._prev) == 2 and a in expr._prev
        (other,) = expr._prev - {a}
        assert (other.data, other._op, other._prev) == (const, "", set())


def test_rpow_base_becomes_leaf_and_receives_gradient() -> None:
    x = mg.Value(3.0)
    y = 2**x
    assert y._op == "**" and x in y._prev and len(y._prev) == 2
    (base,) = y._prev - {x}
    assert (base.data, base._op) == (2.0, "")
    y.backward()
    assert base.grad == pytest.approx(3.0 * 2.0**2.0, rel=GRAD_REL)  # b * a**(b-1)
    assert x.grad == pytest.approx(8.0 * math.log(2.0), rel=GRAD_REL)


def test_interior_nodes_from_prev_keep_identity() -> None:
    a, b = mg.Value(2.0), mg.Value(-3.0)
    c = (a * b) + 1.0  # the product node has no Python object of its own

    def product_node() -> Any:
        (node,) = [p for p in c._prev if p._op == "*"]
        return node

    first = product_node()
    gc.collect()
    second = product_node()
    assert first is second and id(first) == id(second) and hash(first) == hash(second)
    assert first in c._prev
    assert {a, b} == first._prev
    c.backward()
    # gradients seen through the same object: dc/d(ab) = 1, dc/da = b, dc/db = a
    assert (first.grad, a.grad, b.grad) == (1.0, -3.0, 2.0)
    assert product_node().grad == 1.0


def test_prev_members_are_hashable_and_usable_as_dict_keys() -> None:
    a = mg.Value(1.0)
    y = (a + 2.0) * (a - 1.0)
    seen = {node: node.data for node in y._prev}
    seen.update({node: node.data for node in y._prev})
    assert len(seen) == 2
    assert sorted(seen.values()) == [0.0, 3.0]


# ---------------------------------------------------------------------------
# Ops micrograd lacks: analytic formula and finite differences
# ---------------------------------------------------------------------------

UNARY_POINTS = [(name, x) for name, op in UNARY_OPS.items() for x in op.points]


@pytest.mark.parametrize(("name", "x"), UNARY_POINTS)
def test_unary_op_value_and_gradient(name: str, x: float) -> None:
    op = UNARY_OPS[name]
    v = mg.Value(x)
    out = op.apply(v)
    (out * UPSTREAM).backward()
    assert out._op == op.label
    assert close(out.data, op.value(x), VALUE_REL, 1e-300)
    assert close(v.grad, UPSTREAM * op.derivative(x), GRAD_REL, 1e-300)
    assert close(v.grad, UPSTREAM * central_diff(op.value, x), FD_REL, FD_ABS)


@pytest.mark.parametrize(
    "x", [-2.5, -1e-300, -0.0, 0.0, 1e-300, 3.0, math.inf, -math.inf, math.nan]
)
@pytest.mark.parametrize("cls", [mg.Value, mg.Value32])
def test_abs_matches_torch_at_zero_and_edges(cls: Any, x: float) -> None:
    """abs and abs(): d/dx = sign(x), 0 at 0 and at nan, as PyTorch's."""
    torch = pytest.importorskip("torch")
    dtype = torch.float64 if cls is mg.Value else torch.float32
    t = torch.tensor(x, dtype=dtype, requires_grad=True)
    want = torch.abs(t)
    want.backward()
    for make in (lambda v: v.abs(), abs):
        v = cls(x)
        out = make(v)
        out.backward()
        assert type(out) is cls and out._op == "abs"
        assert out.data == want.item() or (math.isnan(out.data) and math.isnan(want.item()))
        assert v.grad == t.grad.item()


POW_BASES = [0.3, 1.0, 2.0, 5.5]
POW_EXPS = [-2.0, -0.5, 0.0, 1.0, 2.5, 3.0]


@pytest.mark.parametrize("b", POW_EXPS)
@pytest.mark.parametrize("a", POW_BASES)
def test_value_pow_value(a: float, b: float) -> None:
    va, vb = mg.Value(a), mg.Value(b)
    out = va**vb
    (out * UPSTREAM).backward()
    assert close(out.data, a**b, VALUE_REL)
    assert close(va.grad, UPSTREAM * b * a ** (b - 1), GRAD_REL, 1e-300)
    assert close(vb.grad, UPSTREAM * a**b * math.log(a), GRAD_REL, 1e-300)
    assert close(va.grad, UPSTREAM * central_diff(lambda t: t**b, a), FD_REL, FD_ABS)
    assert close(vb.grad, UPSTREAM * central_diff(lambda t: a**t, b), FD_REL, FD_ABS)


@pytest.mark.parametrize("x", [-1.5, -0.0, 0.0, 0.7, 3.0])
@pytest.mark.parametrize("base", [2, 2.5, 0.5, 10.0])
def test_rpow(base: float, x: float) -> None:
    v = mg.Value(x)
    out = base**v
    assert isinstance(out, mg.Value)
    (out * UPSTREAM).backward()
    assert close(out.data, base**x, VALUE_REL)
    assert close(v.grad, UPSTREAM * base**x * math.log(base), GRAD_REL)
    assert close(v.grad, UPSTREAM * central_diff(lambda t: base**t, x), FD_REL, FD_ABS)


def _value_ns() -> SimpleNamespace:
    return SimpleNamespace(
        tanh=lambda v: v.tanh(),
        exp=lambda v: v.exp(),
        log=lambda v: v.log(),
        sigmoid=lambda v: v.sigmoid(),
        relu=lambda v: v.relu(),
    )


MATH_NS = SimpleNamespace(
    tanh=math.tanh, exp=math.exp, log=math.log, sigmoid=sigmoid, relu=lambda t: max(t, 0.0)
)


def composite_a(x: Any, y: Any, m: SimpleNamespace) -> Any:
    return m.tanh(x * y) + m.exp(-x) * m.sigmoid(y) - m.log(x**2 + 1)


def composite_b(x: Any, y: Any, m: SimpleNamespace) -> Any:
    return x**y / (1 + m.exp(y)) + m.relu(x + y) * 3 - 2 / (y * y + x)


def composite_c(x: Any, y: Any, m: SimpleNamespace) -> Any:
    s = m.sigmoid(x)
    return s**y * m.log(y) + 2 ** (x - y) - (1.5 - s) ** 2 + (-m.tanh(y)) * s


@pytest.mark.parametrize("fn", [composite_a, composite_b, composite_c], ids=lambda f: f.__name__)
@pytest.mark.parametrize(("x", "y"), [(0.8, 1.7), (1.3, 0.4), (2.2, 2.9)])
def test_composite_gradients_by_finite_differences(
    fn: Callable[[Any, Any, SimpleNamespace], Any], x: float, y: float
) -> None:
    vx, vy = mg.Value(x), mg.Value(y)
    out = fn(vx, vy, _value_ns())
    out.backward()
    assert close(out.data, fn(x, y, MATH_NS), 1e-12)
    assert close(vx.grad, central_diff(lambda t: fn(t, y, MATH_NS), x), FD_REL, FD_ABS)
    assert close(vy.grad, central_diff(lambda t: fn(x, t, MATH_NS), y), FD_REL, FD_ABS)


# ---------------------------------------------------------------------------
# IEEE edges (PyTorch's conventions)
# ---------------------------------------------------------------------------


def _grads_of(build: Callable[..., Any], *xs: float) -> tuple[float, list[float]]:
    leaves = [mg.Value(x) for x in xs]
    out = build(*leaves)
    out.backward()
    return out.data, [leaf.grad for leaf in leaves]


NAN = math.nan
INF = math.inf


@pytest.mark.parametrize(
    ("build", "xs", "data", "grads"),
    [
        (lambda a: a.log(), (0.0,), -INF, [INF]),
        (lambda a: a.log(), (-1.0,), NAN, None),
        (lambda a: a / 0, (1.0,), INF, None),
        (lambda a: a / 0, (0.0,), NAN, None),
        (lambda a: 1 / a, (0.0,), INF, None),
        (lambda a: a ** (1 / 3), (-8.0,), NAN, None),
        (lambda a: a**-1, (0.0,), INF, None),
        (lambda a: a.exp(), (800.0,), INF, [INF]),
        (lambda a: a.exp(), (-800.0,), 0.0, [0.0]),
        (lambda a: a.sigmoid(), (-800.0,), 0.0, [0.0]),
        (lambda a: a.sigmoid(), (800.0,), 1.0, [0.0]),
        (lambda a: a.tanh(), (40.0,), 1.0, [0.0]),
        (lambda a: a.tanh(), (-40.0,), -1.0, [0.0]),
        # Value ** Value: d/db = a**b * ln(a), and 0 where a == 0 and b >= 0
        (lambda a, b: a**b, (0.0, 2.0), 0.0, [0.0, 0.0]),
        (lambda a, b: a**b, (0.0, 0.5), 0.0, [INF, 0.0]),
        (lambda a, b: a**b, (0.0, 3.0), 0.0, [0.0, 0.0]),
        (lambda a, b: a**b, (-2.0, 3.0), -8.0, [12.0, NAN]),
        (lambda a, b: a**b, (-8.0, 1 / 3), NAN, None),
    ],
    ids=[
        "log0",
        "log_neg",
        "div_by_zero",
        "zero_div_zero",
        "rdiv_by_zero",
        "neg_cuberoot",
        "zero_pow_neg1",
        "exp_overflow",
        "exp_underflow",
        "sigmoid_neg_big",
        "sigmoid_pos_big",
        "tanh_pos_big",
        "tanh_neg_big",
        "vpow_0_2",
        "vpow_0_half",
        "vpow_0_3",
        "vpow_neg2_3",
        "vpow_neg8_third",
    ],
)
def test_ieee_edges(
    build: Callable[..., Any], xs: tuple[float, ...], data: float, grads: list[float] | None
) -> None:
    got_data, got_grads = _grads_of(build, *xs)
    assert close(got_data, data, 0.0)
    if grads is not None:
        assert all(close(g, w, 0.0) for g, w in zip(got_grads, grads, strict=True)), got_grads


# ---------------------------------------------------------------------------
# NumPy scalars on either side
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("scalar", [np.float64(2.5), np.int64(3)], ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("value_on_left", [True, False], ids=["value_left", "value_right"])
@pytest.mark.parametrize("opname", list(BINARY_OPS))
def test_numpy_scalar_operands(opname: str, value_on_left: bool, scalar: Any) -> None:
    op = BINARY_OPS[opname].fn
    x = 1.5
    v = mg.Value(x)
    out = op(v, scalar) if value_on_left else op(scalar, v)
    want = op(x, float(scalar)) if value_on_left else op(float(scalar), x)
    assert isinstance(out, mg.Value)
    assert close(out.data, want, 1e-15)
    out.backward()
    h = central_diff(lambda t: op(t, float(scalar)) if value_on_left else op(float(scalar), t), x)
    assert close(v.grad, h, FD_REL, FD_ABS)


# ---------------------------------------------------------------------------
# float32: Value32 computes and stores in float32
# ---------------------------------------------------------------------------

F32_INPUTS = [0.1, -2.7, 3.3333, 1e-8, 1e8, 7.0, -0.0]
F32_OPS = {k: op.fn for k, op in BINARY_OPS.items() if k != "pow"}


def test_value32_rounds_on_construction() -> None:
    assert mg.Value32(0.1).data == f32(0.1) != 0.1
    assert type(mg.Value32(0.1).data) is float


def test_value32_small_plus_one_is_one() -> None:
    assert (mg.Value32(1e-8) + 1).data == 1.0
    assert (1 + mg.Value32(1e-8)).data == 1.0
    assert (mg.Value(1e-8) + 1).data != 1.0  # the float64 class keeps it


@pytest.mark.parametrize("opname", list(F32_OPS))
def test_value32_binary_ops_match_numpy_float32(opname: str) -> None:
    op = F32_OPS[opname]
    failures = []
    with np.errstate(all="ignore"):
        for a in F32_INPUTS:
            for b in F32_INPUTS:
                want = float(op(np.float32(a), np.float32(b)))
                got = {
                    "v32 op v32": op(mg.Value32(a), mg.Value32(b)).data,
                    "v32 op num": op(mg.Value32(a), b).data,
                    "num op v32": op(a, mg.Value32(b)).data,
                }
                failures += [
                    f"{a} {opname} {b} [{k}]: got {g!r}, float32 {want!r}"
                    for k, g in got.items()
                    if not (g == want or (math.isnan(g) and math.isnan(want)))
                ]
    assert not failures, "\n".join(failures)


def test_value32_unary_ops_are_float32() -> None:
    with np.errstate(all="ignore"):
        assert (-mg.Value32(0.1)).data == float(-np.float32(0.1))
        assert mg.Value32(-0.1).relu().data == 0.0
        assert mg.Value32(0.1).relu().data == f32(0.1)
        assert (mg.Value32(0.1) ** 2).data == float(np.float32(0.1) * np.float32(0.1))
        assert (mg.Value32(3.3) ** 2).data == float(np.float32(3.3) * np.float32(3.3))


@pytest.mark.parametrize("name", [*UNARY_OPS, "pow"])
def test_value32_ops_are_float32(name: str) -> None:
    op: Callable[[Any], Any]
    f: Callable[[float], float]
    if name == "pow":
        op, f, x = (lambda v: v**0.7), (lambda t: t**0.7), 1.3
    else:
        spec = UNARY_OPS[name]
        op, f, x = spec.apply, spec.value, spec.points[len(spec.points) // 2] + 0.3
    v = mg.Value32(x)
    out = op(v)
    out.backward()
    xs = f32(x)
    for got, ref in ((out.data, f(xs)), (v.grad, central_diff(f, xs))):
        assert f32(got) == got  # representable in float32
        assert math.isclose(got, ref, rel_tol=1e-5)


def test_value32_gradients_are_float32() -> None:
    x, y, w = mg.Value32(0.7), mg.Value32(0.1), mg.Value32(0.3)
    z = (x * y) * w
    z.backward()
    want = float(np.float32(0.1) * np.float32(0.3))
    assert want != f32(0.1) * f32(0.3)  # the test input separates float32 from float64
    assert x.grad == want
    assert w.grad == float(np.float32(0.7) * np.float32(0.1))


def test_value32_setters_store_float32() -> None:
    v = mg.Value32(1.0)
    v.data = 0.1
    v.grad = 0.1
    assert v.data == f32(0.1) and v.grad == f32(0.1)


# The operators are number slots (bindings/value.cpp): the dunder methods CPython makes
# from them must behave as micrograd's methods do when called by name.
DUNDERS: list[tuple[str, tuple[Any, ...], float]] = [
    ("__add__", (3.0,), 2.0 + 3.0),
    ("__radd__", (3.0,), 3.0 + 2.0),
    ("__sub__", (3.0,), 2.0 - 3.0),
    ("__rsub__", (3.0,), 3.0 - 2.0),
    ("__mul__", (3.0,), 2.0 * 3.0),
    ("__rmul__", (3.0,), 3.0 * 2.0),
    ("__truediv__", (4.0,), 2.0 / 4.0),
    ("__rtruediv__", (4.0,), 4.0 / 2.0),
    ("__pow__", (3,), 2.0**3),
    ("__rpow__", (3.0,), 3.0**2.0),
    ("__neg__", (), -2.0),
]


@pytest.mark.parametrize("cls", [mg.Value, mg.Value32], ids=lambda c: c.__name__)
@pytest.mark.parametrize(("name", "args", "want"), DUNDERS, ids=[d[0] for d in DUNDERS])
def test_dunder_methods_called_by_name(
    cls: type, name: str, args: tuple[Any, ...], want: float
) -> None:
    out = getattr(cls(2.0), name)(*args)
    assert out.data == want
    assert type(out) is cls


@pytest.mark.parametrize("cls", [mg.Value, mg.Value32], ids=lambda c: c.__name__)
def test_pow_with_a_modulus_is_a_type_error(cls: type) -> None:
    with pytest.raises(TypeError, match="pow"):
        pow(cls(2.0), 2, 3)
    out: Any = pow(cls(2.0), 3, None)  # no modulus: the same as **
    assert out.data == 8.0
