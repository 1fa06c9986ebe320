"""``micrograd_cpp.Graph``: record a graph once, replay it with the leaves' new data.

The oracle everywhere is the eager engine run the way a user would without ``Graph``:
the same expression rebuilt from fresh leaves holding the same numbers, then
``backward()``. The spec (issue 13) promises that ``g.forward(); g.backward()`` gives
every node's data and every grad *bit for bit* as that rebuild does, so values are
compared bit for bit: equal with the same sign of zero, or both nan. On top of that,
micrograd's own moons run (tests/reference/moons_micrograd.json) anchors the training
trajectory, and micrograd's graph the node count.

The random programs come from test_fuzz.py's generator (every op, shared
subexpressions, IEEE edge values, all number types), in both precisions, with several
rounds of new leaf data between replays. MICROGRAD_FUZZ_CASES scales their number as it
does there.

Other Graph features have their own files: test_graph_inputs.py (``set_inputs`` and the
``inputs`` given at capture), test_graph_deep_wide.py (10^6-node graphs, the arena),
test_graph_threads.py, test_graph_interrupts.py (Ctrl-C), test_graph_jit.py.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Literal

import micrograd_cpp as mg
import numpy as np
import pytest
from conftest import UNARY_OPS, UnaryOp, live
from micrograd import nn as mgnn
from micrograd.engine import Value as MGValue
from micrograd_cpp import demo, nn
from test_fuzz import (
    CASES,
    CLASSES,
    EDGE_VALUES,
    FAMILIES,
    SEED0,
    Instr,
    Num,
    build_ours,
    edge,
    generate,
    moderate,
    reachable,
)

Dtype = Literal["float64", "float32"]


# --------------------------------------------------------------------------------------
# Helpers shared by the test_graph*.py files
# --------------------------------------------------------------------------------------


def same(a: float, b: float) -> bool:
    """Bit for bit: equal with the same sign of zero, or both nan (any payload)."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def bits(x: float) -> str:
    """A hashable bit-for-bit key for a float (all nans alike)."""
    return "nan" if math.isnan(x) else x.hex()


def replay(g: mg.Graph) -> None:
    """One replayed step: new data everywhere, then the gradients."""
    g.forward()
    g.backward()


def walk(root: Any) -> list[Any]:
    """Every node reachable from root through ``_prev`` (iteratively), root first.
    Reading ``_prev`` turns fused neurons into micrograd's nodes for them."""
    seen, order, stack = {id(root)}, [root], [root]
    while stack:
        for child in stack.pop()._prev:
            if id(child) not in seen:
                seen.add(id(child))
                order.append(child)
                stack.append(child)
    return order


def snapshot(nodes: Sequence[Any]) -> Counter[tuple[str, str, str]]:
    """The multiset of (op, data, grad) of nodes, bit for bit: two graphs built the same
    way give the same snapshot even though ``_prev`` is a set (its order is arbitrary)."""
    return Counter((v._op, bits(v.data), bits(v.grad)) for v in nodes)


def mismatches(got: Sequence[Any], want: Sequence[Any], names: Sequence[str]) -> list[str]:
    """Where the Values `got` differ from `want` in data or grad, bit for bit."""
    problems = []
    for name, g, w in zip(names, got, want, strict=True):
        if not same(g.data, w.data):
            problems.append(f"{name}: data {g.data!r}, eager {w.data!r}")
        if not same(g.grad, w.grad):
            problems.append(f"{name}: grad {g.grad!r}, eager {w.grad!r}")
    return problems


# --------------------------------------------------------------------------------------
# Capture: root, len, repr, errors on the root
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("cls", "dtype"), [(mg.Value, "float64"), (mg.Value32, "float32")])
def test_capture_root_len_repr(cls: Any, dtype: str) -> None:
    a, b = cls(2.0), cls(-3.0)
    f = (a * b + a).tanh()  # a, b, *, +, tanh
    g = mg.Graph(f)
    assert g.root is f
    assert len(g) == 5
    assert g.inputs == []
    assert repr(g) == f"Graph(nodes=5, inputs=0, dtype={dtype})"
    g2 = mg.Graph(f, inputs=[b, a])
    assert repr(g2) == f"Graph(nodes=5, inputs=2, dtype={dtype})"
    assert len(g2.inputs) == 2 and g2.inputs[0] is b and g2.inputs[1] is a


def test_len_counts_number_leaves_once_per_use() -> None:
    """A number operand is a leaf of its own at each use (as micrograd's Value(other)),
    an exponent k of x**k is not (micrograd keeps it in the closure); a value used twice
    is one node."""
    a = mg.Value(1.5)
    f = a * 2.0 + a * 2.0 + a**3  # a; 2, *; 2, *; +; **; +
    assert len(mg.Graph(f)) == 8
    # the same count as micrograd's graph
    m = MGValue(1.5)
    mf = m * 2.0 + m * 2.0 + m**3
    assert len(mg.Graph(f)) == len(walk(mf))


def test_leaf_root() -> None:
    """A graph of one leaf: forward has nothing to do, backward sets its grad to 1 as
    micrograd's backward() does on a leaf (set, not added, even twice)."""
    a = mg.Value(4.0)
    a.grad = 7.0
    g = mg.Graph(a)
    assert len(g) == 1
    g.forward()
    g.backward()
    g.backward()
    eager = MGValue(4.0)
    eager.grad = 7.0
    eager.backward()
    eager.backward()
    assert (a.data, a.grad) == (4.0, eager.grad) == (4.0, 1.0)


# Made in the test, not at collection: a Value alive at exit is a leak to nanobind.
NOT_VALUES: dict[str, Callable[[], Any]] = {
    "float": lambda: 1.0,
    "None": lambda: None,
    "str": lambda: "x",
    "list": lambda: [mg.Value(1.0)],
    "micrograd.Value": lambda: MGValue(1.0),
}


@pytest.mark.parametrize("kind", list(NOT_VALUES))
def test_non_value_root_is_a_type_error(kind: str) -> None:
    with pytest.raises(TypeError):
        mg.Graph(NOT_VALUES[kind]())


def test_custom_python_op_is_refused_by_name() -> None:
    """A node made as Value(data, children, op) with a Python _backward (micrograd's way
    to write an op) has no C++ forward: capture refuses it, naming its op."""
    a = mg.Value(1.5)
    out = mg.Value(a.data**2, (a,), "my_square")

    def _backward() -> None:
        a.grad += 2 * a.data * out.grad

    out._backward = _backward
    f = (out + a).tanh()
    with pytest.raises(ValueError, match="my_square"):
        mg.Graph(f)


# --------------------------------------------------------------------------------------
# Replay equals eager rebuild, bit for bit: random programs of every op
# --------------------------------------------------------------------------------------

ROUNDS = 4  # new leaf data, then replay, this many times per captured graph
GRAPH_CASES = max(1, CASES // 16)  # per family and precision (250 by default)
DTYPES: tuple[Dtype, ...] = ("float64", "float32")


def with_leaves(prog: Sequence[Instr], new: dict[int, float]) -> list[Instr]:
    """The program with some leaves' numbers replaced."""
    return [Instr("leaf", (Num(new[i]),)) if i in new else ins for i, ins in enumerate(prog)]


def replay_case(seed: int, family: str, dtype: Dtype) -> list[str]:
    """Capture one random program, then ROUNDS times: new leaf data and junk in the
    interior grads, replay, and compare every reachable node with an eager rebuild."""
    cls = CLASSES[dtype]
    rng = random.Random(f"graph-{family}-{dtype}-{seed}")
    draw = edge if family.startswith("edge") else moderate
    prog = generate(seed, family)
    reach = sorted(reachable(prog))
    leaves = [i for i in reach if prog[i].op == "leaf"]
    nodes = build_ours(prog, cls)
    g = mg.Graph(nodes[-1])
    problems = []
    if len(g) != len(walk(nodes[-1])):
        problems.append(f"len(g) = {len(g)}, but {len(walk(nodes[-1]))} nodes are reachable")
    for r in range(ROUNDS):
        new = {i: draw(rng) for i in leaves}
        start = {i: moderate(rng) for i in leaves}  # leaf grads accumulate from here
        for i in leaves:
            nodes[i].data, nodes[i].grad = new[i], start[i]
        g.forward()
        for i in reach:  # interior grads restart from 0 whatever they hold: junk, even nan
            if i not in new:
                nodes[i].grad = rng.choice([math.nan, 1e300, -2.0])
        g.backward()
        fresh = build_ours(with_leaves(prog, new), cls)
        for i in leaves:
            fresh[i].grad = start[i]
        fresh[-1].backward()
        names = [f"round {r}: v{i} = {prog[i]}" for i in reach]
        found = mismatches([nodes[i] for i in reach], [fresh[i] for i in reach], names)
        problems += sorted(found, key=lambda p: ": data " not in p)  # causes first
        diff = g.check()
        if not (type(diff) is float and diff == 0.0):
            problems.append(f"round {r}: check() = {diff!r} after an exact replay")
        if problems:
            break
    if problems:
        listing = "\n".join(f"  v{j} = {ins}" for j, ins in enumerate(prog))
        return [f"{family} seed {seed} ({dtype}):\n{listing}\n  " + "\n  ".join(problems[:8])]
    return []


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", FAMILIES)
def test_replay_equals_eager_rebuild_on_random_programs(family: str, dtype: Dtype) -> None:
    base = live(dtype)
    failures: list[str] = []
    for seed in range(SEED0, SEED0 + GRAPH_CASES):
        failures += replay_case(seed, family, dtype)
        if len(failures) >= 3:
            break
    assert not failures, "\n\n".join(failures)
    assert live(dtype) == base, "the captured graphs left nodes alive"


def unary_expression(op: UnaryOp, a: Any, b: Any) -> list[Any]:
    """A few nodes of one unary op around a and b, the root last."""
    nodes = [op.apply(a), op.apply(a * b), op.apply(op.apply(a - b)), op.apply(-a) * b]
    return [*nodes, nodes[0] + nodes[1] * nodes[2] - nodes[3]]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(UNARY_OPS))
def test_unary_ops_replay_at_every_pair_of_edge_values(name: str, dtype: Dtype) -> None:
    """Each unary op of conftest's table, replayed at every pair of IEEE edge values (the
    random programs reach only some)."""
    op, cls = UNARY_OPS[name], CLASSES[dtype]
    a, b = cls(1.0), cls(2.0)
    nodes = unary_expression(op, a, b)
    g = mg.Graph(nodes[-1], inputs=[a, b])
    problems = []
    for x in EDGE_VALUES:
        for y in EDGE_VALUES:
            g.set_inputs([x, y])
            a.grad = b.grad = 0.0
            replay(g)
            ea, eb = cls(x), cls(y)
            eager = unary_expression(op, ea, eb)
            eager[-1].backward()
            problems += mismatches(
                [*nodes, a, b], [*eager, ea, eb], [f"({x!r}, {y!r}) {n}" for n in "01234ab"]
            )
    assert not problems, problems[:10]


def test_forward_reads_number_leaves_live() -> None:
    """Constants are leaves too, read at each forward(): change the leaf that a number
    operand became (reached through _prev) and replay sees the new number."""
    a = mg.Value(1.25)
    c = a * 2.0
    f = c.exp()
    g = mg.Graph(f)
    (two,) = [p for p in c._prev if p is not a]
    two.data = 3.0
    g.forward()
    assert (c.data, f.data) == (1.25 * 3.0, math.exp(1.25 * 3.0))


def test_forward_without_changes_is_a_fixed_point() -> None:
    """Replaying right after capture, or twice, changes no data: what the eager build
    computed is what the replay computes."""
    a, b = mg.Value(0.3), mg.Value(-1.7)
    nodes = [a, b, a * b, (a * b).sigmoid(), (a - b) ** 2.5, a / b]
    f = nodes[2] + nodes[3] * nodes[4] - nodes[5].softplus()
    before = [v.data for v in [*nodes, f]]
    g = mg.Graph(f)
    g.forward()
    g.forward()
    assert all(same(v.data, d) for v, d in zip([*nodes, f], before, strict=True))


# --------------------------------------------------------------------------------------
# backward(): micrograd's semantics, interior grads from 0 at each call
# --------------------------------------------------------------------------------------


def expression(a: Any, b: Any, c: Any) -> list[Any]:
    """A small graph with shared subexpressions; every node, the root last."""
    ab = a * b
    t = (ab + c).tanh()
    u = t * ab - c / a
    return [ab, t, u, (u * t + ab).relu() + u.exp()]


def test_two_backwards_in_a_row_accumulate_into_leaves_only() -> None:
    """Two g.backward() calls in a row: the leaves get exactly what two eager graphs,
    built from the same leaves one after the other, give them; interior nodes hold one
    pass's grads (they restart from 0, as in a freshly built graph); the root holds 1."""
    a, b, c = mg.Value(0.7), mg.Value(-1.3), mg.Value(0.4)
    nodes = expression(a, b, c)
    g = mg.Graph(nodes[-1])
    a.data, b.data, c.data = 0.9, -0.6, 1.1
    g.forward()
    g.backward()
    g.backward()

    ea, eb, ec = mg.Value(0.9), mg.Value(-0.6), mg.Value(1.1)
    expression(ea, eb, ec)[-1].backward()
    once = expression(ea, eb, ec)  # the second eager graph, from the same leaves
    once[-1].backward()
    leaves, eager_leaves = [a, b, c], [ea, eb, ec]
    problems = mismatches(leaves, eager_leaves, "abc") + mismatches(nodes, once, "0123")
    assert not problems, problems
    assert nodes[-1].grad == 1.0

    # The eager engine's own second backward() on one graph accumulates into interior
    # nodes too, and so differs: the replay did not do that.
    sa, sb, sc = mg.Value(0.9), mg.Value(-0.6), mg.Value(1.1)
    root = expression(sa, sb, sc)[-1]
    root.backward()
    root.backward()
    assert not all(same(x.grad, y.grad) for x, y in zip([sa, sb, sc], leaves, strict=True))


def test_backward_after_zero_grad_equals_a_fresh_graph() -> None:
    random.seed(3)
    model = nn.MLP(3, [5, 1])
    xs = [mg.Value(x) for x in (0.5, -1.0, 2.0)]
    score = model(xs)
    assert isinstance(score, mg.Value)
    g = mg.Graph(score)
    for _ in range(3):
        g.forward()
        g.backward()
    model.zero_grad()
    g.forward()
    g.backward()
    got = [p.grad for p in model.parameters()]
    model.zero_grad()
    eager = model([mg.Value(x) for x in (0.5, -1.0, 2.0)])
    assert isinstance(eager, mg.Value)
    eager.backward()
    assert all(same(x, p.grad) for x, p in zip(got, model.parameters(), strict=True))
    assert same(score.data, eager.data) and score.grad == 1.0


def test_two_graphs_sharing_nodes() -> None:
    """Two graphs over shared nodes (one model's scores under two losses): each replay
    updates the shared nodes, and the leaves accumulate both passes, as two eager graphs
    built one after the other give them."""
    a, b = mg.Value(0.5), mg.Value(-1.5)
    shared = (a * b).tanh()
    loss1 = shared * a + b.exp()
    loss2 = (shared - 0.25) ** 2 / b
    g1, g2 = mg.Graph(loss1), mg.Graph(loss2, inputs=[a, b])
    g2.set_inputs([1.25, 0.75])
    g1.forward()
    g2.forward()
    g1.backward()
    g2.backward()

    ea, eb = mg.Value(1.25), mg.Value(0.75)
    e_shared = (ea * eb).tanh()
    e_loss1 = e_shared * ea + eb.exp()
    e_loss1.backward()
    e2_shared = (ea * eb).tanh()
    e_loss2 = (e2_shared - 0.25) ** 2 / eb
    e_loss2.backward()
    problems = mismatches(
        [a, b, loss1, loss2, shared],
        [ea, eb, e_loss1, e_loss2, e2_shared],
        ["a", "b", "loss1", "loss2", "shared (g2's pass)"],
    )
    assert not problems, problems


# --------------------------------------------------------------------------------------
# nn: fused neurons and every loss, replayed as a training loop would
# --------------------------------------------------------------------------------------

BATCH, NIN = 6, 3
LOSSES = [
    "hinge_loss",
    "mse_loss",
    "binary_cross_entropy_with_logits",
    "cross_entropy_loss",
    "l2_penalty",
    "demo_total",
]


def build_loss(
    name: str, model: nn.MLP, xs: Sequence[Sequence[mg.Value]], targets: Sequence[Any]
) -> tuple[mg.Value, list[mg.Value]]:
    """The loss `name` of model over the rows xs, and the model's outputs."""
    outs = [model(x) for x in xs]
    flat = [s for o in outs for s in (o if isinstance(o, list) else [o])]
    if name == "cross_entropy_loss":
        rows = [o for o in outs if isinstance(o, list)]
        return nn.cross_entropy_loss(rows, targets), flat
    if name == "l2_penalty":
        return nn.l2_penalty(model.parameters() + flat, 1e-3), flat
    if name == "demo_total":
        return nn.hinge_loss(flat, targets) + nn.l2_penalty(model.parameters(), 1e-4), flat
    loss_fn: Any = getattr(nn, name)
    loss: mg.Value = loss_fn(flat, targets)
    return loss, flat


def loss_targets(name: str, rng: random.Random) -> list[Any]:
    if name == "cross_entropy_loss":
        return [rng.randrange(3) for _ in range(BATCH)]
    if name in ("hinge_loss", "demo_total"):
        return [rng.choice([-1.0, 1.0]) for _ in range(BATCH)]
    return [rng.random() for _ in range(BATCH)]  # mse, bce: targets in [0, 1]


def state(model: nn.MLP, loss: mg.Value, outs: Sequence[mg.Value]) -> list[float]:
    values = [loss.data, loss.grad]
    values += [v for s in outs for v in (s.data, s.grad)]
    return values + [v for p in model.parameters() for v in (p.data, p.grad)]


@pytest.mark.parametrize("name", LOSSES)
def test_mlp_and_loss_replay_equals_eager(name: str) -> None:
    """A mini-batch training loop: new inputs through set_inputs, parameters moved by
    hand, zero_grad, replay; each step equals the eager build of the same step."""
    rng = random.Random(name)
    random.seed(7)
    model = nn.MLP(NIN, [8, 8, 3 if name == "cross_entropy_loss" else 1])
    targets = loss_targets(name, rng)
    X = np.array([[rng.uniform(-2, 2) for _ in range(NIN)] for _ in range(BATCH)])
    xs = [[mg.Value(float(v)) for v in row] for row in X]
    loss, outs = build_loss(name, model, xs, targets)
    loss.backward()  # an eager first step before capture, as a loop might do
    g = mg.Graph(loss, inputs=[v for row in xs for v in row])
    for step in range(5):
        X = np.array([[rng.uniform(-2, 2) for _ in range(NIN)] for _ in range(BATCH)])
        for p in model.parameters():
            p.data += rng.gauss(0.0, 0.3)
        g.set_inputs(X)
        model.zero_grad()
        replay(g)
        got = state(model, loss, outs)
        model.zero_grad()
        e_loss, e_outs = build_loss(
            name, model, [[mg.Value(float(v)) for v in row] for row in X], targets
        )
        e_loss.backward()
        want = state(model, e_loss, e_outs)
        bad = [k for k, (x, y) in enumerate(zip(got, want, strict=True)) if not same(x, y)]
        assert not bad, (
            f"step {step}: {len(bad)} of {len(got)} numbers differ, first at "
            f"{bad[0]}: {got[bad[0]]!r} vs eager {want[bad[0]]!r}"
        )
        assert g.check() == 0.0


def test_cross_entropy_replay_far_from_the_captured_scores() -> None:
    """cross_entropy_loss subtracts each row's largest score inside the exp, so that large
    scores do not overflow. Replayed with scores 1000 above those seen at capture, it must
    still give the eager loss (finite), not exp(1000) = inf."""
    rows = [
        [mg.Value(0.5), mg.Value(-1.0), mg.Value(2.0)],
        [mg.Value(0.0), mg.Value(1.0), mg.Value(-3.0)],
    ]
    loss = nn.cross_entropy_loss(rows, [2, 0])
    flat = [v for row in rows for v in row]
    g = mg.Graph(loss, inputs=flat)
    new = [1000.5, 999.0, 1002.0, 1000.0, 1001.0, 997.0]
    g.set_inputs(new)
    replay(g)
    eager_rows = [[mg.Value(x) for x in new[:3]], [mg.Value(x) for x in new[3:]]]
    eager = nn.cross_entropy_loss(eager_rows, [2, 0])
    eager.backward()
    assert math.isfinite(eager.data)
    eager_flat = [v for row in eager_rows for v in row]
    problems = mismatches([loss, *flat], [eager, *eager_flat], [f"v{i}" for i in range(7)])
    assert not problems, problems


def outputs_and_loss(model: nn.MLP, xs: list[Any]) -> tuple[list[mg.Value], mg.Value]:
    """The model's two outputs on xs, and their MSE against fixed targets."""
    outs = model(xs)
    assert isinstance(outs, list)
    loss: mg.Value = nn.mse_loss(outs, [0.25, -0.5])
    return outs, loss


@pytest.mark.parametrize("when", ["before_capture", "after_capture"])
def test_expanded_neurons_replay_like_eager(when: str) -> None:
    """Reading a neuron's _prev (draw_dot does) turns it into micrograd's nodes. Whether
    that happens before or after capture, the replay updates every node: the outputs held
    before, and every node reachable through _prev, equal an eager step's."""
    random.seed(11)
    model = nn.MLP(3, [4, 2])
    xs = [mg.Value(x) for x in (0.5, -1.5, 1.0)]
    outs, loss = outputs_and_loss(model, xs)
    if when == "before_capture":
        walk(loss)
    g = mg.Graph(loss, inputs=xs)
    loss.backward()  # fused neurons keep their inner grads: these must restart from 0
    nodes = walk(loss)
    for v in nodes:
        if not v._prev:  # every leaf: inputs, parameters, the targets' leaves
            v.grad = 0.0
    g.set_inputs([1.0, 0.25, -2.0])
    for p in model.parameters():
        p.data *= 1.5
    replay(g)
    got_outs = [(o.data, o.grad) for o in outs]
    got = snapshot(walk(loss))
    assert len(walk(loss)) == len(nodes)

    model.zero_grad()
    e_outs, e_loss = outputs_and_loss(model, [mg.Value(x) for x in (1.0, 0.25, -2.0)])
    e_loss.backward()
    want_outs = [(o.data, o.grad) for o in e_outs]
    assert all(
        same(a, b)
        for x, y in zip(got_outs, want_outs, strict=True)
        for a, b in zip(x, y, strict=True)
    ), (got_outs, want_outs)
    want = snapshot(walk(e_loss))
    assert got == want, f"only in replay: {got - want}\nonly in eager: {want - got}"


@pytest.mark.parametrize("another_replay", [False, True])
@pytest.mark.parametrize("backwards", [0, 1, 2])
def test_neurons_expanded_after_the_update_show_the_replayed_step(
    backwards: int, another_replay: bool
) -> None:
    """A replay leaves each fused neuron's products, bias and inner grads in the program
    and writes them to the neuron only when someone looks (expand, an eager backward).
    What they show then is the last replay's, as an eager graph built at that step shows
    its own: not recomputed from the parameters updated since."""
    random.seed(12)
    model = nn.MLP(3, [4, 2])
    xs = [mg.Value(x) for x in (0.5, -1.5, 1.0)]
    _, loss = outputs_and_loss(model, xs)
    g = mg.Graph(loss, inputs=xs)
    new = [1.0, 0.25, -2.0]
    g.set_inputs(new)
    g.forward()
    _, e_loss = outputs_and_loss(model, [mg.Value(x) for x in new])
    for _ in range(backwards):
        g.backward()  # interior grads restart each time, as in a freshly built graph
    if backwards:
        e_loss.backward()
    for p in model.parameters():
        p.data -= 0.25 * (p.grad + 1.0)

    def interior(root: Any) -> Counter[tuple[str, str, str]]:
        return snapshot([v for v in walk(root) if v._prev])  # leaves: shared, or not comparable

    if another_replay:  # which settles this one's first
        replay(mg.Graph(outputs_and_loss(model, xs)[1]))
    got, want = interior(loss), interior(e_loss)
    assert got == want, f"only in replay: {got - want}\nonly in eager: {want - got}"


def test_eager_backward_after_a_replay_sees_the_replayed_inner_grads() -> None:
    """backward() through the replayed graph's neurons (a second one, eagerly) accumulates
    into their inner grads as it would into an eager graph's, after the replay's."""
    random.seed(13)
    model = nn.MLP(3, [4, 2])
    xs = [mg.Value(x) for x in (0.5, -1.5, 1.0)]
    _, loss = outputs_and_loss(model, xs)
    g = mg.Graph(loss, inputs=xs)
    g.set_inputs([1.0, 0.25, -2.0])
    replay(g)
    loss.backward()
    got = snapshot(walk(loss))
    _, e_loss = outputs_and_loss(model, [mg.Value(x) for x in (1.0, 0.25, -2.0)])
    model.zero_grad()
    e_loss.backward()
    e_loss.backward()
    want = snapshot(walk(e_loss))
    assert got == want, f"only in replay: {got - want}\nonly in eager: {want - got}"


AVX2_SCRIPT = r"""
import random
import micrograd_cpp as mg
from micrograd_cpp import nn

out = []
for sizes in ([16, 16, 1], [8, 4], [5, 3, 2], [2, 7]):  # groups of 16, 8, 4, 2 and 1
    random.seed(3)
    model = nn.MLP(3, sizes)
    rows = [[mg.Value(random.uniform(-2, 2)) for _ in range(3)] for _ in range(7)]
    scores = [model(r) for r in rows]
    flat = scores if isinstance(scores[0], list) else [[s] for s in scores]
    loss = nn.mse_loss([s for row in flat for s in row], [0.5] * sum(map(len, flat)))
    g = mg.Graph(loss, inputs=[v for r in rows for v in r])
    for step in range(3):
        g.set_inputs([random.uniform(-2, 2) for _ in range(21)])
        g.forward()
        model.zero_grad()
        g.backward()
        for p in model.parameters():
            p.data -= 0.05 * p.grad
        out.append([float(loss.data).hex()] + [float(p.grad).hex() for p in model.parameters()])
print(out)
"""


def test_replay_gives_the_same_bits_with_and_without_avx2() -> None:
    """On x86-64 the sweeps run as AVX2 code where the CPU has it, else as the baseline's;
    MICROGRAD_NO_AVX2 forces the baseline. Both give every number to the last bit (and the
    other tests check the path this machine takes against eager rebuilds)."""
    import os
    import subprocess
    import sys

    def run(**env: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", AVX2_SCRIPT],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    assert run() == run(MICROGRAD_NO_AVX2="1")


def test_len_of_an_mlp_graph_counts_a_fused_neuron_as_one_node() -> None:
    """micrograd's graph of the same model on the same input has 2n + 1 nodes per ReLU
    neuron of n inputs (n products, n sums, the relu) and 2n for a linear one (its last
    sum is the output), where the captured graph has one."""
    random.seed(5)
    model = nn.MLP(3, [4, 2, 1])
    score = model([mg.Value(1.0), mg.Value(2.0), mg.Value(-1.0)])
    assert isinstance(score, mg.Value)
    random.seed(5)
    ref = mgnn.MLP(3, [4, 2, 1])
    ref_score = ref([MGValue(1.0), MGValue(2.0), MGValue(-1.0)])
    expanded = 4 * (2 * 3 + 1) + 2 * (2 * 4 + 1) + 1 * (2 * 2)
    neurons = 4 + 2 + 1
    assert len(mg.Graph(score)) == len(walk(ref_score)) - expanded + neurons


# --------------------------------------------------------------------------------------
# micrograd's moons demo, replayed
# --------------------------------------------------------------------------------------

REFERENCE_LOSS_REL = 1e-12
FINAL_LOSS = 0.010978370135492717


class MoonsRun:
    """The demo's 100 steps (demo.train's loop), replayed from one capture, fed the data
    through set_inputs at every step."""

    def __init__(self) -> None:
        X, y = demo.make_data(1337)
        random.seed(1337)
        self.model = nn.MLP(2, [16, 16, 1])
        opt = nn.SGD(self.model.parameters(), lr=1.0)
        labels = [float(v) for v in y]
        inputs = [[mg.Value(v) for v in row] for row in X.tolist()]
        scores = [s for x in inputs for s in [self.model(x)] if isinstance(s, mg.Value)]
        assert len(scores) == len(inputs)  # one output: bare Values
        loss = nn.hinge_loss(scores, labels) + nn.l2_penalty(self.model.parameters(), 1e-4)
        self.g = mg.Graph(loss, inputs=[v for row in inputs for v in row])
        self.loss: list[float] = []
        self.accuracy: list[float] = []
        self.check: list[float] = []
        for k in range(100):
            self.g.set_inputs(X)
            self.g.forward()
            self.check.append(self.g.check())
            opt.zero_grad()
            self.g.backward()
            opt.lr = 1.0 - 0.9 * k / 100
            opt.step()
            hits = sum((yi > 0) == (s.data > 0) for yi, s in zip(labels, scores, strict=True))
            self.loss.append(loss.data)
            self.accuracy.append(hits / len(labels))


@pytest.fixture(scope="module")
def moons() -> tuple[MoonsRun, nn.MLP, demo.History]:
    X, y = demo.make_data(1337)
    model, history = demo.train(X, y, 100, 1337)  # eager
    return MoonsRun(), model, history


def test_moons_replay_equals_eager_at_every_step(
    moons: tuple[MoonsRun, nn.MLP, demo.History],
) -> None:
    run, eager_model, history = moons
    bad = [
        (k, a, b)
        for k, (a, b) in enumerate(zip(run.loss, history.loss, strict=True))
        if not same(a, b)
    ]
    assert not bad, f"(step, replay, eager): {bad[:5]}, {len(bad)} steps differ"
    assert run.accuracy == history.accuracy
    params = [p.data for p in run.model.parameters()]
    assert all(same(a, p.data) for a, p in zip(params, eager_model.parameters(), strict=True))


def test_moons_replay_follows_micrograd(moons: tuple[MoonsRun, nn.MLP, demo.History]) -> None:
    import json
    from pathlib import Path

    ref = json.loads((Path(__file__).parent / "reference" / "moons_micrograd.json").read_text())
    run = moons[0]
    bad = [
        (k, a, b)
        for k, (a, b) in enumerate(zip(run.loss, ref["loss"], strict=True))
        if not math.isclose(a, b, rel_tol=REFERENCE_LOSS_REL, abs_tol=0.0)
    ]
    assert not bad, f"(step, replay, micrograd): {bad[:5]}"
    assert math.isclose(run.loss[-1], FINAL_LOSS, rel_tol=REFERENCE_LOSS_REL, abs_tol=0.0)
    assert run.accuracy[-1] == 1.0
    assert run.check == [0.0] * 100


def test_moons_graph_size_is_micrograds_minus_the_fused_neurons(
    moons: tuple[MoonsRun, nn.MLP, demo.History],
) -> None:
    """micrograd's demo graph, built by micrograd, less what fusing each neuron saves."""
    X, y = demo.make_data(1337)
    random.seed(1337)
    ref = mgnn.MLP(2, [16, 16, 1])
    scores = [ref(list(map(MGValue, row))) for row in X.tolist()]
    losses = [(1 + -yi * si).relu() for yi, si in zip(y.tolist(), scores, strict=True)]
    data_loss = sum(losses) * (1.0 / len(losses))
    total = data_loss + 1e-4 * sum(p * p for p in ref.parameters())
    saved = 100 * (16 * (2 * 2) + 16 * (2 * 16) + (2 * 16 - 1))  # per sample: 2n, 2n, 2n - 1
    g = moons[0].g
    assert len(g) == len(walk(total)) - saved
    assert repr(g) == f"Graph(nodes={len(g)}, inputs=200, dtype=float64)"
