"""``mypy --strict`` passes on the installed package itself, and on the examples and the
tests against it.

micrograd_cpp ships typed: ``py.typed`` and ``_core.pyi``, the stub of its C++ core that
nanobind's stubgen writes at build time. This runs mypy with the project's ``[tool.mypy]``
configuration (pyproject.toml), so an API change that breaks typed code using
micrograd_cpp, or a stub that types it wrongly, fails here.

Skipped when mypy is not installed, or when micrograd_cpp is imported from a directory
without its ``_core.pyi`` and ``py.typed`` pair (an editable install: mypy cannot follow
its import hook to the stub), unless MICROGRAD_REQUIRE_TYPING=1.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import micrograd_cpp
import pytest

# A tool run (CMake, mypy, a wheel build): `python -m pytest -m "not slow"` skips it.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_strict_passes_on_the_package_examples_and_tests() -> None:
    required = os.environ.get("MICROGRAD_REQUIRE_TYPING") == "1"
    if not required:
        if importlib.util.find_spec("mypy") is None:
            pytest.skip("mypy is not installed")
        package = Path(micrograd_cpp.__file__).parent
        if not ((package / "_core.pyi").is_file() and (package / "py.typed").is_file()):
            pytest.skip(
                f"micrograd_cpp is imported from {package}, which lacks _core.pyi or "
                "py.typed (an editable install?): mypy would not see its types"
            )
        if not (ROOT / "pyproject.toml").is_file():
            pytest.skip("the tests are not in the source tree (no pyproject.toml beside them)")
    # mypy checks files or a package per run, not both
    for target in (["examples", "tests"], ["-p", "micrograd_cpp"]):
        proc = subprocess.run(
            [sys.executable, "-m", "mypy", "--config-file", "pyproject.toml", "--strict", *target],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
