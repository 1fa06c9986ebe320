"""Differentiate a small expression and draw its graph, as in micrograd's lecture.

Writes graph.svg (or graph.dot when Graphviz's dot program is missing).
Needs the graphviz package: pip install "micrograd-cpp[viz]".
Run: python examples/draw_graph.py [--output PATH]
"""

from __future__ import annotations

import argparse

from micrograd_cpp import Value, viz


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="graph", help="file name without extension")
    args = parser.parse_args(argv)

    x1 = Value(2.0, label="x1")
    x2 = Value(0.0, label="x2")
    w1 = Value(-3.0, label="w1")
    w2 = Value(1.0, label="w2")
    b = Value(6.8813735870195432, label="b")
    n = x1 * w1 + x2 * w2 + b
    n.label = "n"
    o = n.tanh()
    o.label = "o"
    o.backward()
    print(f"o = {o.data:.4f}; do/dx1 = {x1.grad:.4f}, do/dw1 = {w1.grad:.4f}")
    path = viz.render(o, args.output)
    print(f"graph written to {path}")
    return path


if __name__ == "__main__":
    main()
