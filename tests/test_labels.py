"""``Value(data, label=...)``: the node names that ``draw_dot`` shows.

A label belongs to the C++ node, not to the Python wrapper: it must survive the wrapper
being dropped and re-created through ``_prev``, and it must be freed (and never leak into
a reused arena slot) when the node dies. Expected values are the strings written, the
type names of the rejected arguments, and node counts of the graphs built here.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable
from typing import Any

import micrograd_cpp as mg
import pytest
from conftest import UNARY_OPS, live

CLASSES = [mg.Value, mg.Value32]
DTYPE = {mg.Value: "float64", mg.Value32: "float32"}
BULK = 100_000


@pytest.fixture(params=CLASSES, ids=lambda c: c.__name__)
def cls(request: pytest.FixtureRequest) -> Any:
    return request.param


def capacity(cls: Any) -> int:
    gc.collect()
    stats: dict[str, int] = mg.arena_stats(dtype=DTYPE[cls])
    return stats["capacity"]


# Every kind of node: a leaf and the result of each op (two inputs a=1.5, b=-0.5).
NODES: dict[str, Callable[[Any, Any], Any]] = {
    "leaf": lambda a, b: a,
    "add": lambda a, b: a + b,
    "mul_num": lambda a, b: a * 2,
    "sub": lambda a, b: a - b,
    "div": lambda a, b: a / b,
    "neg": lambda a, b: -a,
    "pow": lambda a, b: a**2,
    **{name: op.on_first for name, op in UNARY_OPS.items()},
}


@pytest.mark.parametrize("make", list(NODES.values()), ids=list(NODES))
def test_label_defaults_to_empty_string(cls: Any, make: Callable[[Any, Any], Any]) -> None:
    node = make(cls(1.5), cls(-0.5))
    assert node.label == ""
    assert type(node.label) is str


def test_label_from_constructor(cls: Any) -> None:
    v = cls(2.0, label="a")
    assert v.label == "a"
    assert v.data == 2.0
    assert cls(2.0, label="").label == ""


@pytest.mark.parametrize("make", list(NODES.values()), ids=list(NODES))
def test_label_writable_on_any_node(cls: Any, make: Callable[[Any, Any], Any]) -> None:
    a, b = cls(1.5, label="a"), cls(-0.5, label="b")
    node = make(a, b)
    node.label = "n"
    assert node.label == "n"
    node.label = "m"  # relabel
    assert node.label == "m"
    node.data = 4.0  # unrelated writes keep it
    node.grad = 1.0
    assert node.label == "m"
    if node is not a:  # the inputs keep their own labels
        assert (a.label, b.label) == ("a", "b")


@pytest.mark.parametrize(
    "text",
    ["x", "w₁ ✓", "a|b{c}<d>", 'q"\\', "a\0b", "  spaced  ", "x" * 10_000],
    ids=["ascii", "unicode", "record_chars", "quote_backslash", "nul", "spaces", "long"],
)
def test_label_round_trips_any_str(cls: Any, text: str) -> None:
    v = cls(1.0, label=text)
    assert v.label == text
    w = v * v
    w.label = text
    assert w.label == text


def test_labels_are_per_node_and_per_dtype() -> None:
    a, b = mg.Value(1.0, label="a"), mg.Value(1.0, label="b")
    a32, b32 = mg.Value32(1.0, label="a32"), mg.Value32(1.0, label="b32")
    assert [v.label for v in (a, b, a32, b32)] == ["a", "b", "a32", "b32"]
    a.label = "A"
    assert [v.label for v in (a, b, a32, b32)] == ["A", "b", "a32", "b32"]


def test_empty_string_clears_label(cls: Any) -> None:
    v = cls(1.0, label="a")
    v.label = ""
    assert v.label == ""
    op = v + 1.0
    op.label = "sum"
    op.label = ""
    assert op.label == ""
    op.label = "again"  # can be set again after clearing
    assert op.label == "again"


def test_label_survives_wrapper_drop_and_refetch(cls: Any) -> None:
    a = cls(2.0, label="a")
    h = a * 3.0
    h.label = "h"
    out = h + 1.0
    out.label = "out"
    base = live(DTYPE[cls])
    del a, h
    gc.collect()
    assert live(DTYPE[cls]) == base  # the nodes live on inside `out`'s graph
    (hh,) = [p for p in out._prev if p._op == "*"]
    assert (hh.label, hh.data) == ("h", 6.0)
    (aa,) = [p for p in hh._prev if p.data == 2.0]
    assert aa.label == "a"
    (one,) = [p for p in out._prev if p._op == ""]
    assert one.label == ""  # the number 1.0 became an unlabelled leaf
    # a label written through a re-fetched wrapper sticks too
    hh.label = "h2"
    del hh, aa
    gc.collect()
    (again,) = [p for p in out._prev if p._op == "*"]
    assert again.label == "h2"


@pytest.mark.parametrize("args", [(1, "a"), (1.0, "ab")], ids=["int", "float"])
def test_second_argument_is_micrograds_children_not_a_label(
    cls: Any, args: tuple[Any, ...]
) -> None:
    # Value(data, _children=(), _op='', label=''), the lecture's order: a str there is a
    # sequence of children, which are not values
    with pytest.raises(TypeError, match=r"_children\[0\]"):
        cls(*args)
    empty = cls(1.0, "")  # no children and no op: a plain leaf, as micrograd makes it
    assert (empty._op, empty._prev, empty.label) == ("", set(), "")
    assert cls(1.0, (), "", "a").label == "a"


BAD_LABELS = [
    (1, "int"),
    (1.5, "float"),
    (None, "NoneType"),
    (True, "bool"),
    (b"a", "bytes"),
    (["a"], "list"),
    (("a",), "tuple"),
]


@pytest.mark.parametrize(("bad", "type_name"), BAD_LABELS, ids=[n for _, n in BAD_LABELS])
def test_non_str_label_in_constructor_is_type_error(cls: Any, bad: Any, type_name: str) -> None:
    with pytest.raises(TypeError, match=rf"\b{type_name}\b"):
        cls(1.0, label=bad)


def test_rejected_labels_leak_no_node(cls: Any) -> None:
    base = live(DTYPE[cls])
    for bad, _ in BAD_LABELS:
        with pytest.raises(TypeError):
            cls(1.0, label=bad)
    assert live(DTYPE[cls]) == base


@pytest.mark.parametrize(("bad", "type_name"), BAD_LABELS, ids=[n for _, n in BAD_LABELS])
def test_non_str_label_in_setter_is_type_error(cls: Any, bad: Any, type_name: str) -> None:
    v = cls(1.0, label="keep")
    op = v * 2.0
    for node, before in ((v, "keep"), (op, "")):
        with pytest.raises(TypeError, match=rf"\b{type_name}\b"):
            node.label = bad
        assert node.label == before  # unchanged


def test_value_as_label_is_type_error_naming_its_type(cls: Any) -> None:
    with pytest.raises(TypeError, match=rf"\b{cls.__name__}\b"):
        cls(1.0, label=cls(2.0))


def test_unencodable_str_label_is_a_clear_error(cls: Any) -> None:
    # A lone surrogate is a str with no UTF-8 form; Python's own encoders reject it with
    # UnicodeEncodeError (a ValueError). The label stays as it was and no node leaks.
    base = live(DTYPE[cls])
    with pytest.raises(ValueError):
        cls(1.0, label="\ud800")
    assert live(DTYPE[cls]) == base
    v = cls(1.0, label="keep")
    with pytest.raises(ValueError):
        v.label = "\ud800"
    assert v.label == "keep"


def test_labelled_nodes_are_freed(cls: Any) -> None:
    base = live(DTYPE[cls])
    leaves = [cls(float(i), label=f"x{i}") for i in range(100)]
    ops = [(x * 2.0).relu() for x in leaves]  # 2 nodes (a leaf for 2.0, the product) + relu
    for i in range(len(ops)):
        ops[i].label = f"y{i}"
        next(iter(ops[i]._prev)).label = f"p{i}"  # and the product inside
    assert live(DTYPE[cls]) == base + 100 * 4
    del leaves
    assert live(DTYPE[cls]) == base + 100 * 4  # still held by the ops
    del ops
    assert live(DTYPE[cls]) == base


def test_labelled_bulk_reuses_slots(cls: Any) -> None:
    base = live(DTYPE[cls])

    def stats() -> dict[str, int]:
        return mg.arena_stats(dtype=DTYPE[cls])

    capacities = []
    for _ in range(3):
        nodes = [cls(1.0, label=f"n{i}") for i in range(BULK)]
        assert stats()["live"] == base + BULK  # no garbage to collect: exact without gc
        del nodes
        assert stats()["live"] == base
        capacities.append(stats()["capacity"])
    assert capacities[0] >= BULK
    assert capacities[1] == capacities[0]
    assert capacities[2] == capacities[0]


def test_freed_label_does_not_reappear_in_reused_slot(cls: Any) -> None:
    n = 1000
    labelled = [cls(1.0, label="stale") for _ in range(n)]
    ops = [x + 1.0 for x in labelled]
    for i in range(n):
        ops[i].label = "stale-op"
    cap = capacity(cls)
    del labelled, ops
    gc.collect()
    # as many new nodes as were freed (3n), so they land in the freed slots
    fresh = [cls(2.0) for _ in range(3 * n // 2)]
    fresh_ops = [x * x for x in fresh]
    assert capacity(cls) == cap  # the slots were reused, not new ones allocated
    assert {x.label for x in fresh} == {""}
    assert {x.label for x in fresh_ops} == {""}


def test_error_message_says_label_must_be_str(cls: Any) -> None:
    with pytest.raises(TypeError) as info:
        cls(1.0).label = 3
    assert re.search(r"\bstr\b", str(info.value))
    assert "label" in str(info.value)
