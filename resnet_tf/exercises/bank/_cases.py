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


def rounded(low: float, high: float, digits: int = 2):
    """A sampler of one float in ``[low, high)``, rounded to ``digits`` decimals."""
    return lambda rng: round(float(rng.uniform(low, high)), digits)


def one_of(values):
    """A sampler of one of ``values``, as a float."""
    return lambda rng: float(rng.choice(values))


def distinct(values, k: int, digits: int):
    """A sampler of ``k`` different entries of ``values``, rounded to ``digits`` decimals."""
    return lambda rng: [round(float(v), digits) for v in rng.choice(values, k, replace=False)]


def params(**samplers):
    """A variant sampler: a dict with one value from each named sampler, drawn in order."""
    return lambda rng: {name: sample(rng) for name, sample in samplers.items()}
