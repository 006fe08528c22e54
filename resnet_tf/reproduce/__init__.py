"""Reproduce the paper's CIFAR-10 results: ``python -m resnet_tf reproduce table6``.

On a GPU (Colab) this trains ResNet-20/32/44/56/110 with the paper's recipe
and writes Table 6 next to the paper's numbers; ``--plain`` adds the plain
twins and the degradation figure. On a CPU the very same code runs at toy
scale (``--dataset digits|synthetic --epochs 2 --steps-per-epoch 3``), which
is how the tests exercise it.

- :mod:`.paper`: the paper's numbers and recipe constants
- :mod:`.recipe`: :func:`~.recipe.plan` (linear scaling of batch and rate),
  the schedule, the optimizer with coupled weight decay, precision and XLA
- :mod:`.pipeline`: tf.data input pipelines with batched pad-crop-flip
- :mod:`.runner`: the resumable training loop over networks
- :mod:`.report`: table, figure and JSON
- :mod:`.replay`: a finished run's table, errors and curves, for the chapters
"""

from __future__ import annotations

from . import paper, replay

__all__ = ["RunExistsError", "Table6Config", "paper", "replay", "run_table6"]


def __getattr__(name: str):
    """Load the training machinery (and TensorFlow) only when it is used."""
    if name in ("RunExistsError", "Table6Config", "run_table6"):
        from . import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
