"""The paper's numbers (their home is :mod:`resnet_tf.paper`) and the reproduction's precisions."""

from __future__ import annotations

from ..paper import (  # noqa: F401 (re-exported under their former home)
    BATCH,
    BOUNDARIES,
    BOUNDARY_FRACTIONS,
    DECAY_FACTOR,
    DEFAULT_DEPTHS,
    ITERATIONS,
    LEARNING_RATE,
    MOMENTUM,
    PLAIN_ERROR,
    RESNET110_MEAN_STD,
    TABLE6_ERROR,
    TABLE6_PARAMS,
    WARMUP_110_FACTOR,
    WARMUP_110_STEPS,
    WEIGHT_DECAY,
    WIDTH,
)
from ..runtime import PRECISIONS  # noqa: F401 (the precisions the reproduction accepts)
