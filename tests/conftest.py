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


def pytest_configure(config):
    """Under the version matrix, prove the tests import the installed wheel."""
    import os
    from pathlib import Path

    if os.environ.get("RESNET_TF_EXPECT_INSTALLED") == "1":
        import resnet_tf

        repo = Path(__file__).resolve().parents[1]
        where = Path(resnet_tf.__file__).resolve()
        if repo in where.parents:
            raise pytest.UsageError(
                f"resnet_tf was imported from this checkout ({where}), not from the installed "
                "wheel; run pytest with --import-mode=importlib and without PYTHONPATH"
            )


@pytest.fixture(scope="session")
def assignment_with_id():
    """``make(folder, student)``: assignment 1's notebook from ``folder`` (``solutions`` or
    ``exercises``) as a JSON dict, with ``student`` typed into its STUDENT_ID cell."""
    import json
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]

    def make(folder: str, student: str) -> dict:
        path = root / folder / "01_signal_propagation.ipynb"
        raw = json.loads(path.read_text(encoding="utf-8"))
        for cell in raw["cells"]:
            source = "".join(cell["source"])
            if cell["cell_type"] == "code" and re.search(r'^STUDENT_ID = ""', source, re.M):
                cell["source"] = source.replace('STUDENT_ID = ""', f'STUDENT_ID = "{student}"', 1)
                return raw
        raise AssertionError(f"{path} has no STUDENT_ID cell")

    return make
