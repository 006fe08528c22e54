"""The problem bank, one module per assignment; importing it registers every problem."""

from . import (  # noqa: F401 - imported for the registration side effect
    signal_propagation,
)
