"""resnet_tf.progress: time estimates and progress output of long cells."""

import numpy as np
import pytest

from resnet_tf import progress, runtime
from resnet_tf.models import mlp


def test_format_duration():
    assert progress.format_duration(0.2) == "about 1 s"
    assert progress.format_duration(40) == "about 40 s"
    assert progress.format_duration(6 * 60 + 10) == "about 6 min"
    assert progress.format_duration(2 * 3600) == "about 2.0 h"
    with pytest.raises(ValueError, match="finite number"):
        progress.format_duration(float("nan"))


def test_fit_seconds_counts_full_batches_and_cheaper_evaluation():
    one = progress.fit_seconds(0.01, 50_000, epochs=1, batch_size=128)
    assert progress.fit_seconds(0.01, 50_000, epochs=10, batch_size=128) == pytest.approx(10 * one)
    assert progress.fit_seconds(0.02, 50_000, epochs=1, batch_size=128) == pytest.approx(2 * one)
    # the last partial batch is dropped: 49,920 images (390 batches) take as long as 50,000
    assert progress.fit_seconds(0.01, 49_920, 1, 128) == one
    assert progress.fit_seconds(0.01, 50_048, 1, 128) > one
    # evaluating a set costs more than nothing but less than training on it
    with_eval = progress.fit_seconds(0.01, 50_000, 1, 128, n_eval=50_000)
    assert one < with_eval < 2 * one
    assert progress.fit_seconds(None, 50_000, 10, 128) is None
    with pytest.raises(ValueError, match="n_train >= batch_size"):
        progress.fit_seconds(0.1, 10, 1, 128)


def test_profile_decides_verbosity_and_timing(monkeypatch):
    monkeypatch.setenv(runtime.PROFILE_ENV, "quick")
    assert progress.verbosity() == 0 and not progress.enabled()

    def never():
        raise AssertionError("the quick profile must not build the model")

    assert progress.step_seconds(never, (None, None)) is None
    monkeypatch.setenv(runtime.PROFILE_ENV, "full")
    assert progress.verbosity() == 1 and progress.enabled()


def test_step_seconds_times_a_few_steps_of_a_throwaway_model():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = rng.integers(0, 3, 256).astype("int32")
    built = []

    def build():
        built.append(mlp(2, width=16, input_dim=8, output_dim=3))
        return built[-1]

    seconds = progress.step_seconds(build, (x, y), batch_size=32, steps=4, warmup=2, force=True,
                                    lr=0.01)
    assert len(built) == 1 and seconds > 0
    assert int(built[0].optimizer.iterations.numpy()) == 6
    with pytest.raises(ValueError, match="integers >= 1"):
        progress.step_seconds(build, (x, y), steps=0, force=True)


def test_announce_prints_the_total_once():
    lines = []
    total = progress.announce({"ResNet-20": 100.0, "ResNet-56": 260.0}, echo=lines.append)
    assert total == 360.0 and len(lines) == 1
    assert lines[0].startswith("Estimated training time: about 6 min on this")
    assert "ResNet-20 2 min" in lines[0] and "ResNet-56 4 min" in lines[0]
    assert progress.announce({"ResNet-20": None}, echo=lines.append) is None and len(lines) == 1
