r"""Denoisers for images: predict the clean signal, or predict the noise and subtract it.

For a noisy observation :math:`y = x + n`, a *direct* denoiser outputs
:math:`\hat x = g(y)`; a *residual* denoiser (Zhang et al. 2017, DnCNN) outputs
:math:`\hat x = y - g(y)`, so :math:`g` has to learn only the noise :math:`n`. Both use
the same network :math:`g`; with a zero-initialised last layer the residual one starts as
the identity (its initial error is the noise itself, :math:`\mathbb E\lVert n\rVert^2`).
A fair comparison of the two forms gives them the *same* :math:`g` (same initial
weights, ``zero_init_last=False`` for both); ``batch_norm=True`` gives the DnCNN layout
(convolution, batch normalisation, ReLU in every hidden layer but the first).
"""

from __future__ import annotations

import keras
from keras import layers


def conv_denoiser(
    input_shape: tuple = (16, 16, 1),
    residual: bool = True,
    filters: int = 16,
    depth: int = 3,
    kernel_size: int = 3,
    zero_init_last: bool | None = None,
    batch_norm: bool = False,
    name: str | None = None,
) -> keras.Model:
    r"""A small convolutional denoiser :math:`\hat x = y - g(y)` (residual) or :math:`g(y)`.

    :math:`g` is ``depth`` convolutions (``filters`` channels, ReLU) and a linear
    convolution back to the input channels. ``zero_init_last`` starts the last
    convolution at zero; ``None`` means "for the residual form only", which then starts
    as the identity :math:`\hat x = y`. With ``batch_norm`` the hidden convolutions
    2..``depth`` compute :math:`\mathrm{relu}(\mathrm{BN}(\mathrm{conv}(h)))` (no bias),
    as in DnCNN (Zhang et al. 2017).
    """
    if (not isinstance(depth, int) or not isinstance(filters, int) or depth < 1
            or filters < 1):
        raise ValueError(f"need integers depth >= 1 and filters >= 1; got depth={depth!r}, "
                         f"filters={filters!r}")
    if zero_init_last is None:
        zero_init_last = residual
    noisy = keras.Input(shape=input_shape, name="noisy")
    h = noisy
    for i in range(1, depth + 1):
        if batch_norm and i > 1:
            h = layers.Conv2D(filters, kernel_size, padding="same", use_bias=False,
                              name=f"g_{i}_conv")(h)
            h = layers.BatchNormalization(name=f"g_{i}_bn")(h)
            h = layers.Activation("relu", name=f"g_{i}_relu")(h)
        else:
            h = layers.Conv2D(filters, kernel_size, padding="same", activation="relu",
                              name=f"g_{i}_conv")(h)
    g = layers.Conv2D(
        input_shape[-1], kernel_size, padding="same",
        kernel_initializer="zeros" if zero_init_last else "glorot_uniform",
        name="g_out",
    )(h)
    out = layers.Subtract(name="subtract_noise")([noisy, g]) if residual else g
    kind = "residual" if residual else "direct"
    return keras.Model(noisy, out, name=name or f"{kind}_denoiser")
