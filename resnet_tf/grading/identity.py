"""Who handed in a submission: the id in the notebook, the LMS file name, the roster.

Two sources name the student of a submission:

- the ``STUDENT_ID = "..."`` cell of the notebook (the id the variants are drawn from,
  see :func:`resnet_tf.grading.grader.student_id_of`);
- the file name the course's LMS gave the download, read with a *named pattern*
  (:data:`PATTERNS`) or the instructor's own regular expression.

The patterns know the download formats of the common systems:

``canvas``
    "Download Submissions" of an assignment: ``<lastfirst>_<userid>_<attachmentid>_<file>``,
    with ``_late`` after the name when Canvas marked the submission late, e.g.
    ``smithjane_late_123456_7890123_01_signal_propagation.ipynb``. Canvas appends
    ``-1``, ``-2`` to the original file name of a resubmission. ``userid`` is the
    Canvas user id (the ``ID`` column of a Canvas gradebook export).
``moodle``
    "Download all submissions": ``<Full Name>_<participantid>_assignsubmission_file_<file>``,
    either flat or as a folder ``<Full Name>_<participantid>_assignsubmission_file_/``
    holding the student's files.
``gradescope``
    "Export Submissions": a folder ``submission_<submissionid>/`` per submission and a
    ``submission_metadata.yml`` at the top mapping each folder to its submitters (their
    ``:sid:``) and the time (``:created_at:``), which is read when present.
``plain``
    ``<student id>.ipynb``.

Every pattern is searched in the last two components of the submission's path
(``folder/file.ipynb``), so a single file graded again on its own is read as it was in
the whole download. A custom pattern is a Python regular expression, e.g.
``(?P<student_id>[^/]+)/[^/]+$`` for a folder per student; it may use the groups
``student_id``, ``lms_id``, ``name``, ``late`` and ``submitted`` (an ISO 8601 time).

The two sources are compared, never merged silently: when the notebook's id and the
file's student differ (after the roster has translated LMS ids), the row says so.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .. import _deprecation
from .collect import UsageError

PATTERNS: dict[str, str] = {
    "canvas": (r"(?:^|/)(?P<name>[^/_]+?)(?:_(?P<late>late|LATE))?_(?P<lms_id>\d+)"
               r"_(?P<attachment>\d+)_(?P<file>[^/]+)$"),
    "moodle": (r"(?:^|/)(?P<name>[^/_]+)_(?P<lms_id>\d+)_assignsubmission_file_"
               r"(?:/.*|[^/]*)$"),
    "gradescope": r"(?:^|/)submission_(?P<lms_id>\d+)(?:/|_)",
    "plain": r"(?:^|/)(?P<student_id>[^/]+?)\.[iI][pP][yY][nN][bB]$",
}
__getattr__ = _deprecation.removed_names(__name__, {
    "GROUPS": (("student_id", "lms_id", "name", "late", "submitted"),
               "the named groups listed in the help of --names"),
})
ROSTER_ID_COLUMNS = ("student_id", "sis user id", "id number", "idnumber", "sid",
                     "student id", "username")
ROSTER_LMS_COLUMNS = ("lms_id", "id", "canvas id", "user id", "participant id")
ROSTER_NAME_COLUMNS = ("name", "student", "full name", "student name")
ROSTER_SECTION_COLUMNS = ("section", "group", "groups")
ROSTER_EMAIL_COLUMNS = ("email", "email address")


@dataclass
class FileIdentity:
    """What a submission's file name (or its LMS metadata) says about its student."""

    student_id: str = ""
    lms_id: str = ""
    name: str = ""
    late: bool = False
    submitted: datetime | None = None
    source: str = ""  # the pattern that matched


def compile_pattern(spec: str) -> tuple[str, re.Pattern]:
    """``(label, regex)`` for ``--names``: a named pattern or a regular expression.

    Raises :class:`UsageError` for an expression that does not compile or uses no
    group that names a student.
    """
    if spec in PATTERNS:
        return spec, re.compile(PATTERNS[spec])
    try:
        regex = re.compile(spec)
    except re.error as exc:
        raise UsageError(f"--names {spec!r} is neither a known format "
                         f"({', '.join(PATTERNS)}) nor a valid regular expression: {exc}"
                         ) from None
    if not {"student_id", "lms_id", "name"} & set(regex.groupindex):
        raise UsageError(f"--names {spec!r}: a custom pattern needs a named group "
                         "student_id, lms_id or name, e.g. (?P<student_id>s\\d+)")
    return "custom", regex


def parse_time(text: str) -> datetime:
    """An ISO 8601 time as an aware datetime (a time without a zone is taken as UTC).

    Accepts ``2026-10-01``, ``2026-10-01 23:59``, ``2026-10-01T23:59:00+02:00`` and a
    trailing ``Z``. Raises :class:`ValueError` with the accepted forms otherwise.
    """
    value = str(text).strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    value = re.sub(r"\s+UTC$", "+00:00", value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{text!r} is not a time; use ISO 8601, e.g. 2026-10-01T23:59 or "
                         "2026-10-01T23:59:00+02:00 (no zone: UTC)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def identify(path: str | os.PathLike, label: str, regex: re.Pattern) -> FileIdentity | None:
    """Read a submission's file name (and its folder's) with one pattern."""
    tail = "/".join(Path(path).parts[-2:])
    match = regex.search(tail)
    if match is None:
        return None
    groups = {k: v for k, v in match.groupdict().items() if v}
    identity = FileIdentity(source=label)
    identity.student_id = groups.get("student_id", "")
    identity.lms_id = groups.get("lms_id", "")
    identity.name = groups.get("name", "").replace("_", " ").strip()
    identity.late = bool(groups.get("late"))
    if groups.get("submitted"):
        try:
            identity.submitted = parse_time(groups["submitted"])
        except ValueError:
            identity.submitted = None
    return identity


def gradescope_metadata(folder: Path) -> dict[str, dict[str, str]]:
    """``submission_<id>`` -> ``{"sid", "name", "email", "created_at"}`` from an export.

    Reads ``submission_metadata.yml`` in ``folder`` or above it (up to three levels);
    returns ``{}`` when there is none or it cannot be read.
    """
    for candidate in [folder, *list(folder.parents)[:3]]:
        path = candidate / "submission_metadata.yml"
        if path.is_file():
            break
    else:
        return {}
    try:
        import yaml

        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except Exception:  # noqa: BLE001 - an unreadable export only loses the metadata
        return {}
    table = {}
    for key, entry in raw.items() if isinstance(raw, dict) else []:
        if not isinstance(entry, dict):
            continue
        entry = {str(k).lstrip(":"): v for k, v in entry.items()}
        people = entry.get("submitters") or []
        first = people[0] if people and isinstance(people[0], dict) else {}
        first = {str(k).lstrip(":"): v for k, v in first.items()}
        table[str(key)] = {"sid": str(first.get("sid") or ""),
                           "name": str(first.get("name") or ""),
                           "email": str(first.get("email") or ""),
                           "created_at": str(entry.get("created_at") or "")}
    return table


# --------------------------------------------------------------------------- roster


@dataclass
class Student:
    """One row of the class roster."""

    student_id: str
    name: str = ""
    lms_id: str = ""
    section: str = ""
    email: str = ""


@dataclass
class Roster:
    """The class list: students by id, and the LMS ids that lead to them."""

    students: dict[str, Student] = field(default_factory=dict)
    by_lms: dict[str, str] = field(default_factory=dict)
    path: str = ""

    def find(self, student_id: str = "", lms_id: str = "") -> Student | None:
        """The student with this id (compared as the variants compare ids: case and
        spaces do not matter), or, failing that, this LMS id."""
        if student_id and student_id in self.students:
            return self.students[student_id]
        if student_id:
            wanted = normalize(student_id)
            for sid, student in self.students.items():
                if normalize(sid) == wanted:
                    return student
        if lms_id and lms_id in self.by_lms:
            return self.students[self.by_lms[lms_id]]
        return None


def _column(header: list[str], names: tuple[str, ...]) -> str | None:
    lowered = {h.strip().lower(): h for h in header}
    for name in names:
        if name in lowered:
            return lowered[name]
    return None


def read_roster(path: str | os.PathLike) -> Roster:
    """Read a roster CSV (a Canvas gradebook export works as it is).

    The student id is the first column found of ``student_id``, ``SIS User ID``,
    ``ID number``, ``sid``, ``Student ID``, ``Username``; optional columns give the LMS
    id (``lms_id`` or Canvas' ``ID``), the name (``name``/``Student``/``Full name``), the
    section and the e-mail. Canvas' ``Points Possible`` row is skipped. Raises
    :class:`UsageError` for a file without a student id column or with an id twice.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--roster {path}: cannot read it ({exc})") from None
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    id_col = _column(header, ROSTER_ID_COLUMNS)
    lms_col = _column(header, ROSTER_LMS_COLUMNS)
    if id_col is None and lms_col is not None:
        id_col = lms_col
    if id_col is None:
        raise UsageError(f"--roster {path}: no student id column; name one of "
                         + ", ".join(ROSTER_ID_COLUMNS) + f" (found: {', '.join(header)})")
    name_col = _column(header, ROSTER_NAME_COLUMNS)
    section_col = _column(header, ROSTER_SECTION_COLUMNS)
    email_col = _column(header, ROSTER_EMAIL_COLUMNS)
    roster = Roster(path=str(path))
    for row in reader:
        sid = (row.get(id_col) or "").strip()
        name = (row.get(name_col) or "").strip() if name_col else ""
        if not sid or "points possible" in name.lower() or "points possible" in sid.lower():
            continue
        if sid in roster.students:
            raise UsageError(f"--roster {path}: student id {sid!r} is listed twice")
        student = Student(sid, name, (row.get(lms_col) or "").strip() if lms_col else "",
                          (row.get(section_col) or "").strip() if section_col else "",
                          (row.get(email_col) or "").strip() if email_col else "")
        roster.students[sid] = student
        if student.lms_id and lms_col != id_col:
            roster.by_lms[student.lms_id] = sid
    return roster


# --------------------------------------------------------------------------- reconcile


@dataclass
class Resolved:
    """The student a submission is recorded under, and what the sources said."""

    key: str  # the gradebook row's student id ("" when nobody could be named)
    notebook_id: str
    file: FileIdentity | None
    student: Student | None
    check: str  # "match", "notebook only", "file only", "mismatch", "unknown"
    message: str = ""


def normalize(student_id: str) -> str:
    """Ids compared as the variants compare them (see :mod:`resnet_tf.exercises.variants`)."""
    from resnet_tf.exercises.variants import normalize_id

    return normalize_id(student_id)


def resolve(notebook_id: str, file: FileIdentity | None, roster: Roster | None) -> Resolved:
    """Decide under which id a submission is recorded, and report any disagreement.

    The file's student (translated through the roster when the file names an LMS id)
    is the one the LMS authenticated; the notebook's id is the one the answers were
    computed for. When both exist and differ the row is recorded under the file's
    student with ``check="mismatch"``: it is scored on the notebook's id (the answers
    were made for it) and listed for the instructor, never quietly merged.
    """
    from_file = ""
    student = None
    if file is not None:
        from_file = normalize(file.student_id) if file.student_id else ""
        if roster is not None:
            student = roster.find(from_file, file.lms_id)
            if student is not None:
                from_file = student.student_id
        if not from_file and file.lms_id:
            from_file = f"lms:{file.lms_id}"
    notebook_id = normalize(notebook_id)
    if roster is not None and student is None and notebook_id:
        student = roster.find(notebook_id)
    if notebook_id and from_file:
        if from_file.startswith("lms:") or normalize(from_file) == notebook_id:
            # an LMS id the roster cannot translate says nothing against the notebook
            key = from_file
            if from_file.startswith("lms:"):
                key = student.student_id if student is not None else notebook_id
            return Resolved(key, notebook_id, file, student, "match")
        return Resolved(from_file, notebook_id, file, student, "mismatch",
                        f"the notebook's STUDENT_ID is {notebook_id!r} but the file was "
                        f"handed in by {from_file!r}"
                        + (f" ({file.name})" if file and file.name else ""))
    if notebook_id:
        key = student.student_id if student is not None else notebook_id
        return Resolved(key, notebook_id, file, student, "notebook only")
    if from_file:
        return Resolved(from_file, notebook_id, file, student, "file only",
                        "no STUDENT_ID in the notebook: graded with the book's numbers")
    return Resolved("", notebook_id, file, student, "unknown",
                    "no student id in the notebook or the file name")
