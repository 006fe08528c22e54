"""Grading a class: every submission in its own kernel, results written as they finish.

:func:`grade_class` is the whole pipeline behind ``python -m resnet_tf grade``:

1. find the notebooks and name them (:mod:`resnet_tf.grading.collect`);
2. decide the assignment (``assignment=`` or the one most submissions declare in their
   metadata ``{"resnet_tf": {"assignment": ...}}``);
3. for each submission: read its bytes once (and hash them), refuse what cannot be
   graded (empty, not JSON, not a notebook, another assignment) with a reason, run the
   rest in a fresh kernel from a temporary copy (:mod:`resnet_tf.grading.runner`), and
   score the logged checks (:mod:`resnet_tf.grading.scoring`);
4. write each submission's folder as soon as it is graded, and rewrite the gradebook
   after every submission, so an interrupted run keeps what it finished
   (:mod:`resnet_tf.grading.reports`).

Nothing here raises because of a submission: whatever goes wrong with one is recorded
as that submission's status and the next one is graded. Submissions are only read.
"""

from __future__ import annotations

import asyncio
import copy
import json
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .collect import Submission, UsageError, find_notebooks, name_submissions, sha256_bytes
from .runner import CellError, execute_notebook, write_kernelspec
from .scoring import ProblemScore, score_problems

KERNEL_ATTEMPTS = 3  # a kernel that dies before running anything is started again
MANIFEST = "grading.json"
GRADEBOOK = "gradebook.csv"
SUMMARY = "summary.txt"
RESERVED_NAMES = (MANIFEST, GRADEBOOK, SUMMARY, "grading", "summary", "gradebook")
SUBMISSION_FILES = ("results.json", "feedback.md", "executed.ipynb")

# Statuses of submissions that were run (fully or in part); the others scored 0.
GRADED_STATUSES = ("graded", "cell_errors", "timeout", "kernel_died")


@dataclass
class Options:
    """Settings of a grading run (see ``python -m resnet_tf grade --help``)."""

    cell_timeout: float = 600.0
    notebook_timeout: float = 3600.0
    jobs: int = 1
    force: bool = False


@dataclass
class SubmissionResult:
    """Everything the grader learned about one submission."""

    submission: Submission
    status: str
    message: str = ""
    sha256: str = ""
    problems: list[ProblemScore] = field(default_factory=list)
    cell_errors: list[CellError] = field(default_factory=list)
    declared_assignment: str | None = None
    seconds: float = 0.0
    executed: Any = None
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        """The sum of the problem scores."""
        return float(sum(p.score for p in self.problems))


@dataclass
class ClassResult:
    """A whole grading run."""

    assignment: str
    problem_ids: list[str]
    points: dict[str, float]
    titles: dict[str, str]
    results: list[SubmissionResult]
    out_dir: Path
    seconds: float = 0.0

    @property
    def max_total(self) -> float:
        """Points available in the assignment."""
        return float(sum(self.points[p] for p in self.problem_ids))


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


def _peek_assignment(path: Path) -> str | None:
    """The assignment a file declares, for the majority vote (None if unreadable)."""
    try:
        raw = json.loads(path.read_bytes().decode("utf-8-sig"))
        name = raw["metadata"]["resnet_tf"]["assignment"]
    except Exception:  # noqa: BLE001 - anything unreadable simply has no vote
        return None
    return name if isinstance(name, str) else None


def choose_assignment(
    paths: list[Path], known: dict[str, list[str]], requested: str | None
) -> str:
    """The assignment to grade: ``requested`` if given, else the submissions' majority.

    Raises :class:`UsageError` when ``requested`` is unknown, or when the submissions do
    not settle it (no known assignment declared, or a tie).
    """
    names = ", ".join(sorted(known)) or "(none registered)"
    if requested is not None:
        if requested not in known:
            raise UsageError(f"unknown assignment {requested!r}; known assignments: {names}")
        return requested
    votes = Counter(a for a in map(_peek_assignment, paths) if a in known)
    if not votes:
        if len(known) == 1:
            return next(iter(known))
        raise UsageError(
            "no submission names a known assignment in its metadata; pass --assignment "
            f"(one of: {names})"
        )
    ranked = votes.most_common()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        tied = ", ".join(f"{a} ({n})" for a, n in ranked if n == ranked[0][1])
        raise UsageError(f"the submissions are split between assignments {tied}; "
                         "pass --assignment to say which one to grade")
    return ranked[0][0]


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
    for filename in (MANIFEST, GRADEBOOK, SUMMARY):
        (out_dir / filename).unlink(missing_ok=True)


# --------------------------------------------------------------------------- grading


async def grade_submission(
    submission: Submission,
    assignment: str,
    problem_ids: list[str],
    points: dict[str, float],
    titles: dict[str, str],
    options: Options,
    kernels_dir: Path,
) -> SubmissionResult:
    """Grade one submission; never raises (failures become the result's status)."""
    started = time.perf_counter()
    result = SubmissionResult(submission, "grader_error")
    try:
        await _grade_into(result, assignment, problem_ids, points, titles, options,
                          kernels_dir)
    except Exception as exc:  # noqa: BLE001 - one submission must not stop the class
        result.status = "grader_error"
        result.message = f"{type(exc).__name__}: {exc}"
        result.notes.append(traceback.format_exc())
    if not result.problems:
        result.problems = score_problems(problem_ids, [], points, titles)
        for problem in result.problems:
            problem.output = f"Not graded: {result.message or result.status}."
    result.seconds = time.perf_counter() - started
    return result


async def _grade_into(
    result: SubmissionResult,
    assignment: str,
    problem_ids: list[str],
    points: dict[str, float],
    titles: dict[str, str],
    options: Options,
    kernels_dir: Path,
) -> None:
    """The body of :func:`grade_submission`, filling ``result`` in place."""
    data = result.submission.path.read_bytes()
    result.sha256 = sha256_bytes(data)
    status, message, notebook = parse_notebook(data)
    if notebook is None:
        result.status, result.message = status, message
        return
    declared = declared_assignment(notebook)
    result.declared_assignment = declared
    if declared is not None and declared != assignment:
        result.status = "wrong_assignment"
        result.message = f"this notebook is for assignment {declared!r}, not {assignment!r}"
        return

    for attempt in range(1, KERNEL_ATTEMPTS + 1):
        with tempfile.TemporaryDirectory(prefix="resnet-tf-grade-") as tmp:
            workdir = Path(tmp) / "work"
            workdir.mkdir()
            (workdir / "submission.ipynb").write_bytes(data)  # a copy the notebook may see
            execution = await execute_notebook(
                copy.deepcopy(notebook), workdir, options.cell_timeout,
                options.notebook_timeout, kernels_dir,
            )
        if not execution.failed_to_start:
            break
        result.notes.append(f"attempt {attempt}: the kernel did not start ({execution.message})")
        await asyncio.sleep(1.0)
    result.executed = execution.notebook
    result.cell_errors = execution.cell_errors
    if execution.bad_log_lines:
        result.notes.append(f"{execution.bad_log_lines} unreadable line(s) in the check log")

    if declared is None:
        own = {str(r.get("problem")) for r in execution.records} & set(problem_ids)
        others = {str(r.get("problem")) for r in execution.records} - set(problem_ids)
        if not own and others:
            result.status = "wrong_assignment"
            result.message = ("the notebook has no assignment metadata and checks only "
                              f"problems of another assignment ({', '.join(sorted(others))})")
            return
        result.notes.append("the notebook carries no assignment metadata; graded by the "
                            "problem ids its checks name")

    result.problems = score_problems(problem_ids, execution.records, points, titles)
    result.status, result.message = _execution_status(execution, notebook)


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


def grade_class(
    paths: list[str | Path],
    out_dir: str | Path,
    options: Options | None = None,
    assignment: str | None = None,
    progress: Callable[[SubmissionResult, int, int], None] | None = None,
) -> ClassResult:
    """Grade every submission under ``paths`` into ``out_dir`` (see the module docstring).

    Raises :class:`UsageError` only for problems with the request itself (missing paths,
    no notebooks found, an occupied output folder, an unknown or undecidable assignment);
    ``progress(result, done, total)`` is called after each submission.
    """
    from . import reports

    options = options or Options()
    out_dir = Path(out_dir).expanduser()
    check_output(out_dir, options.force)
    notebooks = find_notebooks(paths, exclude=out_dir)
    if not notebooks:
        raise UsageError("no submissions found (looked for *.ipynb files in: "
                         + ", ".join(str(p) for p in paths) + ")")
    known, points, titles = _registry()
    chosen = choose_assignment(notebooks, known, assignment)
    problem_ids = list(known[chosen])
    submissions = name_submissions(notebooks, reserved=RESERVED_NAMES)
    prepare_output(out_dir, options.force)

    run = ClassResult(chosen, problem_ids, points, titles, [], out_dir)
    started_at = datetime.now(timezone.utc)
    started = time.perf_counter()
    slots: list[SubmissionResult | None] = [None] * len(submissions)

    async def main() -> None:
        semaphore = asyncio.Semaphore(max(1, options.jobs))
        done = 0
        with tempfile.TemporaryDirectory(prefix="resnet-tf-kernel-") as spec_root:
            kernels_dir = write_kernelspec(spec_root)

            async def one(index: int, submission: Submission) -> None:
                nonlocal done
                async with semaphore:
                    result = await grade_submission(submission, chosen, problem_ids, points,
                                                    titles, options, kernels_dir)
                slots[index] = result
                reports.write_submission(run, result)
                run.results = [r for r in slots if r is not None]
                reports.write_gradebook(run)
                done += 1
                if progress is not None:
                    progress(result, done, len(submissions))

            await asyncio.gather(*(one(i, s) for i, s in enumerate(submissions)))

    asyncio.run(main())
    run.results = [r for r in slots if r is not None]
    run.seconds = time.perf_counter() - started
    reports.write_gradebook(run)
    reports.write_manifest(run, options, started_at)
    (out_dir / SUMMARY).write_text(reports.summary_table(run) + "\n", encoding="utf-8")
    return run

