"""Turning the records of a notebook's ``check`` calls into one score per problem.

Problems are matched by id, never by cell position, so moved, deleted or duplicated
cells do not confuse the grader. The rules:

- The problems graded, and the points each is worth, come from the registry
  (:data:`resnet_tf.exercises.PROBLEMS`), not from the notebook.
- **The last check call of a problem counts.** A notebook runs top to bottom, so the
  last call judges the answer as the notebook finally leaves it; re-checking after a
  fix therefore counts, and so does breaking an answer after a passing check. The
  number of calls is reported.
- A problem whose check never ran scores 0 with the status ``not_checked`` (its cell
  was deleted, or an error, a timeout or a dead kernel stopped it).
- Records of problems that are not part of the assignment are ignored.
- Scores are rescaled to the registry's points and clipped to ``[0, points]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

NOT_CHECKED = "not_checked"
CHECK_STATUSES = ("passed", "failed", "unanswered", "error", NOT_CHECKED)


@dataclass
class ProblemScore:
    """The grade of one problem in one submission."""

    problem: str
    title: str
    score: float
    max_score: float
    status: str
    output: str
    calls: int = 0


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def score_record(record: dict[str, Any], points: float) -> tuple[float, str]:
    """The score of one log record on a ``points`` scale, and its status."""
    status = str(record.get("status", "error"))
    if status not in CHECK_STATUSES:
        status = "error"
    score = _number(record.get("score"))
    max_score = _number(record.get("max_score"))
    if score is None:
        return 0.0, "error"
    if max_score and max_score > 0 and max_score != points:
        score = score * points / max_score
    return min(max(score, 0.0), points), status


def score_problems(
    problem_ids: list[str],
    records: list[dict[str, Any]],
    points: dict[str, float],
    titles: dict[str, str] | None = None,
) -> list[ProblemScore]:
    """One :class:`ProblemScore` per id in ``problem_ids`` (in that order).

    ``records`` are the check records in call order; ``points`` gives each problem's
    worth. See the module docstring for the rules.
    """
    titles = titles or {}
    by_problem: dict[str, list[dict[str, Any]]] = {pid: [] for pid in problem_ids}
    for record in records:
        key = str(record.get("problem", "")).strip()
        if key in by_problem:
            by_problem[key].append(record)
    scores = []
    for pid in problem_ids:
        worth = float(points.get(pid, 0.0))
        calls = by_problem[pid]
        if not calls:
            scores.append(ProblemScore(
                pid, titles.get(pid, ""), 0.0, worth, NOT_CHECKED,
                "No check of this problem ran: its check cell is missing, or an error, a "
                "timeout or a crash earlier in the notebook stopped it.", 0,
            ))
            continue
        last = calls[-1]
        score, status = score_record(last, worth)
        output = str(last.get("output", ""))
        if len(calls) > 1:
            output += f"\n(checked {len(calls)} times; the last check counts)"
        scores.append(ProblemScore(pid, titles.get(pid, ""), score, worth, status, output,
                                   len(calls)))
    return scores
