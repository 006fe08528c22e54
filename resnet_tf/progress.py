"""Time estimates and progress output for long training cells.

Before a long cell, a chapter times a few training steps of each network it is
about to train and prints what the whole cell will take ("about 6 min on this
GPU"); during the cell, Keras' own progress bar shows each run. Both belong to
the ``full`` profile: in the ``quick`` profile nothing is timed or printed, so
the stored outputs of the notebooks stay the same on every re-run.

- :func:`enabled` / :func:`verbosity`: whether to time and what ``verbose`` to
  pass to :func:`resnet_tf.training.fit`;
- :func:`step_seconds`: seconds per training step, measured on a throwaway
  model with the same :func:`~resnet_tf.training.fit` the cell will use;
- :func:`fit_seconds`: the arithmetic from seconds per step to a whole run;
- :func:`announce`: one line with the total and its parts;
- :func:`format_duration`: ``"about 6 min"``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import keras
import numpy as np

from .runtime import gpu_devices, profile


def enabled() -> bool:
    """True in the ``full`` profile, where long cells time themselves and show progress."""
    return profile() == "full"


def verbosity() -> int:
    """The ``verbose`` argument for long fits: 1 (Keras' progress bar) in the full
    profile, 0 (silent) in the quick one."""
    return 1 if enabled() else 0


def format_duration(seconds: float) -> str:
    """A rounded, readable duration: ``"about 40 s"``, ``"about 6 min"``, ``"about 1.5 h"``."""
    if seconds is None or not np.isfinite(seconds) or seconds < 0:
        raise ValueError(f"seconds must be a finite number >= 0; got {seconds!r}")
    if seconds < 90:
        return f"about {max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h"


class StepTimer(keras.callbacks.Callback):
    """Wall-clock time at the end of every training batch and at the end of training."""

    def __init__(self):
        super().__init__()
        self.batch_ends: list[float] = []
        self.train_end: float | None = None

    def on_train_batch_end(self, batch, logs=None):
        self.batch_ends.append(time.perf_counter())

    def on_train_end(self, logs=None):
        self.train_end = time.perf_counter()

    def seconds_per_step(self, warmup: int) -> float:
        """Mean time of the steps after the first ``warmup`` ones (tracing, XLA compilation).

        Measured up to the end of training, which waits for the device, so a
        GPU's asynchronous dispatch does not make steps look faster than they are.
        """
        timed = len(self.batch_ends) - warmup
        if warmup < 1 or timed < 1 or self.train_end is None:
            raise ValueError(
                f"need warmup >= 1 and more than warmup={warmup} recorded steps; got "
                f"{len(self.batch_ends)}"
            )
        return (self.train_end - self.batch_ends[warmup - 1]) / timed


def step_seconds(
    build: Callable[[], keras.Model],
    train,
    batch_size: int = 128,
    steps: int = 10,
    warmup: int = 3,
    force: bool = False,
    **fit_kwargs,
) -> float | None:
    """Seconds per training step of the model that ``build()`` returns.

    The model is trained for ``warmup + steps`` steps with
    :func:`resnet_tf.training.fit` (same pipeline, precision and XLA choice as
    the real run) and thrown away; the first ``warmup`` steps, which include
    tracing and compilation, are not counted. In the quick profile nothing is
    built or timed and ``None`` is returned, unless ``force``.
    """
    from .training import fit

    if not isinstance(steps, int) or steps < 1 or not isinstance(warmup, int) or warmup < 1:
        raise ValueError(f"steps and warmup must be integers >= 1; got {steps!r}, {warmup!r}")
    if not (force or enabled()):
        return None
    timer = StepTimer()
    fit(build(), train, epochs=1, batch_size=batch_size, steps_per_epoch=warmup + steps,
        verbose=0, callbacks=[timer], **fit_kwargs)
    return timer.seconds_per_step(warmup)


def fit_seconds(
    seconds_per_step: float | None,
    n_train: int,
    epochs: int,
    batch_size: int,
    n_eval: int = 0,
    eval_cost: float = 1 / 3,
) -> float | None:
    r"""Expected seconds of a whole ``fit`` from the time of one step.

    .. math:: T = t_{step} \cdot E \left(\lfloor N / B \rfloor + c \, N_{eval} / B\right)

    ``E`` epochs of ``floor(N / B)`` full training batches, plus an evaluation
    of ``n_eval`` examples after every epoch at ``eval_cost`` of a training
    step per batch (a forward pass costs about a third of forward plus backward).
    ``None`` in, ``None`` out (the quick profile does not time).
    """
    if seconds_per_step is None:
        return None
    if batch_size < 1 or n_train < batch_size or epochs < 0:
        raise ValueError(
            f"need batch_size >= 1, n_train >= batch_size and epochs >= 0; got "
            f"batch_size={batch_size}, n_train={n_train}, epochs={epochs}"
        )
    per_epoch = n_train // batch_size + eval_cost * n_eval / batch_size
    return float(seconds_per_step * epochs * per_epoch)


def device_label() -> str:
    """``"this GPU"`` or ``"this CPU"``, for the estimate's wording."""
    return "this GPU" if gpu_devices() else "this CPU"


def announce(
    estimates: Mapping[str, float | None], what: str = "training",
    echo: Callable[[str], None] = print,
) -> float | None:
    """Print one line with the total of ``estimates`` (seconds by part) and return it.

    Prints nothing and returns ``None`` when any part is ``None`` (the quick
    profile, where :func:`step_seconds` does not time).
    """
    if not estimates or any(v is None for v in estimates.values()):
        return None
    total = float(sum(estimates.values()))
    parts = ", ".join(f"{name} {format_duration(v).removeprefix('about ')}"
                      for name, v in estimates.items())
    echo(f"Estimated {what} time: {format_duration(total)} on {device_label()} ({parts})")
    return total
