"""Answers as plain data: how a student's kernel hands its answers to the grader.

The grader never trusts objects from a student's kernel. The kernel turns every answer
into JSON text with :func:`encode` (numbers, strings, lists, arrays and a few tagged
forms), the grader parses it with :func:`json.loads` and rebuilds plain values with
:func:`decode`, which accepts nothing but the forms listed below and bounds their size.
An object with a custom ``__eq__`` therefore reaches the grader as a plain string or
list, or as an :class:`Opaque` marker that no checker accepts.

Tagged forms (JSON objects with a ``"$"`` key)::

    {"$": "placeholder"}                         the scaffold's ``...``
    {"$": "complex", "re": 1.0, "im": 2.0}       a complex number
    {"$": "array", "shape": [2, 3], "data": [...], "im": [...]?}   a numeric array
    {"$": "dict", "items": [["key", value], ...]}                 a dict with string keys
    {"$": "function"}                            a callable (its outputs travel separately)
    {"$": "raised", "message": "..."}            the student's code raised while computing it
    {"$": "opaque", "type": "Foo"}               anything else (never accepted as an answer)
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

MAX_ELEMENTS = 1_000_000  # numbers in one answer
MAX_DEPTH = 32  # nesting of lists and dicts
MAX_TEXT = 10_000  # characters of one string
MAX_PAYLOAD = 32 * 2**20  # characters of one JSON payload


class WireError(ValueError):
    """Data that is not one of the forms :func:`decode` accepts."""


class Opaque:
    """An answer of a type the wire does not carry; no checker accepts it."""

    def __init__(self, type_name: str) -> None:
        self.type_name = str(type_name)[:80]

    def __repr__(self) -> str:
        return f"<{self.type_name} object>"


class SubmittedFunction:
    """Stands for a function answer on the grader's side; it cannot be called there."""

    def __call__(self, *args: Any) -> Any:
        raise TypeError("a function answer is judged by its outputs, not called here")

    def __repr__(self) -> str:
        return "<function>"


class Raised:
    """The student's code raised an exception; ``message`` says which (as text)."""

    def __init__(self, message: str) -> None:
        self.message = str(message)[:500]

    def __repr__(self) -> str:
        return f"<raised {self.message}>"


# --------------------------------------------------------------------------- kernel side


def encode(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON-ready plain data (see the module docstring); never raises."""
    try:
        return _encode(value, depth, [0])
    except _TooBig:
        return {"$": "opaque", "type": "answer too large"}
    except Exception as error:  # noqa: BLE001 - an odd object must not stop the hand-over
        return {"$": "raised", "message": f"{type(error).__name__}: {error}"[:500]}


class _TooBig(Exception):
    pass


def _count(counter: list[int], n: int) -> None:
    counter[0] += n
    if counter[0] > MAX_ELEMENTS:
        raise _TooBig


def _encode(value: Any, depth: int, counter: list[int]) -> Any:
    if depth > MAX_DEPTH:
        raise _TooBig
    if value is Ellipsis:
        return {"$": "placeholder"}
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        _count(counter, 1)
        number = int(value)
        return number if abs(number) < 2**63 else float(number)
    if isinstance(value, (float, np.floating)):
        _count(counter, 1)
        return float(value)
    if isinstance(value, (complex, np.complexfloating)):
        _count(counter, 2)
        return {"$": "complex", "re": float(value.real), "im": float(value.imag)}
    if isinstance(value, str):
        return str.__str__(value)[:MAX_TEXT]
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            if not isinstance(key, str):
                return {"$": "opaque", "type": "dict with non-string keys"}
            items.append([str.__str__(key)[:200], _encode(item, depth + 1, counter)])
        return {"$": "dict", "items": items}
    if isinstance(value, (list, tuple)):
        _count(counter, len(value))
        return [_encode(item, depth + 1, counter) for item in value]
    if isinstance(value, np.ndarray) or (hasattr(value, "shape") and hasattr(value, "dtype")
                                         and not callable(value)):
        array = np.asarray(value)
        if array.dtype.kind not in "biufc":
            return {"$": "opaque", "type": f"array of {array.dtype}"}
        _count(counter, int(array.size) * (2 if array.dtype.kind == "c" else 1))
        if array.dtype.kind == "c":
            return {"$": "array", "shape": list(array.shape),
                    "data": np.real(array).astype(float).ravel().tolist(),
                    "im": np.imag(array).astype(float).ravel().tolist()}
        if array.dtype.kind == "b":
            return {"$": "array", "shape": list(array.shape), "bool": True,
                    "data": array.astype(bool).ravel().tolist()}
        return {"$": "array", "shape": list(array.shape),
                "data": array.astype(float).ravel().tolist()}
    if callable(value):
        return {"$": "function"}
    return {"$": "opaque", "type": type(value).__name__}


def dumps(value: Any) -> str:
    """JSON text of already encoded data (``NaN`` and infinities allowed)."""
    return json.dumps(value, allow_nan=True, separators=(",", ":"))


# --------------------------------------------------------------------------- grader side


def loads(text: str) -> Any:
    """Parse JSON text from a kernel, refusing anything over :data:`MAX_PAYLOAD` characters."""
    if not isinstance(text, str) or len(text) > MAX_PAYLOAD:
        raise WireError("the payload is too large")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        raise WireError(f"the payload is not valid JSON: {error}") from None


def decode(data: Any, depth: int = 0) -> Any:
    """Rebuild an answer from parsed JSON, accepting only the documented forms.

    Lists stay lists (a checker converts them to arrays), tagged arrays become float,
    complex or bool NumPy arrays, strings become plain ``str``. Raises
    :class:`WireError` for anything else or anything too large.
    """
    return _decode(data, depth, [0])


def _decode(data: Any, depth: int, counter: list[int]) -> Any:
    if depth > MAX_DEPTH:
        raise WireError("the answer is nested too deeply")
    if data is None or type(data) is bool:
        return data
    if type(data) is int:
        _tally(counter, 1)
        return data
    if type(data) is float:
        _tally(counter, 1)
        return data
    if type(data) is str:
        if len(data) > MAX_TEXT:
            raise WireError("a string in the answer is too long")
        return str(data)
    if type(data) is list:
        _tally(counter, len(data))
        return [_decode(item, depth + 1, counter) for item in data]
    if type(data) is not dict:
        raise WireError(f"unexpected {type(data).__name__} in the answer")
    tag = data.get("$")
    if tag == "placeholder":
        return ...
    if tag == "complex":
        _tally(counter, 2)
        return complex(_float(data.get("re")), _float(data.get("im")))
    if tag == "array":
        return _array(data, counter)
    if tag == "dict":
        items = data.get("items")
        if type(items) is not list:
            raise WireError("a dict answer without items")
        result = {}
        for pair in items:
            if type(pair) is not list or len(pair) != 2 or type(pair[0]) is not str:
                raise WireError("a dict answer with a malformed item")
            result[str(pair[0])[:200]] = _decode(pair[1], depth + 1, counter)
        return result
    if tag == "function":
        return SubmittedFunction()
    if tag == "raised":
        return Raised(_text(data.get("message")))
    if tag == "opaque":
        return Opaque(_text(data.get("type")))
    raise WireError("an unknown tagged value in the answer")


def _tally(counter: list[int], n: int) -> None:
    counter[0] += n
    if counter[0] > MAX_ELEMENTS:
        raise WireError("the answer holds too many numbers")


def _float(value: Any) -> float:
    if type(value) not in (int, float):
        raise WireError("a number was expected")
    return float(value)


def _text(value: Any) -> str:
    return value[:500] if type(value) is str else ""


def _array(data: dict, counter: list[int]) -> np.ndarray:
    shape, values = data.get("shape"), data.get("data")
    if type(shape) is not list or not all(type(n) is int and n >= 0 for n in shape) \
            or len(shape) > 8 or type(values) is not list:
        raise WireError("a malformed array")
    size = math.prod(shape)
    if size != len(values):
        raise WireError("an array whose shape does not match its data")
    _tally(counter, size)
    if data.get("bool") is True:
        if not all(type(v) is bool for v in values):
            raise WireError("a malformed boolean array")
        return np.array(values, dtype=bool).reshape(shape)
    if not all(type(v) in (int, float) for v in values):
        raise WireError("an array with non-numbers in it")
    real = np.array(values, dtype=float).reshape(shape)
    imag = data.get("im")
    if imag is None:
        return real
    if type(imag) is not list or len(imag) != size or not all(
            type(v) in (int, float) for v in imag):
        raise WireError("a malformed complex array")
    _tally(counter, size)
    return real + 1j * np.array(imag, dtype=float).reshape(shape)
