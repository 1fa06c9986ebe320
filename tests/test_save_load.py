"""``Module.save`` / ``Module.load``: plain-JSON parameter files.

A round trip restores every parameter bit for bit into a freshly initialised model of
the same shape. Every bad file (another model's, not JSON, wrong format or version,
wrong count, a non-number or non-finite number) raises ValueError and leaves the model
exactly as it was.
"""

from __future__ import annotations

import json
import math
import random
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
from micrograd_cpp import Value, nn

# A module that can be called on inputs (nn.Module itself has no __call__, as micrograd's)
Model = nn.Neuron | nn.Layer | nn.MLP
M = TypeVar("M", bound=nn.Module)

# (id, constructor, number of inputs)
MODELS: list[tuple[str, Callable[[], Model], int]] = [
    ("Neuron(3)", lambda: nn.Neuron(3), 3),
    ("Neuron(2,linear)", lambda: nn.Neuron(2, nonlin=False), 2),
    ("Layer(3,4)", lambda: nn.Layer(3, 4), 3),
    ("Layer(2,1)", lambda: nn.Layer(2, 1), 2),
    ("MLP(3,[4,2])", lambda: nn.MLP(3, [4, 2]), 3),
    ("MLP(2,[16,16,1])", lambda: nn.MLP(2, [16, 16, 1]), 2),
]


def bits(xs: list[float]) -> list[bytes]:
    """Exact identity of floats (tells -0.0 from 0.0)."""
    return [struct.pack("<d", x) for x in xs]


def params_of(model: nn.Module) -> list[float]:
    return [p.data for p in model.parameters()]


def fresh(make: Callable[[], M], seed: int) -> M:
    random.seed(seed)
    return make()


# Awkward numbers a JSON writer/reader could get wrong.
SPECIAL = [-0.0, 5e-324, 1.7976931348623157e308, 0.1, 1 / 3, -2.5e-300, 123456789.123456789]


def perturbed(make: Callable[[], M], seed: int) -> M:
    model = fresh(make, seed)
    for i, p in enumerate(model.parameters()):
        p.data = SPECIAL[i] if i < len(SPECIAL) else p.data * 1.75 + 0.01 * i
    return model


# ---------------------------------------------------------------------------
# Round trip
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("as_path", [False, True], ids=["str", "Path"])
@pytest.mark.parametrize(("name", "make", "nin"), MODELS, ids=[m[0] for m in MODELS])
def test_round_trip_into_fresh_model(
    name: str, make: Callable[[], Model], nin: int, as_path: bool, tmp_path: Path
) -> None:
    src = perturbed(make, seed=1)
    path = tmp_path / "params.json"
    src.save(path if as_path else str(path))
    dst = fresh(make, seed=2)
    assert bits(params_of(dst)) != bits(params_of(src))
    dst.load(path if as_path else str(path))
    assert bits(params_of(dst)) == bits(params_of(src))
    x = [0.25 * (i + 1) for i in range(nin)]
    out_src, out_dst = src(x), dst(x)
    out_src = out_src if isinstance(out_src, list) else [out_src]
    out_dst = out_dst if isinstance(out_dst, list) else [out_dst]
    assert [o.data for o in out_dst] == [o.data for o in out_src]


def test_round_trip_after_training(tmp_path: Path) -> None:
    random.seed(5)
    model = nn.MLP(2, [4, 1])
    opt = nn.Adam(model.parameters(), lr=0.05)
    for _ in range(3):
        # one output neuron: model(x) is a bare Value
        outs = [cast(Value, model([0.5, -1.0])), cast(Value, model([1.0, 2.0]))]
        loss = nn.mse_loss(outs, [1.0, -1.0])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.save(tmp_path / "m.json")
    random.seed(6)
    other = nn.MLP(2, [4, 1])
    other.load(tmp_path / "m.json")
    assert bits(params_of(other)) == bits(params_of(model))


def test_load_restores_the_same_model(tmp_path: Path) -> None:
    random.seed(9)
    model = nn.MLP(3, [4, 2])
    saved = params_of(model)
    model.save(tmp_path / "m.json")
    for p in model.parameters():
        p.data = 42.0
    model.load(tmp_path / "m.json")
    assert bits(params_of(model)) == bits(saved)


def test_load_keeps_parameter_objects(tmp_path: Path) -> None:
    """load writes into the existing Values, so optimizers holding them keep working."""
    random.seed(1)
    model = nn.MLP(2, [3, 1])
    model.save(tmp_path / "m.json")
    before = model.parameters()
    opt = nn.SGD(before, lr=0.5)
    for p in before:
        p.data = 0.0
    model.load(tmp_path / "m.json")
    assert all(a is b for a, b in zip(before, model.parameters(), strict=True))
    for p in before:
        p.grad = 1.0
    expected = [p.data - 0.5 for p in before]
    opt.step()
    assert params_of(model) == expected


def test_integers_in_the_file_load_as_floats(tmp_path: Path) -> None:
    model = nn.Neuron(2)
    model.save(tmp_path / "m.json")
    doc = json.loads((tmp_path / "m.json").read_text())
    doc["parameters"] = [1, -2, 0]
    (tmp_path / "m.json").write_text(json.dumps(doc))
    model.load(tmp_path / "m.json")
    assert params_of(model) == [1.0, -2.0, 0.0]
    assert all(type(x) is float for x in params_of(model))


# ---------------------------------------------------------------------------
# The file is plain JSON
# ---------------------------------------------------------------------------


def test_file_is_plain_json(tmp_path: Path) -> None:
    model = perturbed(lambda: nn.MLP(3, [4, 2]), seed=3)
    path = tmp_path / "m.json"
    model.save(path)
    raw = path.read_bytes()
    text = raw.decode("utf-8")  # text, not a pickle
    assert not raw.startswith(b"\x80")  # pickle protocol 2+ header
    with path.open() as f:
        doc = json.load(f)  # the standard library reads it
    assert isinstance(doc, dict)

    def only_json_types(x: Any) -> bool:
        if isinstance(x, dict):
            return all(isinstance(k, str) and only_json_types(v) for k, v in x.items())
        if isinstance(x, list):
            return all(only_json_types(v) for v in x)
        return x is None or isinstance(x, (str, int, float, bool))

    assert only_json_types(doc)
    # strict JSON (no NaN/Infinity extensions) and it holds the parameters as numbers
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    lists = [v for v in doc.values() if isinstance(v, list) and len(v) == len(model.parameters())]
    assert any(bits(v) == bits(params_of(model)) for v in lists if all(type(x) is float for x in v))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_save_rejects_non_finite_parameters(bad: float, tmp_path: Path) -> None:
    model = nn.Neuron(2)
    model.parameters()[1].data = bad
    path = tmp_path / "m.json"
    with pytest.raises(ValueError):
        model.save(path)
    assert not path.exists()


# ---------------------------------------------------------------------------
# Bad files: ValueError, model unchanged
# ---------------------------------------------------------------------------


def assert_load_fails_unchanged(model: nn.Module, path: Path) -> None:
    before = bits(params_of(model))
    grads_before = [p.grad for p in model.parameters()]
    with pytest.raises(ValueError):
        model.load(path)
    assert bits(params_of(model)) == before
    assert [p.grad for p in model.parameters()] == grads_before


SHAPE_PAIRS: list[tuple[str, Callable[[], nn.Module], Callable[[], nn.Module]]] = [
    ("MLP(3,[4,2])->MLP(3,[2,4])", lambda: nn.MLP(3, [4, 2]), lambda: nn.MLP(3, [2, 4])),
    ("MLP(2,[16,16,1])->MLP(2,[16,1])", lambda: nn.MLP(2, [16, 16, 1]), lambda: nn.MLP(2, [16, 1])),
    ("MLP(2,[3,1])->Neuron(12) (same count)", lambda: nn.MLP(2, [3, 1]), lambda: nn.Neuron(12)),
    ("Layer(3,4)->Layer(4,3) (same count)", lambda: nn.Layer(3, 4), lambda: nn.Layer(4, 3)),
    ("Neuron(3)->Neuron(4)", lambda: nn.Neuron(3), lambda: nn.Neuron(4)),
    ("Layer(2,2)->MLP(2,[2,1])", lambda: nn.Layer(2, 2), lambda: nn.MLP(2, [2, 1])),
    # same parameter count and same per-neuron sizes, but other layers
    ("MLP(2,[2,2])->MLP(2,[4])", lambda: nn.MLP(2, [2, 2]), lambda: nn.MLP(2, [4])),
    ("MLP(3,[3,3])->MLP(3,[6])", lambda: nn.MLP(3, [3, 3]), lambda: nn.MLP(3, [6])),
    ("MLP(2,[4])->MLP(2,[2,2])", lambda: nn.MLP(2, [4]), lambda: nn.MLP(2, [2, 2])),
]


@pytest.mark.parametrize(
    ("label", "make_src", "make_dst"), SHAPE_PAIRS, ids=[s[0] for s in SHAPE_PAIRS]
)
def test_load_into_other_shape_raises_and_leaves_model(
    label: str, make_src: Callable[[], nn.Module], make_dst: Callable[[], nn.Module], tmp_path: Path
) -> None:
    src = fresh(make_src, seed=1)
    path = tmp_path / "src.json"
    src.save(path)
    dst = fresh(make_dst, seed=2)
    assert_load_fails_unchanged(dst, path)


def saved_doc(model: nn.Module, tmp_path: Path) -> dict[str, Any]:
    model.save(tmp_path / "good.json")
    doc: dict[str, Any] = json.loads((tmp_path / "good.json").read_text())
    return doc


def param_key(doc: dict[str, Any], model: nn.Module) -> str:
    """The key under which the saved file lists the parameters (found, not assumed)."""
    want = params_of(model)
    (key,) = [k for k, v in doc.items() if v == want]
    return key


def format_key(doc: dict[str, Any]) -> str:
    (key,) = [k for k in doc if k.lower() == "format"]
    return key


def version_key(doc: dict[str, Any]) -> str:
    (key,) = [k for k in doc if k.lower() == "version"]
    return key


def mutate_param(i: int, value: Any) -> Callable[[dict[str, Any], str], Any]:
    def f(doc: dict[str, Any], pkey: str) -> Any:
        doc[pkey][i] = value
        return doc

    return f


def edit(fn: Callable[[dict[str, Any], str], None]) -> Callable[[dict[str, Any], str], Any]:
    def f(doc: dict[str, Any], pkey: str) -> Any:
        fn(doc, pkey)
        return doc

    return f


# Each mutation takes the good document (and the parameter key) and returns what to write:
# a JSON-able object, or a str written verbatim.
BAD_FILES: list[tuple[str, Callable[[dict[str, Any], str], Any]]] = [
    ("empty file", lambda doc, k: ""),
    ("not JSON", lambda doc, k: "this is not json {"),
    ("truncated JSON", lambda doc, k: json.dumps(doc)[:-10]),
    ("python literal", lambda doc, k: repr({"parameters": doc[k]})),
    ("JSON list", lambda doc, k: doc[k]),
    ("JSON number", lambda doc, k: 3.0),
    ("JSON null", lambda doc, k: None),
    ("empty object", lambda doc, k: {}),
    ("no format key", edit(lambda doc, k: doc.pop(format_key(doc)))),
    ("wrong format", edit(lambda doc, k: doc.__setitem__(format_key(doc), "pickle"))),
    ("format not a string", edit(lambda doc, k: doc.__setitem__(format_key(doc), 1))),
    ("no version", edit(lambda doc, k: doc.pop(version_key(doc)))),
    (
        "next version",
        edit(lambda doc, k: doc.__setitem__(version_key(doc), doc[version_key(doc)] + 1)),
    ),
    ("version 0", edit(lambda doc, k: doc.__setitem__(version_key(doc), 0))),
    ("version true", edit(lambda doc, k: doc.__setitem__(version_key(doc), True))),
    (
        "version as string",
        edit(lambda doc, k: doc.__setitem__(version_key(doc), str(doc[version_key(doc)]))),
    ),
    ("no parameters", edit(lambda doc, k: doc.pop(k))),
    ("parameters not a list", edit(lambda doc, k: doc.__setitem__(k, {"0": 1.0}))),
    ("parameters a string", edit(lambda doc, k: doc.__setitem__(k, "1.0 2.0"))),
    ("one parameter too few", edit(lambda doc, k: doc[k].pop())),
    ("one parameter too many", edit(lambda doc, k: doc[k].append(0.5))),
    ("no parameters at all", edit(lambda doc, k: doc.__setitem__(k, []))),
    ("string", mutate_param(2, "0.5")),
    ("empty string", mutate_param(0, "")),
    ("true", mutate_param(1, True)),
    ("false", mutate_param(3, False)),
    ("null", mutate_param(4, None)),
    ("nested list", mutate_param(0, [0.5])),
    ("object", mutate_param(0, {"x": 0.5})),
    ("NaN", mutate_param(5, math.nan)),
    ("Infinity", mutate_param(6, math.inf)),
    ("-Infinity", mutate_param(0, -math.inf)),
    (
        "1e400 (overflows to inf)",
        lambda doc, k: json.dumps(mutate_param(3, 8765.4321)(doc, k)).replace("8765.4321", "1e400"),
    ),
    ("integer too large for a float", mutate_param(3, 10**400)),
    ("last parameter bad", lambda doc, k: mutate_param(len(doc[k]) - 1, "x")(doc, k)),
]


@pytest.mark.parametrize(("label", "mutate"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_malformed_file_raises_and_leaves_model(
    label: str, mutate: Callable[[dict[str, Any], str], Any], tmp_path: Path
) -> None:
    random.seed(8)
    model = nn.MLP(3, [4, 2])
    doc = saved_doc(model, tmp_path)
    key = param_key(doc, model)
    bad = mutate(doc, key)
    path = tmp_path / "bad.json"
    path.write_text(bad if isinstance(bad, str) else json.dumps(bad))
    # make the model differ from the file, and give it grads, then try the bad file
    for i, p in enumerate(model.parameters()):
        p.data = -0.5 + 0.01 * i
        p.grad = 0.25 * i
    assert_load_fails_unchanged(model, path)


def test_malformed_file_is_checked_before_any_write(tmp_path: Path) -> None:
    """A file whose first parameters are fine but a later one is not changes nothing."""
    random.seed(8)
    model = nn.MLP(3, [4, 2])
    doc = saved_doc(model, tmp_path)
    key = param_key(doc, model)
    doc[key] = [7.0] * (len(doc[key]) - 1) + ["oops"]
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    for p in model.parameters():
        p.data = 1.0
    assert_load_fails_unchanged(model, tmp_path / "bad.json")
    assert params_of(model) == [1.0] * len(model.parameters())


def test_not_valid_utf8_raises_value_error(tmp_path: Path) -> None:
    random.seed(8)
    model = nn.Neuron(2)
    (tmp_path / "bad.json").write_bytes(b"\xff\xfe\x00garbage")
    assert_load_fails_unchanged(model, tmp_path / "bad.json")


def test_values_are_unaffected_by_a_failed_load_into_other_shape(tmp_path: Path) -> None:
    """The forward pass after a failed load is the forward pass before it."""
    random.seed(1)
    nn.MLP(3, [4, 2]).save(tmp_path / "a.json")
    random.seed(2)
    model = nn.MLP(3, [2, 4])
    before = [o.data for o in cast(list[Value], model([1.0, 2.0, 3.0]))]
    with pytest.raises(ValueError):
        model.load(tmp_path / "a.json")
    assert [o.data for o in cast(list[Value], model([1.0, 2.0, 3.0]))] == before
    assert isinstance(model.parameters()[0], Value)
