"""Unit tests of the grader's pieces that need no kernel: naming, parsing, scoring, output."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from resnet_tf.grading import collect, reports, scoring
from resnet_tf.grading.grader import (
    ClassResult,
    Options,
    SubmissionResult,
    choose_assignment,
    declared_assignment,
    parse_notebook,
    prepare_output,
)
from resnet_tf.grading.runner import CellError, kernel_environment, read_log, write_kernelspec

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


def test_choose_assignment_by_request_majority_or_usage_error(tmp_path):
    known = {"one": ["1"], "two": ["2"]}
    files = [_touch(tmp_path / f"{i}.ipynb", json.dumps(
        {"metadata": {"resnet_tf": {"assignment": a}}, "cells": []}))
        for i, a in enumerate(["one", "one", "two", "unknown"])]
    assert choose_assignment(files, known, None) == "one"
    assert choose_assignment(files, known, "two") == "two"
    with pytest.raises(collect.UsageError, match="unknown assignment"):
        choose_assignment(files, known, "three")
    with pytest.raises(collect.UsageError, match="split between"):
        choose_assignment(files[1:3], known, None)
    with pytest.raises(collect.UsageError, match="--assignment"):
        choose_assignment(files[3:], known, None)
    assert choose_assignment(files[3:], {"one": ["1"]}, None) == "one"


# ----------------------------------------------------------------------------- scoring


def test_last_check_counts_and_calls_are_counted():
    records = [
        {"problem": "1", "score": 2, "max_score": 2, "status": "passed", "output": "ok"},
        {"problem": "2", "score": 1, "max_score": 4, "status": "failed", "output": "meh"},
        {"problem": "1", "score": 0, "max_score": 2, "status": "failed", "output": "broke"},
    ]
    got = scoring.score_problems(["1", "2", "3"], records, {"1": 2, "2": 4, "3": 1})
    assert [(p.score, p.status, p.calls) for p in got] == [
        (0.0, "failed", 2), (1.0, "failed", 1), (0.0, scoring.NOT_CHECKED, 0)]
    assert "last check counts" in got[0].output


def test_scores_are_rescaled_clipped_and_foreign_records_ignored():
    records = [
        {"problem": "1", "score": 1, "max_score": 2, "status": "failed"},
        {"problem": " 2 ", "score": 99, "max_score": 3, "status": "passed"},
        {"problem": "3", "score": "lots", "max_score": 3, "status": "passed"},
        {"problem": "4", "score": float("nan"), "max_score": 3, "status": "weird"},
        {"problem": "999", "score": 5, "max_score": 5, "status": "passed"},
    ]
    got = scoring.score_problems(["1", "2", "3", "4"], records,
                                 {"1": 4, "2": 3, "3": 3, "4": 3})
    assert [p.score for p in got] == [2.0, 3.0, 0.0, 0.0]
    assert [p.status for p in got] == ["failed", "passed", "error", "error"]


def test_read_log_skips_unreadable_lines(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text('{"problem": "1", "score": 1}\nnot json\n\n[1]\n{"score": 2}\n'
                   '{"problem": "2", "score": 0}\n')
    records, bad = read_log(log)
    assert [r["problem"] for r in records] == ["1", "2"] and bad == 3
    assert read_log(tmp_path / "missing.jsonl") == ([], 0)


# ----------------------------------------------------------------------------- kernel set-up


def test_kernelspec_uses_this_python_and_environment_is_quiet(tmp_path):
    import sys

    kernels = write_kernelspec(tmp_path)
    spec = json.loads((kernels / "resnet-tf-grader" / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable
    from resnet_tf.exercises import GRADE_LOG_ENV
    from resnet_tf.grading.runner import GRADE_LOG_ENV as ours

    assert ours == GRADE_LOG_ENV
    env = kernel_environment(tmp_path / "log.jsonl")
    assert env["TF_CPP_MIN_LOG_LEVEL"] == "3"
    assert env["RESNET_TF_GRADE_LOG"] == str(tmp_path / "log.jsonl")
    assert env["PYTHONPATH"].split(":")[0] == str(Path(collect.__file__).resolve().parents[2])


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
    good = SubmissionResult(
        collect.Submission(tmp_path / "a.ipynb", "a.ipynb", "a"), "cell_errors",
        message="cell 3 raised ValueError: no", sha256="abc",
        problems=scoring.score_problems(problems, [
            {"problem": "1", "score": 2, "max_score": 2, "status": "passed", "output": "fine"},
            {"problem": "2", "score": 1, "max_score": 3, "status": "failed", "output": "half"},
        ], points, titles),
        cell_errors=[CellError(2, "ValueError", "no")], seconds=3.2,
    )
    empty = SubmissionResult(
        collect.Submission(tmp_path / "b.ipynb", "b.ipynb", "b"), "empty",
        message="the file is empty", problems=scoring.score_problems(problems, [], points),
    )
    return ClassResult("demo", problems, points, titles, [good, empty], tmp_path, seconds=5.0)


def test_gradebook_columns_and_rows(tmp_path):
    run = _run(tmp_path)
    path = reports.write_gradebook(run)
    lines = path.read_text().splitlines()
    assert lines[0] == "submission,total,max_total,1,2,status,error,file,sha256"
    assert lines[1].startswith("a,3,5,2,1,cell_errors,cell 3 raised ValueError: no,a.ipynb,abc")
    assert lines[2].startswith("b,0,5,0,0,empty,")


def test_gradescope_results_follow_the_autograder_format(tmp_path):
    run = _run(tmp_path)
    data = reports.gradescope_results(run, run.results[0])
    assert data["score"] == 3.0 and data["execution_time"] == 3
    assert [t["status"] for t in data["tests"]] == ["passed", "failed"]
    for test in data["tests"]:
        assert set(test) >= {"name", "score", "max_score", "status", "output", "visibility"}
        assert test["visibility"] == "visible"
    assert data["tests"][1]["extra_data"]["status"] == "failed"
    json.dumps(data)


def test_feedback_and_summary_say_what_happened(tmp_path):
    run = _run(tmp_path)
    folder = reports.write_submission(run, run.results[0])
    feedback = (folder / "feedback.md").read_text()
    assert "**Score: 3 / 5**" in feedback and "cell 3: ValueError: no" in feedback
    assert "Second / piped" in feedback and "half" in feedback
    table = reports.summary_table(run)
    assert "2 submission(s)" in table and "b: empty - the file is empty" in table
    stats = {row["problem"]: row for row in reports.problem_statistics(run)}
    assert stats["1"] == {"problem": "1", "points": 2.0, "mean": 1.0, "checked": 1,
                          "full": 1, "failed": 0, "not_checked": 1}
    assert stats["2"]["failed"] == 1
    manifest = json.loads(reports.write_manifest(run, Options(), _now()).read_text())
    assert [s["name"] for s in manifest["submissions"]] == ["a", "b"]


def _now():
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)


# ----------------------------------------------------------------------------- kernel failures


def test_a_kernel_that_cannot_start_is_retried_then_reported_as_the_graders_fault(tmp_path):
    import asyncio
    import sys

    from resnet_tf.grading.grader import KERNEL_ATTEMPTS, grade_submission

    kernels = write_kernelspec(tmp_path / "spec")
    spec_file = kernels / "resnet-tf-grader" / "kernel.json"
    spec = json.loads(spec_file.read_text())
    spec["argv"] = [sys.executable, "-c", "raise SystemExit(3)"]
    spec_file.write_text(json.dumps(spec))
    path = tmp_path / "a.ipynb"
    path.write_bytes(_notebook_bytes())
    submission = collect.Submission(path, "a.ipynb", "a")
    result = asyncio.run(grade_submission(
        submission, "demo", ["1"], {"1": 2.0}, {"1": "One"},
        Options(cell_timeout=5, notebook_timeout=30), kernels,
    ))
    assert result.status == "grader_error"
    assert "could not be started" in result.message
    assert len([n for n in result.notes if n.startswith("attempt")]) == KERNEL_ATTEMPTS
    assert result.total == 0 and result.problems[0].status == "not_checked"
