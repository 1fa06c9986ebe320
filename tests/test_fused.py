"""Fused neurons: ``Neuron``/``Layer``/``MLP.__call__`` build one node per neuron.

micrograd builds 2n (or 2n + 1 with the ReLU) nodes per neuron: n products ``w_i*x_i``,
n sums starting from the bias, then the ReLU. micrograd_cpp builds one fused node that
reports the op of that chain's last node, holds the same value, gives every input the
same gradient (also over repeated ``backward()`` calls without zeroing, where micrograd
over-counts its interior nodes), and turns into micrograd's nodes, in place, when its
``_prev`` is read. ``MLP.__call__`` also keeps a plan of the model between calls, which
every structural change must invalidate.

micrograd itself, run in the test, is the oracle; everything is compared bit for bit
(``==``, NaN equal to NaN). One caveat makes the choice of models matter: micrograd's
backward order follows its ``_prev`` sets, whose order depends on object addresses, so a
gradient that sums three or more rounded terms (or two, into a node that already has a
grad from an earlier ``backward()``) varies from run to run *in micrograd*. Bitwise tests
therefore use either

* random weights on "order-safe" models, where no node gets such a sum: inputs fed to at
  most two neurons (one for repeated backward passes, or numbers, which become a new leaf
  at each use) and hidden outputs fed to at most two neurons (one for repeated passes); or
* "dyadic" weights and inputs (small multiples of 1/4), on any model: every product and
  sum is then exact, so the summation order cannot change a single bit.

Deep, wide random models with repeated backward passes are compared with a relative
tolerance, as in ``test_nn.py``.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import pytest
from conftest import live, walk
from micrograd.engine import Value as MGValue
from micrograd.nn import MLP as MGMLP
from micrograd.nn import Layer as MGLayer
from micrograd.nn import Neuron as MGNeuron
from micrograd_cpp import Value, nn

GRAD_REL = 1e-12
# Coefficients of the scalar loss sum(c_i * o_i) for models with several outputs (dyadic:
# they keep dyadic arithmetic exact).
COEFFS = [0.5, -1.25, 0.75, 2.0, -0.25, 1.5]


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Lib:
    """One engine's classes, so that a change can be written once for both models."""

    name: str
    value: Any
    neuron: Any
    layer: Any


MG = Lib("micrograd", MGValue, MGNeuron, MGLayer)
CPP = Lib("micrograd_cpp", Value, nn.Neuron, nn.Layer)


def same(got: Any, want: Any) -> bool:
    """Float equality, with NaN equal to NaN (micrograd keeps some ints: 0, 1)."""
    g, w = float(got), float(want)
    if math.isnan(g) or math.isnan(w):
        return math.isnan(g) and math.isnan(w)
    return g == w


def close(got: Any, want: Any) -> bool:
    g, w = float(got), float(want)
    if math.isnan(g) or math.isnan(w):
        return math.isnan(g) and math.isnan(w)
    return math.isclose(g, w, rel_tol=GRAD_REL, abs_tol=1e-300)


def dyadic(rng: random.Random, k: int = 4) -> float:
    """A multiple of 1/4 in [-k/4, k/4]: products and sums of a few of them are exact."""
    return rng.randint(-k, k) / 4


def build_pair(nin: int, nouts: list[int], seed: int = 7) -> tuple[Any, nn.MLP]:
    """(micrograd MLP, micrograd_cpp MLP) with the same initial weights."""
    random.seed(seed)
    ref = MGMLP(nin, list(nouts))
    random.seed(seed)
    ours = nn.MLP(nin, list(nouts))
    return ref, ours


def set_dyadic(pairs: list[tuple[Any, Any]], seed: int) -> None:
    """Writes the same dyadic numbers into both members of each (ref, ours) pair."""
    rng = random.Random(seed)
    for q, p in pairs:
        q.data = p.data = dyadic(rng)


def make_pair(nin: int, nouts: list[int], weights: str, seed: int = 7) -> tuple[Any, nn.MLP]:
    ref, ours = build_pair(nin, nouts, seed)
    assert [q.data for q in ref.parameters()] == [p.data for p in ours.parameters()]
    if weights == "dyadic":
        set_dyadic(list(zip(ref.parameters(), ours.parameters(), strict=True)), seed)
    else:
        assert weights == "random", weights
    return ref, ours


def input_numbers(nin: int, weights: str, seed: int) -> list[float]:
    rng = random.Random(1000 + seed)
    if weights == "dyadic":
        return [dyadic(rng, 8) for _ in range(nin)]
    return [rng.uniform(-2.0, 2.0) for _ in range(nin)]


def make_inputs(kind: str, nums: list[float], V: Any) -> list[Any]:
    if kind == "Value":
        return [V(x) for x in nums]
    if kind == "float":
        return list(nums)
    if kind == "mixed":
        return [V(x) if i % 2 == 0 else x for i, x in enumerate(nums)]
    raise AssertionError(kind)


def mg_call(ref: Any, x: list[Any]) -> Any:
    """micrograd's MLP.__call__. A one-neuron hidden layer returns a bare Value, which
    micrograd's next layer cannot iterate: it is passed on as [value], the same graph."""
    if all(len(layer.neurons) > 1 for layer in ref.layers[:-1]):
        return ref(x)
    out: Any = x
    for layer in ref.layers:
        out = layer(out if isinstance(out, list) else [out])
    return out


def as_list(out: Any) -> list[Any]:
    return out if isinstance(out, list) else [out]


def loss_of(out: Any) -> Any:
    """The output itself when there is one (the fused node is then backward()'s root),
    else sum(c_i * o_i): the same graph in either engine."""
    outs = as_list(out)
    if len(outs) == 1:
        return outs[0]
    total = outs[0] * COEFFS[0]
    for o, c in zip(outs[1:], COEFFS[1 : len(outs)], strict=True):
        total = total + o * c
    return total


def value_inputs(x: list[Any]) -> list[Any]:
    return [v for v in x if not isinstance(v, (int, float))]


def compare_state(
    ref: Any,
    ours: Any,
    xr: list[Any],
    xo: list[Any],
    eq: Callable[[Any, Any], bool] = same,
    extra: list[tuple[Any, Any]] | None = None,
) -> list[str]:
    """Mismatches of every parameter's and Value input's grad (and data)."""
    bad: list[str] = []
    params_r, params_o = ref.parameters(), ours.parameters()
    if len(params_r) != len(params_o):
        return [f"{len(params_o)} parameters, micrograd {len(params_r)}"]
    pairs: list[tuple[str, Any, Any]] = []
    for i, (p, q) in enumerate(zip(params_o, params_r, strict=True)):
        pairs += [(f"param {i} data", p.data, q.data), (f"param {i} grad", p.grad, q.grad)]
    for i, (a, b) in enumerate(zip(value_inputs(xo), value_inputs(xr), strict=True)):
        pairs += [(f"x[{i}] grad", a.grad, b.grad)]
    for i, (a, b) in enumerate(extra or []):
        pairs += [(f"extra {i} grad", a.grad, b.grad)]
    bad += [f"{name}: ours {g!r}, micrograd {w!r}" for name, g, w in pairs if not eq(g, w)]
    return bad


def compare_outputs(out_r: Any, out_o: Any) -> list[str]:
    lr, lo = as_list(out_r), as_list(out_o)
    if isinstance(out_r, list) != isinstance(out_o, list) or len(lr) != len(lo):
        return [f"outputs {out_o!r}, micrograd {out_r!r}"]
    bad = [
        f"output {i}: ours {o.data!r}, micrograd {r.data!r}"
        for i, (o, r) in enumerate(zip(lo, lr, strict=True))
        if not same(o.data, r.data)
    ]
    bad += [
        f"output {i} op: ours {o._op!r}, micrograd {r._op!r}"
        for i, (o, r) in enumerate(zip(lo, lr, strict=True))
        if o._op != r._op
    ]
    return bad


def forward_backward(
    ref: Any, ours: Any, xr: list[Any], xo: list[Any], passes: int, eq: Callable[[Any, Any], bool]
) -> list[str]:
    """Both models on their inputs, `passes` backward() calls, every mismatch."""
    out_r, out_o = mg_call(ref, xr), ours(xo)
    bad = compare_outputs(out_r, out_o)
    loss_r, loss_o = loss_of(out_r), loss_of(out_o)
    for k in range(passes):
        loss_r.backward()
        loss_o.backward()
        bad += [f"after backward {k + 1}: {m}" for m in compare_state(ref, ours, xr, xo, eq)]
    return bad


Edge = tuple[str, float, tuple[tuple[str, float], ...]]


@dataclass
class Summary:
    count: int
    ops: Counter[str]
    values: Counter[tuple[float, float]]  # (data, grad)
    edges: Counter[Edge]  # (op, data, sorted (op, data) of the inputs)


def summarize(nodes: list[Any]) -> Summary:
    def edge(n: Any) -> Edge:
        inputs = sorted((c._op, float(c.data)) for c in n._prev)
        return (n._op, float(n.data), tuple(inputs))

    return Summary(
        count=len(nodes),
        ops=Counter(n._op for n in nodes),
        values=Counter((float(n.data), float(n.grad)) for n in nodes),
        edges=Counter(edge(n) for n in nodes),
    )


def summary_mismatches(ours: Summary, ref: Summary) -> list[str]:
    """What differs, as (only ours, only micrograd) samples of each multiset."""
    bad = []
    if ours.count != ref.count:
        bad.append(f"node count: ours {ours.count}, micrograd {ref.count}")
    for field in ("ops", "values", "edges"):
        mine, theirs = getattr(ours, field), getattr(ref, field)
        if mine != theirs:
            only_ours = list((mine - theirs).items())[:4]
            only_ref = list((theirs - mine).items())[:4]
            bad.append(f"{field}: only ours {only_ours}, only micrograd {only_ref}")
    return bad


# ---------------------------------------------------------------------------
# 1. Outputs and gradients equal micrograd's, bit for bit
# ---------------------------------------------------------------------------

# (nin, nouts, input kind, backward passes): random weights on order-safe models (see the
# module docstring): inputs as Values feed at most two neurons (one for two passes),
# hidden outputs at most two neurons (one for two passes).
RANDOM_SAFE: list[tuple[int, list[int], str, int]] = [
    (1, [1], "Value", 1),
    (1, [1], "Value", 2),
    (1, [1], "float", 2),
    (5, [1], "Value", 2),
    (5, [1], "mixed", 2),
    (1, [2, 1], "Value", 1),
    (1, [3, 1], "float", 2),
    (4, [6, 1], "float", 1),
    (4, [6, 1], "float", 2),
    (3, [2, 1], "Value", 1),
    (3, [2, 2, 1], "Value", 1),
    (3, [2, 2, 1], "mixed", 1),
    (3, [2], "Value", 1),  # two outputs: loss = 0.5*o0 - 1.25*o1
    (3, [4], "float", 2),
    (2, [4, 2], "float", 1),
    (3, [2, 2, 2, 1], "Value", 1),  # four layers
    (3, [2, 2, 2, 1], "float", 1),
    (2, [1, 1, 1, 1], "Value", 2),  # four layers of width 1
    (2, [1, 1, 1, 1], "float", 2),
    (3, [4, 1, 1, 1], "float", 2),
    (1, [1, 1], "Value", 2),  # nin = 1, width 1 throughout
]


def case_id(case: tuple[Any, ...]) -> str:
    return "-".join(str(c).replace(" ", "") for c in case)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("case", RANDOM_SAFE, ids=case_id)
def test_random_weights_bitwise_equal_micrograd(
    case: tuple[int, list[int], str, int], seed: int
) -> None:
    nin, nouts, kind, passes = case
    ref, ours = make_pair(nin, nouts, "random", seed)
    nonzero = 0
    for trial in range(3):
        nums = input_numbers(nin, "random", 10 * seed + trial)
        if trial == 1:
            nums = [-v for v in nums]  # w.x and w.(-x): other ReLUs pass
        ref.zero_grad()
        ours.zero_grad()
        xr, xo = make_inputs(kind, nums, MGValue), make_inputs(kind, nums, Value)
        bad = forward_backward(ref, ours, xr, xo, passes, same)
        assert not bad, f"{case}, trial {trial}: {bad[:6]}"
        nonzero += sum(q.grad != 0 for q in ref.parameters())
    assert nonzero > 0, "every ReLU was dead: the test compared only zeros"


# Any model, dyadic weights and inputs: every number is exact, so every grad is too.
DYADIC_SHAPES: list[tuple[int, list[int]]] = [
    (1, [1]),
    (1, [4, 1]),
    (3, [4, 4, 4, 1]),  # four layers
    (2, [5, 5, 2]),
    (4, [3, 1, 3]),  # a hidden layer of width 1
    (3, [6]),
]


@pytest.mark.parametrize("passes", [1, 2, 3])
@pytest.mark.parametrize("kind", ["Value", "float", "mixed"])
@pytest.mark.parametrize("shape", DYADIC_SHAPES, ids=case_id)
def test_dyadic_weights_bitwise_equal_micrograd(
    shape: tuple[int, list[int]], kind: str, passes: int
) -> None:
    nin, nouts = shape
    nonzero = 0
    for seed in range(3):
        ref, ours = make_pair(nin, nouts, "dyadic", seed)
        nums = input_numbers(nin, "dyadic", seed)
        xr, xo = make_inputs(kind, nums, MGValue), make_inputs(kind, nums, Value)
        bad = forward_backward(ref, ours, xr, xo, passes, same)
        assert not bad, f"{shape}, {kind}, seed {seed}: {bad[:6]}"
        nonzero += sum(q.grad != 0 for q in ref.parameters())
    assert nonzero > 0, "every ReLU was dead: the test compared only zeros"


def test_zero_grad_between_backward_passes_still_over_counts() -> None:
    """zero_grad() zeroes the parameters only: micrograd's interior nodes keep their grads,
    so the next backward() over the same graph adds them in again."""
    ref, ours = make_pair(3, [2, 2, 1], "dyadic", 5)  # dyadic: the sums are order-free
    xr, xo = [MGValue(0.5), MGValue(-1.25), MGValue(2.0)], [Value(0.5), Value(-1.25), Value(2.0)]
    yr, yo = mg_call(ref, xr), cast(Value, ours(xo))
    yr.backward()
    yo.backward()
    first = [q.grad for q in ref.parameters()]
    ref.zero_grad()
    ours.zero_grad()
    for v in xr + xo:
        v.grad = 0.0
    yr.backward()
    yo.backward()
    bad = compare_state(ref, ours, xr, xo)
    assert not bad, bad[:6]
    assert [q.grad for q in ref.parameters()] != first, "micrograd did not over-count"


SPECIAL_INPUTS: list[list[float]] = [
    [math.inf, 1.0, -0.5],
    [-math.inf, math.inf, 0.25],
    [math.nan, 1.0, 2.0],
    [1e308, 1e308, -1e308],
    [-0.0, 0.0, -0.0],
    [5e-324, -5e-324, 1e-300],
]


# (nouts, input kind, backward passes), order-safe with random weights
SPECIAL_MODELS: list[tuple[list[int], str, int]] = [
    ([2, 2, 1], "Value", 1),
    ([2, 2, 1], "float", 1),
    ([4, 1, 1], "float", 2),
    ([1, 1], "Value", 2),
]


@pytest.mark.parametrize("model", SPECIAL_MODELS, ids=case_id)
@pytest.mark.parametrize("nums", SPECIAL_INPUTS, ids=repr)
def test_special_values_equal_micrograd(
    nums: list[float], model: tuple[list[int], str, int]
) -> None:
    """inf, nan, overflow, signed zeros and subnormals: the same values and grads (NaN
    where micrograd's are NaN)."""
    nouts, kind, passes = model
    ref, ours = make_pair(3, nouts, "random", 11)
    xr, xo = make_inputs(kind, nums, MGValue), make_inputs(kind, nums, Value)
    bad = forward_backward(ref, ours, xr, xo, passes, same)
    assert not bad, f"{nums}, {model}: {bad[:6]}"


@pytest.mark.parametrize("shape", [(3, [4, 4, 4, 1]), (2, [8, 8, 3]), (4, [6, 6])], ids=case_id)
def test_random_wide_models_repeated_backward_close_to_micrograd(
    shape: tuple[int, list[int]],
) -> None:
    """Wide random models: several backward passes over-count as micrograd does, up to
    micrograd's own (address-dependent) summation order."""
    nin, nouts = shape
    ref, ours = make_pair(nin, nouts, "random", 3)
    nums = input_numbers(nin, "random", 3)
    xr, xo = make_inputs("Value", nums, MGValue), make_inputs("Value", nums, Value)
    bad = forward_backward(ref, ours, xr, xo, 3, close)
    assert not bad, bad[:6]
    assert any(q.grad != 0 for q in ref.parameters())


def test_neuron_and_layer_calls_equal_micrograd() -> None:
    """Neuron.__call__ and Layer.__call__ build fused nodes too."""
    for nonlin in (True, False):
        random.seed(2)
        n_ref = MGNeuron(3, nonlin=nonlin)
        l_ref = MGLayer(3, 2, nonlin=nonlin)
        random.seed(2)
        n_ours = nn.Neuron(3, nonlin=nonlin)
        l_ours = nn.Layer(3, 2, nonlin=nonlin)
        set_dyadic(
            list(
                zip(
                    n_ref.parameters() + l_ref.parameters(),
                    n_ours.parameters() + l_ours.parameters(),
                    strict=True,
                )
            ),
            4,
        )
        xr, xo = [MGValue(v) for v in (1.5, -0.5, 2.0)], [Value(v) for v in (1.5, -0.5, 2.0)]
        outs_r = [n_ref(xr), *l_ref(xr)]
        outs_o = [n_ours(xo), *cast(list[Value], l_ours(xo))]
        assert compare_outputs(outs_r, outs_o) == []
        loss_r, loss_o = loss_of(outs_r), loss_of(outs_o)
        for _ in range(2):
            loss_r.backward()
            loss_o.backward()
        for ref, ours in ((n_ref, n_ours), (l_ref, l_ours)):
            bad = compare_state(ref, ours, xr, xo)
            assert not bad, f"nonlin={nonlin}: {bad[:6]}"
        bad = summary_mismatches(summarize(walk(loss_o)), summarize(walk(loss_r)))
        assert not bad, f"nonlin={nonlin}: {bad}"


@pytest.mark.parametrize("passes", [1, 2])
def test_inputs_that_alias_weights_or_each_other(passes: int) -> None:
    """An input that is a weight of the neuron it meets (a product w0*w0, whose _prev is
    one node in micrograd), or the same Value twice."""
    for seed in range(3):
        ref, ours = make_pair(2, [3, 1], "dyadic", seed)
        a_r, a_o = MGValue(1.5), Value(1.5)
        for xr, xo in (
            ([ref.layers[0].neurons[0].w[0], a_r], [ours.layers[0].neurons[0].w[0], a_o]),
            ([a_r, a_r], [a_o, a_o]),
        ):
            out_r, out_o = mg_call(ref, xr), cast(Value, ours(xo))
            assert compare_outputs(out_r, out_o) == []
            for _ in range(passes):
                out_r.backward()
                out_o.backward()
            bad = compare_state(ref, ours, xr, xo, extra=[(a_o, a_r)])
            bad += summary_mismatches(summarize(walk(out_o)), summarize(walk(out_r)))
            assert not bad, f"seed {seed}: {bad[:6]}"


# ---------------------------------------------------------------------------
# 2. Expanded graphs equal micrograd's graphs
# ---------------------------------------------------------------------------

# (nin, nouts, input kind, weights): models on which every grad is order-independent for
# any number of backward passes.
WALK_CASES: list[tuple[int, list[int], str, str]] = [
    (3, [4, 4, 4, 1], "Value", "dyadic"),
    (2, [3, 3, 2], "float", "dyadic"),
    (1, [2, 1], "mixed", "dyadic"),
    (3, [4, 1, 3], "Value", "dyadic"),
    (2, [1, 1, 1, 1], "Value", "random"),
    (4, [5, 1], "float", "random"),
    (3, [3], "float", "random"),
    (1, [1], "Value", "random"),
]

# How the graphs are expanded and backward()ed before the last comparison.
SCENARIOS = [
    "backward_then_walk",
    "backward_twice_then_walk",
    "walk_then_backward",
    "walk_then_backward_twice",
    "backward_walk_backward",
    "partial_expansion_between_passes",
    "data_changed_before_walk_and_backward",
]


def expand_levels(root: Any, levels: int) -> None:
    """Reads _prev of the nodes up to `levels` edges below root (expanding only those)."""
    frontier = [root]
    for _ in range(levels):
        frontier = [c for n in frontier for c in n._prev]


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("case", WALK_CASES, ids=case_id)
def test_expanded_graph_equals_micrograd_graph(
    case: tuple[int, list[int], str, str], scenario: str
) -> None:
    nin, nouts, kind, weights = case
    ref, ours = make_pair(nin, nouts, weights, seed=5)
    nums = input_numbers(nin, weights, 5)
    xr, xo = make_inputs(kind, nums, MGValue), make_inputs(kind, nums, Value)
    out_r, out_o = mg_call(ref, xr), ours(xo)
    assert compare_outputs(out_r, out_o) == []
    loss_r, loss_o = loss_of(out_r), loss_of(out_o)

    def backward() -> None:
        loss_r.backward()
        loss_o.backward()

    def check(when: str) -> list[Any]:
        nodes_o = walk(loss_o)
        bad = summary_mismatches(summarize(nodes_o), summarize(walk(loss_r)))
        bad += compare_state(ref, ours, xr, xo)
        assert not bad, f"{scenario}, {when}: {bad[:6]}"
        return nodes_o

    if scenario == "backward_then_walk":
        backward()
        check("after backward")
    elif scenario == "backward_twice_then_walk":
        backward()
        backward()
        check("after two backward passes")
    elif scenario in ("walk_then_backward", "walk_then_backward_twice"):
        before = check("before backward")
        backward()
        if scenario == "walk_then_backward_twice":
            backward()
        after = check("after backward")
        # backward() adds no node: the expanded graph is the same objects
        assert {id(n) for n in after} == {id(n) for n in before}
    elif scenario == "backward_walk_backward":
        backward()
        check("after backward 1")
        backward()
        check("after backward 2")
    elif scenario == "partial_expansion_between_passes":
        backward()
        expand_levels(loss_o, 3)  # fused and expanded nodes in the second pass
        backward()
        check("after backward 2")
    elif scenario == "data_changed_before_walk_and_backward":
        # micrograd's nodes keep the values of the forward pass; its leaves have new data,
        # which its backward() reads
        rng = random.Random(9)
        for q, p in zip(ref.parameters(), ours.parameters(), strict=True):
            q.data = p.data = dyadic(rng) if weights == "dyadic" else rng.uniform(-1, 1)
        for a, b in zip(value_inputs(xr), value_inputs(xo), strict=True):
            a.data = b.data = a.data * 2 if weights == "dyadic" else a.data * 1.5
        check("data changed, before backward")
        backward()
        check("data changed, after backward")
    else:
        raise AssertionError(scenario)


@pytest.mark.parametrize(
    "case",
    [(3, [2, 2, 1], "Value", 1), (3, [1, 1, 1], "mixed", 2), (2, [1, 1, 1], "Value", 3)],
    ids=case_id,
)
def test_data_changed_between_forward_and_backward(case: tuple[int, list[int], str, int]) -> None:
    """micrograd's backward reads the leaves' data at backward() time, not the forward's
    (random weights, order-safe models)."""
    nin, nouts, kind, passes = case
    ref, ours = make_pair(nin, nouts, "random", 8)
    nums = input_numbers(nin, "random", 8)
    xr, xo = make_inputs(kind, nums, MGValue), make_inputs(kind, nums, Value)
    yr, yo = mg_call(ref, xr), cast(Value, ours(xo))
    rng = random.Random(4)
    for q, p in zip(ref.parameters(), ours.parameters(), strict=True):
        q.data = p.data = rng.uniform(-1, 1)
    xr[0].data = xo[0].data = 3.25
    for k in range(passes):
        yr.backward()
        yo.backward()
        bad = compare_state(ref, ours, xr, xo)
        assert not bad, f"backward {k + 1}: {bad[:6]}"
    assert any(q.grad != 0 for q in ref.parameters())


# ---------------------------------------------------------------------------
# 3. Identity through expansion
# ---------------------------------------------------------------------------


def test_expansion_keeps_identity_op_data_and_label() -> None:
    ref, ours = make_pair(3, [4, 2], "random", 3)
    nums = [0.5, -1.0, 1.5]
    outs_r = mg_call(ref, [MGValue(v) for v in nums])
    outs_o = cast(list[Value], ours([Value(v) for v in nums]))
    for y, y_ref in zip(outs_o, outs_r, strict=True):
        y.label = "out"
        op, data = y._op, y.data
        assert op == y_ref._op == "+", (op, y_ref._op)
        consumer = y * 2.0
        first = y._prev
        second = y._prev
        assert len(first) == len(second) == len(y_ref._prev) == 2
        assert {id(n) for n in first} == {id(n) for n in second}, "_prev gave new objects"
        assert all(any(a is b for b in second) for a in first)
        assert y._op == op, f"op changed on expansion: {op!r} -> {y._op!r}"
        assert y.data == data
        assert y.label == "out", f"label lost on expansion: {y.label!r}"
        assert any(n is y for n in consumer._prev), "y's consumer lost it"
        # one level further: the same objects every time, too (while they live)
        for child in first:
            again, once_more = child._prev, child._prev
            assert {id(n) for n in again} == {id(n) for n in once_more}
    # the ReLU neurons of the hidden layer: their op is 'ReLU' before and after expansion
    hidden = [n for y in outs_o for m in y._prev for n in m._prev if n._op == "ReLU"]
    assert hidden, "no hidden ReLU node reached"
    for h in hidden:
        h.label = "h"
        before = (h._op, h.data)
        (s,) = h._prev
        assert s._op == "+"
        assert (h._op, h.data, h.label) == (*before, "h")


@pytest.mark.parametrize("nonlin", [True, False])
def test_fused_node_op_before_expansion_equals_micrograd(nonlin: bool) -> None:
    for nin in (1, 2, 5):
        random.seed(nin)
        ref = MGNeuron(nin, nonlin=nonlin)
        random.seed(nin)
        ours = nn.Neuron(nin, nonlin=nonlin)
        x = [0.25 * (k + 1) for k in range(nin)]
        y_ref, y = ref(x), ours(x)
        assert y._op == y_ref._op, f"Neuron({nin}, nonlin={nonlin}): {y._op!r}"
        assert y.data == y_ref.data
        assert len(y._prev) == len(y_ref._prev)
        assert y._op == y_ref._op
        assert sorted(n._op for n in y._prev) == sorted(n._op for n in y_ref._prev)


def test_backward_from_a_node_inside_an_expanded_neuron() -> None:
    """Interior nodes, once expanded, are ordinary nodes: backward() from one of them."""
    ref, ours = make_pair(2, [3, 1], "dyadic", 6)
    xr, xo = [MGValue(1.25), MGValue(-0.75)], [Value(1.25), Value(-0.75)]
    yr, yo = mg_call(ref, xr), cast(Value, ours(xo))
    # walk down the same path: the sum node just below the output, in both graphs
    (sr,) = [n for n in yr._prev if n._op == "+"]
    (so,) = [n for n in yo._prev if n._op == "+"]
    assert so.data == sr.data
    sr.backward()
    so.backward()
    bad = compare_state(ref, ours, xr, xo)
    assert not bad, bad[:6]
    yr.backward()  # sr's grad is now 1 + 1: micrograd over-counts below it
    yo.backward()
    bad = compare_state(ref, ours, xr, xo)
    assert not bad, bad[:6]
    assert any(q.grad != 0 for q in ref.parameters())


# ---------------------------------------------------------------------------
# 4. The forward plan notices every change
# ---------------------------------------------------------------------------


def fresh_neuron(lib: Lib, nin: int, nonlin: bool, seed: int) -> Any:
    """A new neuron with dyadic weights, the same in either engine."""
    random.seed(seed)
    n = lib.neuron(nin, nonlin=nonlin)
    rng = random.Random(seed)
    for p in n.parameters():
        p.data = dyadic(rng)
    return n


def fresh_layer(lib: Lib, nin: int, nout: int, nonlin: bool, seed: int) -> Any:
    random.seed(seed)
    layer = lib.layer(nin, nout, nonlin=nonlin)
    rng = random.Random(seed)
    for p in layer.parameters():
        p.data = dyadic(rng)
    return layer


def sgd_step(m: Any, lib: Lib) -> None:
    if lib is CPP:
        nn.SGD(m.parameters(), lr=0.25).step()
    else:
        for p in m.parameters():
            p.data -= 0.25 * p.grad


def manual_sgd_step(m: Any, lib: Lib) -> None:
    for p in m.parameters():
        p.data -= 0.25 * p.grad


def grow_hidden_layer(m: Any, lib: Lib) -> None:
    m.layers[1].neurons.append(fresh_neuron(lib, 4, True, 31))
    for k, n in enumerate(m.layers[2].neurons):
        n.w.append(lib.value(0.25 * (k + 1)))


def swap_neurons(m: Any, lib: Lib) -> None:
    ns = m.layers[1].neurons
    ns[0], ns[2] = ns[2], ns[0]


def swap_weights(m: Any, lib: Lib) -> None:
    w = m.layers[0].neurons[1].w
    w[0], w[2] = w[2], w[0]


def all_data(m: Any, lib: Lib) -> None:
    rng = random.Random(17)
    for p in m.parameters():
        p.data = dyadic(rng)


def set_weight(m: Any, lib: Lib, i: int, j: int, k: int, v: float) -> None:
    m.layers[i].neurons[j].w[k] = lib.value(v)


def replace_last_weight(m: Any, lib: Lib) -> None:
    w = m.layers[1].neurons[0].w
    w.pop()
    w.append(lib.value(2.0))


def replace_first_layer(m: Any, lib: Lib) -> None:
    del m.layers[0]
    m.layers.insert(0, fresh_layer(lib, 3, 4, True, 61))


# The base model is MLP(3, [4, 3, 2]), dyadic, from this seed: every hidden neuron passes
# (ReLU > 0) on one of the inputs plan_round() uses, so that every change shows.
PLAN_SEED = 27

# Each change is applied to both models.
CHANGES: dict[str, Callable[[Any, Lib], None]] = {
    "neuron.b = Value": lambda m, lib: setattr(m.layers[0].neurons[1], "b", lib.value(0.75)),
    "output neuron.b = Value": lambda m, lib: setattr(m.layers[2].neurons[0], "b", lib.value(-1.5)),
    "hidden neuron.nonlin = False": lambda m, lib: setattr(m.layers[1].neurons[0], "nonlin", False),
    "output neuron.nonlin = True": lambda m, lib: setattr(m.layers[2].neurons[1], "nonlin", True),
    "neuron.nonlin = 0 (not a bool)": lambda m, lib: setattr(m.layers[0].neurons[2], "nonlin", 0),
    "neuron.w = new list": lambda m, lib: setattr(
        m.layers[1].neurons[1], "w", [lib.value(0.25 * k - 0.5) for k in range(4)]
    ),
    "layer.neurons = new list": lambda m, lib: setattr(
        m.layers[1], "neurons", [fresh_neuron(lib, 4, True, 20 + k) for k in range(3)]
    ),
    "layer.neurons = new list, other width": lambda m, lib: setattr(
        m.layers[2], "neurons", [fresh_neuron(lib, 3, False, 25 + k) for k in range(3)]
    ),
    "mlp.layers = new list": lambda m, lib: setattr(
        m, "layers", m.layers[:2] + [fresh_layer(lib, 3, 1, False, 40)]
    ),
    "mlp.layers[1] = new Layer": lambda m, lib: m.layers.__setitem__(
        1, fresh_layer(lib, 4, 3, True, 41)
    ),
    "neuron.w[0] = Value": lambda m, lib: set_weight(m, lib, 0, 0, 0, 1.75),
    "output neuron.w[2] = Value": lambda m, lib: set_weight(m, lib, 2, 1, 2, -0.75),
    "neuron.w[0] = a tied weight": lambda m, lib: (
        m.layers[1].neurons[2].w.__setitem__(0, m.layers[1].neurons[0].w[3])
    ),
    "neuron.w[:] = new values": lambda m, lib: (
        m.layers[0]
        .neurons[3]
        .w.__setitem__(slice(None), [lib.value(-0.25), lib.value(0.5), lib.value(1.0)])
    ),
    "neuron.w swap two items": swap_weights,
    "neuron.w.pop(); w.append(Value)": replace_last_weight,
    "layer.neurons.append (output)": lambda m, lib: m.layers[2].neurons.append(
        fresh_neuron(lib, 3, False, 50)
    ),
    "layer.neurons.insert (output)": lambda m, lib: m.layers[2].neurons.insert(
        0, fresh_neuron(lib, 3, False, 51)
    ),
    "layer.neurons.append (hidden) and w.append": grow_hidden_layer,
    "del layer.neurons[-1]": lambda m, lib: m.layers[2].neurons.__delitem__(-1),
    "layer.neurons.reverse()": lambda m, lib: m.layers[0].neurons.reverse(),
    "layer.neurons swap two items": swap_neurons,
    "mlp.layers.pop()": lambda m, lib: m.layers.pop(),
    "mlp.layers.append(Layer)": lambda m, lib: m.layers.append(fresh_layer(lib, 2, 1, False, 60)),
    "del mlp.layers[0] and insert new": replace_first_layer,
    "p.data = (every parameter)": all_data,
    "w.data = (one weight)": lambda m, lib: setattr(m.layers[1].neurons[2].w[1], "data", -1.5),
    "b.data = (one bias)": lambda m, lib: setattr(m.layers[0].neurons[0].b, "data", 2.25),
    "SGD step (nn.SGD vs micrograd's loop)": sgd_step,
    "SGD step (micrograd's loop on both)": manual_sgd_step,
}


def plan_round(ref: Any, ours: Any, seed: int, when: str) -> list[float]:
    """Forward, backward (zeroed first), and compare both models on dyadic inputs;
    micrograd's outputs."""
    nums = input_numbers(3, "dyadic", seed)
    xr, xo = make_inputs("Value", nums, MGValue), make_inputs("Value", nums, Value)
    ref.zero_grad()
    ours.zero_grad()
    bad = forward_backward(ref, ours, xr, xo, 1, same)
    assert not bad, f"{when}: {bad[:6]}"
    assert repr(ours) == repr(ref), when
    return [float(o.data) for o in as_list(mg_call(ref, xr))]


@pytest.mark.parametrize("name", list(CHANGES))
def test_forward_plan_sees_change(name: str) -> None:
    change = CHANGES[name]
    ref, ours = make_pair(3, [4, 3, 2], "dyadic", seed=PLAN_SEED)
    # the plan is made, then used
    before = [plan_round(ref, ours, k, f"before the change, call {k}") for k in range(3)]
    change(ref, MG)
    change(ours, CPP)
    # the first call after the change, then the new plan
    after = [plan_round(ref, ours, k, f"after {name!r}, call {k}") for k in range(3)]
    assert after != before, "the change did not change micrograd's outputs: a vacuous case"


def test_forward_plan_sees_changes_in_sequence() -> None:
    """Every change in turn on one model, with calls between (the plan rebuilt each time)."""
    ref, ours = make_pair(3, [4, 3, 2], "dyadic", seed=PLAN_SEED)
    plan_round(ref, ours, 0, "start")
    plan_round(ref, ours, 1, "start")
    for name in (
        "neuron.b = Value",
        "neuron.w[0] = Value",
        "hidden neuron.nonlin = False",
        "layer.neurons swap two items",
        "w.data = (one weight)",
        "layer.neurons.append (output)",
        "SGD step (nn.SGD vs micrograd's loop)",
        "neuron.w.pop(); w.append(Value)",
        "mlp.layers.pop()",
    ):
        CHANGES[name](ref, MG)
        CHANGES[name](ours, CPP)
        plan_round(ref, ours, 2, f"after {name!r}")
        plan_round(ref, ours, 3, f"again after {name!r}")


def test_forward_plan_change_reverted() -> None:
    """Change and change back: the model computes what it did at first, whether the
    change went through attributes or only through a list, in place."""
    ref, ours = make_pair(3, [4, 3, 2], "dyadic", seed=PLAN_SEED)
    start = [plan_round(ref, ours, 1, "start") for _ in range(2)]
    saved = []
    for m, lib in ((ref, MG), (ours, CPP)):
        n = m.layers[1].neurons[0]
        saved.append((n.w[0], n.b))
        n.w[0], n.b, n.nonlin = lib.value(1.5), lib.value(-0.5), False
    assert plan_round(ref, ours, 1, "changed") != start[0], "a vacuous case"
    for m, (w0, b) in zip((ref, ours), saved, strict=True):
        n = m.layers[1].neurons[0]
        n.w[0], n.b, n.nonlin = w0, b, True
    assert plan_round(ref, ours, 1, "changed back") == start[0]
    assert plan_round(ref, ours, 1, "changed back, again") == start[0]
    # only in place: an item of a list read by the plan, replaced then put back
    originals = []
    for m, lib in ((ref, MG), (ours, CPP)):
        originals.append(m.layers[2].neurons[1].w[1])
        m.layers[2].neurons[1].w[1] = lib.value(-2.0)
    assert plan_round(ref, ours, 1, "w[1] replaced in place") != start[0], "a vacuous case"
    for m, w1 in zip((ref, ours), originals, strict=True):
        m.layers[2].neurons[1].w[1] = w1
    assert plan_round(ref, ours, 1, "w[1] put back in place") == start[0]


def test_weight_that_is_an_expression() -> None:
    """A weight or bias that is not a leaf (a tied, scaled value): grads reach its leaf,
    over repeated backward passes too, as micrograd's."""
    ref, ours = make_pair(3, [4, 3, 2], "dyadic", seed=15)
    plan_round(ref, ours, 0, "start")
    plan_round(ref, ours, 1, "start")
    a_r, a_o = MGValue(0.75), Value(0.75)
    ref.layers[1].neurons[1].w[2] = a_r * 2.0
    ours.layers[1].neurons[1].w[2] = a_o * 2.0
    ref.layers[0].neurons[3].b = a_r + 0.5
    ours.layers[0].neurons[3].b = a_o + 0.5
    nums = input_numbers(3, "dyadic", 2)
    for _ in range(2):
        xr, xo = make_inputs("Value", nums, MGValue), make_inputs("Value", nums, Value)
        out_r, out_o = mg_call(ref, xr), ours(xo)
        assert compare_outputs(out_r, out_o) == []
        loss_r, loss_o = loss_of(out_r), loss_of(out_o)
        for _ in range(2):
            loss_r.backward()
            loss_o.backward()
            bad = compare_state(ref, ours, xr, xo, extra=[(a_o, a_r)])
            assert not bad, bad[:6]
    assert a_r.grad != 0


def test_two_models_sharing_layers() -> None:
    """A layer shared by two models: a change through one model reaches the other."""
    ref1, ours1 = make_pair(3, [4, 3, 2], "dyadic", seed=16)
    ref2, ours2 = make_pair(3, [4, 3, 2], "dyadic", seed=17)
    ref2.layers[1], ours2.layers[1] = ref1.layers[1], ours1.layers[1]
    for _ in range(2):
        before1 = [plan_round(ref1, ours1, k, "model 1") for k in range(3)]
        before2 = [plan_round(ref2, ours2, k, "model 2") for k in range(3)]
    for m, lib in ((ref1, MG), (ours1, CPP)):
        m.layers[1].neurons[0].w[0] = lib.value(1.25)
        m.layers[1].neurons[1].w[2] = lib.value(-0.75)
        m.layers[1].neurons[2].nonlin = False
    after2 = [
        plan_round(ref2, ours2, k, "model 2 after a change made through model 1") for k in range(3)
    ]
    after1 = [plan_round(ref1, ours1, k, "model 1 after the change") for k in range(3)]
    assert after1 != before1 and after2 != before2, "a vacuous case"


# ---------------------------------------------------------------------------
# 5. Subclasses of Neuron and Layer
# ---------------------------------------------------------------------------


class PropertyNeuron(nn.Neuron):
    """w is a property over a private list, read afresh (as a new list) at each access."""

    @property
    def w(self) -> list[Value]:
        return list(self._w)

    @w.setter
    def w(self, value: list[Value]) -> None:
        self._w = value


class ToggleNeuron(nn.Neuron):
    """nonlin is computed at each read from an outside switch."""

    switch: dict[str, bool] = {"on": True}

    @property
    def nonlin(self) -> bool:
        return self.switch["on"]

    @nonlin.setter
    def nonlin(self, value: bool) -> None:
        pass


class TupleLayer(nn.Layer):
    """neurons is a property giving a tuple over a private list."""

    @property  # type: ignore[override]
    def neurons(self) -> tuple[nn.Neuron, ...]:
        return tuple(self._neurons)

    @neurons.setter
    def neurons(self, value: list[nn.Neuron]) -> None:
        self._neurons = value


def rounds(ref: Any, ours: Any, when: str) -> list[list[float]]:
    """plan_round() on the same three inputs, twice (the second time through any plan)."""
    outs = [plan_round(ref, ours, k, f"{when}, call {k}") for k in range(3)]
    assert [plan_round(ref, ours, k, f"{when}, again") for k in range(3)] == outs
    return outs


def test_neuron_subclass_with_property_w() -> None:
    ref, ours = make_pair(3, [4, 3, 2], "dyadic", seed=PLAN_SEED)
    random.seed(5)
    sub = PropertyNeuron(4)
    for p, q in zip(sub.parameters(), ref.layers[1].neurons[1].parameters(), strict=True):
        p.data = q.data
    ours.layers[1].neurons[1] = sub
    before = rounds(ref, ours, "PropertyNeuron in layer 1")
    # changes that no attribute assignment and no list the model shows reveal: the
    # private list, in place
    sub._w[1] = Value(-1.75)
    ref.layers[1].neurons[1].w[1] = MGValue(-1.75)
    changed = rounds(ref, ours, "after sub._w[1] = Value")
    assert changed != before, "a vacuous case"
    new = (0.5, 1.25, -0.25, 0.5)
    sub._w[:] = [Value(v) for v in new]
    ref.layers[1].neurons[1].w[:] = [MGValue(v) for v in new]
    assert rounds(ref, ours, "after sub._w[:] = new values") != changed, "a vacuous case"
    # and the Layer.__call__ path
    xr, xo = [MGValue(v) for v in (1.0, -0.5, 0.25)], [Value(v) for v in (1.0, -0.5, 0.25)]
    hr, ho = ref.layers[0](xr), cast(list[Value], ours.layers[0](xo))
    assert compare_outputs(ref.layers[1](hr), ours.layers[1](ho)) == []


def test_neuron_subclass_with_computed_nonlin() -> None:
    """nonlin read from outside the model: no attribute is assigned when it changes."""
    ref, ours = make_pair(3, [4, 3, 2], "dyadic", seed=PLAN_SEED)
    random.seed(6)
    sub = ToggleNeuron(4)
    for p, q in zip(sub.parameters(), ref.layers[1].neurons[0].parameters(), strict=True):
        p.data = q.data
    ours.layers[1].neurons[0] = sub
    outputs: dict[bool, list[list[list[float]]]] = {True: [], False: []}
    try:
        for k in range(4):
            on = k % 2 == 0
            ToggleNeuron.switch["on"] = on
            ref.layers[1].neurons[0].nonlin = on
            outputs[on].append(rounds(ref, ours, f"switch {k}, ToggleNeuron nonlin {on}"))
    finally:
        ToggleNeuron.switch["on"] = True
    assert outputs[True][0] != outputs[False][0], "the switch changed nothing: a vacuous case"


def test_layer_subclass_with_tuple_neurons() -> None:
    ref, ours = make_pair(3, [4, 3, 2], "dyadic", seed=PLAN_SEED)
    random.seed(7)
    sub = TupleLayer(4, 3)
    for p, q in zip(sub.parameters(), ref.layers[1].parameters(), strict=True):
        p.data = q.data
    ours.layers[1] = sub
    before = rounds(ref, ours, "TupleLayer as layer 1")
    sub._neurons[0].w[1] = Value(2.5)
    ref.layers[1].neurons[0].w[1] = MGValue(2.5)
    changed = rounds(ref, ours, "after a weight of sub._neurons[0] is replaced")
    assert changed != before, "a vacuous case"
    sub._neurons.pop()
    ref.layers[1].neurons.pop()
    for m in (ref, ours):
        for n in m.layers[2].neurons:
            n.w.pop()
    after = rounds(ref, ours, "after sub._neurons.pop() (and the next layer's last weights)")
    assert after != changed, "a vacuous case"


class MGScaledNeuron(MGNeuron):  # type: ignore[misc]
    """micrograd: a neuron whose __call__ scales its output."""

    def __call__(self, x: Any) -> Any:
        return super().__call__(x) * 2.0


class ScaledNeuron(nn.Neuron):
    """The same subclass in micrograd_cpp."""

    def __call__(self, x: Any) -> Value:
        return super().__call__(x) * 2.0


class MGScaledLayer(MGLayer):  # type: ignore[misc]
    def __call__(self, x: Any) -> Any:
        out = super().__call__(x)
        return [o * 3.0 for o in out] if isinstance(out, list) else out * 3.0


class ScaledLayer(nn.Layer):
    def __call__(self, x: Any) -> Any:
        out = super().__call__(x)
        return [o * 3.0 for o in out] if isinstance(out, list) else out * 3.0


def test_neuron_subclass_overriding_call_is_called() -> None:
    """micrograd's Layer calls each neuron: a subclass's __call__ runs, in a Layer and in
    an MLP."""
    ref, ours = make_pair(3, [4, 3, 2], "dyadic", seed=24)
    for m, cls in ((ref, MGScaledNeuron), (ours, ScaledNeuron)):
        random.seed(8)
        m.layers[2].neurons[0] = cls(3, nonlin=False)
        rng = random.Random(8)
        for p in m.layers[2].neurons[0].parameters():
            p.data = dyadic(rng)
    xr, xo = [MGValue(v) for v in (1.0, -0.5, 0.25)], [Value(v) for v in (1.0, -0.5, 0.25)]
    hr = ref.layers[1](ref.layers[0](xr))
    ho = cast(list[Value], ours.layers[1](cast(list[Value], ours.layers[0](xo))))
    bad = compare_outputs(ref.layers[2](hr), ours.layers[2](ho))
    assert not bad, f"Layer.__call__ with a ScaledNeuron: {bad}"
    for k in range(2):
        plan_round(ref, ours, k, "MLP.__call__ with a ScaledNeuron")


def test_layer_subclass_overriding_call_is_called() -> None:
    ref, ours = make_pair(3, [4, 3, 2], "dyadic", seed=25)
    for m, cls in ((ref, MGScaledLayer), (ours, ScaledLayer)):
        m.layers[1] = fresh_layer(Lib("", None, None, cls), 4, 3, True, 9)
    for k in range(2):
        plan_round(ref, ours, k, "MLP.__call__ with a ScaledLayer")


# ---------------------------------------------------------------------------
# 6. Memory: graphs, expansions and plans free their nodes
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("passes", [0, 1, 2])
@pytest.mark.parametrize("expand", ["none", "partial", "full"])
@pytest.mark.parametrize("kind", ["Value", "float"])
def test_dropping_the_output_graph_frees_every_node(kind: str, expand: str, passes: int) -> None:
    base = live()
    random.seed(1)
    model = nn.MLP(3, [4, 4, 2])
    x = make_inputs(kind, [0.5, -1.0, 2.0], Value)
    with_model = live()
    assert with_model - base == len(model.parameters()) + len(value_inputs(x))
    for _ in range(3):  # the plan is made, then used
        loss = cast(Value, loss_of(model(x)))
        assert live() > with_model
        if expand == "partial":
            expand_levels(loss, 4)
        for _ in range(passes):
            loss.backward()
        if expand == "full":
            nodes = walk(loss)  # every parameter and input is in the graph
            assert live() == base + len(nodes), "a node the walk cannot reach is alive"
            del nodes
        del loss
        assert live() == with_model, f"expand={expand}, passes={passes}"
    del model
    assert live() == base + len(value_inputs(x)), "the model (or its plan) kept nodes alive"
    del x
    assert live() == base


def test_interior_node_keeps_only_its_own_graph_alive() -> None:
    base = live()
    random.seed(2)
    model = nn.MLP(2, [3, 1])
    with_model = live()
    y = cast(Value, model([1.0, -2.0]))
    y.backward()
    # a first-layer product: a weight times the new leaf made for the number 1.0 or -2.0
    product = next(n for n in walk(y) if n._op == "*" and all(c._op == "" for c in n._prev))
    del y
    assert live() - with_model == 2, "a product should keep only itself and its number leaf"
    del product
    assert live() == with_model
    del model
    assert live() == base


def test_deleting_a_model_frees_its_weights_and_plan() -> None:
    base = live()
    random.seed(3)
    model = nn.MLP(3, [4, 4, 1])
    for _ in range(3):
        model([1.0, 2.0, 3.0])  # outputs dropped at once
    assert live() == base + len(model.parameters())
    del model
    assert live() == base, "the forward plan kept the weights alive"


def test_deleting_a_model_before_its_outputs() -> None:
    base = live()
    random.seed(4)
    model = nn.MLP(3, [4, 4, 2])
    for _ in range(2):
        model([1.0, 2.0, 3.0])
    outs = cast(list[Value], model([1.0, 2.0, 3.0]))
    del model
    assert live() > base  # the outputs hold the weights
    loss_of(outs).backward()
    walk(outs[0])
    del outs
    assert live() == base


def test_stale_plan_releases_replaced_weights() -> None:
    """A structural change drops what the old plan held at the next call."""
    base = live()
    random.seed(5)
    model = nn.MLP(3, [4, 1])
    for _ in range(2):
        model([1.0, 2.0, 3.0])
    n_params = len(model.parameters())
    assert live() == base + n_params
    model.layers[0].neurons[0].w = [Value(0.5), Value(0.25), Value(-1.0)]
    model([1.0, 2.0, 3.0])
    assert live() == base + n_params, "the old weights stayed alive after the plan was rebuilt"
    model.layers[0].neurons[1].w[1] = Value(2.0)
    del model.layers[0].neurons[2]
    model.layers[1].neurons[0].w.pop()
    model([1.0, 2.0, 3.0])
    assert live() == base + len(model.parameters())
    del model
    assert live() == base
