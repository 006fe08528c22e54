r"""Training recipes for the CIFAR-10 reproduction: the paper's and a fast one.

:func:`plan` turns the paper's recipe (64k iterations at a batch of 128; rate
0.1, divided by 10 at 32k and 48k; momentum 0.9; weight decay 1e-4;
ResNet-110 warms up at 0.01 for its first 400 iterations) into numbers for a
given number of replicas, following the linear scaling rule: with a global
batch :math:`B = k \cdot 128`,

.. math:: \eta = 0.1\,k, \qquad T = 64000 / k, \qquad
          \text{boundaries at } T/2 \text{ and } 3T/4,

so the run covers the same number of epochs, plus a linear ramp from 0.1 to
:math:`0.1k` over the first 5 epochs when :math:`k > 1`.

``fast=True`` is a different, shorter recipe (not the paper's): a one-cycle
rate (linear ramp up to the peak over the first 15% of the steps, cosine
decay to zero after), label smoothing 0.1, Nesterov momentum, weight decay
5e-4 and 40 epochs at a batch of 512.

Weight decay here is the paper's L2 penalty :math:`\tfrac{\lambda}{2}\|w\|^2`,
added to the gradient before the momentum update (:class:`CoupledSGD`);
Keras' own ``SGD(weight_decay=...)`` shrinks the weights outside the momentum
buffer, which with momentum 0.9 is about ten times weaker.
"""

from __future__ import annotations

import dataclasses
import math

import keras

from .. import _deprecation, distribute
from ..runtime import PRECISIONS, performance  # noqa: F401 (PRECISIONS: former home)
from ..training import (  # noqa: F401
    CoupledSGD,
    SmoothedCrossEntropy,
    compile_model,
    learning_rate_schedule,
)
from . import paper

# The fast recipe (not the paper's): one-cycle over 40 epochs at a batch of 512 per replica.
FAST_BATCH = 512
FAST_EPOCHS = 40
FAST_LEARNING_RATE = 0.1
"""The fast recipe's rate at the paper's reference batch, scaled linearly to the global batch."""
FAST_RAMP_FRACTION = 0.15
FAST_MOMENTUM = 0.9
FAST_WEIGHT_DECAY = 5e-4
FAST_LABEL_SMOOTHING = 0.1
RAMP_EPOCHS = 5.0
"""The gradual warm-up of the linear scaling rule (Goyal et al., 2017), in epochs."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """Every number of one training run (see :func:`plan`)."""

    recipe: str
    per_replica_batch: int
    replicas: int
    global_batch: int
    peak_lr: float
    steps_per_epoch: int
    epochs: int
    total_steps: int
    schedule: str
    boundaries: tuple
    ramp_steps: int
    ramp_start_lr: float
    constant_steps: int
    constant_lr: float
    momentum: float
    nesterov: bool
    weight_decay: float
    label_smoothing: float

    def as_dict(self) -> dict:
        """A JSON-friendly dictionary."""
        return dataclasses.asdict(self)


def plan(
    n_train: int,
    depth: int = 20,
    replicas: int = 1,
    per_replica_batch: int | None = None,
    base_lr: float | None = None,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    fast: bool = False,
) -> Plan:
    r"""The numbers of one run of the paper's recipe (or of ``fast``) on ``n_train`` images.

    - global batch :math:`B = b \cdot r` (``per_replica_batch`` times ``replicas``);
    - rate :math:`\eta = \eta_{\mathrm{ref}} B / 128` (linear scaling rule);
    - steps per epoch :math:`\lfloor N / B \rfloor` (full batches only), or ``steps_per_epoch``;
    - epochs: ``round(64000 * 128 / B / steps_per_epoch)`` for the paper's recipe (164 at
      :math:`B = 128`, :math:`N = 50000`), 40 for ``fast``, or ``epochs``;
    - ResNet-110 (depth >= 110) runs its first :math:`400 \cdot 128 / B` steps at
      :math:`\eta / 10` (0.01 at :math:`B = 128`; at most a tenth of the run).
    """
    if n_train < 1:
        raise ValueError(f"no training images (n_train={n_train})")
    per_replica_batch = per_replica_batch or (FAST_BATCH if fast else paper.BATCH)
    global_batch = distribute.global_batch_size(per_replica_batch, replicas)
    if base_lr is not None:
        reference_lr = base_lr
    else:
        reference_lr = FAST_LEARNING_RATE if fast else paper.LEARNING_RATE
    peak = distribute.linear_scaling(reference_lr, global_batch, paper.BATCH)
    if steps_per_epoch is None:
        steps_per_epoch = n_train // global_batch
        if steps_per_epoch < 1:
            raise ValueError(
                f"{n_train} training images do not fill one global batch of {global_batch} "
                f"({per_replica_batch} x {replicas} replicas); lower --batch-size"
            )
    if epochs is None:
        if fast:
            epochs = FAST_EPOCHS
        else:
            steps = paper.ITERATIONS * paper.BATCH / global_batch
            epochs = max(1, round(steps / steps_per_epoch))
    total = epochs * steps_per_epoch
    if fast:
        ramp = max(1, round(FAST_RAMP_FRACTION * total))
        return Plan(
            "fast", per_replica_batch, replicas, global_batch, peak, steps_per_epoch, epochs,
            total, "onecycle", (), ramp, peak / 10.0, 0, peak, FAST_MOMENTUM,
            True, FAST_WEIGHT_DECAY, FAST_LABEL_SMOOTHING,
        )
    boundaries = tuple(round(b / paper.ITERATIONS * total) for b in paper.BOUNDARIES)
    ramp = distribute.warmup_steps(global_batch, steps_per_epoch, RAMP_EPOCHS, paper.BATCH)
    ramp = min(ramp, total // 10)
    constant = 0
    if depth >= 110:
        constant = max(1, round(paper.WARMUP_110_STEPS * paper.BATCH / global_batch))
        constant = min(constant, max(1, total // 10))
    return Plan(
        "paper", per_replica_batch, replicas, global_batch, peak, steps_per_epoch, epochs,
        total, "step", boundaries, ramp, reference_lr, constant, peak * paper.WARMUP_110_FACTOR,
        paper.MOMENTUM, False, paper.WEIGHT_DECAY, 0.0,
    )


@keras.saving.register_keras_serializable(package="resnet_tf")
class ReproSchedule(keras.optimizers.schedules.LearningRateSchedule):
    r"""Deprecated: use :func:`schedule_for` (or :func:`resnet_tf.training.learning_rate_schedule`);
    kept for one release, so models saved with it still load.

    Learning rate by step for :class:`Plan`.

    With peak rate :math:`\eta`, ``T`` total steps:

    - ``"step"``: :math:`\eta_t = \eta \cdot 0.1^{k(t)}`, ``k(t)`` the number of
      ``boundaries`` (absolute steps) with :math:`t \ge` boundary;
    - ``"onecycle"``: a linear ramp :math:`\eta_0 + (\eta - \eta_0) t / R` for
      :math:`t < R`, then :math:`\tfrac{\eta}{2}(1 + \cos(\pi (t - R)/(T - R)))`;
    - for ``"step"``, a gradual warm-up (linear scaling rule) replaces the first
      ``ramp_steps`` by :math:`\eta_0 + (\eta - \eta_0)\, t / R`;
    - a constant warm-up replaces the first ``constant_steps`` by ``constant_lr``.
    """

    def __init__(
        self,
        peak_lr: float,
        total_steps: int,
        kind: str = "step",
        boundaries: tuple = (),
        ramp_steps: int = 0,
        ramp_start_lr: float = 0.0,
        constant_steps: int = 0,
        constant_lr: float = 0.0,
    ):
        _deprecation.warn("resnet_tf.reproduce.recipe.ReproSchedule",
                          "resnet_tf.reproduce.recipe.schedule_for")
        if kind not in ("step", "onecycle"):
            raise ValueError(f"unknown schedule {kind!r}; allowed: step, onecycle")
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1; got {total_steps}")
        self.peak_lr = float(peak_lr)
        self.total_steps = int(total_steps)
        self.kind = kind
        self.boundaries = tuple(int(b) for b in boundaries)
        self.ramp_steps = int(ramp_steps)
        self.ramp_start_lr = float(ramp_start_lr)
        self.constant_steps = int(constant_steps)
        self.constant_lr = float(constant_lr)

    @classmethod
    def from_plan(cls, p: Plan) -> ReproSchedule:
        """The schedule of ``p``."""
        import warnings

        _deprecation.warn("resnet_tf.reproduce.recipe.ReproSchedule.from_plan",
                          "resnet_tf.reproduce.recipe.schedule_for")
        with warnings.catch_warnings():  # the constructor's own warning would name this line
            warnings.simplefilter("ignore", DeprecationWarning)
            return cls(p.peak_lr, p.total_steps, p.schedule, p.boundaries, p.ramp_steps,
                       p.ramp_start_lr, p.constant_steps, p.constant_lr)

    def __call__(self, step):
        from keras import ops

        t = ops.cast(step, "float32")
        peak = self.peak_lr
        ramp = float(max(self.ramp_steps, 1))
        ramped = self.ramp_start_lr + (peak - self.ramp_start_lr) * ops.minimum(t / ramp, 1.0)
        if self.kind == "step":
            lr = peak + 0.0 * t
            for b in self.boundaries:
                lr = ops.where(t >= b, lr * paper.DECAY_FACTOR, lr)
            if self.ramp_steps:
                lr = ops.where(t < self.ramp_steps, ramped, lr)
        else:
            span = float(max(self.total_steps - self.ramp_steps, 1))
            progress = ops.clip((t - self.ramp_steps) / span, 0.0, 1.0)
            decay = 0.5 * peak * (1.0 + ops.cos(math.pi * progress))
            lr = ops.where(t < self.ramp_steps, ramped, decay)
        if self.constant_steps:
            lr = ops.where(t < self.constant_steps, self.constant_lr + 0.0 * t, lr)
        return lr

    def get_config(self) -> dict:
        return {
            "peak_lr": self.peak_lr, "total_steps": self.total_steps, "kind": self.kind,
            "boundaries": self.boundaries, "ramp_steps": self.ramp_steps,
            "ramp_start_lr": self.ramp_start_lr, "constant_steps": self.constant_steps,
            "constant_lr": self.constant_lr,
        }


def schedule_for(p: Plan) -> keras.optimizers.schedules.LearningRateSchedule:
    """The learning rate of the plan ``p``: :func:`resnet_tf.training.learning_rate_schedule`
    with its peak rate, boundaries, linear ramp and constant warm-up."""
    return learning_rate_schedule(
        p.peak_lr, p.total_steps, p.schedule, boundaries=p.boundaries, ramp_steps=p.ramp_steps,
        ramp_start_lr=p.ramp_start_lr, constant_steps=p.constant_steps,
        constant_lr=p.constant_lr,
    )


def resolve_precision(precision: str = "auto", device: str = "cpu") -> str:
    """Deprecated: ``resnet_tf.runtime.performance(device, precision)["policy"]``."""
    _deprecation.warn("resnet_tf.reproduce.recipe.resolve_precision",
                      'resnet_tf.runtime.performance(device, precision)["policy"]')
    return performance(device, precision)["policy"]


def resolve_xla(xla: str | bool = "auto", device: str = "cpu", replicas: int = 1) -> bool:
    """Deprecated: ``resnet_tf.runtime.performance(device, xla=xla, replicas=replicas)["xla"]``."""
    _deprecation.warn("resnet_tf.reproduce.recipe.resolve_xla",
                      'resnet_tf.runtime.performance(device, xla=..., replicas=...)["xla"]')
    return performance(device, xla=xla, replicas=replicas)["xla"]


def compile_for(model: keras.Model, p: Plan, jit_compile: bool = False,
                steps_per_execution: int = 1) -> keras.Model:
    """Compile ``model`` (logits out) for the plan ``p``: the package's one compile,
    :func:`resnet_tf.training.compile_model`, with :func:`schedule_for`.

    Under a ``mixed_float16`` policy the optimizer is a ``LossScaleOptimizer``
    (dynamic loss scaling: the loss is multiplied by :math:`S` before the backward
    pass and the gradients divided by :math:`S`, :math:`S` halved on overflow and
    doubled after 2000 finite steps), set explicitly by ``compile_model``.
    """
    return compile_model(
        model, p.steps_per_epoch, p.epochs, momentum=p.momentum, weight_decay=p.weight_decay,
        schedule=schedule_for(p), label_smoothing=p.label_smoothing,
        nesterov=p.nesterov, jit_compile=jit_compile, steps_per_execution=steps_per_execution,
    )
