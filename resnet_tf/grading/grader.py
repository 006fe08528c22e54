"""Grading a class: every submission in its own sandboxed kernel, scored by the grader.

:func:`grade_class` is the whole pipeline behind ``python -m resnet_tf grade``:

1. find the notebooks and name them (:mod:`resnet_tf.grading.collect`); the assignment is
   the one the instructor names (``--assignment``), never one a notebook declares;
2. for each submission: read its bytes once (a regular file of bounded size, checked
   before it is opened) and hash them, refuse what cannot be graded (empty, not JSON, not
   a notebook) with a reason, read the student id from its ``STUDENT_ID = "..."`` cell,
   run it in a fresh sandboxed kernel from a private copy
   (:mod:`resnet_tf.grading.runner`), collect its answers as data and score them in this
   process against the student's variant and the instructor's key
   (:mod:`resnet_tf.grading.scoring`);
3. write each submission's folder as soon as it is graded, and rewrite the gradebook
   after every submission, so an interrupted run keeps what it finished
   (:mod:`resnet_tf.grading.reports`). Ctrl-C or SIGTERM stops the run: the submissions
   being graded at that moment are not recorded, the finished ones are.

Nothing here raises because of a submission: whatever goes wrong with one is recorded
as that submission's status and the next one is graded. Submissions are only read.
"""

from __future__ import annotations

import ast
import asyncio
import copy
import json
import os
import shutil
import signal
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import insights, reports
from . import sandbox as sb
from .collect import Submission, UsageError, find_notebooks, name_submissions, sha256_bytes
from .results import MAX_SUBMISSION_MB, ClassResult, Interrupted, Options, SubmissionResult  # noqa: F401 - re-exported
from .runner import Request, execute_notebook, read_bounded
from .scoring import not_checked, score_problems

KERNEL_ATTEMPTS = 3  # a kernel that dies before running anything is started again
MANIFEST = "grading.json"
GRADEBOOK = "gradebook.csv"
SUMMARY = "summary.txt"
RESERVED_NAMES = (MANIFEST, GRADEBOOK, SUMMARY, "grading", "summary", "gradebook")
SUBMISSION_FILES = ("results.json", "feedback.md", "executed.ipynb")



# --------------------------------------------------------------------------- reading


def parse_notebook(data: bytes) -> tuple[str, str, Any]:
    """Classify submission bytes: ``(status, message, notebook)``.

    ``status`` is ``"ok"`` with a clean nbformat-4 notebook rebuilt from the cells'
    sources (outputs and odd metadata dropped, so a damaged but readable notebook still
    runs), or ``"empty"``, ``"not_json"`` or ``"not_notebook"`` with ``None``.
    """
    import nbformat
    from nbformat.v4 import (
        new_code_cell,
        new_markdown_cell,
        new_notebook,
        new_raw_cell,
    )

    if not data.strip():
        return "empty", "the file is empty", None
    try:
        text = data.decode("utf-8-sig")
        raw = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return "not_json", f"the file is not valid JSON ({exc})", None
    if not isinstance(raw, dict) or not (
        isinstance(raw.get("cells"), list) or isinstance(raw.get("worksheets"), list)
    ):
        return "not_notebook", "the JSON does not describe a notebook (no cells)", None
    notebook = raw
    if not isinstance(raw.get("cells"), list):  # an old (v3) notebook: let nbformat convert
        try:
            notebook = nbformat.reads(text, as_version=4)
        except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds
            return "not_notebook", f"nbformat cannot read it: {type(exc).__name__}: {exc}", None
    metadata = notebook.get("metadata")
    metadata = dict(metadata) if isinstance(metadata, dict) else {}
    clean = new_notebook(metadata=metadata)
    makers = {"code": new_code_cell, "markdown": new_markdown_cell, "raw": new_raw_cell}
    for cell in notebook.get("cells") or []:
        if not isinstance(cell, dict):
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(str(s) for s in source)
        maker = makers.get(cell.get("cell_type"))
        if maker is None or not isinstance(source, str):
            continue
        new = maker(source)
        tags = (cell.get("metadata") or {}).get("tags") if isinstance(cell.get("metadata"),
                                                                       dict) else None
        if isinstance(tags, list):
            new.metadata["tags"] = [str(t) for t in tags]
        clean.cells.append(new)
    return "ok", "", clean


def declared_assignment(notebook: Any) -> str | None:
    """The assignment named in the notebook's metadata, or None."""
    try:
        name = notebook.metadata.get("resnet_tf", {}).get("assignment")
    except AttributeError:
        return None
    return str(name) if isinstance(name, str) and name.strip() else None


def declared_version(notebook: Any) -> str | None:
    """The ``resnet_tf`` version named in the notebook's metadata, or None."""
    try:
        version = notebook.metadata.get("resnet_tf", {}).get("version")
    except AttributeError:
        return None
    return str(version)[:40] if isinstance(version, (str, int, float)) and str(version) else None


STUDENT_ID_NAME = "STUDENT_ID"


def student_id_of(notebook: Any) -> str:
    """The student id of the first top-level ``STUDENT_ID = "..."`` of the code cells.

    Read from the notebook's text, not from its kernel. Lines of IPython magics and
    shell escapes are ignored; a cell that is not valid Python is skipped; an id that
    is not a string literal counts as none (``""``).
    """
    from resnet_tf.exercises.variants import normalize_id

    for cell in getattr(notebook, "cells", []):
        if cell.get("cell_type") != "code":
            continue
        lines = [ln for ln in str(cell.get("source", "")).splitlines()
                 if not ln.lstrip().startswith(("%", "!"))]
        try:
            tree = ast.parse("\n".join(lines))
        except (SyntaxError, ValueError):
            continue
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == STUDENT_ID_NAME for t in node.targets):
                value = node.value
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    return normalize_id(value.value)
                return ""
    return ""


def choose_assignment(known: dict[str, list[str]], requested: str | None) -> str:
    """The assignment to grade: the one the instructor names.

    ``requested`` may be omitted only when a single assignment exists. The submissions
    never choose it. Raises :class:`UsageError` otherwise.
    """
    names = ", ".join(sorted(known)) or "(none registered)"
    if requested is None:
        if len(known) == 1:
            return next(iter(known))
        raise UsageError(f"name the assignment to grade with --assignment (one of: {names})")
    if requested not in known:
        raise UsageError(f"unknown assignment {requested!r}; known assignments: {names}")
    return requested


# --------------------------------------------------------------------------- output dir


def check_output(out_dir: Path, force: bool) -> None:
    """Raise :class:`UsageError` if ``out_dir`` is a file, or holds files and not ``force``."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        previous = (" (it holds an earlier grading run)"
                    if (out_dir / MANIFEST).exists() else "")
        raise UsageError(
            f"the output folder {out_dir} is not empty{previous}; choose a new folder "
            "or pass --force to replace the grader's files in it"
        )


def prepare_output(out_dir: Path, force: bool) -> None:
    """Create ``out_dir``, refusing one that already holds files unless ``force``.

    With ``force``, the files a previous run listed in its manifest are removed first
    (only those, and only inside ``out_dir``); other files are left alone.
    """
    check_output(out_dir, force)
    if out_dir.is_dir() and any(out_dir.iterdir()):
        _remove_previous_run(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)


def _remove_previous_run(out_dir: Path) -> None:
    """Delete the files of the run recorded in ``out_dir``'s manifest (if any)."""
    manifest = out_dir / MANIFEST
    try:
        names = [s["name"] for s in json.loads(manifest.read_text())["submissions"]]
    except Exception:  # noqa: BLE001 - no or unreadable manifest: nothing to remove
        names = []
    root = out_dir.resolve()
    for name in names:
        folder = (out_dir / str(name)).resolve()
        if folder.parent != root or not folder.is_dir():
            continue
        for filename in SUBMISSION_FILES:
            (folder / filename).unlink(missing_ok=True)
        try:
            folder.rmdir()
        except OSError:
            pass
    for filename in (MANIFEST, GRADEBOOK, SUMMARY, insights.MISCONCEPTIONS,
                     insights.SIMILARITY, insights.FIGURE):
        (out_dir / filename).unlink(missing_ok=True)


# --------------------------------------------------------------------------- grading


@dataclass
class Setting:
    """What every submission of a run shares: the assignment, the key, the sandbox."""

    assignment: str
    problem_ids: list[str]
    points: dict[str, float]
    titles: dict[str, str]
    options: Options
    box: sb.Sandbox
    tmp_root: Path
    hidden: list[Path] = field(default_factory=list)
    shared: Path | None = None


async def grade_submission(submission: Submission, setting: Setting) -> SubmissionResult:
    """Grade one submission; never raises (failures become the result's status).

    Cancellation (an interrupted run) is not a failure of the submission: it propagates,
    after the kernel has been stopped.
    """
    started = time.perf_counter()
    result = SubmissionResult(submission, "grader_error")
    try:
        await _grade_into(result, setting)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - one submission must not stop the class
        result.status = "grader_error"
        result.message = f"{type(exc).__name__}: {exc}"
        result.notes.append(traceback.format_exc())
    if not result.problems:
        why = f"Not graded: {result.message or result.status}."
        result.problems = [not_checked(pid, setting.titles.get(pid, ""),
                                       setting.points.get(pid, 0.0), why)
                           for pid in setting.problem_ids]
    result.seconds = time.perf_counter() - started
    return result


def requests_for(problem_ids: list[str], student: str, key: bytes | None) -> list[Request]:
    """The collection request of each problem: the cases of its function parts."""
    from resnet_tf.exercises import PROBLEMS
    from resnet_tf.exercises.checkers import Function

    requests = []
    for pid in problem_ids:
        problem = PROBLEMS[pid]
        cases = {}
        for part in problem.parts:
            if isinstance(part.checker, Function):
                context = problem.context(part.name, student, key)
                cases[part.name] = part.checker.case_list(True, context)[0]
        requests.append(Request(pid, cases))
    return requests


async def _grade_into(result: SubmissionResult, setting: Setting) -> None:
    """The body of :func:`grade_submission`, filling ``result`` in place."""
    from .. import __version__

    options = setting.options
    limit = int(options.max_submission_mb * 2**20)
    try:
        data = read_bounded(result.submission.path, limit)
    except OSError as exc:
        result.status, result.message = "unreadable", str(exc)
        return
    result.sha256 = sha256_bytes(data)
    status, message, notebook = parse_notebook(data)
    if notebook is None:
        result.status, result.message = status, message
        return
    declared = declared_assignment(notebook)
    result.declared_assignment = declared
    if declared is None:
        result.notes.append("the notebook's metadata names no assignment; it is graded as "
                            f"{setting.assignment!r} like every other")
    elif declared != setting.assignment:
        result.notes.append(f"the notebook's metadata names assignment {declared!r}; it is "
                            f"graded as {setting.assignment!r} all the same")
    result.version = declared_version(notebook)
    if result.version is not None and result.version != __version__:
        result.notes.append(f"the notebook was made with resnet_tf {result.version} and is "
                            f"graded with {__version__}")
    result.student = student_id_of(notebook)
    requests = requests_for(setting.problem_ids, result.student, options.key)

    for attempt in range(1, KERNEL_ATTEMPTS + 1):
        tmp = Path(tempfile.mkdtemp(prefix="s-", dir=setting.tmp_root))
        os.chmod(tmp, 0o711)
        try:
            execution = await execute_notebook(
                copy.deepcopy(notebook), tmp, options.cell_timeout, options.notebook_timeout,
                requests, setting.box, options.limits,
                hidden=setting.hidden, jobs=options.jobs, submission_copy=data,
                shared=setting.shared,
            )
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if not execution.failed_to_start:
            break
        result.notes.append(f"attempt {attempt}: the kernel did not start ({execution.message})")
        await asyncio.sleep(1.0)
    result.executed = execution.notebook
    result.cell_errors = execution.cell_errors
    if execution.truncated:
        result.notes.append("some outputs were too long and were cut in executed.ipynb")
    kernel_students = {str((c.record or {}).get("student", "")) for c in
                       execution.answers.values() if c.record is not None}
    if kernel_students and kernel_students != {result.student}:
        result.notes.append(
            "the notebook's kernel used the student id(s) "
            f"{sorted(kernel_students)}, but its STUDENT_ID cell says {result.student!r}; "
            "graded with the STUDENT_ID cell")
    result.problems = score_problems(setting.problem_ids, execution.answers, result.student,
                                     options.key, setting.points)
    result.status, result.message = _execution_status(execution, notebook)
    if declared not in (None, setting.assignment) and all(
            p.status == "not_checked" for p in result.problems):
        # a notebook of another assignment: it earned nothing here; say why
        result.status = "wrong_assignment"
        result.message = (f"this notebook is for assignment {declared!r}, not "
                          f"{setting.assignment!r}; none of its checks are of this one")


def _cell_label(notebook: Any, index: int) -> str:
    """``cell 7 (`first line of its source`)``, 1-based, for messages."""
    try:
        first = notebook.cells[index].source.strip().splitlines()[0]
    except (IndexError, AttributeError):
        first = ""
    if len(first) > 40:
        first = first[:37] + "..."
    return f"cell {index + 1}" + (f" (`{first}`)" if first else "")


def _execution_status(execution: Any, notebook: Any) -> tuple[str, str]:
    """The submission status and message after running its notebook."""
    parts = []
    timed_out = [e for e in execution.cell_errors if e.timed_out]
    raised = [e for e in execution.cell_errors if not e.timed_out]
    for error in sorted(execution.cell_errors, key=lambda e: e.index):
        if error.timed_out:
            parts.append(f"{_cell_label(notebook, error.index)} timed out")
            continue
        text = f"{error.ename}: {error.evalue}".strip().rstrip(":")
        if len(text) > 120:
            text = text[:117] + "..."
        parts.append(f"{_cell_label(notebook, error.index)} raised {text}")
    if execution.failed_to_start:
        return "grader_error", f"the kernel could not be started: {execution.message}"
    if execution.outcome != "completed":
        parts.insert(0, execution.message)
    message = "; ".join(parts)
    if execution.outcome in ("kernel_died",):
        return "kernel_died", message
    if execution.outcome == "kernel_failed":
        return "grader_error", message
    if execution.outcome == "timeout" or timed_out:
        return "timeout", message
    if raised:
        return "cell_errors", message
    return "graded", message


def _registry() -> tuple[dict[str, list[str]], dict[str, float], dict[str, str]]:
    """Assignments, points and titles from :mod:`resnet_tf.exercises`."""
    try:
        from resnet_tf import exercises
    except ImportError as exc:
        raise UsageError(f"the exercises package cannot be imported: {exc}") from exc
    problems = exercises.PROBLEMS
    points = {pid: float(p.points) for pid, p in problems.items()}
    titles = {pid: str(p.title) for pid, p in problems.items()}
    return exercises.assignments(), points, titles


def _hidden_paths(notebooks: list[Path], out_dir: Path, key_file: Path | None) -> list[Path]:
    """What a sandboxed kernel must not see: the output folder, the submissions, the key."""
    hidden = [out_dir.resolve(), *notebooks]
    if key_file is not None:
        hidden.append(Path(os.path.abspath(key_file)))
    return hidden


def grade_class(
    paths: list[str | Path],
    out_dir: str | Path,
    options: Options | None = None,
    assignment: str | None = None,
    progress: Callable[[SubmissionResult, int, int], None] | None = None,
    key_file: Path | None = None,
    course_root: str | Path | None = None,
) -> ClassResult:
    """Grade every submission under ``paths`` into ``out_dir`` (see the module docstring).

    Raises :class:`UsageError` only for problems with the request itself (missing paths,
    no notebooks found, an occupied output folder, an unknown assignment), and
    :class:`Interrupted` (after recording the finished submissions) when the run is
    stopped by SIGINT or SIGTERM. ``progress(result, done, total)`` is called after each
    submission. ``key_file`` is hidden from the kernels. ``course_root`` (else
    ``$RESNET_TF_COURSE_ROOT``) is the course repository whose ``exercises/`` tell the
    handed-out cells from answers in the similarity report; it is optional.
    """
    from .. import __version__

    options = options or Options()
    root = insights.course_root(course_root)
    out_dir = Path(out_dir).expanduser()
    check_output(out_dir, options.force)
    notebooks = find_notebooks(paths, exclude=out_dir)
    if not notebooks:
        raise UsageError("no submissions found (looked for *.ipynb files in: "
                         + ", ".join(str(p) for p in paths) + ")")
    known, points, titles = _registry()
    chosen = choose_assignment(known, assignment)
    problem_ids = list(known[chosen])
    submissions = name_submissions(notebooks, reserved=RESERVED_NAMES)
    prepare_output(out_dir, options.force)
    box = sb.probe(options.sandbox)

    run = ClassResult(chosen, problem_ids, points, titles, [], out_dir, version=__version__,
                      keyed=bool(options.key), sandbox=box.describe(), notes=list(box.notes),
                      hidden_visibility=options.hidden_visibility)
    if not options.key:
        run.notes.append("no instructor key: the hidden cases can be computed from the "
                         "public code (fine for practice, weak for a graded course)")
    started_at = datetime.now(timezone.utc)
    started = time.perf_counter()
    slots: list[SubmissionResult | None] = [None] * len(submissions)
    stopped: list[int] = []
    tmp_root = Path(tempfile.mkdtemp(prefix="resnet-tf-grade-"))
    os.chmod(tmp_root, 0o711)
    setting = Setting(chosen, problem_ids, points, titles, options, box, tmp_root,
                      _hidden_paths(notebooks, out_dir, key_file),
                      sb.prepare_shared(tmp_root / "shared"))

    async def main() -> None:
        semaphore = asyncio.Semaphore(max(1, options.jobs))
        done = 0

        async def one(index: int, submission: Submission) -> None:
            nonlocal done
            async with semaphore:
                result = await grade_submission(submission, setting)
            slots[index] = result
            try:
                reports.write_submission(run, result)
            except Exception as exc:  # noqa: BLE001 - a file that cannot be written
                result.notes.append(f"could not write its files: {type(exc).__name__}: {exc}")
            run.results = [r for r in slots if r is not None]
            reports.write_gradebook(run)
            done += 1
            if progress is not None:
                progress(result, done, len(submissions))

        task = asyncio.ensure_future(
            asyncio.gather(*(one(i, s) for i, s in enumerate(submissions))))
        loop = asyncio.get_running_loop()

        def stop(signum: int) -> None:
            stopped.append(signum)
            task.cancel()

        installed = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, stop, signum)
                installed.append(signum)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
        try:
            await task
        except asyncio.CancelledError:
            if not stopped:
                raise
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)

    try:
        asyncio.run(main())
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    run.results = [r for r in slots if r is not None]
    run.interrupted = [s.name for s, r in zip(submissions, slots, strict=True) if r is None]
    run.seconds = time.perf_counter() - started
    reports.write_gradebook(run)
    reports.write_manifest(run, options, started_at)
    reports.write_text(out_dir / SUMMARY, reports.summary_table(run) + "\n")
    try:
        insights.write_insights(run, root)
    except Exception as exc:  # noqa: BLE001 - a report must not cost the grades
        run.notes.append(f"the misconception and similarity reports failed: "
                         f"{type(exc).__name__}: {exc}")
    if stopped:
        raise Interrupted(run, stopped[0])
    return run
