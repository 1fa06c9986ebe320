"""A hyper-parameter sweep in parallel: micrograd's moons model, trained with each learning
rate and seed on its own worker process (joblib), comes back trained.

Models and their optimizers pickle as plain data, so joblib (or multiprocessing, or
cloudpickle) ships them to workers and back like any Python object. Needs numpy and
scikit-learn (joblib comes with it): ``pip install "micrograd-cpp[demo]"``.

Run: python examples/sweep.py [--jobs N] [--steps N] [--lrs 0.1 0.5 ...] [--seeds 1 2 ...]
"""

from __future__ import annotations

import argparse
import itertools
import random
from dataclasses import dataclass
from typing import Any, cast

from micrograd_cpp import Value, demo, nn


@dataclass
class Result:
    """One run of the sweep: its settings, the trained model and how it ended."""

    lr: float
    seed: int
    model: nn.MLP
    loss: float
    accuracy: float


def evaluate(model: nn.MLP, X: Any, y: Any) -> tuple[float, float]:
    """micrograd's demo loss (hinge + 1e-4 L2) and accuracy of model on (X, y)."""
    labels = [float(v) for v in y]
    scores = [cast(Value, model(list(map(Value, row)))) for row in X.tolist()]
    loss = nn.hinge_loss(scores, labels) + nn.l2_penalty(model.parameters(), 1e-4)
    hits = sum((yi > 0) == (s.data > 0) for yi, s in zip(labels, scores, strict=True))
    return loss.data, hits / len(labels)


def train(lr: float, seed: int, steps: int) -> Result:
    """micrograd's demo training (its data, model and loss) with a constant learning rate."""
    X, y = demo.make_data(1337)
    random.seed(seed)  # nn draws initial weights from Python's global RNG, as micrograd
    model = nn.MLP(2, [16, 16, 1])
    opt = nn.SGD(model.parameters(), lr=lr)
    labels = [float(v) for v in y]
    for _ in range(steps):
        scores = [cast(Value, model(list(map(Value, row)))) for row in X.tolist()]
        loss = nn.hinge_loss(scores, labels) + nn.l2_penalty(model.parameters(), 1e-4)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return Result(lr, seed, model, *evaluate(model, X, y))


def sweep(lrs: list[float], seeds: list[int], steps: int, jobs: int) -> list[Result]:
    """Train every (lr, seed) pair, ``jobs`` at a time (-1: one per core)."""
    from joblib import Parallel, delayed

    runs = Parallel(n_jobs=jobs)(
        delayed(train)(lr, seed, steps) for lr, seed in itertools.product(lrs, seeds)
    )
    return list(runs)


def main(argv: list[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=-1, help="worker processes (-1: all cores)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--lrs", type=float, nargs="+", default=[0.1, 0.3, 1.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args(argv)

    results = sweep(args.lrs, args.seeds, args.steps, args.jobs)
    print(f"{'lr':>6} {'seed':>5} {'loss':>8} {'accuracy':>9}")
    for r in results:
        print(f"{r.lr:6g} {r.seed:5d} {r.loss:8.4f} {r.accuracy:9.0%}")
    best = min(results, key=lambda r: r.loss)
    print(
        f"best: lr {best.lr:g}, seed {best.seed}: loss {best.loss:.4f} "
        f"({len(best.model.parameters())} parameters, back from its worker)"
    )
    return results


if __name__ == "__main__":
    main()
