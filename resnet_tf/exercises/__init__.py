"""Hands-on problems: instant feedback for students, hidden checks for instructors.

Students::

    from resnet_tf.exercises import check
    check("3170003", answer)        # prints correct / wrong (with a hint) / not answered yet

Instructors (and the grader in :mod:`resnet_tf.grading`)::

    from resnet_tf.exercises import PROBLEMS, assignments, grade
    grade("3170003", answer)        # Result(problem, score, max_score, status, output)

Every ``check`` call also appends its hidden-check grade as a JSON line to the file named
by ``RESNET_TF_GRADE_LOG`` when that variable is set. The master notebooks in
``solutions/`` are turned into the student notebooks in ``exercises/`` by
:mod:`resnet_tf.exercises.generate` (``python -m resnet_tf exercises build``).
"""

from . import bank  # noqa: E402,F401,I001 - registers the problems
from .core import (
    ASSIGNMENTS,
    GRADE_LOG_ENV,
    Assignment,
    PROBLEMS,
    Part,
    PartResult,
    Problem,
    Result,
    assignments,
    check,
    grade,
    hint,
)

__all__ = [
    "ASSIGNMENTS",
    "Assignment",
    "GRADE_LOG_ENV",
    "PROBLEMS",
    "Part",
    "PartResult",
    "Problem",
    "Result",
    "assignments",
    "check",
    "grade",
    "hint",
]
