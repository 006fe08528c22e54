"""Run-time settings shared by every notebook: profile, seeding, devices, execution mode.

Two budgets share one code path. ``profile()`` answers ``"quick"`` on a machine
without a GPU (CI, laptops) and ``"full"`` when TensorFlow sees one (Colab);
the environment variable ``RESNET_TF_PROFILE`` forces either.

The profile also decides how TensorFlow executes (:func:`execution`):

- ``quick``: op determinism on, float32, no XLA. Every re-run reproduces every
  number, which is what the stored notebook outputs (nbval) rely on.
- ``full`` on a GPU: XLA and mixed precision on, op determinism off. Keras
  refuses XLA while op determinism is on, so the two cannot be had together;
  the full profile chooses speed and is not bit-for-bit reproducible.
- ``full`` without a GPU (the CPU rehearsal of the full branch): deterministic,
  float32, no XLA, as on any CPU.

``RESNET_TF_DETERMINISTIC=1`` (or ``0``) overrides the choice of determinism;
determinism on means XLA off, and :func:`environment` reports both.

For tests only, ``RESNET_TF_STUB_DATA=1`` replaces CIFAR-10 by a small synthetic
32x32x3 stand-in (:func:`resnet_tf.data.load`) and lets :func:`pick` return
the tiny ``stub`` sizes of the full profile, so the full branch of a chapter
runs on a CPU in minutes. :func:`claim` then checks that each of the chapter's
claims evaluates to a truth value instead of requiring it to hold.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import platform
import random
import sys
import warnings

import numpy as np

PROFILES = ("quick", "full")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
"""Settings of :func:`performance`'s ``precision`` (besides ``True``/``False``)."""
DEVICES = ("cpu", "gpu", "tpu")
PROFILE_ENV = "RESNET_TF_PROFILE"
DETERMINISM_ENV = "RESNET_TF_DETERMINISTIC"
STUB_ENV = "RESNET_TF_STUB_DATA"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_MISSING = object()
_determinism_enabled = False


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


def _flag(name: str) -> bool | None:
    """An on/off environment variable: ``True``, ``False`` or ``None`` (unset, ``auto``)."""
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "auto"):
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"{name}={value!r} is not understood; allowed values are 1/0, true/false, yes/no, "
        "on/off, or auto (the same as unset)"
    )


def stub_mode() -> bool:
    """True when ``RESNET_TF_STUB_DATA`` asks for the test stand-ins (see the module doc)."""
    return bool(_flag(STUB_ENV))


def pick(quick, full, stub=_MISSING):
    """Return ``quick`` or ``full`` according to :func:`profile`.

    Notebooks write sizes once, e.g. ``epochs = pick(quick=8, full=15, stub=1)``.
    ``stub`` is the size the full profile uses in stub mode (:func:`stub_mode`,
    tests only); without it the full size is used there too.
    """
    if profile() != "full":
        return quick
    if stub is not _MISSING and stub_mode():
        return stub
    return full


def _keras_version() -> tuple[int, int]:
    import keras

    major, minor = keras.__version__.split(".")[:2]
    return int(major), int(minor)


def _accelerated() -> bool:
    """True when the full profile runs on a GPU (the profile's "accelerated" branch)."""
    return profile() == "full" and bool(gpu_devices())


def _deterministic(accelerated: bool) -> bool:
    forced = _flag(DETERMINISM_ENV)
    deterministic = (not accelerated) if forced is None else forced
    return deterministic or _determinism_enabled


def performance(
    device: str | None = None,
    precision: str | bool = "auto",
    xla: str | bool = "auto",
    replicas: int = 1,
    deterministic: bool | None = None,
) -> dict:
    """The one decision of the dtype policy and of XLA for a device and a setting.

    Returns ``{"device", "policy", "mixed_precision", "xla"}``.

    - ``device``: ``"cpu"``, ``"gpu"`` or ``"tpu"``; ``None`` means this process as
      its profile runs it: ``"gpu"`` in the full profile on a GPU, else ``"cpu"``
      (the quick profile computes in float32 even where a GPU is present).
    - ``precision``: a Keras policy name, or ``"auto"``: ``mixed_float16`` on a GPU
      (float16 compute on tensor cores, float32 variables, dynamic loss scaling),
      ``mixed_bfloat16`` on a TPU (no loss scaling needed), ``float32`` on a CPU;
      ``True`` is the device's mixed policy, ``False`` float32.
    - ``xla``: ``True``/``False``, ``"on"``/``"off"``, or ``"auto"``: compile the
      train step on a single GPU, where fusing the batch norm, ReLU and residual
      additions of these small networks pays off, unless op determinism is on
      (Keras does not combine the two); not on a CPU (TensorFlow's oneDNN kernels
      are faster there) and not under MirroredStrategy (``replicas > 1``). A TPU
      always compiles, whatever this says.
    - ``deterministic``: whether op determinism is on; ``None`` means as
      :func:`execution` says for ``device=None``, and off for a device named.
    """
    if device is None:
        device = "gpu" if _accelerated() else "cpu"
        if deterministic is None:
            deterministic = _deterministic(device == "gpu")
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; allowed: {', '.join(DEVICES)}")
    mixed = "mixed_bfloat16" if device == "tpu" else "mixed_float16"
    if isinstance(precision, bool):
        policy = mixed if precision else "float32"
    elif precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; allowed: {', '.join(PRECISIONS)}")
    elif precision == "auto":
        policy = mixed if device in ("gpu", "tpu") else "float32"
    else:
        policy = precision
    if isinstance(xla, bool):
        use_xla = xla
    elif xla not in ("auto", "on", "off"):
        raise ValueError(f"unknown xla setting {xla!r}; allowed: auto, on, off")
    elif xla == "auto":
        use_xla = device == "gpu" and replicas == 1 and not deterministic
    else:
        use_xla = xla == "on"
    return {"device": device, "policy": policy, "mixed_precision": policy != "float32",
            "xla": use_xla}


def execution() -> dict:
    """How TensorFlow executes in this process: ``{"deterministic", "xla", "mixed_precision"}``.

    ``deterministic``: op determinism (on unless the full profile runs on a GPU,
    or as ``RESNET_TF_DETERMINISTIC`` says); ``xla`` and ``mixed_precision``:
    :func:`performance` for this process (XLA and ``mixed_float16`` compute for
    the training runs of the full profile on a GPU, XLA only without determinism,
    which Keras does not combine with XLA).
    """
    deterministic = _deterministic(_accelerated())
    mode = performance(deterministic=deterministic)
    return {
        "deterministic": deterministic,
        "xla": mode["xla"],
        "mixed_precision": mode["mixed_precision"],
    }


def determinism_enabled() -> bool:
    """True once :func:`seed_everything` has switched op determinism on in this process
    (it stays on: TensorFlow has no public way to switch it off again)."""
    return _determinism_enabled


def seed_everything(seed: int = 0, deterministic: bool | None = None) -> None:
    """Seed Python, NumPy, TensorFlow and Keras; switch op determinism on if asked.

    ``deterministic=None`` follows :func:`execution`: on in the quick profile
    (a re-run on the same machine reproduces every number, what nbval relies
    on), off in the full profile on a GPU (so XLA can compile the training
    steps). TensorFlow cannot switch determinism off again within a process;
    asking for ``False`` after it was switched on warns that XLA stays off.

    Python and NumPy are seeded at once. TensorFlow and Keras are seeded at once
    when either is already imported; otherwise when the first of them is
    imported, so numpy-only code never pays for importing TensorFlow. Either way
    the numbers are those of seeding everything in this call.
    """
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    _SeedOnImport.cancel()
    if "keras" in sys.modules or "tensorflow" in sys.modules:
        _seed_frameworks(seed, deterministic)
    else:
        sys.meta_path.insert(0, _SeedOnImport(seed, deterministic))


def _seed_frameworks(seed: int, deterministic: bool | None) -> None:
    """The TensorFlow and Keras half of :func:`seed_everything`.

    ``keras.utils.set_random_seed`` also seeds Python and NumPy; their states are
    put back, so seeding on a late import leaves what the caller drew since alone.
    """
    global _determinism_enabled
    import keras
    import tensorflow as tf

    if deterministic is None:
        deterministic = execution()["deterministic"]
    python_state, numpy_state = random.getstate(), np.random.get_state()
    keras.utils.set_random_seed(seed)
    random.setstate(python_state)
    np.random.set_state(numpy_state)
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
        _determinism_enabled = True
    elif _determinism_enabled:
        warnings.warn(
            "op determinism was switched on earlier in this process and cannot be switched "
            "off again; Keras will not compile with XLA here (restart the runtime to get XLA)",
            RuntimeWarning, stacklevel=3,
        )


class _SeedOnImport(importlib.abc.MetaPathFinder):
    """Seeds TensorFlow and Keras once the first of them has finished importing.

    It sits first on ``sys.meta_path``, lets the other finders locate ``keras``
    and ``tensorflow``, and wraps their loaders; when the outermost of the two
    imports completes, it removes itself and runs :func:`_seed_frameworks`.
    """

    FRAMEWORKS = ("keras", "tensorflow")

    def __init__(self, seed: int, deterministic: bool | None) -> None:
        self.seed, self.deterministic = seed, deterministic
        self.searching = False
        self.depth = 0
        self.states = None

    @classmethod
    def cancel(cls) -> None:
        """Drop a pending seeding (a newer :func:`seed_everything` replaces it)."""
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, cls)]

    def find_spec(self, name, path=None, target=None):
        if name not in self.FRAMEWORKS or self.searching:
            return None
        self.searching = True
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self.searching = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _SeedingLoader(spec.loader, self)
        return spec

    def started(self) -> None:
        if self.depth == 0:
            # Importing TensorFlow draws from Python's generator, which Keras later
            # reads for its own seeds: keep the caller's state, as if nothing ran.
            self.states = random.getstate(), np.random.get_state()
        self.depth += 1

    def finished(self) -> None:
        if self.depth == 0 and self in sys.meta_path:
            sys.meta_path.remove(self)
            _seed_frameworks(self.seed, self.deterministic)
            random.setstate(self.states[0])
            np.random.set_state(self.states[1])


class _SeedingLoader(importlib.abc.Loader):
    """Runs the real loader, then tells :class:`_SeedOnImport` the import is done."""

    def __init__(self, loader, finder: _SeedOnImport) -> None:
        self.loader, self.finder = loader, finder

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        self.finder.started()
        try:
            self.loader.exec_module(module)
        finally:
            self.finder.depth -= 1
        self.finder.finished()


def claim(holds, message: str = "", enforce: bool = True) -> None:
    """Check one claim of a chapter: ``assert``-like, except in stub mode.

    Normally a false ``holds`` raises ``AssertionError(message)``. In stub mode
    (:func:`stub_mode`; tests run the full branch on synthetic data, where the
    numbers mean nothing), or with ``enforce=False`` (numbers known not to be
    comparable, such as a replayed rehearsal run), the claim must still
    evaluate to a single truth value (a Python or NumPy bool) but need not
    hold. Returns nothing, so a claim at the end of a notebook cell displays
    nothing, like ``assert``.
    """
    if not isinstance(holds, bool | np.bool_):
        raise TypeError(
            f"a claim must evaluate to a bool (Python or NumPy); got {type(holds).__name__}"
            + (f" for {message!r}" if message else "")
        )
    if not holds and enforce and not stub_mode():
        raise AssertionError(message)


def environment() -> dict:
    """Versions, devices, the active profile and the execution mode, as a dictionary.

    Keys: ``resnet_tf``, ``python``, ``tensorflow``, ``keras``, ``keras_backend``,
    ``numpy``, ``gpus``, ``cpu_cores``, ``profile``, ``onednn``, and from
    :func:`execution` ``deterministic``, ``xla``, ``mixed_precision``, plus
    ``stub_data`` (the test switch).
    """
    import keras
    import tensorflow as tf

    from ._version import __version__

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
        **execution(),
        "stub_data": stub_mode(),
    }
