"""check() / grade(): verdicts, types, hidden checks, variants, the hand-over, the bank."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from resnet_tf.exercises import (
    ASSIGNMENTS,
    PROBLEMS,
    Result,
    assignments,
    check,
    grade,
    hint,
)
from resnet_tf.exercises.bank import block_design, dynamics, residual_functions
from resnet_tf.exercises.checkers import (
    AnswerTypeError,
    Expression,
    Number,
    Numbers,
    Unanswered,
    WrongAnswer,
    as_number,
)

IDS = ("3113800 3114054 3134457 3143490 3169653 3169686 3169730 3169938 3169942 3169959 "
       "3169967 3169972 3169973 3170003 3170015 3170021 3170031 3185064 3187046 3223766").split()

SCALAR_RIGHT = {"plain_gain": lambda a, L: a**L, "residual_gain": "(1 + a)^L", "depth": 20}


def test_every_cited_problem_is_registered_once():
    assert sorted(PROBLEMS) == sorted(IDS)
    listed = [i for ids in assignments().values() for i in ids]
    assert sorted(listed) == sorted(IDS) and len(listed) == len(set(listed))


def test_problem_fields_and_assignments():
    assert 4 <= len(assignments()) <= 5
    assert list(assignments()) == list(ASSIGNMENTS)
    for problem in PROBLEMS.values():
        assert problem.title and problem.statement and problem.hints
        assert problem.points == sum(p.points for p in problem.parts) > 0
        assert problem.assignment in ASSIGNMENTS
        assert "correct" not in problem.title.lower()


def test_all_parts_right_pass():
    result = grade("3113800", SCALAR_RIGHT)
    assert isinstance(result, Result)
    assert (result.status, result.score, result.max_score) == ("passed", 3.0, 3.0)
    assert "correct" in result.output


def test_partial_credit_and_unanswered_parts():
    result = grade("3113800", {"plain_gain": "a**L"})
    assert result.status == "failed" and result.score == 1.0 and result.max_score == 3.0
    assert [p.status for p in result.parts] == ["passed", "unanswered", "unanswered"]


@pytest.mark.parametrize("blank", [..., None, {"plain_gain": ..., "depth": None}])
def test_placeholders_are_unanswered(blank, capsys):
    assert grade("3113800", blank).status == "unanswered"
    check("3113800", blank)
    out = capsys.readouterr().out
    assert "not answered yet" in out and "correct" not in out.replace("not answered", "")


def test_wrong_answer_gets_a_hint_without_the_value(capsys):
    check("3170003", {"macs_ratio": 12.0})
    out = capsys.readouterr().out
    assert "wrong" in out and "hint" in out
    assert "16.9" not in out


def test_wrong_types_get_specific_messages():
    assert "not a string" in grade("3113800", {"depth": "20"}).parts[2].message
    assert "single number" in grade("3113800", {"depth": [20, 21]}).parts[2].message
    assert "whole number" in grade("3113800", {"depth": 20.5}).parts[2].message
    assert "dict with the keys" in grade("3113800", 20).output
    assert "unknown part" in grade("3113800", {"depths": 20}).output
    shape = grade("3169686", {"block_jacobian": lambda W1, W2, x: np.zeros(3)}).parts[0].message
    assert "shape" in shape
    assert "only the variables" in grade("3113800", {"plain_gain": "b**L"}).parts[0].message


def test_student_code_errors_become_status_error():
    result = grade("3113800", {"plain_gain": lambda a, L: 1 / 0})
    assert result.status == "error" and "ZeroDivisionError" in result.parts[0].message


def test_stub_function_is_unanswered_and_missing_return_is_flagged():
    def stub(W1, W2, x):
        ...

    assert grade("3169686", {"block_jacobian": stub}).status == "unanswered"


def test_hidden_cases_catch_hard_coding():
    """A function right on the visible cases only passes the visible checks, not the hidden."""
    checker = PROBLEMS["3170003"].parts[0].checker
    visible = checker._all_cases(hidden=False)
    table = {args: block_design.basic_params(*args) for args in visible}

    def memorised(c_in, c_out):
        return table.get((c_in, c_out), 0)

    answer = {"basic_params": memorised}
    assert grade("3170003", answer, hidden=False).parts[0].status == "passed"
    assert grade("3170003", answer, hidden=True).parts[0].status == "failed"


def test_unknown_problem_never_raises(capsys):
    assert grade("42", 1).status == "error"
    check("42", 1)
    assert "no problem" in capsys.readouterr().out


def test_check_remembers_the_last_answer_and_counts_calls(capsys):
    from resnet_tf.exercises import core

    core.SUBMITTED.pop("3113800", None)
    core.CALLS.pop("3113800", None)
    check("3113800", SCALAR_RIGHT)
    check("3113800", {"plain_gain": lambda a, L: 1 / 0})
    check("42", 1)
    assert core.SUBMITTED["3113800"] == {"plain_gain": core.SUBMITTED["3113800"]["plain_gain"]}
    assert core.CALLS["3113800"] == 2 and "42" not in core.SUBMITTED
    assert "correct" in capsys.readouterr().out


def test_the_hand_over_is_plain_data_that_the_grader_judges(capsys):
    from resnet_tf.exercises import Evaluated, grade_parts, handover, wire

    check("3113800", SCALAR_RIGHT)
    problem = PROBLEMS["3113800"]
    context = problem.context("plain_gain", "", b"k" * 32)
    cases = problem.parts[0].checker.case_list(True, context)[0]
    request = {"problem": "3113800", "marker": "@@m@@",
               "cases": {"plain_gain": [wire.encode(list(c)) for c in cases]}}
    handover.respond(json.dumps(request))
    text = capsys.readouterr().out
    record = json.loads(text.split("@@m@@")[1])
    assert record["checked"] and record["calls"] >= 1
    outputs = [wire.decode(o) for o in record["parts"]["plain_gain"]["outputs"]]
    assert len(outputs) == len(cases) and all(isinstance(o, float) for o in outputs)
    values = {"plain_gain": Evaluated(outputs), "depth": wire.decode(
        record["parts"]["depth"]["value"])}
    result = grade_parts(problem, values, student="", key=b"k" * 32, collected=True)
    assert [p.status for p in result.parts] == ["passed", "unanswered", "passed"]


@pytest.mark.parametrize("data", [
    {"$": "eval", "code": "1"}, {"$": "array", "shape": [2], "data": [1]},
    {"$": "array", "shape": [1], "data": ["x"]}, {"$": "dict", "items": [[1, 2]]},
    [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
])
def test_the_wire_refuses_anything_but_its_forms(data):
    from resnet_tf.exercises import wire

    with pytest.raises(wire.WireError):
        wire.decode(data)


def test_wire_round_trips_answers():
    from resnet_tf.exercises import wire

    value = {"a": np.arange(6.0).reshape(2, 3), "b": [1, 2.5, 1 + 2j, True, None, ...],
             "c": np.array([1j]), "f": len, "o": object()}
    back = wire.decode(json.loads(wire.dumps(wire.encode(value))))
    assert np.array_equal(back["a"], value["a"]) and back["b"][:5] == [1, 2.5, 1 + 2j, True, None]
    assert back["b"][5] is ... and back["c"][0] == 1j
    assert isinstance(back["f"], wire.SubmittedFunction) and isinstance(back["o"], wire.Opaque)
    assert wire.decode(json.loads(wire.dumps(wire.encode(np.zeros(2_000_000))))).type_name


def test_hidden_cases_depend_on_the_key_and_the_student():
    from resnet_tf.exercises.variants import hidden_seed

    seeds = {hidden_seed(k, "3170003", "basic_params", s)
             for k in (None, b"a" * 32, b"b" * 32) for s in ("", "s1", "s2")}
    assert len(seeds) == 9
    assert hidden_seed(b"a" * 32, "1", "p", " S1 ") == hidden_seed(b"a" * 32, "1", "p", "s1")


def test_variants_are_public_per_student_and_default_to_the_book(capsys):
    from resnet_tf.exercises import current_student, parameters, set_student

    varied = [p for p in PROBLEMS.values() if p.variant is not None]
    assert len(varied) >= 8
    for problem in varied:
        assert problem.params("") == problem.book
        assert problem.params("s1") == problem.params(" S1 ")
        assert problem.params("s1") != problem.params("s2") or problem.params(
            "s3") != problem.params("s1")
    try:
        set_student("s1")
        assert current_student() == "s1"
        assert parameters(varied[0].id) == varied[0].params("s1")
        assert "student s1" in capsys.readouterr().out
    finally:
        set_student("")


def test_every_variant_is_answerable_and_copying_another_variant_fails():
    from resnet_tf.exercises.checkers import Number, Numbers

    for problem in PROBLEMS.values():
        if problem.variant is None:
            continue
        for part in problem.parts:
            if not isinstance(part.checker, (Number, Numbers)):
                continue
            own = {s: part.checker.expected(problem.context(part.name, s)) for s in
                   ("", "s1", "s2", "s3", "s4")}
            for student, value in own.items():
                answer = {part.name: np.asarray(value).tolist()}
                assert grade(problem.id, answer, student=student).parts[
                    problem.part_names.index(part.name)].status == "passed"
            book = {part.name: np.asarray(own[""]).tolist()}
            copied = [grade(problem.id, book, student=s).parts[
                problem.part_names.index(part.name)].status for s in ("s1", "s2", "s3", "s4")]
            assert copied.count("failed") >= 3, (problem.id, part.name)


def test_hint_levels(capsys):
    hint("3169653", 2)
    out = capsys.readouterr().out
    assert out.count("hint") == 2


def test_checker_primitives():
    assert Number(2.0).check(np.float32(2.0)) and Number(2.0).check(np.array([2.0]))
    with pytest.raises(WrongAnswer, match="sign"):
        Number(2.0, hint="").check(-2.0)
    with pytest.raises(AnswerTypeError):
        as_number(True)
    with pytest.raises(Unanswered):
        as_number(...)
    Numbers([1, 0, -1], ordered=False).check([0, -1, 1])
    with pytest.raises(AnswerTypeError, match="3 numbers"):
        Numbers([1, 0, -1]).check([0, 1])
    square = Expression(lambda x: x**2, lambda rng: (rng.uniform(-2, 2),), ("x",))
    assert square.check("x^2") and square.check(lambda x: x * x)
    with pytest.raises(AnswerTypeError, match="not valid"):
        square.check("x**")


def test_reference_functions_match_closed_forms():
    assert dynamics.max_stable_step(-10) == pytest.approx(0.2)
    assert dynamics.max_stable_step(1 + 1j) == 0.0
    assert dynamics.is_stable(np.diag([-1.0, -2.0])) and not dynamics.is_stable(np.eye(2))
    assert residual_functions.total_variation(np.linspace(0, 1, 11)) == pytest.approx(1.0)
    assert block_design.bottleneck_params(256, 64, 256) == 69632


@pytest.mark.parametrize("problem_id", IDS)
def test_outputs_are_json_serialisable(problem_id):
    for answer in (..., {"x": 1}, 1.0, "text"):
        record = grade(problem_id, answer).to_json()
        json.dumps(record)
        assert re.match(r"passed|failed|unanswered|error", record["status"])


def test_variant_samplers_draw_in_order_and_respect_their_ranges():
    from resnet_tf.exercises.bank._cases import distinct, integer, one_of, params, rounded

    draw = params(x=rounded(0.3, 0.8), k=integer(2, 4), c=one_of([1.5, 2.5]),
                  v=distinct(np.arange(-5, 6) / 10, 3, digits=1))
    first, again = draw(np.random.default_rng(7)), draw(np.random.default_rng(7))
    assert first == again and list(first) == ["x", "k", "c", "v"]
    for seed in range(50):
        got = draw(np.random.default_rng(seed))
        assert 0.3 <= got["x"] <= 0.8 and got["x"] == round(got["x"], 2)
        assert got["k"] in (2, 3, 4) and got["c"] in (1.5, 2.5)
        assert len(set(got["v"])) == 3 and all(-0.5 <= v <= 0.5 for v in got["v"])
