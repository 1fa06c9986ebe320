"""micrograd, name for name, on a C++ core.

Change ``from micrograd.engine import Value`` to ``from micrograd_cpp.engine import Value``
(or use ``micrograd_cpp.Value``) and the same script computes the same numbers, faster.
"""

from . import engine, nn, viz
from ._core import arena_stats
from .engine import Value, Value32
from .viz import draw_dot

__all__ = ["Value", "Value32", "arena_stats", "draw_dot", "engine", "nn", "viz"]
__version__ = "0.1.0"
