"""resnet_tf.runtime: profiles, seeding, environment report."""

import numpy as np
import pytest

import resnet_tf
from resnet_tf import runtime


def test_profile_is_quick_without_gpu(monkeypatch):
    monkeypatch.delenv(runtime.PROFILE_ENV, raising=False)
    monkeypatch.setattr(runtime, "gpu_devices", lambda: [])
    assert resnet_tf.profile() == "quick"
    monkeypatch.setattr(runtime, "gpu_devices", lambda: ["GPU:0"])
    assert resnet_tf.profile() == "full"
    assert resnet_tf.pick(quick=1, full=2) == 2


def test_profile_override(monkeypatch):
    monkeypatch.setattr(runtime, "gpu_devices", lambda: [])
    monkeypatch.setenv(runtime.PROFILE_ENV, "FULL")
    assert resnet_tf.profile() == "full"
    monkeypatch.setenv(runtime.PROFILE_ENV, "fast")
    with pytest.raises(ValueError, match="allowed values are quick, full"):
        resnet_tf.profile()


def test_seed_everything_reproduces_keras_and_numpy():
    import keras

    resnet_tf.seed_everything(7)
    a = (np.random.rand(3), keras.random.normal((3,)).numpy())
    resnet_tf.seed_everything(7)
    b = (np.random.rand(3), keras.random.normal((3,)).numpy())
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_environment_report():
    env = resnet_tf.environment()
    assert env["keras"].startswith("3.") and env["profile"] in ("quick", "full")
    assert env["resnet_tf"] == resnet_tf.__version__
