"""Mirror of ``micrograd.engine``: the scalar ``Value`` and its float32 twin ``Value32``.

``Value`` holds float64 data like micrograd's (whose data are Python floats);
``Value32`` computes in float32. The two cannot be mixed in one expression.
"""

from ._core import Value, Value32

__all__ = ["Value", "Value32"]
