"""Training and inference throughput of ResNet-20 on this machine.

One run measures, in this order:

1. the float32 matrix-multiply peak of the machine (GFLOP/s), from a large
   ``tf.linalg.matmul`` timed after a warm-up;
2. images per second of ``resnet_tf.models.cifar_resnet(20)`` (fused batch
   norm) and of the same network assembled from stock Keras layers
   (``keras.layers.BatchNormalization``, ``keras.layers.Add``), training and
   inference, on random 32x32x3 data, both compiled with SGD + momentum and
   sparse categorical cross-entropy;
3. optionally (``--jit``) the same two models compiled with XLA.

From these it derives the forward multiply-adds per image, the achieved
GFLOP/s (a training step counts 3 forward passes, 2 FLOPs per multiply-add),
the fraction of the matmul peak this represents (the peak is re-measured
between repeats and its median used, as other load on the machine moves it),
and the training speed-up
``resnet_tf / stock Keras``.

Every figure is the median over ``--repeats`` timed runs of ``--steps`` steps,
after untimed warm-up steps (which include tracing and compilation). The
models' steps are interleaved (one step of each in turn), so a slow patch of a
shared machine hits all of them alike.

Usage::

    python benchmarks/throughput.py --batch 128 --steps 20 --repeats 5 --json out.json
    python benchmarks/throughput.py --jit            # also time XLA builds
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers, ops  # noqa: E402

#: Multiply-adds of one 32x32 forward pass of CIFAR ResNet-20, option A.
RESNET20_MACS = 40_551_040


# ---------------------------------------------------------------------------
# Stock-Keras twin of resnet_tf.models.cifar_resnet
# ---------------------------------------------------------------------------


class StockZeroPad(layers.Layer):
    """Option-A shortcut from plain ops: subsample by 2, zero-pad the channels."""

    def __init__(self, filters: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.filters = filters

    def call(self, inputs):
        x = inputs[:, ::2, ::2, :]
        extra = self.filters - inputs.shape[-1]
        return ops.pad(x, [[0, 0], [0, 0], [0, 0], [extra // 2, extra - extra // 2]])

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        n, h, w, _ = input_shape

        def half(size: int | None) -> int | None:
            return None if size is None else -(-size // 2)

        return (n, half(h), half(w), self.filters)


def stock_cifar_resnet(
    depth: int = 20, width: int = 16, input_shape: tuple = (32, 32, 3), classes: int = 10
) -> keras.Model:
    """CIFAR ResNet (post-activation, option A) from stock Keras layers only.

    Same layer sizes, initialisers and batch-norm epsilon as
    ``resnet_tf.models.cifar_resnet``; only the batch norm (the stock
    ``keras.layers.BatchNormalization``), the join (``keras.layers.Add``) and
    the shortcut layer differ.
    """
    n = (depth - 2) // 6

    def conv(filters: int, stride: int = 1) -> layers.Conv2D:
        return layers.Conv2D(
            filters, 3, strides=stride, padding="same", use_bias=False,
            kernel_initializer="he_normal",
        )

    inputs = keras.Input(shape=input_shape)
    x = layers.Activation("relu")(layers.BatchNormalization()(conv(width)(inputs)))
    for stage in range(3):
        filters = width * 2**stage
        for b in range(n):
            stride = 2 if stage > 0 and b == 0 else 1
            shortcut = StockZeroPad(filters)(x) if stride == 2 else x
            y = layers.Activation("relu")(layers.BatchNormalization()(conv(filters, stride)(x)))
            y = layers.BatchNormalization()(conv(filters)(y))
            x = layers.Activation("relu")(layers.Add()([shortcut, y]))
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name=f"stock_resnet{depth}")


def resnet_tf_cifar_resnet(depth: int = 20) -> keras.Model:
    """``resnet_tf.models.cifar_resnet(depth)`` (option A, fused batch norm)."""
    from resnet_tf.models import cifar_resnet

    return cifar_resnet(depth)


# ---------------------------------------------------------------------------
# Counting
# ---------------------------------------------------------------------------


def forward_macs(model: keras.Model) -> int:
    """Multiply-adds of one forward pass for one example (convolutions and dense layers)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            kh, kw = layer.kernel_size
            out = layer.output.shape
            total += int(np.prod(out[1:])) * kh * kw * (layer.input.shape[-1] // layer.groups)
        elif isinstance(layer, layers.Dense):
            total += int(np.prod(layer.kernel.shape))
    return total


def package_macs(model: keras.Model) -> int | None:
    """The same count from ``resnet_tf.analysis.flops`` when that module is available."""
    try:
        from resnet_tf.analysis.flops import count_macs
    except ImportError:
        return None
    try:
        return int(count_macs(model))
    except Exception:  # a cross-check only; never fail the benchmark over it
        return None


# ---------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------


_CHAINS: dict[int, Callable] = {}


def _matmul_chain(inner: int) -> Callable:
    """A ``tf.function`` chaining ``inner`` dependent products (traced once per ``inner``)."""
    if inner not in _CHAINS:

        @tf.function
        def chain(a, b):
            acc = tf.zeros((), tf.float32)
            for _ in range(inner):
                c = tf.linalg.matmul(a, b)
                acc += c[0, 0]
                a = a + 1e-6 * acc  # a data dependency, so no product can be skipped
            return acc

        _CHAINS[inner] = chain
    return _CHAINS[inner]


def matmul_peak(size: int = 2048, repeats: int = 5, inner: int = 10) -> float:
    """Float32 GFLOP/s of a ``size x size`` matmul (median of ``repeats``).

    Each timed run chains ``inner`` products inside one ``tf.function`` so the
    Python overhead is negligible; ``2 size^3`` FLOPs per product.
    """
    a = tf.random.normal((size, size), dtype=tf.float32)
    b = tf.random.normal((size, size), dtype=tf.float32)
    chain = _matmul_chain(inner)
    chain(a, b).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        chain(a, b).numpy()
        times.append(time.perf_counter() - start)
    return 2.0 * size**3 * inner / statistics.median(times) / 1e9


def compile_for_benchmark(model: keras.Model, jit: bool) -> keras.Model:
    """SGD(0.1, momentum 0.9) with sparse categorical cross-entropy, as the recipe uses."""
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.1, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        jit_compile=jit,
    )
    return model


class Runner:
    """Times training and inference steps of one compiled model on a fixed batch."""

    def __init__(self, name: str, model: keras.Model, x: tf.Tensor, y: tf.Tensor,
                 warmup: int) -> None:
        self.name = name
        self.model = model
        self.x = x
        self.y = y
        self.batch = int(x.shape[0])
        self.train_times: list[float] = []
        self.infer_times: list[float] = []
        for _ in range(warmup):
            model.train_on_batch(x, y)
        for _ in range(warmup):
            model.predict_on_batch(x)

    def train_step(self) -> float:
        """Seconds of one training step (the call returns NumPy, so the step is done)."""
        start = time.perf_counter()
        self.model.train_on_batch(self.x, self.y)
        return time.perf_counter() - start

    def infer_step(self) -> float:
        """Seconds of one inference step."""
        start = time.perf_counter()
        self.model.predict_on_batch(self.x)
        return time.perf_counter() - start

    def summary(self, macs: int, peak: float) -> dict:
        """Medians and derived figures, as a JSON-ready dictionary."""
        train_step = statistics.median(self.train_times)
        infer_step = statistics.median(self.infer_times)
        train_ips = self.batch / train_step
        infer_ips = self.batch / infer_step
        train_gflops = train_ips * 3 * 2 * macs / 1e9
        infer_gflops = infer_ips * 2 * macs / 1e9
        return {
            "train_images_per_s": train_ips,
            "infer_images_per_s": infer_ips,
            "train_ms_per_step": 1e3 * train_step,
            "infer_ms_per_step": 1e3 * infer_step,
            "train_gflops": train_gflops,
            "infer_gflops": infer_gflops,
            "train_utilisation": train_gflops / peak,
            "infer_utilisation": infer_gflops / peak,
            "train_ms_per_step_all": [1e3 * t for t in self.train_times],
            "infer_ms_per_step_all": [1e3 * t for t in self.infer_times],
        }


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=128, help="images per step (128)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per repeat (20)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats; medians (5)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per model (3)")
    parser.add_argument("--depth", type=int, default=20, help="CIFAR ResNet depth 6n+2 (20)")
    parser.add_argument("--matmul-size", type=int, default=2048,
                        help="side of the square matmul used for the peak (2048)")
    parser.add_argument("--jit", action="store_true",
                        help="also time both models compiled with jit_compile=True (XLA)")
    parser.add_argument("--json", type=Path, default=None, help="write every figure to PATH")
    args = parser.parse_args(argv)
    if args.depth < 8 or (args.depth - 2) % 6:
        parser.error(f"--depth must be 6n+2 (20, 32, 44, ...); got {args.depth}")
    for name in ("batch", "steps", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    return args


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print a table, optionally write JSON; return the figures."""
    args = parse_args(argv)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.random((args.batch, 32, 32, 3), dtype=np.float32))
    y = tf.constant(rng.integers(0, 10, args.batch).astype("int32"))

    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, "
          f"{os.cpu_count()} CPU threads, TF_ENABLE_ONEDNN_OPTS="
          f"{os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'default')}", flush=True)
    peaks = [matmul_peak(args.matmul_size)]
    print(f"fp32 matmul peak ({args.matmul_size}^2): {peaks[0]:.1f} GFLOP/s", flush=True)

    builders = {
        "resnet_tf": lambda: resnet_tf_cifar_resnet(args.depth),
        "stock_keras": lambda: stock_cifar_resnet(args.depth),
    }
    variants = [(name, False) for name in builders]
    if args.jit:
        variants += [(name, True) for name in builders]

    runners: dict[str, Runner] = {}
    macs: dict[str, int] = {}
    for name, jit in variants:
        key = f"{name}_xla" if jit else name
        model = compile_for_benchmark(builders[name](), jit)
        macs[key] = forward_macs(model)
        print(f"warming up {key} ...", flush=True)
        runners[key] = Runner(key, model, x, y, args.warmup)

    for _ in range(args.repeats):  # steps interleaved A B A B ..., the peak between repeats
        train = dict.fromkeys(runners, 0.0)
        infer = dict.fromkeys(runners, 0.0)
        for _ in range(args.steps):
            for key, runner in runners.items():
                train[key] += runner.train_step()
        for _ in range(args.steps):
            for key, runner in runners.items():
                infer[key] += runner.infer_step()
        for key, runner in runners.items():
            runner.train_times.append(train[key] / args.steps)
            runner.infer_times.append(infer[key] / args.steps)
        peaks.append(matmul_peak(args.matmul_size, repeats=1))
    peak = statistics.median(peaks)

    reference = next(iter(runners.values())).model
    cross_check = package_macs(reference)
    model_macs = macs["resnet_tf"]
    results = {key: runner.summary(macs[key], peak) for key, runner in runners.items()}
    ratio = (results["resnet_tf"]["train_images_per_s"]
             / results["stock_keras"]["train_images_per_s"])
    infer_ratio = (results["resnet_tf"]["infer_images_per_s"]
                   / results["stock_keras"]["infer_images_per_s"])
    mine, stock = runners["resnet_tf"].train_times, runners["stock_keras"].train_times
    best_ratio = min(stock) / min(mine)
    paired_ratio = statistics.median(s / m for m, s in zip(mine, stock, strict=True))
    report = {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "cpu_threads": os.cpu_count(),
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
        "batch": args.batch,
        "steps": args.steps,
        "repeats": args.repeats,
        "depth": args.depth,
        "matmul_peak_gflops": peak,
        "matmul_peak_gflops_max": max(peaks),
        "matmul_peak_gflops_all": peaks,
        "forward_macs_per_image": model_macs,
        "forward_macs_per_image_analysis": cross_check,
        "train_flops_per_image": 3 * 2 * model_macs,
        "models": results,
        "train_ratio_resnet_tf_over_stock": ratio,
        "train_ratio_resnet_tf_over_stock_best": best_ratio,
        "train_ratio_resnet_tf_over_stock_paired": paired_ratio,
        "infer_ratio_resnet_tf_over_stock": infer_ratio,
    }
    if args.jit:
        report["train_ratio_xla_over_graph_resnet_tf"] = (
            results["resnet_tf_xla"]["train_images_per_s"]
            / results["resnet_tf"]["train_images_per_s"])
        report["train_ratio_xla_over_graph_stock"] = (
            results["stock_keras_xla"]["train_images_per_s"]
            / results["stock_keras"]["train_images_per_s"])

    print(f"\nfp32 matmul peak, median of {len(peaks)}: {peak:.1f} GFLOP/s "
          f"(best {max(peaks):.1f}); utilisation below is relative to the median")
    print(f"ResNet-{args.depth}: {model_macs / 1e6:.2f}M multiply-adds per image forward"
          + (f" (resnet_tf.analysis: {cross_check / 1e6:.2f}M)" if cross_check else "")
          + f"; training {6 * model_macs / 1e6:.1f} MFLOP per image")
    header = (f"{'model':<18}{'train img/s':>12}{'GFLOP/s':>9}{'util':>7}"
              f"{'infer img/s':>13}{'GFLOP/s':>9}{'util':>7}")
    print(header)
    print("-" * len(header))
    for key, r in results.items():
        print(f"{key:<18}{r['train_images_per_s']:>12.1f}{r['train_gflops']:>9.1f}"
              f"{r['train_utilisation']:>7.1%}{r['infer_images_per_s']:>13.1f}"
              f"{r['infer_gflops']:>9.1f}{r['infer_utilisation']:>7.1%}")
    print(f"\ntraining speed-up resnet_tf / stock Keras: {ratio:.2f}x "
          f"(best repeats {best_ratio:.2f}x, median of paired repeats {paired_ratio:.2f}x; "
          f"inference {infer_ratio:.2f}x)")
    if args.jit:
        print(f"XLA / graph, training: resnet_tf "
              f"{report['train_ratio_xla_over_graph_resnet_tf']:.2f}x, stock Keras "
              f"{report['train_ratio_xla_over_graph_stock']:.2f}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return report


if __name__ == "__main__":
    main()
