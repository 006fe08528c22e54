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
extra predicates of property checks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PLACEHOLDERS = (Ellipsis, None)


class Unanswered(Exception):
    """The answer is still the placeholder of the scaffold."""


class WrongAnswer(Exception):
    """The answer has the right form but the wrong value; the message is the hint."""


class AnswerTypeError(WrongAnswer):
    """The answer has the wrong type or shape; the message says which is expected."""


def is_placeholder(value: Any) -> bool:
    """True for the scaffold placeholders ``...`` and ``None``."""
    return any(value is p for p in PLACEHOLDERS)


def describe(value: Any) -> str:
    """A short description of a value's type and shape, for error messages."""
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

    def check(self, answer: Any, hidden: bool = False) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass
class Number(Checker):
    """One number, right within ``rtol`` (relative) or ``atol`` (absolute)."""

    value: float | complex
    rtol: float = 1e-3
    atol: float = 0.0
    integer: bool = False
    hint: str = ""
    expects: str = "a number"

    def check(self, answer: Any, hidden: bool = False) -> str:
        number = as_number(answer, complex_ok=isinstance(self.value, complex))
        if self.integer and float(number) != round(float(number)):
            raise AnswerTypeError("the answer should be a whole number")
        if close(number, self.value, self.rtol, self.atol):
            return "right value"
        if not isinstance(self.value, complex) and self.value != 0 and number != 0 and (
            math.copysign(1, number) != math.copysign(1, self.value)
        ):
            raise WrongAnswer("the sign is wrong. " + self.hint)
        raise WrongAnswer(("not the right value. " + self.hint).strip())


@dataclass
class Numbers(Checker):
    """A list of numbers; ``ordered=False`` compares them as a set (sorted)."""

    values: Sequence[float]
    ordered: bool = True
    rtol: float = 1e-3
    atol: float = 1e-9
    hint: str = ""
    expects: str = "a list of numbers"

    def check(self, answer: Any, hidden: bool = False) -> str:
        if isinstance(answer, (int, float)) and not isinstance(answer, bool):
            raise AnswerTypeError(f"expected a list of {len(self.values)} numbers, got one number")
        array = np.ravel(as_array(answer))
        expected = np.asarray(self.values)
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


def _as_callable(answer: Any, variables: Sequence[str]) -> Callable:
    """A function of ``variables`` from a callable or a string expression."""
    if is_placeholder(answer):
        raise Unanswered
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


@dataclass
class Function(Checker):
    """A function compared with ``reference`` on random inputs.

    ``cases(rng)`` returns the argument tuple of one random case. ``visible`` cases
    come from a fixed seed; ``hidden`` adds ``hidden_cases`` more from another seed.
    ``fixed`` cases (edge cases worth stating) run first. Outputs are compared with
    :func:`numpy.allclose` after checking their shapes agree; a ``compare`` function
    may replace that (it returns ``None`` when equal or a message).
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

    def _all_cases(self, hidden: bool) -> list[tuple]:
        rng = np.random.default_rng(1234)
        cases = list(self.fixed) + [tuple(self.cases(rng)) for _ in range(self.visible)]
        if hidden:
            rng = np.random.default_rng(987_654)
            cases += [tuple(self.cases(rng)) for _ in range(self.hidden_cases)]
        return cases

    def check(self, answer: Any, hidden: bool = False) -> str:
        function = _as_callable(answer, self.arg_names)
        cases = self._all_cases(hidden)
        for index, args in enumerate(cases):
            copies = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args]
            got = function(*copies)
            if is_placeholder(got):
                if index == 0:
                    raise Unanswered
                raise AnswerTypeError(
                    f"your function returned {got!r} for {_format_args(self.arg_names, args)}; "
                    "does every branch return a value?"
                )
            expected = self.reference(*args)
            message = self._compare(got, expected)
            if message:
                raise WrongAnswer(
                    f"for {_format_args(self.arg_names, args)} {message}. {self.hint}".strip()
                )
        return f"agrees with the reference on {len(cases)} cases"

    def _compare(self, got: Any, expected: Any) -> str | None:
        if self.compare is not None:
            return self.compare(got, expected)
        if isinstance(got, str) or isinstance(expected, str):
            return None if got == expected else f"your function returned {got!r}, which is off"
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

    def check(self, answer: Any, hidden: bool = False) -> str:
        if is_placeholder(answer):
            raise Unanswered
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
