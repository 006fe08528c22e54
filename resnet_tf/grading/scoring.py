"""Scoring in the grader's own process: one score per problem from the answers handed over.

The kernel hands over, per problem, the answer of its last ``check`` call as plain data
(:mod:`resnet_tf.exercises.handover`); this module turns that data back into values
(:mod:`resnet_tf.exercises.wire`) and judges them with the problem's checkers, against
the variant of the submission's student id and with hidden cases drawn from the
instructor's key. The rules:

- The problems graded, and the points each is worth, come from the registry
  (:data:`resnet_tf.exercises.PROBLEMS`), never from the notebook.
- **The last check call of a problem counts**: the kernel keeps the answer of the last
  call; the number of calls is reported.
- A problem whose check never ran scores 0 with the status ``not_checked`` (its cell was
  deleted, or an error, a timeout or a dead kernel stopped it), and so does a problem
  whose answers the kernel did not hand over in a readable form.
- A score is the sum of the points of the parts that pass (partial credit), computed
  here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import _deprecation

NOT_CHECKED = "not_checked"
MESSAGE_LIMIT = 2000

__getattr__ = _deprecation.removed_names(__name__, {
    "CHECK_STATUSES": (("passed", "failed", "unanswered", "error", NOT_CHECKED),
                       "the values of ProblemScore.status"),
})


@dataclass
class ProblemScore:
    """The grade of one problem in one submission.

    ``output`` is the verdict with the hidden checks (no hidden inputs or expected
    values in it); ``visible_output`` and ``visible_status`` are those of the checks the
    student could run.
    """

    problem: str
    title: str
    score: float
    max_score: float
    status: str
    output: str
    calls: int = 0
    visible_status: str = NOT_CHECKED
    visible_output: str = ""
    parts: list[dict[str, Any]] = field(default_factory=list)


def clean_text(text: Any, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` as a printable string: lone surrogates escaped, at most ``limit`` characters."""
    value = text if isinstance(text, str) else str(text)
    value = value.encode("utf-8", errors="backslashreplace").decode("utf-8")
    return value if len(value) <= limit else value[: limit - 3] + "..."


def not_checked(problem: str, title: str, points: float, why: str = "") -> ProblemScore:
    """The score of a problem whose answer never reached the grader."""
    text = why or ("No check of this problem ran: its check cell is missing, or an error, "
                   "a timeout or a crash earlier in the notebook stopped it.")
    return ProblemScore(problem, title, 0.0, points, NOT_CHECKED, text, 0, NOT_CHECKED, text)


def decode_parts(problem: Any, record: dict[str, Any]) -> dict[str, Any]:
    """The part values of a collected record, rebuilt as plain data.

    A function part comes back as :class:`~resnet_tf.exercises.Evaluated` (its outputs);
    any part that cannot be decoded becomes an :class:`~resnet_tf.exercises.wire.Opaque`
    value, which no checker accepts.
    """
    from resnet_tf.exercises import Evaluated, wire

    raw = record.get("parts")
    raw = raw if isinstance(raw, dict) else {}
    values: dict[str, Any] = {}
    for part in problem.parts:
        entry = raw.get(part.name)
        if not isinstance(entry, dict):
            values[part.name] = ...
            continue
        try:
            if "outputs" in entry and isinstance(entry["outputs"], list):
                values[part.name] = Evaluated([wire.decode(o) for o in entry["outputs"]])
            else:
                values[part.name] = wire.decode(entry.get("value"))
        except wire.WireError as error:
            values[part.name] = wire.Opaque(f"unreadable answer ({error})")
    return values


def score_collected(
    problem: Any,
    collected: Any,
    student: str,
    key: bytes | None,
    points: float | None = None,
) -> ProblemScore:
    """Judge one problem's collected answers (a :class:`~.runner.Collected` or None)."""
    from resnet_tf.exercises import grade_parts

    worth = float(problem.points if points is None else points)
    if collected is None:
        return not_checked(problem.id, problem.title, worth)
    if collected.record is None:
        return not_checked(problem.id, problem.title, worth,
                           f"Your answers could not be collected: {collected.error}.")
    record = collected.record
    calls = record.get("calls")
    calls = calls if type(calls) is int and calls >= 0 else 0
    if record.get("checked") is not True:
        return not_checked(problem.id, problem.title, worth)
    if isinstance(record.get("type_error"), str):
        text = clean_text(f"[{problem.id}] {problem.title}: wrong type: {record['type_error']}")
        return ProblemScore(problem.id, problem.title, 0.0, worth, "failed", text, calls,
                            "failed", text)
    values = decode_parts(problem, record)
    full = grade_parts(problem, values, hidden=True, student=student, key=key, collected=True)
    seen = grade_parts(problem, values, hidden=False, student=student, key=key,
                       collected=True)
    scale = worth / full.max_score if full.max_score else 0.0
    score = min(max(full.score * scale, 0.0), worth)
    output = clean_text(full.output)
    if calls > 1:
        output += f"\n(checked {calls} times; the last check counts)"
    return ProblemScore(
        problem.id, problem.title, score, worth, full.status, output, calls,
        seen.status, clean_text(seen.output),
        [{"name": p.name, "score": p.score * scale, "max_score": p.max_score * scale,
          "status": p.status, "message": clean_text(p.message, 300)} for p in full.parts],
    )


def score_problems(
    problem_ids: list[str],
    answers: dict[str, Any],
    student: str,
    key: bytes | None,
    points: dict[str, float] | None = None,
) -> list[ProblemScore]:
    """One :class:`ProblemScore` per id in ``problem_ids`` (in that order)."""
    from resnet_tf.exercises import PROBLEMS

    points = points or {}
    return [score_collected(PROBLEMS[pid], answers.get(pid), student, key, points.get(pid))
            for pid in problem_ids]
