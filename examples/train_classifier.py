"""Train a small classifier with micrograd_cpp: an MLP, a loss, an optimizer.

Three interleaved spirals (no extra packages needed), a softmax cross-entropy loss, and
Adam. Run: python examples/train_classifier.py [--steps N]
"""

from __future__ import annotations

import argparse
import math
import random
from typing import cast

from micrograd_cpp import Value, nn


def spirals(n_per_class: int, classes: int, rng: random.Random) -> list[tuple[list[float], int]]:
    """Points on `classes` noisy spiral arms around the origin, labelled by arm."""
    data = []
    for c in range(classes):
        for i in range(n_per_class):
            r = i / n_per_class
            t = c * 2 * math.pi / classes + 2.5 * r + rng.gauss(0, 0.15)
            data.append(([r * math.sin(t), r * math.cos(t)], c))
    return data


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args(argv)

    rng = random.Random(0)
    random.seed(0)  # nn draws initial weights from Python's global RNG, as micrograd does
    data = spirals(30, 3, rng)
    model = nn.MLP(2, [16, 16, 3])
    opt = nn.Adam(model.parameters(), lr=0.02)
    accuracy = 0.0
    for step in range(args.steps):
        # an MLP whose last layer has several neurons returns a list of Values (one, a Value)
        scores = [cast(list[Value], model([Value(x) for x in xs])) for xs, _ in data]
        classes = [c for _, c in data]
        loss = nn.cross_entropy_loss(scores, classes)
        opt.zero_grad()
        loss.backward()
        opt.step()
        predicted = [max(range(3), key=lambda k: row[k].data) for row in scores]
        hits = sum(p == c for p, c in zip(predicted, classes, strict=True))
        accuracy = hits / len(data)
        if step % 20 == 0 or step == args.steps - 1:
            print(f"step {step:3d}  loss {loss.data:.4f}  accuracy {accuracy:.0%}")
    return accuracy


if __name__ == "__main__":
    main()
