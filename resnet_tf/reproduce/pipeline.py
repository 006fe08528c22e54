"""Input pipelines for the reproduction, built to keep an accelerator busy.

The training pipeline holds the standardised images in memory, draws a fresh
permutation every epoch, cuts the index stream into full global batches
(static shapes for XLA and TPUs; every replica gets the same share), gathers
and augments a whole batch at once with :func:`resnet_tf.data.augment_batch` on parallel
threads (``AUTOTUNE``), and prefetches so the next batch is ready when the
device finishes a step. Working on batches costs a handful of ops per batch
instead of per image, which matters on Colab's two host cores. All randomness
is stateless and keyed by the step number, so a resumed run continues the
exact stream of an uninterrupted one.
"""

from __future__ import annotations

import numpy as np

from .. import _deprecation, data

DATASETS = data.IMAGE_DATASETS

synthetic = _deprecation.renamed(
    data.synthetic_images, "reproduce.pipeline.synthetic", "resnet_tf.data.synthetic_images"
)
augment_batch = _deprecation.renamed(
    data.augment_batch, "reproduce.pipeline.augment_batch", "resnet_tf.data.augment_batch"
)


def load(name: str = "cifar10", seed: int = 0):
    """Standardised ``((x_train, y_train), (x_test, y_test))`` and whether to flip.

    ``"cifar10"`` is the paper's data (50k / 10k, 32x32x3; needs the network
    once); ``"digits"`` (16x16x1, offline) and ``"synthetic"`` are for
    rehearsing the same code on a CPU. Digits are not flipped (a mirrored 3 is
    not a 3).
    """
    key = name.lower()
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; allowed: {', '.join(DATASETS)}")
    (xtr, ytr), (xte, yte) = data.load(key, seed=seed)
    xtr, xte = data.standardize(xtr, xte)
    return ((xtr, ytr), (xte, yte)), key != "digits"


def train_dataset(x: np.ndarray, y: np.ndarray, global_batch: int, seed: int = 0,
                  flip: bool = True, pad: int = 4, start_step: int = 0):
    """An endless stream of augmented full global batches; batch ``t`` is a function of
    ``(seed, t)`` alone.

    Epoch ``e`` visits the images in the order of a stateless permutation
    seeded by ``(seed, e)``; the stream of indices is cut into full batches,
    the images of a batch are gathered from memory in one op and augmented
    with a stateless seed ``(seed, t)``. Nothing depends on how many iterators
    were opened before, so a run split across processes sees the same batches
    as an uninterrupted one: ``start_step`` skips to batch ``t`` (what resuming
    after ``t`` completed steps does).
    """
    import tensorflow as tf

    n = len(x)
    if n < global_batch:
        raise ValueError(f"{n} training images do not fill one global batch of {global_batch}")
    images = tf.constant(x)
    labels = tf.constant(y)
    base = tf.constant(int(seed), tf.int64)

    def permutation(epoch):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([base, epoch])
        )
        return tf.data.Dataset.from_tensor_slices(order)

    indices = tf.data.Dataset.counter().flat_map(permutation)
    indices = indices.batch(global_batch, drop_remainder=True)
    ds = tf.data.Dataset.zip((tf.data.Dataset.counter(), indices))
    if start_step:
        ds = ds.skip(int(start_step))

    def load_batch(step, index):
        batch = tf.gather(images, index)
        batch = data.augment_batch(batch, tf.stack([base + 1, step]), pad=pad, flip=flip)
        return batch, tf.gather(labels, index)

    ds = ds.map(load_batch, num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def eval_batch_size(n: int, replicas: int = 1, cap: int = 500) -> int:
    """The largest batch ``<= cap`` that divides ``n`` and is a multiple of ``replicas``.

    Evaluating in equal full batches keeps shapes static (XLA, TPUs) and splits
    evenly across replicas while still seeing every test image once. Falls back
    to ``replicas`` (or 1) when nothing larger divides ``n``.
    """
    for b in range(min(cap, n), 0, -1):
        if n % b == 0 and b % replicas == 0:
            return b
    return replicas if n % replicas == 0 else 1


def eval_dataset(x: np.ndarray, y: np.ndarray, replicas: int = 1, cap: int = 500):
    """The test set in full batches of :func:`eval_batch_size`, cached and prefetched."""
    import tensorflow as tf

    batch = eval_batch_size(len(x), replicas, cap)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).cache()
    ds = ds.batch(batch, drop_remainder=len(x) % batch == 0)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)
