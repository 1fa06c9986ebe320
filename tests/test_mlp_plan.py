"""MLP's plan (nn.MLP._current_plan, _core.MLPPlan): what the model read once and keeps
between calls. The oracle is micrograd itself, and Python's GC and weak references.

These cover the bugs of the plan cache that lived in C++ (issue 12): a model that refers to
itself was never freed, a global model with a user-defined neuron gave nanobind's leak
report at exit, and a Layer attribute whose getter calls the model poisoned the plan.
"""

from __future__ import annotations

import copy
import gc
import os
import pickle
import random
import subprocess
import sys
import textwrap
import weakref
from typing import Any, cast

import micrograd.nn as mnn
import micrograd_cpp as mg
import pytest
from micrograd.engine import Value as MGValue
from micrograd_cpp import nn

X = [0.5, -1.25]


def pair(seed: int = 7) -> tuple[Any, nn.MLP]:
    """micrograd's MLP(2, [4, 3, 1]) and ours, with the same weights."""
    random.seed(seed)
    ref = mnn.MLP(2, [4, 3, 1])
    random.seed(seed)
    return ref, nn.MLP(2, [4, 3, 1])


def outputs(model: Any, cls: Any) -> float:
    out = model([cls(x) for x in X])
    return float(out.data)


def test_the_plan_is_made_once_and_reused() -> None:
    ref, ours = pair()
    ours(X)
    plan = ours.__dict__["_plan"]
    assert plan is not None
    for _ in range(3):
        assert outputs(ours, mg.Value) == outputs(ref, MGValue)
        assert ours.__dict__["_plan"] is plan


def test_parameters_are_micrograds_in_order_and_a_new_list() -> None:
    ref, ours = pair()
    ours(X)  # with a plan
    params = ours.parameters()
    assert [p.data for p in params] == [p.data for p in ref.parameters()]
    expected = [p for layer in ours.layers for n in layer.neurons for p in [*n.w, n.b]]
    assert all(a is b for a, b in zip(params, expected, strict=True))
    params.clear()  # the caller's list: the model keeps all of them
    assert len(ours.parameters()) == len(expected)


def test_parameters_see_a_replaced_weight() -> None:
    _, ours = pair()
    ours.parameters()
    new = mg.Value(2.0)
    ours.layers[1].neurons[2].w[0] = new  # in place: no attribute assigned
    assert any(p is new for p in ours.parameters())


def test_model_that_refers_to_itself_is_collected() -> None:
    refs = []
    for seed in range(50):
        _, model = pair(seed)
        model(X)  # makes the plan
        model.layers[0].owner = model  # a cycle through the plan's lists
        model.layers[1].neurons[0].model = model
        refs.append(weakref.ref(model))
        del model
    gc.collect()
    assert sum(r() is not None for r in refs) == 0


def test_model_with_a_plan_in_a_cycle_frees_its_nodes() -> None:
    from conftest import live

    gc.collect()
    base = live()
    _, model = pair()
    model(X)
    model.me = model
    del model
    gc.collect()
    assert live() == base, "the plan's nodes stayed alive"


def test_no_leak_report_at_exit_with_a_user_defined_neuron() -> None:
    script = textwrap.dedent(
        """
        import random
        from micrograd_cpp import nn

        class Tanhless(nn.Neuron):
            pass

        random.seed(0)
        MODEL = nn.MLP(2, [3, 1])
        MODEL.layers[0].neurons[1] = Tanhless(2)
        MODEL([0.5, -1.0]).backward()
        PLAIN = nn.MLP(2, [3, 1])
        PLAIN([0.5, -1.0]).backward()
        PLAIN.layers[0].me = PLAIN
        """
    )
    env = {**os.environ, "MICROGRAD_CPP_LEAK_WARNINGS": "1"}  # LD_PRELOAD under ASan too
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert "leak" not in run.stderr.lower(), run.stderr


class ReentrantLayer(nn.Layer):
    """A Layer whose neurons' getter calls, once, the model it is given as `model`."""

    def __getattribute__(self, name: str) -> Any:
        d = object.__getattribute__(self, "__dict__")
        if name == "neurons" and d.get("model") is not None:
            model = d.pop("model")
            model([1.0, 2.0])
        return object.__getattribute__(self, name)


def test_layer_attribute_that_calls_the_model_does_not_poison_it() -> None:
    ref, ours = pair()
    ours(X)
    random.seed(11)
    layer = ReentrantLayer(2, 4)
    random.seed(11)
    ref_layer = mnn.Layer(2, 4)
    ours.layers[0] = layer  # in place: the plan sees a list change
    ref.layers[0] = ref_layer
    layer.__dict__["model"] = ours
    for k in range(3):
        assert outputs(ours, mg.Value) == outputs(ref, MGValue), f"call {k}"
    ours.layers[0] = nn.Layer(2, 4)  # a plain layer again: a plan again
    ours(X)
    assert ours.__dict__["_plan"] is not None


def test_a_class_call_replaced_after_the_plan_is_used() -> None:
    _, ours = pair()
    ours(X)
    calls = []
    original = nn.Neuron.__call__

    def counted(self: nn.Neuron, x: Any) -> mg.Value:
        calls.append(self)
        return original(self, x)

    nn.Neuron.__call__ = counted  # type: ignore[method-assign]
    try:
        ours(X)
    finally:
        nn.Neuron.__call__ = original  # type: ignore[method-assign]
    assert len(calls) == 8  # 4 + 3 + 1 neurons, through Python
    ours(X)
    assert len(calls) == 8


def test_subclass_overriding_parameters_is_used_by_zero_grad() -> None:
    class Frozen(nn.MLP):
        def parameters(self) -> list[mg.Value]:
            return super().parameters()[:3]

    random.seed(3)
    model = Frozen(2, [2, 1])
    cast(mg.Value, model(X)).backward()
    model.zero_grad()
    grads = [p.grad for p in nn.MLP.parameters(model)]
    assert grads[:3] == [0.0] * 3 and any(g != 0 for g in grads[3:])


def test_numbers_among_weights_take_micrograds_loop() -> None:
    ref, ours = pair()
    ref.layers[1].neurons[0].w[2] = 0.5
    ours.layers[1].neurons[0].w[2] = 0.5  # type: ignore[call-overload]
    for _ in range(2):
        assert outputs(ours, mg.Value) == outputs(ref, MGValue)
    assert ours.__dict__["_plan"] is None
    assert len(ours.parameters()) == len(ref.parameters())


@pytest.mark.parametrize("copier", [copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))])
def test_copies_make_their_own_plan(copier: Any) -> None:
    ref, ours = pair()
    ours(X)
    other = copier(ours)
    assert "_plan" not in other.__dict__
    assert outputs(other, mg.Value) == outputs(ref, MGValue)
    assert other.__dict__["_plan"] is not ours.__dict__["_plan"]
    other.layers[0].neurons[0].w[0].data = 9.0  # the copy's weights are its own
    assert outputs(ours, mg.Value) == outputs(ref, MGValue)
