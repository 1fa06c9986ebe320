"""The losses of ``micrograd_cpp.nn``.

Expected values come from formulas written here in plain Python ``math``, from
micrograd's demo expressions run on micrograd itself (hinge and L2, bitwise), from
central finite differences of those formulas, and from PyTorch when it is installed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from micrograd.engine import Value as MGValue
from micrograd_cpp import Value, Value32, nn

FD_STEP = 1e-6
FD_REL = 1e-6
FD_ABS = 1e-8
FORMULA_REL = 1e-13


def isclose(got: float, want: float, rel: float = FORMULA_REL, abs_: float = 1e-15) -> bool:
    return math.isclose(got, want, rel_tol=rel, abs_tol=abs_)


# ---------------------------------------------------------------------------
# Reference formulas (plain Python floats)
# ---------------------------------------------------------------------------


def ref_hinge(scores: list[float], labels: Sequence[float]) -> float:
    return sum(max(0.0, 1.0 - y * s) for s, y in zip(scores, labels, strict=True)) / len(scores)


def ref_mse(preds: list[float], targets: list[float]) -> float:
    return sum((p - t) ** 2 for p, t in zip(preds, targets, strict=True)) / len(preds)


def softplus(x: float) -> float:
    """log(1 + e^x) without overflow."""
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def ref_bce(logits: list[float], targets: list[float]) -> float:
    """-(y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))), via log sigmoid(x) = -softplus(-x)."""
    total = 0.0
    for x, y in zip(logits, targets, strict=True):
        total += y * softplus(-x) + (1.0 - y) * softplus(x)
    return total / len(logits)


def logsumexp(row: list[float]) -> float:
    m = max(row)
    return m + math.log(sum(math.exp(s - m) for s in row))


def softmax(row: list[float]) -> list[float]:
    m = max(row)
    e = [math.exp(s - m) for s in row]
    return [v / sum(e) for v in e]


def ref_cross_entropy(rows: list[list[float]], classes: list[int]) -> float:
    return sum(logsumexp(r) - r[c] for r, c in zip(rows, classes, strict=True)) / len(rows)


def ref_l2(params: list[float], alpha: float) -> float:
    return alpha * sum(p * p for p in params)


def central_difference(f: Callable[[list[float]], float], xs: list[float], i: int) -> float:
    h = FD_STEP * max(1.0, abs(xs[i]))
    up, down = list(xs), list(xs)
    up[i] += h
    down[i] -= h
    return (f(up) - f(down)) / (2 * h)


# ---------------------------------------------------------------------------
# Cases: (name, flat inputs, how to call our loss, reference formula, analytic grad)
# Inputs are chosen away from the kinks of relu/hinge so finite differences apply.
# ---------------------------------------------------------------------------

HINGE_SCORES = [0.3, -1.7, 2.4, 0.05, -0.6]
HINGE_LABELS = [1, -1, -1, 1, 1]
MSE_PREDS = [0.5, -1.25, 3.0, 2.2]
MSE_TARGETS = [1.0, -1.0, 2.5, -0.7]
BCE_LOGITS = [0.4, -2.3, 5.1, -0.01, 1.7, -7.5]
BCE_TARGETS = [1.0, 0.0, 0.0, 1.0, 0.3, 0.75]
CE_ROWS = [[0.2, -1.1, 2.0], [3.0, 0.5, 0.4], [-0.3, -0.3, 1.0], [1.5, 2.5, -4.0]]
CE_CLASSES = [2, 0, 1, 1]
L2_PARAMS = [0.5, -1.5, 2.25, -0.125, 3.0]
L2_ALPHA = 1e-2


def rows_of(flat: list[Any], width: int) -> list[list[Any]]:
    return [flat[i : i + width] for i in range(0, len(flat), width)]


CASES: dict[str, dict[str, Any]] = {
    "hinge": {
        "xs": HINGE_SCORES,
        "ours": lambda vs: nn.hinge_loss(vs, HINGE_LABELS),
        "ref": lambda xs: ref_hinge(xs, HINGE_LABELS),
        "grad": lambda xs: [
            (-y / len(xs)) if 1.0 - y * s > 0 else 0.0
            for s, y in zip(xs, HINGE_LABELS, strict=True)
        ],
    },
    "mse": {
        "xs": MSE_PREDS,
        "ours": lambda vs: nn.mse_loss(vs, MSE_TARGETS),
        "ref": lambda xs: ref_mse(xs, MSE_TARGETS),
        "grad": lambda xs: [2 * (p - t) / len(xs) for p, t in zip(xs, MSE_TARGETS, strict=True)],
    },
    "bce_with_logits": {
        "xs": BCE_LOGITS,
        "ours": lambda vs: nn.binary_cross_entropy_with_logits(vs, BCE_TARGETS),
        "ref": lambda xs: ref_bce(xs, BCE_TARGETS),
        "grad": lambda xs: [
            (sigmoid(x) - y) / len(xs) for x, y in zip(xs, BCE_TARGETS, strict=True)
        ],
    },
    "cross_entropy": {
        "xs": [s for row in CE_ROWS for s in row],
        "ours": lambda vs: nn.cross_entropy_loss(rows_of(vs, 3), CE_CLASSES),
        "ref": lambda xs: ref_cross_entropy(rows_of(xs, 3), CE_CLASSES),
        "grad": lambda xs: [
            (p - (1.0 if j == c else 0.0)) / len(CE_ROWS)
            for row, c in zip(rows_of(xs, 3), CE_CLASSES, strict=True)
            for j, p in enumerate(softmax(row))
        ],
    },
    "l2_penalty": {
        "xs": L2_PARAMS,
        "ours": lambda vs: nn.l2_penalty(vs, L2_ALPHA),
        "ref": lambda xs: ref_l2(xs, L2_ALPHA),
        "grad": lambda xs: [2 * L2_ALPHA * p for p in xs],
    },
}


@pytest.mark.parametrize("name", list(CASES))
def test_value_matches_formula(name: str) -> None:
    case = CASES[name]
    out = case["ours"]([Value(x) for x in case["xs"]])
    assert isinstance(out, Value)
    want = case["ref"](case["xs"])
    assert isclose(out.data, want), (out.data, want)


@pytest.mark.parametrize("name", list(CASES))
def test_gradient_matches_formula_and_finite_differences(name: str) -> None:
    case = CASES[name]
    xs = case["xs"]
    vs = [Value(x) for x in xs]
    case["ours"](vs).backward()
    got = [v.grad for v in vs]
    analytic = case["grad"](xs)
    numeric = [central_difference(case["ref"], xs, i) for i in range(len(xs))]
    assert all(isclose(g, a, rel=1e-12, abs_=1e-15) for g, a in zip(got, analytic, strict=True)), (
        got,
        analytic,
    )
    assert all(
        math.isclose(g, n, rel_tol=FD_REL, abs_tol=FD_ABS)
        for g, n in zip(got, numeric, strict=True)
    ), (got, numeric)
    assert any(g != 0 for g in got)


@pytest.mark.parametrize("name", list(CASES))
def test_inputs_accepted_as_any_iterable(name: str) -> None:
    case = CASES[name]
    vs = [Value(x) for x in case["xs"]]
    from_list = case["ours"](vs).data
    if name == "cross_entropy":
        out = nn.cross_entropy_loss((tuple(r) for r in rows_of(vs, 3)), tuple(CE_CLASSES))
    elif name == "l2_penalty":
        out = nn.l2_penalty(iter(vs), L2_ALPHA)
    else:
        fn = {
            "hinge": nn.hinge_loss,
            "mse": nn.mse_loss,
            "bce_with_logits": nn.binary_cross_entropy_with_logits,
        }[name]
        targets = {"hinge": HINGE_LABELS, "mse": MSE_TARGETS, "bce_with_logits": BCE_TARGETS}[name]
        out = fn(tuple(vs), np.array(targets))
    assert out.data == from_list
    assert isclose(out.data, case["ref"](case["xs"]))


# ---------------------------------------------------------------------------
# hinge and L2 are micrograd's demo expressions, bitwise
# ---------------------------------------------------------------------------


def micrograd_hinge(scores: list[Any], labels: list[int]) -> Any:
    losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(labels, scores, strict=True)]
    return sum(losses) * (1.0 / len(losses))


def assert_equals_micrograd(
    xs: list[float], ours: Callable[[list[Value]], Value], theirs: Callable[[list[Any]], Any]
) -> None:
    """ours() on Values of xs and theirs() on micrograd Values of xs: the same loss and the
    same gradients, bit for bit."""
    ref_vs = [MGValue(x) for x in xs]
    ref = theirs(ref_vs)
    ref.backward()
    vs = [Value(x) for x in xs]
    out = ours(vs)
    out.backward()
    assert out.data == ref.data
    assert [v.grad for v in vs] == [r.grad for r in ref_vs]


@pytest.mark.parametrize(
    ("scores", "labels"),
    [
        (HINGE_SCORES, HINGE_LABELS),
        ([1.0, -1.0, 0.0, 0.999, 3.5], [1, -1, 1, -1, -1]),  # margins exactly 0 and 1
        ([0.1 * i - 2.0 for i in range(37)], [1 if i % 3 else -1 for i in range(37)]),
        ([-0.0], [1]),
    ],
    ids=["mixed", "at-the-kink", "37-samples", "one"],
)
def test_hinge_equals_micrograd_demo_expression(scores: list[float], labels: list[int]) -> None:
    assert_equals_micrograd(
        scores, lambda vs: nn.hinge_loss(vs, labels), lambda vs: micrograd_hinge(vs, labels)
    )
    # labels as floats give the same graph
    assert (
        nn.hinge_loss([Value(s) for s in scores], [float(y) for y in labels]).data
        == nn.hinge_loss([Value(s) for s in scores], labels).data
    )


@pytest.mark.parametrize("alpha", [1e-4, 0.5, 3.0])
@pytest.mark.parametrize(
    "params", [L2_PARAMS, [0.1 * i - 1.3 for i in range(41)], [7.0]], ids=["5", "41", "1"]
)
def test_l2_equals_micrograd_demo_expression(params: list[float], alpha: float) -> None:
    assert_equals_micrograd(
        params, lambda vs: nn.l2_penalty(vs, alpha), lambda vs: alpha * sum(p * p for p in vs)
    )


def test_l2_of_no_parameters_is_zero() -> None:
    assert nn.l2_penalty([], 0.5).data == 0.0


def test_hinge_plus_l2_equals_micrograd_demo_total_loss() -> None:
    scores, labels = [0.4, -0.2, 1.3, -2.0], [1, 1, -1, -1]
    params = [0.7, -0.1, 0.05]
    n = len(scores)
    assert_equals_micrograd(
        scores + params,
        lambda vs: nn.hinge_loss(vs[:n], labels) + nn.l2_penalty(vs[n:], 1e-4),
        lambda vs: micrograd_hinge(vs[:n], labels) + 1e-4 * sum(p * p for p in vs[n:]),
    )


# ---------------------------------------------------------------------------
# mse with Value targets: the gradient flows into the targets too
# ---------------------------------------------------------------------------


def test_mse_targets_may_be_values() -> None:
    preds = [Value(p) for p in MSE_PREDS]
    targets = [Value(t) for t in MSE_TARGETS]
    out = nn.mse_loss(preds, targets)
    out.backward()
    assert isclose(out.data, ref_mse(MSE_PREDS, MSE_TARGETS))
    n = len(MSE_PREDS)
    for p, t, pv, tv in zip(MSE_PREDS, MSE_TARGETS, preds, targets, strict=True):
        assert isclose(pv.grad, 2 * (p - t) / n, rel=1e-12)
        assert isclose(tv.grad, -2 * (p - t) / n, rel=1e-12)


def test_mse_mixed_number_and_value_targets() -> None:
    preds = [Value(p) for p in MSE_PREDS]
    targets: list[Any] = [Value(t) if i % 2 else t for i, t in enumerate(MSE_TARGETS)]
    assert isclose(nn.mse_loss(preds, targets).data, ref_mse(MSE_PREDS, MSE_TARGETS))


# ---------------------------------------------------------------------------
# Numerical stability
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("logit", "target"),
    [(1000.0, 1.0), (1000.0, 0.0), (-1000.0, 1.0), (-1000.0, 0.0), (800.0, 0.25), (-745.5, 0.5)],
)
def test_bce_with_logits_is_stable(logit: float, target: float) -> None:
    v = Value(logit)
    out = nn.binary_cross_entropy_with_logits([v], [target])
    out.backward()
    assert math.isfinite(out.data) and math.isfinite(v.grad)
    # softplus(x) - x*y: for |x| this large, softplus(x) is max(x, 0) to double precision
    want = max(logit, 0.0) - logit * target
    assert isclose(out.data, want, rel=1e-15), (out.data, want)
    assert isclose(out.data, ref_bce([logit], [target]), rel=1e-15)
    want_grad = (1.0 if logit > 0 else 0.0) - target
    assert isclose(v.grad, want_grad, rel=1e-15, abs_=1e-300), (v.grad, want_grad)


def test_bce_with_logits_batch_with_huge_logits() -> None:
    logits, targets = [1000.0, -1000.0, 0.5], [0.0, 0.0, 1.0]
    vs = [Value(x) for x in logits]
    out = nn.binary_cross_entropy_with_logits(vs, targets)
    out.backward()
    assert isclose(out.data, ref_bce(logits, targets))
    assert all(
        isclose(v.grad, (sigmoid(x) - y) / 3, rel=1e-12)
        for v, x, y in zip(vs, logits, targets, strict=True)
    )


@pytest.mark.parametrize(
    ("row", "cls"),
    [
        ([1000.0, 1001.0], 0),
        ([1000.0, 1001.0], 1),
        ([-1000.0, -1001.0, -999.5], 2),
        ([1e4, 0.0, -1e4], 1),
        ([700.0, 710.0, 720.0], 0),
    ],
)
def test_cross_entropy_is_stable(row: list[float], cls: int) -> None:
    vs = [Value(s) for s in row]
    out = nn.cross_entropy_loss([vs], [cls])
    out.backward()
    assert math.isfinite(out.data)
    assert all(math.isfinite(v.grad) for v in vs)
    assert isclose(out.data, logsumexp(row) - row[cls], rel=1e-12)
    probs = softmax(row)
    for j, v in enumerate(vs):
        assert isclose(v.grad, probs[j] - (1.0 if j == cls else 0.0), rel=1e-12, abs_=1e-300)


def test_cross_entropy_1000_1001_exact_values() -> None:
    """log(e^1000 + e^1001) - 1000 = 1 + log(1 + e^-1), written out by hand."""
    a, b = Value(1000.0), Value(1001.0)
    out = nn.cross_entropy_loss([[a, b]], [0])
    out.backward()
    assert isclose(out.data, 1.0 + math.log1p(math.exp(-1.0)))
    p0 = 1.0 / (1.0 + math.e)
    assert isclose(a.grad, p0 - 1.0, rel=1e-12)
    assert isclose(b.grad, 1.0 - p0, rel=1e-12)


def test_cross_entropy_rows_may_differ_in_length() -> None:
    rows = [[0.5, 1.5], [2.0, -1.0, 0.0, 0.25]]
    out = nn.cross_entropy_loss([[Value(s) for s in r] for r in rows], [1, 3])
    assert isclose(out.data, ref_cross_entropy(rows, [1, 3]))


def test_cross_entropy_numpy_integer_classes() -> None:
    vs = [Value(s) for s in CE_ROWS[0]]
    out = nn.cross_entropy_loss([vs], [np.int64(2)])  # NumPy ints are SupportsIndex
    assert isclose(out.data, ref_cross_entropy([CE_ROWS[0]], [2]))


# ---------------------------------------------------------------------------
# PyTorch, when installed
# ---------------------------------------------------------------------------


def torch_cases(torch: Any) -> dict[str, Callable[[Any], Any]]:
    F = torch.nn.functional

    def t(xs: list[float]) -> Any:
        return torch.tensor(xs, dtype=torch.float64)

    return {
        "mse": lambda x: F.mse_loss(x, t(MSE_TARGETS)),
        "bce_with_logits": lambda x: F.binary_cross_entropy_with_logits(x, t(BCE_TARGETS)),
        "cross_entropy": lambda x: F.cross_entropy(
            x.reshape(len(CE_ROWS), 3), torch.tensor(CE_CLASSES)
        ),
    }


@pytest.mark.parametrize("name", ["mse", "bce_with_logits", "cross_entropy"])
def test_matches_torch(name: str) -> None:
    torch = pytest.importorskip("torch")
    case = CASES[name]
    x = torch.tensor(case["xs"], dtype=torch.float64, requires_grad=True)
    want = torch_cases(torch)[name](x)
    want.backward()
    vs = [Value(v) for v in case["xs"]]
    out = case["ours"](vs)
    out.backward()
    assert isclose(out.data, want.item(), rel=1e-12)
    for v, g in zip(vs, x.grad.tolist(), strict=True):
        assert isclose(v.grad, g, rel=1e-12, abs_=1e-16), ([v.grad for v in vs], x.grad.tolist())


@pytest.mark.parametrize(("row", "cls"), [([1000.0, 1001.0], 0), ([-1000.0, -1001.0, -999.5], 2)])
def test_cross_entropy_large_scores_match_torch(row: list[float], cls: int) -> None:
    torch = pytest.importorskip("torch")
    x = torch.tensor([row], dtype=torch.float64, requires_grad=True)
    want = torch.nn.functional.cross_entropy(x, torch.tensor([cls]))
    want.backward()
    vs = [Value(s) for s in row]
    out = nn.cross_entropy_loss([vs], [cls])
    out.backward()
    assert isclose(out.data, want.item(), rel=1e-12)
    assert all(isclose(v.grad, g, rel=1e-12) for v, g in zip(vs, x.grad[0].tolist(), strict=True))


@pytest.mark.parametrize("logit", [1000.0, -1000.0])
@pytest.mark.parametrize("target", [0.0, 1.0])
def test_bce_large_logits_match_torch(logit: float, target: float) -> None:
    torch = pytest.importorskip("torch")
    x = torch.tensor([logit], dtype=torch.float64, requires_grad=True)
    want = torch.nn.functional.binary_cross_entropy_with_logits(
        x, torch.tensor([target], dtype=torch.float64)
    )
    want.backward()
    v = Value(logit)
    out = nn.binary_cross_entropy_with_logits([v], [target])
    out.backward()
    assert isclose(out.data, want.item(), rel=1e-12)
    assert isclose(v.grad, x.grad.item(), rel=1e-12)


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


def vals(*xs: float) -> list[Value]:
    return [Value(x) for x in xs]


BAD_CALLS: list[tuple[str, Callable[[], Any], type, str]] = [
    # empty batch
    ("hinge empty", lambda: nn.hinge_loss([], []), ValueError, "empty"),
    ("mse empty", lambda: nn.mse_loss([], []), ValueError, "empty"),
    ("bce empty", lambda: nn.binary_cross_entropy_with_logits([], []), ValueError, "empty"),
    ("ce empty", lambda: nn.cross_entropy_loss([], []), ValueError, "empty"),
    # length mismatch
    ("hinge mismatch", lambda: nn.hinge_loss(vals(1, 2), [1]), ValueError, r"2 .*1 "),
    ("mse mismatch", lambda: nn.mse_loss(vals(1, 2), [1, 2, 3]), ValueError, r"2 .*3 "),
    (
        "bce mismatch",
        lambda: nn.binary_cross_entropy_with_logits(vals(1), [0, 1]),
        ValueError,
        r"1 .*2 ",
    ),
    ("ce mismatch", lambda: nn.cross_entropy_loss([vals(1, 2)] * 2, [0]), ValueError, r"2 .*1 "),
    ("mse no targets", lambda: nn.mse_loss(vals(1), []), ValueError, r"1 .*0 "),
    # class out of range / negative / not an int
    (
        "ce class == n",
        lambda: nn.cross_entropy_loss([vals(1, 2, 3)], [3]),
        ValueError,
        "out of range",
    ),
    (
        "ce class >> n",
        lambda: nn.cross_entropy_loss([vals(1, 2), vals(3, 4)], [0, 7]),
        ValueError,
        "out of range",
    ),
    ("ce empty row", lambda: nn.cross_entropy_loss([[]], [0]), ValueError, "out of range"),
    ("ce negative class", lambda: nn.cross_entropy_loss([vals(1, 2)], [-1]), ValueError, "-1"),
    ("ce float class", lambda: nn.cross_entropy_loss([vals(1, 2)], [1.0]), TypeError, "int"),  # type: ignore[list-item]
    ("ce str class", lambda: nn.cross_entropy_loss([vals(1, 2)], ["1"]), TypeError, "int"),  # type: ignore[list-item]
    ("ce None class", lambda: nn.cross_entropy_loss([vals(1, 2)], [None]), TypeError, "int"),  # type: ignore[list-item]
    # non-number targets / labels
    ("hinge str label", lambda: nn.hinge_loss(vals(1, 2), [1, "a"]), TypeError, "labels"),  # type: ignore[list-item]
    ("hinge None label", lambda: nn.hinge_loss(vals(1), [None]), TypeError, "labels"),  # type: ignore[list-item]
    ("mse str target", lambda: nn.mse_loss(vals(1, 2), [1.0, "x"]), TypeError, "targets"),  # type: ignore[list-item]
    ("mse None target", lambda: nn.mse_loss(vals(1), [None]), TypeError, "targets"),  # type: ignore[list-item]
    ("mse Value32 target", lambda: nn.mse_loss(vals(1), [Value32(1.0)]), TypeError, "targets"),  # type: ignore[list-item]
    (
        "bce str target",
        lambda: nn.binary_cross_entropy_with_logits(vals(1), ["1"]),  # type: ignore[list-item]
        TypeError,
        "targets",
    ),
    (
        "bce Value target",
        lambda: nn.binary_cross_entropy_with_logits(vals(1), vals(1)),  # type: ignore[arg-type]
        TypeError,
        "targets",
    ),
    (
        "bce complex target",
        lambda: nn.binary_cross_entropy_with_logits(vals(1), [1j]),  # type: ignore[list-item]
        TypeError,
        "targets",
    ),
    # predictions that are not Values
    ("mse float predictions", lambda: nn.mse_loss([1.0], [1.0]), TypeError, "predictions"),  # type: ignore[list-item]
    ("hinge float scores", lambda: nn.hinge_loss([0.5], [1]), TypeError, "scores"),  # type: ignore[list-item]
    (
        "bce Value32 logits",
        lambda: nn.binary_cross_entropy_with_logits([Value32(1.0)], [1.0]),  # type: ignore[list-item]
        TypeError,
        "logits",
    ),
    ("ce float scores", lambda: nn.cross_entropy_loss([[1.0, 2.0]], [0]), TypeError, "scores"),  # type: ignore[list-item]
    ("ce flat scores", lambda: nn.cross_entropy_loss(vals(1, 2), [0, 1]), TypeError, "scores"),  # type: ignore[arg-type]
    ("l2 float params", lambda: nn.l2_penalty([1.0], 0.1), TypeError, "parameters"),  # type: ignore[list-item]
    # not iterable at all
    ("hinge int labels", lambda: nn.hinge_loss(vals(1), 1), TypeError, "labels"),  # type: ignore[arg-type]
    ("mse None predictions", lambda: nn.mse_loss(None, [1.0]), TypeError, "predictions"),  # type: ignore[arg-type]
    ("ce int classes", lambda: nn.cross_entropy_loss([vals(1, 2)], 0), TypeError, "classes"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(
    ("label", "call", "exc", "message"), BAD_CALLS, ids=[b[0] for b in BAD_CALLS]
)
def test_bad_input_raises(label: str, call: Callable[[], Any], exc: type, message: str) -> None:
    with pytest.raises(exc, match=message):
        call()
