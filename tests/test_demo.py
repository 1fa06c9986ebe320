"""``micrograd_cpp.demo``: micrograd's moons demo, against micrograd's own run.

tests/reference/moons_micrograd.json is micrograd 0.1.0's 100-step trajectory of the
README/demo.ipynb demo (made by tests/reference/make_moons_reference.py; too slow to
run micrograd for 100 steps here). micrograd_cpp must follow it at every step.
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest
from micrograd_cpp import Value, demo, nn

REFERENCE = Path(__file__).parent / "reference" / "moons_micrograd.json"
REL = 1e-12
# micrograd's README: the demo's loss after its 100 steps, at 100% accuracy
FINAL_LOSS = 0.010978370135492717
FIRST_LOSS = 0.8958441028683222


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    with REFERENCE.open() as f:
        ref: dict[str, Any] = json.load(f)
    assert len(ref["loss"]) == 100
    # the stored run is micrograd's documented one
    assert ref["loss"][0] == FIRST_LOSS
    assert ref["loss"][-1] == FINAL_LOSS
    return ref


@pytest.fixture(scope="module")
def trained() -> tuple[nn.MLP, demo.History]:
    X, y = demo.make_data(1337)
    return demo.train(X, y, 100, 1337)


def close(got: float, want: float) -> bool:
    return math.isclose(got, want, rel_tol=REL, abs_tol=0.0)


def test_make_data_equals_reference(reference: dict[str, Any]) -> None:
    X, y = demo.make_data(1337)
    assert X.tolist() == reference["X"]
    assert [int(v) for v in y] == reference["y"]
    assert sorted(set(reference["y"])) == [-1, 1]


def test_make_data_depends_on_seed(reference: dict[str, Any]) -> None:
    X, _ = demo.make_data(1338)
    assert X.tolist() != reference["X"]


def test_initial_parameters_equal_reference(reference: dict[str, Any]) -> None:
    random.seed(1337)
    model = nn.MLP(2, [16, 16, 1])
    assert [p.data for p in model.parameters()] == reference["initial_parameters"]


def test_loss_trajectory_equals_reference(
    trained: tuple[nn.MLP, demo.History], reference: dict[str, Any]
) -> None:
    _, history = trained
    assert len(history.loss) == len(reference["loss"]) == 100
    bad = [
        (k, g, w)
        for k, (g, w) in enumerate(zip(history.loss, reference["loss"], strict=True))
        if not close(g, w)
    ]
    assert not bad, f"(step, ours, micrograd): {bad[:5]} ... {len(bad)} steps differ"


def test_accuracy_trajectory_equals_reference(
    trained: tuple[nn.MLP, demo.History], reference: dict[str, Any]
) -> None:
    _, history = trained
    assert history.accuracy == reference["accuracy"]


def test_final_loss_and_accuracy(trained: tuple[nn.MLP, demo.History]) -> None:
    model, history = trained
    assert close(history.loss[-1], FINAL_LOSS)
    assert history.accuracy[-1] == 1.0
    assert len(history.seconds) == 100
    assert all(s >= 0 for s in history.seconds)
    assert repr(model) == repr(nn.MLP(2, [16, 16, 1]))


def test_trained_model_classifies_the_data(
    trained: tuple[nn.MLP, demo.History], reference: dict[str, Any]
) -> None:
    """The returned model is the trained one: it gets every training point right."""
    model, _ = trained
    X, y = reference["X"], reference["y"]
    # one output neuron: model(x) is a bare Value
    assert all((cast(Value, model(x)).data > 0) == (yi > 0) for x, yi in zip(X, y, strict=True))


def test_train_logs_one_line_per_step(reference: dict[str, Any]) -> None:
    X, y = demo.make_data(1337)
    log = io.StringIO()
    _, history = demo.train(X, y, 3, 1337, log=log)
    lines = log.getvalue().splitlines()
    assert len(lines) == 3
    for k, line in enumerate(lines):
        m = re.match(rf"step {k} loss (\S+?),? ", line)
        assert m, line
        assert close(float(m.group(1)), reference["loss"][k])
        assert close(history.loss[k], reference["loss"][k])


# ---------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------


def test_command_line_runs(tmp_path: Path, reference: dict[str, Any]) -> None:
    out_png = tmp_path / "m.png"
    proc = subprocess.run(
        [sys.executable, "-m", "micrograd_cpp.demo", "--steps", "3", "--output", str(out_png)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    step_lines = [line for line in proc.stdout.splitlines() if line.startswith("step ")]
    assert len(step_lines) == 3, proc.stdout
    for k, line in enumerate(step_lines):
        m = re.match(rf"step {k} loss (\S+?),? ", line)
        assert m, line
        # with 3 steps the learning rates are the 100-step demo's first three
        assert close(float(m.group(1)), reference["loss"][k])
    if importlib.util.find_spec("matplotlib") is not None:
        assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert str(out_png) in proc.stdout
    else:
        assert not out_png.exists()
        assert "matplotlib is not installed" in proc.stdout


@pytest.mark.parametrize("steps", ["0", "-1"])
def test_main_rejects_nonpositive_steps(steps: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        demo.main(["--steps", steps])
    assert info.value.code != 0
    err = capsys.readouterr().err
    assert "--steps" in err


def test_main_rejects_non_integer_steps(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        demo.main(["--steps", "ten"])
    assert info.value.code != 0
    assert "--steps" in capsys.readouterr().err


def test_main_in_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], reference: dict[str, Any]
) -> None:
    assert demo.main(["--steps", "2", "--output", str(tmp_path / "p.png")]) == 0
    out = capsys.readouterr().out
    losses = [float(m.group(1)) for m in re.finditer(r"^step \d+ loss (\S+?),? ", out, re.M)]
    assert len(losses) == 2
    assert all(close(g, w) for g, w in zip(losses, reference["loss"][:2], strict=True))
    m = re.search(r"final loss (\S+?),? ", out)
    assert m and close(float(m.group(1)), reference["loss"][1])
