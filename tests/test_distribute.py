"""tf.distribute strategies and the large-batch scaling rule.

The multi-device check runs in a subprocess: the CPU is split into two logical
devices, which TensorFlow allows only before it has initialised its devices.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from resnet_tf import distribute

ROOT = Path(__file__).resolve().parents[1]


def test_linear_scaling_rule():
    assert distribute.linear_scaling(0.1, 128) == pytest.approx(0.1)
    assert distribute.linear_scaling(0.1, 1024) == pytest.approx(0.8)
    assert distribute.linear_scaling(0.1, 64) == pytest.approx(0.05)
    assert distribute.linear_scaling(0.2, 512, base_batch=256) == pytest.approx(0.4)
    with pytest.raises(ValueError):
        distribute.linear_scaling(0.1, 0)


def test_gradual_warmup_only_for_larger_batches():
    assert distribute.warmup_steps(128, 390) == 0
    assert distribute.warmup_steps(1024, 48) == 240
    assert distribute.warmup_steps(256, 195, epochs=2) == 390


def test_global_batch_is_per_replica_times_replicas():
    assert distribute.global_batch_size(128, 8) == 1024
    with pytest.raises(ValueError):
        distribute.global_batch_size(128, 0)


def test_default_strategy_and_errors():
    import tensorflow as tf

    assert distribute.resolve_strategy("default") is tf.distribute.get_strategy()
    assert distribute.strategy_name(distribute.resolve_strategy("default")) == "default"
    with pytest.raises(ValueError, match="allowed"):
        distribute.resolve_strategy("horovod")


def test_auto_is_default_on_a_cpu_machine(monkeypatch):
    for var in ("COLAB_TPU_ADDR", "TPU_NAME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(distribute, "tpu_attached", lambda: False)
    assert distribute.strategy_name(distribute.resolve_strategy("auto")) == "default"
    assert distribute.device_kind(distribute.resolve_strategy("auto")) == "cpu"


def test_tpu_detection_reads_the_environment(monkeypatch):
    monkeypatch.setenv("COLAB_TPU_ADDR", "10.0.0.2:8470")
    assert distribute.tpu_attached()


def test_tpu_strategy_without_a_tpu_is_a_clear_error(monkeypatch):
    for var in ("COLAB_TPU_ADDR", "TPU_NAME"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(RuntimeError, match="TPU"):
        distribute.resolve_strategy("tpu")


def test_split_cpu_after_initialisation_explains_itself():
    import tensorflow as tf

    tf.constant(1.0) + 1.0  # devices are initialised by now
    with pytest.raises(RuntimeError, match="before"):
        distribute.split_cpu(3)


MIRRORED_SCRIPT = textwrap.dedent("""
    import json, sys
    from resnet_tf.distribute import split_cpu
    split_cpu(2)
    import keras
    from resnet_tf.reproduce import Table6Config, run_table6

    out = sys.argv[1]
    common = dict(depths=(8,), dataset="digits", epochs=2, steps_per_epoch=3, width=4,
                  verbose=0)
    single = run_table6(Table6Config(strategy="default", batch_size=32, out=out + "/single",
                                     **common), echo=lambda s: None)
    mirrored = run_table6(Table6Config(strategy="mirrored", batch_size=16, out=out + "/mirrored",
                                       **common), echo=lambda s: None)
    print(json.dumps({name: {"loss": r["results"][0]["curve"]["train_loss"],
                             "test_loss": r["results"][0]["test_loss"],
                             "steps": r["results"][0]["steps"],
                             "plan": r["results"][0]["plan"],
                             "run": json.load(open(r["run_dir"] + "/run.json"))}
                      for name, r in (("single", single), ("mirrored", mirrored))}))
""")


def test_mirrored_over_two_cpu_devices_matches_one_device(tmp_path):
    """Two replicas with 16 images each take the same steps as one device with 32.

    Batch norm normalises each replica's half separately, so the losses agree to
    within a small tolerance rather than exactly.
    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "MPLBACKEND": "Agg",
           "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, str(tmp_path)], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    single, mirrored = result["single"], result["mirrored"]
    assert single["run"]["strategy"] == "default" and single["run"]["replicas"] == 1
    assert mirrored["run"]["strategy"] == "mirrored" and mirrored["run"]["replicas"] == 2
    assert mirrored["plan"]["global_batch"] == single["plan"]["global_batch"] == 32
    assert mirrored["plan"]["peak_lr"] == pytest.approx(single["plan"]["peak_lr"])
    assert mirrored["steps"] == single["steps"] == 6
    assert mirrored["loss"] == pytest.approx(single["loss"], rel=0.02)
    assert mirrored["test_loss"] == pytest.approx(single["test_loss"], rel=0.05)
