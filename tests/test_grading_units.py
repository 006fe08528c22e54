"""Unit tests of the grader's pieces that need no kernel: naming, parsing, scoring, output."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from resnet_tf.exercises import PROBLEMS
from resnet_tf.grading import collect, reports, scoring
from resnet_tf.grading.grader import (
    ClassResult,
    Options,
    SubmissionResult,
    choose_assignment,
    declared_assignment,
    declared_version,
    parse_notebook,
    prepare_output,
    student_id_of,
)
from resnet_tf.grading.runner import (
    CellError,
    Collected,
    kernel_environment,
    parse_reply,
    read_bounded,
    write_kernelspec,
)

# ----------------------------------------------------------------------------- collect


def _touch(path: Path, text: str = "{}") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_find_notebooks_walks_folders_and_skips_checkpoints_hidden_and_output(tmp_path):
    a = _touch(tmp_path / "class" / "alice" / "hw.ipynb")
    b = _touch(tmp_path / "class" / "bob" / "hw.ipynb")
    _touch(tmp_path / "class" / "bob" / ".ipynb_checkpoints" / "hw-checkpoint.ipynb")
    _touch(tmp_path / "class" / ".hidden" / "x.ipynb")
    _touch(tmp_path / "class" / "notes.txt")
    _touch(tmp_path / "class" / "grades" / "old" / "executed.ipynb")
    found = collect.find_notebooks([tmp_path / "class"], exclude=tmp_path / "class" / "grades")
    assert found == [a.resolve(), b.resolve()]


def test_find_notebooks_keeps_explicit_files_of_any_extension_once(tmp_path):
    a = _touch(tmp_path / "a.ipynb")
    odd = _touch(tmp_path / "renamed.json")
    found = collect.find_notebooks([a, tmp_path, odd, a])
    assert found == [a.resolve(), odd.resolve()]


def test_find_notebooks_rejects_missing_paths_and_submissions_inside_the_output(tmp_path):
    with pytest.raises(collect.UsageError, match="no such file"):
        collect.find_notebooks([tmp_path / "nope.ipynb"])
    inside = _touch(tmp_path / "out" / "a.ipynb")
    with pytest.raises(collect.UsageError, match="inside the output folder"):
        collect.find_notebooks([inside], exclude=tmp_path / "out")


def test_name_submissions_gives_distinct_safe_names_for_same_file_names(tmp_path):
    paths = [
        tmp_path / "class" / "alice" / "hw 1.ipynb",
        tmp_path / "class" / "bob" / "hw 1.ipynb",
        tmp_path / "class" / "alice__hw_1.ipynb",
        tmp_path / "class" / "gradebook.csv",
    ]
    subs = collect.name_submissions(paths, reserved=("gradebook.csv",))
    names = [s.name for s in subs]
    assert names[:2] == ["alice__hw_1", "bob__hw_1"]
    assert len({n.lower() for n in names}) == 4
    assert names[2] == "alice__hw_1-2"
    assert names[3] != "gradebook.csv"
    assert subs[1].display == "bob/hw 1.ipynb"
    assert all(collect.safe_name(n) == n for n in names)


def test_safe_name_never_returns_empty_or_dotted_names():
    assert collect.safe_name("..") == "submission"
    assert collect.safe_name("a/../b") == "a_.._b"
    assert collect.safe_name("ünï cödé") == "n_c_d"


# ----------------------------------------------------------------------------- parsing


def _notebook_bytes(metadata: dict | None = None) -> bytes:
    nb = new_notebook(metadata=metadata or {}, cells=[
        new_markdown_cell("# title"), new_code_cell("x = 1", execution_count=3),
    ])
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="junk")]
    return nbformat.writes(nb).encode()


@pytest.mark.parametrize("data, status", [
    (b"", "empty"),
    (b"  \n", "empty"),
    (b"{not json", "not_json"),
    (b"\xff\xfe\x00garbage", "not_json"),
    (b"[1, 2, 3]", "not_notebook"),
    (b'{"cells": "nope"}', "not_notebook"),
    (b'{"hello": 1}', "not_notebook"),
])
def test_parse_notebook_reports_what_cannot_be_graded(data, status):
    got, message, notebook = parse_notebook(data)
    assert (got, notebook) == (status, None)
    assert message


def test_parse_notebook_rebuilds_a_clean_notebook_from_the_sources():
    status, _, notebook = parse_notebook(_notebook_bytes({"resnet_tf": {"assignment": "x"}}))
    assert status == "ok"
    assert [c.cell_type for c in notebook.cells] == ["markdown", "code"]
    assert notebook.cells[1].outputs == [] and notebook.cells[1].source == "x = 1"
    assert declared_assignment(notebook) == "x"
    nbformat.validate(notebook)


def test_parse_notebook_tolerates_damaged_cells():
    raw = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
           "cells": [{"cell_type": "code", "source": ["a = ", "1"]}, 17,
                     {"cell_type": "mystery", "source": "?"}]}
    status, _, notebook = parse_notebook(json.dumps(raw).encode())
    assert status == "ok"
    assert [c.source for c in notebook.cells] == ["a = 1"]
    assert declared_assignment(notebook) is None


# ----------------------------------------------------------------------------- assignment


def test_the_assignment_is_the_instructors_never_the_notebooks():
    known = {"one": ["1"], "two": ["2"]}
    assert choose_assignment(known, "two") == "two"
    with pytest.raises(collect.UsageError, match="unknown assignment"):
        choose_assignment(known, "three")
    with pytest.raises(collect.UsageError, match="--assignment"):
        choose_assignment(known, None)
    assert choose_assignment({"one": ["1"]}, None) == "one"


def test_student_id_and_version_come_from_the_notebook_text():
    nb = new_notebook(metadata={"resnet_tf": {"version": "0.0.9"}}, cells=[
        new_code_cell("%pip install x\nimport os"),
        new_code_cell("def broken(:"),
        new_code_cell('STUDENT_ID = " S-12.ab "  # your id'),
        new_code_cell('STUDENT_ID = "later"'),
    ])
    assert student_id_of(nb) == "s-12.ab"
    assert declared_version(nb) == "0.0.9"
    nb.cells[2].source = "STUDENT_ID = compute()"
    assert student_id_of(nb) == ""
    assert declared_version(new_notebook()) is None


# ----------------------------------------------------------------------------- scoring


def _collected(pid: str, parts: dict, calls: int = 1, **extra) -> Collected:
    return Collected(pid, {"problem": pid, "student": "", "calls": calls, "checked": True,
                           "parts": parts, **extra})


def _value(value):
    from resnet_tf.exercises import wire

    return {"value": wire.encode(value)}


def _outputs(pid: str, part: str, function, student="", key=None):
    from resnet_tf.exercises import wire

    problem = PROBLEMS[pid]
    checker = next(p.checker for p in problem.parts if p.name == part)
    cases = checker.case_list(True, problem.context(part, student, key))[0]
    return {"outputs": [wire.encode(function(*c)) for c in cases]}


def test_collected_answers_are_judged_here_with_the_hidden_cases():
    right = {"plain_gain": _outputs("3113800", "plain_gain", lambda a, L: a**L),
             "residual_gain": _outputs("3113800", "residual_gain", lambda a, L: (1 + a)**L),
             "depth": _value(20)}
    (got,) = scoring.score_problems(["3113800"], {"3113800": _collected("3113800", right)},
                                    "", None)
    assert (got.score, got.status, got.visible_status) == (3.0, "passed", "passed")
    # outputs right on the visible cases only: the visible verdict passes, the grade not
    visible_only = dict(right)
    outputs = list(right["plain_gain"]["outputs"])
    outputs[-1] = 12345.0
    visible_only["plain_gain"] = {"outputs": outputs}
    (got,) = scoring.score_problems(["3113800"],
                                    {"3113800": _collected("3113800", visible_only)}, "", None)
    assert got.visible_status == "passed" and got.score == 2.0
    assert "hidden case" in got.output and "12345" not in got.output
    # an error on a hidden case is named by its kind only, never by its text
    outputs[-1] = {"$": "raised", "message": "ValueError: shapes (3,) and (5,) differ"}
    visible_only["plain_gain"] = {"outputs": outputs}
    (got,) = scoring.score_problems(["3113800"],
                                    {"3113800": _collected("3113800", visible_only)}, "", None)
    assert "raised ValueError on hidden case" in got.output and "(5,)" not in got.output


def test_a_forged_record_cannot_give_points():
    forged = Collected("3113800", {"problem": "3113800", "score": 3, "max_score": 3,
                                   "status": "passed", "checked": True, "calls": 1,
                                   "parts": {"plain_gain": {"score": 1}}})
    (got,) = scoring.score_problems(["3113800"], {"3113800": forged}, "", None)
    assert got.score == 0.0
    # a function answer handed over as a string expression is never evaluated here
    sneaky = _collected("3113800", {"plain_gain": _value("a**L")})
    (got,) = scoring.score_problems(["3113800"], {"3113800": sneaky}, "", None)
    assert got.score == 0.0 and "could not be run" in got.output


def test_objects_with_custom_equality_earn_nothing():
    from resnet_tf.exercises import wire

    class Yes(str):
        def __eq__(self, other):
            return True

        __hash__ = str.__hash__

    encoded = wire.encode(Yes("x"))
    assert type(wire.decode(json.loads(json.dumps(encoded)))) is str
    parts = {"basic_params": _outputs("3170003", "basic_params", lambda *a: Yes())}
    (got,) = scoring.score_problems(["3170003"], {"3170003": _collected("3170003", parts)},
                                    "", None)
    assert got.score == 0.0


def test_not_checked_uncollectable_and_type_errors():
    got = scoring.score_problems(
        ["3113800", "3134457", "3170015"],
        {"3134457": Collected("3134457", None, "no answers came back"),
         "3170015": _collected("3170015", {}, type_error="give a dict")}, "", None)
    assert [p.status for p in got] == ["not_checked", "not_checked", "failed"]
    assert "could not be collected" in got[1].output and "give a dict" in got[2].output
    assert all(p.score == 0 for p in got)


def test_the_reply_is_read_only_between_its_own_markers():
    marker = "@@abc@@"
    good = f'junk {marker}{{"problem": "1", "checked": false}}{marker}\n'
    assert parse_reply(good, marker, "1").record == {"problem": "1", "checked": False}
    assert parse_reply("no markers", marker, "1").record is None
    twice = good + good
    assert "more than once" in parse_reply(twice, marker, "1").error
    assert parse_reply(f"{marker}[1]{marker}", marker, "1").record is None
    assert parse_reply(f'{marker}{{"problem": "2"}}{marker}', marker, "1").record is None


def test_bounded_reads_refuse_links_pipes_devices_and_large_files(tmp_path):
    import os

    good = tmp_path / "a.ipynb"
    good.write_bytes(b"{}")
    assert read_bounded(good, 10) == b"{}"
    (tmp_path / "zero.ipynb").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "pipe.ipynb")
    (tmp_path / "big.ipynb").write_bytes(b"x" * 100)
    for name, words in [("zero.ipynb", "symbolic link"), ("pipe.ipynb", "named pipe"),
                        ("big.ipynb", "larger")]:
        with pytest.raises(OSError, match=words):
            read_bounded(tmp_path / name, 10)
    with pytest.raises(OSError, match="device"):
        read_bounded(Path("/dev/null"), 10)


# ----------------------------------------------------------------------------- kernel set-up


def test_kernelspec_and_environment_pass_nothing_secret(tmp_path, monkeypatch):
    import subprocess
    import sys

    import resnet_tf

    kernels = write_kernelspec(tmp_path)
    spec = json.loads((kernels / "resnet-tf-grader" / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable and spec["interrupt_mode"] == "message"
    monkeypatch.setenv("RESNET_TF_GRADE_KEY", "00" * 32)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    env = kernel_environment(tmp_path / "work")
    assert env["TF_CPP_MIN_LOG_LEVEL"] == "3" and env["HOME"] == str(tmp_path / "work")
    assert "RESNET_TF_GRADE_KEY" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    # A kernel imports the grader's own resnet_tf, even when PYTHONPATH names another copy.
    shadow = tmp_path / "shadow" / "resnet_tf"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('the wrong resnet_tf')\n")
    monkeypatch.setenv("PYTHONPATH", str(shadow.parent))
    env = kernel_environment(tmp_path / "work")
    found = subprocess.run([sys.executable, "-c", "import resnet_tf; print(resnet_tf.__file__)"],
                           env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert found.returncode == 0, found.stderr[-2000:]
    assert Path(found.stdout.strip()).resolve() == Path(resnet_tf.__file__).resolve()


# ----------------------------------------------------------------------------- output folder


def test_prepare_output_refuses_a_used_folder_unless_forced(tmp_path):
    out = tmp_path / "out"
    prepare_output(out, force=False)
    prepare_output(out, force=False)  # empty: fine
    (out / "alice").mkdir()
    for name in ("results.json", "feedback.md", "executed.ipynb", "mine.txt"):
        (out / "alice" / name).write_text("x")
    (out / "grading.json").write_text(json.dumps({"submissions": [{"name": "alice"},
                                                                  {"name": "../escape"}]}))
    (out / "gradebook.csv").write_text("x")
    (tmp_path / "escape").mkdir()
    (tmp_path / "escape" / "results.json").write_text("keep")
    with pytest.raises(collect.UsageError, match="earlier grading run"):
        prepare_output(out, force=False)
    prepare_output(out, force=True)
    assert sorted(p.name for p in out.rglob("*")) == ["alice", "mine.txt"]
    assert (tmp_path / "escape" / "results.json").read_text() == "keep"
    (tmp_path / "file").write_text("x")
    with pytest.raises(collect.UsageError, match="not a folder"):
        prepare_output(tmp_path / "file", force=True)


# ----------------------------------------------------------------------------- reports


def _run(tmp_path: Path) -> ClassResult:
    problems = ["1", "2"]
    points = {"1": 2.0, "2": 3.0}
    titles = {"1": "First", "2": "Second | piped"}
    scores = [
        scoring.ProblemScore("1", "First", 2.0, 2.0, "passed", "fine", 1, "passed", "fine"),
        scoring.ProblemScore("2", "Second | piped", 1.0, 3.0, "failed", "half \ud800", 1,
                             "passed", "all visible checks pass"),
    ]
    good = SubmissionResult(
        collect.Submission(tmp_path / "a.ipynb", "a.ipynb", "a"), "cell_errors",
        message="cell 3 raised ValueError: no \ud800", sha256="abc", problems=scores,
        cell_errors=[CellError(2, "ValueError", "no")], seconds=3.2, student="s1",
    )
    empty = SubmissionResult(
        collect.Submission(tmp_path / "b.ipynb", "b.ipynb", "b"), "empty",
        message="the file is empty",
        problems=[scoring.not_checked(pid, titles[pid], points[pid]) for pid in problems],
    )
    return ClassResult("demo", problems, points, titles, [good, empty], tmp_path, seconds=5.0,
                       version="9.9")


def test_gradebook_columns_and_rows(tmp_path):
    run = _run(tmp_path)
    path = reports.write_gradebook(run)
    lines = path.read_text().splitlines()
    assert lines[0] == ("submission,total,max_total,1,2,status,error,student_id,file,sha256,"
                        "resnet_tf")
    assert lines[1].startswith("a,3,5,2,1,cell_errors,cell 3 raised ValueError: no \\ud800,"
                               "s1,a.ipynb,abc,9.9")
    assert lines[2].startswith("b,0,5,0,0,empty,")
    assert path.stat().st_mode & 0o444 == 0o444  # the instructor's tools can read it


def test_gradescope_results_follow_the_autograder_format(tmp_path):
    run = _run(tmp_path)
    data = reports.gradescope_results(run, run.results[0])
    assert data["score"] == 3.0 and data["execution_time"] == 3
    assert data["output_format"] == "text" and data["extra_data"]["resnet_tf"] == "9.9"
    visible = [t for t in data["tests"] if t["visibility"] == "visible"]
    hidden = [t for t in data["tests"] if t["visibility"] != "visible"]
    assert [t["status"] for t in visible] == ["passed", "passed"]
    assert all("score" not in t for t in visible)
    assert [(t["score"], t["status"], t["visibility"]) for t in hidden] == [
        (2.0, "passed", "after_published"), (1.0, "failed", "after_published")]
    assert sum(t["score"] for t in hidden) == data["score"]
    run.hidden_visibility = "after_due_date"
    data = reports.gradescope_results(run, run.results[0])
    assert {t["visibility"] for t in data["tests"]} == {"visible", "after_due_date"}
    json.dumps(data)


def test_feedback_and_summary_say_what_happened(tmp_path):
    run = _run(tmp_path)
    folder = reports.write_submission(run, run.results[0])
    feedback = (folder / "feedback.md").read_text()
    assert "**Score: 3 / 5**" in feedback and "cell 3: ValueError: no" in feedback
    assert "Second / piped" in feedback and "half" in feedback
    assert "\\ud800" in (folder / "results.json").read_text()
    run.results[0].version = "0.0.1"
    table = reports.summary_table(run)
    assert "2 submission(s)" in table and "b: empty - the file is empty" in table
    assert "another resnet_tf version (0.0.1)" in table
    stats = {row["problem"]: row for row in reports.problem_statistics(run)}
    assert stats["1"] == {"problem": "1", "points": 2.0, "mean": 1.0, "checked": 1,
                          "full": 1, "failed": 0, "not_checked": 1}
    assert stats["2"]["failed"] == 1
    manifest = json.loads(reports.write_manifest(run, Options(), _now()).read_text())
    assert [s["name"] for s in manifest["submissions"]] == ["a", "b"]
    assert manifest["key"] is False and manifest["key_fingerprint"] is None


def _now():
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)


# ----------------------------------------------------------------------------- kernel failures


def test_a_kernel_that_cannot_start_is_retried_then_reported_as_the_graders_fault(
        tmp_path, monkeypatch):
    import asyncio
    import sys

    from resnet_tf.grading import runner, sandbox
    from resnet_tf.grading.grader import KERNEL_ATTEMPTS, Setting, grade_submission

    monkeypatch.setattr(sandbox, "python_argv",
                        lambda: [sys.executable, "-c", "raise SystemExit(3)"])
    monkeypatch.setattr(runner.sb, "python_argv", sandbox.python_argv)
    path = tmp_path / "a.ipynb"
    path.write_bytes(_notebook_bytes())
    submission = collect.Submission(path, "a.ipynb", "a")
    (tmp_path / "tmp").mkdir()
    setting = Setting("signal_propagation", ["3113800"], {"3113800": 3.0},
                      {"3113800": "One"}, Options(cell_timeout=5, notebook_timeout=30),
                      sandbox.Sandbox(), tmp_path / "tmp")
    result = asyncio.run(grade_submission(submission, setting))
    assert result.status == "grader_error"
    assert "could not be started" in result.message
    assert len([n for n in result.notes if n.startswith("attempt")]) == KERNEL_ATTEMPTS
    assert result.total == 0 and result.problems[0].status == "not_checked"


def test_keys_are_made_once_and_read_from_file_or_environment(tmp_path, monkeypatch):
    from resnet_tf.grading import keys

    path = keys.new_key(tmp_path / "course.key")
    assert path.stat().st_mode & 0o777 == 0o600
    key = keys.load_key(path)
    assert len(key) == 32
    with pytest.raises(keys.KeyFileError, match="never overwritten"):
        keys.new_key(path)
    assert keys.load_key(path) == key
    monkeypatch.delenv(keys.KEY_ENV, raising=False)
    assert keys.load_key(None) is None
    monkeypatch.setenv(keys.KEY_ENV, "a passphrase of some length")
    assert keys.load_key(None) == b"a passphrase of some length"
    with pytest.raises(keys.KeyFileError, match="too short"):
        keys.parse_key("short")
