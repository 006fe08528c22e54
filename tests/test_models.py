"""resnet_tf.models: exact parameter counts, keras.applications equivalence, errors."""

import keras
import numpy as np
import pytest

from resnet_tf import models, paper
from resnet_tf.blocks import blocks_of

PAPER_COUNTS = {20: 269_722, 32: 464_154, 44: 658_586, 56: 853_018, 110: 1_727_962}


def trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize("depth", sorted(PAPER_COUNTS))
def test_cifar_counts_option_a(depth):
    assert trainable(models.cifar_resnet(depth)) == PAPER_COUNTS[depth]
    assert trainable(models.cifar_plain(depth)) == PAPER_COUNTS[depth]
    # and agree with Table 6 of the paper, which prints them to two or three figures
    assert PAPER_COUNTS[depth] == pytest.approx(paper.TABLE6_PARAMS[depth], rel=0.02)


def test_cifar_variants():
    b = models.cifar_resnet(20, shortcut="B")
    # two 1x1 projections (16->32, 32->64) and their batch-norm scales/offsets
    assert trainable(b) - PAPER_COUNTS[20] == 16 * 32 + 64 + 32 * 64 + 128
    pre = models.cifar_resnet(20, preact=True)
    assert pre.get_layer("post_bn") is not None and pre.output_shape == (None, 10)
    small = models.cifar_resnet(20, width=8, input_shape=(16, 16, 1), classes=4)
    assert small.output_shape == (None, 4)
    assert small.get_layer("stage3_block3_2_conv").filters == 32


def test_block_counts_and_names():
    model = models.cifar_resnet(32)
    joins = [layer.name for layer in model.layers if layer.name.endswith("_add")]
    assert len(joins) == 15 and joins[0] == "stage1_block1_add"
    assert models.blocks_per_stage(110) == 18


@pytest.mark.parametrize("depth", [21, 6, 0, "20", 20.0])
def test_bad_depth(depth):
    with pytest.raises(ValueError, match=r"6n\+2 .*20, 32, 44, 56, 110"):
        models.cifar_resnet(depth)


def test_bad_cifar_arguments():
    with pytest.raises(ValueError, match="width must be a positive"):
        models.cifar_resnet(20, width=0)
    with pytest.raises(ValueError, match="unknown shortcut"):
        models.cifar_resnet(20, shortcut="C")
    with pytest.raises(ValueError, match="classes"):
        models.cifar_resnet(20, classes=0)
    with pytest.raises(ValueError, match="input_shape"):
        models.cifar_resnet(20, input_shape=(32, 32))
    with pytest.raises(ValueError, match="unknown model"):
        models.build("cifar_resnet")


def test_wrong_input_shape_at_call_time():
    model = models.cifar_resnet(20, input_shape=(16, 16, 1))
    with pytest.raises(ValueError):
        model(np.zeros((1, 16, 16, 3), "float32"))


@pytest.mark.parametrize(
    "name", ["cifar_resnet20", "cifar_preact20", "cifar_plain20", "resnet20", "plain20"]
)
def test_build_names_round_trip(name):
    model = models.build(name, width=2, input_shape=(8, 8, 3))
    assert model.name == name
    default = getattr(models, "cifar_plain" if "plain" in name else "cifar_resnet")
    kwargs = {"preact": True} if "preact" in name else {}
    if name.startswith("cifar_"):  # the constructors' default names round-trip too
        assert default(20, width=2, input_shape=(8, 8, 3), **kwargs).name == name
    assert len(blocks_of(model, residual_only=True)) == (0 if "plain" in name else 9)


def test_build_imagenet_names_round_trip():
    for name in models.NAMED_MODELS:
        assert models.NAMED_MODELS[name].__name__ == name
    assert models.build("resnet18", input_shape=(32, 32, 3)).name == "resnet18"
    assert models.build("cifar_preact56").get_layer("post_bn") is not None
    with pytest.raises(ValueError, match="resnet<6n\\+2>"):
        models.build("vgg16")


def test_plain_keyword_is_deprecated():
    with pytest.warns(DeprecationWarning, match="residual="):
        model = models.cifar_resnet(8, width=2, input_shape=(8, 8, 3), plain=True)
    assert model.name == "cifar_plain8"


@pytest.mark.parametrize(
    "name, count", [("ResNet18", 11_689_512), ("ResNet34", 21_797_672)]
)
def test_imagenet_basic_counts(name, count):
    assert trainable(getattr(models, name)()) == count


REFERENCE_TOTALS = {
    "ResNet50": 25_636_712, "ResNet101": 44_707_176, "ResNet152": 60_419_944,
    "ResNet50V2": 25_613_800, "ResNet101V2": 44_675_560, "ResNet152V2": 60_380_648,
}


@pytest.mark.parametrize("name", sorted(REFERENCE_TOTALS))
def test_matches_keras_applications(name):
    reference = getattr(keras.applications, name)(weights=None, input_shape=(64, 64, 3))
    ours = getattr(models, name)(input_shape=(64, 64, 3))
    assert ours.count_params() == reference.count_params() == REFERENCE_TOTALS[name]
    rng = np.random.default_rng(0)
    # Perturb every weight, and keep variances positive, so the check sees all of them.
    weights = [w + 0.05 * rng.standard_normal(w.shape).astype(w.dtype)
               for w in reference.get_weights()]
    weights = [np.abs(w) + 0.5 if w.ndim == 1 else w for w in weights]
    reference.set_weights(weights)
    ours.set_weights(weights)
    x = rng.uniform(0, 1, (2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(ours.predict(x, verbose=0), reference.predict(x, verbose=0),
                               atol=1e-4)


def test_imagenet_options_and_weights(tmp_path):
    with pytest.raises(ValueError, match="never does"):
        models.ResNet18(weights="imagenet")
    with pytest.raises(ValueError, match="existing file"):
        models.ResNet18(weights=str(tmp_path / "missing.h5"))
    with pytest.raises(ValueError, match="pooling"):
        models.ResNet18(include_top=False, pooling="mean")
    features = models.ResNet18(include_top=False, pooling="avg", input_shape=(64, 64, 3))
    assert features.output_shape == (None, 512)
    path = tmp_path / "r18.weights.h5"
    features.save_weights(path)
    again = models.ResNet18(include_top=False, pooling="avg", input_shape=(64, 64, 3),
                            weights=str(path))
    for a, b in zip(features.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    tensor = keras.Input((32, 32, 3))
    assert models.ResNet34(input_tensor=tensor, include_top=False).inputs[0] is tensor


def test_mlps():
    res = models.residual_mlp(4, width=8, input_dim=3, output_dim=2)
    plain = models.plain_mlp(4, width=8, input_dim=3, output_dim=2)
    assert res.count_params() == plain.count_params()
    assert res.output_shape == (None, 2)
    with pytest.raises(ValueError, match="depth"):
        models.mlp(0)


def test_cifar_model_round_trips(tmp_path):
    model = models.cifar_resnet(20, width=4, input_shape=(8, 8, 1), zero_init_residual=True,
                                survival_probability=0.8, shortcut="B", preact=True)
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 1)).astype("float32")
    model(x, training=True)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-6)


def test_trained_model_loads_in_a_fresh_process(tmp_path):
    import subprocess
    import sys

    from resnet_tf import seed_everything, training

    model = models.mlp(2, width=4, input_dim=2, output_dim=3, output_activation="softmax")
    x = np.random.default_rng(0).normal(size=(32, 2)).astype("float32")
    y = np.arange(32) % 3
    seed_everything(0)
    training.fit(model, (x, y), epochs=1, batch_size=16, verbose=0)
    path = tmp_path / "trained.keras"
    model.save(path)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "expected.npy", model.predict(x, verbose=0))
    script = (
        "import numpy as np, sys; from resnet_tf.models import load_model; "
        f"m = load_model(r'{path}'); x = np.load(r'{tmp_path / 'x.npy'}'); "
        f"e = np.load(r'{tmp_path / 'expected.npy'}'); "
        "assert type(m.optimizer).__name__ == 'CoupledSGD', type(m.optimizer); "
        "np.testing.assert_allclose(m.predict(x, verbose=0), e, atol=1e-6)"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
