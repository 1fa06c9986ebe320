"""``micrograd_cpp.viz``: ``trace``, ``draw_dot``, ``render`` and the demo's ``--graph``.

The oracles are micrograd's own ``trace`` and ``draw_dot`` from its trace_graph.ipynb
(copied below, bodies unchanged), micrograd 0.1.0's graphs of the same expressions, and a graph
built by hand here whose data and grads are computed with the chain rule in plain floats.
The DOT text is read back with a small parser of the lines python-graphviz writes, and
record labels are split into fields the way Graphviz does (``\\x`` escapes, ``|`` splits).
"""

from __future__ import annotations

import html
import math
import random
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import graphviz
import micrograd_cpp as mg
import pytest
from conftest import BINARY_OPS, UNARY_OPS
from graphviz import Digraph
from micrograd import nn as mg_nn
from micrograd.engine import Value as MGValue
from micrograd_cpp import nn, viz

CLASSES = [mg.Value, mg.Value32]
HAVE_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAVE_DOT, reason="Graphviz's dot program is not installed")


@pytest.fixture(params=CLASSES, ids=lambda c: c.__name__)
def cls(request: pytest.FixtureRequest) -> Any:
    return request.param


# ---------------------------------------------------------------------------
# micrograd's trace_graph.ipynb, unchanged (the oracle)
# ---------------------------------------------------------------------------
# (type hints added to the signatures; the bodies are micrograd's, line for line)


def trace(root: Any) -> tuple[set[Any], set[tuple[Any, Any]]]:
    nodes, edges = set(), set()

    def build(v: Any) -> None:
        if v not in nodes:
            nodes.add(v)
            for child in v._prev:
                edges.add((child, v))
                build(child)

    build(root)
    return nodes, edges


def draw_dot(root: Any, format: str = "svg", rankdir: str = "LR") -> Digraph:
    """
    format: png | svg | ...
    rankdir: TB (top to bottom graph) | LR (left to right)
    """
    assert rankdir in ["LR", "TB"]
    nodes, edges = trace(root)
    dot = Digraph(format=format, graph_attr={"rankdir": rankdir})  # , node_attr={'rankdir': 'TB'})

    for n in nodes:
        dot.node(
            name=str(id(n)),
            label="{ data %.4f | grad %.4f }" % (n.data, n.grad),  # noqa: UP031
            shape="record",
        )
        if n._op:
            dot.node(name=str(id(n)) + n._op, label=n._op)
            dot.edge(str(id(n)) + n._op, str(id(n)))

    for n1, n2 in edges:
        dot.edge(str(id(n1)), str(id(n2)) + n2._op)

    return dot


# ---------------------------------------------------------------------------
# Reading DOT text back
# ---------------------------------------------------------------------------

_QUOTED = r'"(?:[^"\\]|\\.)*"'
_ID = rf'(?:{_QUOTED}|[^\s"\[\]]+)'
_STMT = re.compile(rf"^\t(?P<name>{_ID}) \[(?P<attrs>.*)\]$")
_EDGE = re.compile(rf"^\t(?P<tail>{_ID}) -> (?P<head>{_ID})$")
_ATTR = re.compile(rf"(\w+)=({_QUOTED}|[^\s\]]+)")


def unquote(token: str) -> str:
    """A DOT ID as Graphviz reads it: quotes removed, ``\\"`` -> ``"``, other escapes kept."""
    if not token.startswith('"'):
        return token
    return re.sub(r"\\(.)", lambda m: '"' if m.group(1) == '"' else m.group(0), token[1:-1])


class Dot:
    """The statements of a DOT text written by python-graphviz."""

    def __init__(self, source: str) -> None:
        lines = source.splitlines()
        assert lines[0] == "digraph {" and lines[-1] == "}", source
        self.graph: dict[str, str] = {}
        self.nodes: dict[str, dict[str, str]] = {}
        self.edges: list[tuple[str, str]] = []
        self.node_statements = 0
        for line in lines[1:-1]:
            if m := _EDGE.match(line):
                self.edges.append((unquote(m["tail"]), unquote(m["head"])))
            elif m := _STMT.match(line):
                attrs = {k: unquote(v) for k, v in _ATTR.findall(m["attrs"])}
                name = unquote(m["name"])
                if name == "graph":
                    self.graph.update(attrs)
                else:
                    self.node_statements += 1
                    self.nodes[name] = attrs
            else:
                raise AssertionError(f"unparsed DOT line {line!r} in\n{source}")

    @property
    def records(self) -> dict[str, list[str]]:
        return {
            k: record_fields(a["label"])
            for k, a in self.nodes.items()
            if a.get("shape") == "record"
        }

    @property
    def ops(self) -> dict[str, str]:
        return {k: a["label"] for k, a in self.nodes.items() if a.get("shape") != "record"}


def record_fields(label: str) -> list[str]:
    """The fields of a record label ``{ f1 | f2 | ... }``: ``\\c`` is a literal c."""
    text = label.strip()
    assert text.startswith("{") and text.endswith("}"), label
    fields, current, chars = [], [], iter(text[1:-1])
    for ch in chars:
        if ch == "\\":
            current.append(next(chars))
        elif ch == "|":
            fields.append("".join(current).strip())
            current = []
        else:
            assert ch not in "{}<>", f"unescaped {ch!r} in record label {label!r}"
            current.append(ch)
    fields.append("".join(current).strip())
    return fields


def svg_nodes(svg: str) -> list[list[str]]:
    """The text lines of each node of an SVG that dot drew, in document order."""
    groups = re.findall(r'<g id="node\d+" class="node">(.*?)</g>', svg, flags=re.S)
    return [[html.unescape(t) for t in re.findall(r">([^<]*)</text>", g)] for g in groups]


def svg_edge_count(svg: str) -> int:
    return len(re.findall(r'<g id="edge\d+" class="edge">', svg))


def fmt(data: float, grad: float) -> list[str]:
    return ["data %.4f" % data, "grad %.4f" % grad]  # noqa: UP031 - micrograd's format


# ---------------------------------------------------------------------------
# A graph built by hand, with its data and grads by the chain rule
# ---------------------------------------------------------------------------


class HandGraph:
    """t = tanh(relu(a*b + c)**2 * k) with a=2, b=-3, c=10, k=0.05, every node named."""

    def __init__(self, V: Any, labelled: bool = True) -> None:
        def lab(name: str) -> dict[str, str]:
            return {"label": name} if labelled else {}

        self.a, self.b = V(2.0, **lab("a")), V(-3.0, **lab("b"))
        self.c, self.k = V(10.0, **lab("c")), V(0.05, **lab("k"))
        self.e = self.a * self.b
        self.d = self.e + self.c
        self.r = self.d.relu()
        self.s = self.r**2
        self.u = self.s * self.k
        self.t = self.u.tanh()
        if labelled:
            for name in "edrsut":
                getattr(self, name).label = name
        self.t.backward()
        # (parent, op, children) exactly as written above
        self.structure = [
            ("e", "*", ("a", "b")),
            ("d", "+", ("e", "c")),
            ("r", "ReLU", ("d",)),
            ("s", "**2", ("r",)),
            ("u", "*", ("s", "k")),
            ("t", "tanh", ("u",)),
        ]
        # data and d(t)/d(node) from the formulas
        a, b, c, k = 2.0, -3.0, 10.0, 0.05
        e = a * b
        d = e + c
        r = max(d, 0.0)
        s = r**2
        u = s * k
        t = math.tanh(u)
        gu = 1 - t**2
        gs, gk = gu * k, gu * s
        gr = gs * 2 * r
        gd = gr * (1.0 if d > 0 else 0.0)
        ge, gc = gd, gd
        ga, gb = ge * b, ge * a
        self.expected = {
            "a": (a, ga),
            "b": (b, gb),
            "c": (c, gc),
            "k": (k, gk),
            "e": (e, ge),
            "d": (d, gd),
            "r": (r, gr),
            "s": (s, gs),
            "u": (u, gu),
            "t": (t, 1.0),
        }

    def value(self, name: str) -> Any:
        return getattr(self, name)

    def uid(self, name: str) -> str:
        return str(id(self.value(name)))


# ---------------------------------------------------------------------------
# trace
# ---------------------------------------------------------------------------

# Expressions micrograd 0.1.0 builds with the same nodes as micrograd_cpp (+ * ** relu,
# numbers becoming leaves, a value used twice); V is the Value class.
SAME_GRAPH: dict[str, Callable[[Any], Any]] = {
    "trace_graph_example": lambda V: (V(1.0) * 2 + 1).relu(),
    "single_leaf": lambda V: V(3.0),
    "add_self": lambda V: (lambda a: a + a)(V(1.5)),
    "mul_self": lambda V: (lambda a: a * a)(V(-1.5)),
    "diamond": lambda V: (lambda a, b: (a + b) * (a * b) + a)(V(2.0), V(-0.5)),
    "pow_relu": lambda V: (lambda a, b: (a**2 + b**3).relu() ** 0.5 * 3.0)(V(1.2), V(0.7)),
    "radd_rmul": lambda V: (lambda a: 2.0 * a + 1.0 + a * a * a)(V(0.3)),
    "sum_of_products": lambda V: sum((V(float(i)) * V(i / 10) for i in range(8)), V(0.5)),
}


@pytest.mark.parametrize("build", list(SAME_GRAPH.values()), ids=list(SAME_GRAPH))
def test_trace_equals_micrograds_trace_on_our_values(cls: Any, build: Callable[[Any], Any]) -> None:
    root = build(cls)
    ref_nodes, ref_edges = trace(root)  # keeps every wrapper alive: the same objects below
    nodes, edges = viz.trace(root)
    assert isinstance(nodes, set) and isinstance(edges, set)
    assert nodes == ref_nodes
    assert edges == ref_edges
    assert root in nodes


@pytest.mark.parametrize("build", list(SAME_GRAPH.values()), ids=list(SAME_GRAPH))
def test_trace_counts_equal_micrograds_on_micrograd_values(
    cls: Any, build: Callable[[Any], Any]
) -> None:
    ref_nodes, ref_edges = trace(build(MGValue))
    nodes, edges = viz.trace(build(cls))
    assert (len(nodes), len(edges)) == (len(ref_nodes), len(ref_edges))
    assert Counter(n._op for n in nodes) == Counter(n._op for n in ref_nodes)


def test_trace_of_hand_graph(cls: Any) -> None:
    g = HandGraph(cls)
    nodes, edges = viz.trace(g.t)
    assert nodes == {g.value(n) for n in g.expected}
    assert edges == {(g.value(c), g.value(p)) for p, _, cs in g.structure for c in cs}


def test_trace_shared_input_gives_one_edge(cls: Any) -> None:
    a = cls(2.0)
    sq = a * a
    out = sq + a
    nodes, edges = viz.trace(out)
    assert nodes == {a, sq, out}
    assert edges == {(a, sq), (sq, out), (a, out)}


def test_trace_of_deep_chain_is_iterative(cls: Any) -> None:
    n = 100_000
    leaf = cls(0.5)
    x = leaf
    for _ in range(n - 1):
        x = x.relu()
    assert sys.getrecursionlimit() < n  # a recursive walk could not do this
    nodes, edges = viz.trace(x, max_nodes=None)
    assert len(nodes) == n
    assert len(edges) == n - 1
    assert leaf in nodes and x in nodes
    assert sum(1 for _, parent in edges if parent is x) == 1


@pytest.mark.parametrize("limit", [1, 5, 9])
def test_trace_max_nodes_exceeded_is_value_error(cls: Any, limit: int) -> None:
    x = cls(1.0)
    for _ in range(9):  # 10 nodes
        x = x.relu()
    with pytest.raises(ValueError, match=rf"max_nodes={limit}\b") as info:
        viz.trace(x, max_nodes=limit)
    assert "more than" in str(info.value)


@pytest.mark.parametrize("limit", [10, 11, None])
def test_trace_max_nodes_not_exceeded(cls: Any, limit: int | None) -> None:
    x = cls(1.0)
    for _ in range(9):  # 10 nodes
        x = x.relu()
    nodes, edges = viz.trace(x, max_nodes=limit)
    assert (len(nodes), len(edges)) == (10, 9)


def test_draw_dot_passes_max_nodes_on(cls: Any) -> None:
    x = cls(1.0)
    for _ in range(9):
        x = x.relu()
    with pytest.raises(ValueError, match="max_nodes=9"):
        viz.draw_dot(x, max_nodes=9)
    assert len(Dot(viz.draw_dot(x, max_nodes=10).source).records) == 10


@pytest.mark.parametrize(
    "make_root",
    # Factories, so that no Value outlives its test in pytest's parameter lists.
    [
        lambda: 1.0,
        lambda: 2,
        lambda: "x",
        lambda: None,
        lambda: [mg.Value(1.0)],
        lambda: MGValue(1.0),
    ],
    ids=["float", "int", "str", "None", "list", "micrograd_Value"],
)
def test_trace_non_value_root_is_type_error(make_root: Callable[[], Any]) -> None:
    root = make_root()
    with pytest.raises(TypeError, match=type(root).__name__):
        viz.trace(root)
    with pytest.raises(TypeError):
        viz.draw_dot(root)


# ---------------------------------------------------------------------------
# draw_dot
# ---------------------------------------------------------------------------


def test_mg_draw_dot_is_viz_draw_dot() -> None:
    assert mg.draw_dot is mg.viz.draw_dot
    assert mg.viz is viz


@pytest.mark.parametrize("fmt_name", ["svg", "png", "pdf"])
def test_draw_dot_returns_digraph(cls: Any, fmt_name: str) -> None:
    dot = viz.draw_dot(cls(1.0) * 2, format=fmt_name)
    assert isinstance(dot, graphviz.Digraph)
    assert dot.format == fmt_name


def test_draw_dot_default_format_and_rankdir(cls: Any) -> None:
    dot = viz.draw_dot(cls(1.0) + 1)
    assert dot.format == "svg"
    assert Dot(dot.source).graph == {"rankdir": "LR"}


@pytest.mark.parametrize("rankdir", ["LR", "TB"])
def test_draw_dot_rankdir(cls: Any, rankdir: str) -> None:
    dot = viz.draw_dot(cls(1.0) + 1, rankdir=rankdir)
    assert Dot(dot.source).graph == {"rankdir": rankdir}


@pytest.mark.parametrize("rankdir", ["RL", "BT", "lr", "tb", "", " LR", None, 1])
def test_draw_dot_bad_rankdir_is_value_error(cls: Any, rankdir: Any) -> None:
    with pytest.raises(ValueError, match="rankdir"):
        viz.draw_dot(cls(1.0) + 1, rankdir=rankdir)


def test_draw_dot_hand_graph_structure(cls: Any) -> None:
    g = HandGraph(cls)
    dot = Dot(viz.draw_dot(g.t).source)
    # one record per value, with label, data and grad
    assert dot.records == {
        g.uid(n): [n, *fmt(data, grad)] for n, (data, grad) in g.expected.items()
    }
    # one op node per non-leaf value, labelled with its op
    assert dot.ops == {g.uid(p) + op: op for p, op, _ in g.structure}
    assert dot.node_statements == 10 + 6
    # edges: input -> op of the consumer, op -> its value; each once
    expected_edges = [(g.uid(c), g.uid(p) + op) for p, op, cs in g.structure for c in cs]
    expected_edges += [(g.uid(p) + op, g.uid(p)) for p, op, _ in g.structure]
    assert len(expected_edges) == 9 + 6
    assert len(dot.edges) == 15
    assert Counter(dot.edges) == Counter(expected_edges)
    # a few by hand
    assert (g.uid("a"), g.uid("e") + "*") in dot.edges
    assert (g.uid("k"), g.uid("u") + "*") in dot.edges
    assert (g.uid("d"), g.uid("r") + "ReLU") in dot.edges
    assert (g.uid("s") + "**2", g.uid("s")) in dot.edges
    assert (g.uid("u"), g.uid("t") + "tanh") in dot.edges
    assert (g.uid("a"), g.uid("d") + "+") not in dot.edges


def test_draw_dot_without_labels_has_two_fields(cls: Any) -> None:
    g = HandGraph(cls, labelled=False)
    dot = Dot(viz.draw_dot(g.t).source)
    assert dot.records == {g.uid(n): fmt(data, grad) for n, (data, grad) in g.expected.items()}


def test_draw_dot_cleared_label_is_not_drawn(cls: Any) -> None:
    a = cls(1.5, label="a")
    out = a * 2
    out.label = "out"
    out.label = ""
    dot = Dot(viz.draw_dot(out).source)
    assert dot.records[str(id(out))] == fmt(3.0, 0.0)
    assert dot.records[str(id(a))] == ["a", *fmt(1.5, 0.0)]


def test_draw_dot_labels_set_through_prev(cls: Any) -> None:
    out = (cls(2.0) * 3.0).relu()
    (prod,) = out._prev
    prod.label = "prod"
    del prod
    dot = Dot(viz.draw_dot(out).source)
    assert sorted(f[0] for f in dot.records.values() if len(f) == 3) == ["prod"]


# Each op micrograd_cpp has, the label its op node must show, and whether it reads b.
ALL_OPS: list[tuple[str, bool, Callable[[Any, Any], Any]]] = [
    *[(op.label, True, op.fn) for op in BINARY_OPS.values()],
    *[(op.label, False, op.on_first) for op in UNARY_OPS.values()],
    ("**2", False, lambda a, b: a**2),
    ("**0.5", False, lambda a, b: a**0.5),
    ("**-1", False, lambda a, b: a**-1),
    ("neg", False, lambda a, b: -a),
]


@pytest.mark.parametrize(("op", "binary", "build"), ALL_OPS, ids=[op for op, _, _ in ALL_OPS])
def test_draw_dot_op_node_label(
    cls: Any, op: str, binary: bool, build: Callable[[Any, Any], Any]
) -> None:
    a, b = cls(1.5), cls(0.5)
    out = build(a, b)
    uid = str(id(out))
    dot = Dot(viz.draw_dot(out).source)
    assert dot.ops == {uid + op: op}
    inputs = [str(id(a)), str(id(b))] if binary else [str(id(a))]
    assert set(dot.records) == {uid, *inputs}
    assert Counter(dot.edges) == Counter([(i, uid + op) for i in inputs] + [(uid + op, uid)])


@needs_dot
def test_every_op_renders(cls: Any) -> None:
    a, b = cls(1.5, label="a"), cls(0.5, label="b")
    terms = [build(a, b) for _, _, build in ALL_OPS]
    root = terms[0]
    for t in terms[1:]:
        root = root + t
    svg = viz.draw_dot(root, max_nodes=None).pipe(format="svg").decode()
    op_texts = Counter(t[0] for t in svg_nodes(svg) if len(t) == 1)
    expected = Counter(op for op, _, _ in ALL_OPS) + Counter({"+": len(ALL_OPS) - 1})
    assert op_texts == expected


LABELS_WITH_RECORD_CHARS = ["a|b", "{x}", "<port>", "a|b{c}<d>", "|{}<>", "x\\|y", 'q"\\', "}{"]


@pytest.mark.parametrize("text", LABELS_WITH_RECORD_CHARS)
def test_record_characters_in_labels_are_escaped(cls: Any, text: str) -> None:
    a = cls(2.0, label=text)
    out = a * a
    out.label = text
    dot = viz.draw_dot(out)
    records = Dot(dot.source).records
    assert records == {str(id(a)): [text, *fmt(2.0, 0.0)], str(id(out)): [text, *fmt(4.0, 0.0)]}
    if HAVE_DOT:  # dot parses it into three fields: the label, data, grad
        svg = dot.pipe(format="svg").decode()
        assert sorted(t for t in svg_nodes(svg) if len(t) > 1) == sorted(
            [[text, *fmt(2.0, 0.0)], [text, *fmt(4.0, 0.0)]]
        )


# ---------------------------------------------------------------------------
# micrograd's draw_dot on our values, and against micrograd
# ---------------------------------------------------------------------------


def test_micrograd_draw_dot_works_on_our_values(cls: Any) -> None:
    g = HandGraph(cls)
    theirs = Dot(draw_dot(g.t).source)
    ours = Dot(viz.draw_dot(g.t).source)
    assert theirs.graph == ours.graph == {"rankdir": "LR"}
    assert theirs.node_statements == ours.node_statements == 16
    assert len(theirs.edges) == len(ours.edges) == 15
    assert Counter(theirs.edges) == Counter(ours.edges)
    assert theirs.ops == ours.ops
    # the same records once our label field is dropped
    assert theirs.records == {k: f[1:] for k, f in ours.records.items()}
    assert theirs.records == {g.uid(n): fmt(*dg) for n, dg in g.expected.items()}


@pytest.mark.parametrize("build", list(SAME_GRAPH.values()), ids=list(SAME_GRAPH))
def test_draw_dot_matches_micrograd_draw_dot_on_micrograd(
    cls: Any, build: Callable[[Any], Any]
) -> None:
    ref_root, root = build(MGValue), build(cls)
    ref_root.backward()
    root.backward()
    theirs = Dot(draw_dot(ref_root).source)
    ours = Dot(viz.draw_dot(root).source)
    assert ours.node_statements == theirs.node_statements
    assert len(ours.edges) == len(theirs.edges)
    assert Counter(ours.ops.values()) == Counter(theirs.ops.values())
    if cls is mg.Value:  # float32 may differ in the 4th decimal
        assert Counter(map(tuple, ours.records.values())) == Counter(
            map(tuple, theirs.records.values())
        )


def test_trace_graph_notebook_neuron(cls: Any) -> None:
    # trace_graph.ipynb's "simple 2D neuron", built by micrograd and by micrograd_cpp
    random.seed(1337)
    ref = mg_nn.Neuron(2)([MGValue(1.0), MGValue(-2.0)])
    ref.backward()
    random.seed(1337)
    ours = nn.Neuron(2)([mg.Value(1.0), mg.Value(-2.0)])
    ours.backward()
    theirs_dot, ours_dot = Dot(draw_dot(ref).source), Dot(viz.draw_dot(ours).source)
    assert ours_dot.node_statements == theirs_dot.node_statements == 10 + 5
    assert len(ours_dot.edges) == len(theirs_dot.edges) == 9 + 5
    assert Counter(ours_dot.ops.values()) == Counter(theirs_dot.ops.values())
    assert Counter(map(tuple, ours_dot.records.values())) == Counter(
        map(tuple, theirs_dot.records.values())
    )


# ---------------------------------------------------------------------------
# render
# ---------------------------------------------------------------------------

MAGIC = {"svg": (b"<?xml", b"<svg"), "png": (b"\x89PNG\r\n\x1a\n",)}


@needs_dot
@pytest.mark.parametrize("fmt_name", list(MAGIC))
def test_render_writes_file(cls: Any, tmp_path: Path, fmt_name: str) -> None:
    g = HandGraph(cls)
    written = viz.render(g.t, tmp_path / "g", format=fmt_name)
    assert Path(written) == tmp_path / f"g.{fmt_name}"
    content = Path(written).read_bytes()
    assert content.startswith(MAGIC[fmt_name])
    if fmt_name == "svg":
        svg = content.decode()
        assert sorted(map(tuple, (t for t in svg_nodes(svg) if len(t) == 3))) == sorted(
            (n, *fmt(*dg)) for n, dg in g.expected.items()
        )
        assert svg_edge_count(svg) == 15


@needs_dot
def test_render_accepts_str_path_and_rankdir(tmp_path: Path) -> None:
    written = viz.render(mg.Value(1.0) * 2, str(tmp_path / "s"), format="svg", rankdir="TB")
    assert written == str(tmp_path / "s.svg")
    assert Path(written).read_bytes().lstrip().startswith((b"<?xml", b"<svg"))


@pytest.mark.parametrize("as_str", [False, True], ids=["Path", "str"])
def test_render_without_dot_writes_source_and_warns(
    cls: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_str: bool
) -> None:
    monkeypatch.setattr("micrograd_cpp.viz.shutil.which", lambda *args, **kwargs: None)
    g = HandGraph(cls)
    path: Any = str(tmp_path / "g") if as_str else tmp_path / "g"
    with pytest.warns(RuntimeWarning) as record:
        written = viz.render(g.t, path, format="svg")
    assert written == str(tmp_path / "g.dot")
    assert Path(written).read_text(encoding="utf-8") == viz.draw_dot(g.t).source
    assert not (tmp_path / "g.svg").exists()
    assert len(record) == 1
    message = str(record[0].message)
    assert "dot" in message
    assert "install" in message.lower()
    assert "graphviz" in message.lower()


# ---------------------------------------------------------------------------
# python -m micrograd_cpp.demo --graph
# ---------------------------------------------------------------------------


@needs_dot
def test_demo_graph_option(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "micrograd_cpp.demo",
            "--steps",
            "1",
            "--graph",
            str(tmp_path / "n"),
            "--output",
            str(tmp_path / "m.png"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    svg = (tmp_path / "n.svg").read_text(encoding="utf-8")
    assert svg.lstrip().startswith(("<?xml", "<svg"))
    nodes = svg_nodes(svg)
    by_label = {t[0]: t for t in nodes if len(t) == 3}
    assert set(by_label) == {"w1", "w2", "b", "x1", "x2", "out"}
    # relu(w1*x1 + w2*x2 + b) on x = (2, -1), after out.backward()
    assert by_label["x1"][1] == "data 2.0000"
    assert by_label["x2"][1] == "data -1.0000"
    assert by_label["b"][1] == "data 0.0000"
    assert by_label["out"][2] == "grad 1.0000"
    # micrograd's neuron graph: 10 values (4 unlabelled), 5 ops, 9 + 5 edges
    assert sum(1 for t in nodes if len(t) == 2) == 4
    assert Counter(t[0] for t in nodes if len(t) == 1) == Counter({"*": 2, "+": 2, "ReLU": 1})
    assert svg_edge_count(svg) == 14
