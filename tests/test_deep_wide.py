"""Graphs 10^7 nodes deep and 10^6 inputs wide build, backpropagate and free without a
crash, with gradients checked against closed forms; and stale handles are impossible by
construction: a Python Value keeps its node (and everything it depends on) alive.

Each 10^7-node chain runs in a subprocess of its own (about half a gigabyte of nodes), so
that a stack overflow in backward() or in teardown would fail one test instead of killing
the test runner; the child reports its figures as JSON.

MICROGRAD_SCALE (default 1) scales both sizes; .ci/sanitize runs at 0.1, because under
AddressSanitizer creating a Value costs time proportional to the number of live Python
Values (docs/reliability.md), which makes 10^6 held Values take many minutes there.
"""

from __future__ import annotations

import gc
import math
import os
import random
from typing import Any, Literal

import micrograd_cpp as mg
import pytest
from conftest import live, run_script
from micrograd.engine import Value as MGValue
from micrograd_cpp import nn

Dtype = Literal["float64", "float32"]

SCALE = float(os.environ.get("MICROGRAD_SCALE", "1"))
DEPTH = int(10_000_000 * SCALE)
WIDTH = int(1_000_000 * SCALE)

CHAIN_SCRIPT = r"""
import gc, json, sys, time
import micrograd_cpp as mg

kind, dtype, n, x0, c, passes, order = sys.argv[1:]
n, passes = int(n), int(passes)
cls = mg.Value32 if dtype == "float32" else mg.Value

from conftest import live

base = live(dtype)
x0, c = cls(float(x0)), cls(float(c))
x = x0
t0 = time.perf_counter()
if kind == "add":            # x_k = x_{k-1} + c
    for _ in range(n):
        x = x + c
elif kind == "mul":          # x_k = x_{k-1} * c
    for _ in range(n):
        x = x * c
elif kind == "neg":          # x_k = -x_{k-1}
    for _ in range(n):
        x = -x
t1 = time.perf_counter()
out = {"peak": live(dtype) - base}
for _ in range(passes):
    x.backward()
out.update(root_grad=x.grad, x0_grad=x0.grad, c_grad=c.grad, data=x.data)
t2 = time.perf_counter()
if order == "root_first":
    del x
    out["after_root"] = live(dtype) - base
    del x0, c
else:                        # the leaves first: the chain still holds them
    del x0, c
    out["after_leaves"] = live(dtype) - base
    del x
t3 = time.perf_counter()
out["after_all"] = live(dtype) - base
out["seconds"] = {"build": t1 - t0, f"backward x{passes}": t2 - t1, "free": t3 - t2}
print(json.dumps(out))
"""


def run_chain(
    kind: str, dtype: str, x0: float, c: float, passes: int, order: str, n: int = DEPTH
) -> dict[str, Any]:
    args = [kind, dtype, str(n), repr(x0), repr(c), str(passes), order]
    report = run_script(CHAIN_SCRIPT, *args, timeout=600)
    secs = ", ".join(f"{k} {v:.2f} s" for k, v in report["seconds"].items())
    print(f"\n{kind} chain of {n:,} ({dtype}): {secs}")
    return report


# Closed forms for the chains of n ops on x0 and c (backward() once or twice). On
# the second pass the root's grad is set to 1, not added, and every other node's grad,
# already holding its first-pass value, accumulates again and is propagated as it is:
#   add: pass 1: d/dx0 = 1, d/dc = n;  pass 2: x_{n-j}.grad = j + 1, so
#        x0.grad = 1 + n and c.grad = n + (1 + sum_{j=1}^{n-1} (j + 1)) = 2n + n(n-1)/2
#   neg (n even): pass 1: x0.grad = 1; pass 2: |x_{n-j}.grad| = j + 1, x0.grad = n + 1
#   mul: pass 1: d/dx0 = c**n, d/dc = n * x0 * c**(n-1)
def closed_form(kind: str, n: int, x0: float, c: float, passes: int) -> dict[str, float]:
    if kind == "add":
        grads = (
            {"x0_grad": 1.0, "c_grad": float(n)}
            if passes == 1
            else {"x0_grad": 1.0 + n, "c_grad": 2.0 * n + n * (n - 1) // 2}
        )
        return {"data": x0 + n * c, **grads}
    if kind == "neg":
        return {"data": x0, "x0_grad": 1.0 if passes == 1 else n + 1.0}
    return {"data": x0 * c**n, "x0_grad": c**n, "c_grad": n * x0 * c ** (n - 1)}


@pytest.mark.parametrize(("kind", "passes"), [("add", 1), ("add", 2), ("neg", 2), ("mul", 1)])
def test_closed_forms_match_micrograd_on_short_chains(kind: str, passes: int) -> None:
    """The closed forms above, checked against micrograd itself where it can go (n = 60)."""
    n, c = 60, (1.0 + 2.0**-4 if kind == "mul" else 1.0)
    x0, cv = MGValue(0.5), MGValue(c)
    x = x0
    for _ in range(n):
        x = x + cv if kind == "add" else x * cv if kind == "mul" else -x
    for _ in range(passes):
        x.backward()
    got = {"data": x.data, "x0_grad": x0.grad, "c_grad": cv.grad}
    for key, want in closed_form(kind, n, 0.5, c, passes).items():
        assert got[key] == pytest.approx(want, rel=1e-12), key


def check_teardown(res: dict[str, Any], order: str, held_leaves: int) -> None:
    assert res["peak"] == DEPTH + 2  # n op nodes and two leaves (neg's c is unused)
    if order == "root_first":
        assert res["after_root"] == 2
    else:
        assert res["after_leaves"] == DEPTH + held_leaves
    assert res["after_all"] == 0


CHAINS = [
    # kind, dtype, x0, c, passes, order. add and neg are exact: every value and grad is an
    # integer (plus 0.5 in float64) below 2**24 (float32) or 2**53 (float64).
    ("add", "float64", 0.5, 1.0, 2, "root_first"),
    ("add", "float32", 0.0, 1.0, 1, "leaves_first"),
    ("neg", "float64", 0.5, 0.0, 2, "leaves_first"),
    ("mul", "float64", 0.5, 1.0 + 2.0**-24, 1, "root_first"),
]


@pytest.mark.parametrize(
    ("kind", "dtype", "x0", "c", "passes", "order"),
    CHAINS,
    ids=[f"{k}-{d}-x{p}" for k, d, _, _, p, _ in CHAINS],
)
def test_deep_chain(kind: str, dtype: str, x0: float, c: float, passes: int, order: str) -> None:
    res = run_chain(kind, dtype, x0, c, passes, order)
    check_teardown(res, order, held_leaves=1 if kind == "neg" else 2)
    assert res["root_grad"] == 1.0
    # Rounding: none for add and neg (exact integers); for mul, n roundings of about
    # 1.1e-16 each compound to at most n * 1.1e-16 ~ 1.1e-9 relative.
    rel = 1e-8 if kind == "mul" else 0.0
    for key, want in closed_form(kind, DEPTH, x0, c, passes).items():
        assert res[key] == pytest.approx(want, rel=rel, abs=0.0), key


# --------------------------------------------------------------------------------------
# 10^6 inputs wide
# --------------------------------------------------------------------------------------


def test_wide_python_sum() -> None:
    base = live()
    xs = [mg.Value(float(i)) for i in range(WIDTH)]
    total = sum(xs)  # 0 + x0 + x1 + ...: a leaf for the 0 and one '+' per input
    assert isinstance(total, mg.Value)
    assert live() - base == 2 * WIDTH + 1
    total.backward()
    assert total.data == WIDTH * (WIDTH - 1) / 2
    assert all(x.grad == 1.0 for x in xs)
    del total, xs
    assert live() == base


def test_wide_fan_out() -> None:
    # One value feeding 10^6 products: y = sum(x * i) = x * n(n-1)/2, dy/dx = n(n-1)/2.
    base = live()
    x = mg.Value(2.0)
    y = sum((x * i for i in range(WIDTH)), mg.Value(0.0))
    y.backward()
    assert x.grad == WIDTH * (WIDTH - 1) / 2
    assert y.data == 2.0 * WIDTH * (WIDTH - 1) / 2
    del y
    assert live() - base == 1


def test_wide_neuron_and_losses() -> None:
    base = live()
    random.seed(11)
    neuron = nn.Neuron(WIDTH, nonlin=False)  # one fused C++ call builds 3*10^6 nodes
    xs = [1.0 if i % 2 else -1.0 for i in range(WIDTH)]
    out = neuron(xs)
    want = math.fsum(w.data * x for w, x in zip(neuron.w, xs, strict=True))
    assert out.data == pytest.approx(want, rel=1e-9, abs=1e-9)
    out.backward()
    assert all(w.grad == x for w, x in zip(neuron.w, xs, strict=True))  # d/dw_i = x_i
    assert neuron.b.grad == 1.0

    params = neuron.parameters()
    penalty = nn.l2_penalty(params, 0.5)  # 0.5 * sum(p*p): d/dp = p
    neuron.zero_grad()
    penalty.backward()
    assert all(p.grad == pytest.approx(p.data, rel=1e-15) for p in params)

    preds = [mg.Value(0.001 * (i % 1000)) for i in range(WIDTH)]
    mse = nn.mse_loss(preds, [0.0] * WIDTH)  # mean(p**2): d/dp = 2p/n
    mse.backward()
    assert all(p.grad == pytest.approx(2 * p.data / WIDTH, rel=1e-12) for p in preds[:2000])
    del out, penalty, mse, preds, neuron, params
    assert live() == base


# --------------------------------------------------------------------------------------
# Stale handles are impossible by construction
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [mg.Value, mg.Value32], ids=["Value", "Value32"])
def test_a_handle_keeps_its_node_and_its_inputs_alive(cls: Any) -> None:
    dtype: Dtype = "float32" if cls is mg.Value32 else "float64"
    base = live(dtype)
    a, b = cls(3.0, label="a"), cls(4.0, label="b")
    c = a * b
    d = (c + 1).relu()
    d.backward()
    del a, b, d  # only c is held, and c holds a and b
    assert live(dtype) - base == 3
    # Churn the arena: build and drop many graphs that reuse every freed slot.
    for _ in range(20):
        junk = cls(1.0)
        for _ in range(1000):
            junk = junk * 1.0 + 0.5
        del junk
    assert (c.data, c.grad, c._op) == (12.0, 1.0, "*")
    a2, b2 = sorted(c._prev, key=lambda v: v.data)
    assert (a2.label, a2.data, a2.grad) == ("a", 3.0, 4.0)  # grads from before the drop
    assert (b2.label, b2.data, b2.grad) == ("b", 4.0, 3.0)
    # and it keeps working: a new graph on the old nodes (grads zeroed first, as c's old
    # grad would otherwise flow into a and b again, micrograd's semantics)
    for v in (a2, b2, c):
        v.grad = 0
    e = (c * a2 * 0.01).tanh()  # tanh(0.01 * a*b*a)
    e.backward()
    t = math.tanh(0.36)
    assert e.data == pytest.approx(t, rel=1e-6)
    assert a2.grad == pytest.approx((1 - t * t) * 0.01 * 2 * 3.0 * 4.0, rel=1e-6)
    assert b2.grad == pytest.approx((1 - t * t) * 0.01 * 3.0 * 3.0, rel=1e-6)
    del a2, b2, c, e, v
    assert live(dtype) == base


def test_prev_of_a_dropped_graph_stays_valid() -> None:
    base = live()
    x = mg.Value(0.5)
    nodes = [x]
    for _ in range(1000):
        nodes.append(nodes[-1].tanh() * 1.5)
    nodes[-1].backward()
    middle = nodes[500]
    prev = list(middle._prev)  # the tanh node and the leaf 1.5
    want = {p._op: (p.data, p.grad) for p in prev}
    del nodes, x, middle  # the whole graph's handles are gone; prev holds its inputs
    gc.collect()
    for _ in range(10):  # reuse the freed slots
        junk = [mg.Value(float(i)) * 2 for i in range(5000)]
        del junk
    assert {p._op: (p.data, p.grad) for p in prev} == want
    tanh = next(p for p in prev if p._op == "tanh")
    chain_len = 0
    node = tanh
    while node._prev:  # walk down the chain to the first leaf: every link is alive
        node = next(p for p in node._prev if p._op != "" or p.data == 0.5)
        chain_len += 1
    assert node.data == 0.5 and node._op == ""
    assert chain_len == 2 * 500 - 1
    del prev, tanh, node
    assert live() == base


def test_prev_returns_the_same_object_while_it_lives() -> None:
    a = mg.Value(1.0)
    c = a + 2.0
    two = next(p for p in c._prev if p is not a)  # the leaf made for 2.0, now held
    for _ in range(3):
        assert {id(p) for p in c._prev} == {id(a), id(two)}
    del two
    again = next(p for p in c._prev if p is not a)  # a new wrapper, the same node
    assert (again.data, again._op) == (2.0, "")
