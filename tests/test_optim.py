"""``nn.SGD`` and ``nn.Adam`` against PyTorch's documented update rules.

The rules of the torch.optim.SGD and torch.optim.Adam documentation (dampening 0, no
Nesterov, no amsgrad, not maximize) are written out below in plain Python, and a few
steps on a small problem must agree with them; with PyTorch installed, torch.optim
itself is run too. SGD without momentum must be micrograd's ``p.data -= lr * p.grad``
bit for bit.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any, cast

import pytest
from micrograd_cpp import Value, nn

REL = 1e-12
# The parameters are O(1); where an update nearly cancels a parameter (p ~ lr * step) the
# result carries the rounding of the O(1) terms, so an absolute tolerance at that scale.
ABS = 1e-13
STEPS = 6

# The small problem: loss(p) = sum(w_i * (p_i - t_i)**2) + (p_0 * p_1)  (coupled, not separable)
START = [0.5, -1.25, 2.0, 0.03125, -3.0]
TARGETS = [1.0, 0.5, -1.0, 0.0, 2.5]
WEIGHTS = [1.0, 3.0, 0.5, 10.0, 0.25]


def loss_of(ps: list[Any]) -> Any:
    """The loss as a graph of Values (ours); also works on floats."""
    total = ps[0] * ps[1]
    for p, t, w in zip(ps, TARGETS, WEIGHTS, strict=True):
        total = total + w * (p - t) ** 2
    return total


def grad_formula(ps: list[float]) -> list[float]:
    g = [2.0 * w * (p - t) for p, t, w in zip(ps, TARGETS, WEIGHTS, strict=True)]
    g[0] += ps[1]
    g[1] += ps[0]
    return g


def close(got: float, want: float, rel: float = REL, abs_: float = 1e-300) -> bool:
    return math.isclose(got, want, rel_tol=rel, abs_tol=abs_)


def lr_at(k: int, lr: float, schedule: bool) -> float:
    return lr * (1.0 - 0.1 * k) if schedule else lr


class ReferenceSGD:
    """torch.optim.SGD's documented algorithm (dampening=0, nesterov=False, maximize=False)."""

    def __init__(
        self, params: list[float], lr: float, momentum: float = 0.0, weight_decay: float = 0.0
    ) -> None:
        self.p, self.lr, self.mu, self.wd = list(params), lr, momentum, weight_decay
        self.b: list[float] | None = None

    def step(self, grads: list[float]) -> None:
        g = [
            gi + self.wd * pi if self.wd != 0 else gi for gi, pi in zip(grads, self.p, strict=True)
        ]
        if self.mu != 0:
            if self.b is None:
                self.b = list(g)
            else:
                self.b = [self.mu * bi + gi for bi, gi in zip(self.b, g, strict=True)]
            g = self.b
        self.p = [pi - self.lr * gi for pi, gi in zip(self.p, g, strict=True)]


class ReferenceAdam:
    """torch.optim.Adam's documented algorithm (amsgrad=False, maximize=False)."""

    def __init__(
        self,
        params: list[float],
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        self.p, self.lr, self.b1, self.b2 = list(params), lr, beta1, beta2
        self.eps, self.wd = eps, weight_decay
        self.m = [0.0] * len(params)
        self.v = [0.0] * len(params)
        self.t = 0

    def step(self, grads: list[float]) -> None:
        self.t += 1
        for i, (gi, pi) in enumerate(zip(grads, self.p, strict=True)):
            if self.wd != 0:
                gi = gi + self.wd * pi
            self.m[i] = self.b1 * self.m[i] + (1 - self.b1) * gi
            self.v[i] = self.b2 * self.v[i] + (1 - self.b2) * gi * gi
            m_hat = self.m[i] / (1 - self.b1**self.t)
            v_hat = self.v[i] / (1 - self.b2**self.t)
            self.p[i] = pi - self.lr * m_hat / (math.sqrt(v_hat) + self.eps)


SGD_CONFIGS: list[dict[str, float]] = [
    {"lr": 0.01},
    {"lr": 0.02, "momentum": 0.9},
    {"lr": 0.01, "weight_decay": 0.1},
    {"lr": 0.005, "momentum": 0.5, "weight_decay": 0.3},
    {"lr": 0.0},
]
ADAM_CONFIGS: list[dict[str, float]] = [
    {},
    {"lr": 0.1},
    {"lr": 0.05, "beta1": 0.5, "beta2": 0.9, "eps": 1e-6},
    {"lr": 0.02, "weight_decay": 0.1},
    {"lr": 0.3, "beta1": 0.0, "beta2": 0.0, "eps": 0.0},
]

CONFIGS = [("SGD", c) for c in SGD_CONFIGS] + [("Adam", c) for c in ADAM_CONFIGS]


def cfg_id(x: Any) -> str:
    if isinstance(x, dict):
        return ",".join(f"{k}={v}" for k, v in x.items()) or "defaults"
    return str(x)


def run_ours(kind: str, config: dict[str, float], schedule: bool) -> list[list[float]]:
    ps = [Value(x) for x in START]
    opt = getattr(nn, kind)(ps, **config)
    trajectory = []
    for k in range(STEPS):
        opt.zero_grad()
        loss_of(ps).backward()
        if schedule:
            opt.lr = lr_at(k, config.get("lr", 1e-3), True)
        opt.step()
        trajectory.append([p.data for p in ps])
    return trajectory


@pytest.mark.parametrize("schedule", [False, True], ids=["const-lr", "lr-schedule"])
@pytest.mark.parametrize(("kind", "config"), CONFIGS, ids=cfg_id)
def test_matches_documented_update_rule(
    kind: str, config: dict[str, float], schedule: bool
) -> None:
    ref = (ReferenceSGD if kind == "SGD" else ReferenceAdam)(START, **config)
    got = run_ours(kind, config, schedule)
    for k in range(STEPS):
        ref.lr = lr_at(k, config.get("lr", 1e-3), schedule)
        ref.step(grad_formula(ref.p))
        bad = [
            (i, g, w)
            for i, (g, w) in enumerate(zip(got[k], ref.p, strict=True))
            if not close(g, w, abs_=ABS)
        ]
        assert not bad, f"step {k}: (index, ours, reference) {bad}"
    if config.get("lr", 1e-3) > 0:
        assert got[-1] != START


@pytest.mark.parametrize("schedule", [False, True], ids=["const-lr", "lr-schedule"])
@pytest.mark.parametrize(("kind", "config"), CONFIGS, ids=cfg_id)
def test_matches_torch_optim(kind: str, config: dict[str, float], schedule: bool) -> None:
    torch = pytest.importorskip("torch")
    x = torch.tensor(START, dtype=torch.float64, requires_grad=True)
    if kind == "SGD":
        opt = torch.optim.SGD(
            [x],
            lr=config["lr"],
            momentum=config.get("momentum", 0.0),
            weight_decay=config.get("weight_decay", 0.0),
        )
    else:
        opt = torch.optim.Adam(
            [x],
            lr=config.get("lr", 1e-3),
            betas=(config.get("beta1", 0.9), config.get("beta2", 0.999)),
            eps=config.get("eps", 1e-8),
            weight_decay=config.get("weight_decay", 0.0),
            foreach=False,
        )
    got = run_ours(kind, config, schedule)
    for k in range(STEPS):
        opt.zero_grad()
        xs = list(x.unbind())
        loss_of(xs).backward()
        for group in opt.param_groups:
            group["lr"] = lr_at(k, config.get("lr", 1e-3), schedule)
        opt.step()
        want = x.detach().tolist()
        bad = [
            (i, g, w)
            for i, (g, w) in enumerate(zip(got[k], want, strict=True))
            if not close(g, w, abs_=ABS)
        ]
        assert not bad, f"step {k}: (index, ours, torch) {bad}"


# ---------------------------------------------------------------------------
# SGD without momentum is micrograd's update, bit for bit
# ---------------------------------------------------------------------------


def test_sgd_equals_micrograd_update_exactly() -> None:
    random.seed(42)
    model = nn.MLP(3, [8, 8, 1])
    opt = nn.SGD(model.parameters(), lr=1.0)
    xs = [[0.5, -1.0, 2.0], [-0.3, 0.8, 0.1], [1.5, 1.5, -0.5], [0.0, -2.0, 1.0]]
    ys = [1.0, -1.0, 1.0, -1.0]
    changed = 0
    for k in range(5):
        scores = [cast(Value, model(x)) for x in xs]  # one output neuron: bare Values
        loss = nn.hinge_loss(scores, ys) + nn.l2_penalty(model.parameters(), 1e-3)
        opt.zero_grad()
        loss.backward()
        lr = 1.0 - 0.9 * k / 100
        opt.lr = lr
        expected = []
        for p in model.parameters():
            data = p.data
            data -= lr * p.grad  # micrograd's demo: p.data -= learning_rate * p.grad
            expected.append(data)
        before = [p.data for p in model.parameters()]
        opt.step()
        assert [p.data for p in model.parameters()] == expected
        changed += sum(a != b for a, b in zip(before, expected, strict=True))
    assert changed > 0


@pytest.mark.parametrize("lr", [0.1, 1.0, 0.37])
def test_sgd_step_with_set_grads_is_exact(lr: float) -> None:
    rng = random.Random(3)
    ps = [Value(rng.uniform(-3, 3)) for _ in range(20)]
    grads = [rng.uniform(-5, 5) for _ in ps]
    for p, g in zip(ps, grads, strict=True):
        p.grad = g
    before = [p.data for p in ps]
    nn.SGD(ps, lr=lr).step()
    assert [p.data for p in ps] == [d - lr * g for d, g in zip(before, grads, strict=True)]


# ---------------------------------------------------------------------------
# zero_grad, lr
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_zero_grad(kind: str) -> None:
    ps = [Value(x) for x in START]
    other = Value(1.0)
    loss_of(ps).backward()
    (other * 3.0).backward()
    assert all(p.grad != 0 for p in ps)
    data = [p.data for p in ps]
    opt = getattr(nn, kind)(ps, lr=0.1)
    opt.zero_grad()
    assert [p.grad for p in ps] == [0.0] * len(ps)
    assert [p.data for p in ps] == data
    assert other.grad == 3.0  # not one of the optimizer's parameters


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_step_with_zero_grads_leaves_parameters(kind: str) -> None:
    ps = [Value(x) for x in START]
    opt = getattr(nn, kind)(ps, lr=0.1)
    opt.zero_grad()
    opt.step()
    assert [p.data for p in ps] == START


@pytest.mark.parametrize(("kind", "default"), [("SGD", None), ("Adam", 1e-3)])
def test_lr_read_write(kind: str, default: float | None) -> None:
    ps = [Value(1.0)]
    opt = getattr(nn, kind)(ps, lr=0.25)
    assert opt.lr == 0.25
    opt.lr = 0.125
    assert opt.lr == 0.125
    if default is not None:
        assert getattr(nn, kind)(ps).lr == default
    # the new lr is the one used: one SGD step moves by lr*grad; Adam's first step by lr
    ps[0].grad = 2.0
    opt.step()
    want = 1.0 - 0.125 * 2.0 if kind == "SGD" else 1.0 - 0.125 * 1.0 / (1.0 + 1e-8 / 2.0)
    assert close(ps[0].data, want)


def test_adam_first_step_is_lr_times_sign() -> None:
    """With bias correction, Adam's first step is lr * g / (|g| + eps) per parameter."""
    grads = [3.0, -0.5, 1e-3, -200.0]
    ps = [Value(0.0) for _ in grads]
    for p, g in zip(ps, grads, strict=True):
        p.grad = g
    nn.Adam(ps, lr=0.1).step()
    for p, g in zip(ps, grads, strict=True):
        assert close(p.data, -0.1 * g / (abs(g) + 1e-8))


# ---------------------------------------------------------------------------
# Invalid hyperparameters
# ---------------------------------------------------------------------------

NAN = float("nan")
BAD_HYPER: list[tuple[str, dict[str, float], str]] = [
    ("SGD", {"lr": -0.1}, "lr"),
    ("SGD", {"lr": NAN}, "lr"),
    ("SGD", {"lr": 0.1, "momentum": -0.5}, "momentum"),
    ("SGD", {"lr": 0.1, "momentum": NAN}, "momentum"),
    ("SGD", {"lr": 0.1, "weight_decay": -1e-4}, "weight_decay"),
    ("SGD", {"lr": 0.1, "weight_decay": NAN}, "weight_decay"),
    ("Adam", {"lr": -1e-3}, "lr"),
    ("Adam", {"lr": NAN}, "lr"),
    ("Adam", {"beta1": 1.0}, "beta1"),
    ("Adam", {"beta1": 1.5}, "beta1"),
    ("Adam", {"beta1": -0.1}, "beta1"),
    ("Adam", {"beta1": NAN}, "beta1"),
    ("Adam", {"beta2": 1.0}, "beta2"),
    ("Adam", {"beta2": -1e-9}, "beta2"),
    ("Adam", {"beta2": NAN}, "beta2"),
    ("Adam", {"eps": -1e-8}, "eps"),
    ("Adam", {"eps": NAN}, "eps"),
    ("Adam", {"weight_decay": -0.5}, "weight_decay"),
    ("Adam", {"weight_decay": NAN}, "weight_decay"),
]


@pytest.mark.parametrize(("kind", "config", "name"), BAD_HYPER, ids=cfg_id)
def test_invalid_hyperparameters_raise(kind: str, config: dict[str, float], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        getattr(nn, kind)([Value(1.0)], **config)


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
@pytest.mark.parametrize("bad", [-0.5, NAN, -math.inf])
def test_invalid_lr_assignment_raises_and_keeps_lr(kind: str, bad: float) -> None:
    opt = getattr(nn, kind)([Value(1.0)], lr=0.5)
    with pytest.raises(ValueError, match="lr"):
        opt.lr = bad
    assert opt.lr == 0.5


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
@pytest.mark.parametrize("params", [[1.0, 2.0], [None], 5], ids=["floats", "None", "not-iterable"])
def test_params_must_be_values(kind: str, params: Any) -> None:
    with pytest.raises(TypeError):
        getattr(nn, kind)(params, lr=0.1)


def test_sgd_requires_lr() -> None:
    with pytest.raises(TypeError):
        nn.SGD([Value(1.0)])  # type: ignore[call-arg]


def test_boundary_hyperparameters_are_accepted() -> None:
    """The edges PyTorch also allows: lr 0, momentum 0, beta 0, eps 0."""
    checks: list[Callable[[], Any]] = [
        lambda: nn.SGD([Value(1.0)], lr=0.0, momentum=0.0, weight_decay=0.0),
        lambda: nn.Adam([Value(1.0)], lr=0.0, beta1=0.0, beta2=0.0, eps=0.0, weight_decay=0.0),
    ]
    for make in checks:
        assert make().lr == 0.0
