"""The layers residual networks are assembled from.

Every layer here is registered with Keras (package ``resnet_tf``) and has a
``get_config``, so any model built from them saves to ``.keras`` and loads back.

- :class:`BatchNorm`: ``keras.layers.BatchNormalization`` with TensorFlow's
  fused kernel on 4-D channels-last inputs (same weights, same results, faster).
- :class:`ZeroPadShortcut`: the parameter-free shortcut "option A".
- :class:`Residual`: the join ``y = (1 - beta) x + alpha F(x)``, with
  stochastic depth, a lesioned form ``y = x`` and gradient routing (both set in the
  config, so :func:`resnet_tf.blocks.map_joins` makes them); ``residual=False`` makes it
  the plain twin's pass-through ``y = F(x)``. The join records the block it closes
  (``block``), so :func:`resnet_tf.blocks.blocks_of` finds blocks without parsing names.
- :class:`HighwayGate`: the highway join ``y = T(x) H(x) + (1 - T(x)) x``.
"""

from __future__ import annotations

import zlib

import keras
from keras import ops

from . import _deprecation

_PACKAGE = "resnet_tf"
GRADIENT_ROUTES = ("both", "branch", "shortcut")


# Options of ``keras.layers.BatchNormalization`` that the fused kernel does not implement.
# Each is read from the layer's public config, so a Keras release that lacks the option
# (``renorm`` arrived in Keras 3.14) simply never has it switched on.
_UNFUSED_OPTIONS = ("renorm", "synchronized")


def _fused_ok(layer: keras.layers.BatchNormalization, inputs, mask) -> bool:
    """True when TensorFlow's fused batch norm computes exactly what Keras would."""
    if keras.backend.backend() != "tensorflow" or mask is not None:
        return False
    if len(inputs.shape) != 4 or layer.axis not in (-1, 3):
        return False
    config = layer.get_config()
    if any(config.get(option) for option in _UNFUSED_OPTIONS):
        return False
    return keras.backend.standardize_dtype(inputs.dtype) in ("float32", "float16")


def initializer_for(initializer, layer_name: str):
    """Return an initializer that belongs to the layer ``layer_name`` alone.

    A Keras 3 initializer *instance* keeps its seed, so one instance handed to
    several layers fills every kernel of the same shape with the same numbers.
    Strings, dicts and plain callables are returned unchanged (Keras makes a new
    initializer per layer from them). An :class:`keras.initializers.Initializer`
    is rebuilt from its config; a seed :math:`s` becomes
    :math:`(s + \\mathrm{crc32}(\\text{layer\\_name})) \\bmod 2^{31}`, so a seeded model
    is still the same model on every build while its layers draw distinct kernels,
    and an unseeded one draws a fresh seed per layer. Initializers without a seed
    (``Zeros``, ``Constant``, ...) or seeded by a ``keras.random.SeedGenerator``
    (which advances on every draw) are returned unchanged.
    """
    if not isinstance(initializer, keras.initializers.Initializer):
        return initializer
    config = initializer.get_config()
    if "seed" not in config or not isinstance(config["seed"], int | None):
        return initializer  # no seed, or a SeedGenerator: it advances on every draw
    if config["seed"] is not None:
        config["seed"] = (int(config["seed"]) + zlib.crc32(layer_name.encode())) % 2**31
    return type(initializer).from_config(config)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BatchNorm(keras.layers.BatchNormalization):
    r"""Batch normalization that runs TensorFlow's fused kernel when it can.

    Implements, per channel :math:`c` over the batch and spatial axes,

    .. math:: y = \gamma_c \frac{x - \mu_c}{\sqrt{\sigma_c^2 + \epsilon}} + \beta_c,

    with batch statistics while training and moving averages
    :math:`m \leftarrow \rho\, m + (1-\rho)\, \mu` (likewise for the biased
    variance) otherwise. Keras 3 computes this with separate element-wise ops;
    on NHWC tensors this layer calls ``FusedBatchNormV3`` instead, which is
    markedly faster on CPU (oneDNN) and GPU (cuDNN). Weights, their order and
    names are those of ``keras.layers.BatchNormalization``, so weights copy
    across in either direction. Other inputs (masks, renorm, channels-first,
    2-D tensors, other backends) fall back to the stock implementation.
    """

    def call(self, inputs, training=None, mask=None):
        if not _fused_ok(self, inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        channels = inputs.shape[-1]
        gamma = (
            tf.cast(self.gamma, tf.float32) if self.scale else tf.ones([channels], tf.float32)
        )
        beta = tf.cast(self.beta, tf.float32) if self.center else tf.zeros([channels], tf.float32)
        if training and self.trainable:
            outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, epsilon=self.epsilon, data_format="NHWC", is_training=True
            )
            # The kernel reports the Bessel-corrected variance n/(n-1) s^2;
            # Keras tracks the biased one, so undo the correction.
            count = tf.cast(tf.size(inputs) // channels, tf.float32)
            variance = variance * (count - 1.0) / tf.maximum(count, 1.0)
            momentum = self.momentum
            self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
            self.moving_variance.assign(
                self.moving_variance * momentum + variance * (1.0 - momentum)
            )
        else:
            outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
                inputs,
                gamma,
                beta,
                mean=tf.cast(self.moving_mean, tf.float32),
                variance=tf.cast(self.moving_variance, tf.float32),
                epsilon=self.epsilon,
                data_format="NHWC",
                is_training=False,
            )
        return ops.cast(outputs, self.compute_dtype)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ZeroPadShortcut(keras.layers.Layer):
    r"""Parameter-free shortcut (the paper's option A).

    Subsamples space by ``strides`` and appends zero channels up to ``filters``:

    .. math:: s(x)_{i,j,c} = x_{s i,\, s j,\, c} \text{ for } c < C_{in}, \quad 0 \text{ otherwise}.

    The zeros are split between the front and the back of the channel axis as
    evenly as possible.
    """

    def __init__(self, filters: int, strides: int = 2, **kwargs):
        super().__init__(**kwargs)
        if filters <= 0 or strides <= 0:
            raise ValueError(
                f"ZeroPadShortcut needs filters > 0 and strides > 0; got "
                f"filters={filters}, strides={strides}"
            )
        self.filters = int(filters)
        self.strides = int(strides)

    def call(self, inputs):
        x = inputs[:, :: self.strides, :: self.strides, :]
        extra = self.filters - inputs.shape[-1]
        if extra < 0:
            raise ValueError(
                f"ZeroPadShortcut cannot shrink {inputs.shape[-1]} channels to {self.filters}; "
                "use a projection shortcut (option B) instead"
            )
        front = extra // 2
        return ops.pad(x, [[0, 0], [0, 0], [0, 0], [front, extra - front]])

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape

        def down(size):
            return None if size is None else -(-size // self.strides)

        return (n, down(h), down(w), self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}


def join_seed(block: str) -> int:
    r"""A fixed seed for the join of ``block``: :math:`\mathrm{crc32}(\text{block}) \bmod 2^{31}`.

    Distinct blocks get distinct random streams (stochastic depth drops each block on
    its own), and building the join takes nothing from the global random stream.
    """
    return zlib.crc32(block.encode()) % 2**31


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Residual(keras.layers.Layer):
    r"""Join a shortcut ``x`` and a residual branch ``F(x)``.

    .. math:: y = (1 - \beta)\, x + \alpha\, b\, F(x)

    - ``alpha=1, beta=0`` is the ordinary residual sum ``y = x + F(x)``;
      other values give the scaled residual of the stability analysis, whose
      Jacobian norm is at most 1 when ``alpha <= beta / Lip(F)``.
    - ``survival_probability = p < 1`` is stochastic depth: while training
      ``b ~ Bernoulli(p)`` per example; at test time ``b = p`` (its mean).
    - ``residual=False`` is the plain twin: the shortcut is ignored, ``y = F(x)``.
    - ``block`` names the block this join closes (the builders of
      :mod:`resnet_tf.blocks` set it); by default the layer name without a
      trailing ``_add`` / ``_out``.

    - ``lesioned=True`` removes the branch: the join returns ``y = x`` for residual and
      plain joins alike (a layer after the join, such as a Post-LN transformer block's
      normalisation, still applies). :func:`resnet_tf.analysis.lesioned` builds such a
      copy of a model with :func:`resnet_tf.blocks.map_joins`.
    - ``gradient`` routes the backward pass without changing the forward value:
      ``"both"`` (default), ``"branch"`` (no gradient into the shortcut, :math:`x`
      enters as ``stop_gradient(x)``) or ``"shortcut"`` (no gradient into
      :math:`F(x)`); :func:`resnet_tf.analysis.path_gradient` uses it.

    Setting the attribute ``lesioned`` on a built layer still works in eager calls but
    is deprecated: a compiled function does not see it change.
    """

    def __init__(
        self,
        alpha: float = 1.0,
        beta: float = 0.0,
        survival_probability: float = 1.0,
        residual: bool = True,
        seed: int | None = None,
        block: str | None = None,
        identity: bool | None = None,
        lesioned: bool = False,
        gradient: str = "both",
        **kwargs,
    ):
        super().__init__(**kwargs)
        residual = _deprecation.keyword("identity", identity, "residual", residual)
        if gradient not in GRADIENT_ROUTES:
            raise ValueError(
                f"unknown gradient route {gradient!r}; allowed: {', '.join(GRADIENT_ROUTES)}"
            )
        if not 0.0 < survival_probability <= 1.0:
            raise ValueError(
                f"survival_probability must be in (0, 1]; got {survival_probability}"
            )
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1]; got {beta}")
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.survival_probability = float(survival_probability)
        self.residual = bool(residual)
        self.block = block or _strip_join_suffix(self.name)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._lesioned = bool(lesioned)
        self.gradient = gradient

    @property
    def lesioned(self) -> bool:
        """True when the join returns its shortcut alone, ``y = x``."""
        return self._lesioned

    @lesioned.setter
    def lesioned(self, value: bool) -> None:
        _deprecation.warn(
            "setting Residual.lesioned",
            "analysis.lesioned(model, blocks) or Residual(lesioned=True)",
        )
        self._lesioned = bool(value)

    def call(self, inputs, training=None):
        shortcut, branch = inputs
        if self._lesioned:
            return shortcut
        if self.gradient == "branch":
            shortcut = ops.stop_gradient(shortcut)
        elif self.gradient == "shortcut":
            branch = ops.stop_gradient(branch)
        if self.survival_probability < 1.0:
            p = self.survival_probability
            if training:
                batch = ops.shape(branch)[0]
                keep_shape = (batch,) + (1,) * (len(branch.shape) - 1)
                keep = keras.random.uniform(keep_shape, seed=self.seed_generator) < p
                branch = branch * ops.cast(keep, branch.dtype)
            else:
                branch = branch * p
        if self.alpha != 1.0:
            branch = branch * self.alpha
        if not self.residual:
            return branch
        if self.beta != 0.0:
            shortcut = shortcut * (1.0 - self.beta)
        return shortcut + branch

    def compute_output_shape(self, input_shape):
        return input_shape[1]

    def get_config(self):
        return {
            **super().get_config(),
            "alpha": self.alpha,
            "beta": self.beta,
            "survival_probability": self.survival_probability,
            "residual": self.residual,
            "seed": self.seed,
            "block": self.block,
            "lesioned": self._lesioned,
            "gradient": self.gradient,
        }

    @property
    def identity(self) -> bool:
        """Deprecated spelling of :attr:`residual`."""
        _deprecation.warn("Residual.identity", "Residual.residual")
        return self.residual

    def __dir__(self):
        # Keras' saver reads every attribute dir() lists; keep the deprecated one out.
        return [name for name in super().__dir__() if name != "identity"]


def _strip_join_suffix(name: str) -> str:
    """A join's default block name: its layer name without ``_add`` or ``_out``."""
    for suffix in ("_add", "_out"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


@keras.saving.register_keras_serializable(package=_PACKAGE)
class HighwayGate(keras.layers.Layer):
    r"""Highway join of a carry path ``x`` and a transform ``H(x)``.

    .. math:: T(x) = \sigma(x W_T + b_T), \qquad y = T(x) \odot H(x) + (1 - T(x)) \odot x

    The gate acts on the last axis (a 1x1 convolution for images). A negative
    ``gate_bias`` starts the layer close to the carry (identity) behaviour.
    When ``T -> 1`` the identity path closes and the layer is a plain layer.
    """

    def __init__(self, gate_bias: float = -2.0, block: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.gate_bias = float(gate_bias)
        self.block = block or _strip_join_suffix(self.name)

    def build(self, input_shape):
        channels = input_shape[0][-1]
        self.gate = keras.layers.Dense(
            channels,
            activation="sigmoid",
            bias_initializer=keras.initializers.Constant(self.gate_bias),
            name="gate",
        )
        self.gate.build(input_shape[0])

    def transform_gate(self, x):
        """The gate ``T(x)`` in (0, 1), same shape as ``x``."""
        return self.gate(x)

    def call(self, inputs):
        x, h = inputs
        t = self.gate(x)
        return t * h + (1.0 - t) * x

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "gate_bias": self.gate_bias, "block": self.block}
