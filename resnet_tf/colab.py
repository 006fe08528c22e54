"""Colab support: the badge and setup cell every notebook opens with.

The repository address lives here and only here (:data:`REPO_URL`); the
notebooks' first cells are generated from :func:`badge_markdown` and
:data:`SETUP_CELL`, and a test checks that every notebook still matches them.
"""

from __future__ import annotations

import sys

REPO_URL = "https://github.com/resnet-tf/resnet-tf-companion"
BRANCH = "main"
INSTALL_SPEC = f"resnet_tf @ git+{REPO_URL}@{BRANCH}"
"""What the setup cell asks pip for: this package only, from the repository."""

GPU_HINT = (
    "No GPU in this runtime: the quick profile runs (small data, few steps). For the "
    "paper-scale runs choose Runtime > Change runtime type > Hardware accelerator: GPU "
    "(e.g. T4), then Runtime > Run all."
)

SETUP_CELL = f'''# Setup. On Colab this installs resnet_tf from the repository; TensorFlow and
# Keras are already there and are not reinstalled. Elsewhere it does nothing.
import importlib.util
import subprocess
import sys

if "google.colab" in sys.modules and importlib.util.find_spec("resnet_tf") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "{INSTALL_SPEC}"], check=True)

import resnet_tf.colab

environment = resnet_tf.colab.report()'''


def colab_url(notebook_path: str) -> str:
    """The "Open in Colab" address of a notebook path inside the repository."""
    slug = REPO_URL.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{slug}/blob/{BRANCH}/{notebook_path}"


def badge_markdown(notebook_path: str) -> str:
    """Markdown for the "Open in Colab" badge of ``notebook_path``."""
    return (
        f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        f"({colab_url(notebook_path)})"
    )


def in_colab() -> bool:
    """True inside a Google Colab runtime."""
    return "google.colab" in sys.modules


def install_command(python: str | None = None) -> list[str]:
    """The pip command of the setup cell: install :data:`INSTALL_SPEC` quietly.

    It names only this package; pip leaves TensorFlow and Keras alone because
    Colab's versions already satisfy the package's requirements.
    """
    return [python or sys.executable, "-m", "pip", "install", "-q", INSTALL_SPEC]


def report(echo: bool = True) -> dict:
    """Check Keras 3, say whether a GPU is present and which profile runs.

    Returns the environment dictionary (see :func:`resnet_tf.environment`);
    raises ``RuntimeError`` on Keras 2, which this package does not support.
    In Colab without a GPU it also says how to switch the runtime to one
    (:data:`GPU_HINT`).
    """
    import keras

    from .runtime import environment

    if int(keras.__version__.split(".")[0]) < 3:
        raise RuntimeError(
            f"resnet_tf needs Keras 3; this runtime has Keras {keras.__version__}. "
            "Run: pip install -U 'keras>=3.3'"
        )
    env = environment()
    if echo:
        device = f"GPU ({', '.join(env['gpus'])})" if env["gpus"] else "CPU only"
        print(
            f"resnet_tf {env['resnet_tf']} | TensorFlow {env['tensorflow']} | "
            f"Keras {env['keras']} | {device} | profile: {env['profile']}"
        )
        if in_colab() and not env["gpus"]:
            print(GPU_HINT)
    return env
