"""The example scripts in examples/ run and compute what they claim."""

import math
import runpy
import shutil
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, argv: list[str]) -> object:
    if not (EXAMPLES / name).is_file():
        pytest.skip("examples/ is not beside the tests (installed-package run)")
    module = runpy.run_path(str(EXAMPLES / name), run_name="example")
    return module["main"](argv)


def test_draw_graph_gives_the_lecture_neuron(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("graphviz")
    path = run_example("draw_graph.py", ["--output", str(tmp_path / "g")])
    # o = tanh(x1*w1 + x2*w2 + b), do/dx1 = (1 - o**2) * w1, do/dw1 = (1 - o**2) * x1
    o = math.tanh(2.0 * -3.0 + 0.0 * 1.0 + 6.8813735870195432)
    out = capsys.readouterr().out
    dx1, dw1 = (1 - o * o) * -3.0, (1 - o * o) * 2.0
    assert f"o = {o:.4f}; do/dx1 = {dx1:.4f}, do/dw1 = {dw1:.4f}" in out
    expected_suffix = ".svg" if shutil.which("dot") else ".dot"
    assert str(path).endswith(expected_suffix) and Path(str(path)).stat().st_size > 0


def test_train_classifier_learns_the_spirals(capsys: pytest.CaptureFixture[str]) -> None:
    accuracy = run_example("train_classifier.py", ["--steps", "150"])
    assert isinstance(accuracy, float) and accuracy >= 0.9, capsys.readouterr().out


def test_examples_are_documented() -> None:
    if not EXAMPLES.is_dir():
        pytest.skip("examples/ is not beside the tests (installed-package run)")
    readme = (EXAMPLES / "README.md").read_text()
    for script in sorted(EXAMPLES.glob("*.py")):
        assert script.name in readme, f"{script.name} is missing from examples/README.md"
