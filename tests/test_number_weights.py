"""A plain number placed among a neuron's weights (``neuron.w[0] = 0.5``) or as its bias
computes as micrograd does: a constant, a new leaf at each call, with the same output and
the same gradients for everything else (micrograd itself is the oracle).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from micrograd import nn as mgnn
from micrograd.engine import Value as MGValue
from micrograd_cpp import Value, nn


def pair(make: Callable[[Any], Any], seed: int) -> tuple[Any, Any]:
    random.seed(seed)
    ours = make(nn)
    random.seed(seed)
    return ours, make(mgnn)


def as_list(out: Any) -> list[Any]:
    return out if isinstance(out, list) else [out]


@pytest.mark.parametrize("nonlin", [True, False])
@pytest.mark.parametrize("numbers_in", [False, True], ids=["Value inputs", "number inputs"])
def test_neuron_with_number_weight_matches_micrograd(nonlin: bool, numbers_in: bool) -> None:
    ours, theirs = pair(lambda m: m.Neuron(3, nonlin=nonlin), 1)
    for n in (ours, theirs):
        n.w[0] = 0.5
        n.w[2] = -2  # an int, as micrograd allows
    x = [1.5, -0.25, -0.75]
    values, mvalues = [Value(v) for v in x], [MGValue(v) for v in x]
    xs: list[Any] = x if numbers_in else values
    mxs: list[Any] = x if numbers_in else mvalues
    out, mout = ours(xs), theirs(mxs)
    assert (out.data, out._op) == (mout.data, mout._op) and out.data != 0
    out.backward()
    mout.backward()
    ours_w: list[Any] = ours.w
    theirs_w: list[Any] = theirs.w
    assert (ours_w[1].grad, ours.b.grad) == (theirs_w[1].grad, theirs.b.grad)
    if not numbers_in:
        assert [v.grad for v in values] == [v.grad for v in mvalues]


def test_number_bias_matches_micrograd() -> None:
    ours, theirs = pair(lambda m: m.Neuron(2, nonlin=False), 2)
    ours.b = theirs.b = 0.75
    xs, mxs = [Value(1.0), Value(-3.0)], [MGValue(1.0), MGValue(-3.0)]
    out, mout = ours(xs), theirs(mxs)
    out.backward()
    mout.backward()
    assert out.data == mout.data
    assert [w.grad for w in ours.w] == [w.grad for w in theirs.w]


def test_mlp_with_number_weights_matches_micrograd() -> None:
    ours, theirs = pair(lambda m: m.MLP(3, [4, 4, 2]), 5)
    x = [0.5, -1.0, 2.0]
    before = [o.data for o in as_list(ours(x))]  # the model's plan, made before the change
    for model in (ours, theirs):
        model.layers[1].neurons[2].w[1] = 0.25
        model.layers[0].neurons[0].w[0] = -1.5
    outs, mouts = as_list(ours(x)), as_list(theirs(x))
    assert [o.data for o in outs] == pytest.approx([o.data for o in mouts], rel=1e-12)
    assert [o.data for o in outs] != before
    sum(outs[1:], outs[0]).backward()
    sum(mouts[1:], mouts[0]).backward()
    grads = [p.grad for p in ours.parameters() if isinstance(p, Value)]
    mgrads = [p.grad for p in theirs.parameters() if isinstance(p, MGValue)]
    assert grads == pytest.approx(mgrads, rel=1e-12)


def test_other_objects_among_weights_are_a_type_error() -> None:
    n = nn.Neuron(2)
    n.w[1] = "0.5"  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="Neuron.w must hold Value objects or numbers, not 'str'"):
        n([1.0, 2.0])
    m = nn.Neuron(2)
    m.b = None  # type: ignore[assignment]
    with pytest.raises(TypeError, match="Neuron.b must be a Value or a number, not 'NoneType'"):
        m([1.0, 2.0])
