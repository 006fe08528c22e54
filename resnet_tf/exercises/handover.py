"""The kernel's side of grading: hand the checked answers over as plain data.

After a submission's notebook has run, the grader sends one request per problem to the
student's kernel::

    __import__("resnet_tf.exercises.handover", fromlist=["_"]).respond('<request JSON>')

The request names the problem, a random marker, and for every function part the
arguments of the cases to run. :func:`respond` prints one line: the marker, the JSON of
the answers (:mod:`resnet_tf.exercises.wire`), the marker again. Nothing here decides a
score, and nothing here needs to be trusted: student code that replaces this module can
only change what its own answers look like, and the grader parses the line as data and
judges it in its own process.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from . import wire
from .checkers import AnswerTypeError, Function, Unanswered, as_callable, run_function
from .core import CALLS, PROBLEMS, SUBMITTED, current_student, split_answer


def _function_outputs(value: Any, arg_names: list[str], cases: list[Any]) -> dict[str, Any]:
    """``{"outputs": [...]}`` of a function answer on ``cases``, or ``{"value": ...}``."""
    try:
        function = as_callable(value, arg_names)
    except (Unanswered, AnswerTypeError):
        return {"value": wire.encode(value)}
    outputs = []
    for args in cases:
        try:
            result = run_function(function, [tuple(wire.decode(args))])[0]
            outputs.append(wire.encode(result))
        except Exception as error:  # noqa: BLE001 - the student's function raised
            outputs.append({"$": "raised", "message": f"{type(error).__name__}: {error}"})
    return {"outputs": outputs}


def collect(request: dict[str, Any]) -> dict[str, Any]:
    """The answer record of one problem for ``request`` (see the module docstring)."""
    problem_id = str(request.get("problem", ""))
    record: dict[str, Any] = {"problem": problem_id, "student": current_student(),
                              "calls": CALLS.get(problem_id, 0)}
    problem = PROBLEMS.get(problem_id)
    if problem is None or problem_id not in SUBMITTED:
        record["checked"] = False
        return record
    record["checked"] = True
    try:
        values = split_answer(problem, SUBMITTED[problem_id])
    except AnswerTypeError as error:
        record["type_error"] = str(error)
        return record
    cases = request.get("cases", {})
    parts = {}
    for part in problem.parts:
        value = values.get(part.name, ...)
        if isinstance(part.checker, Function) and part.name in cases:
            parts[part.name] = _function_outputs(value, list(part.checker.arg_names),
                                                 cases[part.name])
        else:
            parts[part.name] = {"value": wire.encode(value)}
    record["parts"] = parts
    return record


def respond(request_text: str) -> None:
    """Print the marked answer line for one request (never raises)."""
    request = json.loads(request_text)
    marker = str(request.get("marker", ""))
    try:
        payload = wire.dumps(collect(request))
    except Exception as error:  # noqa: BLE001 - report, do not raise, in the kernel
        payload = wire.dumps({"problem": str(request.get("problem", "")),
                              "error": f"{type(error).__name__}: {error}"})
    sys.stdout.write(f"\n{marker}{payload}{marker}\n")
    sys.stdout.flush()
