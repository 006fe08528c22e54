r"""Training on more than one device through ``tf.distribute``.

One flag picks the strategy (:func:`resolve_strategy`):

- ``"default"``: TensorFlow's default strategy (one device: the GPU if there is
  one, else the CPU);
- ``"mirrored"``: :class:`tf.distribute.MirroredStrategy`, synchronous data
  parallelism over every local GPU (or, on a machine without GPUs, over the
  logical CPU devices; see :func:`split_cpu`);
- ``"tpu"``: :class:`tf.distribute.TPUStrategy` on an attached TPU (Colab's TPU
  runtime);
- ``"auto"``: TPU if one is attached, mirrored when more than one GPU is
  visible, the default strategy otherwise.

Every replica holds a full copy of the model; each global batch is split
evenly between replicas and the gradients are all-reduced (summed after the
loss has been divided by the number of replicas), so one step of ``k``
replicas on per-replica batches of ``b`` is one SGD step on a batch of
``k b``. To keep the number of epochs fixed while the batch grows, the
learning rate follows the linear scaling rule with gradual warm-up of Goyal et
al. (2017), :func:`linear_scaling` and :func:`warmup_steps`.
"""

from __future__ import annotations

import glob
import os

from . import paper
from .runtime import gpu_devices

STRATEGIES = ("auto", "default", "mirrored", "tpu")
REFERENCE_BATCH = paper.BATCH
"""The batch size the paper's learning rate (0.1) was tuned for."""


def split_cpu(n: int) -> list:
    """Split the host CPU into ``n`` logical devices (for rehearsing multi-device code).

    Must run before TensorFlow initialises its devices (before the first op or
    device query of the process); afterwards TensorFlow refuses and this
    raises ``RuntimeError`` saying so. Returns the logical CPU devices.
    """
    import tensorflow as tf

    if not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of logical CPU devices must be >= 1; got {n!r}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)]
        )
    except RuntimeError as error:
        current = tf.config.get_logical_device_configuration(cpu)
        if current is not None and len(current) == n:
            return tf.config.list_logical_devices("CPU")
        raise RuntimeError(
            "cannot split the CPU into logical devices once TensorFlow has initialised them; "
            "call split_cpu() (or pass --cpu-devices) before anything else touches TensorFlow, "
            "e.g. in a fresh process"
        ) from error
    return tf.config.list_logical_devices("CPU")


def tpu_attached() -> bool:
    """True when a TPU looks attached (Colab's TPU runtime, a TPU VM, ``TPU_NAME``)."""
    if os.environ.get("COLAB_TPU_ADDR") or os.environ.get("TPU_NAME"):
        return True
    return bool(glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*"))


def _connect_tpu():
    import tensorflow as tf

    errors = []
    for target in (None, "local"):
        try:
            if target is None:
                resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            else:
                resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=target)
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            return tf.distribute.TPUStrategy(resolver)
        except (ValueError, RuntimeError, tf.errors.OpError) as error:
            errors.append(f"{target or 'auto'}: {type(error).__name__}: {error}")
    raise RuntimeError(
        "no TPU could be reached (" + "; ".join(errors) + "). In Colab choose "
        "Runtime > Change runtime type > TPU, or use --strategy auto/default."
    )


_STRATEGIES: dict = {}


def resolve_strategy(name: str = "auto"):
    """Return the ``tf.distribute.Strategy`` called ``name`` (see the module docstring).

    ``"mirrored"`` uses every local GPU, or every logical CPU device when there
    is no GPU. ``"tpu"`` raises ``RuntimeError`` when no TPU can be reached.
    A process creates each strategy once and hands the same object back later:
    a second ``MirroredStrategy`` would clash with the first one's collective
    ops, and initialising a TPU again wipes its memory.
    """
    import tensorflow as tf

    key = str(name).lower()
    if key not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; allowed: {', '.join(STRATEGIES)}")
    if key == "auto":
        if tpu_attached():
            key = "tpu"
        elif len(gpu_devices()) > 1:
            key = "mirrored"
        else:
            key = "default"
    if key == "default":
        return tf.distribute.get_strategy()
    if key not in _STRATEGIES:
        if key == "tpu":
            _STRATEGIES[key] = _connect_tpu()
        else:
            gpus = tf.config.list_logical_devices("GPU")
            devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
            _STRATEGIES[key] = tf.distribute.MirroredStrategy(devices=devices)
    return _STRATEGIES[key]


def strategy_name(strategy) -> str:
    """A short name: ``"default"``, ``"mirrored"``, ``"tpu"`` or the class name."""
    cls = type(strategy).__name__
    if cls.startswith("_Default"):
        return "default"
    if cls.startswith("Mirrored"):
        return "mirrored"
    if cls.startswith("TPU"):
        return "tpu"
    return cls


def device_kind(strategy=None) -> str:
    """``"tpu"``, ``"gpu"`` or ``"cpu"``: what the replicas of ``strategy`` run on."""

    if strategy is not None and strategy_name(strategy) == "tpu":
        return "tpu"
    return "gpu" if gpu_devices() else "cpu"


def linear_scaling(base_lr: float, global_batch: int, base_batch: int = REFERENCE_BATCH) -> float:
    r"""The linear scaling rule: multiply the batch by ``k``, multiply the rate by ``k``.

    .. math:: \eta(B) = \eta_{\mathrm{ref}} \cdot \frac{B}{B_{\mathrm{ref}}}

    With ``k = B / B_ref``, ``k`` steps of SGD at rate ``eta`` on batches of
    ``B_ref`` and one step at ``k eta`` on their union move the weights by
    nearly the same amount while the gradient changes slowly (Goyal et al.,
    2017, section 2.1). The paper's reference is 0.1 at a batch of 128.
    """
    if global_batch < 1 or base_batch < 1:
        raise ValueError(f"batch sizes must be positive; got {global_batch} and {base_batch}")
    return float(base_lr) * global_batch / base_batch


def warmup_steps(
    global_batch: int, steps_per_epoch: int, epochs: float = 5.0,
    base_batch: int = REFERENCE_BATCH,
) -> int:
    r"""Length of the gradual warm-up that goes with :func:`linear_scaling`.

    Early in training the gradient changes fast and the linear rule breaks
    down, so the rate ramps linearly from :math:`\eta_{\mathrm{ref}}` to
    :math:`k\,\eta_{\mathrm{ref}}` over the first ``epochs`` epochs (5 in
    Goyal et al.):

    .. math:: \eta_t = \eta_{\mathrm{ref}}\Big(1 + (k - 1)\,\frac{t}{T_w}\Big),
              \quad t < T_w = \text{epochs} \cdot \text{steps per epoch}.

    Returns 0 when the batch is not larger than the reference (``k <= 1``).
    """
    if global_batch <= base_batch:
        return 0
    return max(1, round(epochs * steps_per_epoch))


def global_batch_size(per_replica_batch: int, replicas: int) -> int:
    """``per_replica_batch * replicas``: what one synchronous step averages over."""
    if per_replica_batch < 1 or replicas < 1:
        raise ValueError(
            f"per-replica batch and replica count must be positive; got "
            f"{per_replica_batch} and {replicas}"
        )
    return per_replica_batch * replicas
