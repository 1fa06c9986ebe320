"""Where the instructions of micrograd's notebook step go with micrograd_cpp: into
micrograd_cpp's extension module, or into the rest (the loop's own work: NumPy scalars and
rows, the interpreter running the loop and nn.py, builtins).

    python bench/notebook_split.py [STEPS]

Counts, with callgrind, the instructions of STEPS (default 10) steps of the ``notebook``
workload (bench/workloads.py) after two untimed ones: first with micrograd_cpp (one import
changed), split into the calls that enter the extension module (everything they run, the
Python objects they make and free included) and the rest; then with micrograd itself (two
steps: each takes about 0.8 G instructions). Prints the instructions per step and what a
ratio to micrograd's step allows. Instruction counts repeat from run to run, whatever else
the machine is doing; wall time does not weigh instructions equally (micrograd's step is
bound by memory more than micrograd_cpp's), so these are a guide to the wall-time ratios
that bench/run.py measures, not the same thing.

Needs valgrind. bench/README.md ("Where the notebook step's time goes") uses the result.
"""

from __future__ import annotations

import gc
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
# callgrind counts only inside this function: the child calls the timed steps through it,
# and nothing a step does calls it.
MARK = "functools_reduce"


def child(engine: str, steps: int) -> None:
    """Two untimed steps of the notebook workload, then `steps` through MARK."""
    import functools

    sys.path.insert(0, str(HERE))
    import workloads

    gc.disable()  # micrograd-nogc's setting, for both engines
    step = workloads.notebook(engine)
    step(0), step(1)
    functools.reduce(lambda _, k: step(k), range(2, 2 + steps), 0.0)


def records(path: Path) -> Iterator[tuple[str, str, str | None, int]]:
    """(object, function, called object or None, instructions) for each cost line of a
    callgrind output file: a function's own instructions, or a call's inclusive ones."""
    names: dict[str, dict[str, str]] = {"ob": {}, "fn": {}, "fl": {}}
    fn_object: dict[str, str] = {}
    ob = fn = ""
    call: str | None = None
    called_ob: str | None = None
    for line in path.read_text(errors="replace").splitlines():
        key, eq, rest = line.partition("=")
        if eq and key in ("ob", "fn", "cob", "cfn", "fl", "fi", "fe", "cfi", "cfl"):
            table = names[{"cob": "ob", "cfn": "fn"}.get(key, key if key in names else "fl")]
            m = re.match(r"\((\d+)\)(?: (.*))?$", rest)
            name = rest if m is None else table.setdefault(m.group(1), m.group(2) or "")
            if key == "ob":
                ob = name
            elif key == "fn":
                fn, fn_object[name] = name, ob
            elif key == "cob":
                called_ob = name
            elif key == "cfn":
                call = name
        elif line.startswith("calls="):
            continue
        elif line[:1].isdigit() or line[:1] in "+-*":
            fields = line.split()
            if len(fields) < 2:
                continue
            if call is not None:
                yield ob, fn, called_ob or fn_object.get(call, ob), int(fields[1])
                call = called_ob = None
            else:
                yield ob, fn, None, int(fields[1])


def count(engine: str, steps: int, extension: str) -> tuple[int, int]:
    """Instructions of `steps` steps on `engine`: in all, and in the calls into the
    extension module made from outside it."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        command = ["valgrind", "--tool=callgrind", "--collect-atstart=no"]
        command += [f"--toggle-collect={MARK}", f"--callgrind-out-file={out}"]
        command += [sys.executable, __file__, "--child", engine, str(steps)]
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONHASHSEED="0")
        subprocess.run(
            command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        total = entered = 0
        for ob, _, called, n in records(out):
            if called is None:
                total += n
            elif extension not in ob and extension in called:
                entered += n
    return total, entered


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        child(argv[1], int(argv[2]))
        return 0
    steps = int(argv[0]) if argv else 10
    try:
        subprocess.run(["valgrind", "--version"], check=True, capture_output=True)
    except (FileNotFoundError, subprocess.CalledProcessError):
        print("notebook_split: needs valgrind", file=sys.stderr)
        return 2
    import micrograd_cpp._core

    extension = Path(micrograd_cpp._core.__file__).name
    total, entered = count("micrograd-cpp", steps, extension)
    reference, _ = count("micrograd-nogc", 2, extension)
    ours, rest, theirs = entered / steps, (total - entered) / steps, reference / 2
    print(f"micrograd_cpp, instructions per notebook step: {total / steps / 1e6:.2f} M")
    print(f"  in calls into {extension}: {ours / 1e6:.2f} M ({entered / total:.0%})")
    print(
        f"  the rest (the loop's own work, nn.py): {rest / 1e6:.2f} M ({1 - entered / total:.0%})"
    )
    print(f"micrograd, instructions per notebook step: {theirs / 1e6:.0f} M")
    print(
        f"ratio in instructions: {theirs / (total / steps):.0f}x; with the extension's "
        f"calls costing nothing: {theirs / rest:.0f}x"
    )
    for target in (300, 350):
        print(
            f"{target}x allows {theirs / target / 1e6:.2f} M per step, "
            f"{(theirs / target - rest) / 1e6:+.2f} M for the extension's calls"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
