"""The type stubs generated at build time (nanobind's stubgen) match the committed
reference tests/reference/_core.pyi, so every change to the Python API shows in review.

After an intended API change, refresh the reference from the built package:
    python tests/test_stubs.py
"""

from pathlib import Path

import micrograd_cpp
import micrograd_cpp._core

REFERENCE = Path(__file__).parent / "reference" / "_core.pyi"


def test_generated_stub_matches_reference() -> None:
    generated = Path(micrograd_cpp._core.__file__).with_name("_core.pyi")
    assert generated.is_file(), f"no stub installed beside {micrograd_cpp._core.__file__}"
    assert generated.read_text() == REFERENCE.read_text(), (
        "the API changed: review the difference and refresh tests/reference/_core.pyi "
        "(see this file's docstring)"
    )


def test_package_is_marked_typed() -> None:
    assert (Path(micrograd_cpp.__file__).parent / "py.typed").is_file()


if __name__ == "__main__":
    # Refresh the reference from the installed build, after reviewing the change.
    REFERENCE.write_text(Path(micrograd_cpp._core.__file__).with_name("_core.pyi").read_text())
