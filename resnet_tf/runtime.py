"""Run-time settings shared by every notebook: profile, seeding, devices.

Two budgets share one code path. ``profile()`` answers ``"quick"`` on a machine
without a GPU (CI, laptops) and ``"full"`` when TensorFlow sees one (Colab);
the environment variable ``RESNET_TF_PROFILE`` forces either.
"""

from __future__ import annotations

import os
import platform
import random

import numpy as np

PROFILES = ("quick", "full")
PROFILE_ENV = "RESNET_TF_PROFILE"


def gpu_devices() -> list:
    """The GPUs TensorFlow can see (an empty list on CPU-only machines)."""
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


def profile() -> str:
    """Return ``"quick"`` or ``"full"``.

    ``RESNET_TF_PROFILE`` wins when set; otherwise ``"full"`` exactly when a GPU
    is visible. An unknown value raises ``ValueError`` naming the allowed ones.
    """
    forced = os.environ.get(PROFILE_ENV, "").strip().lower()
    if forced:
        if forced not in PROFILES:
            raise ValueError(
                f"{PROFILE_ENV}={forced!r} is not a profile; allowed values are "
                f"{', '.join(PROFILES)} (or unset it to choose automatically)"
            )
        return forced
    return "full" if gpu_devices() else "quick"


def pick(quick, full):
    """Return ``quick`` or ``full`` according to :func:`profile`.

    Notebooks write sizes once, e.g. ``epochs = pick(quick=8, full=164)``.
    """
    return full if profile() == "full" else quick


def _keras_version() -> tuple[int, int]:
    import keras

    major, minor = keras.__version__.split(".")[:2]
    return int(major), int(minor)


def seed_everything(seed: int = 0, deterministic: bool = True) -> None:
    """Seed Python, NumPy, TensorFlow and Keras, and make TF ops deterministic.

    With ``deterministic=True`` TensorFlow's op determinism is switched on, so a
    re-run on the same machine reproduces every number (what nbval relies on).
    """
    import keras
    import tensorflow as tf

    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    if _keras_version() < (3, 13):
        # Before Keras 3.13 set_random_seed left the global generator behind unseeded
        # random ops (default initializers included) where it was; clearing the session
        # drops it, so it restarts from the new seed as it does in later releases.
        # Clearing also resets the dtype policy, which the caller chose: keep it.
        policy = keras.mixed_precision.global_policy()
        keras.backend.clear_session()
        keras.mixed_precision.set_global_policy(policy)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def environment() -> dict:
    """Versions, devices and the active profile, as a dictionary."""
    import keras
    import tensorflow as tf

    from . import __version__

    return {
        "resnet_tf": __version__,
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "numpy": np.__version__,
        "gpus": [d.name for d in gpu_devices()],
        "cpu_cores": os.cpu_count(),
        "profile": profile(),
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
    }
