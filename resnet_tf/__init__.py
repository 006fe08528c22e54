"""resnet_tf: residual networks in Keras 3, with the instruments to study them.

The library (nothing here imports the course material):

- :mod:`resnet_tf.layers`       the building layers (fused batch norm, shortcuts, residual joins)
- :mod:`resnet_tf.blocks`       basic / bottleneck, post- / pre-activation residual blocks,
  and :func:`~resnet_tf.blocks.blocks_of`, the blocks a model was built from
- :mod:`resnet_tf.models`       CIFAR ResNets and plain twins, ImageNet ResNets, MLPs
- :mod:`resnet_tf.data`         CIFAR-10, the digits set, synthetic tasks, tf.data pipelines
- :mod:`resnet_tf.training`     the paper's training recipe
- :mod:`resnet_tf.paper`        the paper's numbers and constants, read by every default
- :mod:`resnet_tf.analysis`     gradients, signals, Jacobians, lesions, paths, costs
- :mod:`resnet_tf.dynamics`     residual networks as discretised ODEs
- :mod:`resnet_tf.maths`        numpy only: stability, spectral norms, block costs
- :mod:`resnet_tf.applications` adapters, denoisers, Transformer blocks
- :mod:`resnet_tf.plots`        the figures
- :mod:`resnet_tf.runtime`      profile (quick/full), seeding, environment report

The course machinery built on it: :mod:`resnet_tf.exercises`, :mod:`resnet_tf.grading`,
:mod:`resnet_tf.reproduce`, :mod:`resnet_tf.colab`.

Sub-packages load on first use (PEP 562), so ``import resnet_tf`` does not import
TensorFlow; ``resnet_tf.models`` then imports it.
"""

from __future__ import annotations

import importlib

from ._version import __version__
from .runtime import environment, pick, profile, seed_everything

_SUBMODULES = (
    "analysis", "applications", "blocks", "cli", "colab", "commands", "data", "distribute",
    "dynamics", "exercises", "grading", "interactive", "layers", "maths", "models",
    "notebooks", "paper", "plots", "progress", "reproduce", "runtime", "training",
)

__all__ = ["__version__", "environment", "pick", "profile", "seed_everything", *_SUBMODULES]


def __getattr__(name: str):
    """Import the sub-module ``resnet_tf.<name>`` the first time it is used."""
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_SUBMODULES})
