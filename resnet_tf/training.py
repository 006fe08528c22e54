"""The paper's training recipe as one ``fit`` call.

Defaults follow He et al. (2015), section 4.2: SGD with momentum 0.9, weight
decay 1e-4, batch 128, learning rate 0.1 divided by 10 at 50% and 75% of
training (32k and 48k of 64k iterations), pad-crop-flip augmentation. A cosine
schedule and a short warm-up (ResNet-110 trains its first ~400 steps at 0.01)
are options. In the full profile on a GPU, :func:`compile_model` compiles with
XLA and :func:`precision_scope` builds models in mixed precision (see
:func:`resnet_tf.runtime.performance`); on a CPU the float32 graph with the fused
batch norm is fastest.
"""

from __future__ import annotations

import contextlib
import math
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence

import keras
import numpy as np

from . import _deprecation, paper
from .data import make_dataset
from .runtime import performance, seed_everything

SCHEDULES = ("step", "cosine", "constant")
"""The schedules of :func:`fit` and the ``train`` command (:func:`learning_rate_schedule`
also accepts ``"onecycle"``)."""


@keras.saving.register_keras_serializable(package="resnet_tf")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    r"""A linear (or constant) warm-up in front of another schedule.

    .. math:: \eta_t = \eta_a + (\eta_b - \eta_a)\,\frac{t}{W} \quad (t < W), \qquad
              \eta_t = \mathrm{then}(t) \quad (t \ge W)

    ``start_lr`` is :math:`\eta_a`, ``end_lr`` :math:`\eta_b` (``None``: the same as
    ``start_lr``, a constant warm-up), ``steps`` :math:`W`. ``then`` runs on the same
    step count, not shifted by :math:`W`. Keras' own ``CosineDecay`` has a linear
    warm-up but shifts its decay behind it, and ``PiecewiseConstantDecay`` has none:
    this class is only for what they cannot express (see :func:`learning_rate_schedule`).
    """

    def __init__(self, steps: int, start_lr: float, end_lr: float | None = None,
                 then: keras.optimizers.schedules.LearningRateSchedule | dict | None = None):
        if steps < 1:
            raise ValueError(f"a warm-up needs steps >= 1; got {steps}")
        if then is None:
            raise ValueError("WarmupSchedule needs the schedule that follows it (then=...)")
        if isinstance(then, dict):
            then = keras.saving.deserialize_keras_object(then)
        self.steps = int(steps)
        self.start_lr = float(start_lr)
        self.end_lr = self.start_lr if end_lr is None else float(end_lr)
        self.then = then

    def __call__(self, step):
        from keras import ops

        t = ops.cast(step, "float32")
        ramp = self.start_lr + (self.end_lr - self.start_lr) * (t / float(self.steps))
        return ops.where(t < self.steps, ramp, ops.cast(self.then(step), "float32"))

    def get_config(self) -> dict:
        return {"steps": self.steps, "start_lr": self.start_lr, "end_lr": self.end_lr,
                "then": keras.saving.serialize_keras_object(self.then)}


def learning_rate_schedule(
    peak_lr: float,
    total_steps: int,
    kind: str = "step",
    boundaries: Sequence[int] | None = None,
    ramp_steps: int = 0,
    ramp_start_lr: float = 0.0,
    constant_steps: int = 0,
    constant_lr: float | None = None,
) -> keras.optimizers.schedules.LearningRateSchedule:
    r"""The learning rate by step, built from Keras' schedule classes.

    With peak rate :math:`\eta` and :math:`T` = ``total_steps``:

    - ``"step"``: :math:`\eta_t = \eta \cdot 0.1^{k(t)}`, :math:`k(t)` the number of
      ``boundaries`` :math:`b` (integer steps) with :math:`t \ge b`; the default
      boundaries are the paper's, :math:`\lceil 0.5\,T \rceil` and :math:`\lceil 0.75\,T \rceil`.
      Keras' ``PiecewiseConstantDecay`` switches when ``step > boundary``; it gets
      :math:`b - 1`, which agrees at every integer step;
    - ``"cosine"`` (also ``"onecycle"``): :math:`\eta_t = \tfrac{\eta}{2}(1 + \cos(\pi
      \min(t - R, T - R) / (T - R)))` after the linear ramp (Keras' ``CosineDecay``
      with its ``warmup_target``/``warmup_steps``);
    - ``"constant"``: :math:`\eta_t = \eta`;
    - a linear ramp :math:`\eta_0 + (\eta - \eta_0)\, t / R` replaces the first
      :math:`R` = ``ramp_steps`` steps (:math:`\eta_0` = ``ramp_start_lr``; the linear
      scaling rule's warm-up);
    - a constant warm-up replaces the first ``constant_steps`` steps by ``constant_lr``
      (default :math:`0.1\,\eta`; the paper's ResNet-110 trains its first 400 steps at 0.01).

    Everything piecewise constant is one ``PiecewiseConstantDecay``; only a warm-up
    that Keras cannot put in front (a linear ramp before step decay, a constant
    warm-up before a ramp or a cosine) is a :class:`WarmupSchedule`.
    """
    if kind not in (*SCHEDULES, "onecycle"):
        raise ValueError(f"unknown schedule {kind!r}; allowed: {', '.join(SCHEDULES)}, onecycle")
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1; got {total_steps}")
    peak_lr, total_steps = float(peak_lr), int(total_steps)
    ramp_steps, constant_steps = int(ramp_steps), int(constant_steps)
    if constant_lr is None:
        constant_lr = peak_lr * paper.WARMUP_110_FACTOR
    if kind == "step":
        if boundaries is None:
            boundaries = [math.ceil(f * total_steps) for f in paper.BOUNDARY_FRACTIONS]
        if any(float(b) != int(b) or b < 0 for b in boundaries):
            raise ValueError(
                f"boundaries are steps (non-negative integers); got {tuple(boundaries)}. "
                f"For fractions of training, pass e.g. "
                f"[math.ceil(f * total_steps) for f in {paper.BOUNDARY_FRACTIONS}]"
            )
        cuts = [int(b) for b in boundaries]
    else:
        cuts = []

    if kind in ("cosine", "onecycle"):
        if ramp_steps:
            schedule = keras.optimizers.schedules.CosineDecay(
                ramp_start_lr, max(total_steps - ramp_steps, 1), warmup_target=peak_lr,
                warmup_steps=ramp_steps)
        else:
            schedule = keras.optimizers.schedules.CosineDecay(peak_lr, total_steps)
        if constant_steps:
            schedule = WarmupSchedule(constant_steps, constant_lr, then=schedule)
        return schedule

    # Step or constant: piecewise constant, with the constant warm-up folded in when no
    # ramp comes between them.
    fold = constant_steps if not ramp_steps else 0

    def rate(t: int) -> float:
        if t < fold:
            return float(constant_lr)
        # float32 arithmetic, eta * 0.1^k, so the rates are those of the former PaperSchedule
        # to the last bit (a float64 product rounded once can differ from it by one ulp)
        passed = np.float32(sum(t >= b for b in cuts))
        return float(np.float32(peak_lr) * np.power(np.float32(paper.DECAY_FACTOR), passed))

    changes = sorted({b for b in cuts if b > 0} | ({fold} if fold > 0 else set()))
    if changes:
        schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
            [c - 1 for c in changes], [rate(0)] + [rate(c) for c in changes])
    else:
        schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
            [total_steps], [rate(0), rate(0)])
    if ramp_steps:
        schedule = WarmupSchedule(ramp_steps, ramp_start_lr, peak_lr, then=schedule)
        if constant_steps:
            schedule = WarmupSchedule(constant_steps, constant_lr, then=schedule)
    return schedule


@keras.saving.register_keras_serializable(package="resnet_tf")
class PaperSchedule(keras.optimizers.schedules.LearningRateSchedule):
    r"""Deprecated: use :func:`learning_rate_schedule` (kept for one release, so models
    saved with it still load).

    Learning rate by step: warm-up, then step or cosine decay.

    - warm-up: :math:`\eta_t = \eta_0 \cdot` ``warmup_factor`` for
      ``t < warmup_steps`` (constant, as the paper does for ResNet-110);
    - ``"step"``: :math:`\eta_t = \eta_0 \cdot 0.1^{k}`, ``k`` the number of
      ``boundaries`` (fractions of ``total_steps``) already passed;
    - ``"cosine"``: :math:`\eta_t = \tfrac{\eta_0}{2}(1 + \cos(\pi t / T))`;
    - ``"constant"``: :math:`\eta_t = \eta_0`.
    """

    def __init__(
        self,
        initial_learning_rate: float,
        total_steps: int,
        kind: str = "step",
        boundaries: tuple = paper.BOUNDARY_FRACTIONS,
        warmup_steps: int = 0,
        warmup_factor: float = paper.WARMUP_110_FACTOR,
    ):
        _deprecation.warn("resnet_tf.training.PaperSchedule",
                          "resnet_tf.training.learning_rate_schedule")
        if kind not in SCHEDULES:
            raise ValueError(f"unknown schedule {kind!r}; allowed: {', '.join(SCHEDULES)}")
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1; got {total_steps}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.total_steps = int(total_steps)
        self.kind = kind
        self.boundaries = tuple(float(b) for b in boundaries)
        self.warmup_steps = int(warmup_steps)
        self.warmup_factor = float(warmup_factor)

    def __call__(self, step):
        from keras import ops

        step = ops.cast(step, "float32")
        lr0 = self.initial_learning_rate
        if self.kind == "step":
            passed = sum(
                ops.cast(step >= b * self.total_steps, "float32") for b in self.boundaries
            )
            decayed = lr0 * ops.power(paper.DECAY_FACTOR, passed)
            lr = decayed if self.boundaries else lr0 + 0.0 * step
        elif self.kind == "cosine":
            progress = ops.minimum(step / self.total_steps, 1.0)
            lr = 0.5 * lr0 * (1.0 + ops.cos(math.pi * progress))
        else:
            lr = lr0 + 0.0 * step
        if self.warmup_steps:
            lr = ops.where(step < self.warmup_steps, lr0 * self.warmup_factor, lr)
        return lr

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "total_steps": self.total_steps,
            "kind": self.kind,
            "boundaries": self.boundaries,
            "warmup_steps": self.warmup_steps,
            "warmup_factor": self.warmup_factor,
        }


def configure_performance(mixed_precision: bool | str = "auto") -> dict:
    """Set the global dtype policy for this machine and profile; return the settings.

    ``mixed_precision="auto"`` turns on ``mixed_float16`` (float16 compute,
    float32 variables, dynamic loss scaling inside the Keras optimizer) exactly
    when :func:`resnet_tf.runtime.performance` says so for this process (the full
    profile on a GPU); ``True``/``False`` force it. Returns ``{"mixed_precision": bool,
    "jit_compile": bool}``: XLA is worth it on GPUs, not for these small
    convolutions on a CPU, and never combined with op determinism.
    """
    mode = performance(precision="auto" if mixed_precision == "auto" else bool(mixed_precision))
    keras.mixed_precision.set_global_policy(mode["policy"])
    return {"mixed_precision": mode["mixed_precision"], "jit_compile": mode["xla"]}


@contextlib.contextmanager
def precision_scope(mixed_precision: bool | str = "auto") -> Iterator[dict]:
    """Build models inside ``with precision_scope():`` to get :func:`configure_performance`'s
    policy for them only; the previous global policy is restored on exit.

    Models built inside keep their policy: in the full profile on a GPU they
    compute in float16 (logits and loss in float32), everything built outside
    stays float32, so measurements such as Jacobians keep full precision.
    """
    previous = keras.mixed_precision.global_policy()
    try:
        yield configure_performance(mixed_precision)
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _outputs_probabilities(model: keras.Model) -> bool:
    activation = getattr(model.layers[-1], "activation", None)
    return activation is keras.activations.softmax or getattr(activation, "__name__", "") == (
        "softmax"
    )


def compile_model(
    model: keras.Model,
    steps_per_epoch: int,
    epochs: int,
    lr: float = paper.LEARNING_RATE,
    momentum: float = paper.MOMENTUM,
    weight_decay: float = paper.WEIGHT_DECAY,
    schedule: str | keras.optimizers.schedules.LearningRateSchedule = "step",
    warmup_steps: int = 0,
    label_smoothing: float = 0.0,
    loss=None,
    metrics=None,
    jit_compile: bool | str = "auto",
    nesterov: bool = False,
    steps_per_execution: int = 1,
    optimizer: keras.optimizers.Optimizer | None = None,
) -> keras.Model:
    """Compile ``model`` with ``optimizer`` or, by default, the paper's:
    :class:`CoupledSGD` (momentum, L2 weight decay) with the rate of
    :func:`learning_rate_schedule` (``schedule`` kind, peak ``lr``, the paper's
    boundaries, a constant warm-up at ``0.1 lr`` for ``warmup_steps``), or the
    ``schedule`` object given (``lr`` and ``warmup_steps`` then go unused). With an
    ``optimizer`` given, ``lr``, ``momentum``, ``weight_decay``, ``schedule``,
    ``warmup_steps`` and ``nesterov`` go unused.

    The loss defaults to sparse categorical cross-entropy (on probabilities or
    logits, read off the last layer's activation); with ``label_smoothing > 0``
    the categorical form is used on one-hot labels. Under a global
    ``mixed_float16`` policy the optimizer is wrapped in a ``LossScaleOptimizer``
    (dynamic loss scaling) explicitly, whatever Keras' default.
    """
    if optimizer is None:
        if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            schedule_fn = schedule
        else:
            schedule_fn = learning_rate_schedule(lr, max(1, steps_per_epoch * epochs), schedule,
                                                 constant_steps=warmup_steps)
        optimizer = CoupledSGD(l2=weight_decay, learning_rate=schedule_fn, momentum=momentum,
                               nesterov=nesterov)
    if (keras.mixed_precision.global_policy().name == "mixed_float16"
            and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer)):
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    from_logits = not _outputs_probabilities(model)
    if loss is None:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
        if label_smoothing:
            loss = SmoothedCrossEntropy(label_smoothing, from_logits)
    if metrics is None:
        metrics = ["accuracy"]
    if jit_compile == "auto":
        jit_compile = performance()["xla"]
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=jit_compile,
                  steps_per_execution=steps_per_execution)
    if model.built and not optimizer.built:
        # Create the optimizer's slots now, eagerly: built inside the first traced step
        # they would make TensorFlow trace the whole train step a second time.
        optimizer.build(model.trainable_variables)
        _INITIAL_OPTIMIZER_STATE[optimizer] = [np.array(v) for v in optimizer.variables]
    return model


# Each optimizer's state as compile_model built it (iterations 0, zero momenta, the
# initial loss scale), so reinitialize() can put it back.
_INITIAL_OPTIMIZER_STATE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def reinitialize(model: keras.Model, source: keras.Model) -> keras.Model:
    r"""Restart the compiled ``model`` from ``source``'s weights: train from a new
    initialisation without tracing the train step again.

    Every variable of ``model`` (weights, batch-norm moving statistics and the state of
    its random-number generators, e.g. for stochastic depth or dropout) is set to the
    matching one of ``source``, a freshly built twin (same architecture),
    and the optimizer returns to the state :func:`compile_model` left it in: step
    counter 0 (so the schedule restarts), zero momenta, initial loss scale. A following
    ``fit(model, ..., compile=False)`` then trains exactly as compiling and fitting
    ``source`` would, but reuses the train step TensorFlow already traced for ``model``,
    which for a deep network on a small dataset costs more than the training itself.
    Training several seeds of one architecture: build ``source`` under
    :func:`~resnet_tf.runtime.seed_everything` for each seed, reinitialize, fit.

    ``ValueError`` when the two models' variables differ in number or shape, or when
    ``model`` was not compiled by :func:`compile_model` after it was built.
    """
    # `variables` are the weights plus the state of every random-number generator
    # (stochastic depth, dropout), so the restarted model also draws its random numbers
    # as the fresh one would.
    ours, theirs = model.variables, source.variables
    shapes = [tuple(v.shape) for v in ours], [tuple(v.shape) for v in theirs]
    if shapes[0] != shapes[1]:
        raise ValueError(
            f"{source.name} is not a twin of {model.name}: their variables differ "
            f"({len(ours)} against {len(theirs)}, or in shape); build both "
            "with the same builder and arguments"
        )
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or optimizer not in _INITIAL_OPTIMIZER_STATE:
        raise ValueError(
            f"{model.name} has no optimizer state to restart: compile it with "
            "resnet_tf.training.compile_model (after the model is built) first"
        )
    for variable, value in zip(ours, theirs, strict=True):
        variable.assign(value)
    for variable, value in zip(optimizer.variables, _INITIAL_OPTIMIZER_STATE[optimizer],
                               strict=True):
        variable.assign(value)
    return model


@keras.saving.register_keras_serializable(package="resnet_tf")
class CoupledSGD(keras.optimizers.SGD):
    r"""SGD with momentum and the paper's L2 weight decay inside the gradient.

    .. math:: g \leftarrow g + \lambda w, \qquad v \leftarrow \mu v - \eta g, \qquad
              w \leftarrow w + v

    (Nesterov: :math:`w \leftarrow w + \mu v - \eta g`). This is the gradient of
    :math:`L + \tfrac{\lambda}{2}\|w\|^2`, as in the paper, applied to every
    trainable variable; Keras' own ``weight_decay`` instead shrinks the weights
    outside the momentum buffer, a different (and at momentum 0.9 weaker) rule.
    ``l2`` is :math:`\lambda`.
    """

    def __init__(self, l2: float = paper.WEIGHT_DECAY, **kwargs):
        kwargs.pop("weight_decay", None)
        super().__init__(**kwargs)
        self.l2 = float(l2)

    def update_step(self, gradient, variable, learning_rate):
        from keras import ops

        if self.l2:
            gradient = ops.add(ops.cast(gradient, variable.dtype),
                               ops.multiply(ops.cast(self.l2, variable.dtype), variable))
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self) -> dict:
        return {**super().get_config(), "l2": self.l2}


@keras.saving.register_keras_serializable(package="resnet_tf")
class SmoothedCrossEntropy(keras.losses.Loss):
    r"""Cross-entropy on integer labels with label smoothing ``s``.

    .. math:: \ell = -\sum_c q_c \log p_c, \qquad q_c = (1 - s)\,[c = y] + s / C

    with :math:`p = \operatorname{softmax}(z)` when ``from_logits``.
    """

    def __init__(self, label_smoothing: float = 0.1, from_logits: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.label_smoothing = float(label_smoothing)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        from keras import ops

        classes = ops.shape(y_pred)[-1]
        one_hot = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), classes)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, from_logits=self.from_logits, label_smoothing=self.label_smoothing
        )

    def get_config(self) -> dict:
        return {**super().get_config(), "label_smoothing": self.label_smoothing,
                "from_logits": self.from_logits}


def fit(
    model: keras.Model,
    train,
    validation=None,
    epochs: int = 10,
    batch_size: int = paper.BATCH,
    lr: float = paper.LEARNING_RATE,
    momentum: float = paper.MOMENTUM,
    weight_decay: float = paper.WEIGHT_DECAY,
    schedule: str | keras.optimizers.schedules.LearningRateSchedule = "step",
    warmup_steps: int = 0,
    label_smoothing: float = 0.0,
    augment: bool | None = None,
    seed: int | None = 0,
    verbose="auto",
    callbacks=None,
    steps_per_epoch: int | None = None,
    jit_compile: bool | str = "auto",
    compile: bool = True,
    optimizer: keras.optimizers.Optimizer | None = None,
    loss=None,
) -> keras.callbacks.History:
    """Train ``model`` with the paper's recipe and return the Keras ``History``.

    Args:
        train: ``(x, y)`` arrays or a batched ``tf.data.Dataset``.
        validation: ``(x, y)`` arrays or a dataset, evaluated after each epoch.
        augment: pad-crop-flip; ``None`` means "for 3-channel images only"
            (flips would corrupt digits).
        seed: the seed of what ``fit`` itself creates, the shuffling and augmentation of
            the pipeline that :func:`resnet_tf.data.make_dataset` builds from arrays
            (``None`` means 0 there); a dataset passed in is used as it is. ``fit``
            seeds nothing else and leaves the process's random state and op
            determinism alone: to seed the model's initial weights and every other
            draw, call :func:`resnet_tf.runtime.seed_everything` before building
            the model (and before ``fit`` for a run that must repeat exactly:
            ``tf.data`` combines this op seed with TensorFlow's global seed, so the
            batch order depends on both).
        steps_per_epoch: cap on the steps of an epoch (defaults to one pass).
        compile: ``False`` keeps the model's existing compilation.
        optimizer: a Keras optimizer instead of the paper's (:class:`CoupledSGD` with
            the ``schedule``); ``lr``, ``momentum``, ``weight_decay``, ``schedule`` and
            ``warmup_steps`` then go unused. A fresh instance for every model.
        loss: a Keras loss instead of the default cross-entropy (read off the last
            layer's activation, smoothed by ``label_smoothing``).

    Training batches are always full (the last partial batch is dropped), so
    every step has the same shape.
    """
    import tensorflow as tf

    if isinstance(train, tf.data.Dataset):
        train_ds = train
        cardinality = int(train.cardinality().numpy())
        n_steps = steps_per_epoch or (cardinality if cardinality > 0 else None)
        if n_steps is None:
            raise ValueError("an infinite training dataset needs steps_per_epoch")
    else:
        x, y = (np.asarray(a) for a in train)
        if augment is None:
            augment = x.ndim == 4 and x.shape[-1] == 3
        batch_size = min(batch_size, len(x))
        train_ds = make_dataset(
            x, y, batch_size, training=True, augment=augment, seed=0 if seed is None else seed
        )
        n_steps = steps_per_epoch or len(x) // batch_size
    if steps_per_epoch:
        train_ds = train_ds.repeat()
    val_ds = validation
    if validation is not None and not isinstance(validation, tf.data.Dataset):
        vx, vy = (np.asarray(a) for a in validation)
        val_ds = make_dataset(vx, vy, batch_size=max(batch_size, 256), training=False)
    if compile:
        compile_model(
            model, n_steps, epochs, lr=lr, momentum=momentum, weight_decay=weight_decay,
            schedule=schedule, warmup_steps=warmup_steps, label_smoothing=label_smoothing,
            jit_compile=jit_compile, optimizer=optimizer, loss=loss,
        )
    return model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=epochs,
        steps_per_epoch=n_steps if steps_per_epoch else None,
        verbose=verbose,
        callbacks=callbacks,
        shuffle=False,  # the pipeline shuffles
    )


def fit_seeds(
    build: Callable[[], keras.Model],
    train,
    seeds: Iterable[int],
    callbacks: list | Callable[[int], list] | None = None,
    **fit_kwargs,
) -> Iterator[tuple[int, keras.Model, keras.callbacks.History]]:
    """Train one architecture from each seed; yield ``(seed, model, history)`` after each.

    For every seed the process is seeded (:func:`~resnet_tf.runtime.seed_everything`),
    ``build()`` makes the seed's initial network and :func:`fit` trains it on ``train``
    with ``fit_kwargs`` (the recipe) and ``seed``. The first model is compiled; every
    later seed restarts it from its own fresh build with :func:`reinitialize`, so all
    seeds share one traced train step and each run equals a separate ``fit`` of that
    seed's fresh model. The yielded model is the same object every time: read or copy
    what you need before advancing (order ``seeds`` so the one you keep comes last).
    ``callbacks`` is a list for every seed or a function ``seed -> list``.
    """
    model = None
    for seed in seeds:
        seed_everything(seed)
        fresh = build()
        if model is None:
            model = fresh
        else:
            reinitialize(model, fresh)
        these = callbacks(seed) if callable(callbacks) else callbacks
        history = fit(model, train, seed=seed, compile=model is fresh,
                      callbacks=list(these or []), **fit_kwargs)
        yield seed, model, history
