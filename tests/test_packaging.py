"""Packaging and release configuration (issue "Wheels for everyone").

cibuildwheel's build identifiers for pyproject.toml's [tool.cibuildwheel], the shape of the
GitHub workflows, and what the sdist and the wheels contain. .ci/wheels runs this file with
MICROGRAD_REQUIRE_PACKAGING=1 (a missing tool or source tree then fails instead of
skipping) and MICROGRAD_DIST=<the folder holding the sdist and wheels it built>.

From an installed wheel without the source tree beside the tests, or without the tools
(cibuildwheel, build, PyYAML, tomllib/tomli), these tests skip. With
MICROGRAD_EXPECT_INSTALLED=1 (the wheel test runs of .ci/wheels and cibuildwheel), one more
test asserts that ``micrograd_cpp`` was imported from site-packages, not the source tree.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import re
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any, NoReturn

import pytest

# A tool run (CMake, mypy, a wheel build): `python -m pytest -m "not slow"` skips it.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
IS_SOURCE_TREE = all(
    (ROOT / p).is_file()
    for p in ("pyproject.toml", "CMakeLists.txt", "python/micrograd_cpp/__init__.py")
)
REQUIRED = os.environ.get("MICROGRAD_REQUIRE_PACKAGING") == "1"

# Directories and files that must never be in an sdist (build trees, environments, caches,
# CI files) and file types that must never be in one (built artifacts).
FORBIDDEN_DIRS = {
    "build", "dist", "wheelhouse", ".venv", "venv", ".tox", ".nox", ".git", ".github",
    ".ci", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".hypothesis",
    ".benchmarks",
}  # fmt: skip
FORBIDDEN_SUFFIXES = {".whl", ".so", ".pyd", ".dylib", ".o", ".obj", ".pyc", ".egg-info"}
# In the repository but deliberately not in the sdist (pyproject.toml's sdist.exclude).
NOT_IN_SDIST = (".github/", ".ci/")
ACTION_PIN = re.compile(r"^[\w.-]+/[\w./-]+@v\d+\.\d+\.\d+$")


def unavailable(reason: str) -> NoReturn:
    if REQUIRED:
        pytest.fail(f"{reason} (and MICROGRAD_REQUIRE_PACKAGING=1)")
    pytest.skip(reason)


def source_tree() -> Path:
    if not IS_SOURCE_TREE:
        unavailable("the source tree is not beside the tests (installed-wheel run)")
    return ROOT


def module(name: str) -> None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:  # (a folder such as build/ is no module)
        unavailable(f"{name} is not installed")


def pyproject() -> dict[str, Any]:
    root = source_tree()
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        module("tomli")
        import tomli as tomllib
    with open(root / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def workflow(name: str) -> dict[str, Any]:
    path = source_tree() / ".github" / "workflows" / name
    if not path.is_file():
        unavailable(f"no {path} (an unpacked sdist has no .github/)")
    module("yaml")
    import yaml

    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in doc:  # YAML 1.1 reads the key `on` as True
        doc["on"] = doc.pop(True)
    return doc


def steps_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for job in doc["jobs"].values() for s in job.get("steps", [])]


def dist_files(pattern: str) -> list[Path]:
    folder = os.environ.get("MICROGRAD_DIST")
    if not folder:
        unavailable("MICROGRAD_DIST (the folder of built distributions) is not set")
    files = sorted(Path(folder).glob(pattern))
    if not files:
        pytest.fail(f"no {pattern} in MICROGRAD_DIST={folder}")
    return files


# --- pyproject.toml -------------------------------------------------------------------


def test_pyproject_release_settings() -> None:
    config = pyproject()
    skbuild = config["tool"]["scikit-build"]
    assert skbuild["wheel"]["py-api"] == "cp312"  # abi3 from CPython 3.12 on
    for pattern in ("/build/", "/dist/", ".venv/", "*.whl", "*.so"):
        assert pattern in skbuild["sdist"]["exclude"]
    cibw = config["tool"]["cibuildwheel"]
    assert cibw["archs"] == ["auto64"]
    assert "pytest {project}/tests" in cibw["test-command"]
    assert "test" in cibw.get("test-extras", []) or cibw.get("test-requires")
    target = cibw["macos"]["environment"]["MACOSX_DEPLOYMENT_TARGET"]
    assert tuple(map(int, target.split("."))) >= (10, 14)  # C++17


def test_version_is_the_same_everywhere() -> None:
    """pyproject.toml, CMakeLists.txt and micrograd_cpp.__version__ (a release tag vX.Y.Z
    must match too: .github/workflows/wheels.yml checks that)."""
    version = pyproject()["project"]["version"]
    cmake = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    init = (ROOT / "python" / "micrograd_cpp" / "__init__.py").read_text(encoding="utf-8")
    assert re.search(r"project\(micrograd_cpp VERSION ([\d.]+)", cmake)[1] == version
    assert re.search(r"^__version__ = \"([^\"]+)\"$", init, re.M)[1] == version


# --- cibuildwheel --------------------------------------------------------------------


@cache
def build_identifiers(platform_: str, archs: str | None = None) -> tuple[str, ...]:
    root = source_tree()
    module("cibuildwheel")
    cmd = [sys.executable, "-m", "cibuildwheel", "--print-build-identifiers"]
    cmd += ["--platform", platform_, *(["--archs", archs] if archs else []), str(root)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIBW_")}
    done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return tuple(done.stdout.split())


# Each runner of .github/workflows/wheels.yml: platform, architecture, identifier suffix.
RUNNERS = [
    ("linux", "x86_64", "manylinux_x86_64"),
    ("linux", "aarch64", "manylinux_aarch64"),
    ("macos", "x86_64", "macosx_x86_64"),
    ("macos", "arm64", "macosx_arm64"),
    ("windows", "AMD64", "win_amd64"),
]


@pytest.mark.parametrize(("platform_", "arch", "suffix"), RUNNERS)
def test_each_runner_builds_cpython_310_and_later(platform_: str, arch: str, suffix: str) -> None:
    ids = build_identifiers(platform_, arch)
    for version in ("cp310", "cp311", "cp312", "cp313"):
        assert f"{version}-{suffix}" in ids, ids
    # CPython only (no PyPy, GraalPy, free-threaded cp3XXt) and only this architecture
    assert all(re.fullmatch(rf"cp3\d+-{suffix}", i) for i in ids), ids


@pytest.mark.parametrize("platform_", ["linux", "macos", "windows"])
def test_default_architectures_are_64_bit_cpython(platform_: str) -> None:
    ids = build_identifiers(platform_)  # archs from pyproject.toml, on this machine's CPU
    assert any(i.startswith("cp310-") for i in ids), ids
    assert any(i.startswith("cp312-") for i in ids), ids
    for i in ids:
        assert re.fullmatch(r"cp3\d+-\w+", i), i  # no pp*, gp*, cp3XXt-*
        assert not re.search(r"i686|win32|armv7l|musllinux", i), i
    if platform_ == "linux" and platform.machine() in ("x86_64", "AMD64"):
        assert {"cp310-manylinux_x86_64", "cp311-manylinux_x86_64"} <= set(ids), ids
    if platform_ == "windows":
        assert "cp310-win_amd64" in ids or "cp310-win_arm64" in ids, ids


# --- GitHub workflows ----------------------------------------------------------------


def test_workflow_actions_are_pinned_to_exact_versions() -> None:
    for name in ("wheels.yml", "ci.yml"):
        for step in steps_of(workflow(name)):
            if "uses" in step:
                assert ACTION_PIN.match(step["uses"]), f"{name}: {step['uses']}"


def test_wheels_workflow_builds_every_platform_and_publishes_on_release() -> None:
    doc = workflow("wheels.yml")
    assert "release" in doc["on"] and "sdist" in doc["jobs"]
    wheels = doc["jobs"]["wheels"]
    runners = {entry["os"] for entry in wheels["strategy"]["matrix"]["include"]}
    assert {"ubuntu-24.04", "ubuntu-24.04-arm", "macos-14", "macos-15-intel"} <= runners
    assert any(r.startswith("windows-") for r in runners), runners
    assert any(s.get("uses", "").startswith("pypa/cibuildwheel@") for s in wheels["steps"])
    publish = doc["jobs"]["publish"]
    assert set(publish["needs"]) >= {"sdist", "wheels"}
    assert "release" in publish["if"]
    assert publish["permissions"] == {"id-token": "write"}  # trusted publishing
    (upload,) = [s for s in publish["steps"] if "gh-action-pypi-publish" in s.get("uses", "")]
    assert not {"password", "user"} & set(upload.get("with", {})), "no token: trusted publishing"


def test_ci_workflow_runs_tests_lint_and_sanitizers_on_pull_requests() -> None:
    doc = workflow("ci.yml")
    assert "pull_request" in doc["on"]
    runs = {n: " ".join(s.get("run", "") for s in job["steps"]) for n, job in doc["jobs"].items()}
    assert ".ci/run" in runs["test"]
    assert ".ci/lint" in runs["lint"]
    lint = (ROOT / ".ci" / "lint").read_text()
    assert all(
        check in lint for check in ("clang-format", "--Werror", "ruff format --check", "ruff check")
    )
    assert ".ci/sanitize" in runs["sanitize"]


# --- the sdist -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist .ci/wheels built (MICROGRAD_DIST), or one built here from the source tree."""
    root = source_tree()
    if os.environ.get("MICROGRAD_DIST"):
        (path,) = dist_files("*.tar.gz")
        return path
    module("build")
    out = tmp_path_factory.mktemp("sdist")
    cmd = [sys.executable, "-m", "build", "--sdist", "--outdir", str(out), str(root)]
    done = subprocess.run(cmd, cwd=out, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    (path,) = out.glob("*.tar.gz")
    return path


def sdist_names(path: Path) -> set[str]:
    with tarfile.open(path) as tar:
        members = [m for m in tar.getmembers() if not m.isdir()]
    tops = {PurePosixPath(m.name).parts[0] for m in members}
    assert len(tops) == 1, f"an sdist has one top-level folder, not {sorted(tops)}"
    return {str(PurePosixPath(*PurePosixPath(m.name).parts[1:])) for m in members}


def test_sdist_holds_the_sources_and_tests(sdist: Path) -> None:
    names = sdist_names(sdist)
    for required in (
        "PKG-INFO", "pyproject.toml", "CMakeLists.txt", "README.md", "LICENSE",
        "python/micrograd_cpp/__init__.py", "python/micrograd_cpp/py.typed",
        "bindings/module.cpp", "cpp/include/micrograd.hpp", "tests/test_packaging.py",
    ):  # fmt: skip
        assert required in names, f"{required} is missing from {sdist.name}"


def test_sdist_holds_no_build_trees_environments_or_artifacts(sdist: Path) -> None:
    for name in sorted(sdist_names(sdist)):
        parts = PurePosixPath(name).parts
        assert not FORBIDDEN_DIRS & set(parts[:-1]), f"{name} is in {sdist.name}"
        assert not any(p.endswith(tuple(FORBIDDEN_SUFFIXES)) for p in parts), name
        assert parts[-1] != "CMakeCache.txt", name


def test_sdist_is_the_repository_minus_ci_files(sdist: Path) -> None:
    """Every committed file but CI's, and nothing git ignores."""
    root = source_tree()
    if not (root / ".git").exists():
        unavailable("not a git checkout")

    def git_files(*args: str) -> set[str]:
        cmd = ["git", "ls-files", *args]
        try:
            done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=True)
        except (OSError, subprocess.CalledProcessError) as e:
            unavailable(f"git ls-files failed: {e}")
        return {n for n in done.stdout.splitlines() if (root / n).is_file()}

    tracked = git_files("--cached")
    visible = tracked | git_files("--others", "--exclude-standard")
    names = sdist_names(sdist) - {"PKG-INFO"}
    assert not names - visible, f"in the sdist but ignored by git: {sorted(names - visible)}"
    missing = sorted(n for n in tracked - names if not n.startswith(NOT_IN_SDIST))
    assert not missing, f"committed but not in the sdist: {missing}"


# --- the wheels .ci/wheels built -----------------------------------------------------


def test_wheels_hold_the_package_and_one_matching_extension() -> None:
    for wheel in dist_files("*.whl"):
        with zipfile.ZipFile(wheel) as zf:
            names = set(zf.namelist())
            metadata = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
        abi = wheel.name.split("-")[-2]  # name-version-python-abi-platform.whl
        assert all(n.startswith(("micrograd_cpp/", "micrograd_cpp-")) for n in names), names
        assert {"micrograd_cpp/__init__.py", "micrograd_cpp/py.typed"} <= names
        if IS_SOURCE_TREE:
            sources = (ROOT / "python" / "micrograd_cpp").glob("*.py")
            assert {f"micrograd_cpp/{p.name}" for p in sources} <= names
        cores = [n for n in names if re.fullmatch(r"micrograd_cpp/_core\.[\w.-]*(so|pyd)", n)]
        assert len(cores) == 1, f"{wheel.name}: one extension module, not {cores}"
        if cores[0].endswith(".so"):  # abi3 wheel <=> abi3 .so, and never one without the other
            assert (abi == "abi3") == (".abi3." in cores[0]), f"{wheel.name}: {cores[0]}"
        assert b"Requires-Python: >=3.10" in metadata


# --- an installed wheel ---------------------------------------------------------------


def test_package_is_imported_from_site_packages() -> None:
    if os.environ.get("MICROGRAD_EXPECT_INSTALLED") != "1":
        pytest.skip("only for a test run against an installed wheel")
    import micrograd_cpp
    import micrograd_cpp._core

    site = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
    for path in (Path(micrograd_cpp.__file__), Path(micrograd_cpp._core.__file__)):
        path = path.resolve()
        assert any(path.is_relative_to(s) for s in site), f"{path} is not under {site}"
        assert not path.is_relative_to(ROOT / "python"), f"{path} is the source tree"
