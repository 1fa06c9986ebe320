# nanobind stubgen patterns (nanobind_add_stub's PATTERN_FILE): the signatures and docs of
# the operators of Value and Value32. They are the types' number slots (bindings/value.cpp),
# whose generated entries would be untyped; \1 is the class.
\.(Value32|Value)\.__add__$:
    \from typing import SupportsFloat
    def __add__(self, other: \1 | SupportsFloat, /) -> \1:
        """self + other (d/dx = d/dy = 1)."""

\.(Value32|Value)\.__radd__$:
    def __radd__(self, other: \1 | SupportsFloat, /) -> \1:
        """other + self, other a number (it becomes a leaf)."""

\.(Value32|Value)\.__sub__$:
    def __sub__(self, other: \1 | SupportsFloat, /) -> \1:
        """self - other (d/dx = 1, d/dy = -1)."""

\.(Value32|Value)\.__rsub__$:
    def __rsub__(self, other: \1 | SupportsFloat, /) -> \1:
        """other - self, other a number (it becomes a leaf)."""

\.(Value32|Value)\.__mul__$:
    def __mul__(self, other: \1 | SupportsFloat, /) -> \1:
        """self * other (d/dx = y, d/dy = x)."""

\.(Value32|Value)\.__rmul__$:
    def __rmul__(self, other: \1 | SupportsFloat, /) -> \1:
        """other * self, other a number (it becomes a leaf)."""

\.(Value32|Value)\.__truediv__$:
    def __truediv__(self, other: \1 | SupportsFloat, /) -> \1:
        """
        self / other, IEEE division (x/0 is inf or nan). d/dx = 1/y, d/dy = -x/y**2.
        """

\.(Value32|Value)\.__rtruediv__$:
    def __rtruediv__(self, other: \1 | SupportsFloat, /) -> \1:
        """other / self, other a number (it becomes a leaf)."""

\.(Value32|Value)\.__pow__$:
    def __pow__(self, other: \1 | SupportsFloat, /) -> \1:
        """
        self ** other. A number exponent k gives micrograd's '**k' node (d/dx = k*x**(k-1));
        a Value exponent y also gets d/dy = x**y * log(x) (0 where x == 0 and y >= 0).
        A negative base with a non-integer exponent gives nan (micrograd: a complex number).
        """

\.(Value32|Value)\.__rpow__$:
    def __rpow__(self, other: \1 | SupportsFloat, /) -> \1:
        """other ** self, other a number (the base becomes a leaf)."""

\.(Value32|Value)\.__neg__$:
    def __neg__(self) -> \1:
        """-self (d/dx = -1)."""

\.(Value32|Value)\.__abs__$:
    def __abs__(self) -> \1:
        """abs(self): as self.abs()."""

# The attribute slots (attributes live with the node: bindings/value.cpp's Extras). Any
# name can be set; reading one that was set is getattr(v, "name") for a type checker.
\.(Value32|Value)\.__getattribute__$:

\.(Value32|Value)\.__setattr__$:
    def __setattr__(self, name: str, value: object, /) -> None:
        """Set an attribute: a property of the type, or one that lives with the node."""

\.(Value32|Value)\.__delattr__$:
    def __delattr__(self, name: str, /) -> None:
        """Delete an attribute set on the node."""
