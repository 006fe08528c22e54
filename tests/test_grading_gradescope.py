"""The Gradescope autograder zip, run end to end in a temporary root laid out like
Gradescope's /autograder, gives the score of a local run of the same notebook."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from resnet_tf.grading import Options, grade_class
from resnet_tf.grading.gradescope import PYTHON_ENV, ROOT_ENV, build_autograder
from resnet_tf.grading.keys import load_key, new_key

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "signal_propagation"
NOTEBOOK = "01_signal_propagation"


@pytest.fixture(scope="module")
def autograder(tmp_path_factory, assignment_with_id):
    tmp = tmp_path_factory.mktemp("gradescope")
    key_file = new_key(tmp / "course.key")
    zip_path = build_autograder(ASSIGNMENT, tmp / "autograder.zip", key_file=str(key_file))
    root = tmp / "autograder"
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        archive.extractall(root / "source")
        modes = {i.filename: i.external_attr >> 16 for i in archive.infolist()}
    for name in ("setup.sh", "run_autograder"):
        os.chmod(root / "source" / name, 0o755)
    (root / "submission").mkdir()
    (root / "results").mkdir()
    notebook = root / "submission" / f"{NOTEBOOK}.ipynb"
    notebook.write_text(json.dumps(assignment_with_id("solutions", "s2468")), encoding="utf-8")
    (root / "submission_metadata.json").write_text(json.dumps({"users": [{"sid": "s2468"}]}))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update({ROOT_ENV: str(root), PYTHON_ENV: sys.executable})
    done = subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env,
                          capture_output=True, text=True, timeout=900)
    local_copy = tmp / "local" / f"{NOTEBOOK}.ipynb"
    local_copy.parent.mkdir()
    local_copy.write_text(notebook.read_text(encoding="utf-8"), encoding="utf-8")
    local = grade_class([local_copy], tmp / "local-out", Options(key=load_key(str(key_file))),
                        ASSIGNMENT, key_file=key_file)
    return {"root": root, "done": done, "names": names, "modes": modes, "local": local}


def test_the_zip_holds_what_gradescope_expects(autograder):
    names = autograder["names"]
    for required in ("setup.sh", "run_autograder", "requirements.txt", "config.json", "key",
                     "package/resnet_tf/__init__.py",
                     "package/resnet_tf/grading/gradescope.py"):
        assert required in names, required
    assert not any("__pycache__" in n for n in names)
    assert autograder["modes"]["run_autograder"] & stat.S_IXUSR
    assert autograder["modes"]["key"] & 0o077 == 0
    requirements = (autograder["root"] / "source" / "requirements.txt").read_text()
    assert re.search(r"^tensorflow==\d", requirements, re.M)
    assert re.search(r"^ipykernel==\d", requirements, re.M)


def test_run_autograder_writes_results_json_with_the_local_score(autograder):
    done = autograder["done"]
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((autograder["root"] / "results" / "results.json").read_text())
    local = autograder["local"].results[0]
    assert local.status == "graded" and local.student == "s2468"
    assert results["score"] == pytest.approx(local.total)
    assert results["score"] == pytest.approx(autograder["local"].max_total)
    assert results["output_format"] == "text"
    hidden = [t for t in results["tests"] if "score" in t]
    assert {t["visibility"] for t in hidden} == {"after_published"}
    assert sum(t["score"] for t in hidden) == pytest.approx(local.total)
    assert results["extra_data"]["student_id"] == "s2468"
    assert "enrolled as" not in results["output"]
