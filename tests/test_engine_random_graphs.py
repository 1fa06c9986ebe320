"""Random expression graphs built in micrograd and in micrograd_cpp side by side.

A seeded generator draws ops over a pool of earlier nodes (so subexpressions
are shared), with number operands on either side and in-place forms.  Each op
is first built in micrograd; it is kept only if micrograd's value is a finite
real of moderate size and its backward pass cannot raise, and then the very
same Python expression is applied to our pool.

Forward values must be equal (==), except in graphs with division, where
each true division may differ from micrograd's ``a * b**-1`` by one rounding.
Gradients are compared with rel tol 1e-12 plus an absolute slack of 1e-12
times the largest gradient in the graph: micrograd's ``_prev`` is a set, so
the order in which contributions are summed into a shared node varies from
run to run, even between two micrograd runs.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import micrograd_cpp as mg
import pytest
from micrograd.engine import Value as MGValue

Builder = Callable[[list[Any]], Any]

N_LEAVES = 4
N_OPS = 40
SEEDS = range(30)
GRAD_REL = 1e-12
DIV_DATA_REL = 1e-12
MAX_ABS = 1e3


def _iadd(a: Any, b: Any) -> Any:
    a += b
    return a


def _isub(a: Any, b: Any) -> Any:
    a -= b
    return a


def _imul(a: Any, b: Any) -> Any:
    a *= b
    return a


def _itruediv(a: Any, b: Any) -> Any:
    a /= b
    return a


def _number(rng: random.Random) -> int | float:
    if rng.random() < 0.3:
        return rng.choice([-2, -1, 1, 2, 3])
    return rng.choice([-1, 1]) * round(rng.uniform(0.05, 3.0), 4)


def _pick(rng: random.Random, n: int) -> int:
    # favour recent nodes so graphs get deep, but reuse old ones too
    return n - 1 - min(int(rng.expovariate(0.25)), n - 1)


MODES = ("native", "composite", "with_div")


def random_op(rng: random.Random, n: int, mode: str) -> tuple[Builder, Callable[[list[Any]], bool]]:
    """One op over a pool of ``n`` nodes: (builder, precondition on micrograd's pool).

    "native" uses only ops micrograd has as single nodes (+, *, ** const, relu);
    "composite" adds -, neg and their number/in-place forms; "with_div" adds /.
    """
    i, j = _pick(rng, n), _pick(rng, n)
    c = _number(rng)

    def always(v: list[Any]) -> bool:
        return True

    def away_from_zero(k: int) -> Callable[[list[Any]], bool]:
        return lambda v: abs(v[k].data) >= 1e-2

    ops: list[tuple[Builder, Callable[[list[Any]], bool]]] = [
        (lambda v: v[i] + v[j], always),
        (lambda v: v[i] * v[j], always),
        (lambda v: v[i].relu(), always),
        (lambda v: v[i] + c, always),
        (lambda v: c + v[i], always),
        (lambda v: v[i] * c, always),
        (lambda v: c * v[i], always),
        (lambda v: _iadd(v[i], v[j]), always),
        (lambda v: _imul(v[i], v[j]), always),
        (lambda v: v[i] ** 2, always),
        (lambda v: v[i] ** 3, always),
        (lambda v: v[i] ** 2.0, always),
        (lambda v: v[i] ** -1, away_from_zero(i)),
        (lambda v: v[i] ** 0.5, lambda v: v[i].data >= 1e-2),
        (lambda v: v[i] ** 1.5, lambda v: v[i].data >= 1e-2),
    ]
    if mode in ("composite", "with_div"):
        ops += [
            (lambda v: v[i] - v[j], always),
            (lambda v: -v[i], always),
            (lambda v: v[i] - c, always),
            (lambda v: c - v[i], always),
            (lambda v: _isub(v[i], c), always),
        ]
    if mode == "with_div":
        ops += [
            (lambda v: v[i] / v[j], away_from_zero(j)),
            (lambda v: v[i] / c, always),
            (lambda v: c / v[i], away_from_zero(i)),
            (lambda v: _itruediv(v[i], v[j]), away_from_zero(j)),
        ] * 2
    return rng.choice(ops)


def _acceptable(node: Any) -> bool:
    data = node.data
    return isinstance(data, int | float) and math.isfinite(data) and abs(data) <= MAX_ABS


def build_graphs(seed: int, mode: str) -> tuple[list[Any], list[Any]]:
    """The same random graph in both engines; the last node of each pool is the root."""
    rng = random.Random(seed)
    leaves = [round(rng.uniform(-2.0, 2.0), 3) for _ in range(N_LEAVES)]
    ref: list[Any] = [MGValue(x) for x in leaves]
    ours: list[Any] = [mg.Value(x) for x in leaves]
    for _ in range(N_OPS):
        build, ok = random_op(rng, len(ref), mode)
        if not ok(ref):
            continue
        node = build(ref)
        if not _acceptable(node):
            continue
        ref.append(node)
        ours.append(build(ours))
    # the root sums the last node with a few earlier ones, so most of the pool matters
    picks = rng.sample(range(len(ref) - 1), k=min(4, len(ref) - 1))
    for pool in (ref, ours):
        root = pool[-1]
        for k in picks:
            root = root + pool[k]
        pool.append(root)
    return ours, ref


def _eq_exact(got: float, want: float | int) -> bool:
    # Plain ==, so 0.0 == -0.0: relu's int 0 and integer constants make micrograd
    # compute in ints, which carry no sign of zero, and that int zero then flows
    # into later float results.  Signs of zero are checked op by op in
    # test_engine_micrograd_parity.py, where inputs are floats.
    return got == want


# A second backward() re-adds stale interior grads; micrograd's composites
# (a - b is a + b * -1) have hidden interior nodes of their own, so repeated
# passes are comparable on native graphs only.
CASES = [("native", 1), ("native", 2), ("native", 3), ("composite", 1), ("with_div", 1)]


@pytest.mark.parametrize(("mode", "passes"), CASES, ids=[f"{m}-x{p}" for m, p in CASES])
@pytest.mark.parametrize("seed", SEEDS)
def test_random_graph_matches_micrograd(seed: int, mode: str, passes: int) -> None:
    ours, ref = build_graphs(seed, mode)
    assert len(ref) >= N_LEAVES + N_OPS // 2  # most drawn ops were kept
    for _ in range(passes):
        ref[-1].backward()
        ours[-1].backward()

    data_scale = max(1.0, *(abs(float(r.data)) for r in ref))
    grad_scale = max(1.0, *(abs(float(r.grad)) for r in ref))

    def data_ok(got: float, want: float) -> bool:
        if mode != "with_div":
            return _eq_exact(got, want)
        return math.isclose(got, want, rel_tol=DIV_DATA_REL, abs_tol=DIV_DATA_REL * data_scale)

    def grad_ok(got: float, want: float) -> bool:
        return math.isclose(got, want, rel_tol=GRAD_REL, abs_tol=GRAD_REL * grad_scale)

    failures = [
        f"node {k} ({r._op!r}): {what} got {g!r}, micrograd {w!r}"
        for k, (o, r) in enumerate(zip(ours, ref, strict=True))
        for what, g, w, ok in (("data", o.data, r.data, data_ok), ("grad", o.grad, r.grad, grad_ok))
        if not ok(g, w)
    ]
    assert not failures, f"seed={seed}\n" + "\n".join(failures[:15])


# micrograd builds a - b, -a and a / b from '+', '*' and '**-1' nodes; the top
# node of each composite is what our native op corresponds to.
COMPOSITE_TOP_LABEL = {"-": "+", "neg": "*", "/": "*"}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed", SEEDS[:10])
def test_random_graph_op_labels_match_micrograd(seed: int, mode: str) -> None:
    ours, ref = build_graphs(seed, mode)
    got = [COMPOSITE_TOP_LABEL.get(o._op, o._op) for o in ours]
    assert got == [r._op for r in ref]
