"""The `grade` command with --course on a small class from a Canvas download: rows by
student, the roster's missing student, a late file, a regrade of one student, the reports."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "01_signal_propagation"


def _grade(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RESNET_TF_PROFILE": "quick"}
    return subprocess.run([sys.executable, "-m", "resnet_tf", "grade", *args], env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def term(tmp_path_factory, assignment_with_id):
    tmp = tmp_path_factory.mktemp("term")
    downloads = tmp / "downloads"
    downloads.mkdir()
    solved = downloads / f"smithjane_123456_1001_{NOTEBOOK}.ipynb"
    solved.write_text(json.dumps(assignment_with_id("solutions", "s1")), encoding="utf-8")
    late = downloads / f"doejohn_late_223344_1002_{NOTEBOOK}.ipynb"
    late.write_text(json.dumps(assignment_with_id("solutions", "s2")), encoding="utf-8")
    on_time = datetime(2027, 2, 1, 12, tzinfo=timezone.utc).timestamp()
    two_days_late = datetime(2027, 2, 3, 12, tzinfo=timezone.utc).timestamp()
    os.utime(solved, (on_time, on_time))
    os.utime(late, (two_days_late, two_days_late))
    roster = tmp / "roster.csv"
    roster.write_text('Student,ID,SIS User ID,Section\n"Smith, Jane",123456,s1,A\n'
                      '"Doe, John",223344,s2,A\n"Roe, Rita",323344,s3,B\n')
    course = tmp / "course"
    common = ["--assignment", "signal_propagation", "--course", str(course), "--names",
              "canvas", "--roster", str(roster), "--due", "2027-02-01T23:59Z",
              "--late-penalty", "25%/day", "--jobs", "2", "--quiet",
              "--course-root", str(ROOT)]
    first = _grade(str(downloads), *common)
    book_before = json.loads((course / "gradebook.json").read_text())
    again = _grade(str(solved), *common)
    return {"tmp": tmp, "course": course, "first": first, "again": again,
            "before": book_before, "after": json.loads((course / "gradebook.json").read_text())}


def test_the_class_is_recorded_by_student_with_the_missing_one(term):
    assert term["first"].returncode == 0, term["first"].stderr[-3000:]
    rows = {r["student_id"]: r for r in term["before"]["rows"]}
    assert set(rows) == {"s1", "s2", "s3"}
    assert rows["s1"]["total"] == rows["s1"]["max_total"] and rows["s1"]["identity"] == "match"
    assert rows["s3"]["status"] == "missing" and rows["s3"]["total"] == 0
    assert "missing (0 points): s3" in term["first"].stdout


def test_the_late_file_loses_its_penalty(term):
    row = {r["student_id"]: r for r in term["before"]["rows"]}["s2"]
    assert row["raw_total"] == row["max_total"]
    assert row["penalty_percent"] == 50 and row["total"] == pytest.approx(row["raw_total"] / 2)
    assert row["lms_late_mark"] is True and row["submitted_from"] == "file time"


def test_regrading_one_student_leaves_the_others_untouched(term):
    assert term["again"].returncode == 0, term["again"].stderr[-3000:]
    before = {r["student_id"]: r for r in term["before"]["rows"]}
    after = {r["student_id"]: r for r in term["after"]["rows"]}
    assert set(after) == set(before)
    assert after["s2"] == before["s2"] and after["s3"] == before["s3"]
    assert after["s1"]["graded_at"] >= before["s1"]["graded_at"]
    assert after["s1"]["run"] != before["s1"]["run"]
    history = [json.loads(line) for line in
               (term["course"] / "history.jsonl").read_text().splitlines()]
    assert [h["student_id"] for h in history] == ["s1"]


def test_the_run_writes_the_reports_and_the_canvas_export_reads_back(term):
    run = Path(term["before"]["rows"][0]["run"])
    for name in ("misconceptions.txt", "similarity.txt", "scores.png", "gradebook.csv"):
        assert (run / name).is_file(), name
    # two solved masters differ only in STUDENT_ID: the flag lists them, scores stand
    assert "<->" in (run / "similarity.txt").read_text()
    out = term["tmp"] / "canvas.csv"
    done = _grade("export", "--course", str(term["course"]), "--format", "canvas",
                  "--out", str(out))
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(out.open(newline="")))
    assert rows[0] == ["Student", "ID", "SIS User ID", "Section", "signal_propagation"]
    assert {r[2] for r in rows[2:]} == {"s1", "s2", "s3"}
