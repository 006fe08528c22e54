"""Datasets and ``tf.data`` input pipelines.

- ``load("cifar10")``: CIFAR-10 through ``keras.datasets`` (downloads once and
  caches; offline it raises :class:`DatasetUnavailableError` naming the
  offline alternative).
- ``load("digits")``: scikit-learn's bundled 8x8 handwritten digits (1,797
  images, 10 classes), resized to ``size x size x 1``. Ships with
  scikit-learn, so it always works offline; the ``quick`` profile's default.
- ``load("spirals")`` and ``load("sine")``: small synthetic tasks for MLPs.
- :func:`synthetic_images`: a learnable 32x32x3 stand-in for CIFAR-10. For
  tests only, ``RESNET_TF_STUB_DATA=1`` makes ``load("cifar10")`` return it
  (512 training and 256 test images) instead of downloading, so the full
  profile of a chapter runs on a CPU without a network
  (:func:`resnet_tf.runtime.stub_mode`). The real loader stays the default.

Images are float32 in [0, 1], labels int32. :func:`make_dataset` builds the
pipeline with the paper's augmentation (4-pixel zero padding, random 32x32
crop, horizontal flip) and per-channel standardisation is left to
:func:`standardize`.
"""

from __future__ import annotations

import numpy as np

from . import _deprecation, paper

DATASETS = ("cifar10", "digits", "synthetic", "spirals", "sine")
IMAGE_DATASETS = ("cifar10", "digits", "synthetic")
"""The image sets: the paper's, the offline digits, the learnable CIFAR-10 stand-in."""
STUB_SIZES = (512, 256)
"""Training and test images of the CIFAR-10 stand-in in stub mode."""

Split = tuple[np.ndarray, np.ndarray]

__getattr__ = _deprecation.removed_names(__name__, {
    "CIFAR10_CLASSES": (("airplane", "automobile", "bird", "cat", "deer",
                         "dog", "frog", "horse", "ship", "truck"),
                        "a tuple of your own (labels 0-9 follow this order)"),
})


class DatasetUnavailableError(RuntimeError):
    """A dataset could not be obtained (typically: no network for a download)."""


def load(name: str, size: int | None = None, n: int | None = None, seed: int = 0):
    """Load a dataset as ``((x_train, y_train), (x_test, y_test))``.

    Args:
        name: one of ``"cifar10"``, ``"digits"``, ``"synthetic"`` (the learnable
            CIFAR-10 stand-in of :func:`synthetic_images`), ``"spirals"``, ``"sine"``.
        size: image side for ``"digits"`` (default 16; 8 keeps the originals),
            ``"cifar10"`` or ``"synthetic"`` (default 32).
        n: number of examples for the synthetic tasks (default 1,000), or a cap on
            the training examples of the image sets.
        seed: seed of the synthetic generators and of the digits split.
    """
    from .runtime import stub_mode

    key = str(name).lower().replace("-", "").replace("_", "")
    if key == "cifar10" and stub_mode():
        (xtr, ytr), (xte, yte) = synthetic_images(*STUB_SIZES, size=size or 32, seed=seed)
    elif key == "cifar10":
        (xtr, ytr), (xte, yte) = _cifar10(size)
    elif key == "digits":
        (xtr, ytr), (xte, yte) = _digits(size or 16, seed)
    elif key == "synthetic":
        (xtr, ytr), (xte, yte) = synthetic_images(size=size or 32, seed=seed)
    elif key == "spirals":
        return _spirals(n or 1000, seed)
    elif key == "sine":
        return _sine(n or 1000, seed)
    else:
        raise ValueError(f"unknown dataset {name!r}; allowed: {', '.join(DATASETS)}")
    if n is not None:
        xtr, ytr = xtr[:n], ytr[:n]
    return (xtr, ytr), (xte, yte)


def synthetic_images(n_train: int = 2048, n_test: int = 512, size: int = 32,
                     classes: int = 10, seed: int = 0) -> tuple[Split, Split]:
    """A learnable stand-in for CIFAR-10 (for tests): ``size x size x 3`` images in [0, 1].

    Each class has a smooth random template; an image is its class template
    plus Gaussian noise, shifted by up to 2 pixels, so crops and flips matter a
    little but the task stays easy. Returns ``((x_train, y_train), (x_test, y_test))``
    as float32 images and int32 labels.
    """
    if size < 4 or size % 4:
        raise ValueError(f"size must be a positive multiple of 4; got {size!r}")
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0.0, 1.0, (classes, 4, 4, 3))
    templates = np.kron(coarse, np.ones((1, size // 4, size // 4, 1)))

    def draw(n):
        y = rng.integers(0, classes, n).astype("int32")
        x = templates[y] + rng.normal(0.0, 0.25, (n, size, size, 3))
        shifts = rng.integers(-2, 3, (n, 2))
        pairs = zip(x, shifts, strict=True)
        x = np.stack([np.roll(img, tuple(s), axis=(0, 1)) for img, s in pairs])
        return np.clip(x, 0.0, 1.0).astype("float32"), y

    return draw(n_train), draw(n_test)


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    if images.shape[1] == size and images.shape[2] == size:
        return images
    import tensorflow as tf

    return tf.image.resize(images, (size, size), method="bilinear").numpy().astype("float32")


def _cifar10(size: int | None) -> tuple[Split, Split]:
    import keras

    try:
        (xtr, ytr), (xte, yte) = keras.datasets.cifar10.load_data()
    except Exception as error:  # urllib, SSL and socket errors all mean "no download"
        raise DatasetUnavailableError(
            "CIFAR-10 could not be downloaded or read from the Keras cache "
            f"({type(error).__name__}: {error}). This machine looks offline: use "
            "load('digits'), which ships with scikit-learn and needs no network, or place "
            "cifar-10-batches-py.tar.gz in ~/.keras/datasets/."
        ) from error
    xtr = xtr.astype("float32") / 255.0
    xte = xte.astype("float32") / 255.0
    if size is not None:
        xtr, xte = _resize(xtr, size), _resize(xte, size)
    return (xtr, ytr.reshape(-1).astype("int32")), (xte, yte.reshape(-1).astype("int32"))


def _digits(size: int, seed: int) -> tuple[Split, Split]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not isinstance(size, int) or size < 8:
        raise ValueError(f"digits size must be an integer >= 8 (8, 16, 32, ...); got {size!r}")
    digits = load_digits()
    images = (digits.images / 16.0).astype("float32")[..., None]
    labels = digits.target.astype("int32")
    xtr, xte, ytr, yte = train_test_split(
        images, labels, test_size=0.2, random_state=seed, stratify=labels
    )
    return (_resize(xtr, size), ytr), (_resize(xte, size), yte)


def _spirals(n: int, seed: int) -> tuple[Split, Split]:
    """Two interleaved spirals in the plane (binary labels), 80/20 split."""
    rng = np.random.default_rng(seed)
    t = np.sqrt(rng.uniform(0.0, 1.0, n)) * 3.0 * np.pi
    label = rng.integers(0, 2, n)
    angle = t + np.pi * label
    radius = t / (3.0 * np.pi)
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    points += rng.normal(0.0, 0.02, points.shape)
    cut = int(0.8 * n)
    x, y = points.astype("float32"), label.astype("int32")
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def _sine(n: int, seed: int) -> tuple[Split, Split]:
    """1-D regression: ``y = sin(3x) + 0.1 noise`` on [-2, 2], 80/20 split."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2.0, 2.0, (n, 1)).astype("float32")
    y = (np.sin(3.0 * x) + rng.normal(0.0, 0.1, x.shape)).astype("float32")
    cut = int(0.8 * n)
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def standardize(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    r"""Per-channel standardisation with the training set's statistics.

    :math:`x' = (x - \mu_c) / \sigma_c`, with :math:`\mu_c, \sigma_c` the mean and
    standard deviation of channel ``c`` over the training images. Returns the
    standardised ``train`` followed by each of ``others``.
    """
    axes = tuple(range(train.ndim - 1))
    mean = train.mean(axis=axes, keepdims=True)
    std = train.std(axis=axes, keepdims=True) + 1e-7
    return [((a - mean) / std).astype("float32") for a in (train, *others)]


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


def augment_image(image, seed, pad: int = 4, flip: bool = True):
    """Deprecated: one image through :func:`augment_batch` (a batch of one)."""
    import tensorflow as tf

    _deprecation.warn("data.augment_image", "data.augment_batch")
    return augment_batch(tf.expand_dims(image, 0), seed, pad=pad, flip=flip)[0]


def make_dataset(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int = paper.BATCH,
    training: bool = False,
    augment: bool = False,
    flip: bool = True,
    seed: int = 0,
    drop_remainder: bool | None = None,
    cache: bool = True,
):
    """A ``tf.data`` pipeline over ``(x, y)``.

    Training pipelines shuffle every epoch (seeded), optionally augment each batch
    with :func:`augment_batch`, and by default drop the last incomplete batch, so
    every step sees ``batch_size`` examples. Evaluation pipelines keep every
    example. Batches are prefetched.
    """
    import tensorflow as tf

    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length; got {len(x)} and {len(y)}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    if drop_remainder is None:
        drop_remainder = training
    if training and drop_remainder and len(x) < batch_size:
        raise ValueError(
            f"only {len(x)} training examples for batch_size={batch_size}: every batch would be "
            "dropped; lower batch_size or pass drop_remainder=False"
        )
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if cache:
        ds = ds.cache()
    if training:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        if augment and x.ndim != 4:
            raise ValueError(f"augment needs images (N, H, W, C); got shape {x.shape}")
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if training and augment:
        # One stateless seed per batch, itself drawn from a seeded stream that changes
        # every epoch: reproducible, and safe under parallel maps.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(
            2, drop_remainder=True
        )
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda xy, s: (augment_batch(xy[0], s, flip=flip), xy[1]),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    return ds.prefetch(tf.data.AUTOTUNE)
