"""What He et al. (2015) report for CIFAR-10, and the recipe they used: the one home of
the paper's constants, read by every default (:mod:`resnet_tf.training`, the command
line, :mod:`resnet_tf.distribute`, :mod:`resnet_tf.reproduce`).

Table 6 of the paper gives the test error (%) of the CIFAR ResNets trained
with the recipe below (best of 5 runs; ResNet-110 also "6.61 +- 0.16" as
mean +- std). The plain twins appear only as curves in Figure 6 (their
training and test error grow with depth, plain-56 above plain-20); the paper
prints no number for them, so the table leaves their paper column empty.
"""

from __future__ import annotations

TABLE6_ERROR = {20: 8.75, 32: 7.51, 44: 7.17, 56: 6.97, 110: 6.43, 1202: 7.93}
"""Test error (%) of ResNet-(6n+2), paper's Table 6."""

TABLE6_PARAMS = {20: 0.27e6, 32: 0.46e6, 44: 0.66e6, 56: 0.85e6, 110: 1.7e6, 1202: 19.4e6}
"""Parameter counts as printed in Table 6."""

PLAIN_ERROR: dict[int, float] = {}
"""Plain nets: no printed numbers (Figure 6 only shows curves)."""

RESNET110_MEAN_STD = (6.61, 0.16)

# The recipe of section 4.2, at its reference batch of 128 on 45k/5k or 50k images.
ITERATIONS = 64_000
BOUNDARIES = (32_000, 48_000)
BOUNDARY_FRACTIONS = tuple(b / ITERATIONS for b in BOUNDARIES)  # (0.5, 0.75) of training
DECAY_FACTOR = 0.1  # the rate is divided by 10 at each boundary
BATCH = 128
LEARNING_RATE = 0.1
MOMENTUM = 0.9
WEIGHT_DECAY = 1e-4
WARMUP_110_STEPS = 400
WARMUP_110_FACTOR = 0.1  # 0.01 = 0.1 x 0.1 until the training error is below 80%
DEFAULT_DEPTHS = (20, 32, 44, 56, 110)
WIDTH = 16  # filters of the first stage; the three stages have 16, 32 and 64
