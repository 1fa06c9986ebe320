"""``micrograd_cpp.nn`` mirrors ``micrograd.nn`` (Module, Neuron, Layer, MLP).

The oracle is micrograd 0.1.0 itself, run in the test: with the same ``random.seed``
both libraries must draw the same initial weights, print the same ``repr``, compute
bitwise-equal forward passes and (up to the summation order of micrograd's set-ordered
backward pass, rel 1e-12) equal gradients, and train to the same losses.
"""

from __future__ import annotations

import importlib.util
import math
import random
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any, SupportsFloat, cast

import numpy as np
import pytest
from micrograd import nn as mgnn
from micrograd.engine import Value as MGValue
from micrograd_cpp import Value, Value32, demo, nn
from sklearn.datasets import make_moons

GRAD_REL = 1e-12

# (class name, positional args, keyword args): built in both libraries.
Spec = tuple[str, tuple[Any, ...], dict[str, Any]]
SPECS: list[Spec] = [
    ("Neuron", (1,), {}),
    ("Neuron", (3,), {}),
    ("Neuron", (4,), {"nonlin": False}),
    ("Layer", (2, 1), {}),
    ("Layer", (3, 4), {}),
    ("Layer", (3, 2), {"nonlin": False}),
    ("MLP", (1, [1]), {}),
    ("MLP", (4, [3]), {}),
    ("MLP", (3, [4, 4, 2]), {}),
    ("MLP", (2, [16, 16, 1]), {}),
    ("MLP", (5, [7, 3]), {}),
]


def spec_id(spec: tuple[str, tuple[Any, ...], dict[str, Any]]) -> str:
    name, args, kwargs = spec
    extra = "".join(f",{k}={v}" for k, v in kwargs.items())
    return f"{name}{args}{extra}".replace(" ", "")


def build(lib: Any, spec: tuple[str, tuple[Any, ...], dict[str, Any]], seed: int) -> Any:
    name, args, kwargs = spec
    random.seed(seed)
    # micrograd's MLP does `[nin] + nouts`: give each library its own list
    args = tuple(list(a) if isinstance(a, list) else a for a in args)
    return getattr(lib, name)(*args, **kwargs)


def build_pair(spec: tuple[str, tuple[Any, ...], dict[str, Any]], seed: int = 7) -> tuple[Any, Any]:
    """(micrograd module, micrograd_cpp module) from the same random state."""
    return build(mgnn, spec, seed), build(nn, spec, seed)


def nin_of(spec: tuple[str, tuple[Any, ...], dict[str, Any]]) -> int:
    nin: int = spec[1][0]
    return nin


def as_list(out: Any) -> list[Any]:
    return out if isinstance(out, list) else [out]


def close(got: float, want: float, rel: float = GRAD_REL) -> bool:
    return math.isclose(got, want, rel_tol=rel, abs_tol=rel * 1e-3)


# ---------------------------------------------------------------------------
# Structure: repr, parameters, initial weights
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
def test_repr_matches_micrograd(spec: Any) -> None:
    ref, ours = build_pair(spec)
    assert repr(ours) == repr(ref)
    assert str(ours) == str(ref)


@pytest.mark.parametrize("seed", [0, 1337, 2024])
@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
def test_initial_weights_equal_micrograd(spec: Any, seed: int) -> None:
    ref, ours = build_pair(spec, seed)
    want = [p.data for p in ref.parameters()]
    got = [p.data for p in ours.parameters()]
    assert got == want
    assert all(isinstance(p, Value) for p in ours.parameters())


@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
def test_parameters_are_the_live_values_in_micrograd_order(spec: Any) -> None:
    """parameters() hands out the live values (same objects each call), in micrograd's
    order: writing the same new numbers into both models gives the same outputs."""
    ref, ours = build_pair(spec)
    first, second = ours.parameters(), ours.parameters()
    assert len(first) == len(ref.parameters())
    assert all(a is b for a, b in zip(first, second, strict=True))
    new = [math.sin(3.0 * i + 1.0) for i in range(len(first))]
    for p, q, v in zip(first, ref.parameters(), new, strict=True):
        p.data = v
        q.data = v
    assert [p.data for p in ours.parameters()] == new
    x = [0.5 - 0.25 * i for i in range(nin_of(spec))]
    assert [o.data for o in as_list(ours(x))] == [o.data for o in as_list(ref(x))]


def test_module_base_class() -> None:
    m = nn.Module()
    assert m.parameters() == []
    m.zero_grad()  # nothing to zero: must not raise
    assert m.parameters() == mgnn.Module().parameters()
    assert isinstance(nn.MLP(2, [3, 1]), nn.Module)
    assert isinstance(nn.Layer(2, 3), nn.Module)
    assert isinstance(nn.Neuron(2), nn.Module)


@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
def test_zero_grad(spec: Any) -> None:
    ref, ours = build_pair(spec)
    x = [Value(0.3 + 0.1 * i) for i in range(nin_of(spec))]
    sum(as_list(ours(x)), Value(0.0)).backward()
    for i, p in enumerate(ours.parameters()):
        p.grad += 1.5 + i  # every grad nonzero, whether or not a ReLU was dead
    x_grads = [xi.grad for xi in x]
    data_before = [p.data for p in ours.parameters()]
    ours.zero_grad()
    for i, q in enumerate(ref.parameters()):
        q.grad = 1.5 + i
    ref.zero_grad()
    assert [p.grad for p in ours.parameters()] == [q.grad for q in ref.parameters()]
    assert [p.grad for p in ours.parameters()] == [0.0] * len(data_before)
    assert [p.data for p in ours.parameters()] == data_before
    # the inputs are not parameters: zero_grad leaves them alone
    assert [xi.grad for xi in x] == x_grads


def test_one_neuron_layer_returns_bare_value() -> None:
    random.seed(3)
    out = nn.Layer(3, 1)([1.0, 2.0, 3.0])
    assert isinstance(out, Value)
    random.seed(3)
    outs = nn.Layer(3, 2)([1.0, 2.0, 3.0])
    assert isinstance(outs, list) and len(outs) == 2
    assert all(isinstance(o, Value) for o in outs)
    # an MLP ending in one neuron returns a bare Value as micrograd's does
    random.seed(3)
    assert isinstance(nn.MLP(3, [4, 1])([1.0, 2.0, 3.0]), Value)


def test_mlp_without_layers_returns_its_input_as_micrograd() -> None:
    x = [1.0, 2.0]
    assert mgnn.MLP(2, [])(x) is x  # micrograd's loop over no layers leaves x as it was
    ours = nn.MLP(2, [])
    results = [ours(x), ours(x)]  # the second through the plan kept since the first call
    assert all(r is x for r in results)
    assert ours.parameters() == []


def test_neuron_returns_value_and_relu() -> None:
    n = nn.Neuron(2)
    n.w[0].data, n.w[1].data, n.b.data = 1.0, -2.0, 0.5
    assert isinstance(n([1.0, 1.0]), Value)
    assert n([1.0, 1.0]).data == 0.0  # relu(1 - 2 + 0.5)
    assert n([3.0, 1.0]).data == 1.5  # relu(3 - 2 + 0.5)
    lin = nn.Neuron(2, nonlin=False)
    lin.w[0].data, lin.w[1].data, lin.b.data = 1.0, -2.0, 0.5
    assert lin([1.0, 1.0]).data == -0.5


@pytest.mark.parametrize("spec", [s for s in SPECS if s[0] == "MLP"], ids=spec_id)
def test_last_mlp_layer_is_linear(spec: Any) -> None:
    ref, ours = build_pair(spec)
    assert [n.nonlin for layer in ours.layers for n in layer.neurons] == [
        n.nonlin for layer in ref.layers for n in layer.neurons
    ]
    assert all(not n.nonlin for n in ours.layers[-1].neurons)
    assert all(n.nonlin for layer in ours.layers[:-1] for n in layer.neurons)


def test_last_mlp_layer_passes_negative_outputs() -> None:
    m = nn.MLP(1, [2, 1])
    w1, b1, w2, b2, v1, v2, c = m.parameters()
    w1.data, b1.data, w2.data, b2.data = 2.0, 0.0, -1.0, 0.5
    v1.data, v2.data, c.data = -3.0, 1.0, 0.25
    # hidden relu(2x), relu(0.5 - x); output -3*h1 + h2 + 0.25, not clipped at 0
    # (one output neuron: m(x) is a bare Value)
    assert cast(Value, m([1.0])).data == -3.0 * 2.0 + 0.0 + 0.25
    assert cast(Value, m([-1.0])).data == 0.0 + 1.5 + 0.25
    assert cast(Value, m([0.0])).data == 0.5 + 0.25


# ---------------------------------------------------------------------------
# Forward and backward against micrograd
# ---------------------------------------------------------------------------


def make_inputs(kind: str, nums: list[float], V: type) -> list[Any]:
    if kind == "Value":
        return [V(x) for x in nums]
    if kind == "float":
        return list(nums)
    if kind == "int":
        return [int(round(x * 4)) for x in nums]
    if kind == "numpy":
        return [np.float64(x) for x in nums]
    if kind == "mixed":
        return [V(x) if i % 2 == 0 else x for i, x in enumerate(nums)]
    raise AssertionError(kind)


INPUT_KINDS = ["Value", "float", "int", "numpy", "mixed"]


def random_inputs(n: int, rng: random.Random) -> list[float]:
    return [rng.uniform(-2.0, 2.0) for _ in range(n)]


@pytest.mark.parametrize("kind", INPUT_KINDS)
@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
def test_forward_equals_micrograd(spec: Any, kind: str) -> None:
    ref, ours = build_pair(spec, seed=11)
    rng = random.Random(5)
    outputs_seen = []
    for i in range(8):
        nums = random_inputs(nin_of(spec), rng)
        if i % 2:
            nums = [-v for v in nums]  # w.x and w.(-x): some ReLU passes, some clips
        want = ref(make_inputs(kind, nums, MGValue))
        got = ours(make_inputs(kind, nums, Value))
        assert isinstance(got, list) == isinstance(want, list)
        want_l, got_l = as_list(want), as_list(got)
        assert len(got_l) == len(want_l)
        assert all(isinstance(g, Value) for g in got_l)
        assert [g.data for g in got_l] == [w.data for w in want_l]
        outputs_seen += [w.data for w in want_l]
    assert any(v != 0 for v in outputs_seen)


def scalar_of(outs: list[Any], coeffs: list[float]) -> Any:
    """sum(c_i * o_i), the same graph in either library."""
    total = outs[0] * coeffs[0]
    for o, c in zip(outs[1:], coeffs[1:], strict=True):
        total = total + o * c
    return total


@pytest.mark.parametrize("kind", ["Value", "float", "mixed"])
@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
def test_gradients_equal_micrograd(spec: Any, kind: str) -> None:
    ref, ours = build_pair(spec, seed=23)
    rng = random.Random(9)
    nonzero = 0
    for i in range(4):
        nums = random_inputs(nin_of(spec), rng)
        if i % 2:
            nums = [-v for v in nums]  # w.x and w.(-x): some ReLU passes, some clips
        x_ref, x_ours = make_inputs(kind, nums, MGValue), make_inputs(kind, nums, Value)
        outs_ref, outs_ours = as_list(ref(x_ref)), as_list(ours(x_ours))
        coeffs = [rng.uniform(-1.5, 1.5) for _ in outs_ref]
        loss_ref, loss_ours = scalar_of(outs_ref, coeffs), scalar_of(outs_ours, coeffs)
        assert loss_ours.data == loss_ref.data
        ref.zero_grad()
        ours.zero_grad()
        loss_ref.backward()
        loss_ours.backward()
        pairs = [(p.grad, q.grad) for p, q in zip(ours.parameters(), ref.parameters(), strict=True)]
        pairs += [
            (a.grad, b.grad) for a, b in zip(x_ours, x_ref, strict=True) if isinstance(b, MGValue)
        ]
        bad = [(g, w) for g, w in pairs if not close(g, w)]
        assert not bad, f"(ours, micrograd) gradient mismatches: {bad}"
        nonzero += sum(w != 0 for _, w in pairs)
    assert nonzero > 0


def test_gradients_accumulate_over_shared_inputs() -> None:
    """An input fed to every neuron of a layer collects the sum of their gradients."""
    spec: Spec = ("MLP", (3, [5, 5, 1]), {})
    ref, ours = build_pair(spec, seed=4)
    x_ref = [MGValue(v) for v in (0.7, -0.2, 1.3)]
    x_ours = [Value(v) for v in (0.7, -0.2, 1.3)]
    ref(x_ref).backward()
    ours(x_ours).backward()
    for a, b in zip(x_ours, x_ref, strict=True):
        assert close(a.grad, b.grad)
    assert any(b.grad != 0 for b in x_ref)


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


LENGTH_CASES: list[tuple[Spec, int]] = [
    (("Neuron", (3,), {}), 2),
    (("Neuron", (3,), {}), 4),
    (("Neuron", (3,), {}), 0),
    (("Layer", (3, 4), {}), 1),
    (("Layer", (2, 1), {}), 3),
    (("MLP", (3, [4, 4, 2]), {}), 2),
    (("MLP", (3, [4, 4, 2]), {}), 4),
    (("MLP", (2, [16, 16, 1]), {}), 3),
]


@pytest.mark.parametrize("as_values", [False, True], ids=["numbers", "values"])
@pytest.mark.parametrize(
    ("spec", "n"), LENGTH_CASES, ids=lambda x: spec_id(x) if isinstance(x, tuple) else str(x)
)
def test_wrong_input_length_raises_value_error(spec: Any, n: int, as_values: bool) -> None:
    _, ours = build_pair(spec)
    x = [Value(1.0) if as_values else 1.0 for _ in range(n)]
    with pytest.raises(ValueError, match=str(nin_of(spec))):
        ours(x)


BAD_INPUTS: list[tuple[str, Callable[[], Any]]] = [
    ("str item", lambda: ["a", 1.0, 2.0]),
    ("numeric str item", lambda: ["1.0", 1.0, 2.0]),
    ("None item", lambda: [None, 1.0, 2.0]),
    ("complex item", lambda: [1 + 2j, 1.0, 2.0]),
    ("nested list", lambda: [[1.0], [2.0], [3.0]]),
    ("object item", lambda: [object(), 1.0, 2.0]),
    ("Value32 item", lambda: [Value32(1.0), 1.0, 2.0]),
    ("micrograd Value item", lambda: [MGValue(1.0), 1.0, 2.0]),
    ("not iterable: int", lambda: 3),
    ("not iterable: None", lambda: None),
    ("not iterable: float", lambda: 1.5),
]


@pytest.mark.parametrize(
    "spec", [("Neuron", (3,), {}), ("Layer", (3, 2), {}), ("MLP", (3, [2, 1]), {})], ids=spec_id
)
@pytest.mark.parametrize(("label", "make"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_type_raises_type_error(spec: Any, label: str, make: Callable[[], Any]) -> None:
    _, ours = build_pair(spec)
    with pytest.raises(TypeError):
        ours(make())


def test_number_like_inputs_are_accepted() -> None:
    """bool, Fraction and NumPy scalars work as inputs and give micrograd's result."""
    ref, ours = build_pair(("Neuron", (4,), {"nonlin": False}), seed=2)
    x: list[SupportsFloat] = [True, Fraction(1, 3), np.float32(0.25), np.int64(-2)]
    assert ours(x).data == ref([float(v) for v in x]).data


@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.Neuron(0),
        lambda: nn.Neuron(-1),
        lambda: nn.Layer(2, 0),
        lambda: nn.MLP(2, [3, 0]),
    ],
    ids=["Neuron(0)", "Neuron(-1)", "Layer(2,0)", "MLP(2,[3,0])"],
)
def test_empty_shapes_are_rejected(make: Callable[[], Any]) -> None:
    with pytest.raises(ValueError):
        make()


# ---------------------------------------------------------------------------
# A few training steps of micrograd's demo recipe, micrograd live vs micrograd_cpp
# ---------------------------------------------------------------------------

TRAIN_STEPS = 5
TRAIN_SAMPLES = 30  # micrograd takes ~2 s per step on the demo's 100 samples


@pytest.fixture(scope="module")
def moons() -> tuple[list[list[float]], list[int]]:
    np.random.seed(1337)
    X, y = make_moons(n_samples=100, noise=0.1)
    return X.tolist()[:TRAIN_SAMPLES], [int(v) * 2 - 1 for v in y][:TRAIN_SAMPLES]


def demo_losses(
    value: Any, nn_module: Any, X: list[list[float]], y: list[int], steps: int
) -> list[float]:
    """micrograd's README/demo.ipynb training loop, verbatim (the reference script's), on the
    given engine: on micrograd it is the oracle; on micrograd_cpp it checks that the same
    source runs unchanged."""
    spec = importlib.util.spec_from_file_location(
        "make_moons_reference", Path(__file__).parent / "reference" / "make_moons_reference.py"
    )
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    losses: list[float] = script.demo_steps(value, nn_module, X, y, steps)[1]
    return losses


@pytest.fixture(scope="module")
def micrograd_losses(moons: tuple[list[list[float]], list[int]]) -> list[float]:
    return demo_losses(MGValue, mgnn, *moons, TRAIN_STEPS)


def cpp_verbatim(X: list[list[float]], y: list[int], steps: int) -> list[float]:
    """The same loop, source unchanged, with micrograd_cpp's Value and nn."""
    return demo_losses(Value, nn, X, y, steps)


def cpp_nn_api(X: list[list[float]], y: list[int], steps: int) -> list[float]:
    """The recipe with micrograd_cpp's fused losses and SGD."""
    random.seed(1337)
    model = nn.MLP(2, [16, 16, 1])
    opt = nn.SGD(model.parameters(), lr=1.0)
    losses = []
    for k in range(steps):
        scores = [cast(Value, model(xrow)) for xrow in X]
        total_loss = nn.hinge_loss(scores, y) + nn.l2_penalty(model.parameters(), 1e-4)
        opt.zero_grad()
        total_loss.backward()
        opt.lr = 1.0 - 0.9 * k / 100
        opt.step()
        losses.append(total_loss.data)
    return losses


def cpp_demo_train(X: list[list[float]], y: list[int], steps: int) -> list[float]:
    _, history = demo.train(np.array(X), np.array(y), steps, 1337)
    return history.loss


@pytest.mark.parametrize(
    "run", [cpp_verbatim, cpp_nn_api, cpp_demo_train], ids=lambda f: f.__name__
)
def test_training_steps_equal_micrograd(
    run: Callable[..., list[float]],
    moons: tuple[list[list[float]], list[int]],
    micrograd_losses: list[float],
) -> None:
    got = run(*moons, TRAIN_STEPS)
    assert len(got) == TRAIN_STEPS
    bad = [
        (k, g, w)
        for k, (g, w) in enumerate(zip(got, micrograd_losses, strict=True))
        if not close(g, w)
    ]
    assert not bad, f"(step, ours, micrograd): {bad}"
    # the run trains: the loss moved
    assert micrograd_losses[-1] < micrograd_losses[0]
