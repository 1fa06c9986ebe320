"""Produce tests/reference/moons_micrograd.json: micrograd's own demo trajectory.

Runs micrograd 0.1.0 (pure Python, the oracle; not micrograd_cpp) on the demo of its
README/demo.ipynb: np.random.seed(1337); random.seed(1337); make_moons(100, noise=0.1),
labels to -1/1, MLP(2, [16, 16, 1]), SVM max-margin loss + 1e-4 L2, 100 SGD steps with
lr = 1.0 - 0.9*k/100. Records the loss and accuracy at every step and the data set.

    python tests/reference/make_moons_reference.py   # about 3 minutes
"""

import json
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np

STEPS = 100


def demo_steps(
    value: Any, nn_module: Any, X: Any, y: Any, steps: int, log: bool = False
) -> tuple[list[float], list[float], list[float]]:
    """micrograd's demo loop, verbatim, on the engine given by its Value class and nn module.

    Returns the initial parameters and the loss and accuracy at every step. The tests run
    it on micrograd (the oracle) and, unchanged, on micrograd_cpp.
    """
    random.seed(1337)
    model = nn_module.MLP(2, [16, 16, 1])
    initial = [p.data for p in model.parameters()]
    losses, accuracies = [], []
    for k in range(steps):
        inputs = [list(map(value, xrow)) for xrow in X]
        scores = list(map(model, inputs))
        margins = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores)]
        data_loss = sum(margins) * (1.0 / len(margins))
        reg_loss = 1e-4 * sum(p * p for p in model.parameters())
        total_loss = data_loss + reg_loss
        accuracy = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(y, scores)]
        model.zero_grad()
        total_loss.backward()
        learning_rate = 1.0 - 0.9 * k / 100
        for p in model.parameters():
            p.data -= learning_rate * p.grad
        losses.append(float(total_loss.data))
        accuracies.append(sum(accuracy) / len(accuracy))
        if log:
            print(f"step {k} loss {losses[-1]!r} accuracy {accuracies[-1]:.0%}", file=sys.stderr)
    return initial, losses, accuracies


def main() -> None:
    import micrograd.nn
    from micrograd.engine import Value
    from sklearn.datasets import make_moons

    np.random.seed(1337)
    X, y = make_moons(n_samples=100, noise=0.1)
    y = y * 2 - 1
    initial, losses, accuracies = demo_steps(Value, micrograd.nn, X, y, STEPS, log=True)
    out = {
        "producer": "micrograd==0.1.0 via tests/reference/make_moons_reference.py",
        "X": X.tolist(),
        "y": [int(v) for v in y],
        "initial_parameters": initial,
        "loss": losses,
        "accuracy": accuracies,
    }
    path = Path(__file__).with_name("moons_micrograd.json")
    path.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
