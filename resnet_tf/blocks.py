"""Residual blocks as functional builders: ``y = block(x, ...)``.

Each builder adds named layers to the graph with ``keras.applications``' names:
``{name}_0_*`` is the shortcut, ``{name}_1_*``, ``{name}_2_*``, ... the branch's
layers in order and ``{name}_out`` the block's output: the ReLU after the
``{name}_add`` join in post-activation blocks, the join itself in pre-activation
ones (``dense_block`` keeps ``{name}_add``). The join, a
:class:`~resnet_tf.layers.Residual`, records the block it closes, and
:func:`blocks_of` returns every block of a model as a :class:`Block`;
:func:`map_joins` rebuilds a model with its joins rewritten (:func:`with_joins` for
the common case of changing a few options of named joins, cached).

Two orderings (He et al. 2016a, 2016b):

- post-activation (v1): ``y = relu(s(x) + BN(W2 relu(BN(W1 x))))``;
- pre-activation (v2):  ``y = s(x) + W2 relu(BN(W1 relu(BN(x))))``: nothing sits
  on the shortcut, so ``dy/dx = I + dF/dx`` exactly.

Shortcuts ``s`` (the ``shortcut=`` option of every block): the identity where the
shapes agree; where they differ ``"A"`` (zero-pad, parameter-free) or ``"B"`` (1x1
projection). ``residual=False`` drops the shortcut (the plain twin, ``y = F(x)``).
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import keras
from keras import layers

from . import _deprecation
from .layers import BatchNorm, HighwayGate, Residual, ZeroPadShortcut, initializer_for

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
        kernel_initializer=initializer_for(kernel_initializer, name),
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


def _join(shortcut, branch, name, residual, alpha, beta, survival_probability, suffix="add"):
    return Residual(
        alpha=alpha,
        beta=beta,
        survival_probability=survival_probability,
        residual=residual,
        block=name,
        name=f"{name}_{suffix}",
    )([shortcut, branch])


def _plain_keyword(plain, residual):
    return _deprecation.keyword("plain", plain, "residual", residual, lambda p: not p)


def basic_block(
    x,
    filters: int,
    stride: int = 1,
    shortcut: str = "A",
    preact: bool = False,
    residual: bool = True,
    zero_init_residual: bool = False,
    survival_probability: float = 1.0,
    alpha: float = 1.0,
    beta: float = 0.0,
    use_bias: bool = False,
    bn_epsilon: float = 1e-3,
    kernel_initializer="he_normal",
    name: str = "block",
    plain: bool | None = None,
):
    r"""Two 3x3 convolutions and a shortcut: ``y = s(x) + F(x)``.

    Post-activation: :math:`F(x) = BN(W_2 * relu(BN(W_1 * x)))`, then ``relu``
    after the sum. Pre-activation: :math:`F(x) = W_2 * relu(BN(W_1 * relu(BN(x))))`
    and no activation after the sum. ``zero_init_residual`` starts the last BN
    gamma (post) or the last kernel (pre) at zero, so the block is the identity
    at initialisation. ``residual=False`` drops the shortcut: ``y = F(x)``
    (``plain=True`` is the deprecated spelling).
    """
    residual = _plain_keyword(plain, residual)
    option = check_shortcut(shortcut)
    in_channels = x.shape[-1]
    needs_projection = stride != 1 or in_channels != filters

    def make_shortcut(source):
        if not residual or not needs_projection:
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
        return _join(s, y, name, residual, alpha, beta, survival_probability, "out")

    s = make_shortcut(x)
    y = _conv(filters, 3, stride, f"{name}_1_conv", use_bias, kernel_initializer)(x)
    y = _bn(f"{name}_1_bn", bn_epsilon)(y)
    y = layers.Activation("relu", name=f"{name}_1_relu")(y)
    y = _conv(filters, 3, 1, f"{name}_2_conv", use_bias, kernel_initializer)(y)
    y = _bn(f"{name}_2_bn", bn_epsilon, zero_gamma=zero_init_residual)(y)
    y = _join(s, y, name, residual, alpha, beta, survival_probability)
    return layers.Activation("relu", name=f"{name}_out")(y)


def bottleneck_block(
    x,
    filters: int,
    stride: int = 1,
    shortcut: str = "B",
    preact: bool = False,
    residual: bool = True,
    zero_init_residual: bool = False,
    survival_probability: float = 1.0,
    expansion: int = 4,
    use_bias: bool = True,
    bn_epsilon: float = 1.001e-5,
    kernel_initializer="glorot_uniform",
    name: str = "block",
    conv_shortcut: bool | None = None,
    plain: bool | None = None,
):
    r"""1x1 reduce, 3x3, 1x1 expand (to ``expansion * filters`` channels).

    Post-activation (ResNet-50 v1, as in ``keras.applications``): the stride sits
    on the first 1x1 convolution,
    :math:`F(x) = BN(W_3 relu(BN(W_2 * relu(BN(W_1 x)))))`, ``y = relu(s(x) + F(x))``.

    Pre-activation (ResNet-50 V2): ``h = relu(BN(x))``, the stride sits on the 3x3
    convolution, :math:`F = W_3 relu(BN(W_2 * relu(BN(W_1 h))))` and ``y = s + F``
    where ``s`` is ``x`` itself, subsampled by a 1x1 max-pool when ``stride > 1``.

    ``shortcut`` acts where the shape changes (in V2: where the channel count
    changes; a stride alone max-pools the identity): ``"B"`` a 1x1 projection (of
    ``h`` in V2), ``"A"`` zero padding. The deprecated ``conv_shortcut=True/False`` forces a
    projection / the identity whatever the shapes.

    With the defaults the weights are laid out exactly as in ``keras.applications``.
    """
    residual = _plain_keyword(plain, residual)
    option = check_shortcut(shortcut)
    out_channels = expansion * filters
    # A V2 block keeps an identity across a stride alone (it max-pools it, as Keras does).
    reshaped = x.shape[-1] != out_channels or (stride != 1 and not preact)
    project = _deprecation.keyword("conv_shortcut", conv_shortcut, "shortcut", reshaped)
    if option == "A" and project and residual:
        pad = ZeroPadShortcut(out_channels, stride, name=f"{name}_0_pad")
    if preact:
        h = _bn(f"{name}_preact_bn", bn_epsilon)(x)
        h = layers.Activation("relu", name=f"{name}_preact_relu")(h)
        if not residual:
            s = x
        elif project and option == "A":
            s = pad(x)
        elif project:
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
        return _join(s, y, name, residual, 1.0, 0.0, survival_probability, "out")

    if project and residual and option == "A":
        s = pad(x)
    elif project and residual:
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
    y = _join(s, y, name, residual, 1.0, 0.0, survival_probability)
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
            units,
            activation=act,
            kernel_initializer=initializer_for(kernel_initializer, f"{name}_{i}_dense"),
            name=f"{name}_{i}_dense",
        )(y)
    return _join(x, y, name, residual, alpha, beta, 1.0)



JOINS = (Residual, HighwayGate)


@dataclass(frozen=True)
class Block:
    """One residual (or highway, or plain-twin) block of a functional model.

    ``input`` enters the block, ``output`` leaves it; ``shortcut`` and ``branch`` are
    the two tensors the ``join`` layer adds (``branch`` is ``F(x)``, or ``H(x)`` for a
    highway gate).
    """

    name: str
    join: keras.layers.Layer
    input: object
    output: object
    shortcut: object
    branch: object

    @property
    def residual(self) -> bool:
        """True when a shortcut is added (not a plain twin)."""
        return not isinstance(self.join, Residual) or self.join.residual

    @property
    def same_shape(self) -> bool:
        """True when the block maps a tensor to one of the same shape."""
        return tuple(self.input.shape[1:]) == tuple(self.output.shape[1:])


def _producers(model: keras.Model) -> dict[int, keras.layers.Layer]:
    """Tensor id -> the layer of ``model`` that computed it (layers called once)."""
    found = {}
    for layer in model.layers:
        try:
            found[id(layer.output)] = layer
        except (AttributeError, ValueError):  # a shared layer has no single output
            continue
    return found


def _single_input(layer: keras.layers.Layer):
    try:
        inputs = layer.input
    except (AttributeError, ValueError):
        return None
    if isinstance(inputs, (list, tuple)):
        return inputs[0] if len(inputs) == 1 else None
    return inputs


def blocks_of(model: keras.Model, residual_only: bool = False) -> list[Block]:
    """Every block of ``model``, in graph order, as :class:`Block` objects.

    A block is closed by its join (a :class:`~resnet_tf.layers.Residual` or
    :class:`~resnet_tf.layers.HighwayGate`), which records the block's name. The
    block's layers are the ones named ``{block}_*`` (the naming of the builders and of
    ``keras.applications``): its input is reached by walking back from the shortcut
    through them, its output is ``{block}_out`` when such a layer follows the join.
    ``residual_only=True`` leaves out plain-twin blocks (joins with ``residual=False``).
    """
    producers = _producers(model)
    names = {layer.name for layer in model.layers}
    blocks = []
    for join in model.layers:
        if not isinstance(join, JOINS):
            continue
        name = join.block
        shortcut, branch = join.input
        output = join.output
        if join.name != f"{name}_out" and f"{name}_out" in names:
            output = model.get_layer(f"{name}_out").output
        start = shortcut
        while True:
            layer = producers.get(id(start))
            if layer is None or not layer.name.startswith(f"{name}_"):
                break
            previous = _single_input(layer)
            if previous is None:
                break
            start = previous
        block = Block(name, join, start, output, shortcut, branch)
        if block.residual or not residual_only:
            blocks.append(block)
    return blocks


def select_blocks(model: keras.Model, names: Sequence[str] | str | None = None) -> list[Block]:
    """The blocks called ``names`` (all blocks when ``None``); ``ValueError`` for unknown ones."""
    blocks = blocks_of(model)
    if names is None:
        return blocks
    if isinstance(names, str):
        names = [names]
    by_name = {b.name: b for b in blocks}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(
            f"{model.name} has no block(s) {missing}; its blocks are {list(by_name) or 'none'}"
        )
    return [by_name[n] for n in names]


def map_joins(
    model: keras.Model,
    fn: Callable[[Block], keras.layers.Layer | None],
    name: str | None = None,
) -> keras.Model:
    """A copy of ``model`` whose joins are rewritten by ``fn``; every other layer is shared.

    ``fn(block)`` returns the layer that replaces ``block.join`` (for instance
    ``Residual.from_config({**block.join.get_config(), "alpha": 0.5})``), or ``None``
    to keep it. The copy shares the weights of all kept layers, so training one trains
    the other. This one rebuild serves lesions, stochastic depth, scaled residuals and
    gradient routing. A layer shared by two models reports its first call as its
    ``output``, so read blocks (:func:`blocks_of`) from ``model``, not from the copy.
    """
    by_join = {id(b.join): b for b in blocks_of(model)}

    def clone(layer):
        block = by_join.get(id(layer))
        if block is None:
            return layer
        replacement = fn(block)
        return layer if replacement is None else replacement

    copy = keras.models.clone_model(model, clone_function=clone)
    if name is not None:
        copy.name = name
    return copy


def rejoin(join: keras.layers.Layer, **changes) -> keras.layers.Layer:
    """A new join like ``join`` with some options changed: ``type(join)`` built from
    ``{**join.get_config(), **changes}`` (same name, same block).

    Only :class:`~resnet_tf.layers.Residual` joins can be rewritten: they hold no weights,
    so the rewritten model computes with exactly the weights of the original. A join
    with weights of its own (a :class:`~resnet_tf.layers.HighwayGate`) would come back
    untrained, so it raises ``ValueError``, as does an option the join does not have.
    """
    if not isinstance(join, Residual):
        raise ValueError(
            f"{join.name} is a {type(join).__name__}; only Residual joins can be rewritten "
            "(a rebuilt join with weights of its own would lose them)"
        )
    config = join.get_config()
    unknown = sorted(set(changes) - set(config))
    if unknown:
        raise ValueError(
            f"unknown join option(s) {unknown} for {join.name}; allowed: "
            f"{sorted(k for k in config if k not in ('name', 'trainable', 'dtype'))}"
        )
    return type(join).from_config({**config, **changes})


_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
COPIES_KEPT = 64  # rewritten copies remembered per model (least recently used dropped)


def with_joins(
    model: keras.Model, changes: Mapping[str, Mapping[str, object]]
) -> keras.Model:
    """A copy of ``model`` whose join of each block ``name`` in ``changes`` has the options
    ``changes[name]`` (for instance ``{"block2": {"lesioned": True}}``); everything else
    is shared with ``model``, weights included.

    This is :func:`map_joins` with :func:`rejoin`, remembered per model: asking again for
    the same changes returns the same copy, so repeated lesions or gradient routes cost
    one rebuild each. No changes at all return ``model`` itself. Unknown block names raise
    ``ValueError``.
    """
    if not changes:
        return model
    joins = {b.name: b.join for b in select_blocks(model, list(changes))}
    # The key holds the current configuration of every join rewritten, so a join whose
    # options changed since a copy was made gets a new copy.
    key = frozenset(
        (name, frozenset(options.items()), repr(sorted(joins[name].get_config().items())))
        for name, options in changes.items()
    )
    kept = _COPIES.setdefault(model, OrderedDict())
    if key in kept:
        kept.move_to_end(key)
        return kept[key]

    def fn(block):
        options = changes.get(block.name)
        return None if options is None else rejoin(block.join, **options)

    copy = map_joins(model, fn)
    kept[key] = copy
    while len(kept) > COPIES_KEPT:
        kept.popitem(last=False)
    return copy


def residual_layers(model: keras.Model) -> list[Residual]:
    """Deprecated: the :class:`Residual` joins; use ``[b.join for b in blocks_of(model)]``."""
    _deprecation.warn("blocks.residual_layers", "[b.join for b in blocks.blocks_of(model)]")
    return [b.join for b in blocks_of(model) if isinstance(b.join, Residual)]
