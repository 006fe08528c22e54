"""Hands-on problems: instant feedback for students, hidden checks for instructors.

Students::

    from resnet_tf.exercises import check, parameters, set_student
    set_student(STUDENT_ID)         # once, at the top: per-student numbers ("" = the book's)
    P = parameters("3113800")       # prints and returns this student's numbers
    check("3170003", answer)        # prints correct / wrong (with a hint) / not answered yet

Instructors (and the grader in :mod:`resnet_tf.grading`)::

    from resnet_tf.exercises import PROBLEMS, assignments, grade
    grade("3170003", answer, student="s123", key=b"...")   # Result(problem, score, ...)

``check`` only prints and remembers the answer; a grade for the record is computed by
the grader in its own process from answers it collects as plain data
(:mod:`resnet_tf.exercises.handover`). The master notebooks in ``solutions/`` are turned
into the student notebooks in ``exercises/`` by :mod:`resnet_tf.exercises.generate`
(``python -m resnet_tf exercises build``).
"""

from . import bank  # noqa: E402,F401,I001 - registers the problems
from .core import (
    ASSIGNMENTS,
    Assignment,
    Evaluated,
    PROBLEMS,
    Part,
    PartResult,
    Problem,
    Result,
    assignments,
    check,
    current_student,
    grade,
    grade_parts,
    hint,
    parameters,
    set_student,
)

__all__ = [
    "ASSIGNMENTS",
    "Assignment",
    "Evaluated",
    "PROBLEMS",
    "Part",
    "PartResult",
    "Problem",
    "Result",
    "assignments",
    "check",
    "current_student",
    "grade",
    "grade_parts",
    "hint",
    "parameters",
    "set_student",
]
