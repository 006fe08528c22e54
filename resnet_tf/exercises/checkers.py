"""Answer checkers: how one part of a problem decides whether an answer is right.

Every checker has ``check(answer, hidden) -> str``: it returns a short confirmation when
the answer is right and raises

- :class:`Unanswered` when the answer is still the scaffold's placeholder
  (``...`` or ``None``, or a function whose body is still ``...``),
- :class:`WrongAnswer` with a hint that says *what* is off, never the expected value,
- :class:`AnswerTypeError` when the answer has the wrong type or shape.

Any other exception escaping a checker came from the student's own code (a function
answer that raised) and is reported as an error by :func:`resnet_tf.exercises.grade`.

``hidden=True`` adds the checks students do not see: more random cases for expression
and function answers (a hard-coded value of the visible cases does not pass) and the
extra predicates of property checks. A :class:`Context` carries what depends on the
student and the grader: the student's variant parameters (a checker's expected value may
be a function of them) and the seed of the hidden cases (see
:mod:`resnet_tf.exercises.variants`). Messages about a hidden case never show its inputs
or its expected value.

A function answer is judged in two steps, so that the grader never calls student code
in its own process: :meth:`Function.cases` lists the inputs, the student's function is
run on them (in the student's kernel when grading), and :meth:`Function.judge` compares
the outputs with the reference it computes itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .wire import Opaque, Raised, SubmittedFunction

PLACEHOLDERS = (Ellipsis, None)


class Unanswered(Exception):
    """The answer is still the placeholder of the scaffold."""


class WrongAnswer(Exception):
    """The answer has the right form but the wrong value; the message is the hint."""


class AnswerTypeError(WrongAnswer):
    """The answer has the wrong type or shape; the message says which is expected."""


class StudentError(Exception):
    """The student's code raised while the answer was computed; the message says what."""


#: Seed of the hidden cases when no context gives one (public: self-study only).
DEFAULT_HIDDEN_SEED = 987_654
#: Seed of the visible cases (public: students see these checks).
VISIBLE_SEED = 1234


@dataclass(frozen=True)
class Context:
    """What a check depends on besides the answer.

    ``params`` are the student's variant parameters (empty: the book's numbers);
    ``hidden_seed`` seeds the hidden cases of the part being checked.
    """

    params: Mapping[str, Any] = field(default_factory=dict)
    hidden_seed: int = DEFAULT_HIDDEN_SEED


NO_CONTEXT = Context()


def _unwrap(value: Any) -> Any:
    """Raise for the markers of answers that cannot be judged (see :mod:`.wire`)."""
    if isinstance(value, Raised):
        raise StudentError(f"your code raised {value.message}")
    return value


def is_placeholder(value: Any) -> bool:
    """True for the scaffold placeholders ``...`` and ``None``."""
    return any(value is p for p in PLACEHOLDERS)


def describe(value: Any) -> str:
    """A short description of a value's type and shape, for error messages."""
    if isinstance(value, Opaque):
        return f"a {value.type_name} object"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of length {len(value)}"
    if isinstance(value, dict):
        return f"a dict with keys {sorted(map(str, value))}"
    if callable(value):
        return "a function"
    name = type(value).__name__
    article = "an" if name[0] in "aeiou" else "a"
    return f"{article} {name} ({value!r})" if len(repr(value)) < 40 else f"{article} {name}"


def as_number(value: Any, what: str = "the answer", complex_ok: bool = False) -> complex | float:
    """Convert ``value`` to one float (or complex); :class:`AnswerTypeError` if it is not one."""
    value = _unwrap(value)
    if is_placeholder(value):
        raise Unanswered
    if isinstance(value, (bool, np.bool_)):
        raise AnswerTypeError(f"{what} should be a number, not a boolean")
    if isinstance(value, str):
        raise AnswerTypeError(f"{what} should be a number, not a string ({value!r})")
    if callable(value) and not hasattr(value, "dtype"):
        raise AnswerTypeError(f"{what} should be a number; you gave a function (call it?)")
    try:
        array = np.asarray(value)
    except Exception as error:  # noqa: BLE001 - any conversion failure is a type problem
        raise AnswerTypeError(f"{what} should be a number, got {describe(value)}") from error
    if array.dtype == object or array.size != 1:
        raise AnswerTypeError(f"{what} should be a single number, got {describe(value)}")
    number = array.reshape(()).item()
    if isinstance(number, complex):
        if not complex_ok and number.imag != 0:
            raise AnswerTypeError(f"{what} should be a real number, got the complex {number}")
        return number if complex_ok else number.real
    if not isinstance(number, (int, float)):
        raise AnswerTypeError(f"{what} should be a number, got {describe(value)}")
    return float(number)


def as_array(value: Any, what: str = "the answer", shape: tuple | None = None) -> np.ndarray:
    """Convert ``value`` to a float (or complex) array, checking ``shape`` when given."""
    value = _unwrap(value)
    if is_placeholder(value):
        raise Unanswered
    if isinstance(value, str):
        raise AnswerTypeError(f"{what} should be numbers, not a string ({value!r})")
    try:
        array = np.asarray(value)
    except Exception as error:  # noqa: BLE001
        raise AnswerTypeError(
            f"{what} should be an array of numbers, got {describe(value)}"
        ) from error
    if array.dtype == object or array.dtype.kind not in "biufc":
        raise AnswerTypeError(f"{what} should hold numbers, got {describe(value)}")
    if any(is_placeholder(v) for v in np.ravel(array).tolist()):
        raise Unanswered
    if shape is not None and array.shape != tuple(shape):
        raise AnswerTypeError(f"{what} should have shape {tuple(shape)}, got {array.shape}")
    return array.astype(complex if array.dtype.kind == "c" else float)


def close(a, b, rtol: float, atol: float) -> bool:
    """``np.allclose`` that treats matching infinities and NaNs as equal."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    return bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True))


class Checker:
    """Base class: ``check`` returns a confirmation or raises (see the module docstring)."""

    #: What the answer should be, shown when the type is wrong ("a number", "a function").
    expects: str = "an answer"

    def check(self, answer: Any, hidden: bool = False,
              context: Context | None = None) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


def _resolve(value: Any, context: Context | None) -> Any:
    """A checker's expected value: itself, or its value for the student's parameters."""
    if callable(value):
        return value(dict((context or NO_CONTEXT).params))
    return value


@dataclass
class Number(Checker):
    """One number, right within ``rtol`` (relative) or ``atol`` (absolute).

    ``value`` is the number, or a function of the variant parameters (a dict) that
    computes it for the student being checked.
    """

    value: float | complex | Callable[[dict], float | complex]
    rtol: float = 1e-3
    atol: float = 0.0
    integer: bool = False
    hint: str = ""
    expects: str = "a number"

    def expected(self, context: Context | None = None) -> float | complex:
        """The right answer for the student of ``context``."""
        return _resolve(self.value, context)

    def check(self, answer: Any, hidden: bool = False, context: Context | None = None) -> str:
        value = self.expected(context)
        number = as_number(answer, complex_ok=isinstance(value, complex))
        if self.integer and float(number) != round(float(number)):
            raise AnswerTypeError("the answer should be a whole number")
        if close(number, value, self.rtol, self.atol):
            return "right value"
        if not isinstance(value, complex) and value != 0 and number != 0 and (
            math.copysign(1, number) != math.copysign(1, value)
        ):
            raise WrongAnswer("the sign is wrong. " + self.hint)
        raise WrongAnswer(("not the right value. " + self.hint).strip())


@dataclass
class Numbers(Checker):
    """A list of numbers; ``ordered=False`` compares them as a set (sorted).

    ``values`` may be a function of the variant parameters, like :attr:`Number.value`.
    """

    values: Sequence[float] | Callable[[dict], Sequence[float]]
    ordered: bool = True
    rtol: float = 1e-3
    atol: float = 1e-9
    hint: str = ""
    expects: str = "a list of numbers"

    def expected(self, context: Context | None = None) -> np.ndarray:
        """The right answer for the student of ``context``."""
        return np.asarray(_resolve(self.values, context))

    def check(self, answer: Any, hidden: bool = False, context: Context | None = None) -> str:
        expected = self.expected(context)
        if isinstance(answer, (int, float)) and not isinstance(answer, bool):
            raise AnswerTypeError(f"expected a list of {expected.size} numbers, got one number")
        array = np.ravel(as_array(answer))
        if array.size != expected.size:
            raise AnswerTypeError(f"expected {expected.size} numbers, got {array.size}")
        if not self.ordered:
            key = (lambda v: (np.real(v), np.imag(v)))  # noqa: E731
            array = np.array(sorted(array, key=key))
            expected = np.array(sorted(expected, key=key))
        wrong = ~np.isclose(array, expected, rtol=self.rtol, atol=self.atol)
        if wrong.any():
            where = "" if not self.ordered else f" (entries {list(np.flatnonzero(wrong))} are off)"
            raise WrongAnswer(f"{int(wrong.sum())} of {expected.size} values are off{where}. "
                              + self.hint)
        return "right values"


Sampler = Callable[[np.random.Generator], Any]

#: Names an expression answer given as a string may use besides its variables.
EXPRESSION_NAMESPACE = {
    name: getattr(np, name)
    for name in ("exp", "log", "log10", "log2", "sqrt", "sin", "cos", "tan", "tanh", "abs",
                 "maximum", "minimum", "pi", "e", "real", "imag", "conj")
}
EXPRESSION_NAMESPACE["np"] = np


def as_callable(answer: Any, variables: Sequence[str]) -> Callable:
    """A function of ``variables`` from a callable or a string expression.

    Raises :class:`Unanswered` for a placeholder and :class:`AnswerTypeError` for
    anything else that is not a function or a valid expression in ``variables``.
    """
    answer = _unwrap(answer)
    if is_placeholder(answer):
        raise Unanswered
    if isinstance(answer, SubmittedFunction):
        raise AnswerTypeError("a function answer is judged by its outputs on given inputs")
    if isinstance(answer, str):
        source = answer.replace("^", "**")
        try:
            code = compile(source, "<expression>", "eval")
        except SyntaxError as error:
            raise AnswerTypeError(
                f"the expression {answer!r} is not valid Python: {error.msg}"
            ) from None
        unknown = set(code.co_names) - set(variables) - set(EXPRESSION_NAMESPACE)
        if unknown:
            raise AnswerTypeError(
                f"the expression uses {sorted(unknown)}; it may use only the variables "
                f"{list(variables)} and numpy functions such as exp, log, sqrt"
            )

        def function(*args):
            scope = dict(EXPRESSION_NAMESPACE, **dict(zip(variables, args, strict=True)))
            return eval(code, {"__builtins__": {}}, scope)  # noqa: S307 - restricted namespace

        return function
    if callable(answer):
        return answer
    raise AnswerTypeError(
        f"expected a function of ({', '.join(variables)}) such as "
        f"`lambda {', '.join(variables)}: ...` or a string expression, got {describe(answer)}"
    )



def _format_args(names: Sequence[str], args: Sequence[Any]) -> str:
    def short(v):
        if isinstance(v, np.ndarray):
            return f"<array {v.shape}>" if v.size > 4 else np.array2string(v, precision=3)
        if isinstance(v, (float, np.floating)):
            return f"{float(v):.4g}"
        if isinstance(v, complex):
            return f"{v.real:.3g}{v.imag:+.3g}j"
        if isinstance(v, (list, tuple)) and len(v) > 4:
            return f"<{type(v).__name__} of {len(v)}>"
        if callable(v):
            return getattr(v, "__doc__", None) or "<function>"
        return repr(v)

    return ", ".join(f"{n}={short(a)}" for n, a in zip(names, args, strict=False))


def run_function(function: Callable, cases: Sequence[tuple]) -> list[Any]:
    """``function`` applied to copies of each case's arguments (exceptions propagate)."""
    outputs = []
    for args in cases:
        copies = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args]
        outputs.append(function(*copies))
    return outputs


@dataclass
class Function(Checker):
    """A function compared with ``reference`` on random inputs.

    ``cases(rng)`` returns the argument tuple of one random case. ``fixed`` cases (edge
    cases worth stating) and ``visible`` random cases from a fixed public seed are what
    students see; ``hidden`` adds ``hidden_cases`` more drawn from the context's hidden
    seed. Outputs are compared with :func:`numpy.allclose` after checking their shapes
    agree; a ``compare`` function may replace that (it returns ``None`` when equal or a
    message).
    """

    reference: Callable
    cases: Sampler
    arg_names: Sequence[str]
    visible: int = 5
    hidden_cases: int = 40
    fixed: Sequence[tuple] = ()
    rtol: float = 1e-5
    atol: float = 1e-8
    compare: Callable[[Any, Any], str | None] | None = None
    hint: str = ""
    expects: str = "a function"

    def case_list(self, hidden: bool, context: Context | None = None) -> tuple[list[tuple], int]:
        """The argument tuples to run, and how many of them (the first ones) are visible."""
        rng = np.random.default_rng(VISIBLE_SEED)
        cases = list(self.fixed) + [tuple(self.cases(rng)) for _ in range(self.visible)]
        n_visible = len(cases)
        if hidden:
            rng = np.random.default_rng((context or NO_CONTEXT).hidden_seed)
            cases += [tuple(self.cases(rng)) for _ in range(self.hidden_cases)]
        return cases, n_visible

    def _all_cases(self, hidden: bool) -> list[tuple]:
        return self.case_list(hidden)[0]

    def check(self, answer: Any, hidden: bool = False, context: Context | None = None) -> str:
        function = as_callable(answer, self.arg_names)
        cases, n_visible = self.case_list(hidden, context)
        outputs = []
        for args in cases:
            outputs.append(run_function(function, [args])[0])
            if len(outputs) == 1 and is_placeholder(outputs[0]):
                raise Unanswered
        return self.judge(cases, outputs, n_visible)

    def judge(self, cases: Sequence[tuple], outputs: Sequence[Any], n_visible: int) -> str:
        """Compare the student's ``outputs`` on ``cases`` with the reference's.

        The first ``n_visible`` cases may be shown in messages; the others are hidden and
        are referred to by number only. An output that is a :class:`~.wire.Raised`
        marker means the student's function raised on that case.
        """
        if len(outputs) != len(cases):
            raise AnswerTypeError("the function was not run on every case")
        for index, (args, got) in enumerate(zip(cases, outputs, strict=True)):
            shown = index < n_visible
            where = (f"for {_format_args(self.arg_names, args)}" if shown else
                     f"on hidden case {index - n_visible + 1} of {len(cases) - n_visible}")
            if isinstance(got, Raised):
                # on a hidden case only the kind of error: its text may describe the inputs
                what = got.message if shown else got.message.split(":")[0]
                raise StudentError(f"your function raised {what} {where}")
            if is_placeholder(got):
                if index == 0:
                    raise Unanswered
                raise AnswerTypeError(
                    f"your function returned {got!r} {where}; does every branch return a value?"
                )
            expected = self.reference(*args)
            message = self._compare(got, expected)
            if message:
                if not shown:
                    message = "your function's result is off"
                raise WrongAnswer(f"{where} {message}. {self.hint}".strip())
        return f"agrees with the reference on {len(cases)} cases"

    def _compare(self, got: Any, expected: Any) -> str | None:
        if self.compare is not None:
            return self.compare(got, expected)
        if isinstance(expected, str):
            if type(got) is not str:
                return f"your function returned {describe(got)}, not a string"
            return None if str.__eq__(got, expected) else f"your function returned {got!r}"
        if isinstance(got, (str, Opaque, SubmittedFunction)):
            return f"your function returned {describe(got)}, not numbers"
        try:
            got_array = np.asarray(got)
        except Exception:  # noqa: BLE001
            return f"your function returned {describe(got)}, not numbers"
        if got_array.dtype == object or got_array.dtype.kind not in "biufc":
            return f"your function returned {describe(got)}, not numbers"
        expected = np.asarray(expected)
        if got_array.size == expected.size == 1:
            got_array, expected = got_array.reshape(()), expected.reshape(())
        if got_array.shape != expected.shape:
            return (f"your function returned shape {got_array.shape}, "
                    f"but the result should have shape {expected.shape}")
        if not close(got_array, expected, self.rtol, self.atol):
            shown = (f"{complex(got_array):.4g}" if got_array.dtype.kind == "c"
                     else f"{float(got_array):.4g}") if got_array.size == 1 else "values"
            return f"your function returned {shown} which is off"
        return None


@dataclass
class Expression(Function):
    """A formula in named variables, given as a function or a string, checked at random points.

    Same as :class:`Function`; the difference is in how students write it
    (``lambda a, L: a**L`` or ``"a**L"``) and in the wording of the messages.
    """

    expects: str = "a formula"


Predicate = Callable[[Any], "str | None"]


@dataclass
class Property(Checker):
    """A measured quantity checked by the property it must satisfy.

    ``convert`` turns the raw answer into the checked value (raising
    :class:`AnswerTypeError` for wrong types or shapes); each predicate returns
    ``None`` when satisfied or a hint. ``hidden_predicates`` run only when hidden.
    """

    predicates: Sequence[Predicate]
    convert: Callable[[Any], Any] = field(default=lambda v: v)
    hidden_predicates: Sequence[Predicate] = ()
    description: str = "has the property it must have"
    expects: str = "a measured value"

    def check(self, answer: Any, hidden: bool = False, context: Context | None = None) -> str:
        answer = _unwrap(answer)
        if is_placeholder(answer):
            raise Unanswered
        if isinstance(answer, (Opaque, SubmittedFunction)):
            raise AnswerTypeError(f"expected {self.expects}, got {describe(answer)}")
        value = self.convert(answer)
        for predicate in list(self.predicates) + (list(self.hidden_predicates) if hidden else []):
            message = predicate(value)
            if message:
                raise WrongAnswer(message)
        return self.description


def number_list(length: int | None = None, what: str = "the answer") -> Callable[[Any], np.ndarray]:
    """A ``convert`` for :class:`Property`: a 1-D float array, of ``length`` when given."""

    def convert(answer: Any) -> np.ndarray:
        if isinstance(answer, (int, float)) and length not in (None, 1):
            raise AnswerTypeError(f"{what} should be a list of {length} numbers, got one number")
        array = as_array(answer, what)
        if array.ndim != 1:
            raise AnswerTypeError(
                f"{what} should be a flat list of numbers, got shape {array.shape}"
            )
        if length is not None and array.size != length:
            raise AnswerTypeError(f"{what} should hold {length} numbers, got {array.size}")
        if np.iscomplexobj(array):
            raise AnswerTypeError(f"{what} should hold real numbers")
        if not np.all(np.isfinite(array)):
            raise WrongAnswer(f"{what} holds inf or nan values; check the computation")
        return array

    return convert


def number_value(what: str = "the answer") -> Callable[[Any], float]:
    """A ``convert`` for :class:`Property`: one finite real number."""

    def convert(answer: Any) -> float:
        number = float(as_number(answer, what))
        if not math.isfinite(number):
            raise WrongAnswer(f"{what} is {number}; check the computation")
        return number

    return convert
