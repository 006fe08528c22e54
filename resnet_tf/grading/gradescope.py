"""The same grading on Gradescope: build the autograder zip, and run it there.

``python -m resnet_tf grade gradescope ASSIGNMENT --out autograder.zip [--key FILE]``
writes the zip Gradescope's programming assignments expect::

    setup.sh            run once when Gradescope builds the image: Python, bubblewrap
                        and the package's requirements, in a virtual environment
    run_autograder      run for every submission: grades the notebook it finds in
                        /autograder/submission and writes /autograder/results/results.json
    requirements.txt    the package's declared dependencies, at the versions installed here
    package/resnet_tf/  the grader's own package (source), the same code as a local run
    config.json         the assignment, the visibility of the hidden checks, the timeout
    key                 the instructor's key, when given (the zip is never shown to
                        students; keep it as secret as the key itself)

``run_autograder`` calls :func:`main`, which grades exactly as ``grade`` does locally
(:func:`resnet_tf.grading.grade_class`: a sandboxed kernel, answers handed over as data,
scored against the student's variant and the key) and copies the submission's
``results.json`` into place, so the scores on Gradescope are those of a local run. The
root (``/autograder``) can be moved with ``AUTOGRADER_ROOT``, which is how the tests run
the zip end to end in a temporary folder.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

from .collect import UsageError

ROOT_ENV = "AUTOGRADER_ROOT"
PYTHON_ENV = "RESNET_TF_AUTOGRADER_PYTHON"

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
set -euo pipefail
cd /autograder/source
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends python3 python3-venv python3-pip bubblewrap
python3 -m venv /autograder/venv
/autograder/venv/bin/pip install --upgrade pip
/autograder/venv/bin/pip install -r requirements.txt
chmod +x run_autograder
"""

RUN_AUTOGRADER = f"""#!/usr/bin/env bash
# Gradescope runs this for every submission. For tests, {ROOT_ENV} moves the root
# and {PYTHON_ENV} names the Python that grades.
set -uo pipefail
ROOT="${{{ROOT_ENV}:-/autograder}}"
PYTHON="${{{PYTHON_ENV}:-$ROOT/venv/bin/python}}"
export PYTHONPATH="$ROOT/source/package${{PYTHONPATH:+:$PYTHONPATH}}"
export RESNET_TF_PROFILE="${{RESNET_TF_PROFILE:-quick}}"
export TF_CPP_MIN_LOG_LEVEL=3
exec "$PYTHON" -m resnet_tf.grading.gradescope "$ROOT"
"""


def requirements() -> list[str]:
    """The package's required dependencies (no extras), pinned to what is installed here.

    Pinning to the grader's own versions makes the Gradescope image grade with the same
    TensorFlow, Keras and numpy as the local run. Raises :class:`UsageError` when the
    package's metadata is not installed (a bare checkout: install it first).
    """
    try:
        declared = importlib.metadata.requires("resnet_tf") or []
    except importlib.metadata.PackageNotFoundError:
        raise UsageError("the resnet_tf distribution is not installed, so its requirements "
                         "are unknown; pip install the package first") from None
    pinned = []
    for line in declared:
        if "extra ==" in line:
            continue
        name = re.split(r"[\s<>=!~;\[(]", line, maxsplit=1)[0]
        marker = line.split(";", 1)[1].strip() if ";" in line else ""
        try:
            spec = f"{name}=={importlib.metadata.version(name)}"
        except importlib.metadata.PackageNotFoundError:
            spec = line.split(";", 1)[0].strip()
        pinned.append(spec + (f"; {marker}" if marker else ""))
    return pinned


def build_autograder(assignment: str, out: str | os.PathLike, key_file: str | None = None,
                     hidden_visibility: str = "after_published",
                     timeout: float = 600.0) -> Path:
    """Write the Gradescope autograder zip of ``assignment`` to ``out`` (see the module)."""
    import resnet_tf
    from resnet_tf import exercises

    known = exercises.assignments()
    if assignment not in known:
        raise UsageError(f"unknown assignment {assignment!r}; known assignments: "
                         + ", ".join(sorted(known)))
    key = None
    if key_file:
        from .keys import KeyFileError, load_key

        try:
            key = load_key(key_file)
        except KeyFileError as exc:
            raise UsageError(str(exc)) from None
    config = {"assignment": assignment, "hidden_visibility": hidden_visibility,
              "timeout": timeout, "resnet_tf": resnet_tf.__version__,
              "keyed": key is not None}
    package = Path(resnet_tf.__file__).resolve().parent
    path = Path(out).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        _add(archive, "setup.sh", SETUP_SH, 0o755)
        _add(archive, "run_autograder", RUN_AUTOGRADER, 0o755)
        _add(archive, "requirements.txt", "\n".join(requirements()) + "\n", 0o644)
        _add(archive, "config.json", json.dumps(config, indent=1) + "\n", 0o644)
        if key is not None:
            _add(archive, "key", Path(key_file).read_text(encoding="utf-8"), 0o600)
        for file in sorted(package.rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts and \
                    file.suffix not in (".pyc", ".pyo"):
                name = "package/resnet_tf/" + file.relative_to(package).as_posix()
                info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, file.read_bytes())
    return path


def _add(archive: zipfile.ZipFile, name: str, text: str, mode: int) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = mode << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, text)


def _choose(folder: Path, assignment: str) -> tuple[Path | None, str]:
    """The submitted notebook to grade, and a note when there was a choice."""
    from .collect import find_notebooks

    notebooks = find_notebooks([folder]) if folder.is_dir() else []
    if not notebooks:
        return None, ""
    if len(notebooks) == 1:
        return notebooks[0], ""
    words = assignment.lower().split("_")
    ranked = sorted(notebooks, key=lambda p: (-sum(w in p.name.lower() for w in words),
                                              str(p)))
    return ranked[0], (f"{len(notebooks)} notebooks were submitted; graded "
                       f"{ranked[0].name}")


def _write_results(root: Path, results: dict) -> Path:
    target = root / "results" / "results.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return target


def main(argv: list[str] | None = None) -> int:
    """Grade ``ROOT/submission`` into ``ROOT/results/results.json`` (``run_autograder``)."""
    from .grader import Options, grade_class

    args = list(sys.argv[1:] if argv is None else argv)
    root = Path(args[0] if args else os.environ.get(ROOT_ENV, "/autograder"))
    source = root / "source"
    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    assignment = config["assignment"]
    notebook, note = _choose(root / "submission", assignment)
    if notebook is None:
        _write_results(root, {"score": 0.0, "output": "No notebook (.ipynb) was found in "
                              "your submission: upload your completed notebook.",
                              "output_format": "text", "visibility": "visible",
                              "tests": []})
        return 0
    key = None
    if (source / "key").is_file():
        from .keys import load_key

        os.chmod(source / "key", 0o600)  # whatever the unzip gave it: the grader's only
        key = load_key(str(source / "key"))
    options = Options(cell_timeout=float(config.get("timeout", 600.0)),
                      notebook_timeout=6 * float(config.get("timeout", 600.0)), key=key,
                      hidden_visibility=config.get("hidden_visibility", "after_published"))
    out = Path(tempfile.mkdtemp(prefix="resnet-tf-gradescope-"))
    try:
        run = grade_class([notebook], out / "run", options, assignment,
                          key_file=source / "key" if key else None)
        result = run.results[0]
        results = json.loads((out / "run" / result.submission.name / "results.json")
                             .read_text(encoding="utf-8"))
    except Exception as exc:  # noqa: BLE001 - Gradescope must get a results file
        _write_results(root, {"score": 0.0, "output": "The autograder could not grade this "
                              f"submission ({type(exc).__name__}); your instructor will "
                              "look at it.", "output_format": "text",
                              "visibility": "visible", "tests": []})
        print(f"grading failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(out, ignore_errors=True)
    extra = [note] if note else []
    sid = _submitter_id(root)
    if sid and result.student and sid.lower() != result.student.lower():
        extra.append(f"Note: your notebook's STUDENT_ID is {result.student!r}, but you are "
                     f"enrolled as {sid!r}; it was graded with {result.student!r}.")
    if extra:
        results["output"] = "\n".join([results.get("output", ""), *extra]).strip()
    _write_results(root, results)
    return 0


def _submitter_id(root: Path) -> str:
    """The student id (sid) Gradescope lists for the submitter, if it says."""
    try:
        meta = json.loads((root / "submission_metadata.json").read_text(encoding="utf-8"))
        users = meta.get("users") or []
        return str(users[0].get("sid") or "") if users else ""
    except (OSError, ValueError, AttributeError, IndexError, TypeError):
        return ""


if __name__ == "__main__":
    sys.exit(main())
