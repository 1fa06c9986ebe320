"""Weak references to Value and Value32 work as to micrograd's Values (weakref.ref,
WeakSet, WeakKeyDictionary, WeakValueDictionary, callbacks), while Values stay out of
Python's cyclic GC; and ``object.__new__(Value)``, which used to abort the interpreter,
is a TypeError.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import weakref
from typing import Any

import micrograd_cpp as mg
import pytest
from micrograd.engine import Value as MGValue

CLASSES = [mg.Value, mg.Value32]
# micrograd's Value is a plain Python class: the oracle for what weak references do.
ALL = [MGValue, mg.Value, mg.Value32]


@pytest.mark.parametrize("cls", ALL, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_ref_follows_the_object(cls: Any) -> None:
    v = cls(1.5)
    calls: list[object] = []
    r = weakref.ref(v, calls.append)
    assert r() is v
    del v
    assert r() is None
    assert calls == [r]  # the callback ran once, with the dead reference


@pytest.mark.parametrize("cls", ALL, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_weak_containers(cls: Any) -> None:
    a, b = cls(1.0), cls(2.0)
    ws = weakref.WeakSet([a, b])
    keys = weakref.WeakKeyDictionary({a: "a", b: "b"})
    values = weakref.WeakValueDictionary({"a": a, "b": b})
    assert len(ws) == len(keys) == len(values) == 2 and keys[a] == "a" and values["b"] is b
    del a
    assert list(ws) == [b] and list(keys) == [b] and list(values) == ["b"]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_values_stay_out_of_the_cyclic_gc(cls: Any) -> None:
    a = cls(1.0)
    b = (a * 2 + 1).tanh()
    inputs = b._prev
    r = weakref.ref(b)
    assert not gc.is_tracked(a) and not gc.is_tracked(b) and r() is b
    assert not any(gc.is_tracked(p) for p in inputs)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_a_node_in_a_graph_outlives_its_object(cls: Any) -> None:
    # Documented: a weak reference is to the Python object, which lives while it is held;
    # the node lives on in the graph, and _prev then hands out a new object for it.
    a = cls(3.0)
    out = a * 2
    r = weakref.ref(a)
    del a
    assert r() is None
    (again,) = [p for p in out._prev if p.data == 3.0]
    assert weakref.ref(again)() is again


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_callback_may_reach_the_dying_node_again(cls: Any) -> None:
    # The callback runs while the object dies; the node has forgotten it by then, so
    # reaching the node through the graph gives a new object, never the dying one.
    a = cls(3.0)
    out = a + 1
    seen: list[Any] = []
    r = weakref.ref(a, lambda _: seen.extend(p for p in out._prev if p.data == 3.0))
    del a
    assert r() is None and len(seen) == 1 and seen[0].data == 3.0
    assert seen[0] in out._prev


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_many_references_and_values_die_cleanly(cls: Any) -> None:
    gc.collect()  # earlier tests' cycles go now, not during this test (Python 3.13's GC)
    live = mg.arena_stats("float64" if cls is mg.Value else "float32")["live"]
    values = [cls(float(i)) for i in range(1000)]
    refs = [weakref.ref(v) for v in values for _ in range(3)]
    ws = weakref.WeakSet(values)
    del values
    assert all(r() is None for r in refs) and len(ws) == 0
    assert mg.arena_stats("float64" if cls is mg.Value else "float32")["live"] == live


def run_child(code: str) -> subprocess.CompletedProcess[str]:
    """Runs code in a fresh interpreter: a crash fails the test instead of pytest."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("name", ["Value", "Value32"])
def test_object_new_is_a_type_error(name: str) -> None:
    proc = run_child(f"""
        import gc, micrograd_cpp as mg
        cls = mg.{name}
        for make in (lambda: object.__new__(cls), lambda: cls.__new__(cls)):
            try:
                v = make()
            except TypeError as e:
                print("TypeError:", str(e).splitlines()[0])
            else:
                print("made", type(v))  # reading or dropping it used to abort
                print(v.data)
                del v
        gc.collect()
        print("alive")
        """)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "alive" and len(lines) == 3, proc.stdout
    assert f"object.__new__({name})" in lines[0] and f"call {name}(data)" in lines[0]
    assert lines[1].startswith("TypeError:")  # __new__ needs data
