"""Run the tested version matrix of ``tools/matrix.toml``.

    python tools/matrix.py                 # every entry
    python tools/matrix.py colab lower     # some entries
    python tools/matrix.py --list          # what the entries are

For each entry: find its Python (pyenv's versions, then ``pythonX.Y`` on PATH; an entry
whose Python is missing is reported as SKIPPED, never as passed), make or reuse a
virtual environment cached by the Python version and the pins, install the package from a
wheel built from this checkout with its declared dependencies and its ``test`` extra, then
run the unit tests against the installed wheel and each listed notebook alone, copied into
an empty temporary folder, under ``pytest --nbval-lax``. Prints one line per step and closes
with ``matrix: N passed, N failed, N skipped``; exits 1 when anything failed.

Environments live in ``$RESNET_TF_MATRIX_CACHE`` (default ``~/.cache/resnet_tf/matrix``);
delete a folder there to rebuild it.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MATRIX = ROOT / "tools" / "matrix.toml"
CACHE = Path(os.environ.get("RESNET_TF_MATRIX_CACHE", Path.home() / ".cache/resnet_tf/matrix"))
EXPECT_WHEEL_ENV = "RESNET_TF_EXPECT_INSTALLED"
NOTEBOOK_CELL_TIMEOUT = 900


@dataclass
class Entry:
    """One environment of the matrix, as ``tools/matrix.toml`` describes it."""

    name: str
    python: str
    description: str = ""
    pins: list[str] = field(default_factory=list)
    upgrade: bool = False
    tests: bool = True
    notebooks: list[str] = field(default_factory=list)


@dataclass
class Step:
    """The outcome of one step of one entry."""

    entry: str
    step: str
    status: str  # "passed", "failed" or "skipped"
    seconds: float
    detail: str = ""


def load_matrix(path: Path = MATRIX) -> dict[str, Entry]:
    """Read the matrix file into entries, rejecting keys it does not know."""
    import tomllib  # Python 3.11+: the matrix runs from the development environment

    raw = tomllib.loads(path.read_text())
    known = set(Entry.__dataclass_fields__) - {"name"}
    entries = {}
    for name, spec in raw.items():
        unknown = set(spec) - known
        if unknown:
            raise SystemExit(f"{path}: entry {name!r} has unknown keys {sorted(unknown)}; "
                             f"allowed: {sorted(known)}")
        entries[name] = Entry(name=name, **spec)
    return entries


def find_python(version: str) -> Path | None:
    """The newest installed interpreter of ``version`` (``"3.13"``), or None."""
    candidates: list[Path] = []
    pyenv_root = os.environ.get("PYENV_ROOT")
    if not pyenv_root and shutil.which("pyenv"):
        found = subprocess.run(["pyenv", "root"], capture_output=True, text=True)
        pyenv_root = found.stdout.strip() if found.returncode == 0 else None
    if pyenv_root:
        def patch(p: Path) -> int:
            tail = p.name.split(".")[-1]
            return int(tail) if tail.isdigit() else -1

        versions = sorted(Path(pyenv_root, "versions").glob(f"{version}.*"), key=patch)
        candidates += [v / "bin" / "python3" for v in reversed(versions)]
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if not candidate.exists():
            continue
        probe = subprocess.run(
            [str(candidate), "-c", "import sys, venv; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True,
        )
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    return None


def python_version(python: Path) -> str:
    """The full version (``3.13.0``) of an interpreter."""
    out = subprocess.run([str(python), "-c", "import platform; print(platform.python_version())"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def build_wheel(into: Path) -> Path:
    """Build this checkout's wheel (no dependencies) into ``into`` and return its path."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(into),
         str(ROOT)],
        check=True,
    )
    wheels = sorted(into.glob("resnet_tf-*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"expected one resnet_tf wheel in {into}, found {wheels}")
    return wheels[0]


def clean_env() -> dict[str, str]:
    """The environment for an entry's processes: nothing that points into this checkout."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "MPLBACKEND")}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def run(cmd: list[str], log, cwd: Path | None = None, env: dict | None = None) -> int:
    """Run ``cmd``, appending its output to ``log``; return the exit code."""
    log.write(f"\n$ {' '.join(cmd)}\n")
    log.flush()
    done = subprocess.run(cmd, cwd=cwd, env=env or clean_env(), stdout=log,
                          stderr=subprocess.STDOUT)
    return done.returncode


def prepare(entry: Entry, python: Path, wheel: Path, log) -> Path:
    """Make (or reuse) the entry's environment and install ``wheel`` into it."""
    full = python_version(python)
    key = hashlib.sha256(json.dumps([full, sorted(entry.pins)]).encode()).hexdigest()[:12]
    venv = CACHE / f"{entry.name}-py{full}-{key}"
    vpy = venv / "bin" / "python"
    if not (venv / ".complete").exists():
        shutil.rmtree(venv, ignore_errors=True)
        venv.parent.mkdir(parents=True, exist_ok=True)
        if run([str(python), "-m", "venv", str(venv)], log):
            raise RuntimeError("could not create the virtual environment")
        run([str(vpy), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], log)
    spec = f"resnet_tf[test] @ {wheel.as_uri()}"
    upgrade = ["--upgrade", "--upgrade-strategy", "eager"] if entry.upgrade else []
    install = [str(vpy), "-m", "pip", "install", "--quiet", *upgrade, spec, *entry.pins]
    if run(install, log):
        raise RuntimeError("pip could not install the wheel with these pins")
    # The same version number may carry new code: always put this checkout's wheel in.
    if run([str(vpy), "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall",
            str(wheel)], log):
        raise RuntimeError("pip could not reinstall the wheel")
    (venv / ".complete").write_text(full)
    return venv


def versions(venv: Path) -> str:
    """A one-line summary of the entry's key versions."""
    code = ("import platform, importlib.metadata as m; print('Python', platform.python_version(), "
            "*[f'{p} {m.version(p)}' for p in ('tensorflow', 'keras', 'numpy', 'pandas')])")
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True,
                         text=True, env=clean_env(), cwd=tempfile.gettempdir())
    return out.stdout.strip() or out.stderr.strip()[-200:]


def unit_tests(venv: Path, log) -> int:
    """The unit tests of ``tests/``, importing the installed wheel, not this checkout."""
    env = clean_env()
    env[EXPECT_WHEEL_ENV] = "1"
    return run(
        [str(venv / "bin" / "pytest"), "-q", "-p", "no:cacheprovider", "-o", "addopts=",
         "--import-mode=importlib", "-m", "not slow", "tests"],
        log, cwd=ROOT, env=env,
    )


def notebook_alone(venv: Path, notebook: Path, log) -> int:
    """Run one notebook by itself in an empty temporary folder under nbval (lax)."""
    with tempfile.TemporaryDirectory(prefix="resnet_tf-nb-") as tmp:
        copy = Path(tmp) / notebook.name
        shutil.copyfile(notebook, copy)
        return run(
            [str(venv / "bin" / "pytest"), "-q", "-p", "no:cacheprovider", "--rootdir", tmp,
             "--nbval-lax", "--nbval-current-env",
             f"--nbval-cell-timeout={NOTEBOOK_CELL_TIMEOUT}", copy.name],
            log, cwd=Path(tmp),
        )


def report(step: Step) -> Step:
    """Print one step's outcome as it happens."""
    detail = f" ({step.detail})" if step.detail else ""
    print(f"  {step.status:7s} {step.seconds:7.1f} s  {step.entry}: {step.step}{detail}",
          flush=True)
    return step


def run_entry(entry: Entry, wheel: Path, logs: Path, install_only: bool = False) -> list[Step]:
    """Every step of one entry; a missing Python skips the entry as a whole."""
    steps: list[Step] = []
    python = find_python(entry.python)
    if python is None:
        steps.append(report(Step(entry.name, "python", "skipped", 0.0,
                                 f"Python {entry.python} is not installed (pyenv or PATH)")))
        return steps
    log_path = logs / f"{entry.name}.log"
    with log_path.open("a") as log:
        start = time.perf_counter()
        try:
            venv = prepare(entry, python, wheel, log)
        except RuntimeError as err:
            steps.append(report(Step(entry.name, "install", "failed",
                                     time.perf_counter() - start, f"{err}; see {log_path}")))
            return steps
        steps.append(report(Step(entry.name, "install", "passed", time.perf_counter() - start,
                                 versions(venv))))
        jobs: list[tuple[str, object]] = []
        if install_only:
            return steps
        if entry.tests:
            jobs.append(("unit tests", lambda: unit_tests(venv, log)))
        for pattern in entry.notebooks:
            matches = sorted(glob.glob(str(ROOT / pattern)))
            if not matches:
                steps.append(report(Step(entry.name, pattern, "failed", 0.0,
                                         "no notebook matches")))
            for nb in matches:
                path = Path(nb)
                jobs.append((str(path.relative_to(ROOT)),
                             lambda path=path: notebook_alone(venv, path, log)))
        for name, job in jobs:
            start = time.perf_counter()
            code = job()
            status = "passed" if code == 0 else "failed"
            detail = "" if code == 0 else f"exit {code}; see {log_path}"
            steps.append(report(Step(entry.name, name, status, time.perf_counter() - start,
                                     detail)))
    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("entries", nargs="*", help="entries to run (default: all)")
    parser.add_argument("--list", action="store_true", help="describe the entries and stop")
    parser.add_argument("--logs", type=Path, default=ROOT / "build" / "matrix",
                        help="folder for per-entry logs (default: build/matrix)")
    parser.add_argument("--json", type=Path, help="also write every step's outcome here")
    parser.add_argument("--install-only", action="store_true",
                        help="make the environments and install the wheel, run nothing")
    args = parser.parse_args(argv)

    matrix = load_matrix()
    unknown = [e for e in args.entries if e not in matrix]
    if unknown:
        parser.error(f"unknown entries {unknown}; the matrix has {', '.join(matrix)}")
    chosen = [matrix[e] for e in args.entries] if args.entries else list(matrix.values())
    if args.list:
        for e in chosen:
            print(f"{e.name}: Python {e.python}, {e.description}; pins: "
                  f"{', '.join(e.pins) or 'none (newest)'}; notebooks: {', '.join(e.notebooks)}")
        return 0

    args.logs.mkdir(parents=True, exist_ok=True)
    steps: list[Step] = []
    with tempfile.TemporaryDirectory(prefix="resnet_tf-wheel-") as tmp:
        wheel = build_wheel(Path(tmp))
        print(f"wheel: {wheel.name}", flush=True)
        for entry in chosen:
            print(f"{entry.name}: {entry.description} (Python {entry.python})", flush=True)
            start = time.perf_counter()
            steps += run_entry(entry, wheel, args.logs, args.install_only)
            print(f"  {entry.name}: {time.perf_counter() - start:.0f} s in all", flush=True)
    if args.json:
        args.json.write_text(json.dumps([s.__dict__ for s in steps], indent=2))
    counts = {s: sum(1 for step in steps if step.status == s)
              for s in ("passed", "failed", "skipped")}
    for step in steps:
        if step.status != "passed":
            print(f"{step.status.upper()}: {step.entry}: {step.step}: {step.detail}")
    print(f"matrix: {counts['passed']} passed, {counts['failed']} failed, "
          f"{counts['skipped']} skipped")
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
