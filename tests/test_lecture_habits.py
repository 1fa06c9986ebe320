"""The habits of Karpathy's "building micrograd" lecture, against micrograd itself.

Backprop by hand with ``_backward()``, ops written the lecture's way as
``Value(t, (self,), 'tanh')`` with a Python ``_backward`` (often patched onto the class),
attributes on values, and what that means for Python's cyclic GC.
"""

from __future__ import annotations

import gc
import math
import random
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import micrograd_cpp as mg
import pytest
from conftest import live
from micrograd import nn as mgnn
from micrograd.engine import Value as MGValue

CLASSES = [mg.Value, mg.Value32]


def lecture_tanh(cls: Any) -> Callable[[Any], Any]:
    """The lecture's tanh, written against the class ``cls``."""

    def tanh(self: Any) -> Any:
        x = self.data
        t = (math.exp(2 * x) - 1) / (math.exp(2 * x) + 1)
        out = cls(t, (self,), "tanh")

        def _backward() -> None:
            self.grad += (1 - t**2) * out.grad

        out._backward = _backward
        return out

    return tanh


def lecture_exp(cls: Any) -> Callable[[Any], Any]:
    def exp(self: Any) -> Any:
        x = self.data
        out = cls(math.exp(x), (self,), "exp")

        def _backward() -> None:
            self.grad += out.data * out.grad

        out._backward = _backward
        return out

    return exp


def neuron(cls: Any) -> dict[str, Any]:
    """The lecture's neuron: o = tanh(x1*w1 + x2*w2 + b), each node kept by name."""
    v: dict[str, Any] = {
        "x1": cls(2.0),
        "x2": cls(0.0),
        "w1": cls(-3.0),
        "w2": cls(1.0),
        "b": cls(6.8813735870195432),
    }
    v["x1w1"] = v["x1"] * v["w1"]
    v["x2w2"] = v["x2"] * v["w2"]
    v["x1w1x2w2"] = v["x1w1"] + v["x2w2"]
    v["n"] = v["x1w1x2w2"] + v["b"]
    v["o"] = lecture_tanh(cls)(v["n"])
    return v


BY_HAND = ["o", "n", "b", "x1w1x2w2", "x2w2", "x1w1", "x1", "x2", "w1", "w2"]


def test_backprop_by_hand_equals_micrograd_and_the_lecture() -> None:
    ours, theirs = neuron(mg.Value), neuron(MGValue)
    for v in (ours, theirs):
        v["o"].grad = 1.0
        for name in BY_HAND:  # the lecture's order; leaves' _backward does nothing
            v[name]._backward()
    for name in BY_HAND:
        assert ours[name].data == theirs[name].data, name
        assert ours[name].grad == theirs[name].grad, name
    # the grads the lecture derives: 1 - o**2 = 0.5, then through + and *
    want = {"n": 0.5, "b": 0.5, "x1": -1.5, "w1": 1.0, "x2": 0.5, "w2": 0.0}
    for name, grad in want.items():
        assert ours[name].grad == pytest.approx(grad, abs=1e-12), name
    assert ours["o"]._op == "tanh" and ours["o"]._prev == {ours["n"]}


def test_backward_calls_custom_backward_in_graph_order() -> None:
    ours, theirs = neuron(mg.Value), neuron(MGValue)
    ours["o"].backward()
    theirs["o"].backward()
    for name in BY_HAND:
        assert ours[name].grad == theirs[name].grad, name


def test_custom_ops_patched_onto_the_class_train_as_in_micrograd() -> None:
    """A small MLP whose output goes through the lecture's tanh and exp, patched onto both
    classes, trained 15 steps: the losses equal micrograd's."""
    losses: dict[str, list[float]] = {}
    engines: list[tuple[str, Any, Any]] = [("micrograd", MGValue, mgnn), ("ours", mg.Value, mg.nn)]
    for name, cls, nn in engines:
        cls.tanh_l = lecture_tanh(cls)
        cls.exp_l = lecture_exp(cls)
        try:
            random.seed(3)
            model = nn.MLP(2, [4, 1])
            xs = [[0.5, -1.0], [1.5, 0.25], [-0.75, 2.0], [0.0, -0.5]]
            ys = [0.5, -0.25, 0.75, -0.5]
            losses[name] = []
            for _ in range(15):
                outs = [model(x).tanh_l() for x in xs]
                loss = sum(((o - y) ** 2 for o, y in zip(outs, ys, strict=True)), cls(0.0))
                loss = loss + (outs[0] * 0.1).exp_l()
                model.zero_grad()
                loss.backward()
                for p in model.parameters():
                    p.data -= 0.05 * p.grad
                losses[name].append(loss.data)
        finally:
            del cls.tanh_l, cls.exp_l
    assert losses["ours"] == pytest.approx(losses["micrograd"], rel=1e-12, abs=0.0)


@pytest.mark.parametrize("cls", CLASSES)
def test_custom_node_shape(cls: Any) -> None:
    a, b = cls(2.0), cls(-3.0)
    out = cls(a.data * b.data, (a, b), "mul")
    assert (out.data, out._op, out._prev) == (-6.0, "mul", {a, b})
    out.backward()  # no _backward assigned: contributes nothing, as micrograd's default
    assert (out.grad, a.grad, b.grad) == (1.0, 0.0, 0.0)
    out._backward()
    assert out._backward is not None
    leaf = cls(1.0, (), "const")  # no children: a leaf with a label for its op
    assert leaf._op == "const" and leaf._prev == set()
    assert cls(1.0, [], "")._op == ""


@pytest.mark.parametrize("cls", CLASSES)
def test_custom_node_errors(cls: Any) -> None:
    a = cls(1.0)
    with pytest.raises(ValueError, match="at most 2 inputs"):
        cls(1.0, (a, a, a), "sum3")
    with pytest.raises(TypeError, match=r"_children\[1\]"):
        cls(1.0, (a, 2.0), "x")
    with pytest.raises(TypeError, match="_op must be a str"):
        cls(1.0, (a,), 5)
    other = mg.Value32 if cls is mg.Value else mg.Value
    with pytest.raises(TypeError):
        cls(1.0, (other(1.0),), "x")
    with pytest.raises(AttributeError, match="cannot be replaced"):
        (a * 2)._backward = lambda: None
    out = cls(1.0, (a,), "f")
    with pytest.raises(TypeError, match="function of no arguments"):
        out._backward = 3


def test_an_exception_in_backward_propagates_and_the_graph_still_works() -> None:
    a = mg.Value(2.0)
    out = mg.Value(4.0, (a,), "sq")
    calls = []

    def failing() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        a.grad += 2 * a.data * out.grad

    out._backward = failing
    root = out * 3.0
    with pytest.raises(RuntimeError, match="boom"):
        root.backward()
    a.grad = out.grad = 0.0  # out got its grad before the exception, as in micrograd
    root.backward()
    assert a.grad == 12.0


def test_by_hand_backward_of_a_fused_neuron_matches_micrograds_last_node() -> None:
    random.seed(11)
    ours = mg.nn.MLP(3, [2])
    random.seed(11)
    theirs = mgnn.MLP(3, [2])
    x = [0.5, -1.5, 2.0]
    outs = ours(x)
    assert isinstance(outs, list)
    o, t = outs[0], theirs(x)[0]
    o.grad = t.grad = 0.75
    o._backward()
    t._backward()

    def prev(v: Any) -> list[tuple[float, float]]:
        return sorted((p.data, p.grad) for p in v._prev)

    assert prev(o) == prev(t)


@pytest.mark.parametrize("cls", CLASSES)
def test_attributes_live_with_the_node(cls: Any) -> None:
    a = cls(1.5)
    c = a * 2
    a.foo = "x"
    a.count = 3
    assert (a.foo, vars(a)) == ("x", {"foo": "x", "count": 3})
    del a.count
    with pytest.raises(AttributeError, match="count"):
        a.count  # noqa: B018
    with pytest.raises(AttributeError):
        del a.count
    assert getattr(a, "missing", None) is None
    del a
    gc.collect()
    (again,) = [p for p in c._prev if p.data == 1.5]
    assert again.foo == "x"  # the node kept it, whichever object stands for it now
    with pytest.raises(AttributeError):
        c._op = "x"  # the type's own read-only attributes are not shadowed


def test_values_stay_out_of_the_cyclic_gc_until_they_hold_objects() -> None:
    a = mg.Value(1.0)
    b = a * 2 + 1
    assert not gc.is_tracked(a) and not gc.is_tracked(b)
    a.note = "hi"
    assert gc.is_tracked(a)


def test_cycles_through_a_custom_op_or_attributes_are_collected() -> None:
    base = live()
    tanh = lecture_tanh(mg.Value)
    for _ in range(200):
        y = tanh(mg.Value(0.3))  # its _backward refers to y itself
        v = mg.Value(1.0)
        v.me = v  # a cycle through the node's attributes
    del y, v
    gc.collect()
    assert live() == base


def test_a_custom_node_held_by_the_graph_keeps_its_backward() -> None:
    x = mg.Value(0.5)
    z = lecture_tanh(mg.Value)(x) * 2.0  # its tanh node has no Python object left
    gc.collect()
    z.backward()
    assert x.grad == pytest.approx(2 * (1 - math.tanh(0.5) ** 2), rel=1e-15)


def test_graph_copy_and_pickle_refuse_custom_ops_by_name() -> None:
    x = mg.Value(0.5)
    y = lecture_tanh(mg.Value)(x) + 1
    with pytest.raises(ValueError, match="custom op 'tanh'"):
        mg.Graph(y)
    import pickle

    with pytest.raises(ValueError, match="custom op"):
        pickle.dumps(y)


def test_no_leak_report_at_exit_after_patching_value() -> None:
    """Values alive at exit, a method patched onto Value: no 'leaked instances' report."""
    script = (
        "import micrograd_cpp as mg\n"
        "def cube(self):\n"
        "    out = mg.Value(self.data ** 3, (self,), 'cube')\n"
        "    def _backward():\n"
        "        self.grad += 3 * self.data ** 2 * out.grad\n"
        "    out._backward = _backward\n"
        "    return out\n"
        "mg.Value.cube = cube\n"
        "x = mg.Value(2.0)\n"
        "y = x.cube()\n"
        "y.backward()\n"
        "print(x.grad)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "12.0"
    assert "leak" not in done.stderr
