"""The example scripts in examples/ run and compute what they claim."""

import importlib.util
import math
import random
import re
import runpy
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from micrograd_cpp import Value

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name: str) -> dict[str, Any]:
    """The example's globals (its functions, constants); skips where examples/ is absent."""
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
    args = [
        "--jobs",
        "2",
        "--steps",
        str(steps),
        "--lrs",
        *map(str, lrs),
        "--seeds",
        *map(str, seeds),
    ]
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


def test_train_digits_prints_its_progress(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sklearn")
    accuracy = run_example("train_digits.py", ["--epochs", "3"])
    lines = capsys.readouterr().out.splitlines()
    epochs = [
        re.fullmatch(r"epoch +(\d+)  loss (\S+)  train (\S+)%  test (\S+)%  (\S+) s", line)
        for line in lines[:-1]
    ]
    assert len(lines) == 4 and all(epochs), lines
    rows = [[float(g) for g in m.groups()] for m in epochs if m]
    assert [r[0] for r in rows] == [1, 2, 3]
    losses = [r[1] for r in rows]
    assert losses == sorted(losses, reverse=True) and losses[-1] < 0.5  # ln 10 = 2.3 at chance
    assert all(0 < r[2] <= 100 and 0 < r[3] <= 100 and r[4] > 0 for r in rows)
    assert isinstance(accuracy, float) and 0.8 < accuracy <= 1
    assert lines[-1] == f"test accuracy {rows[-1][3]:.1f}% after 3 epochs"


def test_train_digits_reaches_95_percent(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sklearn")
    accuracy = run_example("train_digits.py", [])  # the default number of epochs
    assert isinstance(accuracy, float) and accuracy >= 0.95, capsys.readouterr().out


def test_train_digits_replay_equals_rebuilding_the_graph() -> None:
    pytest.importorskip("sklearn")
    example = load_example("train_digits.py")
    data = example["load"]()
    runs = [example["train"](data, 2, example["LR"], eager, log=False) for eager in (False, True)]
    (replayed, replay_history), (rebuilt, eager_history) = runs
    assert replay_history.loss == eager_history.loss
    assert replay_history.test_accuracy == eager_history.test_accuracy
    assert [p.data for p in replayed.parameters()] == [p.data for p in rebuilt.parameters()]


def test_train_digits_loss_is_softmax_cross_entropy() -> None:
    example = load_example("train_digits.py")
    rng = np.random.default_rng(1)
    scores = rng.normal(0, 3, size=(5, 10))
    classes = rng.integers(0, 10, size=5)
    onehot = np.eye(10)[classes]
    loss = example["cross_entropy"](
        [[Value(s) for s in row] for row in scores.tolist()],
        [[Value(t) for t in row] for row in onehot.tolist()],
    )
    shift = scores.max(axis=1)
    logsumexp = np.log(np.exp(scores - shift[:, None]).sum(axis=1)) + shift
    expected = np.mean(logsumexp - scores[np.arange(5), classes])
    assert math.isclose(loss.data, expected, rel_tol=1e-12)


def test_train_digits_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sklearn")
    path = tmp_path / "digits.png"
    run_example("train_digits.py", ["--epochs", "1", "--plot", str(path)])
    out = capsys.readouterr().out
    if importlib.util.find_spec("matplotlib") is None:
        assert "matplotlib is not installed: no plot" in out and not path.exists()
    else:
        assert f"written to {path}" in out
        assert path.read_bytes().startswith(b"\x89PNG")
