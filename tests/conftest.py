"""Shared unit-test set-up: headless matplotlib, seeded Keras, float32 policy."""

import matplotlib
import pytest

# Only this process draws off-screen; notebook kernels started by nbval must not
# inherit it (an environment variable would reach them), or figures vanish.
matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same random state, in float32."""
    import keras

    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")
