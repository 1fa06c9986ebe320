"""One measurement in a fresh interpreter: ``python bench/workloads.py ENGINE WORKLOAD SIZE``.

ENGINE is one of ``ENGINES``; WORKLOAD and SIZE are
``ops-fwd MS`` / ``ops-fwd+bwd MS`` (run whole batches of iterations for at least MS ms),
``moons STEPS``, ``deep N`` and ``wide N``. Prints one JSON object (``Result``) on stdout.
run.py starts one such process per measurement, so the peak memory is this workload's alone.
"""

from __future__ import annotations

import gc
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
from types import TracebackType
from typing import Any

ENGINES = ("micrograd", "micrograd-nogc", "micrograd-cpp", "torch-scalar", "torch-batched")
REFERENCE = Path(__file__).resolve().parent.parent / "tests" / "reference" / "moons_micrograd.json"
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
    unit: str  # "op", "step" or "op node"
    count: int  # units measured
    peak_bytes: int  # peak resident-memory growth during the workload
    op_nodes: int | None = None  # graph op nodes (deep, wide), for bytes per op node
    loss: float | None = None  # moons: the loss computed in the last step
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


def ops(
    a: Any, b: Any, with_backward: bool, budget_ms: int, lanes: int = 1, *gradient: Any
) -> Result:
    """Per iteration ``c = a*b + a**2; d = (c*2 + 1).relu(); e = d - a/b`` (8 operator calls),
    plus ``e.backward()`` when asked, for at least ``budget_ms`` after a warm-up batch."""
    batch = max(1, BATCH // lanes)

    def run(iterations: int) -> None:
        for _ in range(iterations):
            c = a * b + a**2
            d = (c * 2 + 1).relu()
            e = d - a / b
            if with_backward:
                e.backward(*gradient)

    run(batch)
    iterations = 0
    with Span() as span:
        deadline = time.perf_counter() + budget_ms / 1000
        while iterations == 0 or time.perf_counter() < deadline:
            run(batch)
            iterations += batch
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


def moons_micrograd() -> Step:
    """micrograd's demo step, as tests/reference/make_moons_reference.py runs it."""
    from micrograd.engine import Value
    from micrograd.nn import MLP

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
        model.zero_grad()
        total_loss.backward()
        for p in model.parameters():
            p.data -= learning_rate(k) * p.grad
        return float(total_loss.data)

    return step


def moons_micrograd_cpp() -> Step:
    """The same step as micrograd_cpp.demo.train does it."""
    import micrograd_cpp as mg
    from micrograd_cpp import nn

    X, y = make_moons_data()
    random.seed(SEED)
    model = nn.MLP(2, list(SIZES[1:]))
    opt = nn.SGD(model.parameters(), lr=1.0)
    labels = [float(v) for v in y]

    def step(k: int) -> float:
        inputs = [list(map(mg.Value, xrow)) for xrow in X.tolist()]
        scores = list(map(model, inputs))
        total_loss = nn.hinge_loss(scores, labels) + nn.l2_penalty(model.parameters(), ALPHA)
        opt.zero_grad()
        total_loss.backward()
        opt.lr = learning_rate(k)
        opt.step()
        return total_loss.data

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
    "torch-scalar": moons_torch_scalar,
    "torch-batched": moons_torch_batched,
}


def moons(engine: str, steps: int) -> Result:
    """Train for ``steps`` steps; the loss of the last one is checked against micrograd's."""
    step = MOONS[engine]()
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


# ---------------------------------------------------------------- dispatch


def measure(engine: str, workload: str, size: int) -> Result:
    if workload == "moons":
        return moons(engine, size)
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
