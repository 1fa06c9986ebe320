"""Node arena accounting, deep chains through backward() and teardown.

The deep-chain tests run in a subprocess so that a stack overflow in the
backward pass or in teardown shows up as a failing test (with its exit code)
instead of killing the whole pytest session.  Their expected values come from
the same recurrence evaluated with Python floats / NumPy float32 scalars in
this process, and from the closed form 1.0001**n.
"""

from __future__ import annotations

import gc
import math
from typing import Any

import micrograd_cpp as mg
import numpy as np
import pytest
from conftest import live, run_script

DTYPES: dict[str, type] = {"float64": mg.Value, "float32": mg.Value32}
AFFINE_STEPS = 250_000  # 4 nodes per step: 10**6 nodes
TANH_STEPS = 1_000_000  # 1 node per step
MUL, ADD, X0 = 1.0001, 0.0001, 0.5


@pytest.fixture(params=list(DTYPES))
def dtype(request: pytest.FixtureRequest) -> str:
    param: str = request.param
    return param


def test_arena_stats_shape(dtype: str) -> None:
    stats = mg.arena_stats(dtype=dtype)
    assert set(stats) == {"live", "capacity", "bytes", "node_size"}
    assert all(type(v) is int for v in stats.values())
    assert stats["node_size"] > 0
    assert 0 <= stats["live"] <= stats["capacity"]
    assert stats["bytes"] >= stats["capacity"] * stats["node_size"]


def test_arena_stats_default_is_float64() -> None:
    gc.collect()
    base = mg.arena_stats()["live"]
    keep = [mg.Value(float(i)) for i in range(10)]
    assert mg.arena_stats()["live"] - base == 10
    assert live("float64") - base == 10
    del keep
    assert mg.arena_stats()["live"] == base


def test_live_counts_every_node_and_returns_to_baseline(dtype: str) -> None:
    cls = DTYPES[dtype]
    base = live(dtype)
    a = cls(1.0)
    assert live(dtype) == base + 1
    b = a * 2  # the number 2 becomes a leaf node
    assert live(dtype) == base + 3
    c = b + b
    assert live(dtype) == base + 4
    c.backward()  # backward allocates no nodes
    assert live(dtype) == base + 4
    del a  # still reachable from c
    assert live(dtype) == base + 4
    del c
    assert live(dtype) == base + 3
    del b
    assert live(dtype) == base


def test_node_from_prev_outlives_its_parent(dtype: str) -> None:
    cls = DTYPES[dtype]
    base = live(dtype)
    parent = cls(1.5) * 4.0
    (leaf,) = [p for p in parent._prev if p.data == 4.0]
    del parent
    assert live(dtype) == base + 1  # only the node we still hold
    assert (leaf.data, leaf._op) == (4.0, "")
    del leaf
    assert live(dtype) == base


def _build_graph(cls: type, n: int) -> Any:
    xs = [cls(0.001 * i) for i in range(n)]
    acc = cls(0.0)
    for i, x in enumerate(xs):
        acc = acc + x * xs[i // 2] - 0.5 * x
    return acc


def test_large_graph_dropped_returns_to_baseline_and_slots_are_reused(dtype: str) -> None:
    cls = DTYPES[dtype]
    base = live(dtype)
    g = _build_graph(cls, 3000)
    g.backward()
    assert live(dtype) > base + 3000
    del g
    assert live(dtype) == base
    capacity_after_first = mg.arena_stats(dtype=dtype)["capacity"]
    for _ in range(5):
        g = _build_graph(cls, 3000)
        g.backward()
        del g
    assert live(dtype) == base
    # freed slots are reused: five more graphs of the same size must not need
    # five times the slots (a leak-free arena needs none at all)
    assert mg.arena_stats(dtype=dtype)["capacity"] <= 2 * capacity_after_first


def test_wide_sum_gradient() -> None:
    n = 100_000
    xs = [mg.Value(float(i)) for i in range(n)]
    total = mg.Value(0.0)
    for x in xs:
        total = total + x
    total.backward()
    assert total.data == n * (n - 1) / 2
    assert all(x.grad == 1.0 for x in xs)


# ---------------------------------------------------------------------------
# Deep chains, in a subprocess
# ---------------------------------------------------------------------------

DEEP_SCRIPT = r"""
import gc, json, sys
import micrograd_cpp as mg

chain, dtype, steps, do_backward = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
cls = mg.Value32 if dtype == "float32" else mg.Value

from conftest import live

base = live(dtype)
x0 = cls(float(sys.argv[5]))
x = x0
if chain == "affine":
    for _ in range(steps):
        x = x * float(sys.argv[6]) + float(sys.argv[7])
else:
    for _ in range(steps):
        x = x.tanh()
out = {"peak": live(dtype) - base}
if do_backward:
    x.backward()
    out["grad"] = x0.grad
    out["root_grad"] = x.grad
out["data"] = x.data
del x
out["after_root_dropped"] = live(dtype) - base
del x0
out["after_all_dropped"] = live(dtype) - base
print(json.dumps(out))
"""


def run_deep(chain: str, dtype: str, steps: int, do_backward: bool) -> dict[str, Any]:
    args = [chain, dtype, str(steps), "1" if do_backward else "0", repr(X0), repr(MUL), repr(ADD)]
    return run_script(DEEP_SCRIPT, *args)


def affine_reference_f64(steps: int) -> tuple[float, float]:
    x, g = X0, 1.0
    for _ in range(steps):
        x = x * MUL + ADD
        g = MUL * g
    return x, g


def affine_reference_f32(steps: int) -> tuple[float, float]:
    mul, add = np.float32(MUL), np.float32(ADD)
    x, g = np.float32(X0), np.float32(1.0)
    for _ in range(steps):
        x = x * mul + add  # each numpy float32 op rounds to float32
        g = mul * g
    return float(x), float(g)


@pytest.mark.parametrize("do_backward", [True, False], ids=["backward", "no_backward"])
def test_deep_affine_chain_float64(do_backward: bool) -> None:
    res = run_deep("affine", "float64", AFFINE_STEPS, do_backward)
    n = AFFINE_STEPS
    want_x, want_g = affine_reference_f64(n)
    assert res["peak"] == 4 * n + 1
    assert res["after_root_dropped"] == 1 and res["after_all_dropped"] == 0
    assert res["data"] == want_x
    assert math.isclose(res["data"], (X0 + 1.0) * MUL**n - 1.0, rel_tol=1e-9)
    if do_backward:
        assert res["root_grad"] == 1.0
        assert res["grad"] == want_g
        assert math.isclose(res["grad"], MUL**n, rel_tol=1e-9)


def test_deep_affine_chain_float32() -> None:
    n = AFFINE_STEPS
    res = run_deep("affine", "float32", n, True)
    want_x, want_g = affine_reference_f32(n)
    assert res["peak"] == 4 * n + 1
    assert res["after_root_dropped"] == 1 and res["after_all_dropped"] == 0
    assert (res["data"], res["grad"]) == (want_x, want_g)
    # float32 accumulates visibly more rounding than float64 over 250k steps
    assert res["grad"] != affine_reference_f64(n)[1]
    assert math.isclose(res["grad"], float(np.float32(MUL)) ** n, rel_tol=1e-1)


def test_deep_tanh_chain_float64() -> None:
    n = TANH_STEPS
    res = run_deep("tanh", "float64", n, True)
    x, g = X0, 1.0
    for _ in range(n):
        x = math.tanh(x)
        g *= 1.0 - x * x
    assert res["peak"] == n + 1
    assert res["after_root_dropped"] == 1 and res["after_all_dropped"] == 0
    assert math.isclose(res["data"], x, rel_tol=1e-9)
    assert math.isclose(res["grad"], g, rel_tol=1e-8)
