"""ImageNet ResNets with the ``keras.applications`` signature.

One assembler, :func:`ResNet`, takes a ``stack_fn`` that adds the residual
stages; the named constructors only choose the stages. ResNet-50/101/152 and
their V2 variants lay out their weights exactly as ``keras.applications`` does
(same layers, same order), so ``ours.set_weights(reference.get_weights())``
reproduces the reference's outputs. ResNet-18/34 use basic blocks, no biases and
projection shortcuts where the shape changes (11,689,512 and 21,797,672
trainable parameters, as in the paper's Table 1 implementations).

``weights`` is ``None`` (random initialisation) or the path of a local
``.weights.h5`` / ``.keras`` file; nothing is downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import keras
from keras import layers

from ..blocks import basic_block, bottleneck_block
from ..layers import BatchNorm

BN_EPSILON = 1.001e-5


def _check_weights(weights) -> None:
    if weights is None:
        return
    if weights == "imagenet":
        raise ValueError(
            "weights='imagenet' would need a download, which resnet_tf never does; pass "
            "weights=None or the path of a local weights file (for example one saved from "
            "keras.applications with model.save_weights('resnet50.weights.h5'))"
        )
    if not (isinstance(weights, (str, os.PathLike)) and os.path.exists(weights)):
        raise ValueError(f"weights must be None or the path of an existing file; got {weights!r}")


def ResNet(
    stack_fn: Callable,
    preact: bool,
    use_bias: bool,
    include_top: bool = True,
    weights: str | None = None,
    input_tensor=None,
    input_shape: tuple | None = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | None = "softmax",
    name: str = "resnet",
) -> keras.Model:
    """Assemble stem, ``stack_fn(x)`` stages and head into a functional model.

    Stem: 7x7/2 convolution (64), BN-ReLU (post-activation only), 3x3/2 max-pool.
    Head: final BN-ReLU (pre-activation only), then global average pooling and a
    dense classifier (``include_top``) or the optional ``pooling``.
    """
    _check_weights(weights)
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling must be None, 'avg' or 'max'; got {pooling!r}")
    if input_shape is None:
        input_shape = (224, 224, 3) if include_top else (None, None, 3)
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels); got {input_shape!r}")
    if input_tensor is None:
        img_input = keras.Input(shape=input_shape)
    elif not keras.backend.is_keras_tensor(input_tensor):
        img_input = keras.Input(tensor=input_tensor, shape=input_shape)
    else:
        img_input = input_tensor

    x = layers.ZeroPadding2D(padding=((3, 3), (3, 3)), name="conv1_pad")(img_input)
    x = layers.Conv2D(64, 7, strides=2, use_bias=use_bias, name="conv1_conv")(x)
    if not preact:
        x = BatchNorm(epsilon=BN_EPSILON, name="conv1_bn")(x)
        x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    x = stack_fn(x)
    if preact:
        x = BatchNorm(epsilon=BN_EPSILON, name="post_bn")(x)
        x = layers.Activation("relu", name="post_relu")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)

    inputs = img_input
    if input_tensor is not None:
        inputs = keras.utils.get_source_inputs(input_tensor)
    model = keras.Model(inputs, x, name=name)
    if weights is not None:
        if str(weights).endswith(".keras"):
            model.set_weights(keras.saving.load_model(weights, compile=False).get_weights())
        else:
            model.load_weights(weights)
    return model


def stack_bottleneck_v1(x, filters: int, blocks: int, stride1: int = 2, name: str = "stage"):
    """``blocks`` post-activation bottleneck blocks; the first projects and strides."""
    x = bottleneck_block(x, filters, stride=stride1, name=f"{name}_block1")
    for i in range(2, blocks + 1):
        x = bottleneck_block(x, filters, name=f"{name}_block{i}")
    return x


def stack_bottleneck_v2(x, filters: int, blocks: int, stride1: int = 2, name: str = "stage"):
    """``blocks`` pre-activation bottleneck blocks; the last one strides (Keras V2 layout)."""
    x = bottleneck_block(x, filters, preact=True, name=f"{name}_block1")
    for i in range(2, blocks):
        x = bottleneck_block(x, filters, preact=True, name=f"{name}_block{i}")
    return bottleneck_block(
        x, filters, stride=stride1, preact=True, name=f"{name}_block{blocks}"
    )


def stack_basic(x, filters: int, blocks: int, stride1: int = 2, name: str = "stage"):
    """``blocks`` post-activation basic blocks with projection (B) shortcuts."""
    for i in range(1, blocks + 1):
        x = basic_block(
            x,
            filters,
            stride=stride1 if i == 1 else 1,
            shortcut="B",
            bn_epsilon=BN_EPSILON,
            name=f"{name}_block{i}",
        )
    return x


def _stages(stack, filters_blocks, last_stride1=2):
    def stack_fn(x):
        for i, (filters, blocks) in enumerate(filters_blocks):
            if stack is stack_bottleneck_v2:
                stride1 = 1 if i == len(filters_blocks) - 1 else 2
            else:
                stride1 = 1 if i == 0 else 2
            x = stack(x, filters, blocks, stride1=stride1, name=f"conv{i + 2}")
        return x

    return stack_fn


def _constructor(stack, counts, preact, use_bias, default_name, doc):
    widths = (64, 128, 256, 512)

    def build(
        include_top: bool = True,
        weights: str | None = None,
        input_tensor=None,
        input_shape: tuple | None = None,
        pooling: str | None = None,
        classes: int = 1000,
        classifier_activation: str | None = "softmax",
        name: str = default_name,
    ) -> keras.Model:
        return ResNet(
            _stages(stack, list(zip(widths, counts, strict=True))),
            preact=preact,
            use_bias=use_bias,
            include_top=include_top,
            weights=weights,
            input_tensor=input_tensor,
            input_shape=input_shape,
            pooling=pooling,
            classes=classes,
            classifier_activation=classifier_activation,
            name=name,
        )

    build.__name__ = build.__qualname__ = default_name
    build.__doc__ = doc
    return build


ResNet18 = _constructor(stack_basic, (2, 2, 2, 2), False, False, "resnet18",
                        "ResNet-18: basic blocks (2, 2, 2, 2).")
ResNet34 = _constructor(stack_basic, (3, 4, 6, 3), False, False, "resnet34",
                        "ResNet-34: basic blocks (3, 4, 6, 3).")
ResNet50 = _constructor(stack_bottleneck_v1, (3, 4, 6, 3), False, True, "resnet50",
                        "ResNet-50: bottleneck blocks (3, 4, 6, 3); = keras.applications.ResNet50.")
ResNet101 = _constructor(stack_bottleneck_v1, (3, 4, 23, 3), False, True, "resnet101",
                         "ResNet-101: bottleneck blocks (3, 4, 23, 3); = keras.applications.")
ResNet152 = _constructor(stack_bottleneck_v1, (3, 8, 36, 3), False, True, "resnet152",
                         "ResNet-152: bottleneck blocks (3, 8, 36, 3); = keras.applications.")
ResNet50V2 = _constructor(stack_bottleneck_v2, (3, 4, 6, 3), True, True, "resnet50v2",
                          "ResNet-50 V2 (pre-activation); = keras.applications.ResNet50V2.")
ResNet101V2 = _constructor(stack_bottleneck_v2, (3, 4, 23, 3), True, True, "resnet101v2",
                           "ResNet-101 V2 (pre-activation); = keras.applications.")
ResNet152V2 = _constructor(stack_bottleneck_v2, (3, 8, 36, 3), True, True, "resnet152v2",
                           "ResNet-152 V2 (pre-activation); = keras.applications.")
