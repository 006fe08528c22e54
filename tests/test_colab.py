"""The Colab header: badge, setup cell (with Colab simulated) and the environment report."""

import importlib.metadata
import subprocess
import sys
import types

import pytest

import resnet_tf
from resnet_tf import colab


def _run_setup_cell(monkeypatch, in_colab: bool, installed: str | None) -> list:
    """Execute SETUP_CELL as a notebook would; return the subprocess.run calls.

    ``installed`` is the resnet_tf version the simulated runtime has (None: not installed).
    """
    calls = []

    def fake_run(cmd, *args, **kwargs):
        calls.append(list(cmd))
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    if in_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    real_version = importlib.metadata.version

    def version(name):
        if name != "resnet_tf":
            return real_version(name)
        if installed is None:
            raise importlib.metadata.PackageNotFoundError(name)
        return installed

    monkeypatch.setattr(importlib.metadata, "version", version)
    reported = []
    monkeypatch.setattr(colab, "report",
                        lambda echo=True, expected_version=None: reported.append(expected_version))
    exec(compile(colab.SETUP_CELL, "<setup cell>", "exec"), {"__name__": "__main__"})
    assert reported == [resnet_tf.__version__], "the setup cell reports the notebook's release"
    return calls


def test_setup_cell_installs_this_release_in_colab(monkeypatch):
    calls = _run_setup_cell(monkeypatch, in_colab=True, installed=None)
    assert len(calls) == 1
    cmd = calls[0]
    assert cmd[:4] == [sys.executable, "-m", "pip", "install"]
    assert cmd[-1] == colab.INSTALL_SPEC, "the cell installs the spec the module documents"
    assert any(f"{colab.REPO_URL}@v{resnet_tf.__version__}" in part for part in cmd), (
        "the setup cell installs the tag of this release, not a moving branch")
    words = " ".join(cmd).lower().replace(colab.REPO_URL.lower(), "")
    for heavy in ("tensorflow", "keras"):
        assert heavy not in words, f"the setup cell must not (re)install {heavy}: {cmd}"
    assert "-U" not in cmd and "--upgrade" not in cmd and "--force-reinstall" not in cmd


def test_setup_cell_does_nothing_outside_colab(monkeypatch):
    assert _run_setup_cell(monkeypatch, in_colab=False, installed=None) == []


def test_setup_cell_skips_install_when_this_release_is_present(monkeypatch):
    assert _run_setup_cell(monkeypatch, in_colab=True, installed=resnet_tf.__version__) == []


def test_setup_cell_replaces_another_release(monkeypatch):
    calls = _run_setup_cell(monkeypatch, in_colab=True, installed="0.0.1")
    assert len(calls) == 1 and calls[0][-1] == colab.INSTALL_SPEC


def test_report_warns_when_the_notebook_names_another_release(monkeypatch):
    assert colab.version_mismatch(None) is None
    assert colab.version_mismatch(resnet_tf.__version__) is None
    message = colab.version_mismatch("9.9.9")
    assert "9.9.9" in message and resnet_tf.__version__ in message and "@v9.9.9" in message
    with pytest.warns(UserWarning, match="written for resnet_tf 9.9.9"):
        colab.report(echo=False, expected_version="9.9.9")


def test_the_badge_opens_the_repository_the_setup_cell_installs_from(monkeypatch):
    spec = _run_setup_cell(monkeypatch, in_colab=True, installed=None)[0][-1]
    repository, tag = spec.split("git+", 1)[1].rsplit("@", 1)
    assert tag == f"v{resnet_tf.__version__}"
    slug = repository.removeprefix("https://github.com/")
    assert slug != repository, f"the setup cell installs from outside GitHub: {spec}"
    assert colab.colab_url("a.ipynb").startswith(
        f"https://colab.research.google.com/github/{slug}/blob/")


def test_badge_points_at_the_notebook_in_colab():
    badge = colab.badge_markdown("chapters/01_principles_and_mechanisms.ipynb")
    assert badge.startswith("[![Open In Colab](https://colab.research.google.com/assets/")
    slug = colab.REPO_URL.removeprefix("https://github.com/")
    assert f"colab.research.google.com/github/{slug}/blob/{colab.BRANCH}/chapters/01_" in badge


@pytest.mark.parametrize("gpus, hint", [([], True), (["/physical_device:GPU:0"], False)])
def test_report_hints_at_a_gpu_runtime_in_colab(monkeypatch, capsys, gpus, hint):
    import resnet_tf.runtime as runtime

    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    env = {"resnet_tf": "0", "tensorflow": "2", "keras": "3", "gpus": gpus,
           "profile": "full" if gpus else "quick"}
    monkeypatch.setattr(runtime, "environment", lambda: env)
    assert colab.report() is env
    out = capsys.readouterr().out
    assert f"profile: {env['profile']}" in out
    assert ("Change runtime type" in out) is hint


def test_report_is_quiet_about_gpus_outside_colab(monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    env = colab.report()
    out = capsys.readouterr().out
    assert "profile:" in out and "Change runtime type" not in out
    assert env["keras"].startswith("3")


def test_report_refuses_keras_2(monkeypatch):
    import keras

    monkeypatch.setattr(keras, "__version__", "2.15.0")
    with pytest.raises(RuntimeError, match="Keras 3"):
        colab.report(echo=False)


def test_report_line_says_how_the_profile_runs(capsys):
    env = colab.report()
    line = capsys.readouterr().out.splitlines()[0]
    assert f"profile: {env['profile']} ({colab.execution_summary(env)})" in line
    assert colab.execution_summary({"deterministic": True}) == "deterministic, no XLA, float32"
    assert colab.execution_summary({"xla": True, "mixed_precision": True}) == (
        "not deterministic, XLA, mixed float16")


def test_the_report_without_tensorflow_says_what_tensorflow_would_say():
    """light_environment() (no TensorFlow import) equals runtime.environment() here."""
    import json
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    code = ("import json, sys, resnet_tf.colab as c, resnet_tf.runtime as r\n"
            "light = c.light_environment()\n"
            "loaded = 'tensorflow' in sys.modules\n"
            "print(json.dumps([light, r.environment(), loaded]))")
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop("RESNET_TF_PROFILE", None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    light, full, loaded = json.loads(done.stdout.splitlines()[-1])
    if not colab.gpu_impossible():
        assert light is None, "with a GPU driver present TensorFlow must be asked"
        return
    assert light == full
    assert loaded is False
