"""Grading a planted class end to end with the real command.

The planted submissions are made here from the real notebooks of one assignment (the
master in ``solutions/`` and the student version in ``exercises/``): all correct, blank,
half right, wrong types, a raising cell, an endless loop, a kernel crash, deleted,
duplicated and reordered cells, an answer that hard-codes the visible checks, lost
metadata, empty / truncated / non-notebook files and a notebook of another assignment.
When no master notebook exists yet, a small notebook is generated instead. One
``python -m resnet_tf grade`` run grades them all (module-scoped fixture); the tests read
its outputs.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from resnet_tf.exercises import PROBLEMS, assignments
from resnet_tf.exercises.checkers import Function

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "signal_propagation"
CELL_TIMEOUT = 30  # seconds; every cell of the master notebook needs far less
CHECK_CALL = "check"


# ----------------------------------------------------------------------------- notebooks


def _find_notebook(folder: str, assignment: str) -> Path | None:
    """The notebook in ``ROOT/folder`` whose metadata names ``assignment``."""
    for path in sorted((ROOT / folder).glob("*.ipynb")):
        try:
            meta = json.loads(path.read_text())["metadata"].get("resnet_tf", {})
        except (OSError, ValueError, KeyError):
            continue
        if meta.get("assignment") == assignment:
            return path
    return None


def _generated_master() -> nbformat.NotebookNode:
    """A small stand-in master: problem 3113800 answered, the others left blank."""
    ids = assignments()[ASSIGNMENT]
    cells = [new_markdown_cell(f"# {ASSIGNMENT}"),
             new_code_cell("from resnet_tf.exercises import check")]
    for pid in ids:
        answer = ('{"plain_gain": "a**L", "residual_gain": "(1 + a)**L", "depth": 20}'
                  if pid == "3113800" else "...")
        cells += [new_markdown_cell(f"## Problem {pid}"),
                  new_code_cell(f"answer_{pid} = {answer}"),
                  new_code_cell(f'check("{pid}", answer_{pid})')]
    return new_notebook(cells=cells, metadata={
        "resnet_tf": {"assignment": ASSIGNMENT, "problems": ids},
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    })


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _check_calls(source: str) -> list[tuple[str, ast.Call]]:
    """``(problem id, call node)`` for every ``check("id", ...)`` in ``source``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    calls = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and node.args
                and getattr(node.func, "id", getattr(node.func, "attr", None)) == CHECK_CALL
                and isinstance(node.args[0], ast.Constant)):
            calls.append((str(node.args[0].value), node))
    return calls


def check_cells(nb) -> dict[str, list[int]]:
    """Problem id -> indices of the code cells that check it."""
    found: dict[str, list[int]] = {}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            for pid, _ in _check_calls(cell.source):
                found.setdefault(pid, []).append(index)
    return found


def _offset(lines: list[bytes], line: int, col: int) -> int:
    return sum(len(x) for x in lines[: line - 1]) + col


def replace_answers(source: str, answers: dict[str, str]) -> str:
    """Rewrite ``check("id", X)`` as ``check("id", answers[id])`` for the ids given."""
    data = source.encode()
    lines = data.splitlines(keepends=True)
    edits = []
    for pid, node in _check_calls(source):
        if pid in answers:
            start = _offset(lines, node.lineno, node.col_offset)
            stop = _offset(lines, node.end_lineno, node.end_col_offset)
            edits.append((start, stop, f'check("{pid}", {answers[pid]})'.encode()))
    for start, stop, text in sorted(edits, reverse=True):
        data = data[:start] + text + data[stop:]
    return data.decode()


def answer_source(source: str, pid: str) -> str:
    """The source text of the answer in ``check("pid", answer)``."""
    for found, node in _check_calls(source):
        if found == pid and len(node.args) > 1:
            return ast.get_source_segment(source, node.args[1])
    raise AssertionError(f"no check of {pid} with an answer")


def with_answers(nb, answers: dict[str, str]):
    """A copy of ``nb`` whose checks of the given problems get the given answers."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = replace_answers(cell.source, answers)
    return nb


def _copy(nb):
    return nbformat.from_dict(json.loads(json.dumps(nb)))


def sections(nb, ids: list[str]) -> tuple[list, list[list]]:
    """Split ``nb`` into a preamble and one run of cells per problem (in notebook order).

    A problem's run starts at the first markdown heading that names its id (else right
    after the previous problem's last check cell) and ends where the next one starts.
    """
    checks = check_cells(nb)
    starts = []
    for pid in ids:
        heading = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"
                        and any(ln.lstrip().startswith("#") and pid in ln
                                for ln in c.source.splitlines())), None)
        if heading is None:
            previous = starts[-1] if starts else 0
            heading = max([i for p in ids for i in checks.get(p, []) if i < checks[pid][0]]
                          + [previous - 1]) + 1
        starts.append(heading)
    assert starts == sorted(starts), starts
    bounds = [*starts, len(nb.cells)]
    return nb.cells[: starts[0]], [nb.cells[a:b] for a, b in zip(bounds, bounds[1:],
                                                                   strict=False)]


def hardcoded_cell(nb, pid: str, part: str) -> str:
    """A check of ``pid`` whose ``part`` is a table of the visible cases' answers."""
    checker = PROBLEMS[pid].parts[[p.name for p in PROBLEMS[pid].parts].index(part)].checker
    args = ", ".join(checker.arg_names)
    original = answer_source(nb.cells[check_cells(nb)[pid][-1]].source, pid)
    multi = len(PROBLEMS[pid].parts) > 1
    return "\n".join([
        "import numpy as _np",
        "from resnet_tf.exercises import PROBLEMS as _P",
        f"_checker = {{p.name: p.checker for p in _P[{pid!r}].parts}}[{part!r}]",
        "def _key(value):",
        "    if isinstance(value, (list, tuple)):",
        "        return tuple(_key(v) for v in value)",
        "    array = _np.asarray(value, dtype=float)",
        "    return (array.shape, array.tobytes())",
        "_table = {_key(c): _checker.reference(*c) for c in _checker._all_cases(False)}",
        f"def _memorised({args}):",
        f"    return _table.get(_key(({args},)), 0.0)",
        f"_answer = {original}" if multi else "_answer = _memorised",
        f"_answer[{part!r}] = _memorised" if multi else "",
        f'check("{pid}", _answer)',
    ])


# ----------------------------------------------------------------------------- the class


def _file_hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


class Planted:
    """The planted class, its expected grades, and the outputs of grading it."""

    def __init__(self, root: Path):
        self.root = root
        self.class_dir = root / "class"
        self.out = root / "grades"
        self.ids = assignments()[ASSIGNMENT]
        self.points = {pid: PROBLEMS[pid].points for pid in self.ids}
        self.expected: dict[str, dict[str, float]] = {}  # name -> problem -> score
        self.master_path = _find_notebook("solutions", ASSIGNMENT)
        self.master = _read(self.master_path) if self.master_path else _generated_master()
        checks = check_cells(self.master)
        # what the master itself earns: all of it, unless it is the generated stand-in
        self.base = {pid: (self.points[pid] if (self.master_path or pid == "3113800")
                           else 0.0) for pid in self.ids}
        assert set(checks) >= set(self.ids), "every problem needs a check cell"

    def write(self, name: str, nb_or_bytes, expected: dict[str, float] | None) -> None:
        path = self.class_dir / f"{name}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(nb_or_bytes, bytes):
            path.write_bytes(nb_or_bytes)
        else:
            for number, cell in enumerate(nb_or_bytes.cells):  # copied cells share ids
                cell.id = f"cell-{number}"
            nbformat.write(nb_or_bytes, path)
        if expected is not None:
            self.expected[name.replace("/", "__")] = expected

    def plant(self) -> None:
        ids, base, master = self.ids, self.base, self.master
        zero = dict.fromkeys(ids, 0.0)
        half = ids[: len(ids) // 2]
        checks = check_cells(master)

        # same file name in two folders: the correct notebook and the blank one
        self.write("alice/submission", master, dict(base))
        exercise = _find_notebook("exercises", ASSIGNMENT)
        blank = _read(exercise) if exercise else with_answers(master, dict.fromkeys(ids, "..."))
        self.write("bob/submission", blank, dict(zero))
        self.write("half_right", with_answers(master, dict.fromkeys(ids[len(half):], "...")),
                   {p: (base[p] if p in half else 0.0) for p in ids})
        self.write("wrong_types", with_answers(master, dict.fromkeys(ids, '"forty-two"')),
                   dict(zero))

        # a raising cell, and the assignment metadata lost (as some editors do)
        first_code = next(i for i, c in enumerate(master.cells) if c.cell_type == "code")
        nb = _copy(master)
        nb.cells.insert(first_code + 1, new_code_cell('raise RuntimeError("planted failure")'))
        del nb.metadata["resnet_tf"]
        self.write("raising_cell", nb, dict(base))

        nb = _copy(master)
        nb.cells.insert(checks[ids[0]][0], new_code_cell("while True:\n    pass"))
        self.write("endless_loop", nb, dict(base))

        preamble, runs = sections(master, ids)
        nb = _copy(master)
        nb.cells = preamble + [c for run in runs[:2] for c in run] + [
            new_code_cell("import os\nos.abort()")] + [c for run in runs[2:] for c in run]
        self.write("kernel_crash", nb, {p: (base[p] if p in ids[:2] else 0.0) for p in ids})

        # the first problem's check cell and a markdown cell deleted; the third problem's
        # check cell duplicated; a stale copy of the second problem's check (blank answer)
        # added at the end, where, being the last call, it counts
        nb = _copy(master)
        second, third = checks[ids[1]][-1], checks[ids[2]][-1]
        stale = _copy(nb.cells[second])
        stale.source = replace_answers(stale.source, {ids[1]: "..."})
        nb.cells.insert(third + 1, _copy(nb.cells[third]))
        nb.cells.append(stale)
        drop = {checks[ids[0]][-1]}
        drop |= {next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"
                      and i > checks[ids[0]][-1])}
        nb.cells = [c for i, c in enumerate(nb.cells) if i not in drop]
        self.write("deleted_and_duplicated_cells", nb,
                   {p: (0.0 if p in ids[:2] else base[p]) for p in ids})

        # problems in reverse order; each problem seeds its own random numbers, so its draws
        # (and its measured answers) do not depend on which problems ran before it
        order = list(range(len(runs) - 1, -1, -1))
        nb = _copy(master)
        nb.cells = preamble + [c for k in order for c in runs[k]]
        self.write("reordered_cells", nb, dict(base))

        if self.master_path:
            target, part = self._function_part()
            nb = _copy(master)
            nb.cells[checks[target][-1]].source = hardcoded_cell(master, target, part)
            part_points = next(p.points for p in PROBLEMS[target].parts if p.name == part)
            expected = dict(base)
            expected[target] = base[target] - part_points
            self.hardcoded = (target, part)
            self.write("hardcoded_visible", nb, expected)

        raw = nbformat.writes(master).encode()
        self.write("empty", b"", dict(zero))
        self.write("truncated", raw[: len(raw) // 2], dict(zero))
        self.write("not_a_notebook", b'{"name": "alice", "answers": [1, 2, 3]}', dict(zero))
        other_name = next(a for a in assignments() if a != ASSIGNMENT)
        other_path = (_find_notebook("exercises", other_name)
                      or _find_notebook("solutions", other_name))
        if other_path:
            other = _read(other_path)
        else:
            other = _copy(master)
            other.metadata["resnet_tf"] = {"assignment": other_name}
        self.write("other_assignment", other, dict(zero))
        # editor debris that must be ignored
        self.write(".ipynb_checkpoints/half_right-checkpoint", master, None)

    def _function_part(self) -> tuple[str, str]:
        """The last problem with a function or formula part, and that part."""
        for pid in reversed(self.ids):
            for part in PROBLEMS[pid].parts:
                if isinstance(part.checker, Function):
                    return pid, part.name
        raise AssertionError("no function part to hard-code")

    def grade(self) -> None:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", RESNET_TF_PROFILE="quick")
        self.before = _file_hashes(self.class_dir)
        self.process = subprocess.run(
            [sys.executable, "-m", "resnet_tf", "grade", str(self.class_dir),
             "--out", str(self.out), "--timeout", str(CELL_TIMEOUT), "--jobs", "2",
             "--assignment", ASSIGNMENT],
            capture_output=True, text=True, env=env, cwd=self.root, timeout=900,
        )
        self.after = _file_hashes(self.class_dir)
        with open(self.out / "gradebook.csv", newline="") as stream:
            self.rows = {row["submission"]: row for row in csv.DictReader(stream)}

    def results(self, name: str) -> dict:
        return json.loads((self.out / name / "results.json").read_text())


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Planted:
    """The planted class, graded once for all the tests of this module."""
    run = Planted(tmp_path_factory.mktemp("grading"))
    run.plant()
    run.grade()
    return run


# ----------------------------------------------------------------------------- the tests


def test_the_command_succeeds_and_prints_a_summary(planted):
    assert planted.process.returncode == 0, planted.process.stderr[-3000:]
    out = planted.process.stdout
    assert f"Assignment {ASSIGNMENT}: {len(planted.expected)} submission(s)" in out
    for pid in planted.ids:
        assert f"\n{pid}" in out
    assert "Gradebook:" in out


def test_every_submission_has_a_row_with_the_expected_scores(planted):
    assert set(planted.rows) == set(planted.expected)
    for name, expected in planted.expected.items():
        row = planted.rows[name]
        got = {pid: float(row[pid]) for pid in planted.ids}
        assert got == pytest.approx(expected), (name, row["status"], row["error"])
        assert float(row["total"]) == pytest.approx(sum(expected.values())), name
        assert float(row["max_total"]) == pytest.approx(sum(planted.points.values()))


def test_gradebook_columns(planted):
    header = (planted.out / "gradebook.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["submission", "total", "max_total"]
    assert header[3:3 + len(planted.ids)] == planted.ids
    assert "status" in header and "error" in header


def test_submissions_are_left_byte_for_byte_unchanged(planted):
    assert planted.before == planted.after
    for name in planted.rows:
        sha = planted.rows[name]["sha256"]
        assert sha == planted.before[planted.rows[name]["file"]]


def test_outputs_stay_inside_the_output_folder(planted):
    written = {p.name for p in planted.root.iterdir()}
    assert written == {"class", "grades"}


@pytest.mark.parametrize("name, status, words", [
    ("alice__submission", "graded", ""),
    ("raising_cell", "cell_errors", "RuntimeError: planted failure"),
    ("reordered_cells", "graded", ""),
    ("endless_loop", "timeout", "timed out"),
    ("kernel_crash", "kernel_died", "kernel died"),
    ("empty", "empty", "empty"),
    ("truncated", "not_json", "JSON"),
    ("not_a_notebook", "not_notebook", "notebook"),
    ("other_assignment", "wrong_assignment", "another assignment"),
])
def test_statuses_and_reasons(planted, name, status, words):
    row = planted.rows[name]
    assert row["status"] == status, row
    assert words in row["error"] or words in json.dumps(planted.results(name))


def test_same_file_names_in_different_folders_do_not_collide(planted):
    assert {"alice__submission", "bob__submission"} <= set(planted.rows)
    assert planted.rows["alice__submission"]["file"] == "alice/submission.ipynb"
    assert planted.results("alice__submission")["score"] != planted.results(
        "bob__submission")["score"]


def test_checkpoints_are_ignored(planted):
    assert not any("checkpoint" in name for name in planted.rows)


def test_blank_and_wrong_types_say_why(planted):
    blank = planted.results("bob__submission")
    assert {t["extra_data"]["status"] for t in blank["tests"]} == {"unanswered"}
    wrong = planted.results("wrong_types")
    assert {t["extra_data"]["status"] for t in wrong["tests"]} == {"failed"}
    assert all("type" in t["output"] for t in wrong["tests"])


def test_duplicated_check_the_last_call_counts(planted):
    tests = {t["extra_data"]["problem"]: t
             for t in planted.results("deleted_and_duplicated_cells")["tests"]}
    second, third = planted.ids[1], planted.ids[2]
    assert tests[second]["extra_data"]["calls"] == 2
    assert tests[second]["extra_data"]["status"] == "unanswered"
    assert tests[third]["extra_data"]["calls"] == 2
    assert tests[third]["score"] == planted.base[third]


def test_deleted_check_is_reported_as_not_checked(planted):
    tests = planted.results("deleted_and_duplicated_cells")["tests"]
    assert tests[0]["extra_data"]["status"] == "not_checked"
    assert "No check" in tests[0]["output"]


def test_hardcoding_the_visible_cases_does_not_earn_the_points(planted):
    if not planted.master_path:
        pytest.skip("needs the master notebook")
    target, part = planted.hardcoded
    executed = _read(planted.out / "hardcoded_visible" / "executed.ipynb")
    cell = next(c for c in executed.cells if c.cell_type == "code" and "_memorised" in c.source)
    shown = "".join(o.get("text", "") for o in cell.outputs)
    points = planted.points[target]
    assert f"{points:g} of {points:g} points" in shown, shown
    test = {t["extra_data"]["problem"]: t for t in planted.results("hardcoded_visible")[
        "tests"]}[target]
    assert test["status"] == "failed" and part in test["output"]


def test_results_json_is_gradescope_format(planted):
    for name in planted.rows:
        data = planted.results(name)
        assert data["score"] == pytest.approx(float(planted.rows[name]["total"]))
        scored = [t for t in data["tests"] if "score" in t]
        assert [t["extra_data"]["problem"] for t in scored] == planted.ids
        assert sum(t["score"] for t in scored) == pytest.approx(data["score"])
        for test in data["tests"]:
            assert test["status"] in ("passed", "failed")
            assert set(test) >= {"name", "status", "output", "visibility"}
        assert {t["visibility"] for t in scored} == {"after_published"}


def test_feedback_files_and_manifest(planted):
    for name in planted.rows:
        feedback = (planted.out / name / "feedback.md").read_text()
        assert f"/ {sum(planted.points.values()):g}**" in feedback
    manifest = json.loads((planted.out / "grading.json").read_text())
    assert manifest["assignment"] == ASSIGNMENT
    notes = {s["name"]: s["notes"] for s in manifest["submissions"]}
    assert any("metadata" in note for note in notes["raising_cell"])


def test_an_earlier_run_is_not_overwritten_without_force(planted, capsys):
    from resnet_tf.cli import main

    before = _file_hashes(planted.out)
    argv = ["grade", str(planted.class_dir / "empty.ipynb"), "--out", str(planted.out)]
    assert main(argv) == 2
    assert "--force" in capsys.readouterr().err
    assert _file_hashes(planted.out) == before


# ----------------------------------------------------------------------------- without the class


def test_usage_errors_exit_with_code_2_and_a_message(tmp_path, capsys):
    from resnet_tf.cli import main

    (tmp_path / "nothing_here").mkdir()
    (tmp_path / "a_file").write_text("x")
    cases = [
        (["grade", str(tmp_path / "nothing_here"), "--out", str(tmp_path / "o1")],
         "no submissions found"),
        (["grade", str(tmp_path / "missing.ipynb"), "--out", str(tmp_path / "o2")],
         "no such file"),
        (["grade", str(tmp_path / "a_file"), "--out", str(tmp_path / "o3"), "--timeout", "0"],
         "--timeout"),
        (["grade", str(tmp_path / "nothing_here"), "--out", str(tmp_path / "a_file")],
         "not a folder"),
    ]
    for argv, words in cases:
        assert main(argv) == 2, argv
        assert words in capsys.readouterr().err
    assert not any((tmp_path / name).exists() for name in ("o1", "o2", "o3"))


def test_force_replaces_an_earlier_run_and_keeps_other_files(tmp_path, capsys):
    from resnet_tf.cli import main

    (tmp_path / "class").mkdir()
    (tmp_path / "class" / "x.ipynb").write_bytes(b"")
    (tmp_path / "class" / "y.ipynb").write_bytes(b"{")
    argv = ["grade", str(tmp_path / "class"), "--out", str(tmp_path / "out"),
            "--assignment", ASSIGNMENT]
    assert main(argv) == 0
    (tmp_path / "out" / "my_notes.txt").write_text("mine")
    (tmp_path / "class" / "y.ipynb").unlink()
    assert main(argv) == 2
    assert main([*argv, "--force"]) == 0
    capsys.readouterr()
    assert (tmp_path / "out" / "my_notes.txt").read_text() == "mine"
    assert not (tmp_path / "out" / "y").exists()
    assert (tmp_path / "out" / "gradebook.csv").read_text().count("\n") == 2


def test_a_loop_that_ignores_interrupts_is_stopped_by_the_notebook_limit(tmp_path):
    from resnet_tf.grading import Options, grade_class

    stubborn = ("import time\nwhile True:\n    try:\n        time.sleep(5)\n"
                "    except KeyboardInterrupt:\n        pass")
    nb = new_notebook(metadata={"resnet_tf": {"assignment": ASSIGNMENT}}, cells=[
        new_code_cell("from resnet_tf.exercises import check"),
        new_code_cell('check("3113800", {"plain_gain": "a**L", "residual_gain": "(1+a)**L",'
                      ' "depth": 20})'),
        *[new_code_cell(stubborn) for _ in range(6)],
        new_code_cell('check("3134457", ...)'),
    ])
    nbformat.write(nb, tmp_path / "stubborn.ipynb")
    run = grade_class([tmp_path / "stubborn.ipynb"], tmp_path / "out",
                      Options(cell_timeout=5, notebook_timeout=25), ASSIGNMENT)
    (result,) = run.results
    assert result.status == "timeout"
    assert "in total" in result.message and "cell 3" in result.message
    scores = {p.problem: (p.score, p.status) for p in result.problems}
    assert scores["3113800"] == (3.0, "passed")
    assert scores["3134457"] == (0.0, "not_checked")
    assert result.seconds < 40
