"""The version matrix (tools/matrix.toml) tests exactly the ranges pyproject.toml declares."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
needs_tomllib = pytest.mark.skipif(sys.version_info < (3, 11),
                                   reason="tools/matrix.py reads TOML with Python 3.11+")


def _module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def matrix():
    return _module("matrix_tool", ROOT / "tools" / "matrix.py")


@pytest.fixture(scope="module")
def project():
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _pins(entry) -> dict[str, Version]:
    pins = {}
    for pin in entry.pins:
        req = Requirement(pin)
        (spec,) = req.specifier
        assert spec.operator == "==", f"{pin}: matrix pins are exact"
        pins[req.name.lower()] = Version(spec.version)
    return pins


@needs_tomllib
def test_lower_entry_pins_every_declared_floor(matrix, project):
    lower = matrix.load_matrix()["lower"]
    pins = _pins(lower)
    for dep in project["dependencies"]:
        req = Requirement(dep)
        floors = [Version(s.version) for s in req.specifier if s.operator == ">="]
        assert floors, f"{dep}: every dependency declares a lower bound"
        assert pins.get(req.name.lower()) == floors[0], (
            f"the lower entry must pin {req.name}=={floors[0]} (the declared floor)")
    python_floor = project["requires-python"].removeprefix(">=")
    assert lower.python == python_floor


@needs_tomllib
def test_every_entry_lies_inside_the_declared_ranges(matrix, project):
    declared = {Requirement(d).name.lower(): Requirement(d).specifier
                for d in project["dependencies"]}
    for entry in matrix.load_matrix().values():
        for name, version in _pins(entry).items():
            if name in declared:
                assert declared[name].contains(version), (
                    f"{entry.name} pins {name}=={version}, outside {declared[name]}")


@needs_tomllib
def test_matrix_covers_colab_lower_and_newest(matrix):
    entries = matrix.load_matrix()
    assert {"colab", "lower", "newest"} <= set(entries)
    assert entries["newest"].upgrade and not entries["newest"].pins
    assert entries["colab"].python == "3.13"


@needs_tomllib
def test_a_missing_python_is_skipped_not_passed(matrix, tmp_path, capsys):
    entry = matrix.Entry(name="ancient", python="2.1", notebooks=["chapters/*.ipynb"])
    steps = matrix.run_entry(entry, wheel=tmp_path / "unused.whl", logs=tmp_path)
    assert [(s.step, s.status) for s in steps] == [("python", "skipped")]
    assert "Python 2.1 is not installed" in capsys.readouterr().out


@needs_tomllib
def test_unknown_keys_in_the_matrix_are_refused(matrix, tmp_path):
    bad = tmp_path / "matrix.toml"
    bad.write_text('[x]\npython = "3.11"\nnotebok = []\n')
    with pytest.raises(SystemExit, match="unknown keys"):
        matrix.load_matrix(bad)


@needs_tomllib
def test_unknown_entry_names_are_a_usage_error(matrix, capsys):
    with pytest.raises(SystemExit) as exit_info:
        matrix.main(["nosuchentry"])
    assert exit_info.value.code == 2
    assert "unknown entries" in capsys.readouterr().err
