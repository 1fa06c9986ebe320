"""The example scripts in examples/ run and compute what they claim."""

import math
import random
import runpy
import shutil
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name: str) -> dict[str, Any]:
    if not (EXAMPLES / name).is_file():
        pytest.skip("examples/ is not beside the tests (installed-package run)")
    return runpy.run_path(str(EXAMPLES / name), run_name="example")


def run_example(name: str, argv: list[str]) -> object:
    return load_example(name)["main"](argv)


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


def test_sweep_brings_trained_models_back_from_workers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("sklearn")
    pytest.importorskip("joblib")
    from micrograd import nn as mgnn
    from micrograd.engine import Value as MGValue
    from micrograd_cpp import demo

    lrs, seeds, steps = [0.5, 1.0], [1, 2], 3
    args = ["--jobs", "2", "--steps", str(steps), "--lrs", *map(str, lrs), "--seeds",
            *map(str, seeds)]
    results = run_example("sweep.py", args)
    assert isinstance(results, list) and len(results) == 4
    assert "best: lr" in capsys.readouterr().out
    # Each model that came back is, bit for bit, the one the same training gives here.
    train = load_example("sweep.py")["train"]
    for r in results:
        here = train(r.lr, r.seed, steps)
        assert [p.data for p in r.model.parameters()] == [p.data for p in here.model.parameters()]
        assert (r.loss, r.accuracy) == (here.loss, here.accuracy)

    # And one run equals micrograd's demo loop with the same seeds and learning rate.
    r = results[0]
    X, y = demo.make_data(1337)
    labels = [float(v) for v in y]
    random.seed(r.seed)
    model = mgnn.MLP(2, [16, 16, 1])

    def loss_of() -> Any:
        scores = [model(list(map(MGValue, row))) for row in X.tolist()]
        losses = [(1 + -yi * si).relu() for yi, si in zip(labels, scores, strict=True)]
        data_loss = sum(losses) * (1.0 / len(losses))
        return data_loss + 1e-4 * sum(p * p for p in model.parameters())

    for _ in range(steps):
        loss = loss_of()
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= r.lr * p.grad
    assert r.loss == pytest.approx(loss_of().data, rel=1e-12)


def test_examples_are_documented() -> None:
    if not EXAMPLES.is_dir():
        pytest.skip("examples/ is not beside the tests (installed-package run)")
    readme = (EXAMPLES / "README.md").read_text()
    for script in sorted(EXAMPLES.glob("*.py")):
        assert script.name in readme, f"{script.name} is missing from examples/README.md"
