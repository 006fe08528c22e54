"""resnet_tf: residual networks in Keras 3, with the instruments to study them.

Sub-modules, by what they hold:

- :mod:`resnet_tf.layers`  the building layers (fused batch norm, shortcuts, residual joins)
- :mod:`resnet_tf.blocks`  basic / bottleneck, post- / pre-activation residual blocks
- :mod:`resnet_tf.models`  CIFAR ResNets and plain twins, ImageNet ResNets, MLPs
- :mod:`resnet_tf.data`    CIFAR-10, the embedded digits set, synthetic tasks, tf.data pipelines
- :mod:`resnet_tf.training` the paper's training recipe
- :mod:`resnet_tf.runtime` profile (quick/full), seeding, environment report
"""

__version__ = "0.2.0"

from .runtime import environment, pick, profile, seed_everything  # noqa: E402

__all__ = ["__version__", "environment", "pick", "profile", "seed_everything"]
