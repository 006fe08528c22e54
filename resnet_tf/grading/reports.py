"""What a grading run writes: the gradebook, Gradescope results, feedback, the summary.

Layout of the output folder::

    DIR/gradebook.csv            one row per submission
    DIR/summary.txt              the table printed at the end
    DIR/grading.json             the run's manifest (settings, files, hashes, statuses)
    DIR/<name>/results.json      Gradescope autograder format
    DIR/<name>/feedback.md       the note for the student
    DIR/<name>/executed.ipynb    the notebook as the grader ran it, with outputs

Every file is written through a temporary sibling and renamed into place, so a reader
never sees half a file; files get the usual permissions the umask gives (readable by the
instructor's group and others when the umask says so, like any file they create), and
text that cannot be encoded (a lone surrogate in a student's message) is escaped rather
than allowed to stop the run.

What students see (``results.json``, ``feedback.md``) never holds a hidden case's inputs
or expected values: the checkers' messages name hidden cases by number only.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .results import ClassResult, Options, SubmissionResult
from .scoring import NOT_CHECKED

GRADEBOOK_FIXED = ("submission", "total", "max_total")
GRADEBOOK_TAIL = ("status", "error", "student_id", "file", "sha256", "resnet_tf")
#: Visibilities of the tests that carry the points. Gradescope hides a student's total
#: while such tests are hidden; "hidden" tests would not hide it, so it is not offered.
HIDDEN_VISIBILITIES = ("after_published", "after_due_date")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder.

    The file gets mode ``0666`` minus the umask (as ``open`` would give it); characters
    UTF-8 cannot encode are written as backslash escapes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", errors="backslashreplace",
                       newline="") as stream:
            stream.write(text)
        os.chmod(temp, 0o666 & ~_umask())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise



def fmt(value: float) -> str:
    """A score as a short number: ``2``, ``1.5``, ``0.333``."""
    return f"{round(value, 3):g}"


# --------------------------------------------------------------------------- gradebook


def gradebook_rows(run: ClassResult) -> list[dict[str, str]]:
    """The gradebook as a list of rows (column name -> text)."""
    rows = []
    for result in run.results:
        row = {
            "submission": result.submission.name,
            "total": fmt(result.total),
            "max_total": fmt(run.max_total),
        }
        for problem in result.problems:
            row[problem.problem] = fmt(problem.score)
        row.update({
            "status": result.status,
            "error": result.message,
            "student_id": result.student,
            "file": result.submission.display,
            "sha256": result.sha256,
            "resnet_tf": run.version,
        })
        rows.append(row)
    return rows


def write_gradebook(run: ClassResult) -> Path:
    """Write ``gradebook.csv``: submission, total, max_total, one column per problem,
    status, error, student_id, file, sha256, resnet_tf (the grader's version)."""
    columns = [*GRADEBOOK_FIXED, *run.problem_ids, *GRADEBOOK_TAIL]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in gradebook_rows(run):
        writer.writerow(row)
    path = run.out_dir / "gradebook.csv"
    write_text(path, buffer.getvalue())
    return path


# --------------------------------------------------------------------------- per submission


def gradescope_results(run: ClassResult, result: SubmissionResult) -> dict[str, Any]:
    """The submission's grade in Gradescope's ``results.json`` format.

    Two tests per problem: the checks the student could run themselves (``visible``,
    worth no points, so they reveal nothing the notebook did not already show), and the
    full grade with the hidden checks (it holds the points; its visibility is
    ``run.hidden_visibility``, ``after_published`` by default). The total ``score`` is
    set at the top level; Gradescope does not show it to the student while tests that
    carry points are hidden, so a resubmission reveals nothing about the hidden cases
    before the grades are published. Gradescope knows only ``passed`` and ``failed``; the grader's
    own status is kept in ``extra_data``.
    """
    tests = []
    hidden = run.hidden_visibility
    for number, problem in enumerate(result.problems, start=1):
        full = problem.max_score > 0 and problem.score >= problem.max_score
        name = f"[{problem.problem}] {problem.title}".strip()
        tests.append({
            "name": f"{name}: the checks in your notebook",
            "number": f"{number}.1",
            "status": "passed" if problem.visible_status == "passed" else "failed",
            "output": problem.visible_output,
            "output_format": "text",
            "visibility": "visible",
            "extra_data": {"problem": problem.problem, "status": problem.visible_status},
        })
        tests.append({
            "name": f"{name}: grade with hidden checks",
            "number": f"{number}.2",
            "score": round(problem.score, 4),
            "max_score": problem.max_score,
            "status": "passed" if full else "failed",
            "output": problem.output,
            "output_format": "text",
            "visibility": hidden,
            "extra_data": {"problem": problem.problem, "status": problem.status,
                           "calls": problem.calls},
        })
    overall = STATUS_TEXT.get(result.status, result.status)
    output = overall + (f": {result.message}" if result.message else "")
    return {
        "score": round(result.total, 4),
        "execution_time": int(round(result.seconds)),
        "output": output,
        "output_format": "text",
        "test_output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
        "extra_data": {
            "submission": result.submission.name,
            "file": result.submission.display,
            "sha256": result.sha256,
            "status": result.status,
            "assignment": run.assignment,
            "student_id": result.student,
            "resnet_tf": run.version,
        },
    }


def feedback_markdown(run: ClassResult, result: SubmissionResult) -> str:
    """The short Markdown note for the student: score, per-problem verdicts, cell errors."""
    lines = [
        f"# Feedback: {run.assignment}",
        "",
        f"Submission: `{result.submission.display}`",
        "",
        f"Student id: `{result.student}`" if result.student else
        "Student id: none (graded with the book's own numbers)",
        "",
        f"**Score: {fmt(result.total)} / {fmt(run.max_total)}**",
        "",
    ]
    if result.status != "graded":
        lines += [f"Status: {STATUS_TEXT.get(result.status, result.status)}.", ""]
        if result.message:
            lines += [f"Details: {result.message}", ""]
    lines += ["| Problem | Points | Result |", "|---|---|---|"]
    for problem in result.problems:
        title = f"{problem.problem} {problem.title}".strip().replace("|", "/")
        lines.append(f"| {title} | {fmt(problem.score)} / {fmt(problem.max_score)} | "
                     f"{RESULT_TEXT.get(problem.status, problem.status)} |")
    lines.append("")
    details = [p for p in result.problems if p.status != "passed"]
    if details:
        lines += ["## What to look at", ""]
        for problem in details:
            lines += [f"### {problem.problem} {problem.title}".rstrip(), "", "```",
                      problem.output.strip() or "(no message)", "```", ""]
    if result.cell_errors:
        lines += ["## Cells that did not finish", ""]
        for error in result.cell_errors:
            text = f"{error.ename}: {error.evalue}".strip().rstrip(":")
            lines.append(f"- cell {error.index + 1}: {text}")
        lines.append("")
    lines += [
        "Your notebook was run from top to bottom in a fresh kernel. The grade uses the "
        "same checks as `check(...)` plus further checks you did not see (they are named "
        "by number only); if a problem was checked more than once, the last check counts.",
        "",
    ]
    return "\n".join(lines)


def write_submission(run: ClassResult, result: SubmissionResult) -> Path:
    """Write ``DIR/<name>/`` (results.json, feedback.md, executed.ipynb); return it."""
    folder = run.out_dir / result.submission.name
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o777 & ~_umask())
    write_text(folder / "results.json",
               json.dumps(gradescope_results(run, result), indent=2) + "\n")
    write_text(folder / "feedback.md", feedback_markdown(run, result))
    if result.executed is not None:
        import nbformat

        try:
            write_text(folder / "executed.ipynb", nbformat.writes(result.executed))
        except Exception as exc:  # noqa: BLE001 - outputs that cannot be saved
            result.notes.append(f"could not save the executed notebook: {exc}")
    return folder


def write_manifest(run: ClassResult, options: Options, started_at: datetime) -> Path:
    """Write ``grading.json``: what was graded, how, and with which result."""
    from .. import __version__

    manifest = {
        "tool": "python -m resnet_tf grade",
        "resnet_tf": __version__,
        "assignment": run.assignment,
        "key": options.key is not None,
        "key_fingerprint": key_fingerprint(options.key),
        "sandbox": run.sandbox,
        "notes": run.notes,
        "interrupted": run.interrupted,
        "problems": {pid: run.points[pid] for pid in run.problem_ids},
        "started": started_at.isoformat(timespec="seconds"),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(run.seconds, 1),
        "options": {"timeout": options.cell_timeout,
                    "notebook_timeout": options.notebook_timeout, "jobs": options.jobs},
        "submissions": [
            {
                "name": r.submission.name,
                "file": str(r.submission.path),
                "sha256": r.sha256,
                "status": r.status,
                "student_id": r.student,
                "notebook_resnet_tf": r.version,
                "total": r.total,
                "seconds": round(r.seconds, 1),
                "notes": r.notes,
            }
            for r in run.results
        ],
    }
    path = run.out_dir / "grading.json"
    write_text(path, json.dumps(manifest, indent=2) + "\n")
    return path


def key_fingerprint(key: bytes | None) -> str | None:
    """A short public fingerprint of the key (which key graded a run), or None."""
    if not key:
        return None
    import hashlib
    import hmac

    return hmac.new(key, b"resnet_tf key fingerprint", hashlib.sha256).hexdigest()[:12]


# --------------------------------------------------------------------------- summary


STATUS_TEXT = {
    "graded": "graded",
    "cell_errors": "graded, but some cells raised errors",
    "timeout": "graded in part: a time limit stopped some cells",
    "kernel_died": "graded in part: the Python kernel crashed",
    "empty": "not graded: the file is empty",
    "not_json": "not graded: the file is not a notebook (not JSON)",
    "not_notebook": "not graded: the file is not a Jupyter notebook",
    "wrong_assignment": "not graded: a notebook of another assignment",
    "unreadable": "not graded: the file could not be read (not a regular file, or too large)",
    "grader_error": "not graded: the grader could not run it",
}

RESULT_TEXT = {
    "passed": "correct",
    "failed": "not correct",
    "unanswered": "not answered",
    "error": "your code raised an error",
    NOT_CHECKED: "not checked (check cell missing or not reached)",
}


def problem_statistics(run: ClassResult) -> list[dict[str, Any]]:
    """Per problem: points, mean score over all submissions, and counts.

    ``checked`` counts submissions where a check of the problem ran, ``full`` those with
    full marks, ``failed`` those checked without full marks, ``not_checked`` the rest.
    """
    stats = []
    count = len(run.results)
    for pid in run.problem_ids:
        scores = [p for r in run.results for p in r.problems if p.problem == pid]
        checked = [p for p in scores if p.status != NOT_CHECKED]
        full = [p for p in checked if p.max_score > 0 and p.score >= p.max_score]
        stats.append({
            "problem": pid,
            "points": run.points[pid],
            "mean": (sum(p.score for p in scores) / count) if count else 0.0,
            "checked": len(checked),
            "full": len(full),
            "failed": len(checked) - len(full),
            "not_checked": count - len(checked),
        })
    return stats


def summary_table(run: ClassResult) -> str:
    """The plain-text summary printed at the end of a run."""
    count = len(run.results)
    statuses: dict[str, int] = {}
    for result in run.results:
        statuses[result.status] = statuses.get(result.status, 0) + 1
    status_text = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
    lines = [
        f"Assignment {run.assignment}: {count} submission(s) in {run.seconds:.0f} s "
        f"({status_text})",
        "",
        f"{'problem':<12}{'points':>7}{'mean':>8}{'checked':>9}{'full':>6}{'failed':>8}"
        f"{'not run':>9}",
    ]
    for row in problem_statistics(run):
        lines.append(
            f"{row['problem']:<12}{fmt(row['points']):>7}{row['mean']:>8.2f}"
            f"{row['checked']:>9}{row['full']:>6}{row['failed']:>8}{row['not_checked']:>9}"
        )
    mean_total = sum(r.total for r in run.results) / count if count else 0.0
    lines.append(f"{'total':<12}{fmt(run.max_total):>7}{mean_total:>8.2f}")
    lines += ["", f"resnet_tf {run.version}; hidden cases "
              + ("from the instructor's key" if run.keyed else "from the public code (no key)")
              + f"; kernels ran with {run.sandbox or 'no protection'}"]
    for note in run.notes:
        lines.append(f"  note: {note}")
    ids: dict[str, list[str]] = {}
    for result in run.results:
        if result.ran:
            ids.setdefault(result.student, []).append(result.submission.name)
    if "" in ids:
        lines.append(f"  {len(ids.pop(''))} submission(s) without a student id were graded "
                     "with the book's numbers, which the published solutions print")
    shared = {sid: names for sid, names in ids.items() if len(names) > 1}
    for sid, names in sorted(shared.items()):
        lines.append(f"  student id {sid!r} is used by {len(names)} submissions: "
                     + ", ".join(names))
    others = sorted({r.version for r in run.results if r.version and r.version != run.version})
    if others:
        made = [r.submission.name for r in run.results if r.version in others]
        lines.append(f"  warning: {len(made)} submission(s) were made with another resnet_tf "
                     f"version ({', '.join(others)}); their checks may differ from these")
    if run.interrupted:
        lines.append(f"  interrupted: {len(run.interrupted)} submission(s) not graded: "
                     + ", ".join(run.interrupted[:10]) + (" ..." if len(run.interrupted) > 10
                                                          else ""))
    attention = [r for r in run.results if r.status != "graded"]
    if attention:
        lines += ["", "Submissions to look at:"]
        for result in attention:
            message = result.message if len(result.message) < 110 else (
                result.message[:107] + "...")
            lines.append(f"  {result.submission.name}: {result.status}"
                         + (f" - {message}" if message else ""))
    lines += ["", "checked: a check of the problem ran; full: full marks; failed: checked "
              "without full marks;", "not run: no check of the problem ran (mean counts "
              "every submission, 0 when not run).", "",
              f"Gradebook: {run.out_dir / 'gradebook.csv'}"]
    return "\n".join(lines)
