"""Regression tests around TensorFlow's oneDNN CPU kernels.

Background. A crash ("double free or corruption", exit 134) was reported when
training a width-8 CIFAR ResNet-20 on 16x16 digits whose last training batch
held 5 examples. On TensorFlow 2.21 / Keras 3.15 here that exact run (Keras
``fit`` with a ragged last batch, fused or stock batch norm, graph, eager or
XLA, any thread count) completes; what does corrupt the heap deterministically
in this TensorFlow build is oneDNN's ``BatchMatMul`` when a rank-4 left operand
is broadcast against a rank-2 right one (tensorflow/tensorflow#117700): the
process dies in ``BatchMatMulMkl::Compute`` with a glibc heap error or a
segmentation fault. Keras layers avoid that kernel (``Dense`` on rank-4 inputs
uses ``tensordot``) and the package's training pipeline never emits a ragged
training batch.

- :func:`test_fit_on_digits_with_ragged_remainder` (fast) trains the reported
  configuration through ``resnet_tf.training.fit`` in a subprocess and checks it
  exits cleanly and sees only full training batches.
- :func:`test_raw_keras_ragged_last_batch` (slow) runs the reported raw Keras
  path; it is expected to pass and is marked ``xfail`` if it dies from a signal.
- :func:`test_onednn_batch_matmul_broadcast_still_crashes` (slow) documents the
  deterministic oneDNN bug: it fails once a TensorFlow upgrade fixes it, so the
  note above can be revisited.
"""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CRASH_CODES = {-signal.SIGABRT, -signal.SIGSEGV, 128 + signal.SIGABRT, 128 + signal.SIGSEGV}


def run_python(code: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with oneDNN on (unless ``env`` says otherwise)."""
    environment = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
                   "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   **env}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=timeout,
    )


def describe(result: subprocess.CompletedProcess) -> str:
    """Exit code and the tail of stderr, for assertion messages."""
    return f"exit code {result.returncode}; stderr tail:\n{result.stderr[-2000:]}"


PACKAGE_FIT = """
    import numpy as np
    from resnet_tf.data import load, make_dataset
    from resnet_tf.models import cifar_resnet
    from resnet_tf.runtime import seed_everything
    from resnet_tf.training import fit

    (x, y), (x_test, y_test) = load("digits", size=16)
    batch = next(b for b in range(128, len(x)) if len(x) % b == 5)
    sizes = {int(xb.shape[0]) for xb, _ in make_dataset(x, y, batch, training=True)}
    assert sizes == {batch}, f"training pipeline emitted batch sizes {sizes}"
    model = cifar_resnet(20, width=8, input_shape=(16, 16, 1))
    seed_everything(0)
    history = fit(model, (x, y), epochs=1, batch_size=batch, lr=0.05, momentum=0.9,
                  verbose=0)
    assert np.isfinite(history.history["loss"]).all(), history.history
    model.evaluate(x_test, y_test, batch_size=batch, verbose=0)  # ragged batch, inference
    model.predict(x_test[:5], verbose=0)
    print("OK", batch)
"""


def test_fit_on_digits_with_ragged_remainder() -> None:
    """The reported configuration trains through the package and exits 0."""
    result = run_python(PACKAGE_FIT, timeout=240)
    assert result.returncode == 0, describe(result)
    assert "OK" in result.stdout


RAW_KERAS_FIT = """
    import faulthandler
    faulthandler.enable()
    import keras
    import tensorflow as tf
    from sklearn.datasets import load_digits
    from resnet_tf.models import cifar_resnet

    digits = load_digits()
    x = tf.image.resize(digits.images[..., None].astype("float32") / 16.0, (16, 16)).numpy()
    y = digits.target.astype("int32")
    assert len(x) % 128 == 5
    keras.utils.set_random_seed(0)
    model = cifar_resnet(20, width=8, input_shape=(16, 16, 1))
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9), "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=128, epochs=3, verbose=0)
    model.predict(x, batch_size=128, verbose=0)
    print("OK")
"""


@pytest.mark.slow
def test_raw_keras_ragged_last_batch() -> None:
    """Plain ``model.fit`` with a last batch of 5 (the reported trigger).

    It has not crashed here in dozens of runs; should it ever die from a signal,
    the test is marked xfail with the evidence rather than failing the suite, as
    the package's own pipeline (tested above) is immune either way.
    """
    result = run_python(RAW_KERAS_FIT)
    if result.returncode in CRASH_CODES:
        pytest.xfail(f"oneDNN crash on a ragged last batch reproduced: {describe(result)}")
    assert result.returncode == 0, describe(result)


BROADCAST_MATMUL = """
    import tensorflow as tf
    tf.random.set_seed(280958)
    lhs = tf.random.normal([13, 1, 3, 4])
    rhs = tf.random.normal([4, 16])
    for _ in range(20):
        out = tf.linalg.matmul(lhs, rhs)
    print("OK", out.shape)
"""


@pytest.mark.slow
def test_onednn_batch_matmul_broadcast_still_crashes() -> None:
    """oneDNN's broadcast BatchMatMul corrupts the heap; the Eigen kernel does not.

    When this starts failing, TensorFlow has fixed tensorflow/tensorflow#117700.
    """
    if not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("oneDNN is on by default only on Linux x86 builds")
    crashed = run_python(BROADCAST_MATMUL, timeout=120)
    assert crashed.returncode in CRASH_CODES, (
        "broadcast rank-4 x rank-2 matmul no longer crashes with oneDNN: "
        "the TensorFlow bug looks fixed; " + describe(crashed)
    )
    clean = run_python(BROADCAST_MATMUL, timeout=120, TF_ENABLE_ONEDNN_OPTS="0")
    assert clean.returncode == 0, describe(clean)
