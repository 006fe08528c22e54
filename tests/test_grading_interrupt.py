"""SIGTERM with two kernels running cells stops the run promptly (exit 130), records
nothing unearned and leaves no process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _slow_solution(raw: dict) -> dict:
    """``raw``, a solved notebook, made to sleep for two minutes in a last cell."""
    raw["cells"].append({"cell_type": "code", "metadata": {}, "outputs": [],
                         "execution_count": None,
                         "source": "import time\nfor _ in range(600):\n    time.sleep(0.2)"})
    return raw


def test_sigterm_with_two_jobs_running_cells_stops_the_run(tmp_path, assignment_with_id):
    (tmp_path / "class").mkdir()
    for index in range(4):
        (tmp_path / "class" / f"s{index}.ipynb").write_text(json.dumps(_slow_solution(
            assignment_with_id("solutions", f"s{index}"))))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RESNET_TF_PROFILE": "quick"}
    process = subprocess.Popen(
        [sys.executable, "-m", "resnet_tf", "grade", str(tmp_path / "class"), "--out",
         str(tmp_path / "out"), "--assignment", "signal_propagation", "--jobs", "2",
         "--timeout", "300"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env)
    deadline = time.time() + 240
    # wait until both kernels run the notebooks' last, endless cells
    while time.time() < deadline:
        kernels = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True,
                                 text=True).stdout.split()
        if len(kernels) >= 2:
            break
        time.sleep(0.5)
    time.sleep(15)
    process.send_signal(signal.SIGTERM)
    try:
        stdout, stderr = process.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise AssertionError("the grader did not stop within 90 s of SIGTERM") from None
    assert process.returncode == 130, stderr[-2000:]
    assert "interrupted" in stderr
    # the running cells were stopped with their kernels, not left behind as tasks
    assert "unhandled exception during asyncio.run() shutdown" not in stderr
    rows = (tmp_path / "out" / "gradebook.csv").read_text().splitlines()
    assert len(rows) == 1, "nobody was recorded with a score they did not earn"
    left = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert left.stdout.strip() == "", "no process outlives the run"
