"""micrograd, name for name, on a C++ core.

Change ``from micrograd.engine import Value`` to ``from micrograd_cpp.engine import Value``
(or use ``micrograd_cpp.Value``) and the same script computes the same numbers, faster.
"""

from . import engine
from ._core import arena_stats
from .engine import Value, Value32

__all__ = ["Value", "Value32", "arena_stats", "engine"]
__version__ = "0.1.0"
