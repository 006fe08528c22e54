"""A term without kernels: ids from LMS names, the roster, the course gradebook, late work,
exports, the misconception summary and the similarity flag, on planted run records."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from resnet_tf.grading import course, identity, insights
from resnet_tf.grading.collect import Submission, UsageError
from resnet_tf.grading.results import ClassResult, SubmissionResult
from resnet_tf.grading.scoring import ProblemScore

ROOT = Path(__file__).resolve().parents[1]

# ----------------------------------------------------------------------------- names


@pytest.mark.parametrize("path, fmt, expected", [
    ("downloads/smithjane_123456_7890123_01_signal_propagation.ipynb", "canvas",
     {"lms_id": "123456", "name": "smithjane", "late": False}),
    ("downloads/doejohn_late_223344_99887766_01_signal_propagation-1.ipynb", "canvas",
     {"lms_id": "223344", "name": "doejohn", "late": True}),
    ("x/Jane Smith_4521_assignsubmission_file_01_signal_propagation.ipynb", "moodle",
     {"lms_id": "4521", "name": "Jane Smith"}),
    ("Jane Smith_4521_assignsubmission_file_/signal.ipynb", "moodle",
     {"lms_id": "4521", "name": "Jane Smith"}),
    ("export/submission_246813579/01_signal_propagation.ipynb", "gradescope",
     {"lms_id": "246813579"}),
    ("class/s1234567.ipynb", "plain", {"student_id": "s1234567"}),
    ("class/s7654321/homework.ipynb", r"(?P<student_id>s\d+)/[^/]+$",
     {"student_id": "s7654321"}),
])
def test_each_name_pattern_reads_real_looking_download_names(path, fmt, expected):
    label, regex = identity.compile_pattern(fmt)
    found = identity.identify(path, label, regex)
    assert found is not None
    for field_name, value in expected.items():
        assert getattr(found, field_name) == value, field_name


def test_a_name_of_another_lms_does_not_match_and_bad_patterns_say_why():
    label, regex = identity.compile_pattern("canvas")
    assert identity.identify("Jane Smith_4521_assignsubmission_file_hw.ipynb",
                             label, regex) is None
    with pytest.raises(UsageError, match="named group"):
        identity.compile_pattern(r"\d+")
    with pytest.raises(UsageError, match="regular expression"):
        identity.compile_pattern("(?P<student_id>")


def test_gradescope_metadata_gives_the_sid_and_the_time(tmp_path):
    (tmp_path / "submission_246813579").mkdir()
    (tmp_path / "submission_metadata.yml").write_text(
        "submission_246813579:\n"
        "  :submitters:\n  - :name: Jane Smith\n    :sid: s1234567\n"
        "    :email: jane@example.edu\n"
        "  :created_at: 2026-10-02 10:00:00.000000000 +00:00\n")
    meta = identity.gradescope_metadata(tmp_path / "submission_246813579")
    assert meta["submission_246813579"]["sid"] == "s1234567"
    assert meta["submission_246813579"]["created_at"].startswith("2026-10-02")


# ----------------------------------------------------------------------------- records


def _result(folder: Path, relative: str, student: str, scores: dict[str, float],
            status: str = "graded", parts: dict | None = None, cells: list[str] = (),
            mtime: datetime | None = None) -> SubmissionResult:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}")
    if mtime is not None:
        os.utime(path, (mtime.timestamp(), mtime.timestamp()))
    name = relative.replace("/", "__").removesuffix(".ipynb")
    problems = []
    for pid, score in scores.items():
        problem_parts = (parts or {}).get(pid, [])
        problems.append(ProblemScore(pid, f"title {pid}", score, 2.0,
                                     "passed" if score == 2 else "failed", "", 1,
                                     parts=problem_parts))
    executed = new_notebook(cells=[new_code_cell(c) for c in cells])
    return SubmissionResult(Submission(path, relative, name), status, problems=problems,
                            student=student, sha256="0" * 64, executed=executed)


def _run(folder: Path, results: list[SubmissionResult], assignment: str = "hw1"
         ) -> ClassResult:
    return ClassResult(assignment, ["p1", "p2"], {"p1": 2.0, "p2": 2.0},
                       {"p1": "one", "p2": "two"}, results, folder / f"out-{assignment}")


def _roster(tmp_path: Path) -> identity.Roster:
    path = tmp_path / "roster.csv"
    path.write_text("Student,ID,SIS User ID,Section\n"
                    "Points Possible,,,\n"
                    '"Smith, Jane",123456,s1,A\n'
                    '"Doe, John",223344,s2,A\n'
                    '"Roe, Rita",323344,s3,B\n')
    return identity.read_roster(path)


def test_the_roster_gives_missing_students_zero_and_reports_off_roster(tmp_path):
    roster = _roster(tmp_path)
    assert sorted(roster.students) == ["s1", "s2", "s3"]
    run = _run(tmp_path, [
        _result(tmp_path, "dl/smithjane_123456_1_hw.ipynb", "s1", {"p1": 2, "p2": 2}),
        _result(tmp_path, "dl/zedzed_999999_2_hw.ipynb", "s9", {"p1": 2, "p2": 0}),
    ])
    how = course.Identification(identity.compile_pattern("canvas"), roster)
    book = course.CourseBook(tmp_path / "course")
    update = book.record(run, how)
    rows = {r["student_id"]: r for r in book.rows}
    assert rows["s1"]["total"] == 4 and rows["s1"]["identity"] == "match"
    assert rows["s1"]["name"] == "Smith, Jane" and rows["s1"]["section"] == "A"
    for missing in ("s2", "s3"):
        assert rows[missing]["status"] == "missing" and rows[missing]["total"] == 0
    assert update.missing == ["s2", "s3"]
    assert any("s9" in item for item in update.off_roster)
    assert rows["s9"]["on_roster"] == "no"


def test_a_mismatch_between_notebook_and_file_is_reported_not_resolved(tmp_path):
    roster = _roster(tmp_path)
    run = _run(tmp_path, [_result(tmp_path, "dl/doejohn_223344_5_hw.ipynb", "s1",
                                  {"p1": 2, "p2": 2})])
    book = course.CourseBook(tmp_path / "course")
    update = book.record(run, course.Identification(identity.compile_pattern("canvas"),
                                                    roster))
    row = book.rows[book.find("hw1", "s2")]
    assert row["identity"] == "mismatch" and "'s1'" in row["identity_note"]
    assert update.mismatches and "s2" in update.mismatches[0]


def test_regrading_one_student_replaces_only_that_row_and_keeps_the_history(tmp_path):
    book_dir = tmp_path / "course"
    how = course.Identification(identity.compile_pattern("plain"))
    first = _run(tmp_path, [_result(tmp_path, f"c/{s}.ipynb", s, {"p1": 2, "p2": n})
                            for s, n in (("s1", 0), ("s2", 2), ("s3", 1))])
    course.CourseBook(book_dir).record(first, how)
    other = _run(tmp_path, [_result(tmp_path, "c2/s1.ipynb", "s1", {"p1": 1, "p2": 1})],
                 assignment="hw2")
    course.CourseBook(book_dir).record(other, how)
    before = {(r["assignment"], r["student_id"]): r
              for r in course.CourseBook(book_dir).rows}

    again = _run(tmp_path, [_result(tmp_path, "c/s1.ipynb", "s1", {"p1": 2, "p2": 2})])
    update = course.CourseBook(book_dir).record(again, how)
    book = course.CourseBook(book_dir)
    after = {(r["assignment"], r["student_id"]): r for r in book.rows}
    assert update.replaced == ["s1"] and not update.added
    assert set(after) == set(before), "no row was lost or added"
    assert after[("hw1", "s1")]["total"] == 4
    for key in before:
        if key != ("hw1", "s1"):
            assert after[key] == before[key], key
    history = book.history()
    assert len(history) == 1 and history[0]["total"] == 2 and history[0]["student_id"] == "s1"


def test_a_late_submission_loses_its_penalty_and_says_when_it_came(tmp_path):
    due = datetime(2026, 10, 1, 23, 59, tzinfo=timezone.utc)
    percent, period, cap = course.parse_late_penalty("10%/day,max=50%")
    policy = course.LatePolicy(due, percent, period, cap)
    run = _run(tmp_path, [
        _result(tmp_path, "c/s1.ipynb", "s1", {"p1": 2, "p2": 2},
                mtime=datetime(2026, 10, 1, 20, 0, tzinfo=timezone.utc)),
        _result(tmp_path, "c/s2.ipynb", "s2", {"p1": 2, "p2": 2},
                mtime=datetime(2026, 10, 3, 1, 0, tzinfo=timezone.utc)),  # 25 h: 2 days
        _result(tmp_path, "c/s3.ipynb", "s3", {"p1": 2, "p2": 2},
                mtime=datetime(2026, 10, 20, tzinfo=timezone.utc)),
    ])
    book = course.CourseBook(tmp_path / "course")
    update = book.record(run, course.Identification(identity.compile_pattern("plain"),
                                                    late=policy))
    rows = {r["student_id"]: r for r in book.rows}
    assert rows["s1"]["total"] == 4 and rows["s1"]["penalty_percent"] == 0
    assert rows["s2"]["penalty_percent"] == 20 and rows["s2"]["total"] == pytest.approx(3.2)
    assert rows["s2"]["raw_total"] == 4 and rows["s2"]["late_hours"] == pytest.approx(25.02)
    assert rows["s2"]["submitted_from"] == "file time"
    assert rows["s2"]["submitted"].startswith("2026-10-03T01:00")
    assert rows["s3"]["penalty_percent"] == 50
    assert len(update.late) == 2
    with pytest.raises(UsageError, match="PERCENT"):
        course.parse_late_penalty("ten percent")


def test_the_canvas_export_reads_back_with_exactly_canvas_columns(tmp_path):
    how = course.Identification(identity.compile_pattern("canvas"), _roster(tmp_path))
    book = course.CourseBook(tmp_path / "course")
    book.record(_run(tmp_path, [_result(tmp_path, "d/smithjane_123456_1_hw.ipynb", "s1",
                                        {"p1": 2, "p2": 1})]), how)
    book.record(_run(tmp_path, [_result(tmp_path, "e/doejohn_223344_2_hw.ipynb", "s2",
                                        {"p1": 2, "p2": 2})], "hw2"), how)
    path = course.export(book, "canvas", tmp_path / "canvas.csv")
    with open(path, newline="", encoding="utf-8") as stream:
        rows = list(csv.reader(stream))
    assert rows[0] == ["Student", "ID", "SIS User ID", "Section", "hw1", "hw2"]
    assert rows[1][0] == "Points Possible" and rows[1][4:] == ["4", "4"]
    table = {r[2]: r for r in rows[2:]}
    assert table["s1"] == ["Smith, Jane", "123456", "s1", "A", "3", "0"]
    assert table["s2"][4:] == ["0", "4"] and table["s3"][4:] == ["0", "0"]
    moodle = list(csv.reader(io.StringIO(course.moodle_table(book))))
    assert moodle[0] == ["ID number", "Full name", "Email address", "hw1", "hw2"]
    full = list(csv.DictReader(io.StringIO(course.full_table(book))))
    assert {r["hw1:p2"] for r in full if r["assignment"] == "hw1"} == {"1", "0"}
    with pytest.raises(UsageError, match="format"):
        course.export(book, "excel", tmp_path / "x")


def test_export_and_usage_errors_through_the_command(tmp_path):
    how = course.Identification(identity.compile_pattern("plain"))
    course.CourseBook(tmp_path / "course").record(
        _run(tmp_path, [_result(tmp_path, "c/s1.ipynb", "s1", {"p1": 2, "p2": 2})]), how)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "grades.csv"
    done = subprocess.run([sys.executable, "-m", "resnet_tf", "grade", "export", "--course",
                           str(tmp_path / "course"), "--format", "canvas", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert out.read_text().splitlines()[0] == "Student,ID,SIS User ID,Section,hw1"
    bad = subprocess.run([sys.executable, "-m", "resnet_tf", "grade", str(tmp_path / "c"),
                          "--out", str(tmp_path / "o"), "--names", "canvas"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "--course" in bad.stderr


# ----------------------------------------------------------------------------- insights


def _parts(kind: str | None) -> list[dict]:
    if kind is None:
        return [{"name": "value", "score": 2.0, "max_score": 2.0, "status": "passed",
                 "message": "right value"}]
    return [{"name": "value", "score": 0.0, "max_score": 2.0, "status": "failed",
             "message": kind}]


def test_the_misconception_summary_counts_the_planted_mistakes(tmp_path):
    plan = [None, None, "wrong: the sign is wrong. Think of the slope.",
            "wrong: the sign is wrong. Think of the slope.",
            "wrong: not the right value. Count the layers.",
            "wrong type: expected 3 numbers, got 2"]
    results = []
    for i, kind in enumerate(plan):
        cells = ['hint("p1", 2)'] if i in (2, 3) else []
        results.append(_result(tmp_path, f"c/s{i}.ipynb", f"s{i}",
                               {"p1": 2 if kind is None else 0, "p2": 2},
                               parts={"p1": _parts(kind), "p2": _parts(None)}, cells=cells))
    run = _run(tmp_path, results)
    summary = {(p.problem, p.part): p for p in insights.part_summaries(run)}
    p1 = summary[("p1", "value")]
    assert p1.solved == 2 and p1.mean == pytest.approx(4 / 6)
    assert p1.mistakes == {"wrong: the sign is wrong": 2, "wrong: not the right value": 1,
                           "wrong type: expected N numbers, got N": 1}
    text = insights.misconceptions_text(run)
    assert "2 x wrong: the sign is wrong" in text
    assert "hints asked 2 time(s) by 2 student(s)" in text
    run.out_dir.mkdir(parents=True)
    assert insights.score_figure(run, run.out_dir / "scores.png").stat().st_size > 1000


def test_the_similarity_flag_lists_two_copied_submissions_side_by_side(tmp_path):
    handed_out = ["import numpy as np", 'STUDENT_ID = ""']
    mine = ["# my own way\nslope = -(1 - 0.5) ** 3\nanswer = slope * np.sqrt(2)",
            "values = [np.exp(-k) for k in range(5)]\ncheck('p2', values)"]
    copied = ["slope = -(1 - 0.5)**3   # copied, comments differ\n\nanswer = slope*np.sqrt(2)",
              "values = [np.exp(-k) for k in range(5)]\ncheck('p2', values)"]
    other = ["growth = 2.0 ** 10\nanswer = growth / 1024 + 7", "check('p2', list(range(5)))"]
    third = ["x = np.linspace(0, 1, 11)\nanswer = float(np.trapz(x ** 2, x)) * 3",
             "check('p2', [1, 2, 3, 4, 5])"]
    results = [
        _result(tmp_path, "c/a.ipynb", "a", {"p1": 2, "p2": 2},
                cells=[*handed_out[:1], 'STUDENT_ID = "a"', *mine]),
        _result(tmp_path, "c/b.ipynb", "b", {"p1": 2, "p2": 2},
                cells=[*handed_out[:1], 'STUDENT_ID = "b"', *copied]),
        _result(tmp_path, "c/c.ipynb", "c", {"p1": 0, "p2": 2},
                cells=[*handed_out[:1], 'STUDENT_ID = "c"', *other]),
        _result(tmp_path, "c/d.ipynb", "d", {"p1": 0, "p2": 2},
                cells=[*handed_out[:1], 'STUDENT_ID = "d"', *third]),
    ]
    run = _run(tmp_path, results)
    pairs = insights.similar_pairs(run)
    assert [(p.first, p.second) for p in pairs] == [("c__a", "c__b")]
    assert pairs[0].ratio == 1.0
    text = insights.similarity_text(pairs)
    assert "c__a  <->  c__b" in text and "answer = slope * np.sqrt(2)" in text
    assert [r.total for r in run.results] == [4, 4, 2, 2], "the flag changes no score"


def test_the_course_root_is_explicit_and_checked(tmp_path, monkeypatch):
    monkeypatch.delenv(insights.COURSE_ROOT_ENV, raising=False)
    assert insights.course_root() is None
    with pytest.raises(UsageError, match="exercises"):
        insights.course_root(tmp_path)
    monkeypatch.setenv(insights.COURSE_ROOT_ENV, str(ROOT))
    assert insights.course_root() == ROOT
    scaffold = insights.scaffold_sources(ROOT, "signal_propagation")
    assert insights.normalise('STUDENT_ID = ""  # your student id') == ""
    assert any("set_student" in cell for cell in scaffold)


def test_report_does_not_import_tensorflow_when_nothing_needs_it():
    code = ("import sys, resnet_tf.colab as c; env = c.report(echo=False); "
            "print(int('tensorflow' in sys.modules), env['profile'], env['gpus'])")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RESNET_TF_PROFILE": "quick"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    if identity_gpu_possible():
        pytest.skip("a GPU driver is present: TensorFlow must be asked")
    assert done.stdout.split() == ["0", "quick", "[]"]


def identity_gpu_possible() -> bool:
    from resnet_tf import colab

    return not colab.gpu_impossible()


def test_json_book_is_the_store_and_the_table_follows(tmp_path):
    book = course.CourseBook(tmp_path / "course")
    book.record(_run(tmp_path, [_result(tmp_path, "c/s1.ipynb", "s1", {"p1": 2, "p2": 2})]),
                course.Identification(identity.compile_pattern("plain")))
    data = json.loads((tmp_path / "course" / course.BOOK).read_text())
    assert data["rows"][0]["problems"] == {"p1": 2, "p2": 2}
    assert (tmp_path / "course" / course.TABLE).read_text().startswith("assignment,")


def test_the_graders_package_under_tmp_is_bound_back_read_only(tmp_path):
    from resnet_tf.grading import sandbox

    box = sandbox.Sandbox(bwrap="/usr/bin/bwrap")
    package = tmp_path / "source" / "package"
    package.mkdir(parents=True)
    key = tmp_path / "source" / "key"
    key.write_text("k")
    work, ipc = tmp_path / "w", tmp_path / "i"
    argv = sandbox.wrap(box, ["python"], work, ipc, [key], {}, readable=[package])
    assert ["--ro-bind", str(package), str(package)] == argv[argv.index(str(package)) - 1:
                                                             argv.index(str(package)) + 2]
    # a folder that holds a hidden path is never bound back
    argv = sandbox.wrap(box, ["python"], work, ipc, [key], {}, readable=[tmp_path / "source"])
    assert "--ro-bind" not in [a for i, a in enumerate(argv)
                               if i + 1 < len(argv) and argv[i + 1] == str(tmp_path / "source")]


def test_ids_are_compared_as_the_variants_compare_them(tmp_path):
    roster = identity.Roster({"S1234": identity.Student("S1234", "Jane")})
    for file in (None, identity.FileIdentity(student_id="s1234 ", source="plain"),
                 identity.FileIdentity(lms_id="99", source="canvas")):
        resolved = identity.resolve(" s1234", file, roster)
        assert resolved.key == "S1234" and resolved.check != "mismatch", file
