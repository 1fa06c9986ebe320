"""Bad input raises TypeError (never a crash), as the spec lists.

Where the spec says "Python's usual TypeError (NotImplemented)", the expected
message is produced by Python itself: the same expression evaluated with a
plain class whose operators all return NotImplemented.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import micrograd_cpp as mg
import numpy as np
import pytest
from conftest import BINARY_OPS, UNARY_OPS

CLASSES = [mg.Value, mg.Value32]

BAD_DATA: list[tuple[Any, tuple[str, ...]]] = [
    ("x", ("str",)),
    ("1.5", ("str",)),
    (None, ("NoneType", "None")),
    ([1], ("list",)),
    ((1.0,), ("tuple",)),
    ({}, ("dict",)),
    (1 + 2j, ("complex",)),
    (object(), ("object",)),
]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize(("bad", "names"), BAD_DATA, ids=lambda x: type(x).__name__)
def test_constructor_rejects_bad_type(cls: type, bad: Any, names: tuple[str, ...]) -> None:
    with pytest.raises(TypeError) as info:
        cls(bad)
    assert any(n in str(info.value) for n in names), str(info.value)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_constructor_rejects_numpy_complex(cls: type) -> None:
    with pytest.raises(TypeError):
        cls(np.complex128(1 + 2j))


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("attr", ["data", "grad"])
@pytest.mark.parametrize("bad", ["x", None, [1.0], 1j], ids=lambda x: type(x).__name__)
def test_setters_reject_bad_type(cls: type, attr: str, bad: Any) -> None:
    v = cls(1.5)
    with pytest.raises(TypeError):
        setattr(v, attr, bad)
    assert getattr(v, attr) == (1.5 if attr == "data" else 0.0)  # left unchanged


BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    **{op.label: op.fn for op in BINARY_OPS.values()},
    **{f"{op.label}=": op.inplace for op in BINARY_OPS.values()},
}


@pytest.mark.parametrize("opname", list(BINOPS))
@pytest.mark.parametrize(
    ("left", "right"), [(mg.Value, mg.Value32), (mg.Value32, mg.Value)], ids=["64_32", "32_64"]
)
def test_mixing_float64_and_float32_raises(left: type, right: type, opname: str) -> None:
    with pytest.raises(TypeError):
        BINOPS[opname](left(1.5), right(2.0))


class NotANumber:
    """Stand-in whose binary operators all return NotImplemented."""

    def _nope(self, other: Any) -> Any:
        return NotImplemented

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _nope
    __truediv__ = __rtruediv__ = __pow__ = __rpow__ = _nope


def _normalized_type_error(fn: Callable[[], Any]) -> str:
    with pytest.raises(TypeError) as info:
        fn()
    # the stand-in's name and ours (possibly module-qualified) differ; nothing else may
    return re.sub(r"""(['"])(?:[\w.]*\.)?(?:NotANumber|Value32|Value)\1""", "<T>", str(info.value))


BAD_OPERANDS = ["a", None, [1], object(), 1j, {"x": 1}]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("value_on_left", [True, False], ids=["value_left", "value_right"])
@pytest.mark.parametrize("opname", list(BINOPS))
@pytest.mark.parametrize("bad", BAD_OPERANDS, ids=lambda x: type(x).__name__)
def test_unsupported_operand_gives_pythons_usual_type_error(
    cls: type, value_on_left: bool, opname: str, bad: Any
) -> None:
    op = BINOPS[opname]

    def run(obj: Any) -> Callable[[], Any]:
        return (lambda: op(obj, bad)) if value_on_left else (lambda: op(bad, obj))

    expected = _normalized_type_error(run(NotANumber()))
    assert _normalized_type_error(run(cls(1.5))) == expected


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_unary_methods_take_no_arguments(cls: type) -> None:
    v = cls(0.5)
    for name in (*UNARY_OPS, "backward"):
        with pytest.raises(TypeError):
            getattr(v, name)(1.0)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_errors_leave_operands_usable(cls: type) -> None:
    a = cls(2.0)
    for bad in BAD_OPERANDS:
        with pytest.raises(TypeError):
            a * bad
    y = a * 3.0
    y.backward()
    assert (y.data, a.grad) == (6.0, 3.0)
