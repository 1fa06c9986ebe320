"""Draw a computation graph with Graphviz: micrograd's ``trace`` and ``draw_dot``.

``draw_dot(root)`` returns a ``graphviz.Digraph`` like the one in micrograd's
``trace_graph.ipynb``: a record per value (label, data, grad) and a small node per
operation. It needs the ``graphviz`` Python package (``pip install "micrograd-cpp[viz]"``);
rendering it to SVG/PNG also needs Graphviz's ``dot`` program (Debian: ``apt-get install
graphviz``). ``render`` writes a file, or the DOT source when ``dot`` is missing.

Both walk the graph with an explicit stack, so graphs of any depth can be traced;
``max_nodes`` stops a drawing that would be too large to look at.
"""

from __future__ import annotations

import os
import shutil
import warnings
from typing import TYPE_CHECKING

from .engine import Value, Value32

if TYPE_CHECKING:
    import graphviz

AnyValue = Value | Value32

DEFAULT_MAX_NODES = 5000

__all__ = ["trace", "draw_dot", "render"]


def trace(
    root: AnyValue, max_nodes: int | None = None
) -> tuple[set[AnyValue], set[tuple[AnyValue, AnyValue]]]:
    """All values ``root`` depends on (itself included) and the edges ``(input, consumer)``.

    Raises ``ValueError`` when there are more than ``max_nodes`` values (None: no limit).
    """
    if not isinstance(root, (Value, Value32)):
        raise TypeError(f"trace: root must be a Value or Value32, not {type(root).__name__!r}")
    nodes: set[AnyValue] = {root}
    edges: set[tuple[AnyValue, AnyValue]] = set()
    stack = [root]
    while stack:
        v = stack.pop()
        for child in v._prev:
            edges.add((child, v))
            if child not in nodes:
                nodes.add(child)
                if max_nodes is not None and len(nodes) > max_nodes:
                    raise ValueError(
                        f"the graph has more than max_nodes={max_nodes} values, too many to "
                        "draw legibly; draw a smaller part of it, or pass a larger max_nodes"
                    )
                stack.append(child)
    return nodes, edges


def draw_dot(
    root: AnyValue,
    format: str = "svg",
    rankdir: str = "LR",
    max_nodes: int | None = DEFAULT_MAX_NODES,
) -> graphviz.Digraph:
    """The graph of ``root`` as a ``graphviz.Digraph``: one record per value showing its
    label (if any), data and grad, and one node per operation, as micrograd draws it."""
    if rankdir not in ("LR", "TB"):
        raise ValueError(f"draw_dot: rankdir must be 'LR' or 'TB', not {rankdir!r}")
    try:
        from graphviz import Digraph
    except ImportError:
        raise ImportError(
            'draw_dot needs the graphviz package: pip install "micrograd-cpp[viz]"'
        ) from None
    nodes, edges = trace(root, max_nodes)
    dot = Digraph(format=format, graph_attr={"rankdir": rankdir})
    # Sorting by id() gives the same DOT text for the same objects; ids are stable
    # because `nodes` keeps every value alive.
    for n in sorted(nodes, key=id):
        uid = str(id(n))
        fields = [n.label] if n.label else []
        fields += [f"data {n.data:.4f}", f"grad {n.grad:.4f}"]
        dot.node(
            name=uid, label="{ " + " | ".join(_escape(f) for f in fields) + " }", shape="record"
        )
        if n._op:
            dot.node(name=uid + n._op, label=n._op)
            dot.edge(uid + n._op, uid)
    for n1, n2 in sorted(edges, key=lambda e: (id(e[0]), id(e[1]))):
        dot.edge(str(id(n1)), str(id(n2)) + n2._op)
    return dot


def render(
    root: AnyValue,
    path: str | os.PathLike[str],
    format: str = "svg",
    rankdir: str = "LR",
    max_nodes: int | None = DEFAULT_MAX_NODES,
) -> str:
    """Draw ``root``'s graph into ``path`` + ``.`` + format and return the file written.

    Without Graphviz's ``dot`` program, writes the DOT source to ``path`` + ``.dot``
    instead, warns how to install ``dot``, and returns that file.
    """
    dot = draw_dot(root, format=format, rankdir=rankdir, max_nodes=max_nodes)
    if shutil.which("dot") is not None:
        return str(dot.render(os.fspath(path), cleanup=True))
    source = os.fspath(path) + ".dot"
    with open(source, "w", encoding="utf-8") as f:
        f.write(dot.source)
    warnings.warn(
        "Graphviz's 'dot' program is not installed, so the graph was not rendered; its DOT "
        f"source is in {source} (install dot: apt-get install graphviz, or see graphviz.org)",
        RuntimeWarning,
        stacklevel=2,
    )
    return source


def _escape(text: str) -> str:
    """Escape the characters that structure a Graphviz record label."""
    for ch in '\\{}|<>"':
        text = text.replace(ch, "\\" + ch)
    return text
