"""Threads capturing and replaying graphs at once, with the GIL handed over as often as
CPython allows (test_threads.py's fixture), get the eager results and never crash.

Each thread replays its own graphs: replay, like backward(), holds the GIL for the whole
call, so two threads never sweep at the same time, but they do capture, replay and drop
graphs in between each other's calls, on a shared arena.
"""

from __future__ import annotations

import random
from typing import Any

import micrograd_cpp as mg
import pytest
from conftest import live
from micrograd_cpp import nn
from test_graph import Dtype, replay, same
from test_threads import (  # noqa: F401
    THREADS,
    busy_gil,
    check_closed_form,
    expression,
    run_threads,
)

# busy_gil, an autouse fixture, is in force here too once imported.


@pytest.mark.parametrize("cls", [mg.Value, mg.Value32], ids=["Value", "Value32"])
def test_graphs_replayed_in_threads(cls: Any) -> None:
    dtype: Dtype = "float32" if cls is mg.Value32 else "float64"
    rel = 1e-5 if dtype == "float32" else 1e-12
    base = live(dtype)
    checked = [0] * THREADS

    def work(i: int) -> None:
        rng = random.Random(i)
        f, vx, vw = expression(cls, 1.0, 1.0)
        g = mg.Graph(f, inputs=[vx, vw])
        for _ in range(300):
            x, w = rng.uniform(0.5, 2.0), rng.uniform(0.5, 2.0)
            g.set_inputs([x, w])
            vx.grad = vw.grad = 0.0
            replay(g)
            ef, ex, ew = expression(cls, x, w)
            ef.backward()
            assert same(f.data, ef.data) and same(vx.grad, ex.grad) and same(vw.grad, ew.grad)
            check_closed_form(f, vx, vw, rel)
            checked[i] += 1

    run_threads(work)
    assert checked == [300] * THREADS
    assert live(dtype) == base


def test_capture_and_drop_large_graphs_while_others_replay() -> None:
    """Threads capturing and dropping 20,000-node graphs, so that the others replay while
    graphs are half captured or being freed."""
    base = live()

    def work(i: int) -> None:
        for r in range(4):
            x0, c = mg.Value(0.0), mg.Value(1.0)
            x = x0
            for _ in range(20_000):
                x = x + c if i % 2 else x * c
            g = mg.Graph(x, inputs=[x0, c])
            g.set_inputs([float(r), 1.0])
            replay(g)
            assert x.data == float(r + 20_000 if i % 2 else r)
            assert c.grad == (20_000.0 if i % 2 else 20_000.0 * r)
            del g, x, x0, c

    run_threads(work)
    assert live() == base


def test_training_with_replay_in_threads_matches_a_sequential_eager_run() -> None:
    """Each thread trains its own copy of a model by replay: bit for bit the numbers of
    the same training run done eagerly in one thread."""
    xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
    ys = [1.0, -1.0, -1.0, 1.0]

    def make_model() -> nn.MLP:
        random.seed(1337)
        return nn.MLP(3, [4, 4, 1])

    def outputs(model: nn.MLP, rows: list[list[Any]]) -> list[mg.Value]:
        outs = [model(x) for x in rows]
        return [o for o in outs if isinstance(o, mg.Value)]

    def eager(model: nn.MLP) -> list[float]:
        opt = nn.Adam(model.parameters(), lr=0.05)
        losses = []
        for _ in range(30):
            loss = nn.mse_loss(outputs(model, xs), ys)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.data)
        return losses + [p.data for p in model.parameters()]

    def replayed(model: nn.MLP) -> list[float]:
        opt = nn.Adam(model.parameters(), lr=0.05)
        loss = nn.mse_loss(outputs(model, [[mg.Value(v) for v in x] for x in xs]), ys)
        g = mg.Graph(loss)
        losses = []
        for _ in range(30):
            g.forward()
            opt.zero_grad()
            g.backward()
            opt.step()
            losses.append(loss.data)
        return losses + [p.data for p in model.parameters()]

    reference = eager(make_model())
    models = [make_model() for _ in range(THREADS)]  # random.seed is process-wide
    results: list[list[float]] = [[] for _ in range(THREADS)]

    def work(i: int) -> None:
        results[i] = replayed(models[i])

    run_threads(work)
    for got in results:
        assert len(got) == len(reference)
        assert all(same(a, b) for a, b in zip(got, reference, strict=True))
    assert reference[0] > reference[29]  # it trained
