r"""Residual adapters: learn a new task as a small correction to a frozen network.

An adapter is a bottleneck residual branch inserted into a trained network,

.. math:: y = x + U\,\phi(D x + b_D) + b_U, \qquad D \in \mathbb{R}^{r\times d},\;
          U \in \mathbb{R}^{d\times r},\; r \ll d,

with :math:`U` initialised to zero, so that the network with the adapter computes
exactly what it computed before (Rebuffi et al. 2017; Houlsby et al. 2019). Training only
the adapter (and a new head) leaves the original weights, and hence the original task,
untouched; the adapter itself is :math:`2dr + d + r` parameters.

:func:`residual_adapter` inserts one into a functional graph as a residual block of its
own (a :class:`~resnet_tf.layers.Residual` join), so :func:`resnet_tf.blocks.blocks_of`
and the instruments see it, and :func:`resnet_tf.analysis.lesioned` switches it off. The
layer :class:`ResidualAdapter` is deprecated.
"""

from __future__ import annotations

import keras

from .. import _deprecation
from ..layers import Residual, join_seed

_PACKAGE = "resnet_tf"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ResidualAdapter(keras.layers.Layer):
    r"""Deprecated (use :func:`residual_adapter`): bottleneck residual adapter
    :math:`y = x + s\,(U\phi(Dx + b_D) + b_U)` as one layer. Kept so saved models load.

    Args:
        bottleneck: the rank :math:`r` of the correction.
        activation: :math:`\phi`.
        scale: :math:`s`, a fixed multiplier of the correction.
        enabled: when ``False`` the layer is the identity (the Python attribute is
            read at call time, so an eager call sees changes; compiled functions do not).
    """

    def __init__(
        self,
        bottleneck: int = 8,
        activation: str = "relu",
        scale: float = 1.0,
        enabled: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _deprecation.warn("applications.ResidualAdapter", "applications.residual_adapter")
        if not isinstance(bottleneck, int) or bottleneck < 1:
            raise ValueError(f"bottleneck must be a positive integer; got {bottleneck!r}")
        self.bottleneck = bottleneck
        self.activation = keras.activations.get(activation)
        self.activation_name = activation
        self.scale = float(scale)
        self.enabled = bool(enabled)

    def build(self, input_shape):
        features = input_shape[-1]
        self.down = keras.layers.Dense(
            self.bottleneck, activation=self.activation, dtype=self.dtype_policy, name="down"
        )
        self.up = keras.layers.Dense(
            features, kernel_initializer="zeros", dtype=self.dtype_policy, name="up"
        )
        self.down.build(input_shape)
        self.up.build(tuple(input_shape[:-1]) + (self.bottleneck,))
        self.built = True

    def correction(self, x):
        r"""The branch :math:`s\,(U\phi(Dx + b_D) + b_U)` alone."""
        return self.scale * self.up(self.down(x))

    def call(self, inputs):
        if not self.enabled:
            return inputs
        return inputs + self.correction(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "bottleneck": self.bottleneck,
            "activation": self.activation_name,
            "scale": self.scale,
            "enabled": self.enabled,
        }


def residual_adapter(
    x,
    bottleneck: int = 8,
    activation: str = "relu",
    scale: float = 1.0,
    name: str = "adapter",
):
    r"""Add the adapter :math:`y = x + s\,(U\phi(Dx + b_D) + b_U)` after ``x``, as the block
    ``name``: ``{name}_1_dense`` is :math:`D` (with :math:`\phi`), ``{name}_2_dense`` is
    :math:`U` (zero kernel, so the block starts as the identity) and ``{name}_add`` the
    :class:`~resnet_tf.layers.Residual` join with ``alpha = s``. Returns :math:`y`.
    """
    if not isinstance(bottleneck, int) or bottleneck < 1:
        raise ValueError(f"bottleneck must be a positive integer; got {bottleneck!r}")
    h = keras.layers.Dense(bottleneck, activation=activation, name=f"{name}_1_dense")(x)
    h = keras.layers.Dense(x.shape[-1], kernel_initializer="zeros", name=f"{name}_2_dense")(h)
    # A fixed seed from the block's name: the join leaves the global random stream alone.
    return Residual(alpha=scale, seed=join_seed(name), block=name, name=f"{name}_add")([x, h])
