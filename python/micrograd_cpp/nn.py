"""Mirror of ``micrograd.nn`` (Module, Neuron, Layer, MLP), plus losses and optimizers.

The classes, constructor arguments, ``__repr__`` strings and random initialisation are
micrograd's: with the same ``random.seed`` the initial weights are the same. Forward
passes, losses and optimizer steps are single C++ calls that compute in the same
floating-point order as micrograd's Python code, so the numbers match. A neuron is one
fused graph node, which turns into micrograd's nodes for it when its ``_prev`` is read.
All of it works on float64 ``Value``\\ s.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Iterable, Sequence
from typing import Any, SupportsFloat, SupportsIndex

from . import _core
from ._core import SGD, Adam
from .engine import Value

__all__ = [
    "Module",
    "Neuron",
    "Layer",
    "MLP",
    "SGD",
    "Adam",
    "hinge_loss",
    "mse_loss",
    "binary_cross_entropy_with_logits",
    "cross_entropy_loss",
    "l2_penalty",
]

Number = SupportsFloat
Input = Value | SupportsFloat

_FORMAT = "micrograd_cpp.parameters"
_FORMAT_VERSION = 1


class Module:
    """Base class: anything with parameters. Subclasses override ``parameters()``."""

    # MLP.__call__ keeps what it reads from a model between calls (a plan, in C++, dropped
    # with the MLP); it checks the lists it read (layers, neurons, w) for changes itself,
    # and is told here when any module's attribute is assigned or deleted. (A change made
    # behind these, e.g. through vars(module), is not seen.)
    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        _core.model_changed()

    def __delattr__(self, name: str) -> None:
        object.__delattr__(self, name)
        _core.model_changed()

    def zero_grad(self) -> None:
        """Set the grad of every parameter to 0 (one C++ call)."""
        _core.zero_grad(self.parameters())

    def parameters(self) -> list[Value]:
        """The trainable values of this module, in a fixed order."""
        return []

    def shapes(self) -> list[list[int]]:
        """The shape ``[nin, nout]`` of each layer (here: ``[[number of parameters]]``),
        saved with the parameters and checked on load."""
        return [[len(self.parameters())]]

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the parameters' data to a JSON file (plain data: no code is ever pickled)."""
        params = [p.data for p in self.parameters()]
        if not all(math.isfinite(x) for x in params):
            raise ValueError("save: the model has non-finite (nan or inf) parameters")
        doc = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "model": repr(self),
            "shapes": self.shapes(),
            "parameters": params,
        }
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f)

    def load(self, path: str | os.PathLike[str]) -> None:
        """Read parameters written by ``save()`` into this module.

        The file must describe a module of the same shapes; every number is checked
        before any parameter changes, so on a ``ValueError`` the module is unchanged.
        """
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"load: {path} is not valid JSON ({e})") from e
        values = self._check_saved(doc, path)
        for p, x in zip(self.parameters(), values, strict=True):
            p.data = x

    def _check_saved(self, doc: Any, path: str | os.PathLike[str]) -> list[float]:
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            raise ValueError(f"load: {path} is not a micrograd_cpp parameter file")
        version = doc.get("version")
        if type(version) is not int or version != _FORMAT_VERSION:
            raise ValueError(f"load: {path} has version {version!r}; "
                             f"this micrograd_cpp reads version {_FORMAT_VERSION}")
        if doc.get("shapes") != self.shapes():
            raise ValueError(f"load: {path} holds a model of shapes {doc.get('shapes')} "
                             f"({doc.get('model')}), not {self.shapes()} ({self!r})")
        values = doc.get("parameters")
        n = len(self.parameters())
        if not isinstance(values, list) or len(values) != n:
            raise ValueError(f"load: {path} must list {n} parameters")
        floats = []
        for i, x in enumerate(values):
            try:
                if isinstance(x, bool) or not isinstance(x, (int, float)):
                    raise TypeError
                floats.append(float(x))
                if not math.isfinite(floats[-1]):
                    raise OverflowError
            except (TypeError, OverflowError):
                raise ValueError(
                    f"load: parameter {i} in {path} is {x!r:.40}, not a finite number") from None
        return floats


class Neuron(Module):
    """One neuron: ``relu(sum(w_i * x_i) + b)``, or linear when ``nonlin`` is False."""

    def __init__(self, nin: int, nonlin: bool = True) -> None:
        if isinstance(nin, bool) or not isinstance(nin, int) or nin < 1:
            raise ValueError(f"Neuron: nin must be a positive int, got {nin!r}")
        self.w = [Value(random.uniform(-1, 1)) for _ in range(nin)]
        self.b = Value(0)
        self.nonlin = nonlin

    def __call__(self, x: Sequence[Input]) -> Value:
        return _core.neuron_forward(self, x)

    def parameters(self) -> list[Value]:
        return self.w + [self.b]

    def shapes(self) -> list[list[int]]:
        return [[len(self.w), 1]]

    def __repr__(self) -> str:
        return f"{'ReLU' if self.nonlin else 'Linear'}Neuron({len(self.w)})"


class Layer(Module):
    """``nout`` neurons on the same ``nin`` inputs; a one-neuron layer returns a bare Value."""

    def __init__(self, nin: int, nout: int, **kwargs: Any) -> None:
        if isinstance(nout, bool) or not isinstance(nout, int) or nout < 1:
            raise ValueError(f"Layer: nout must be a positive int, got {nout!r}")
        self.neurons = [Neuron(nin, **kwargs) for _ in range(nout)]

    def __call__(self, x: Sequence[Input]) -> Value | list[Value]:
        out = _core.layer_forward(self.neurons, x)
        return out[0] if len(out) == 1 else out

    def parameters(self) -> list[Value]:
        return [p for n in self.neurons for p in n.parameters()]

    def shapes(self) -> list[list[int]]:
        return [[len(self.neurons[0].w), len(self.neurons)]]

    def __repr__(self) -> str:
        return f"Layer of [{', '.join(str(n) for n in self.neurons)}]"


class MLP(Module):
    """A multi-layer perceptron: ReLU layers of sizes ``nouts``, the last one linear."""

    def __init__(self, nin: int, nouts: Sequence[int]) -> None:
        sz = [nin] + list(nouts)
        self.layers = [Layer(sz[i], sz[i + 1], nonlin=i != len(nouts) - 1)
                       for i in range(len(nouts))]

    def __call__(self, x: Sequence[Input]) -> Value | list[Value]:
        # One C++ call for all layers, through a plan of this model kept between calls.
        return _core.mlp_forward(self, x)

    def parameters(self) -> list[Value]:
        return [p for layer in self.layers for p in layer.parameters()]

    def shapes(self) -> list[list[int]]:
        return [s for layer in self.layers for s in layer.shapes()]

    def __repr__(self) -> str:
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"


# Layers call their neurons, and MLPs their layers, in C++ where these classes' own
# __call__ would run, and through Python for a subclass that overrides it.
_core.register_nn(Neuron, Layer)


def hinge_loss(scores: Iterable[Value], labels: Iterable[Number]) -> Value:
    """The SVM max-margin loss of micrograd's demo: ``mean(relu(1 - y*s))``, y in {-1, 1}.

    Built as the demo writes it, ``sum((1 + -y*s).relu() ...) * (1.0 / n)``, so the value
    and gradients equal micrograd's.
    """
    return _core.hinge_loss(scores, labels)


def mse_loss(predictions: Iterable[Value], targets: Iterable[Input]) -> Value:
    """Mean squared error, ``mean((p - y)**2)``."""
    return _core.mse_loss(predictions, targets)


def binary_cross_entropy_with_logits(logits: Iterable[Value], targets: Iterable[Number]) -> Value:
    """Binary cross-entropy of ``sigmoid(x)`` against targets in [0, 1], computed stably
    from the logits x as ``mean(softplus(x) - x*y)``."""
    return _core.binary_cross_entropy_with_logits(logits, targets)


def cross_entropy_loss(scores: Iterable[Sequence[Value]],
                       classes: Iterable[SupportsIndex]) -> Value:
    """Softmax cross-entropy: the mean over rows of ``logsumexp(row) - row[class]``,
    stable for large scores (the row's maximum is subtracted inside the exp)."""
    return _core.cross_entropy_loss(scores, classes)


def l2_penalty(params: Iterable[Value], alpha: float) -> Value:
    """``alpha * sum(p*p for p in params)``, the regularisation of micrograd's demo."""
    return _core.l2_penalty(params, alpha)
