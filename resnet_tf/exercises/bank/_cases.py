"""Random-case generators shared by the problem definitions."""

from __future__ import annotations


def uniform(low: float, high: float):
    """A sampler of one float in ``[low, high)``."""
    return lambda rng: float(rng.uniform(low, high))


def integer(low: int, high: int):
    """A sampler of one int in ``[low, high]``."""
    return lambda rng: int(rng.integers(low, high + 1))


def joint(*samplers):
    """A case sampler returning one value from each sampler."""
    return lambda rng: tuple(s(rng) for s in samplers)
