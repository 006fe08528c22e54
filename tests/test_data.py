"""resnet_tf.data: loaders, offline behaviour, pipelines and augmentation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from resnet_tf import data


def test_digits_default_is_16x16_stratified():
    (xtr, ytr), (xte, yte) = data.load("digits")
    assert xtr.shape == (1437, 16, 16, 1) and xte.shape == (360, 16, 16, 1)
    assert xtr.dtype == np.float32 and ytr.dtype == np.int32
    assert 0.0 <= xtr.min() and xtr.max() <= 1.0
    assert np.bincount(yte).min() >= 35  # every class in the test split


def test_digits_sizes_and_cap():
    (xtr, _), _ = data.load("digits", size=8, n=100)
    assert xtr.shape == (100, 8, 8, 1)
    with pytest.raises(ValueError, match="size must be an integer >= 8"):
        data.load("digits", size=4)


def test_cifar10_offline_names_the_alternative(monkeypatch):
    def offline():
        raise OSError("Name or service not known")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    with pytest.raises(data.DatasetUnavailableError, match=r"load\('digits'\)"):
        data.load("cifar10")


def test_cifar10_through_keras_loader(monkeypatch):
    fake = (np.full((4, 32, 32, 3), 255, np.uint8), np.arange(4).reshape(4, 1))
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", lambda: (fake, fake))
    (xtr, ytr), _ = data.load("cifar10")
    assert xtr.dtype == np.float32 and xtr.max() == 1.0 and ytr.shape == (4,)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="allowed: cifar10, digits, synthetic, spirals, sine"):
        data.load("mnist")


def test_synthetic_tasks():
    (x, y), (xt, yt) = data.load("spirals", n=500)
    assert x.shape == (400, 2) and set(np.unique(y)) == {0, 1} and xt.shape == (100, 2)
    (x, y), _ = data.load("sine", n=100)
    assert x.shape == y.shape == (80, 1)
    assert np.abs(y - np.sin(3 * x)).max() < 0.5


def test_standardize_uses_training_statistics():
    rng = np.random.default_rng(0)
    train, test = rng.normal(5, 2, (50, 4, 4, 3)), rng.normal(5, 2, (10, 4, 4, 3))
    train_s, test_s = data.standardize(train, test)
    np.testing.assert_allclose(train_s.mean(axis=(0, 1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(train_s.std(axis=(0, 1, 2)), 1, atol=1e-4)
    assert abs(test_s.mean()) < 0.3


def test_training_pipeline_has_only_full_batches():
    x = np.zeros((37, 4, 4, 1), "float32")
    y = np.zeros(37, "int32")
    sizes = [int(b[0].shape[0]) for b in data.make_dataset(x, y, 8, training=True)]
    assert sizes == [8, 8, 8, 8]
    sizes = [int(b[0].shape[0]) for b in data.make_dataset(x, y, 8)]
    assert sizes == [8, 8, 8, 8, 5]


def test_pipeline_errors():
    with pytest.raises(ValueError, match="same length"):
        data.make_dataset(np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="every batch would be dropped"):
        data.make_dataset(np.zeros((3, 2)), np.zeros(3), 8, training=True)
    with pytest.raises(ValueError, match="augment needs images"):
        data.make_dataset(np.zeros((8, 2)), np.zeros(8), 4, training=True, augment=True)


def test_augmentation_is_pad_crop_flip_and_seeded():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 1.0, (16, 8, 8, 3)).astype("float32")
    y = np.arange(16, dtype="int32")

    def one_epoch(seed):
        return np.concatenate([b[0].numpy() for b in data.make_dataset(
            x, y, 16, training=True, augment=True, seed=seed)])

    first, again = one_epoch(3), one_epoch(3)
    np.testing.assert_array_equal(first, again)
    assert first.shape == x.shape
    assert (first == 0).any(), "random crops of the zero-padded image show padding"
    assert not np.array_equal(first, one_epoch(4))


def test_stub_mode_replaces_cifar10_by_a_small_synthetic_set(monkeypatch):
    from resnet_tf import runtime

    monkeypatch.setenv(runtime.STUB_ENV, "1")
    (xtr, ytr), (xte, yte) = data.load("cifar10")
    assert xtr.shape == (data.STUB_SIZES[0], 32, 32, 3) and xte.shape[0] == data.STUB_SIZES[1]
    assert xtr.dtype == np.float32 and ytr.dtype == np.int32 and 0.0 <= xtr.min() <= xtr.max() <= 1
    assert data.load("cifar10", n=100)[0][0].shape[0] == 100
    # Without the switch the real loader runs (here made to fail as if offline).
    monkeypatch.setenv(runtime.STUB_ENV, "0")

    def offline():
        raise OSError("no network in this test")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    with pytest.raises(data.DatasetUnavailableError):
        data.load("cifar10")


def test_synthetic_images_validate_size():
    with pytest.raises(ValueError, match="multiple of 4"):
        data.synthetic_images(8, 8, size=30)


def test_synthetic_images_are_in_the_registry():
    (xtr, ytr), (xte, yte) = data.load("synthetic", size=8, n=40, seed=1)
    assert xtr.shape == (40, 8, 8, 3) and xte.shape == (512, 8, 8, 3)
    (again, _), _ = data.load("synthetic", size=8, n=40, seed=1)
    np.testing.assert_array_equal(xtr, again)
    assert "synthetic" in data.DATASETS


def test_augment_batch_is_a_padded_crop_with_optional_mirror():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(16, 6, 6, 2)).astype("float32")
    out = data.augment_batch(tf.constant(images), tf.constant([3, 4]), pad=2).numpy()
    padded = np.pad(images, [(0, 0), (2, 2), (2, 2), (0, 0)])
    mirrored = 0
    for img, pad_img in zip(out, padded, strict=True):
        windows = [pad_img[i:i + 6, j:j + 6] for i in range(5) for j in range(5)]
        plain = any(np.array_equal(img, w) for w in windows)
        flipped = any(np.array_equal(img[:, ::-1], w) for w in windows)
        assert plain or flipped
        mirrored += flipped and not plain
    assert 0 < mirrored < 16
    no_flip = data.augment_batch(tf.constant(images), tf.constant([3, 4]), pad=0, flip=False)
    np.testing.assert_array_equal(no_flip.numpy(), images)


def test_augment_image_is_a_batch_of_one():
    image = np.random.default_rng(1).normal(size=(6, 6, 2)).astype("float32")
    seed = tf.constant([5, 6])
    with pytest.warns(DeprecationWarning, match="data.augment_batch"):
        one = data.augment_image(tf.constant(image), seed, pad=2)
    np.testing.assert_array_equal(one, data.augment_batch(tf.constant(image[None]), seed, pad=2)[0])
