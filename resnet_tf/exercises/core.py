"""Problems, the registry, and the two entry points :func:`check` and :func:`grade`.

A :class:`Problem` has one or more :class:`Part` s, each worth some points and judged by a
checker (:mod:`resnet_tf.exercises.checkers`). A one-part problem takes its answer
directly: ``check("3113800", 20)``. A problem with several parts takes a dict keyed by the
part names: ``check("3170003", {"basic_params": f, "bottleneck_params": g, ...})``; parts
left as ``...`` count as not answered yet and score nothing.

:func:`check` is for students: it prints a verdict for the visible checks and never
raises. :func:`grade` is for instructors: it returns a :class:`Result` and, with
``hidden=True`` (the default), also runs the checks students do not see. When the
environment variable :data:`GRADE_LOG_ENV` names a file, every :func:`check` call also
appends the hidden-check :class:`Result` of that answer to it as one JSON line.
"""

from __future__ import annotations

import json
import os
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any

from .checkers import AnswerTypeError, Checker, Unanswered, WrongAnswer, describe, is_placeholder

GRADE_LOG_ENV = "RESNET_TF_GRADE_LOG"
STATUSES = ("passed", "failed", "unanswered", "error")


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
    """The verdict on one answer to one problem (what the grade log stores)."""

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


def _split_answer(problem: Problem, answer: Any) -> dict[str, Any]:
    """Map part names to the student's values (placeholders for parts not given)."""
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


def _grade_part(part: Part, value: Any, hidden: bool) -> PartResult:
    points = float(part.points)
    try:
        message = part.checker.check(value, hidden=hidden)
        return PartResult(part.name, points, points, "passed", message)
    except Unanswered:
        return PartResult(part.name, 0.0, points, "unanswered", "not answered yet")
    except AnswerTypeError as error:
        return PartResult(part.name, 0.0, points, "failed", f"wrong type: {error}")
    except WrongAnswer as error:
        return PartResult(part.name, 0.0, points, "failed", f"wrong: {error}")
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


def grade(problem_id: str, answer: Any, hidden: bool = True) -> Result:
    """Judge ``answer`` to ``problem_id``; never raises.

    ``score`` is the sum of the points of the parts that pass (partial credit);
    ``status`` is ``"passed"`` when all parts pass, ``"unanswered"`` when none was
    answered, ``"error"`` when the student's code raised (or the id is unknown),
    else ``"failed"``. ``hidden=True`` adds the checks students do not see.
    """
    try:
        problem = _lookup(problem_id)
    except KeyError as error:
        return Result(str(problem_id), 0.0, 0.0, "error", str(error.args[0]))
    try:
        values = _split_answer(problem, answer)
        parts = [_grade_part(part, values[part.name], hidden) for part in problem.parts]
    except AnswerTypeError as error:
        return Result(problem.id, 0.0, problem.points, "failed",
                      f"[{problem.id}] {problem.title}: wrong type: {error}")
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


def _log(problem_id: Any, answer: Any) -> None:
    path = os.environ.get(GRADE_LOG_ENV)
    if not path:
        return
    try:
        record = grade(problem_id, answer, hidden=True).to_json()
    except Exception as error:  # noqa: BLE001 - grade should not raise; be sure anyway
        record = {"problem": str(problem_id), "score": 0.0, "max_score": 0.0,
                  "status": "error", "output": f"checking failed: {error}"}
    try:
        line = json.dumps(record, default=str)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    except Exception:  # noqa: BLE001 - a broken log path must not stop the notebook
        pass


def check(problem_id: str, answer: Any = ...) -> None:
    """Print whether ``answer`` to ``problem_id`` is right, with a hint when it is not.

    Safe on blank scaffolds: ``...`` or ``None`` reads as "not answered yet". Never
    raises. With ``RESNET_TF_GRADE_LOG`` set, also logs the hidden-check grade.
    """
    try:
        result = grade(problem_id, answer, hidden=False)
        print(result.output)
        if result.status != "passed" and result.status != "unanswered":
            problem = PROBLEMS.get(str(problem_id).strip())
            if problem and problem.hints:
                print(f"  hint: {problem.hints[0]}")
    except Exception as error:  # noqa: BLE001
        print(f"[{problem_id}] could not be checked: {type(error).__name__}: {error}")
    _log(problem_id, answer)


def hint(problem_id: str, level: int = 1) -> None:
    """Print the first ``level`` hints of a problem (more hints, more help)."""
    problem = PROBLEMS.get(str(problem_id).strip())
    if problem is None:
        print(f"there is no problem {problem_id!r}")
        return
    for number, text in enumerate(problem.hints[: max(1, level)], start=1):
        print(f"[{problem.id}] hint {number}: {text}")
