"""Residual blocks as functional builders: ``y = block(x, ...)``.

Each builder adds named layers to the graph, the way ``keras.applications``
does: ``{name}_0_*`` is the projection shortcut, ``{name}_1_*``, ``{name}_2_*``,
... the branch's layers in order, ``{name}_add`` the :class:`~resnet_tf.layers.Residual`
join and ``{name}_out`` the activation after it (post-activation blocks).
Analysis tools find blocks by these names.

Two orderings (He et al. 2016a, 2016b):

- post-activation (v1): ``y = relu(s(x) + BN(W2 relu(BN(W1 x))))``;
- pre-activation (v2):  ``y = s(x) + W2 relu(BN(W1 relu(BN(x))))``: nothing sits
  on the shortcut, so ``dy/dx = I + dF/dx`` exactly.

Shortcuts ``s``: ``"identity"`` when shapes agree; otherwise ``"A"`` (zero-pad,
parameter-free) or ``"B"`` (1x1 projection + BN).
"""

from __future__ import annotations

import keras
from keras import layers

from .layers import BatchNorm, Residual, ZeroPadShortcut

SHORTCUTS = ("A", "B")


def check_shortcut(shortcut: str) -> str:
    """Return the shortcut option upper-cased, or raise ``ValueError`` listing the options."""
    option = str(shortcut).upper()
    if option not in SHORTCUTS:
        raise ValueError(
            f"unknown shortcut {shortcut!r}; allowed: 'A' (zero-padding identity, "
            "parameter-free) or 'B' (1x1 projection when the shape changes)"
        )
    return option


def _conv(filters, kernel, strides, name, use_bias, kernel_initializer, padding="same"):
    return layers.Conv2D(
        filters,
        kernel,
        strides=strides,
        padding=padding,
        use_bias=use_bias,
        kernel_initializer=kernel_initializer,
        name=name,
    )


def _bn(name, epsilon, zero_gamma=False, momentum=None):
    if momentum is None:
        # Torch's running-average rate (0.1), used by the CIFAR experiments;
        # the ImageNet models keep Keras' 0.99 (their epsilon marks them).
        momentum = 0.99 if epsilon == 1.001e-5 else 0.9
    return BatchNorm(
        epsilon=epsilon,
        momentum=momentum,
        gamma_initializer="zeros" if zero_gamma else "ones",
        name=name,
    )


def _join(shortcut, branch, name, plain, alpha, beta, survival_probability):
    return Residual(
        alpha=alpha,
        beta=beta,
        survival_probability=survival_probability,
        identity=not plain,
        name=f"{name}_add",
    )([shortcut, branch])


def basic_block(
    x,
    filters: int,
    stride: int = 1,
    shortcut: str = "A",
    preact: bool = False,
    plain: bool = False,
    zero_init_residual: bool = False,
    survival_probability: float = 1.0,
    alpha: float = 1.0,
    beta: float = 0.0,
    use_bias: bool = False,
    bn_epsilon: float = 1e-3,
    kernel_initializer="he_normal",
    name: str = "block",
):
    r"""Two 3x3 convolutions and a shortcut: ``y = s(x) + F(x)``.

    Post-activation: :math:`F(x) = BN(W_2 * relu(BN(W_1 * x)))`, then ``relu``
    after the sum. Pre-activation: :math:`F(x) = W_2 * relu(BN(W_1 * relu(BN(x))))`
    and no activation after the sum. ``zero_init_residual`` starts the last BN
    gamma (post) or the last kernel (pre) at zero, so the block is the identity
    at initialisation. ``plain=True`` drops the shortcut: ``y = F(x)``.
    """
    option = check_shortcut(shortcut)
    in_channels = x.shape[-1]
    needs_projection = stride != 1 or in_channels != filters

    def make_shortcut(source):
        if plain or not needs_projection:
            return source
        if option == "A":
            return ZeroPadShortcut(filters, stride, name=f"{name}_0_pad")(source)
        s = _conv(filters, 1, stride, f"{name}_0_conv", use_bias, kernel_initializer)(source)
        return _bn(f"{name}_0_bn", bn_epsilon)(s)

    if preact:
        h = _bn(f"{name}_preact_bn", bn_epsilon)(x)
        h = layers.Activation("relu", name=f"{name}_preact_relu")(h)
        # A projection sees the normalised input; zero padding keeps x itself.
        s = make_shortcut(h if option == "B" else x)
        y = _conv(filters, 3, stride, f"{name}_1_conv", use_bias, kernel_initializer)(h)
        y = _bn(f"{name}_1_bn", bn_epsilon)(y)
        y = layers.Activation("relu", name=f"{name}_1_relu")(y)
        last_init = "zeros" if zero_init_residual else kernel_initializer
        y = _conv(filters, 3, 1, f"{name}_2_conv", use_bias, last_init)(y)
        return _join(s, y, name, plain, alpha, beta, survival_probability)

    s = make_shortcut(x)
    y = _conv(filters, 3, stride, f"{name}_1_conv", use_bias, kernel_initializer)(x)
    y = _bn(f"{name}_1_bn", bn_epsilon)(y)
    y = layers.Activation("relu", name=f"{name}_1_relu")(y)
    y = _conv(filters, 3, 1, f"{name}_2_conv", use_bias, kernel_initializer)(y)
    y = _bn(f"{name}_2_bn", bn_epsilon, zero_gamma=zero_init_residual)(y)
    y = _join(s, y, name, plain, alpha, beta, survival_probability)
    return layers.Activation("relu", name=f"{name}_out")(y)


def bottleneck_block(
    x,
    filters: int,
    stride: int = 1,
    conv_shortcut: bool = True,
    preact: bool = False,
    plain: bool = False,
    zero_init_residual: bool = False,
    survival_probability: float = 1.0,
    expansion: int = 4,
    use_bias: bool = True,
    bn_epsilon: float = 1.001e-5,
    kernel_initializer="glorot_uniform",
    name: str = "block",
):
    r"""1x1 reduce, 3x3, 1x1 expand (to ``expansion * filters`` channels).

    Post-activation (ResNet-50 v1, as in ``keras.applications``): the stride sits
    on the first 1x1 convolution,
    :math:`F(x) = BN(W_3 relu(BN(W_2 * relu(BN(W_1 x)))))`, ``y = relu(s(x) + F(x))``.

    Pre-activation (ResNet-50 V2): ``h = relu(BN(x))``, the stride sits on the 3x3
    convolution, :math:`F = W_3 relu(BN(W_2 * relu(BN(W_1 h))))` and ``y = s + F``
    where ``s`` is a 1x1 projection of ``h`` (``conv_shortcut``) or ``x``
    itself, subsampled by a 1x1 max-pool when ``stride > 1``.

    With the defaults the weights are laid out exactly as in ``keras.applications``.
    """
    out_channels = expansion * filters
    if preact:
        h = _bn(f"{name}_preact_bn", bn_epsilon)(x)
        h = layers.Activation("relu", name=f"{name}_preact_relu")(h)
        if plain:
            s = x
        elif conv_shortcut:
            s = _conv(out_channels, 1, stride, f"{name}_0_conv", True, kernel_initializer)(h)
        else:
            # Keras' V2 layout: an identity shortcut subsampled by a 1x1 max-pool.
            pool = layers.MaxPooling2D(1, strides=stride, name=f"{name}_0_pool")
            s = pool(x) if stride > 1 else x
        y = _conv(filters, 1, 1, f"{name}_1_conv", False, kernel_initializer)(h)
        y = _bn(f"{name}_1_bn", bn_epsilon)(y)
        y = layers.Activation("relu", name=f"{name}_1_relu")(y)
        y = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name=f"{name}_2_pad")(y)
        y = _conv(filters, 3, stride, f"{name}_2_conv", False, kernel_initializer, "valid")(y)
        y = _bn(f"{name}_2_bn", bn_epsilon)(y)
        y = layers.Activation("relu", name=f"{name}_2_relu")(y)
        last_init = "zeros" if zero_init_residual else kernel_initializer
        y = _conv(out_channels, 1, 1, f"{name}_3_conv", True, last_init)(y)
        return _join(s, y, name, plain, 1.0, 0.0, survival_probability)

    if conv_shortcut and not plain:
        s = _conv(out_channels, 1, stride, f"{name}_0_conv", use_bias, kernel_initializer)(x)
        s = _bn(f"{name}_0_bn", bn_epsilon)(s)
    else:
        s = x
    y = _conv(filters, 1, stride, f"{name}_1_conv", use_bias, kernel_initializer)(x)
    y = _bn(f"{name}_1_bn", bn_epsilon)(y)
    y = layers.Activation("relu", name=f"{name}_1_relu")(y)
    y = _conv(filters, 3, 1, f"{name}_2_conv", use_bias, kernel_initializer)(y)
    y = _bn(f"{name}_2_bn", bn_epsilon)(y)
    y = layers.Activation("relu", name=f"{name}_2_relu")(y)
    y = _conv(out_channels, 1, 1, f"{name}_3_conv", use_bias, kernel_initializer)(y)
    y = _bn(f"{name}_3_bn", bn_epsilon, zero_gamma=zero_init_residual)(y)
    y = _join(s, y, name, plain, 1.0, 0.0, survival_probability)
    return layers.Activation("relu", name=f"{name}_out")(y)


def dense_block(
    x,
    units: int | None = None,
    residual: bool = True,
    activation: str = "relu",
    branch_layers: int = 2,
    alpha: float = 1.0,
    beta: float = 0.0,
    normalization: str | None = None,
    kernel_initializer="he_normal",
    name: str = "block",
):
    r"""A fully connected block for the toy experiments.

    :math:`F(x) = W_k \phi(\dots \phi(W_1 N(x)))` with ``branch_layers = k``
    Dense layers (the last one linear), optional pre-normalisation ``N``
    (``"layer"`` or ``"batch"``), and ``y = (1-beta) x + alpha F(x)`` (residual)
    or ``y = phi(F(x))`` (plain: the last layer gets the activation instead).
    """
    if branch_layers < 1:
        raise ValueError(f"branch_layers must be >= 1; got {branch_layers}")
    if normalization not in (None, "layer", "batch"):
        raise ValueError(
            f"unknown normalization {normalization!r}; allowed: None, 'layer', 'batch'"
        )
    units = units or x.shape[-1]
    y = x
    if normalization == "layer":
        y = layers.LayerNormalization(name=f"{name}_norm")(y)
    elif normalization == "batch":
        y = layers.BatchNormalization(name=f"{name}_norm")(y)
    for i in range(1, branch_layers + 1):
        last = i == branch_layers
        act = activation if (not last or not residual) else None
        y = layers.Dense(
            units, activation=act, kernel_initializer=kernel_initializer, name=f"{name}_{i}_dense"
        )(y)
    return Residual(alpha=alpha, beta=beta, identity=residual, name=f"{name}_add")([x, y])


def residual_layers(model: keras.Model) -> list[Residual]:
    """The :class:`Residual` joins of ``model``, in order (one per block)."""
    return [layer for layer in model.layers if isinstance(layer, Residual)]
