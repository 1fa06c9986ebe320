"""``v.data`` and ``v.grad``, read and written as micrograd's plain attributes are: the
quick path for floats (bindings/value.cpp, hot_names) and the properties for the rest
must agree, in both precisions. The oracle is Python's float() and NumPy's float32."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import micrograd_cpp as mg
import numpy as np
import pytest

CLASSES = [mg.Value, mg.Value32]
NUMBERS: list[Any] = [0.1, -3, True, np.float64(2.5), np.float32(0.1), np.int64(-7), Fraction(1, 3)]


def stored(cls: Any, x: Any) -> float:
    """What a node of cls holds for x: float(x), rounded to float32 for Value32."""
    return float(np.float32(float(x))) if cls is mg.Value32 else float(x)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", ["data", "grad"])
@pytest.mark.parametrize("x", NUMBERS, ids=repr)
def test_write_then_read(cls: Any, name: str, x: Any) -> None:
    v = cls(1.0)
    setattr(v, name, x)
    assert type(getattr(v, name)) is float and getattr(v, name) == stored(cls, x)
    other = "".join(["d", "ata"]) if name == "data" else "".join(["g", "rad"])  # not interned
    assert getattr(v, other) == stored(cls, x)
    setattr(v, other, 0.25)
    assert getattr(v, name) == 0.25


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_plain_attribute_syntax(cls: Any) -> None:
    v = cls(0.5)
    v.data -= 0.1 * 2.0
    v.grad += 1
    assert v.data == stored(cls, stored(cls, 0.5) - 0.2) and v.grad == 1.0
    w = v * 2.0
    w.backward()
    assert v.grad == 3.0 and w.data == stored(cls, 2 * v.data)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", ["data", "grad"])
@pytest.mark.parametrize("bad", ["1.0", None, 1j, [1.0]], ids=repr)
def test_bad_writes_raise_and_change_nothing(cls: Any, name: str, bad: Any) -> None:
    v = cls(0.5)
    with pytest.raises(TypeError, match=rf"{cls.__name__}\.{name} must be a real number"):
        setattr(v, name, bad)
    assert v.data == 0.5 and v.grad == 0.0


@pytest.mark.parametrize("name", ["data", "grad"])
def test_deleting_is_refused(name: str) -> None:
    v = mg.Value(0.5)
    with pytest.raises(AttributeError):
        delattr(v, name)
    assert v.data == 0.5
