"""Input pipelines for the reproduction, built to keep an accelerator busy.

The training pipeline holds the standardised images in memory, draws a fresh
permutation every epoch, cuts the index stream into full global batches
(static shapes for XLA and TPUs; every replica gets the same share), gathers
and augments a whole batch at once with :func:`augment_batch` on parallel
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


def augment_batch(images, seed, pad: int = 4, flip: bool = True):
    r"""The paper's augmentation on a batch ``(B, H, W, C)``, one draw per image.

    Zero-pad by ``pad`` pixels, crop an ``H x W`` window at offsets
    :math:`(o_y, o_x) \sim U\{0..2p\}^2`, and mirror left-right with probability
    1/2: output pixel :math:`(i, j)` of image ``b`` is padded pixel
    :math:`(o_y + i,\ o_x + j')` with :math:`j' = j` or :math:`W - 1 - j`. Done
    with two batched gathers; ``seed`` is a shape-[2] integer tensor
    (stateless, so reproducible under parallel maps).
    """
    import tensorflow as tf

    shape = tf.shape(images)
    b, h, w = shape[0], shape[1], shape[2]
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    seeds = tf.random.experimental.stateless_split(seed, 3)
    oy = tf.random.stateless_uniform([b], seeds[0], 0, 2 * pad + 1, dtype=tf.int32)
    ox = tf.random.stateless_uniform([b], seeds[1], 0, 2 * pad + 1, dtype=tf.int32)
    rows = oy[:, None] + tf.range(h)[None, :]
    cols = ox[:, None] + tf.range(w)[None, :]
    if flip:
        mirror = tf.random.stateless_uniform([b], seeds[2]) < 0.5
        cols = tf.where(mirror[:, None], tf.reverse(cols, axis=[1]), cols)
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(out, cols, axis=2, batch_dims=1)


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
        batch = augment_batch(batch, tf.stack([base + 1, step]), pad=pad, flip=flip)
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
