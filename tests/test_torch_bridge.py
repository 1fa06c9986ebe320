"""The way out to PyTorch: ``nn.to_torch`` / ``nn.from_torch`` and ``state_dict`` /
``load_state_dict`` with PyTorch's key names, checked against PyTorch itself (and
micrograd, for the model's outputs).

Outputs agree bit for bit where both compute the same operations in the same order: with
exact arithmetic (weights and inputs that are small multiples of 1/8), or one input per
neuron. Otherwise PyTorch's ``Linear`` adds the bias after the dot product, where
micrograd starts its sum from the bias, so they agree to a relative 1e-12.
"""

from __future__ import annotations

import json
import math
import random
import struct
from typing import Any

import pytest
from micrograd import nn as mgnn
from micrograd.engine import Value as MGValue
from micrograd_cpp import Value, nn

torch = pytest.importorskip("torch")


def bits(xs: list[float]) -> list[bytes]:
    return [struct.pack("<d", x) for x in xs]


def outputs(model: Any, x: list[float]) -> list[float]:
    out = model(x)
    return [v.data for v in (out if isinstance(out, list) else [out])]


def torch_outputs(seq: Any, x: list[float]) -> list[float]:
    with torch.no_grad():
        return list(seq(torch.tensor(x, dtype=torch.float64)).tolist())


def dyadic(model: nn.Module, rng: random.Random) -> None:
    """Weights that are multiples of 1/8 in [-1, 1]: every product and sum below is exact."""
    for p in model.parameters():
        p.data = rng.randint(-8, 8) / 8


def test_to_torch_structure_and_weights() -> None:
    random.seed(1)
    model = nn.MLP(3, [4, 4, 2])
    seq = nn.to_torch(model)
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert [(m.in_features, m.out_features) for m in seq[::2]] == [(3, 4), (4, 4), (4, 2)]
    for linear, layer in zip(seq[::2], model.layers, strict=True):
        assert linear.weight.dtype == torch.float64
        for i, n in enumerate(layer.neurons):  # neurons[i].w[j] is weight[i][j]
            assert bits(linear.weight[i].tolist()) == bits([w.data for w in n.w])
            assert bits([linear.bias[i].item()]) == bits([n.b.data])


def test_to_torch_leaves_torch_rng_alone() -> None:
    state = torch.random.get_rng_state()
    nn.to_torch(nn.MLP(2, [3, 1]))
    assert torch.equal(torch.random.get_rng_state(), state)


@pytest.mark.parametrize("shape", [[4, 4, 2], [16, 16, 1], [1]])
def test_outputs_bit_for_bit_with_exact_arithmetic(shape: list[int]) -> None:
    rng = random.Random(2)
    model = nn.MLP(3, shape)
    dyadic(model, rng)
    seq = nn.to_torch(model)
    for _ in range(20):
        x = [rng.randint(-16, 16) / 8 for _ in range(3)]
        assert bits(torch_outputs(seq, x)) == bits(outputs(model, x))


def test_outputs_bit_for_bit_with_one_input_per_neuron() -> None:
    random.seed(3)
    model = nn.MLP(1, [1, 1, 1])
    seq = nn.to_torch(model)
    for x in (0.3, -1.7, 2.5, 1e-3):
        assert bits(torch_outputs(seq, [x])) == bits(outputs(model, [x]))


def test_outputs_close_to_micrograd_with_random_weights() -> None:
    random.seed(4)
    model = nn.MLP(2, [16, 16, 1])
    random.seed(4)
    theirs = mgnn.MLP(2, [16, 16, 1])
    seq = nn.to_torch(model)
    for x in ([0.5, -1.0], [1.5, 0.25], [-2.0, 2.0]):
        mg_out = theirs([MGValue(xi) for xi in x]).data
        assert torch_outputs(seq, x) == pytest.approx([mg_out], rel=1e-12)
        assert outputs(model, x) == pytest.approx([mg_out], rel=1e-12)


def test_neuron_and_layer_are_one_layer() -> None:
    random.seed(5)
    for module, n_out in ((nn.Neuron(3), 1), (nn.Neuron(3, nonlin=False), 1), (nn.Layer(3, 2), 2)):
        dyadic(module, random.Random(6))
        sd = module.state_dict()
        assert list(sd) == ["0.weight", "0.bias"] and len(sd["0.weight"]) == n_out
        seq = nn.to_torch(module)
        assert len(seq) == (2 if getattr(module, "nonlin", True) else 1)
        x = [0.5, -1.25, 2.0]
        assert bits(torch_outputs(seq, x)) == bits(outputs(module, x))


def test_from_torch_round_trip() -> None:
    random.seed(7)
    model = nn.MLP(3, [5, 2])
    back = nn.from_torch(nn.to_torch(model))
    assert repr(back) == repr(model)
    assert bits([p.data for p in back.parameters()]) == bits([p.data for p in model.parameters()])


def test_from_torch_of_a_torch_model() -> None:
    torch.manual_seed(0)
    seq = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    random.seed(8)
    rng_state = random.getstate()
    model = nn.from_torch(seq)
    assert random.getstate() == rng_state  # Python's RNG untouched
    assert repr(model) == repr(nn.MLP(2, [8, 1]))
    # float32 weights become the same numbers as float64
    assert [p.data for p in model.layers[0].neurons[0].w] == seq[0].weight[0].tolist()
    x = [0.25, -0.75]
    assert outputs(model, x) == pytest.approx(torch_outputs(seq.double(), x), rel=1e-12)


def bad_sequentials() -> dict[str, tuple[Any, str]]:
    L, R = torch.nn.Linear, torch.nn.ReLU
    return {
        "empty": (torch.nn.Sequential(), "0 modules"),
        "ends with ReLU": (torch.nn.Sequential(L(2, 3), R()), "2 modules"),
        "Tanh": (torch.nn.Sequential(L(2, 3), torch.nn.Tanh(), L(3, 1)), "module 1 is Tanh"),
        "two Linear": (torch.nn.Sequential(L(2, 3), L(3, 3), L(3, 1)), "module 1 is Linear"),
        "no bias": (torch.nn.Sequential(L(2, 3, bias=False)), "no bias"),
        "sizes": (torch.nn.Sequential(L(2, 3), R(), L(4, 1)), "takes 4 inputs"),
        "nested": (torch.nn.Sequential(torch.nn.Sequential(L(2, 1))), "module 0 is Sequential"),
    }


@pytest.mark.parametrize("name", list(bad_sequentials()))
def test_from_torch_rejects_other_shapes(name: str) -> None:
    seq, message = bad_sequentials()[name]
    with pytest.raises(ValueError, match=message):
        nn.from_torch(seq)


def test_from_torch_needs_a_sequential() -> None:
    with pytest.raises(TypeError, match="torch.nn.Sequential"):
        nn.from_torch(torch.nn.Linear(2, 1))


def test_state_dict_loads_in_torch_and_back() -> None:
    random.seed(9)
    model = nn.MLP(2, [3, 1])
    sd = model.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert json.loads(json.dumps(sd)) == sd  # plain data
    seq = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    seq.load_state_dict({k: torch.tensor(v) for k, v in sd.items()})  # PyTorch's float32
    assert seq[2].weight[0].tolist() == pytest.approx(sd["2.weight"][0], rel=1e-7)
    seq.double().load_state_dict({k: torch.tensor(v, dtype=torch.float64) for k, v in sd.items()})
    assert seq[2].weight.tolist() == sd["2.weight"]
    # and the other way: PyTorch's state_dict (tensors) into another model
    other = nn.MLP(2, [3, 1])
    other.load_state_dict(seq.state_dict())
    assert bits([p.data for p in other.parameters()]) == bits([p.data for p in model.parameters()])


def bad_state_dicts(sd: dict[str, Any]) -> dict[str, tuple[Any, str]]:
    def changed(**items: Any) -> dict[str, Any]:
        out = dict(sd)
        for k, v in items.items():
            out[k.replace("_", ".", 1)] = v
        return out

    w0 = sd["0.weight"]
    missing = dict(sd)
    del missing["2.bias"]
    return {
        "not a mapping": ([1, 2], "mapping"),
        "missing key": (missing, "missing \\['2.bias'\\]"),
        "extra key": ({**sd, "4.weight": [[0.0]]}, "unexpected \\['4.weight'\\]"),
        "key named otherwise": ({**missing, "2.b": [0.0]}, "keys must be"),
        "too few rows": (changed(**{"0_weight": w0[:-1]}), "0.weight must hold 3 rows of 2"),
        "row too long": (changed(**{"0_weight": [r + [0.0] for r in w0]}), "3 rows of 2"),
        "bias too short": (changed(**{"0_bias": [0.0, 0.0]}), "0.bias must hold 3 numbers"),
        "weight flat": (changed(**{"2_weight": [0.1, 0.2, 0.3]}), "2.weight must hold 1 rows"),
        "nan": (changed(**{"2_bias": [math.nan]}), "2.bias\\[0\\] is nan, not a finite"),
        "inf": (changed(**{"0_weight": [[math.inf, 0.0]] + w0[1:]}), "0.weight\\[0\\]\\[0\\]"),
        "string": (changed(**{"2_bias": ["0.5"]}), "'0.5', not a finite number"),
        "bool": (changed(**{"2_bias": [True]}), "True, not a finite number"),
        "string row": (changed(**{"0_weight": ["ab", "cd", "ef"]}), "3 rows of 2"),
    }


@pytest.mark.parametrize(
    "name",
    list(
        bad_state_dicts(
            {"0.weight": [[0.0] * 2] * 3, "0.bias": [0.0] * 3, "2.weight": [[0.0]], "2.bias": [0.0]}
        )
    ),
)
def test_load_state_dict_rejects_bad_input_and_changes_nothing(name: str) -> None:
    random.seed(10)
    model = nn.MLP(2, [3, 1])
    before = bits([p.data for p in model.parameters()])
    sd = model.state_dict()
    bad, message = bad_state_dicts(sd)[name]
    with pytest.raises(ValueError, match=message):
        model.load_state_dict(bad)
    assert bits([p.data for p in model.parameters()]) == before


def test_a_layer_mixing_relu_and_linear_has_no_torch_form() -> None:
    layer = nn.Layer(2, 2)
    layer.neurons[1].nonlin = False
    with pytest.raises(ValueError, match="mixes ReLU and linear"):
        layer.state_dict()
    with pytest.raises(ValueError, match="mixes ReLU and linear"):
        nn.to_torch(layer)


def test_a_plain_module_has_no_torch_form() -> None:
    with pytest.raises(TypeError, match="not a Neuron, Layer or MLP"):
        nn.Module().state_dict()


def test_number_weights_are_read_and_written() -> None:
    n = nn.Neuron(2)
    w: list[Any] = n.w
    w[0] = 0.5  # a constant among the weights, as micrograd allows
    assert n.state_dict()["0.weight"] == [[0.5, w[1].data]]
    n.load_state_dict({"0.weight": [[0.25, 1.0]], "0.bias": [2.0]})
    assert w[0] == 0.25 and isinstance(w[1], Value) and w[1].data == 1.0 and n.b.data == 2.0
