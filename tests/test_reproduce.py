"""``reproduce table6``: recipe numbers, pipeline, precision, and the command end to end
(tiny settings on digits / synthetic data, same code as the GPU run), with resume and
the refusal to overwrite."""

import csv
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from resnet_tf import data, runtime
from resnet_tf.cli import main
from resnet_tf.reproduce import RunExistsError, Table6Config, pipeline, recipe, run_table6
from resnet_tf.reproduce.runner import read_log

TINY = ["--dataset", "digits", "--depths", "8", "--epochs", "2", "--steps-per-epoch", "2",
        "--batch-size", "32", "--width", "4", "--verbose", "0"]


def tiny_config(out, **kw) -> Table6Config:
    settings = dict(depths=(8,), dataset="digits", epochs=2, steps_per_epoch=2, batch_size=32,
                    width=4, verbose=0, out=str(out))
    settings.update(kw)
    return Table6Config(**settings)


# --- the recipe ------------------------------------------------------------------------

def test_plan_is_the_papers_recipe_at_batch_128():
    p = recipe.plan(50_000, depth=56)
    assert (p.global_batch, p.steps_per_epoch, p.epochs) == (128, 390, 164)
    assert abs(p.total_steps - 64_000) < 390
    assert p.peak_lr == pytest.approx(0.1)
    assert p.boundaries == (round(32_000 / 64_000 * p.total_steps),
                            round(48_000 / 64_000 * p.total_steps))
    assert (p.momentum, p.weight_decay, p.nesterov) == (0.9, 1e-4, False)
    assert (p.ramp_steps, p.constant_steps) == (0, 0)


def test_resnet110_warms_up_at_0_01_for_400_iterations():
    p = recipe.plan(50_000, depth=110)
    assert p.constant_steps == 400 and p.constant_lr == pytest.approx(0.01)
    s = recipe.schedule_for(p)
    assert float(s(0)) == pytest.approx(0.01) and float(s(399)) == pytest.approx(0.01)
    assert float(s(400)) == pytest.approx(0.1)


def test_plan_scales_batch_and_rate_linearly_with_replicas():
    one, eight = recipe.plan(50_000, replicas=1), recipe.plan(50_000, replicas=8)
    assert eight.global_batch == 8 * one.global_batch == 1024
    assert eight.peak_lr == pytest.approx(8 * one.peak_lr)
    # the same number of examples seen, hence k times fewer steps
    assert eight.total_steps * 1024 == pytest.approx(64_000 * 128, abs=1024 * 48)
    assert eight.ramp_steps == 5 * eight.steps_per_epoch and one.ramp_steps == 0
    s = recipe.schedule_for(eight)
    assert float(s(0)) == pytest.approx(0.1)  # the ramp starts at the reference rate
    assert float(s(eight.ramp_steps // 2)) == pytest.approx(0.45, rel=0.02)
    assert float(s(eight.ramp_steps)) == pytest.approx(0.8)
    assert float(s(eight.boundaries[0])) == pytest.approx(0.08)
    assert float(s(eight.boundaries[1])) == pytest.approx(0.008)


def test_fast_plan_is_a_one_cycle_with_label_smoothing():
    p = recipe.plan(50_000, fast=True)
    assert (p.recipe, p.schedule, p.epochs, p.global_batch) == ("fast", "onecycle", 40, 512)
    assert p.label_smoothing == 0.1 and p.nesterov
    s = recipe.schedule_for(p)
    lrs = [float(s(t)) for t in range(0, p.total_steps + 1, 50)]
    top = int(np.argmax(lrs))
    assert max(lrs) == pytest.approx(p.peak_lr, rel=0.02)
    assert all(np.diff(lrs[: top + 1]) >= 0) and all(np.diff(lrs[top:]) <= 1e-9)
    assert float(s(p.total_steps)) == pytest.approx(0.0, abs=1e-6)


def test_plan_rejects_too_few_images():
    with pytest.raises(ValueError, match="global batch"):
        recipe.plan(100, per_replica_batch=128)


def test_coupled_sgd_puts_weight_decay_inside_momentum():
    w0, g, lam, lr, mu = np.array([1.0, -2.0]), np.array([0.5, 0.25]), 0.1, 0.5, 0.9
    w = keras.Variable(w0.astype("float32"))
    opt = recipe.CoupledSGD(l2=lam, learning_rate=lr, momentum=mu)
    v, ref = np.zeros(2), w0.copy()
    for _ in range(3):
        opt.apply_gradients([(keras.ops.convert_to_tensor(g.astype("float32")), w)])
        v = mu * v - lr * (g + lam * ref)
        ref = ref + v
    np.testing.assert_allclose(w.numpy(), ref, rtol=1e-5)
    assert recipe.CoupledSGD.from_config(opt.get_config()).l2 == lam


def test_precision_and_xla_choices():
    with pytest.warns(DeprecationWarning, match="runtime.performance"):
        recipe.resolve_precision("auto", "gpu")
    with pytest.warns(DeprecationWarning, match="runtime.performance"):
        recipe.resolve_xla("auto", "gpu", 1)
    assert recipe.resolve_precision("auto", "gpu") == "mixed_float16"
    assert recipe.resolve_precision("auto", "tpu") == "mixed_bfloat16"
    assert recipe.resolve_precision("auto", "cpu") == "float32"
    assert recipe.resolve_xla("auto", "gpu", 1) and not recipe.resolve_xla("auto", "cpu", 1)
    assert not recipe.resolve_xla("auto", "gpu", 2) and recipe.resolve_xla("on", "cpu", 1)
    with pytest.raises(ValueError):
        recipe.resolve_precision("half")


def test_mixed_precision_policy_is_applied():
    from resnet_tf.models import cifar_resnet

    keras.mixed_precision.set_global_policy(runtime.performance("gpu", "mixed_float16")["policy"])
    model = cifar_resnet(8, width=4, input_shape=(16, 16, 1), classifier_activation=None)
    recipe.compile_for(model, recipe.plan(1000, per_replica_batch=32, epochs=1))
    conv = model.get_layer("stem_conv")
    assert conv.compute_dtype == "float16" and conv.variable_dtype == "float32"
    assert all(v.dtype == "float32" for v in model.weights)
    assert model.get_layer("predictions").compute_dtype == "float32"  # logits and loss
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(model.optimizer.inner_optimizer, recipe.CoupledSGD)
    x = np.random.default_rng(0).normal(size=(32, 16, 16, 1)).astype("float32")
    y = np.arange(32) % 10
    loss, _ = model.train_on_batch(x, y)
    assert np.isfinite(loss)


# --- the pipeline ----------------------------------------------------------------------

def test_the_reproduction_augments_through_the_package():
    images = tf.constant(np.random.default_rng(0).normal(size=(4, 6, 6, 1)).astype("float32"))
    with pytest.warns(DeprecationWarning, match="data.augment_batch"):
        old = pipeline.augment_batch(images, tf.constant([3, 4]), pad=2)
    np.testing.assert_array_equal(old, data.augment_batch(images, tf.constant([3, 4]), pad=2))


def test_train_stream_is_keyed_by_step():
    x = np.arange(40, dtype="float32").reshape(40, 1, 1, 1) * np.ones((1, 4, 4, 1), "float32")
    y = np.arange(40, dtype="int32")
    ds = pipeline.train_dataset(x, y, 8, seed=1, flip=True, pad=0)
    first = [b[1].numpy() for b in ds.take(12)]
    again = [b[1].numpy() for b in ds.take(12)]  # a second iterator: the same stream
    later = [b[1].numpy() for b in pipeline.train_dataset(x, y, 8, 1, start_step=7).take(5)]
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(first[7:], later, strict=True):
        np.testing.assert_array_equal(a, b)
    assert sorted(np.concatenate(first[:5])) == list(range(40))  # epoch 1 is a permutation
    assert not np.array_equal(np.concatenate(first[:5]), np.concatenate(first[5:10]))


def test_eval_batches_divide_the_test_set():
    assert pipeline.eval_batch_size(10_000, 1) == 500 and pipeline.eval_batch_size(10_000, 8) == 400
    assert pipeline.eval_batch_size(360, 1) == 360 and pipeline.eval_batch_size(360, 7) == 1


def test_synthetic_data_shapes():
    with pytest.warns(DeprecationWarning, match="data.synthetic_images"):
        (xtr, ytr), (xte, yte) = pipeline.synthetic(64, 32)
    assert xtr.shape == (64, 32, 32, 3) and xte.shape == (32, 32, 32, 3)
    assert ytr.dtype == np.int32 and set(ytr) <= set(range(10))


def test_the_reproduction_reads_the_package_registry():
    ((xtr, _), _), flip = pipeline.load("synthetic", seed=3)
    (raw, _), _ = data.load("synthetic", seed=3)
    np.testing.assert_allclose(xtr, data.standardize(raw)[0])
    assert flip and set(pipeline.DATASETS) <= set(data.DATASETS)
    with pytest.raises(ValueError, match="allowed: cifar10, digits, synthetic"):
        pipeline.load("spirals")


# --- the command, end to end -----------------------------------------------------------

def test_command_writes_table_figure_and_json(tmp_path, capsys):
    out = tmp_path / "run"
    args = [*TINY, "--plain", "--precision", "mixed_float16", "--out", str(out)]
    assert main(["reproduce", "table6", *args]) == 0
    text = capsys.readouterr().out
    assert "strategy default" in text and "precision mixed_float16" in text
    md = (out / "table6.md").read_text()
    assert "| ResNet-8 |" in md and "| plain-8 |" in md and "Table 6" in md
    with (out / "table6.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["network"] for r in rows] == ["ResNet-8", "plain-8"]
    assert all(0.0 <= float(r["test_error"]) <= 100.0 for r in rows)
    figures = json.loads((out / "figures.json").read_text())
    assert figures["figure"] == "degradation.png"
    assert set(figures["curves"]) == {"resnet8", "plain8"}
    assert len(figures["curves"]["resnet8"]["test_error"]) == 2
    assert figures["paper"]["table6_error"]["20"] == 8.75
    assert (out / "degradation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["depths"] == [8] and run["strategy"] == "default"
    result = json.loads((out / "models" / "resnet8" / "result.json").read_text())
    assert result["steps"] == 4 and not (out / "models" / "resnet8" / "backup").exists()
    assert result["precision"] == "mixed_float16"
    assert keras.mixed_precision.global_policy().name == "float32"  # restored afterwards


def test_command_refuses_to_overwrite_a_run(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text('{"config": {}}')
    (out / "table6.md").write_text("earlier results")
    assert main(["reproduce", "table6", *TINY, "--out", str(out)]) == 1
    assert "--resume" in capsys.readouterr().err
    assert (out / "table6.md").read_text() == "earlier results"
    assert sorted(p.name for p in out.iterdir()) == ["run.json", "table6.md"]


def test_resume_refuses_different_settings(tmp_path):
    (tmp_path / "run").mkdir()
    stored = tiny_config(tmp_path / "run", epochs=1, steps_per_epoch=1).comparable()
    (tmp_path / "run" / "run.json").write_text(json.dumps({"config": stored}))
    with pytest.raises(RunExistsError, match="different settings"):
        run_table6(tiny_config(tmp_path / "run", epochs=2, steps_per_epoch=1), resume=True)


def test_unknown_depth_is_an_error(capsys):
    assert main(["reproduce", "table6", "--depths", "21", "--out", "unused"]) == 2
    assert "6n+2" in capsys.readouterr().err


class Interrupt(Exception):
    """Stands for a Colab disconnect."""


class InterruptAfter(keras.callbacks.Callback):
    def __init__(self, steps):
        super().__init__()
        self.steps, self.seen = steps, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.steps:
            raise Interrupt(f"disconnected after {self.steps} steps")


class Recorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs, self.start_iterations = [], None

    def on_train_begin(self, logs=None):
        self.start_iterations = int(self.model.optimizer.iterations.numpy())

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def test_interrupted_run_resumes_where_it_stopped(tmp_path):
    config = tiny_config(tmp_path / "run", epochs=3, steps_per_epoch=2, depths=(8,))
    with pytest.raises(Interrupt):
        run_table6(config, callbacks=[InterruptAfter(5)])  # in the third epoch
    model_dir = tmp_path / "run" / "models" / "resnet8"
    assert not (model_dir / "result.json").exists()
    assert [int(r["epoch"]) for r in read_log(model_dir / "log.csv")] == [0, 1]

    recorder = Recorder()
    with pytest.raises(RunExistsError):
        run_table6(config)
    resumed = run_table6(config, resume=True, callbacks=[recorder])
    assert recorder.epochs == [2] and recorder.start_iterations == 4  # continued, not restarted
    result = resumed["results"][0]
    assert result["steps"] == 6
    assert [int(r["epoch"]) for r in read_log(model_dir / "log.csv")] == [0, 1, 2]

    # The resumed run is the uninterrupted run, step for step.
    straight = run_table6(tiny_config(tmp_path / "straight", epochs=3, steps_per_epoch=2))
    assert result["test_loss"] == pytest.approx(straight["results"][0]["test_loss"], rel=1e-5)
    assert result["curve"]["train_loss"] == pytest.approx(
        straight["results"][0]["curve"]["train_loss"], rel=1e-5
    )

    # A finished run resumes to nothing: every model is skipped.
    again = run_table6(config, resume=True, callbacks=[InterruptAfter(1)])
    assert again["results"][0]["test_error"] == result["test_error"]


def test_steps_per_call_divides_the_epoch():
    from resnet_tf.reproduce.runner import steps_per_call

    assert steps_per_call(32, 48) == 24 and steps_per_call(32, 390) == 30
    assert steps_per_call(1, 390) == 1 and steps_per_call(8, 3) == 3


XLA_SCRIPT = """
from resnet_tf.reproduce import Table6Config, run_table6
import resnet_tf.reproduce.runner as runner
runner.distribute.device_kind = lambda strategy=None: "gpu"   # take the GPU defaults
r = run_table6(Table6Config(depths=(8,), dataset="synthetic", epochs=2, steps_per_epoch=3,
                            batch_size=32, width=4, steps_per_execution=3, verbose=0,
                            out=__import__("sys").argv[1]), echo=lambda s: None)
res = r["results"][0]
assert res["xla"] and res["precision"] == "mixed_float16" and res["steps"] == 6, res
print("ok")
"""


@pytest.mark.slow
def test_gpu_defaults_compile_with_xla_and_mixed_precision(tmp_path):
    """The GPU path (mixed_float16, XLA, several steps per call) traced and run on the CPU."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-c", XLA_SCRIPT, str(tmp_path / "run")],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]
