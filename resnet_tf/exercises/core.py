"""Problems, the registry, and the entry points :func:`check` and :func:`grade`.

A :class:`Problem` has one or more :class:`Part` s, each worth some points and judged by a
checker (:mod:`resnet_tf.exercises.checkers`). A one-part problem takes its answer
directly: ``check("3113800", 20)``. A problem with several parts takes a dict keyed by the
part names: ``check("3170003", {"basic_params": f, "bottleneck_params": g, ...})``; parts
left as ``...`` count as not answered yet and score nothing.

:func:`check` is for students: it prints a verdict for the visible checks, never raises,
and remembers the answer (the last check of a problem counts). It grades nothing for the
record: when a notebook is graded, the grader collects the remembered answers as plain
data after the notebook has run (:mod:`resnet_tf.exercises.handover`) and scores them in
its own process. :func:`grade` judges an answer in the current process with the hidden
checks too (for instructors and tests).

A problem may have per-student parameters (``variant``): :func:`set_student` records the
student's id, :func:`parameters` prints and returns that student's numbers, and both
:func:`check` and the grader judge against that student's variant (see
:mod:`resnet_tf.exercises.variants`). Without an id the book's own numbers are used.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .. import _deprecation
from .checkers import (
    AnswerTypeError,
    Checker,
    Context,
    Function,
    StudentError,
    Unanswered,
    WrongAnswer,
    as_callable,
    describe,
    is_placeholder,
)
from .variants import hidden_seed, normalize_id, variant_rng

__getattr__ = _deprecation.removed_names(__name__, {
    "STATUSES": (("passed", "failed", "unanswered", "error"), "the values of PartResult.status"),
})


@dataclass
class Part:
    """One auto-checked answer of a problem."""

    name: str
    checker: Checker
    points: float = 1.0
    prompt: str = ""  # what the part asks, one line


@dataclass
class Problem:
    """A hands-on problem: statement, parts, hints, and where it is assigned.

    ``kind`` says how it is solved: ``"pencil"`` (derive a formula or a number),
    ``"code"`` (complete a function) or ``"experiment"`` (measure something), or a
    combination such as ``"pencil+experiment"``.
    """

    id: str
    title: str
    assignment: str
    parts: list[Part]
    statement: str = ""
    hints: list[str] = field(default_factory=list)
    kind: str = "pencil"
    #: The book's own parameters (what a notebook without a student id uses).
    book: dict[str, Any] = field(default_factory=dict)
    #: Draws a student's parameters from a generator (None: the same for everyone).
    variant: Callable[[np.random.Generator], dict[str, Any]] | None = None

    def params(self, student_id: str = "") -> dict[str, Any]:
        """The parameters of ``student_id`` (the book's when the id is empty)."""
        student = normalize_id(student_id)
        if self.variant is None or not student:
            return dict(self.book)
        return {**self.book, **self.variant(variant_rng(self.id, student))}

    def context(self, part: str, student_id: str = "", key: bytes | None = None) -> Context:
        """The :class:`Context` of one part for a student (hidden seed from ``key``)."""
        return Context(self.params(student_id), hidden_seed(key, self.id, part, student_id))

    @property
    def points(self) -> float:
        """Total points, the sum over the parts."""
        return float(sum(p.points for p in self.parts))

    @property
    def part_names(self) -> list[str]:
        """Names of the parts, in order."""
        return [p.name for p in self.parts]


@dataclass
class PartResult:
    """The verdict on one part."""

    name: str
    score: float
    max_score: float
    status: str
    message: str


@dataclass
class Result:
    """The verdict on one answer to one problem."""

    problem: str
    score: float
    max_score: float
    status: str  # "passed" | "failed" | "unanswered" | "error"
    output: str
    parts: list[PartResult] = field(default_factory=list)

    def to_json(self) -> dict:
        """The JSON-ready record ``{problem, score, max_score, status, output}`` (+ parts)."""
        record = asdict(self)
        record["parts"] = [asdict(p) for p in self.parts]
        return record


@dataclass(frozen=True)
class Assignment:
    """One assignment: a themed notebook ``solutions/{notebook}.py`` with its problems."""

    name: str
    title: str
    notebook: str


PROBLEMS: dict[str, Problem] = {}
ASSIGNMENTS: dict[str, Assignment] = {}
_ASSIGNMENT_ORDER: dict[str, list[str]] = {}


def define_assignment(name: str, title: str, notebook: str) -> Assignment:
    """Declare an assignment (in the order they are handed out)."""
    ASSIGNMENTS[name] = Assignment(name, title, notebook)
    _ASSIGNMENT_ORDER.setdefault(name, [])
    return ASSIGNMENTS[name]


def register(problem: Problem) -> Problem:
    """Add ``problem`` to :data:`PROBLEMS` (ids are unique) and to its assignment."""
    if problem.assignment not in ASSIGNMENTS:
        raise ValueError(f"problem {problem.id}: unknown assignment {problem.assignment!r}")
    if problem.id in PROBLEMS:
        raise ValueError(f"problem {problem.id} is registered twice")
    names = [p.name for p in problem.parts]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"problem {problem.id} needs parts with distinct names")
    PROBLEMS[problem.id] = problem
    _ASSIGNMENT_ORDER.setdefault(problem.assignment, []).append(problem.id)
    return problem


def assignments() -> dict[str, list[str]]:
    """Assignment name -> its problem ids, in the order they appear in the notebook."""
    return {name: list(ids) for name, ids in _ASSIGNMENT_ORDER.items()}


def split_answer(problem: Problem, answer: Any) -> dict[str, Any]:
    """Map part names to the student's values (placeholders for parts not given).

    Raises :class:`AnswerTypeError` when a multi-part answer is not a dict of part names.
    """
    if len(problem.parts) == 1:
        name = problem.parts[0].name
        if isinstance(answer, dict) and set(answer) == {name}:
            return {name: answer[name]}
        return {name: answer}
    if is_placeholder(answer):
        return {p.name: ... for p in problem.parts}
    if not isinstance(answer, dict):
        raise AnswerTypeError(
            f"this problem has {len(problem.parts)} parts; give a dict with the keys "
            f"{problem.part_names}, got {describe(answer)}"
        )
    unknown = [k for k in answer if k not in problem.part_names]
    if unknown:
        raise AnswerTypeError(
            f"unknown part name(s) {unknown}; the parts are {problem.part_names}"
        )
    return {p.name: answer.get(p.name, ...) for p in problem.parts}



@dataclass
class Evaluated:
    """A function answer already run, by the student's kernel, on the checker's cases."""

    outputs: list[Any]


def _judge(part: Part, value: Any, hidden: bool, context: Context, collected: bool) -> str:
    """Run the part's checker; an :class:`Evaluated` function answer is only compared.

    With ``collected`` (values handed over by a student's kernel) a function part is
    never run here: anything but :class:`Evaluated` outputs is only inspected for a
    placeholder or a type error.
    """
    checker = part.checker
    if isinstance(checker, Function) and isinstance(value, Evaluated):
        cases, n_visible = checker.case_list(hidden, context)
        if len(value.outputs) < len(cases):
            raise AnswerTypeError("your function was not run on every case")
        return checker.judge(cases, value.outputs[: len(cases)], n_visible)
    if isinstance(checker, Function) and collected:
        as_callable(value, checker.arg_names)  # raises for placeholders and wrong types
        raise AnswerTypeError("your function could not be run on the grader's cases")
    return checker.check(value, hidden=hidden, context=context)


def _grade_part(part: Part, value: Any, hidden: bool, context: Context,
                collected: bool = False) -> PartResult:
    points = float(part.points)
    try:
        message = _judge(part, value, hidden, context, collected)
        return PartResult(part.name, points, points, "passed", message)
    except Unanswered:
        return PartResult(part.name, 0.0, points, "unanswered", "not answered yet")
    except AnswerTypeError as error:
        return PartResult(part.name, 0.0, points, "failed", f"wrong type: {error}")
    except WrongAnswer as error:
        return PartResult(part.name, 0.0, points, "failed", f"wrong: {error}")
    except StudentError as error:
        return PartResult(part.name, 0.0, points, "error", str(error))
    except Exception as error:  # noqa: BLE001 - the student's code raised
        where = traceback.extract_tb(error.__traceback__)[-1]
        return PartResult(
            part.name, 0.0, points, "error",
            f"your code raised {type(error).__name__}: {error} (line {where.lineno})",
        )


def _status(parts: list[PartResult]) -> str:
    statuses = {p.status for p in parts}
    if statuses == {"passed"}:
        return "passed"
    if statuses == {"unanswered"}:
        return "unanswered"
    if "error" in statuses:
        return "error"
    return "failed"


def _lookup(problem_id: Any) -> Problem:
    key = str(problem_id).strip()
    if key not in PROBLEMS:
        close = [p for p in PROBLEMS if p[:4] == key[:4]] or sorted(PROBLEMS)
        raise KeyError(f"there is no problem {problem_id!r}; known ids include {close[:6]}")
    return PROBLEMS[key]


def grade(problem_id: str, answer: Any, hidden: bool = True, student: str | None = None,
          key: bytes | None = None) -> Result:
    """Judge ``answer`` to ``problem_id``; never raises.

    ``score`` is the sum of the points of the parts that pass (partial credit);
    ``status`` is ``"passed"`` when all parts pass, ``"unanswered"`` when none was
    answered, ``"error"`` when the student's code raised (or the id is unknown),
    else ``"failed"``. ``hidden=True`` adds the checks students do not see, drawn from
    ``key`` (the instructor's secret) when given. ``student`` is the id whose variant
    is checked (default: the one given to :func:`set_student`).
    """
    try:
        problem = _lookup(problem_id)
    except KeyError as error:
        return Result(str(problem_id), 0.0, 0.0, "error", str(error.args[0]))
    try:
        values = split_answer(problem, answer)
    except AnswerTypeError as error:
        return Result(problem.id, 0.0, problem.points, "failed",
                      f"[{problem.id}] {problem.title}: wrong type: {error}")
    return grade_parts(problem, values, hidden, _STATE["student"] if student is None
                       else student, key)


def grade_parts(problem: Problem, values: dict[str, Any], hidden: bool = True,
                student: str = "", key: bytes | None = None,
                collected: bool = False) -> Result:
    """Judge the values of the parts of ``problem`` (missing parts are unanswered).

    A function part's value may be :class:`Evaluated` (its outputs on the checker's
    cases, computed elsewhere); the grader uses that form and sets ``collected``, so
    that no function is ever called in its process. Never raises.
    """
    try:
        parts = [_grade_part(part, values.get(part.name, ...), hidden,
                             problem.context(part.name, student, key), collected)
                 for part in problem.parts]
    except Exception as error:  # noqa: BLE001 - checking must never raise
        return Result(problem.id, 0.0, problem.points, "error",
                      f"checking failed: {type(error).__name__}: {error}")
    status = _status(parts)
    score = float(sum(p.score for p in parts))
    return Result(problem.id, score, problem.points, status, _render(problem, parts, status),
                  parts)


def _render(problem: Problem, parts: list[PartResult], status: str) -> str:
    head = f"[{problem.id}] {problem.title}"
    if len(parts) == 1:
        part = parts[0]
        if status == "passed":
            return f"{head}: correct ({part.message})."
        if status == "unanswered":
            return f"{head}: not answered yet (replace the ... with your answer)."
        return f"{head}: {part.message}"
    if status == "unanswered":
        return f"{head}: not answered yet (replace the ... with your answers)."
    score = sum(p.score for p in parts)
    lines = [f"{head}: {score:g} of {sum(p.max_score for p in parts):g} points"]
    width = max(len(p.name) for p in parts)
    for part in parts:
        verdict = "correct" if part.status == "passed" else part.message
        lines.append(f"  {part.name:<{width}}  {verdict}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the student side

_STATE: dict[str, str] = {"student": ""}
#: The answer of the last check() call of each problem, kept for the grader to collect.
SUBMITTED: dict[str, Any] = {}
#: How many times each problem was checked.
CALLS: dict[str, int] = {}


def set_student(student_id: str) -> None:
    """Use the variants of ``student_id`` from now on (``""``: the book's numbers).

    Prints which numbers the notebook will use (:func:`current_student` gives the
    normalised id).
    """
    student = normalize_id(student_id)
    _STATE["student"] = student
    if student:
        print(f"Student id {student!r}: problems with per-student numbers use yours; "
              "parameters(...) prints them.")
    else:
        print("No student id: the book's own numbers are used. Enter your id in "
              "STUDENT_ID before you hand the notebook in.")


def current_student() -> str:
    """The normalised id given to :func:`set_student` (``""`` when none)."""
    return _STATE["student"]


def parameters(problem_id: str, quiet: bool = False) -> dict[str, Any]:
    """The current student's parameters of ``problem_id`` (printed unless ``quiet``)."""
    problem = _lookup(problem_id)
    params = problem.params(_STATE["student"])
    if not quiet and params:
        shown = ", ".join(f"{name} = {_show(value)}" for name, value in params.items())
        whose = f"student {_STATE['student']}" if _STATE["student"] and problem.variant \
            else "the book"
        print(f"[{problem.id}] parameters ({whose}): {shown}")
    return params


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return repr(value)


def check(problem_id: str, answer: Any = ...) -> None:
    """Print whether ``answer`` to ``problem_id`` is right, with a hint when it is not.

    Safe on blank scaffolds: ``...`` or ``None`` reads as "not answered yet". Never
    raises. The answer is remembered: when the notebook is graded, the last checked
    answer of each problem is what the grader collects and scores.
    """
    key = str(problem_id).strip()
    if key in PROBLEMS:
        SUBMITTED[key] = answer
        CALLS[key] = CALLS.get(key, 0) + 1
    try:
        result = grade(problem_id, answer, hidden=False)
        print(result.output)
        if result.status != "passed" and result.status != "unanswered":
            problem = PROBLEMS.get(key)
            if problem and problem.hints:
                print(f"  hint: {problem.hints[0]}")
    except Exception as error:  # noqa: BLE001
        print(f"[{problem_id}] could not be checked: {type(error).__name__}: {error}")


def hint(problem_id: str, level: int = 1) -> None:
    """Print the first ``level`` hints of a problem (more hints, more help)."""
    problem = PROBLEMS.get(str(problem_id).strip())
    if problem is None:
        print(f"there is no problem {problem_id!r}")
        return
    for number, text in enumerate(problem.hints[: max(1, level)], start=1):
        print(f"[{problem.id}] hint {number}: {text}")

