"""micrograd's moons demo on micrograd_cpp: ``python -m micrograd_cpp.demo``.

The demo of micrograd's README and demo.ipynb, step for step: ``np.random.seed(1337)``,
``random.seed(1337)``, ``make_moons(n_samples=100, noise=0.1)`` with labels mapped to -1/1,
``MLP(2, [16, 16, 1])``, the SVM max-margin loss plus 1e-4 L2, and SGD with
``lr = 1.0 - 0.9*k/100`` (spread over ``max(steps, 100)``). With the default seed it prints
micrograd's losses (step 0: 0.8958441028683222, step 99: 0.010978370135492717,
accuracy 100%) and writes a plot of the decision boundary when matplotlib is installed.

Needs numpy and scikit-learn (and matplotlib for the plot): ``pip install "micrograd-cpp[demo]"``.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any, cast

from . import nn
from .engine import Value

_INSTALL_HINT = 'the demo needs numpy and scikit-learn: pip install "micrograd-cpp[demo]"'


@dataclass
class History:
    """What a training run did: loss and accuracy per step, and the seconds each took."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def make_data(seed: int) -> tuple[Any, Any]:
    """micrograd's data set: 100 noisy moons, labels -1/1, from NumPy's global RNG."""
    import numpy as np
    from sklearn.datasets import make_moons

    np.random.seed(seed)
    X, y = make_moons(n_samples=100, noise=0.1)
    return X, y * 2 - 1


def train(X: Any, y: Any, steps: int, seed: int, log: Any = None) -> tuple[nn.MLP, History]:
    """Train micrograd's model on (X, y) for ``steps`` steps; print progress to ``log``."""
    random.seed(seed)
    model = nn.MLP(2, [16, 16, 1])
    opt = nn.SGD(model.parameters(), lr=1.0)
    labels = [float(v) for v in y]
    history = History()
    for k in range(steps):
        start = time.perf_counter()
        inputs = [list(map(Value, xrow)) for xrow in X.tolist()]
        scores = [cast(Value, model(x)) for x in inputs]  # one output: a bare Value
        total_loss = nn.hinge_loss(scores, labels) + nn.l2_penalty(model.parameters(), 1e-4)
        opt.zero_grad()
        total_loss.backward()
        opt.lr = 1.0 - 0.9 * k / max(steps, 100)  # micrograd's schedule for 100 steps
        opt.step()
        history.seconds.append(time.perf_counter() - start)
        hits = sum((yi > 0) == (s.data > 0) for yi, s in zip(labels, scores, strict=True))
        history.loss.append(total_loss.data)
        history.accuracy.append(hits / len(labels))
        if log is not None:
            print(f"step {k} loss {total_loss.data!r}, accuracy {hits / len(labels):.0%}", file=log)
    return model, history


def plot(model: nn.MLP, X: Any, y: Any, path: str) -> None:
    """Draw the decision boundary over the data, as micrograd's demo does, into ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    h = 0.25
    x_min, x_max = X[:, 0].min() - 1, X[:, 0].max() + 1
    y_min, y_max = X[:, 1].min() - 1, X[:, 1].max() + 1
    xx, yy = np.meshgrid(np.arange(x_min, x_max, h), np.arange(y_min, y_max, h))
    mesh = np.c_[xx.ravel(), yy.ravel()].tolist()
    scores = [cast(Value, model(list(map(Value, row)))) for row in mesh]
    Z = np.array([s.data > 0 for s in scores]).reshape(xx.shape)
    fig = plt.figure()
    plt.contourf(xx, yy, Z, cmap=plt.cm.Spectral, alpha=0.8)
    plt.scatter(X[:, 0], X[:, 1], c=y, s=40, cmap=plt.cm.Spectral)
    plt.xlim(xx.min(), xx.max())
    plt.ylim(yy.min(), yy.max())
    fig.savefig(path)
    plt.close(fig)


def draw_neuron(path: str) -> str:
    """Draw the graph of one ReLU neuron's forward and backward pass on two inputs."""
    from .viz import render

    neuron = nn.Neuron(2)
    for i, w in enumerate(neuron.w, 1):
        w.label = f"w{i}"
    neuron.b.label = "b"
    x = [Value(2.0, label="x1"), Value(-1.0, label="x2")]
    out = neuron(x)
    out.label = "out"
    out.backward()
    return render(out, path, format="svg")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m micrograd_cpp.demo", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--steps", type=int, default=100, help="training steps (default 100)")
    parser.add_argument(
        "--seed",
        type=int,
        default=1337,
        help="seed of NumPy's and Python's RNGs (default 1337, micrograd's)",
    )
    parser.add_argument(
        "--output",
        default="moons.png",
        help="where to write the decision-boundary plot (default moons.png)",
    )
    parser.add_argument(
        "--graph",
        metavar="PATH",
        help="also draw one neuron's graph to PATH.svg (needs micrograd-cpp[viz])",
    )
    args = parser.parse_args(argv)
    if args.graph:
        try:
            print(f"neuron graph written to {draw_neuron(args.graph)}")
        except ImportError:
            print(
                '--graph needs the graphviz package: pip install "micrograd-cpp[viz]"',
                file=sys.stderr,
            )
            return 2
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    try:
        X, y = make_data(args.seed)
    except ImportError:
        print(_INSTALL_HINT, file=sys.stderr)
        return 2
    model, history = train(X, y, args.steps, args.seed, log=sys.stdout)
    total = sum(history.seconds)
    print(
        f"trained MLP(2, [16, 16, 1]) for {args.steps} steps in {total:.3f} s "
        f"({1000 * total / args.steps:.2f} ms per step)"
    )
    print(f"final loss {history.loss[-1]!r}, accuracy {history.accuracy[-1]:.0%}")
    try:
        plot(model, X, y, args.output)
        print(f"decision boundary written to {args.output}")
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
