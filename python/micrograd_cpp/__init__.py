"""micrograd, name for name, on a C++ core.

Change ``from micrograd.engine import Value`` to ``from micrograd_cpp.engine import Value``
(or use ``micrograd_cpp.Value``) and the same script computes the same numbers, faster.
"""

from . import engine, graph, nn, viz
from ._core import arena_stats
from .engine import Value, Value32
from .graph import Graph, jit
from .viz import draw_dot

__all__ = [
    "Graph",
    "Value",
    "Value32",
    "arena_stats",
    "draw_dot",
    "engine",
    "graph",
    "jit",
    "nn",
    "viz",
]
__version__ = "0.1.0"
