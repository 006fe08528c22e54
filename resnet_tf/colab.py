"""Colab support: the badge and setup cell every notebook opens with.

The repository address lives here and only here (:data:`REPO_URL`); the
notebooks' first cells are generated from :func:`badge_markdown` and
:data:`SETUP_CELL`, and a test checks that every notebook still matches them.
"""

from __future__ import annotations

import sys

from . import __version__, _deprecation

REPO_URL = "https://github.com/resnet-tf/resnet-tf-companion"
BRANCH = "main"
"""The branch the "Open in Colab" badges point at (what a reader opens)."""
TAG = f"v{__version__}"
"""The release tag the setup cell installs: the one the notebook was written for."""
INSTALL_SPEC = f"resnet_tf @ git+{REPO_URL}@{TAG}"
"""What the setup cell asks pip for: this package only, at this release."""

GPU_HINT = (
    "No GPU in this runtime: the quick profile runs (small data, few steps). For the "
    "paper-scale runs choose Runtime > Change runtime type > Hardware accelerator: GPU "
    "(e.g. T4), then Runtime > Run all."
)

SETUP_CELL = f'''# Setup. On Colab this installs the resnet_tf release this notebook was written
# for; TensorFlow and Keras are already there and are not reinstalled. Elsewhere it
# does nothing.
import importlib.metadata
import subprocess
import sys

RESNET_TF_VERSION = "{__version__}"
if "google.colab" in sys.modules:
    try:
        installed = importlib.metadata.version("resnet_tf")
    except importlib.metadata.PackageNotFoundError:
        installed = None
    if installed != RESNET_TF_VERSION:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                        f"resnet_tf @ git+{REPO_URL}@v{{RESNET_TF_VERSION}}"], check=True)

import resnet_tf.colab

environment = resnet_tf.colab.report(expected_version=RESNET_TF_VERSION)'''


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


def _install_command(python: str | None = None) -> list[str]:
    """The pip command of the setup cell (kept for the deprecated ``install_command``)."""
    return [python or sys.executable, "-m", "pip", "install", "-q", INSTALL_SPEC]


__getattr__ = _deprecation.removed_names(__name__, {
    "install_command": (_install_command, "resnet_tf.colab.INSTALL_SPEC, what SETUP_CELL installs"),
})


def version_mismatch(expected: str | None) -> str | None:
    """A warning when the installed package is not the release a notebook was written for.

    ``expected`` is the version the notebook's setup cell names; ``None`` (or a match)
    gives ``None``.
    """
    if expected is None or expected == __version__:
        return None
    return (
        f"this notebook was written for resnet_tf {expected}, but {__version__} is installed: "
        f"numbers, checks and grading may differ. Install the matching release with "
        f"pip install 'resnet_tf @ git+{REPO_URL}@v{expected}'"
    )


def execution_summary(env: dict) -> str:
    """How the profile runs, in words: determinism, XLA and precision.

    ``"deterministic, no XLA, float32"`` in the quick profile (re-runs reproduce every
    number); ``"not deterministic, XLA, mixed float16"`` in the full profile on a GPU.
    """
    return ", ".join([
        "deterministic" if env.get("deterministic") else "not deterministic",
        "XLA" if env.get("xla") else "no XLA",
        "mixed float16" if env.get("mixed_precision") else "float32",
    ])


def gpu_impossible() -> bool:
    """True when no GPU can be visible to TensorFlow here, decided without importing it.

    On Linux a GPU needs a driver: NVIDIA's shows ``/proc/driver/nvidia/gpus`` and
    ``/dev/nvidia*``, ROCm's ``/dev/kfd``. Where none of them exists, TensorFlow cannot
    list a GPU. Elsewhere (macOS with Metal, Windows) this answers ``False`` and the
    caller asks TensorFlow.
    """
    import glob
    import os

    if not sys.platform.startswith("linux"):
        return False
    if os.path.exists("/dev/kfd") or glob.glob("/dev/nvidia[0-9]*"):
        return False
    nvidia = "/proc/driver/nvidia/gpus"
    return not (os.path.isdir(nvidia) and os.listdir(nvidia))


def _distribution_version(name: str) -> str | None:
    """The installed version of distribution ``name`` (``None`` when not installed)."""
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def light_environment() -> dict | None:
    """:func:`resnet_tf.runtime.environment` without importing TensorFlow, when possible.

    Possible when TensorFlow is not imported yet, no GPU can be present
    (:func:`gpu_impossible`) and the profile is ``quick`` (chosen, or the default without
    a GPU): then the profile, the execution mode and the devices are known without
    asking TensorFlow, and the versions come from the installed distributions. Returns
    ``None`` otherwise (the caller asks TensorFlow). The keys are those of
    :func:`~resnet_tf.runtime.environment`.
    """
    import json
    import os
    import platform

    import numpy as np

    from . import runtime

    if "tensorflow" in sys.modules or "keras" in sys.modules or not gpu_impossible():
        return None
    forced = os.environ.get(runtime.PROFILE_ENV, "").strip()
    profile = runtime.profile() if forced else "quick"
    if profile != "quick":
        return None
    tensorflow = _distribution_version("tensorflow") or _distribution_version("tensorflow-cpu")
    keras_version = _distribution_version("keras")
    if tensorflow is None or keras_version is None:
        return None
    backend = os.environ.get("KERAS_BACKEND", "").strip()
    if not backend:
        config = os.path.join(os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")),
                              "keras.json")
        try:
            with open(config, encoding="utf-8") as handle:
                backend = str(json.load(handle).get("backend", ""))
        except (OSError, ValueError, AttributeError):
            backend = ""
    return {
        "resnet_tf": __version__,
        "python": platform.python_version(),
        "tensorflow": tensorflow,
        "keras": keras_version,
        "keras_backend": backend or "tensorflow",
        "numpy": np.__version__,
        "gpus": [],
        "cpu_cores": os.cpu_count(),
        "profile": profile,
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
        **_execution_without_gpu(runtime),
        "stub_data": runtime.stub_mode(),
    }


def _execution_without_gpu(runtime) -> dict:
    """:func:`resnet_tf.runtime.execution` on a machine without a GPU, TensorFlow unasked.

    Without a GPU nothing is accelerated: no XLA, float32, and op determinism on unless
    ``RESNET_TF_DETERMINISTIC`` switches it off.
    """
    import os

    flag = os.environ.get(runtime.DETERMINISM_ENV, "").strip().lower()
    deterministic = flag not in ("0", "false", "no", "off") or runtime.determinism_enabled()
    return {"deterministic": deterministic, "xla": False, "mixed_precision": False}


def report(echo: bool = True, expected_version: str | None = None) -> dict:
    """Check Keras 3, say whether a GPU is present and which profile runs.

    Returns the environment dictionary (see :func:`resnet_tf.environment`);
    raises ``RuntimeError`` on Keras 2, which this package does not support.
    In Colab without a GPU it also says how to switch the runtime to one
    (:data:`GPU_HINT`). With ``expected_version`` (the release a notebook was written
    for) it warns when another release is installed.

    TensorFlow is not imported when nothing needs it (:func:`light_environment`): on a
    machine without a GPU driver, in the quick profile, the report reads the installed
    versions instead, so a notebook that uses only numpy starts in a fraction of a
    second. The line printed is the same either way.
    """
    from . import runtime

    env = light_environment()
    if env is None:
        env = runtime.environment()
    keras_version = str(env.get("keras", ""))
    if "keras" in sys.modules:
        keras_version = str(getattr(sys.modules["keras"], "__version__", keras_version))
    if keras_version and keras_version.split(".")[0].isdigit() and int(
            keras_version.split(".")[0]) < 3:
        raise RuntimeError(
            f"resnet_tf needs Keras 3; this runtime has Keras {keras_version}. "
            "Run: pip install -U 'keras>=3.3.3'"
        )
    if echo:
        device = f"GPU ({', '.join(env['gpus'])})" if env["gpus"] else "CPU only"
        print(
            f"resnet_tf {env['resnet_tf']} | TensorFlow {env['tensorflow']} | "
            f"Keras {env['keras']} | {device} | profile: {env['profile']} "
            f"({execution_summary(env)})"
        )
        if in_colab() and not env["gpus"]:
            print(GPU_HINT)
    mismatch = version_mismatch(expected_version)
    if mismatch:
        import warnings

        warnings.warn(mismatch, stacklevel=2)
    return env
