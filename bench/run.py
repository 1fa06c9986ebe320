"""micrograd-cpp's benchmark suite: ``python bench/run.py [--quick]``.

Runs every engine on every workload, each measurement in its own process (workloads.py
for Python, core.cpp built here for the C++ core alone), repeats it, and prints one
markdown table of medians, peak memory, speedups over micrograd measured in the same
run, and the targets met or missed. Progress goes to stderr. See bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
REFERENCE = ROOT / "tests" / "reference" / "moons_micrograd.json"
FINAL_LOSS = 0.010978370135492717  # micrograd's loss at step 100 of the demo

ENGINES = {  # key: label in the table
    "micrograd": "micrograd (GC on)",
    "micrograd-nogc": "micrograd (GC off)",
    "micrograd-cpp": "micrograd-cpp",
    "micrograd-cpp-graph": "micrograd-cpp, Graph replay",
    "torch-scalar": "torch 0-d tensors",
    "torch-batched": "torch batched",
    "core-micrograd": "C++ core: micrograd-cpp",
    "core-tape": "C++ core: flat tape",
    "core-tape-fused": "C++ core: flat tape, fused neurons",
    "core-replay": "C++ core: Graph replay",
}
MICROGRAD = ("micrograd", "micrograd-nogc")
TORCH = ("torch-scalar", "torch-batched")
SLOW = (*MICROGRAD, "torch-scalar")  # too slow for 100 moons steps or 10^7 nodes
GRAPH = "micrograd-cpp-graph"  # runs moons, digits and capture only
DIGITS = (*MICROGRAD, "micrograd-cpp", GRAPH, "torch-batched")
WORKLOADS = ("ops", "attrs", "leaf", "moons", "notebook", "deep", "wide", "digits", "capture")
NOTEBOOK = (*MICROGRAD, "micrograd-cpp")  # micrograd's own loop, on either library
# Why SLOW engines stop at 10^6 steps of the deep chain (B/op node measured at 10^6).
SKIPPED_10_7 = {
    "micrograd": "not run: at ~1,560 B/op node, 2·10⁷ op nodes need ~31 GB (24 GB here)",
    "torch-scalar": "not run: at ~920 B/op node and ~10 µs per op node, ~18 GB and ~4 min",
}
SKIPPED_10_7["micrograd-nogc"] = SKIPPED_10_7["micrograd"]


# Every engine computes on one core: no BLAS or OpenMP thread pools (torch: set_num_threads(1)).
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
IMPORT_ERRORS = ("ImportError", "ModuleNotFoundError")  # micrograd_cpp is being rebuilt
# The fields of workloads.Result that a measurement may leave out.
OPTIONAL: dict[str, Any] = {"op_nodes": None, "loss": None, "steps": None, "ok": True, "note": ""}


@dataclass(frozen=True)
class Plan:
    repeats: int  # runs per measurement (the median is reported)
    long_s: float  # a measurement that timed longer than this in its first run is not repeated
    ops_ms: int  # ops: run batches of iterations for at least this long
    steps: int  # moons steps for the fast engines
    slow_steps: int  # moons steps for micrograd and torch 0-d tensors
    deep: tuple[int, ...]
    wide: tuple[int, ...]
    core_deep: tuple[int, ...]
    epochs: int  # digits epochs for the fast engines (micrograd: one batch)
    capture_deep: int  # the deep chain's length in the capture rows


FULL = Plan(
    repeats=5,
    long_s=5.0,
    ops_ms=1000,
    steps=100,
    slow_steps=5,
    deep=(10**3, 10**4, 10**5, 10**6, 10**7),
    wide=(10**6,),
    core_deep=(10**3, 10**5, 10**7),
    epochs=3,
    capture_deep=10**6,
)
QUICK = Plan(
    repeats=1,
    long_s=1.0,
    ops_ms=200,
    steps=100,
    slow_steps=1,
    deep=(10**3, 10**5),
    wide=(10**5,),
    core_deep=(10**3, 10**5),
    epochs=1,
    capture_deep=10**5,
)


@dataclass(frozen=True)
class Case:
    workload: str  # one of WORKLOADS
    variant: str  # ops: fwd or fwd+bwd; deep, wide: the size; capture: what is captured
    engine: str
    command: tuple[str, ...]  # empty: not run, for the reason in `skip`
    skip: str = ""

    @property
    def label(self) -> str:
        return f"{self.workload} {self.variant}".strip()


@dataclass
class Row:
    case: Case
    runs: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""

    def median(self, key: str) -> float:
        return statistics.median(r[key] for r in self.runs)

    @property
    def first(self) -> dict[str, Any]:
        return self.runs[0]


def power(n: int) -> str:
    """10**k as 10ᵏ (markdown-safe), anything else with thousands separators."""
    k = len(str(n)) - 1
    return (
        "10" + str(k).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))
        if n == 10**k
        else f"{n:,}"
    )


def plan_cases(plan: Plan, engines: list[str], core: Path | None, data: Path) -> list[Case]:
    py = (sys.executable, str(BENCH / "workloads.py"))
    python = [e for e in engines if not e.startswith("core-")]
    cores = [e for e in engines if e.startswith("core-")]
    cases: list[Case] = []

    def add(workload: str, variant: str, engine: str, args: list[str], skip: str = "") -> None:
        if engine.startswith("core-"):
            command = (str(core), engine.removeprefix("core-"), *args) if core else ()
            skip = skip or ("" if core else "not run: core.cpp did not build")
        else:
            command = () if skip else (*py, engine, *args)
        cases.append(Case(workload, variant, engine, command, skip))

    scalar = [e for e in python if e != GRAPH]  # the eager engines
    for variant in ("fwd", "fwd+bwd"):
        for e in scalar:
            add("ops", variant, e, [f"ops-{variant}", str(plan.ops_ms)])
    for e in python:
        if e in NOTEBOOK:
            add("attrs", "", e, ["attrs", str(plan.ops_ms)])
            for kind in ("float", "np.float64"):
                add("leaf", kind, e, [f"leaf-{kind}", str(plan.ops_ms)])
    for e in python + cores:
        steps = plan.slow_steps if e in SLOW else plan.steps
        add("moons", "", e, ["moons", str(steps)] + ([str(data)] if e in cores else []))
    for e in python:
        if e in NOTEBOOK:
            steps = plan.slow_steps if e in SLOW else plan.steps
            add("notebook", "", e, ["notebook", str(steps)])
    for n in sorted(set(plan.deep) | set(plan.core_deep)):
        for e in scalar + cores:
            if e in ("torch-batched", "core-tape-fused", "core-replay"):  # no deep chain here
                continue
            if n not in (plan.core_deep if e in cores else plan.deep):
                continue
            add(
                "deep", power(n), e, ["deep", str(n)], SKIPPED_10_7.get(e, "") if n >= 10**7 else ""
            )
    for n in plan.wide:
        for e in scalar:
            add("wide", power(n), e, ["wide", str(n)])
    for e in python:
        if e in DIGITS:
            add("digits", "", e, ["digits", "1" if e in MICROGRAD else str(plan.epochs)])
    if GRAPH in python:
        for what, n in (("moons", 1), ("digits", 1), ("deep", plan.capture_deep)):
            variant = f"deep {power(n)}" if what == "deep" else what
            add("capture", variant, GRAPH, [f"capture-{what}", str(n)])
    return cases


def run_once(command: tuple[str, ...], timeout: float) -> tuple[dict[str, Any] | None, str]:
    """One measurement: its JSON result, or None and why it failed. While micrograd_cpp is
    being rebuilt (an ImportError), wait and retry."""
    for _ in range(10):
        try:
            p = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=ENV
            )
        except subprocess.TimeoutExpired:
            return None, f"timed out after {timeout:.0f} s"
        if p.returncode == 0:
            return {**OPTIONAL, **json.loads(p.stdout.strip().splitlines()[-1])}, ""
        lines = p.stderr.strip().splitlines() or [f"exit status {p.returncode}"]
        if "micrograd_cpp" in p.stderr and lines[-1].startswith(IMPORT_ERRORS):
            print(
                "  micrograd_cpp does not import (being rebuilt?); retrying in 30 s",
                file=sys.stderr,
            )
            time.sleep(30)
            continue
        if p.returncode < 0:
            return None, f"killed by signal {-p.returncode}"
        return None, lines[-1][:200]
    return None, "micrograd_cpp did not import"


def measure(case: Case, plan: Plan, timeout: float) -> Row:
    row = Row(case, error=case.skip)
    if not case.command:
        return row
    for _ in range(plan.repeats):
        result, error = run_once(case.command, timeout)
        if result is None:
            row.error = f"failed: {error}"
            break
        row.runs.append(result)
        if len(row.runs) == 1 and result["ns"] * result["count"] / 1e9 > plan.long_s:
            break
    return row


# ---------------------------------------------------------------- the table

LEGEND = (
    "An op is one Python operator call (8 per ops iteration); an op node is a graph node "
    "made by an op (2 per deep step, 2 per wide product); a digits epoch is 44 Adam steps on "
    "batches of 32 (micrograd: one step timed, times 44); a capture row's time is one "
    "`Graph(root)`, its bytes are per captured node (`len(g)`, leaves included); peak RSS "
    "growth is the high-water mark over the workload less the RSS just before it; speedups "
    "compare medians."
)


def fmt_time(ns: float, unit: str) -> str:
    if unit == "step":
        return f"{ns / 1e6:,.{2 if ns < 1e8 else 0}f} ms/step"
    if unit == "capture":
        return f"{ns / 1e6:,.2f} ms/capture"
    if unit == "epoch":
        return f"{ns / 1e9:,.3g} s/epoch" if ns >= 1e9 else f"{ns / 1e6:,.1f} ms/epoch"
    return f"{ns:,.{1 if ns < 100 else 0}f} ns/{unit}"


def fmt_ratio(x: float) -> str:
    return f"{x:,.{1 if x < 100 else 0}f}×"


class Table:
    def __init__(self, rows: list[Row]) -> None:
        self.rows = rows
        self.by_key = {(r.case.label, r.case.engine): r for r in rows if r.runs}
        self.engines = {r.case.engine for r in rows}

    def other(self, row: Row, engine: str) -> Row | None:
        return self.by_key.get((row.case.label, engine))

    def has(self, *engines: str) -> bool:
        return set(engines) <= self.engines

    def speedup(self, row: Row, engine: str) -> float | None:
        base = self.other(row, engine)
        if not row.runs or base is None or base.first["unit"] != row.first["unit"]:
            return None
        return base.median("ns") / row.median("ns")

    def target(self, row: Row) -> tuple[str, bool] | None:
        """The issue's target for this row, as text with the figure, and whether it is met.
        A target that compares with an engine left out of this run is not checked."""
        c, ran = row.case, bool(row.runs) and all(r["ok"] for r in row.runs)
        if c.engine == "micrograd-cpp" and c.label == "ops fwd+bwd" and self.has(*MICROGRAD):
            x = min((s for e in MICROGRAD if (s := self.speedup(row, e))), default=0.0)
            return (
                "≤ 150 ns/op, ≥ 20× micrograd (both)",
                ran and row.median("ns") <= 150 and x >= 20,
            )
        if c.engine == "micrograd-cpp" and c.workload == "moons" and self.has("micrograd-nogc"):
            x = self.speedup(row, "micrograd-nogc") or 0.0
            return (
                "≤ 2 ms/step, ≥ 300× micrograd GC off, loss = micrograd's at step 100",
                ran
                and row.median("ns") <= 2e6
                and x >= 300
                and row.first["steps"] == 100
                and row.first["loss"] == FINAL_LOSS,
            )
        if c.engine == "micrograd-cpp" and c.workload == "notebook" and self.has("micrograd-nogc"):
            x = self.speedup(row, "micrograd-nogc") or 0.0
            return (
                "≥ 350× micrograd GC off, loss = micrograd's at step 100",
                ran and x >= 350 and row.first["steps"] == 100 and row.first["loss"] == FINAL_LOSS,
            )
        if c.engine == "micrograd-cpp" and c.workload == "attrs" and self.has("micrograd-nogc"):
            x = 1 / (self.speedup(row, "micrograd-nogc") or math.inf)
            return f"≤ 1.5× micrograd GC off (is {x:.2f}×)", ran and x <= 1.5
        if c.engine == "micrograd-cpp" and c.label == "leaf np.float64":
            floats = self.by_key.get(("leaf float", c.engine))
            if floats is None or not floats.runs or not row.runs:
                return "≤ 1.3× Value(0.5)", False
            x = row.median("ns") / floats.median("ns")
            return f"≤ 1.3× Value(0.5) (is {x:.2f}×)", ran and x <= 1.3
        if c.engine == "micrograd-cpp" and c.workload == "deep":
            n = int(c.command[-1]) if c.command else 0
            if n < 10**5:
                return "works", ran
            return "works, ≤ 100 B/op node", ran and row.median("peak_bytes") / (2 * n) <= 100
        if c.engine == GRAPH and c.workload == "moons" and self.has("micrograd-nogc"):
            x = self.speedup(row, "micrograd-nogc") or 0.0
            what, met = "≥ 1,500× micrograd GC off, loss = micrograd's at step 100", x >= 1500
            if self.has("torch-batched"):  # torch is optional
                torch = self.other(row, "torch-batched")
                t = torch.median("ns") / row.median("ns") if torch and row.runs else 0.0
                figure = f" (is {t:.1f}×)" if t else ""
                what, met = f"≥ 4× torch batched{figure}, {what}", met and t >= 4
            return what, (
                ran and met and row.first["steps"] == 100 and row.first["loss"] == FINAL_LOSS
            )
        if c.engine == GRAPH and c.workload == "digits" and self.has("torch-batched"):
            torch = self.other(row, "torch-batched")
            t = torch.median("ns") / row.median("ns") if torch and row.runs else 0.0
            figure = f" (is {t:.1f}× faster)" if t else ""
            return f"≤ torch batched's time per epoch{figure}", ran and t >= 1
        # against the tape that builds the same graph: fused neurons on moons
        floor = "core-tape-fused" if c.workload == "moons" else "core-tape"
        if c.engine == "core-micrograd" and self.has(floor):
            tape = self.other(row, floor)
            what = "≤ 2× " + ENGINES[floor].removeprefix("C++ core: ")
            if tape is None or not row.runs:
                return what, False
            x = row.median("ns") / tape.median("ns")
            return f"{what} (is {x:.1f}×)", ran and x <= 2
        return None

    def notes(self, row: Row) -> str:
        if not row.runs:
            return row.error
        r = row.first
        parts = []
        if r["loss"] is not None:
            steps = r["steps"]
            parts.append(f"loss {r['loss']!r} after {steps} step{'s' * (steps > 1)}")
        if not all(x["ok"] for x in row.runs):
            parts.append("**WRONG RESULT**")
        if r["note"]:
            parts.append(r["note"])
        return "; ".join(parts)

    def markdown(self) -> str:
        head = [
            "workload",
            "engine",
            "runs",
            "median time",
            "peak RSS growth",
            "B/op node",
            "speedup vs micrograd GC on",
            "speedup vs micrograd GC off",
            "notes",
            "target",
            "check",
        ]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in self.rows:
            cells = [row.case.label, ENGINES[row.case.engine], str(len(row.runs))]
            if row.runs:
                peak, unit = row.median("peak_bytes"), row.first["unit"]
                op_nodes = row.first["op_nodes"]
                cells += [
                    fmt_time(row.median("ns"), unit),
                    f"{peak / 2**20:,.1f} MB",
                    f"{peak / op_nodes:,.0f}" if op_nodes else "",
                ]
            else:
                cells += ["", "", ""]
            for e in MICROGRAD:
                s = self.speedup(row, e)
                cells.append(fmt_ratio(s) if s and row.case.engine != e else "")
            target = self.target(row)
            cells += [
                self.notes(row),
                target[0] if target else "",
                ("PASS" if target[1] else "**MISS**") if target else "",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        checks = [t[1] for row in self.rows if (t := self.target(row))]
        lines += ["", f"Targets: {sum(checks)} PASS, {len(checks) - sum(checks)} MISS. {LEGEND}"]
        return "\n".join(lines)


# ---------------------------------------------------------------- setup


def build_core(build_dir: Path) -> Path | None:
    """g++ -std=c++17 -O3 -DNDEBUG -ffp-contract=off -I cpp/include bench/core.cpp -o BUILD/core"""
    exe = build_dir / "core"
    cxx = os.environ.get("CXX", "g++")
    cmd = [
        cxx,
        "-std=c++17",
        "-O3",
        "-DNDEBUG",
        "-ffp-contract=off",
        f"-I{ROOT / 'cpp' / 'include'}",
        str(BENCH / "core.cpp"),
        "-o",
        str(exe),
    ]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        print(f"cannot build core.cpp: {e}", file=sys.stderr)
        return None
    if p.returncode != 0:
        print(f"core.cpp did not build:\n{p.stderr}", file=sys.stderr)
        return None
    return exe


def write_moons_data(path: Path) -> None:
    """The demo's data and micrograd's initial parameters, as plain numbers for core.cpp."""
    ref = json.loads(REFERENCE.read_text())
    lines = [str(len(ref["y"]))]
    lines += [f"{x0!r} {x1!r} {y}" for (x0, x1), y in zip(ref["X"], ref["y"], strict=True)]
    lines += [str(len(ref["initial_parameters"]))]
    lines += [repr(p) for p in ref["initial_parameters"]]
    path.write_text("\n".join(lines) + "\n")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}"
        for name in ("micrograd", "micrograd-cpp", "torch")
        if importlib.util.find_spec(name.replace("-", "_"))
    )
    return (
        f"nproc {os.cpu_count()}, {cpu}; Python {platform.python_version()}; {versions}; "
        f"{datetime.date.today()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (under 2 minutes)")
    parser.add_argument("--repeats", type=int, help="runs per measurement (default 5, quick 1)")
    parser.add_argument(
        "--engines",
        default=",".join(ENGINES),
        help=f"comma-separated subset of {','.join(ENGINES)}",
    )
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help=f"comma-separated subset of {','.join(WORKLOADS)}",
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds per process")
    parser.add_argument("--output", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.repeats:
        plan = dataclasses.replace(plan, repeats=args.repeats)
    engines = [e for e in args.engines.split(",") if e]
    unknown = set(engines) - set(ENGINES)
    if unknown:
        parser.error(f"unknown engines: {', '.join(sorted(unknown))}")
    if importlib.util.find_spec("torch") is None:
        print("torch is not installed: no torch rows", file=sys.stderr)
        engines = [e for e in engines if e not in TORCH]
    workloads = args.workloads.split(",")

    with tempfile.TemporaryDirectory(prefix="micrograd-bench-") as tmp:
        build_dir = Path(tmp)
        core = build_core(build_dir) if any(e.startswith("core-") for e in engines) else None
        data = build_dir / "moons.txt"
        write_moons_data(data)
        cases = [c for c in plan_cases(plan, engines, core, data) if c.workload in workloads]
        rows = []
        started, load = time.perf_counter(), os.getloadavg()[0]
        for i, case in enumerate(cases, 1):
            print(
                f"[{i}/{len(cases)}] {case.label}, {ENGINES[case.engine]}: "
                f"{shlex.join(case.command) or case.skip}",
                file=sys.stderr,
                flush=True,
            )
            start = time.perf_counter()
            row = measure(case, plan, args.timeout)
            rows.append(row)
            outcome = (
                f"{fmt_time(row.median('ns'), row.first['unit'])}, {len(row.runs)} runs"
                if row.runs
                else row.error
            )
            print(f"  {outcome} ({time.perf_counter() - start:.1f} s)", file=sys.stderr, flush=True)

    command = "python bench/run.py" + " ".join(["", *(argv if argv is not None else sys.argv[1:])])
    text = (
        f"`{command.rstrip()}` — {machine()}; {time.perf_counter() - started:.0f} s; "
        f"load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
        f"\n\n{Table(rows).markdown()}\n"
    )
    print(text)
    if args.output:
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
