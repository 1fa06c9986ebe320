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
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, SupportsFloat, SupportsIndex, cast

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
    "to_torch",
    "from_torch",
]

Number = SupportsFloat
Input = Value | SupportsFloat
# What state_dict() holds per key: a layer's weight rows, or its biases.
StateDict = dict[str, list[list[float]] | list[float]]

_FORMAT = "micrograd_cpp.parameters"
_FORMAT_VERSION = 1


# Assignments and deletions of any module's attributes so far: an MLP's plan (MLP._plan)
# is current only while this stays what it was when the plan was made.
_changes = 0


class Module:
    """Base class: anything with parameters. Subclasses override ``parameters()``."""

    # An MLP keeps what it read from its layers and neurons between calls (MLP._plan), and
    # reads them again once any module's attribute is assigned or deleted. (A change made
    # behind these, e.g. through vars(module), is not seen.)
    def __setattr__(self, name: str, value: Any) -> None:
        global _changes
        object.__setattr__(self, name, value)
        _changes += 1

    def __delattr__(self, name: str) -> None:
        global _changes
        object.__delattr__(self, name)
        _changes += 1

    def __getstate__(self) -> dict[str, Any]:
        """Pickling and copying: the attributes, less an MLP's plan (it is made again)."""
        state = self.__dict__.copy()
        state.pop("_plan", None)
        state.pop("_plan_changes", None)
        return state

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

    def _linear_layers(self) -> list[list[Neuron]]:
        """The neurons of each layer, as PyTorch's Linear layers would hold them."""
        raise TypeError(
            f"{type(self).__name__} is not a Neuron, Layer or MLP: it has no "
            "PyTorch form (state_dict, load_state_dict, to_torch)"
        )

    def _torch_layout(self) -> list[tuple[int, list[Neuron], bool]]:
        """(index in the Sequential that to_torch makes, neurons, followed by a ReLU) per
        layer: Linear, [ReLU,] Linear, ..., so keys are 0.weight, 0.bias, 2.weight, ..."""
        layout = []
        index = 0
        for i, neurons in enumerate(self._linear_layers()):
            relus = {bool(n.nonlin) for n in neurons}
            if len(relus) != 1:
                raise ValueError(
                    f"layer {i} mixes ReLU and linear neurons: a PyTorch "
                    "Linear followed or not by a ReLU cannot hold it"
                )
            relu = relus.pop()
            layout.append((index, neurons, relu))
            index += 2 if relu else 1
        return layout

    def state_dict(self) -> StateDict:
        """The parameters under PyTorch's names for the ``torch.nn.Sequential`` of Linear
        and ReLU layers that ``to_torch`` makes: ``{"0.weight": rows, "0.bias": biases,
        "2.weight": ...}``, plain nested lists of floats, where ``neurons[i].w[j]`` is
        ``weight[i][j]``. A Neuron is a one-neuron layer and a Layer a one-layer MLP: their
        keys are ``0.weight`` (one row per neuron) and ``0.bias``. Loads into PyTorch with
        ``seq.load_state_dict({k: torch.tensor(v) for k, v in sd.items()})``."""
        sd: StateDict = {}
        for index, neurons, _ in self._torch_layout():
            sd[f"{index}.weight"] = [[_number(w) for w in n.w] for n in neurons]
            sd[f"{index}.bias"] = [_number(n.b) for n in neurons]
        return sd

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Set the parameters from a ``state_dict()`` of a model of the same shapes, or
        from PyTorch's (its tensors, or NumPy arrays, are read with ``tolist()``).

        The keys, every shape and every number (finite int or float) are checked before
        any parameter changes: on a ``ValueError`` the module is unchanged.
        """
        if not isinstance(state_dict, Mapping):
            raise ValueError(
                "load_state_dict: expected a mapping of names to weights, not "
                f"{type(state_dict).__name__}"
            )
        layout = self._torch_layout()
        expected = [f"{i}.{kind}" for i, _, _ in layout for kind in ("weight", "bias")]
        if set(state_dict) != set(expected):
            missing = [k for k in expected if k not in state_dict]
            extra = sorted(map(repr, set(state_dict) - set(expected)))
            raise ValueError(
                f"load_state_dict: keys must be {expected}; missing {missing}, "
                f"unexpected [{', '.join(extra)}]"
            )
        writes: list[tuple[Neuron, int, float]] = []  # (neuron, weight index or -1, value)
        for index, neurons, _ in layout:
            nin = len(neurons[0].w)
            rows = _matrix(state_dict[f"{index}.weight"], f"{index}.weight", len(neurons), nin)
            biases = _matrix([state_dict[f"{index}.bias"]], f"{index}.bias", 1, len(neurons))[0]
            for n, row, b in zip(neurons, rows, biases, strict=True):
                if len(n.w) != nin:
                    raise ValueError(
                        f"load_state_dict: the neurons of layer {index} have "
                        "different numbers of inputs"
                    )
                writes += [(n, j, x) for j, x in enumerate(row)] + [(n, -1, b)]
        for n, j, x in writes:
            target = n.b if j < 0 else n.w[j]
            if isinstance(target, Value):
                target.data = x
            elif j < 0:
                n.b = x
            else:
                n.w[j] = x

    def _check_saved(self, doc: Any, path: str | os.PathLike[str]) -> list[float]:
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            raise ValueError(f"load: {path} is not a micrograd_cpp parameter file")
        version = doc.get("version")
        if type(version) is not int or version != _FORMAT_VERSION:
            raise ValueError(
                f"load: {path} has version {version!r}; "
                f"this micrograd_cpp reads version {_FORMAT_VERSION}"
            )
        if doc.get("shapes") != self.shapes():
            raise ValueError(
                f"load: {path} holds a model of shapes {doc.get('shapes')} "
                f"({doc.get('model')}), not {self.shapes()} ({self!r})"
            )
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
                    f"load: parameter {i} in {path} is {x!r:.40}, not a finite number"
                ) from None
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
        return cast(Value, _core.layer_forward([(self.w, self.b, self.nonlin)], x))

    def parameters(self) -> list[Value]:
        return self.w + [self.b]

    def shapes(self) -> list[list[int]]:
        return [[len(self.w), 1]]

    def _linear_layers(self) -> list[list[Neuron]]:
        return [[self]]

    def __repr__(self) -> str:
        return f"{'ReLU' if self.nonlin else 'Linear'}Neuron({len(self.w)})"


class Layer(Module):
    """``nout`` neurons on the same ``nin`` inputs; a one-neuron layer returns a bare Value."""

    def __init__(self, nin: int, nout: int, **kwargs: Any) -> None:
        if isinstance(nout, bool) or not isinstance(nout, int) or nout < 1:
            raise ValueError(f"Layer: nout must be a positive int, got {nout!r}")
        self.neurons = [Neuron(nin, **kwargs) for _ in range(nout)]

    def __call__(self, x: Sequence[Input]) -> Value | list[Value]:
        neurons = self.neurons
        if Neuron.__call__ is _NEURON_CALL and all(type(n) is Neuron for n in neurons):
            # One C++ call; the neurons share one row of inputs.
            return _core.layer_forward([(n.w, n.b, n.nonlin) for n in neurons], x)
        outs = [n(x) for n in neurons]  # micrograd's own loop
        return outs[0] if len(outs) == 1 else outs

    def parameters(self) -> list[Value]:
        return [p for n in self.neurons for p in n.parameters()]

    def shapes(self) -> list[list[int]]:
        return [[len(self.neurons[0].w), len(self.neurons)]]

    def _linear_layers(self) -> list[list[Neuron]]:
        return [list(self.neurons)]

    def __repr__(self) -> str:
        return f"Layer of [{', '.join(str(n) for n in self.neurons)}]"


class MLP(Module):
    """A multi-layer perceptron: ReLU layers of sizes ``nouts``, the last one linear."""

    def __init__(self, nin: int, nouts: Sequence[int]) -> None:
        sz = [nin] + list(nouts)
        self.layers = [
            Layer(sz[i], sz[i + 1], nonlin=i != len(nouts) - 1) for i in range(len(nouts))
        ]

    _plan: _core.MLPPlan | None = None  # see _current_plan

    def __call__(self, x: Sequence[Input]) -> Value | list[Value]:
        plan = self._plan
        if plan is not None and Neuron.__call__ is _NEURON_CALL and Layer.__call__ is _LAYER_CALL:
            out = plan(x, _changes)  # one C++ call for all layers; None: not current
            if out is not None:
                return out  # type: ignore[no-any-return]
        plan = self._current_plan()
        if plan is None:  # micrograd's own loop
            h: Any = x
            for layer in self.layers:
                h = layer(h)
            return h  # type: ignore[no-any-return]
        return plan(x, _changes)  # type: ignore[no-any-return]

    def parameters(self) -> list[Value]:
        plan = self._current_plan()
        if plan is None:
            return [p for layer in self.layers for p in layer.parameters()]
        return plan.parameters()

    def _current_plan(self) -> _core.MLPPlan | None:
        """What ``__call__`` and ``parameters()`` compute from, kept between calls in
        ``_plan`` while it is current (``MLPPlan.current``: no module's attribute has
        changed, and the lists it read hold the same objects). None, and then micrograd's
        own loops run, while a method of Neuron or Layer is replaced on the class, or for a
        model the plan cannot stand for (until a module's attribute changes)."""
        if not (
            Neuron.__call__ is _NEURON_CALL
            and Layer.__call__ is _LAYER_CALL
            and Neuron.parameters is _NEURON_PARAMETERS
            and Layer.parameters is _LAYER_PARAMETERS
        ):
            return None  # a method replaced on the class: until it is put back
        plan = self._plan
        if self.__dict__.get("_plan_changes") == _changes and (
            plan is None or plan.current(_changes)
        ):
            return plan
        plan = _make_plan(self)
        self.__dict__.update(_plan=plan, _plan_changes=_changes)  # not attribute changes
        return plan

    def shapes(self) -> list[list[int]]:
        return [s for layer in self.layers for s in layer.shapes()]

    def _linear_layers(self) -> list[list[Neuron]]:
        return [n for layer in self.layers for n in layer._linear_layers()]

    def __repr__(self) -> str:
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"


_NEURON_CALL = Neuron.__call__
_LAYER_CALL = Layer.__call__
_NEURON_PARAMETERS = Neuron.parameters
_LAYER_PARAMETERS = Layer.parameters


def _make_plan(mlp: MLP) -> _core.MLPPlan | None:
    """The plan of an MLP made of ``Layer`` and ``Neuron`` exactly (a subclass may compute
    its attributes, or call and count its parameters its own way), in plain lists, with
    Value weights and biases and a bool ``nonlin``; None for any other."""
    layers = mlp.__dict__.get("layers")
    if type(layers) is not list or mlp.layers is not layers:
        return None
    lists: list[list[Any]] = [layers]
    spec: list[list[tuple[list[Value], Value, bool]]] = []
    params: list[Value] = []
    for layer in layers:
        neurons = layer.__dict__.get("neurons") if type(layer) is Layer else None
        if type(neurons) is not list:
            return None
        lists.append(neurons)
        spec.append([])
        for n in neurons:
            if type(n) is not Neuron:
                return None
            w, b, nonlin = n.w, n.b, n.nonlin
            if type(w) is not list or type(b) is not Value or type(nonlin) is not bool:
                return None
            if any(type(p) is not Value for p in w):
                return None
            lists.append(w)
            spec[-1].append((w, b, nonlin))
            params += w
            params.append(b)
    return _core.MLPPlan(lists, spec, params, _changes)


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


def cross_entropy_loss(
    scores: Iterable[Sequence[Value]], classes: Iterable[SupportsIndex]
) -> Value:
    """Softmax cross-entropy: the mean over rows of ``logsumexp(row) - row[class]``,
    stable for large scores (the row's maximum is subtracted inside the exp)."""
    return _core.cross_entropy_loss(scores, classes)


def l2_penalty(params: Iterable[Value], alpha: float) -> Value:
    """``alpha * sum(p*p for p in params)``, the regularisation of micrograd's demo."""
    return _core.l2_penalty(params, alpha)


def _number(x: Any) -> float:
    """A weight's value: a Value's data, or the number placed among the weights."""
    return x.data if isinstance(x, Value) else float(x)


def _matrix(rows: Any, name: str, n: int, m: int) -> list[list[float]]:
    """rows as n lists of m finite floats (tensors and arrays via tolist()), or ValueError."""
    rows = rows.tolist() if hasattr(rows, "tolist") else rows
    shape_error = ValueError(
        f"load_state_dict: {name} must hold {n} rows of {m} numbers"
        if name.endswith("weight")
        else f"load_state_dict: {name} must hold {m} numbers"
    )
    if not isinstance(rows, Sequence) or isinstance(rows, str) or len(rows) != n:
        raise shape_error
    out = []
    for i, row in enumerate(rows):
        row = row.tolist() if hasattr(row, "tolist") else row
        if not isinstance(row, Sequence) or isinstance(row, str) or len(row) != m:
            raise shape_error
        for j, x in enumerate(row):
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
                where = f"[{i}][{j}]" if name.endswith("weight") else f"[{j}]"
                raise ValueError(
                    f"load_state_dict: {name}{where} is {x!r:.40}, not a finite number"
                )
        out.append([float(x) for x in row])
    return out


def to_torch(model: Module) -> Any:
    """A ``torch.nn.Sequential`` of ``Linear`` (float64) and ``ReLU`` layers with the
    model's weights: ``neurons[i].w[j]`` is ``weight[i][j]``, keys as ``state_dict()``.

    Its outputs equal the model's bit for bit where both compute the same operations in
    the same order: one input per neuron, or exact arithmetic (e.g. weights and inputs
    that are small multiples of a power of two). Otherwise they can differ in the last
    bits, because ``Linear`` adds the bias after the dot product (micrograd starts its sum
    from the bias) and may sum the products in another order. Imports torch.
    """
    import torch

    layers: list[Any] = []
    rng = torch.random.get_rng_state()  # Linear() draws initial weights; overwritten below
    try:
        for _, neurons, relu in model._torch_layout():
            linear = torch.nn.Linear(len(neurons[0].w), len(neurons), dtype=torch.float64)
            layers += [linear, torch.nn.ReLU()] if relu else [linear]
    finally:
        torch.random.set_rng_state(rng)
    seq = torch.nn.Sequential(*layers)
    seq.load_state_dict(
        {k: torch.tensor(v, dtype=torch.float64) for k, v in model.state_dict().items()}
    )
    return seq


def from_torch(seq: Any) -> MLP:
    """The ``MLP`` of a ``torch.nn.Sequential`` shaped as one: ``Linear``, ``ReLU``,
    ``Linear``, ..., ``Linear`` (every Linear with a bias, each one's inputs the previous
    one's outputs). Weights are converted to Python floats (float64). Anything else is a
    ValueError (a TypeError for what is not a Sequential). Python's random state is left
    as it was. Imports torch.
    """
    import torch

    if not isinstance(seq, torch.nn.Sequential):
        raise TypeError(f"from_torch: expected a torch.nn.Sequential, not {type(seq).__name__}")
    mods: list[Any] = list(seq)
    if not mods or len(mods) % 2 == 0:
        raise ValueError(
            "from_torch: an MLP is Linear, ReLU, Linear, ..., Linear; this "
            f"Sequential has {len(mods)} modules"
        )
    outs: list[int] = []
    for i, mod in enumerate(mods):
        want = torch.nn.Linear if i % 2 == 0 else torch.nn.ReLU
        if type(mod) is not want:
            raise ValueError(
                f"from_torch: module {i} is {type(mod).__name__}, not "
                f"{want.__name__} (an MLP is Linear, ReLU, Linear, ..., Linear)"
            )
        if i % 2:
            continue
        linear: Any = mod
        if linear.bias is None:
            raise ValueError(f"from_torch: Linear {i} has no bias; micrograd's neurons have one")
        if outs and linear.in_features != outs[-1]:
            raise ValueError(
                f"from_torch: Linear {i} takes {linear.in_features} inputs but the "
                f"layer before it gives {outs[-1]}"
            )
        outs.append(linear.out_features)
    rng = random.getstate()  # MLP() draws initial weights; they are overwritten below
    try:
        model = MLP(mods[0].in_features, outs)
    finally:
        random.setstate(rng)
    model.load_state_dict(seq.state_dict())
    return model
