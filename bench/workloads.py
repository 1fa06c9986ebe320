"""One measurement in a fresh interpreter: ``python bench/workloads.py ENGINE WORKLOAD SIZE``.

ENGINE is one of ``ENGINES``; WORKLOAD and SIZE are
``ops-fwd MS`` / ``ops-fwd+bwd MS``, ``attrs MS``, ``leaf-float MS`` / ``leaf-np.float64 MS``
(run whole batches of iterations for at least MS ms), ``moons STEPS``, ``notebook STEPS``,
``deep N``, ``wide N``, ``digits EPOCHS``, and ``capture-moons 1``, ``capture-digits 1``,
``capture-deep N``. Prints one JSON object (``Result``) on stdout.
run.py starts one such process per measurement, so the peak memory is this workload's alone.
"""

from __future__ import annotations

import gc
import importlib.util
import itertools
import json
import math
import random
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

ENGINES = (
    "micrograd",
    "micrograd-nogc",
    "micrograd-cpp",
    "micrograd-cpp-graph",
    "torch-scalar",
    "torch-batched",
)
ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "tests" / "reference" / "moons_micrograd.json"
DIGITS_EXAMPLE = ROOT / "examples" / "train_digits.py"
SEED = 1337
SIZES = (2, 16, 16, 1)  # MLP(2, [16, 16, 1])
ALPHA = 1e-4  # L2 weight of the demo's loss
OPS_PER_ITERATION = 8  # Python operator calls in one ops iteration: * ** + * + relu / -
BATCH = 1000  # ops iterations between two reads of the clock
LANES = 100_000  # elements per tensor in torch-batched ops

Leaf = Callable[[float], Any]  # makes a leaf that takes part in autograd
Step = Callable[[int], float]  # one training step k; returns the loss it computed


@dataclass
class Result:
    ns: float  # nanoseconds per unit
    unit: str  # "op", "step", "op node", "epoch" or "capture"
    count: int  # units measured
    peak_bytes: int  # peak resident-memory growth during the workload
    op_nodes: int | None = None  # graph op nodes (deep, wide), for bytes per op node
    loss: float | None = None  # moons, digits: the loss computed in the last step
    steps: int | None = None
    ok: bool = True  # the numbers computed were checked and are right
    note: str = ""


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    raise LookupError(field)


class Span:
    """Wall time and peak resident-memory growth over a ``with`` block.

    The kernel's high-water mark (VmHWM) is reset on entry by writing 5 to
    /proc/self/clear_refs, so the peak is this block's. Where that is refused, it falls back
    to ru_maxrss, which is right only when the process never had a higher peak before.
    """

    ns = 0
    bytes = 0

    def __enter__(self) -> Span:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self._hwm = True
        except OSError:
            self._hwm = False
        self._base_kib = _status_kib("VmRSS:")
        self._start = time.perf_counter_ns()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.ns = time.perf_counter_ns() - self._start
        peak = (
            _status_kib("VmHWM:")
            if self._hwm
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        )
        self.bytes = (peak - self._base_kib) * 1024


@cache
def import_torch() -> Any:
    import torch

    torch.set_num_threads(1)  # every engine here computes on one core
    return torch


def scalar_leaf(engine: str) -> Leaf:
    """The Value constructor of a scalar engine."""
    if engine in ("micrograd", "micrograd-nogc"):
        from micrograd.engine import Value

        return Value
    if engine == "micrograd-cpp":
        import micrograd_cpp as mg

        return mg.Value
    if engine == "torch-scalar":
        torch = import_torch()
        return lambda x: torch.tensor(x, dtype=torch.float64, requires_grad=True)
    raise ValueError(f"{engine} is not a scalar engine")


def backward(root: Any, depth: int, *gradient: Any) -> str:
    """``root.backward()``. micrograd's topological sort recurses once per node on the
    longest path: when the default recursion limit is too low for ``depth`` nodes, raise it
    and say so."""
    try:
        root.backward(*gradient)
        return ""
    except RecursionError:
        default = sys.getrecursionlimit()
        sys.setrecursionlimit(2 * depth + 1000)
        root.backward(*gradient)
        return (
            f"RecursionError at the default recursion limit ({default}); "
            f"ran with it raised to {2 * depth + 1000:,}"
        )


# ---------------------------------------------------------------- ops


def for_at_least(
    run: Callable[[int], None], budget_ms: int, batch: int = BATCH
) -> tuple[int, Span]:
    """``run(batch)`` once to warm up, then timed in batches for at least ``budget_ms``:
    the iterations timed, and their span."""
    run(batch)
    iterations = 0
    with Span() as span:
        deadline = time.perf_counter() + budget_ms / 1000
        while iterations == 0 or time.perf_counter() < deadline:
            run(batch)
            iterations += batch
    return iterations, span


def ops(
    a: Any, b: Any, with_backward: bool, budget_ms: int, lanes: int = 1, *gradient: Any
) -> Result:
    """Per iteration ``c = a*b + a**2; d = (c*2 + 1).relu(); e = d - a/b`` (8 operator calls),
    plus ``e.backward()`` when asked, for at least ``budget_ms`` after a warm-up batch."""

    def run(iterations: int) -> None:
        for _ in range(iterations):
            c = a * b + a**2
            d = (c * 2 + 1).relu()
            e = d - a / b
            if with_backward:
                e.backward(*gradient)

    iterations, span = for_at_least(run, budget_ms, max(1, BATCH // lanes))
    count = iterations * lanes * OPS_PER_ITERATION
    return Result(span.ns / count, "op", count, span.bytes)


def ops_scalar(leaf: Leaf, with_backward: bool, budget_ms: int) -> Result:
    return ops(leaf(1.5), leaf(-0.7), with_backward, budget_ms)


def ops_batched(with_backward: bool, budget_ms: int) -> Result:
    torch = import_torch()
    a, b = (torch.full((LANES,), v, dtype=torch.float64, requires_grad=True) for v in (1.5, -0.7))
    result = ops(a, b, with_backward, budget_ms, LANES, torch.ones(LANES, dtype=torch.float64))
    result.note = f"tensors of {LANES:,} elements; an op is one element of one op"
    return result


def attributes(leaf: Leaf, budget_ms: int) -> Result:
    """``v.data`` and ``v.grad`` read and written, as micrograd's update loop does: per
    iteration ``x = v.data; v.data = x; g = v.grad; v.grad = g``, four times (16 accesses)."""
    v = leaf(0.5)

    def run(iterations: int) -> None:
        for _ in range(iterations):
            x = v.data
            v.data = x
            g = v.grad
            v.grad = g
            x = v.data
            v.data = x
            g = v.grad
            v.grad = g
            x = v.data
            v.data = x
            g = v.grad
            v.grad = g
            x = v.data
            v.data = x
            g = v.grad
            v.grad = g

    iterations, span = for_at_least(run, budget_ms)
    return Result(span.ns / (16 * iterations), "access", 16 * iterations, span.bytes)


def leaves(leaf: Leaf, kind: str, budget_ms: int) -> Result:
    """``Value(x)`` for a Python float or a NumPy float64 x (what iterating a NumPy row
    gives, as micrograd's ``list(map(Value, xrow))``): eight per iteration, each dropped."""
    import numpy as np

    x = np.float64(0.5) if kind == "np.float64" else 0.5

    def run(iterations: int) -> None:
        for _ in range(iterations):
            leaf(x), leaf(x), leaf(x), leaf(x), leaf(x), leaf(x), leaf(x), leaf(x)

    iterations, span = for_at_least(run, budget_ms)
    return Result(span.ns / (8 * iterations), "leaf", 8 * iterations, span.bytes)


# ---------------------------------------------------------------- deep, wide


def deep(leaf: Leaf, n: int) -> Result:
    """``x = x*1.0001 + 0.0001`` n times from a leaf x0, then backward: 2n op nodes."""
    x0 = leaf(1.0)
    with Span() as span:
        x = x0
        for _ in range(n):
            x = x * 1.0001 + 0.0001
        note = backward(x, 2 * n + 1)
    log_expected = n * math.log1p(1e-4)  # d x / d x0 = 1.0001**n, inf past n = 7.1e6
    expected = math.exp(log_expected) if log_expected < math.log(sys.float_info.max) else math.inf
    grad = float(x0.grad)
    ok = math.isinf(grad) if math.isinf(expected) else math.isclose(grad, expected, rel_tol=1e-6)
    return Result(span.ns / (2 * n), "op node", 2 * n, span.bytes, op_nodes=2 * n, ok=ok, note=note)


def wide(n: int, build: Callable[[list[float], list[float]], Any], *gradient: Any) -> Result:
    """``sum(w[i]*x[i])`` over n products, leaves made inside the timed block, then backward:
    2n op nodes (n products, n additions)."""
    rng = random.Random(SEED)
    ws = [rng.uniform(-1, 1) for _ in range(n)]
    xs = [rng.uniform(-1, 1) for _ in range(n)]
    with Span() as span:
        total = build(ws, xs)
        note = backward(total, n + 2, *gradient)
    exact = math.fsum(w * x for w, x in zip(ws, xs, strict=True))
    ok = math.isclose(float(total.data), exact, rel_tol=1e-9, abs_tol=1e-9)
    return Result(span.ns / (2 * n), "op node", 2 * n, span.bytes, op_nodes=2 * n, ok=ok, note=note)


def wide_scalar(leaf: Leaf, n: int) -> Result:
    return wide(n, lambda ws, xs: sum(leaf(w) * leaf(x) for w, x in zip(ws, xs, strict=True)))


def wide_batched(n: int) -> Result:
    torch = import_torch()

    def build(ws: list[float], xs: list[float]) -> Any:
        w, x = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (ws, xs))
        return (w * x).sum()

    result = wide(n, build)
    result.note = "(w*x).sum() on two tensors, made from the Python lists inside the timing"
    return result


# ---------------------------------------------------------------- moons


@cache
def reference() -> dict[str, Any]:
    """micrograd's own 100-step run: data, initial parameters, loss at every step."""
    return json.loads(REFERENCE.read_text())


def make_moons_data() -> tuple[Any, Any]:
    """The demo's data: np.random.seed(1337); make_moons(100, noise=0.1); labels -1/1."""
    import numpy as np
    from sklearn.datasets import make_moons

    np.random.seed(SEED)
    X, y = make_moons(n_samples=100, noise=0.1)
    return X, y * 2 - 1


def learning_rate(k: int) -> float:
    return 1.0 - 0.9 * k / 100


def notebook(engine: str) -> Step:
    """micrograd's demo step as its notebook (and tests/reference/make_moons_reference.py)
    writes it, accuracy included, on micrograd's Value and MLP or, with that one import
    changed, micrograd_cpp's."""
    if engine == "micrograd-cpp":
        from micrograd_cpp import Value
        from micrograd_cpp.nn import MLP
    else:
        from micrograd.engine import Value  # type: ignore[assignment]
        from micrograd.nn import MLP  # type: ignore[assignment]

    X, y = make_moons_data()
    random.seed(SEED)
    model = MLP(2, list(SIZES[1:]))

    def step(k: int) -> float:
        inputs = [list(map(Value, xrow)) for xrow in X]
        scores = list(map(model, inputs))
        margins = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores, strict=True)]
        data_loss = sum(margins) * (1.0 / len(margins))
        reg_loss = ALPHA * sum(p * p for p in model.parameters())
        total_loss = data_loss + reg_loss
        accuracy = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(y, scores, strict=True)]
        assert 0 <= sum(accuracy) <= len(accuracy)
        model.zero_grad()
        total_loss.backward()
        for p in model.parameters():
            p.data -= learning_rate(k) * p.grad
        return float(total_loss.data)

    return step


def moons_micrograd() -> Step:
    """micrograd's demo step, as its notebook writes it."""
    return notebook("micrograd")


def moons_micrograd_cpp_model() -> tuple[Callable[[], Any], Any]:
    """The demo's model and SGD, and a function that builds one step's loss over new input
    leaves, as micrograd_cpp.demo.train does."""
    import micrograd_cpp as mg
    from micrograd_cpp import nn

    X, y = make_moons_data()
    random.seed(SEED)
    model = nn.MLP(2, list(SIZES[1:]))
    opt = nn.SGD(model.parameters(), lr=1.0)
    labels = [float(v) for v in y]

    def build() -> Any:
        inputs = [list(map(mg.Value, xrow)) for xrow in X.tolist()]
        scores = list(map(model, inputs))
        return nn.hinge_loss(scores, labels) + nn.l2_penalty(model.parameters(), ALPHA)

    return build, opt


def moons_micrograd_cpp() -> Step:
    """The same step as micrograd_cpp.demo.train does it: the graph is rebuilt every step."""
    build, opt = moons_micrograd_cpp_model()

    def step(k: int) -> float:
        total_loss = build()
        opt.zero_grad()
        total_loss.backward()
        opt.lr = learning_rate(k)
        opt.step()
        return float(total_loss.data)

    return step


def moons_micrograd_cpp_graph() -> Step:
    """The same step, its graph captured by ``Graph`` at step 0 (inside the timing) and
    replayed at every later step: forward, zero_grad, backward, update."""
    import micrograd_cpp as mg

    build, opt = moons_micrograd_cpp_model()
    graphs: list[Any] = []  # the one captured graph, from step 0

    def step(k: int) -> float:
        if graphs:
            graphs[0].forward()
        else:
            graphs.append(mg.Graph(build()))
        opt.zero_grad()
        graphs[0].backward()
        opt.lr = learning_rate(k)
        opt.step()
        return float(graphs[0].root.data)

    return step


def reference_layers() -> list[tuple[list[list[float]], list[float]]]:
    """micrograd's initial parameters (per neuron: weights, then bias) as (W rows, b) per layer."""
    params = iter(reference()["initial_parameters"])
    layers = []
    for nin, nout in itertools.pairwise(SIZES):
        rows = [[next(params) for _ in range(nin + 1)] for _ in range(nout)]
        layers.append(([row[:-1] for row in rows], [row[-1] for row in rows]))
    return layers


def torch_sgd(total: Any, params: list[Any], k: int) -> float:
    """Zero the grads, backpropagate, update: micrograd's SGD in torch."""
    torch = import_torch()
    for p in params:
        p.grad = None
    total.backward()
    with torch.no_grad():
        for p in params:
            p -= learning_rate(k) * p.grad
    return total.item()


def moons_torch_scalar() -> Step:
    """micrograd's MLP and loss written over 0-d tensors, from micrograd's initial weights."""
    torch = import_torch()
    leaf = scalar_leaf("torch-scalar")
    layers = [
        ([[leaf(w) for w in row] for row in W], [leaf(v) for v in b]) for W, b in reference_layers()
    ]
    params = [p for W, b in layers for row, bias in zip(W, b, strict=True) for p in (*row, bias)]
    X, y = reference()["X"], reference()["y"]

    def forward(x: list[Any]) -> Any:
        for i, (W, b) in enumerate(layers):
            x = [
                sum((wi * xi for wi, xi in zip(row, x, strict=True)), bias)
                for row, bias in zip(W, b, strict=True)
            ]
            if i < len(layers) - 1:
                x = [v.relu() for v in x]
        return x[0]

    def step(k: int) -> float:
        inputs = [[torch.tensor(v, dtype=torch.float64) for v in row] for row in X]
        scores = [forward(row) for row in inputs]
        margins = [(1 + -yi * s).relu() for yi, s in zip(y, scores, strict=True)]
        total = sum(margins) * (1.0 / len(margins)) + ALPHA * sum(p * p for p in params)
        return torch_sgd(total, params, k)

    return step


def moons_torch_batched() -> Step:
    """The same model and loss on matrices: three (addmm, relu) layers over all 100 samples."""
    torch = import_torch()
    X = torch.tensor(reference()["X"], dtype=torch.float64)
    y = torch.tensor(reference()["y"], dtype=torch.float64)
    layers = [
        tuple(torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (W, b))
        for W, b in reference_layers()
    ]
    params = [p for layer in layers for p in layer]

    def step(k: int) -> float:
        h = X
        for i, (W, b) in enumerate(layers):
            h = torch.addmm(b, h, W.T)
            if i < len(layers) - 1:
                h = h.relu()
        data_loss = (1 - y * h[:, 0]).relu().mean()
        total = data_loss + ALPHA * sum((p * p).sum() for p in params)
        return torch_sgd(total, params, k)

    return step


MOONS: dict[str, Callable[[], Step]] = {
    "micrograd": moons_micrograd,
    "micrograd-nogc": moons_micrograd,
    "micrograd-cpp": moons_micrograd_cpp,
    "micrograd-cpp-graph": moons_micrograd_cpp_graph,
    "torch-scalar": moons_torch_scalar,
    "torch-batched": moons_torch_batched,
}


def moons(engine: str, steps: int, in_notebook: bool = False) -> Result:
    """Train for ``steps`` steps; the loss of the last one is checked against micrograd's.
    ``in_notebook``: micrograd's notebook loop, on the engine's Value and MLP."""
    step = notebook(engine) if in_notebook else MOONS[engine]()
    with Span() as span:
        losses = [step(k) for k in range(steps)]
    ref = reference()["loss"][steps - 1]
    tolerance = 1e-6 if engine.startswith("torch") else 1e-12
    return Result(
        span.ns / steps,
        "step",
        steps,
        span.bytes,
        loss=losses[-1],
        steps=steps,
        ok=math.isclose(losses[-1], ref, rel_tol=tolerance),
    )


# ---------------------------------------------------------------- digits

DigitsStep = Callable[[Any], float]  # one Adam step on the training rows of an index array


@cache
def digits_example() -> ModuleType:
    """examples/train_digits.py: the digits rows time its data, model, loss and steps."""
    spec = importlib.util.spec_from_file_location("train_digits", DIGITS_EXAMPLE)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {DIGITS_EXAMPLE}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their class's module up
    spec.loader.exec_module(module)
    return module


def digits_first_loss() -> float:
    """The first batch's loss from the initial weights, in NumPy: the check of every engine."""
    import numpy as np

    ex = digits_example()
    data, model = ex.load(), ex.make_model()
    (W1, b1), (W2, b2) = (
        (
            np.array([[w.data for w in n.w] for n in layer.neurons]),
            np.array([n.b.data for n in layer.neurons]),
        )
        for layer in model.layers
    )
    index = ex.epoch_batches(len(data.y_train), np.random.default_rng(ex.SEED))[0]
    h = np.maximum(data.x_train[index] @ W1.T + b1, 0)
    s = h @ W2.T + b2
    picked = s[np.arange(len(index)), data.y_train[index]]
    return float(np.mean(np.log(np.exp(s).sum(axis=1)) - picked))


def digits_micrograd_cpp(replay: bool) -> tuple[DigitsStep, Callable[[], float]]:
    """With ``replay``, the example's BatchLoss: the graph captured at the first batch and
    replayed. Without, the eager loop as one writes it without Graph: each batch's graph
    built over new leaves, with ``nn.cross_entropy_loss`` on the class indices (eagerly
    faster than the one-hot loss that replay needs). Returns the step and the test
    accuracy."""
    from micrograd_cpp import Value, nn

    ex = digits_example()
    data, model = ex.load(), ex.make_model()
    opt = nn.Adam(model.parameters(), lr=ex.LR)
    batch = ex.BatchLoss(model, opt)
    rows, x, y = data.rows, data.x_train, data.y_train

    def eager(index: Any) -> float:
        scores = [model(list(map(Value, row))) for row in x[index].tolist()]
        loss = nn.cross_entropy_loss(scores, y[index].tolist())
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.data)

    return (
        (lambda index: float(batch.step(rows[index]))) if replay else eager,
        lambda: float(ex.accuracy(model, data.x_test, data.y_test)),
    )


def digits_torch_batched() -> tuple[DigitsStep, Callable[[], float]]:
    """The same model on matrices, from the same initial weights: two addmm, a relu,
    F.cross_entropy, torch.optim.Adam with the same settings."""
    torch = import_torch()
    ex = digits_example()
    data, model = ex.load(), ex.make_model()
    params = [
        torch.tensor(v, dtype=torch.float64, requires_grad=True)
        for layer in model.layers
        for v in (
            [[w.data for w in n.w] for n in layer.neurons],
            [n.b.data for n in layer.neurons],
        )
    ]
    W1, b1, W2, b2 = params
    opt = torch.optim.Adam(params, lr=ex.LR)
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    x_test, y_test = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test)

    def forward(xb: Any) -> Any:
        return torch.addmm(b2, torch.addmm(b1, xb, W1.T).relu(), W2.T)

    def step(index: Any) -> float:
        index = torch.from_numpy(index)
        loss = torch.nn.functional.cross_entropy(forward(x[index]), y[index])
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.item())

    def accuracy() -> float:
        with torch.no_grad():
            return float((forward(x_test).argmax(dim=1) == y_test).double().mean().item())

    return step, accuracy


def digits_micrograd() -> DigitsStep:
    """micrograd 0.1.0's MLP(64, [32, 10]) from the same initial weights (same random
    draws), the example's loss, and Adam written in Python as torch's.

    micrograd has no exp or log: they are added to its Value as custom ops, the way its
    lecture adds tanh and exp (a node with a Python ``_backward``).
    """
    from micrograd.engine import Value
    from micrograd.nn import MLP

    def exp(self: Any) -> Any:
        out = Value(math.exp(self.data), (self,), "exp")

        def _backward() -> None:
            self.grad += out.data * out.grad

        out._backward = _backward
        return out

    def log(self: Any) -> Any:
        out = Value(math.log(self.data), (self,), "log")

        def _backward() -> None:
            self.grad += out.grad / self.data

        out._backward = _backward
        return out

    Value.exp, Value.log = exp, log
    ex = digits_example()
    data = ex.load()
    random.seed(ex.SEED)
    model = MLP(ex.PIXELS, [ex.HIDDEN, ex.CLASSES])
    params = model.parameters()
    m, v = [0.0] * len(params), [0.0] * len(params)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    rows = data.rows
    t = 0

    def step(index: Any) -> float:
        nonlocal t
        leaves = [[Value(x) for x in row] for row in rows[index].tolist()]
        scores = [model(row[: ex.PIXELS]) for row in leaves]
        loss = ex.cross_entropy(scores, [row[ex.PIXELS :] for row in leaves])
        model.zero_grad()
        backward(loss, 4 * len(leaves) * len(leaves[0]))  # a bound on the longest path
        t += 1
        step_size, correction2_sqrt = ex.LR / (1 - beta1**t), math.sqrt(1 - beta2**t)
        for i, p in enumerate(params):
            m[i] += (1 - beta1) * (p.grad - m[i])
            v[i] = beta2 * v[i] + (1 - beta2) * p.grad * p.grad
            p.data -= step_size * m[i] / (math.sqrt(v[i]) / correction2_sqrt + eps)
        return float(loss.data)

    return step


def digits(engine: str, epochs: int) -> Result:
    """Train ``epochs`` epochs of the example's shuffled batches of 32 (the last partial
    batch dropped), or for micrograd one batch, extrapolated to an epoch. The first batch's
    loss is checked against NumPy's."""
    import numpy as np

    ex = digits_example()
    n = len(ex.load().y_train)
    rng = np.random.default_rng(ex.SEED)
    batches = [ex.epoch_batches(n, rng) for _ in range(epochs)]
    per_epoch = len(batches[0])
    accuracy = None
    if engine in ("micrograd", "micrograd-nogc"):
        step = digits_micrograd()
        batches = [batches[0][:1]]
    elif engine == "torch-batched":
        step, accuracy = digits_torch_batched()
    else:
        step, accuracy = digits_micrograd_cpp(replay=engine == "micrograd-cpp-graph")
    with Span() as span:
        losses = [step(index) for epoch in batches for index in epoch]
    ok = all(map(math.isfinite, losses)) and math.isclose(
        losses[0], digits_first_loss(), rel_tol=1e-9
    )
    if accuracy is None:
        ns, count = span.ns * per_epoch, 1
        note = f"one batch of {ex.BATCH} timed, × {per_epoch} batches per epoch"
    else:
        ns, count = span.ns / epochs, epochs
        note = (
            f"test accuracy {accuracy():.1%} after {epochs} epoch{'s' * (epochs > 1)} "
            f"of {per_epoch} batches of {ex.BATCH} (the last {n % ex.BATCH} images dropped)"
        )
    return Result(
        ns, "epoch", count, span.bytes, loss=losses[-1], steps=len(losses), ok=ok, note=note
    )


# ---------------------------------------------------------------- capture


def capture(what: str, n: int) -> Result:
    """``Graph(root)`` of one moons step's loss, of one digits batch's loss (with its 74×32
    input leaves), or of the deep chain of ``n`` steps. Time and peak RSS growth are the
    capture's (bytes per node: over ``len(g)``); the nodes were built before it.
    ``g.check()`` must find the captured values exact."""
    import micrograd_cpp as mg

    inputs = None
    if what == "moons":
        build, _ = moons_micrograd_cpp_model()
        root = build()
    elif what == "digits":
        from micrograd_cpp import nn

        ex = digits_example()
        model = ex.make_model()
        batch = ex.BatchLoss(model, nn.Adam(model.parameters(), lr=ex.LR))
        inputs = batch.build(ex.load().rows[: ex.BATCH])
        root = batch.loss
    else:
        root = mg.Value(1.0)
        for _ in range(n):
            root = root * 1.0001 + 0.0001
    with Span() as span:
        graph = mg.Graph(root, inputs=inputs)
    nodes = len(graph)
    note = (
        f"{nodes:,} nodes, each also a node of {mg.arena_stats()['node_size']} B in the arena "
        "(a fused neuron's block: more)"
    )
    exact = graph.check() == 0.0
    return Result(span.ns, "capture", 1, span.bytes, op_nodes=nodes, ok=exact, note=note)


# ---------------------------------------------------------------- dispatch


def measure(engine: str, workload: str, size: int) -> Result:
    if workload in ("moons", "notebook"):
        return moons(engine, size, in_notebook=workload == "notebook")
    if workload == "attrs":
        return attributes(scalar_leaf(engine), size)
    if workload.startswith("leaf-"):
        return leaves(scalar_leaf(engine), workload.removeprefix("leaf-"), size)
    if workload == "digits":
        return digits(engine, size)
    if workload.startswith("capture-") and engine == "micrograd-cpp-graph":
        return capture(workload.removeprefix("capture-"), size)
    batched = engine == "torch-batched"
    if workload in ("ops-fwd", "ops-fwd+bwd"):
        with_backward = workload == "ops-fwd+bwd"
        if batched:
            return ops_batched(with_backward, size)
        return ops_scalar(scalar_leaf(engine), with_backward, size)
    if workload == "wide":
        return wide_batched(size) if batched else wide_scalar(scalar_leaf(engine), size)
    if workload == "deep" and not batched:
        return deep(scalar_leaf(engine), size)
    raise ValueError(f"no workload {workload!r} for engine {engine!r}")


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in ENGINES:
        print(__doc__, file=sys.stderr)
        return 2
    engine, workload, size = argv[0], argv[1], int(argv[2])
    if engine == "micrograd-nogc":
        gc.disable()
    print(json.dumps(asdict(measure(engine, workload, size))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
