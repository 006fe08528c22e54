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


def test_execution_mode_per_profile(monkeypatch):
    monkeypatch.delenv(runtime.DETERMINISM_ENV, raising=False)
    monkeypatch.setattr(runtime, "_determinism_enabled", False)
    monkeypatch.setattr(runtime, "gpu_devices", lambda: ["GPU:0"])
    monkeypatch.setenv(runtime.PROFILE_ENV, "full")
    assert runtime.execution() == {"deterministic": False, "xla": True, "mixed_precision": True}
    monkeypatch.setenv(runtime.PROFILE_ENV, "quick")  # quick on a GPU: reproducible
    assert runtime.execution() == {"deterministic": True, "xla": False, "mixed_precision": False}
    monkeypatch.setattr(runtime, "gpu_devices", lambda: [])
    monkeypatch.setenv(runtime.PROFILE_ENV, "full")  # the CPU rehearsal of the full branch
    assert runtime.execution() == {"deterministic": True, "xla": False, "mixed_precision": False}


def test_performance_decides_policy_and_xla_for_a_device():
    perf = runtime.performance
    assert perf("gpu") == {"device": "gpu", "policy": "mixed_float16", "mixed_precision": True,
                           "xla": True}
    assert perf("tpu")["policy"] == "mixed_bfloat16" and perf("tpu")["xla"] is False
    assert perf("cpu") == {"device": "cpu", "policy": "float32", "mixed_precision": False,
                           "xla": False}
    assert perf("gpu", replicas=2)["xla"] is False  # MirroredStrategy
    assert perf("gpu", deterministic=True)["xla"] is False
    assert perf("cpu", xla="on")["xla"] and perf("gpu", xla=False)["xla"] is False
    assert perf("cpu", precision=True)["policy"] == "mixed_float16"
    assert perf("tpu", precision=True)["policy"] == "mixed_bfloat16"
    assert perf("gpu", precision=False)["policy"] == "float32"
    assert perf("cpu", "mixed_bfloat16")["mixed_precision"]
    with pytest.raises(ValueError, match="unknown precision 'half'"):
        perf("cpu", "half")
    with pytest.raises(ValueError, match="allowed: auto, on, off"):
        perf("gpu", xla="sometimes")
    with pytest.raises(ValueError, match="allowed: cpu, gpu, tpu"):
        perf("npu")


def test_performance_of_this_process_follows_the_profile(monkeypatch):
    monkeypatch.delenv(runtime.DETERMINISM_ENV, raising=False)
    monkeypatch.setattr(runtime, "_determinism_enabled", False)
    monkeypatch.setattr(runtime, "gpu_devices", lambda: ["GPU:0"])
    monkeypatch.setenv(runtime.PROFILE_ENV, "full")
    assert runtime.performance() == runtime.performance("gpu")
    monkeypatch.setenv(runtime.DETERMINISM_ENV, "1")
    assert runtime.performance()["xla"] is False and runtime.performance()["mixed_precision"]
    monkeypatch.setenv(runtime.PROFILE_ENV, "quick")  # quick on a GPU computes like a CPU
    assert runtime.performance() == runtime.performance("cpu")


def test_forced_determinism_turns_xla_off_and_says_so(monkeypatch):
    monkeypatch.setattr(runtime, "_determinism_enabled", False)
    monkeypatch.setattr(runtime, "gpu_devices", lambda: ["GPU:0"])
    monkeypatch.setenv(runtime.PROFILE_ENV, "full")
    monkeypatch.setenv(runtime.DETERMINISM_ENV, "1")
    assert runtime.execution() == {"deterministic": True, "xla": False, "mixed_precision": True}
    monkeypatch.setenv(runtime.DETERMINISM_ENV, "maybe")
    with pytest.raises(ValueError, match="allowed values are 1/0"):
        runtime.execution()
    # Once switched on, determinism stays on in the process, and the report says XLA is off.
    monkeypatch.setenv(runtime.DETERMINISM_ENV, "auto")
    monkeypatch.setattr(runtime, "_determinism_enabled", True)
    assert runtime.determinism_enabled() and runtime.execution()["xla"] is False
    with pytest.warns(RuntimeWarning, match="XLA"):
        runtime.seed_everything(0, deterministic=False)


def test_environment_reports_execution_mode():
    env = resnet_tf.environment()
    for key in ("deterministic", "xla", "mixed_precision", "stub_data"):
        assert isinstance(env[key], bool)


def test_keras_keeps_xla_when_seeded_for_the_full_profile(monkeypatch):
    """Seeding for the full profile on a GPU leaves op determinism off, so Keras keeps XLA."""
    import subprocess
    import sys

    script = (
        "import resnet_tf.runtime as r, keras\n"
        "r.gpu_devices = lambda: ['GPU:0']\n"
        "r.seed_everything(0)\n"
        "m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])\n"
        "m.compile(loss='mse', jit_compile=r.execution()['xla'])\n"
        "print(m.jit_compile)\n"
    )
    env = {**__import__("os").environ, runtime.PROFILE_ENV: "full", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop(runtime.DETERMINISM_ENV, None)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == "True", out.stderr[-2000:]


def test_pick_stub_sizes_only_in_stub_mode(monkeypatch):
    monkeypatch.setattr(runtime, "gpu_devices", lambda: [])
    monkeypatch.setenv(runtime.PROFILE_ENV, "full")
    monkeypatch.delenv(runtime.STUB_ENV, raising=False)
    assert resnet_tf.pick(quick=1, full=2, stub=3) == 2 and not runtime.stub_mode()
    monkeypatch.setenv(runtime.STUB_ENV, "1")
    assert resnet_tf.pick(quick=1, full=2, stub=3) == 3 and resnet_tf.pick(1, 2) == 2
    monkeypatch.setenv(runtime.PROFILE_ENV, "quick")
    assert resnet_tf.pick(quick=1, full=2, stub=3) == 1


def test_claim_asserts_except_in_stub_mode(monkeypatch):
    monkeypatch.delenv(runtime.STUB_ENV, raising=False)
    runtime.claim(np.float64(2.0) > 1.0, "holds")
    with pytest.raises(AssertionError, match="ResNet-56 beats ResNet-20"):
        runtime.claim(1 > 2, "ResNet-56 beats ResNet-20")
    with pytest.raises(TypeError, match="must evaluate to a bool"):
        runtime.claim(np.array([True, False]), "an array is not a truth value")
    monkeypatch.setenv(runtime.STUB_ENV, "yes")
    runtime.claim(1 > 2, "numbers of a stub mean nothing")  # computable, need not hold
    with pytest.raises(TypeError):
        runtime.claim(0.5, "still has to be a bool")


def test_claim_not_enforced_for_incomparable_numbers(monkeypatch):
    monkeypatch.delenv(runtime.STUB_ENV, raising=False)
    runtime.claim(1 > 2, "a rehearsal run", enforce=False)
    with pytest.raises(TypeError):
        runtime.claim([True], "a list", enforce=False)


SEEDED_DRAWS = (
    "import json, sys\n"
    "import numpy as np\n"
    "import resnet_tf.runtime as r\n"
    "{before}\n"
    "r.seed_everything(5)\n"
    "tf_loaded = 'tensorflow' in sys.modules\n"
    "first = np.random.rand(2).tolist()\n"
    "import keras, tensorflow as tf\n"
    "print(json.dumps(dict(tf_loaded=tf_loaded, first=first, numpy=np.random.rand(2).tolist(),\n"
    "    keras=keras.random.normal((3,)).numpy().tolist(),\n"
    "    tf=tf.random.normal((3,)).numpy().tolist(),\n"
    ")))\n"
)


def _draws(before: str) -> dict:
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", SEEDED_DRAWS.format(before=before)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_seeding_before_tensorflow_is_imported_defers_it_with_the_same_numbers():
    """Numpy-only code does not import TensorFlow to be seeded, and nothing drawn changes."""
    late = _draws(before="")
    early = _draws(before="import keras")
    assert not late["tf_loaded"] and early["tf_loaded"]
    for key in ("first", "numpy", "keras", "tf"):
        assert late[key] == early[key], key


def test_a_newer_seed_replaces_a_pending_one():
    assert _draws(before="r.seed_everything(1)") == _draws(before="")
