"""Helpers shared by the analyses: the block a layer belongs to, losses, probe callbacks.

The blocks themselves are :func:`resnet_tf.blocks.blocks_of` (re-exported here with
:class:`~resnet_tf.blocks.Block` and :func:`~resnet_tf.blocks.select_blocks`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from .. import _deprecation
from ..blocks import Block, blocks_of, select_blocks  # noqa: F401 (re-exported)


def find_blocks(model: keras.Model) -> list[Block]:
    """Deprecated spelling of :func:`resnet_tf.blocks.blocks_of`."""
    _deprecation.warn("analysis.find_blocks", "resnet_tf.blocks.blocks_of")
    return blocks_of(model)


def block_of(layer_name: str, block_names: Sequence[str]) -> str | None:
    """The block a layer belongs to (the longest matching ``{block}_`` prefix), or ``None``."""
    matches = [b for b in block_names if layer_name.startswith(f"{b}_")]
    return max(matches, key=len) if matches else None


def as_batch(x) -> tf.Tensor:
    """``x`` as a float32 tensor."""
    return tf.convert_to_tensor(np.asarray(x, dtype="float32") if not tf.is_tensor(x) else x)


def ends_in_softmax(model: keras.Model) -> bool:
    """True when the last layer applies a softmax (its outputs are probabilities)."""
    activation = getattr(model.layers[-1], "activation", None)
    return getattr(activation, "__name__", "") == "softmax"


def resolve_loss(model: keras.Model, y, loss=None) -> Callable:
    """The loss to differentiate (averaged over the batch when it returns one value per
    example): ``loss`` if given, the compiled loss, or a default.

    Defaults: integer targets use sparse categorical cross-entropy (on logits unless
    the model ends in a softmax); float targets use the mean squared error.
    """
    if loss is None:
        loss = getattr(model, "loss", None)
    if loss is not None:
        return keras.losses.get(loss) if isinstance(loss, str) else loss
    y = np.asarray(y)
    if np.issubdtype(y.dtype, np.integer):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=not ends_in_softmax(model))
    return keras.losses.MeanSquaredError()


@contextlib.contextmanager
def preserved_state(model: keras.Model) -> Iterator[None]:
    """Restore the non-trainable variables (BN moving statistics) on exit."""
    saved = [v.numpy() for v in model.non_trainable_variables]
    try:
        yield
    finally:
        for variable, value in zip(model.non_trainable_variables, saved, strict=True):
            variable.assign(value)


def tensors_and_loss(
    model: keras.Model,
    tensors: Sequence,
    x,
    y,
    loss=None,
    training: bool = False,
    watch: Sequence = (),
):
    """Values of intermediate ``tensors``, the loss, and dL/d(each tensor) and dL/d(watch).

    Returns ``(values, loss_value, tensor_grads, watch_grads)`` as tensors; gradients of
    tensors the loss does not depend on are zeros.
    """
    extractor = keras.Model(model.inputs[0], list(tensors) + [model.outputs[0]])
    loss_fn = resolve_loss(model, y, loss)
    x = as_batch(x)
    with preserved_state(model), tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        outs = extractor(x, training=training)
        outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
        values, prediction = list(outs[:-1]), outs[-1]
        loss_value = tf.reduce_mean(loss_fn(y, prediction))
    targets = values + [x if w is None else w for w in watch]
    grads = tape.gradient(loss_value, targets, unconnected_gradients="zero")
    del tape
    return values, loss_value, grads[: len(values)], grads[len(values):]


class ProbeRecorder(keras.callbacks.Callback):
    """A callback that measures something on a fixed probe batch while training.

    Subclasses implement :meth:`measure` (one ``DataFrame`` per call, using
    ``self.model``); the recorder calls it at the start of training (``epoch = 0``)
    and after every ``every`` epochs, tags the rows with the epoch, and
    :meth:`frame` returns all records.
    """

    def __init__(self, every: int = 1, loss=None):
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be a positive number of epochs; got {every}")
        self.every, self.loss = int(every), loss
        self.records: list[pd.DataFrame] = []

    def probe_loss(self):
        """The loss given to the recorder, else the model's compiled loss."""
        return self.loss if self.loss is not None else getattr(self.model, "loss", None)

    def measure(self) -> pd.DataFrame:
        raise NotImplementedError

    def _record(self, epoch: int) -> None:
        frame = self.measure()
        frame.insert(0, "epoch", epoch)
        self.records.append(frame)

    def on_train_begin(self, logs=None):
        self._record(0)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0:
            self._record(epoch + 1)

    def frame(self) -> pd.DataFrame:
        """All records so far, with their ``epoch`` column."""
        return pd.concat(self.records, ignore_index=True) if self.records else pd.DataFrame()
