"""CIFAR-style ResNets (He et al. 2015, section 4.2) and their plain twins.

A 3x3 stem convolution, three stages of ``n`` basic blocks at widths
``w, 2w, 4w`` (feature maps 32, 16, 8 for 32x32 inputs), global average pooling
and a classifier: ``6n + 2`` weighted layers. With ``w = 16`` and option A the
trainable parameter counts are 269,722 / 464,154 / 658,586 / 853,018 /
1,727,962 for depth 20 / 32 / 44 / 56 / 110.
"""

from __future__ import annotations

import keras
from keras import layers

from .. import _deprecation
from ..blocks import basic_block, check_shortcut
from ..layers import BatchNorm

COMMON_DEPTHS = (20, 32, 44, 56, 110, 1202)


def blocks_per_stage(depth: int) -> int:
    """``n`` for a depth ``6n + 2``; ``ValueError`` for any other depth."""
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 8 or (depth - 2) % 6:
        examples = ", ".join(str(d) for d in COMMON_DEPTHS)
        raise ValueError(
            f"depth must be 6n+2 with n >= 1 ({examples}, ...); got {depth!r}"
        )
    return (depth - 2) // 6


def cifar_resnet(
    depth: int = 20,
    shortcut: str = "A",
    preact: bool = False,
    residual: bool = True,
    classes: int = 10,
    width: int = 16,
    zero_init_residual: bool = False,
    input_shape: tuple = (32, 32, 3),
    survival_probability: float = 1.0,
    alpha: float = 1.0,
    beta: float = 0.0,
    classifier_activation: str | None = "softmax",
    name: str | None = None,
    plain: bool | None = None,
) -> keras.Model:
    r"""The CIFAR ResNet of depth ``6n + 2`` (or its plain twin).

    Args:
        depth: 20, 32, 44, 56, 110, ... (``6n + 2``).
        shortcut: ``"A"`` zero-padding (parameter-free) or ``"B"`` 1x1 projection
            where the shape changes; identity everywhere else.
        preact: pre-activation blocks (ResNet v2 ordering), with a final BN-ReLU.
        residual: ``False`` drops every shortcut (the "plain" baseline of the paper;
            ``plain=True`` is the deprecated spelling).
        classes: outputs of the classifier.
        width: channels of the first stage (16 in the paper); stages use
            ``width, 2 width, 4 width``.
        zero_init_residual: each block starts as the identity.
        input_shape: ``(height, width, channels)``, e.g. ``(16, 16, 1)`` for digits.
        survival_probability: stochastic depth; the survival probability decays
            linearly from 1 at the first block to this value at the last.
        alpha, beta: the scaled residual ``y = (1 - beta) x + alpha F(x)``.
        classifier_activation: ``"softmax"`` or ``None`` for logits.
        name: the model's name; by default the name :func:`resnet_tf.models.build`
            reads back: ``cifar_resnet<d>``, ``cifar_preact<d>`` or ``cifar_plain<d>``.
    """
    residual = _deprecation.keyword("plain", plain, "residual", residual, lambda p: not p)
    n = blocks_per_stage(depth)
    option = check_shortcut(shortcut)
    if not isinstance(width, int) or width <= 0:
        raise ValueError(f"width must be a positive integer (16 in the paper); got {width!r}")
    if not isinstance(classes, int) or classes < 1:
        raise ValueError(f"classes must be a positive integer; got {classes!r}")
    if len(input_shape) != 3 or any(s is not None and s < 4 for s in input_shape[:2]):
        raise ValueError(
            "input_shape must be (height, width, channels) with height and width >= 4, "
            f"e.g. (32, 32, 3); got {input_shape!r}"
        )
    kind = "plain" if not residual else ("preact" if preact else "resnet")
    name = name or f"cifar_{kind}{depth}"

    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(
        width, 3, padding="same", use_bias=False, kernel_initializer="he_normal", name="stem_conv"
    )(inputs)
    if not preact:
        x = BatchNorm(momentum=0.9, name="stem_bn")(x)
        x = layers.Activation("relu", name="stem_relu")(x)
    total = 3 * n
    index = 0
    for stage in range(3):
        filters = width * 2**stage
        for b in range(n):
            stride = 2 if (stage > 0 and b == 0) else 1
            # Linear decay rule of Huang et al. (2016): p_l = 1 - l/L (1 - p_L).
            p = 1.0 - (index + 1) / total * (1.0 - survival_probability)
            x = basic_block(
                x,
                filters,
                stride=stride,
                shortcut=option,
                preact=preact,
                residual=residual,
                zero_init_residual=zero_init_residual,
                survival_probability=p,
                alpha=alpha,
                beta=beta,
                name=f"stage{stage + 1}_block{b + 1}",
            )
            index += 1
    if preact:
        x = BatchNorm(momentum=0.9, name="post_bn")(x)
        x = layers.Activation("relu", name="post_relu")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(
        classes, activation=classifier_activation, dtype="float32", name="predictions"
    )(x)
    return keras.Model(inputs, outputs, name=name)


def cifar_plain(depth: int = 20, **kwargs) -> keras.Model:
    """The plain twin of :func:`cifar_resnet`: same layers, no shortcuts."""
    return cifar_resnet(depth, residual=False, **kwargs)
