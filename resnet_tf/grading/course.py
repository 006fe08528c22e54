"""One gradebook for the whole term: every assignment's rows, their history, the exports.

A *course folder* (``grade ... --course DIR``) keeps::

    DIR/gradebook.json   the rows: one per (assignment, student), the current grade
    DIR/history.jsonl    every row that was ever replaced, with when and why (append only)
    DIR/gradebook.csv    the same rows as a table, one column per problem
    DIR/runs/            the output folder of each grading run (unless --out says otherwise)

A grading run adds or replaces only the rows of the submissions it graded: grading one
student's file again replaces that student's row of that assignment and nothing else,
and the replaced row goes to the history. A row is never deleted. With a roster,
students without a submission get a row with 0 points and the status ``missing`` (only
where they have no row yet), and submissions of students not on the roster are listed.

Late work: ``--due`` and ``--late-penalty`` (:class:`LatePolicy`) scale a late
submission's points; the submission time comes from the LMS (the Gradescope export's
metadata, or a ``submitted`` group of a custom ``--names`` pattern), else from the
file's modification time, and each row says which.

Exports (:func:`export`): ``canvas`` (Canvas' gradebook import: ``Student``, ``ID``,
``SIS User ID``, ``Section``, then one column of points per assignment, after Canvas'
own ``Points Possible`` row), ``moodle`` (``ID number``, ``Full name``,
``Email address``, then one column per assignment, for Moodle's CSV grade import mapped
on the ID number), and ``csv`` (everything, one row per student and assignment, with
every problem's points).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .collect import UsageError
from .identity import FileIdentity, Resolved, Roster, gradescope_metadata, identify, resolve
from .reports import fmt, write_text
from .results import ClassResult, SubmissionResult

BOOK = "gradebook.json"
HISTORY = "history.jsonl"
TABLE = "gradebook.csv"
FORMATS = ("canvas", "moodle", "csv")
CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "Section")
MOODLE_COLUMNS = ("ID number", "Full name", "Email address")
ROW_COLUMNS = ("assignment", "student_id", "name", "section", "lms_id", "total", "max_total",
               "raw_total", "penalty_percent", "late_hours", "submitted", "submitted_from",
               "status", "identity", "identity_note", "on_roster", "submission", "file",
               "sha256", "graded_at", "run")


# --------------------------------------------------------------------------- late work


@dataclass(frozen=True)
class LatePolicy:
    """A deadline and how much a late submission loses.

    ``percent`` of the points per started ``period`` (``"day"`` or ``"hour"``) after
    ``due``, at most ``cap`` percent in all; ``period=None`` takes ``percent`` once for
    any lateness (``100%``: late work earns nothing). The score kept is
    ``raw x (1 - min(cap, percent x ceil(late / period)) / 100)``.
    """

    due: datetime
    percent: float = 0.0
    period: str | None = "day"
    cap: float = 100.0

    def penalty(self, submitted: datetime | None) -> tuple[float, float]:
        """``(hours late, percent taken)`` for a submission made at ``submitted``."""
        if submitted is None:
            return 0.0, 0.0
        hours = (submitted - self.due).total_seconds() / 3600.0
        if hours <= 0:
            return 0.0, 0.0
        if self.period is None:
            return hours, min(self.cap, self.percent)
        periods = math.ceil(hours / (24.0 if self.period == "day" else 1.0))
        return hours, min(self.cap, self.percent * periods)


def parse_late_penalty(text: str) -> tuple[float, str | None, float]:
    """``(percent, period, cap)`` from ``10%/day``, ``2%/hour,max=50%`` or ``100%``.

    Raises :class:`UsageError` naming the accepted forms.
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%\s*(?:/\s*(day|hour))?\s*"
                         r"(?:,\s*max\s*=\s*(\d+(?:\.\d+)?)\s*%)?\s*", str(text))
    if not match:
        raise UsageError(f"--late-penalty {text!r}: use PERCENT%/day, PERCENT%/hour (with "
                         "an optional ,max=PERCENT%) or PERCENT% for any lateness, e.g. "
                         "10%/day,max=50%")
    percent = float(match.group(1))
    cap = float(match.group(3)) if match.group(3) else 100.0
    if percent > 100 or cap > 100:
        raise UsageError(f"--late-penalty {text!r}: a percentage above 100")
    return percent, match.group(2), cap


# --------------------------------------------------------------------------- the book


@dataclass
class Identification:
    """How the submissions of a run are tied to students (``--names``, ``--roster``)."""

    pattern: tuple[str, re.Pattern] | None = None
    roster: Roster | None = None
    late: LatePolicy | None = None


def _file_identity(result: SubmissionResult, how: Identification) -> FileIdentity | None:
    path = result.submission.path
    if how.pattern is None:
        return None
    label, regex = how.pattern
    found = identify(path, label, regex)
    if found is None:
        return None
    if label == "gradescope" and found.lms_id:
        meta = gradescope_metadata(path.parent).get(f"submission_{found.lms_id}", {})
        found.student_id = found.student_id or meta.get("sid", "")
        found.name = found.name or meta.get("name", "")
        if meta.get("created_at"):
            from .identity import parse_time

            with contextlib.suppress(ValueError):
                found.submitted = parse_time(meta["created_at"].replace(" ", "T", 1))
    return found


def _submission_time(result: SubmissionResult, found: FileIdentity | None
                     ) -> tuple[datetime | None, str]:
    if found is not None and found.submitted is not None:
        return found.submitted, f"{found.source} name/metadata"
    try:
        mtime = os.lstat(result.submission.path).st_mtime
    except OSError:
        return None, ""
    return datetime.fromtimestamp(mtime, timezone.utc), "file time"


def row_of(run: ClassResult, result: SubmissionResult, how: Identification,
           graded_at: str) -> tuple[dict[str, Any], Resolved]:
    """The course-book row of one graded submission."""
    found = _file_identity(result, how)
    resolved = resolve(result.student, found, how.roster)
    submitted, source = _submission_time(result, found)
    hours, percent = how.late.penalty(submitted) if how.late else (0.0, 0.0)
    raw = result.total
    total = raw * (1.0 - percent / 100.0)
    student = resolved.student
    row = {
        "assignment": run.assignment,
        "student_id": resolved.key or f"file:{result.submission.name}",
        "name": (student.name if student else "") or (found.name if found else ""),
        "section": student.section if student else "",
        "lms_id": (student.lms_id if student and student.lms_id else
                   (found.lms_id if found else "")),
        "email": student.email if student else "",
        "total": round(total, 4),
        "max_total": run.max_total,
        "raw_total": round(raw, 4),
        "penalty_percent": round(percent, 2),
        "late_hours": round(hours, 2),
        "submitted": submitted.isoformat(timespec="seconds") if submitted else "",
        "submitted_from": source,
        "lms_late_mark": bool(found and found.late),
        "status": result.status,
        "identity": resolved.check,
        "identity_note": resolved.message,
        "on_roster": ("" if how.roster is None else
                      "yes" if student is not None else "no"),
        "submission": result.submission.name,
        "file": str(result.submission.path),
        "sha256": result.sha256,
        "graded_at": graded_at,
        "run": str(run.out_dir),
        "problems": {p.problem: round(p.score, 4) for p in result.problems},
    }
    return row, resolved


def _missing_row(run: ClassResult, student: Any, graded_at: str) -> dict[str, Any]:
    return {
        "assignment": run.assignment, "student_id": student.student_id, "name": student.name,
        "section": student.section, "lms_id": student.lms_id, "email": student.email,
        "total": 0.0, "max_total": run.max_total, "raw_total": 0.0, "penalty_percent": 0.0,
        "late_hours": 0.0, "submitted": "", "submitted_from": "", "lms_late_mark": False,
        "status": "missing", "identity": "roster", "identity_note": "no submission",
        "on_roster": "yes", "submission": "", "file": "", "sha256": "",
        "graded_at": graded_at, "run": str(run.out_dir),
        "problems": {pid: 0.0 for pid in run.problem_ids},
    }


@dataclass
class BookUpdate:
    """What recording a run changed in the course book."""

    added: list[str]
    replaced: list[str]
    missing: list[str]
    off_roster: list[str]
    mismatches: list[str]
    duplicates: list[str]
    late: list[str]

    def lines(self) -> list[str]:
        """The report printed after a run."""
        out = [f"Course gradebook: {len(self.added)} row(s) added, {len(self.replaced)} "
               f"replaced (earlier grades kept in {HISTORY})"]
        for label, items in (("missing (0 points)", self.missing),
                             ("not on the roster", self.off_roster),
                             ("student id mismatch", self.mismatches),
                             ("several submissions of one student (latest kept)",
                              self.duplicates),
                             ("late", self.late)):
            if items:
                out.append(f"  {label}: " + "; ".join(items[:20])
                           + (" ..." if len(items) > 20 else ""))
        return out


class CourseBook:
    """The course folder's gradebook (see the module docstring)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder).expanduser()
        if self.folder.exists() and not self.folder.is_dir():
            raise UsageError(f"--course {self.folder} exists and is not a folder")
        self.rows: list[dict[str, Any]] = []
        self.assignments: dict[str, dict[str, Any]] = {}
        path = self.folder / BOOK
        if path.exists():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                self.rows = list(data["rows"])
                self.assignments = dict(data.get("assignments", {}))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise UsageError(f"the course gradebook {path} cannot be read ({exc}); "
                                 f"earlier grades are in {self.folder / HISTORY}") from None

    def find(self, assignment: str, student_id: str) -> int | None:
        """The index of the row of this assignment and student, or None."""
        for index, row in enumerate(self.rows):
            if row["assignment"] == assignment and row["student_id"] == student_id:
                return index
        return None

    def _history(self, row: dict[str, Any], why: str, when: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / HISTORY, "a", encoding="utf-8") as stream:
            stream.write(json.dumps({**row, "replaced_at": when, "why": why}) + "\n")

    def put(self, row: dict[str, Any], why: str, when: str) -> str:
        """Add ``row`` or replace the row of its assignment and student; return which."""
        index = self.find(row["assignment"], row["student_id"])
        if index is None:
            self.rows.append(row)
            return "added"
        self._history(self.rows[index], why, when)
        self.rows[index] = row
        return "replaced"

    def record(self, run: ClassResult, how: Identification) -> BookUpdate:
        """Add or replace the rows of ``run``'s graded submissions, then save."""
        when = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.assignments[run.assignment] = {
            "max_total": run.max_total,
            "problems": {pid: run.points[pid] for pid in run.problem_ids}}
        update = BookUpdate([], [], [], [], [], [], [])
        chosen: dict[str, dict[str, Any]] = {}
        for result in run.results:
            row, resolved = row_of(run, result, how, when)
            key = row["student_id"]
            if resolved.check == "mismatch":
                update.mismatches.append(f"{result.submission.name}: {resolved.message}")
            if row["on_roster"] == "no":
                update.off_roster.append(f"{result.submission.name} ({key})")
            if row["penalty_percent"] > 0:
                update.late.append(f"{key}: {row['late_hours']:.1f} h late, "
                                   f"-{row['penalty_percent']:g}%")
            earlier = chosen.get(key)
            if earlier is not None:
                older, newer = sorted([earlier, row], key=lambda r: r["submitted"])
                update.duplicates.append(f"{key}: {older['submission']} and "
                                         f"{newer['submission']}")
                self._history(older, f"another submission of {key} in the same run is "
                              "later", when)
                row = newer
            chosen[key] = row
        for key, row in chosen.items():
            outcome = self.put(row, "graded again", when)
            (update.added if outcome == "added" else update.replaced).append(key)
        if how.roster is not None:
            for sid, student in how.roster.students.items():
                if self.find(run.assignment, sid) is None:
                    self.rows.append(_missing_row(run, student, when))
                    update.missing.append(sid)
        self.save()
        return update

    def save(self) -> None:
        """Write ``gradebook.json`` and ``gradebook.csv`` (atomically, one after the other)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.rows.sort(key=lambda r: (r["assignment"], r["student_id"]))
        write_text(self.folder / BOOK, json.dumps(
            {"format": 1, "assignments": self.assignments, "rows": self.rows}, indent=1) + "\n")
        write_text(self.folder / TABLE, full_table(self))

    def history(self) -> list[dict[str, Any]]:
        """Every replaced row, oldest first."""
        path = self.folder / HISTORY
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip()]


# --------------------------------------------------------------------------- exports


def _csv(rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(rows)
    return buffer.getvalue()


def _students(book: CourseBook) -> list[dict[str, Any]]:
    """One record per student over all assignments (name, ids, section), sorted."""
    people: dict[str, dict[str, Any]] = {}
    for row in book.rows:
        person = people.setdefault(row["student_id"], {"student_id": row["student_id"],
                                                       "name": "", "lms_id": "",
                                                       "section": "", "email": ""})
        for field_name in ("name", "lms_id", "section", "email"):
            if row.get(field_name) and not person[field_name]:
                person[field_name] = row[field_name]
    return [people[k] for k in sorted(people)]


def _assignments(book: CourseBook, chosen: list[str] | None) -> list[str]:
    names = sorted(book.assignments) if not chosen else list(chosen)
    unknown = [a for a in names if a not in book.assignments]
    if unknown:
        raise UsageError(f"no grades for assignment(s) {', '.join(unknown)} in "
                         f"{book.folder}; it has: {', '.join(sorted(book.assignments))}")
    return names


def _score(book: CourseBook, assignment: str, sid: str) -> str:
    index = book.find(assignment, sid)
    return "" if index is None else fmt(book.rows[index]["total"])


def canvas_table(book: CourseBook, assignments: list[str] | None = None) -> str:
    """Canvas' gradebook import: ``Student, ID, SIS User ID, Section, <assignment>...``.

    The second row is Canvas' own ``Points Possible`` row (as in its exports). A student
    is matched by ``ID`` (the Canvas user id, from the file names or the roster) or by
    ``SIS User ID`` (the student id). A column whose header is not an existing Canvas
    assignment becomes a new assignment; rename it to ``Name (canvas id)`` to fill an
    existing one.
    """
    names = _assignments(book, assignments)
    rows: list[list[Any]] = [[*CANVAS_COLUMNS, *names],
                             ["Points Possible", "", "", "",
                              *(fmt(book.assignments[a]["max_total"]) for a in names)]]
    for person in _students(book):
        sis = "" if person["student_id"].startswith(("file:", "lms:")) else person["student_id"]
        rows.append([person["name"], person["lms_id"], sis, person["section"],
                     *(_score(book, a, person["student_id"]) for a in names)])
    return _csv(rows)


def moodle_table(book: CourseBook, assignments: list[str] | None = None) -> str:
    """Moodle's CSV grade import: ``ID number, Full name, Email address, <assignment>...``.

    Map ``ID number`` to the users' ID number field when importing.
    """
    names = _assignments(book, assignments)
    rows: list[list[Any]] = [[*MOODLE_COLUMNS, *names]]
    for person in _students(book):
        rows.append([person["student_id"], person["name"], person["email"],
                     *(_score(book, a, person["student_id"]) for a in names)])
    return _csv(rows)


def full_table(book: CourseBook, assignments: list[str] | None = None) -> str:
    """Every row with every field and each problem's points (``<assignment>:<problem>``)."""
    names = sorted(book.assignments) if not assignments else list(assignments)
    problem_columns = [f"{a}:{pid}" for a in names
                       for pid in book.assignments.get(a, {}).get("problems", {})]
    rows: list[list[Any]] = [[*ROW_COLUMNS, *problem_columns]]
    for row in book.rows:
        if row["assignment"] not in names:
            continue
        values = [fmt(row[c]) if isinstance(row.get(c), float) else row.get(c, "")
                  for c in ROW_COLUMNS]
        problems = row.get("problems", {})
        values += [fmt(problems[c.split(":", 1)[1]])
                   if c.split(":", 1)[0] == row["assignment"]
                   and c.split(":", 1)[1] in problems else "" for c in problem_columns]
        rows.append(values)
    return _csv(rows)


def export(book: CourseBook, fmt_name: str, out: str | os.PathLike,
           assignments: list[str] | None = None) -> Path:
    """Write the gradebook in format ``fmt_name`` (one of :data:`FORMATS`) to ``out``."""
    if fmt_name not in FORMATS:
        raise UsageError(f"--format {fmt_name!r}: choose one of {', '.join(FORMATS)}")
    if not book.rows:
        raise UsageError(f"the course gradebook in {book.folder} is empty; grade with "
                         "--course first")
    makers = {"canvas": canvas_table, "moodle": moodle_table, "csv": full_table}
    path = Path(out).expanduser()
    write_text(path, makers[fmt_name](book, assignments))
    return path
