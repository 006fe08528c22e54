"""Old spellings kept for one release: each use warns and names the new one."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

REMOVED_IN = "0.4.0"


def warn(old: str, new: str, stacklevel: int = 3) -> None:
    """Emit the ``DeprecationWarning`` that ``old`` is now spelled ``new``."""
    warnings.warn(
        f"{old} is deprecated and will be removed in resnet_tf {REMOVED_IN}; use {new}",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def renamed(function: Callable, old: str, new: str | None = None) -> Callable:
    """``function`` under its former name ``old``, warning at every call."""
    new = new or f"{function.__module__}.{function.__qualname__}"

    @functools.wraps(function)
    def alias(*args, **kwargs):
        warn(old, new)
        return function(*args, **kwargs)

    alias.__name__ = alias.__qualname__ = old.rsplit(".", 1)[-1]
    alias.__doc__ = f"Deprecated spelling of :func:`{new}`."
    return alias


def removed_names(module: str, names: dict[str, tuple[Any, str]]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that still serves names removed from ``module``.

    ``names`` maps each removed name to ``(value, what to use instead)``; every access
    warns. Other unknown names raise ``AttributeError`` as usual.
    """

    def __getattr__(name: str) -> Any:
        if name in names:
            value, instead = names[name]
            warn(f"{module}.{name}", instead)
            return value
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__


def keyword(old: str, old_value, new: str, new_value, convert: Callable = lambda v: v):
    """The value to use when a deprecated keyword ``old`` may have been passed.

    ``old_value is None`` means it was not passed: ``new_value`` is returned. Otherwise
    a ``DeprecationWarning`` names ``new`` and ``convert(old_value)`` is returned.
    """
    if old_value is None:
        return new_value
    warn(f"the keyword {old}=", f"{new}=", stacklevel=4)
    return convert(old_value)
