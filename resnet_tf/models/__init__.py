"""Model constructors: CIFAR ResNets and plain twins, ImageNet ResNets, MLPs."""

from __future__ import annotations

import keras

from .cifar import blocks_per_stage, cifar_plain, cifar_resnet
from .imagenet import (
    ResNet,
    ResNet18,
    ResNet34,
    ResNet50,
    ResNet50V2,
    ResNet101,
    ResNet101V2,
    ResNet152,
    ResNet152V2,
)
from .mlp import mlp, plain_mlp, residual_mlp

__all__ = [
    "ResNet", "ResNet18", "ResNet34", "ResNet50", "ResNet101", "ResNet152",
    "ResNet50V2", "ResNet101V2", "ResNet152V2", "blocks_per_stage", "build",
    "cifar_plain", "cifar_resnet", "load_model", "mlp", "plain_mlp", "residual_mlp",
    "NAMED_MODELS",
]

# The ImageNet models by name; build() also reads the CIFAR names (cifar_resnet20, ...).
NAMED_MODELS = {
    "resnet18": ResNet18, "resnet34": ResNet34, "resnet50": ResNet50,
    "resnet101": ResNet101, "resnet152": ResNet152, "resnet50v2": ResNet50V2,
    "resnet101v2": ResNet101V2, "resnet152v2": ResNet152V2,
}


def build(name: str, **kwargs) -> keras.Model:
    """Build a model by name; the model's ``name`` is ``name`` (``build(n).name == n``).

    Names: ``cifar_resnet<d>``, ``cifar_preact<d>``, ``cifar_plain<d>`` (``d = 6n + 2``),
    the short ``resnet<d>`` / ``plain<d>`` of the CIFAR experiments (when ``d`` is not an
    ImageNet depth), and the ImageNet models of :data:`NAMED_MODELS`. Other keyword
    arguments go to the constructor. An unknown name raises ``ValueError`` listing the
    allowed ones.
    """
    key = name.lower()
    kwargs.setdefault("name", key)
    if key in NAMED_MODELS:
        return NAMED_MODELS[key](**kwargs)
    for prefix, extra in (
        ("cifar_resnet", {}),
        ("cifar_preact", {"preact": True}),
        ("cifar_plain", {"residual": False}),
        ("resnet", {}),
        ("plain", {"residual": False}),
    ):
        if key.startswith(prefix) and key[len(prefix):].isdigit():
            return cifar_resnet(int(key[len(prefix):]), **extra, **kwargs)
    allowed = (
        "cifar_resnet<6n+2>, cifar_preact<6n+2>, cifar_plain<6n+2>, resnet<6n+2>, "
        "plain<6n+2>, " + ", ".join(NAMED_MODELS)
    )
    raise ValueError(f"unknown model {name!r}; allowed: {allowed}")


def load_model(path, compile: bool = True) -> keras.Model:
    """Load a ``.keras`` file saved from any ``resnet_tf`` model.

    Imports every module that registers serializable objects (layers, the
    training schedule, optimizer and loss, the implicit layer, the application
    layers) before calling ``keras.saving.load_model``, so a trained and
    compiled model loads in a fresh process.
    """
    import importlib

    for module in ("layers", "training", "dynamics", "applications"):
        importlib.import_module(f"resnet_tf.{module}")
    return keras.saving.load_model(path, compile=compile)
