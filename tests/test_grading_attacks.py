"""A class of hostile submissions, graded once with a key: each attack earns what its answers do.

Every submission starts from the real notebooks of one assignment (the solved master in
``solutions/``, the blank scaffold in ``exercises/``) with a student id filled in, plus
one attack: forged logs, output and metadata, monkeypatched checkers and hand-over,
answers read from the package, hard-coded visible cases, copied numbers (the solution's,
a classmate's), objects with a forged ``__eq__``, writes to the grader's and other
students' files, processes left behind, memory and process bombs (bounded), a lone
surrogate, a flood of output, a named pipe, a link to ``/dev/zero``, an upper-case
extension. One ``python -m resnet_tf grade --jobs 2 --key ...`` run grades them all; the
tests check every score against what the submission's real answers deserve (computed
here, in the test, from the problem bank), that every input byte is unchanged, that no
process is left, and that nothing students receive shows a hidden case.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell

import resnet_tf
from resnet_tf.exercises import PROBLEMS, assignments, grade
from resnet_tf.exercises.checkers import Function, Number, Numbers, _format_args
from resnet_tf.grading import sandbox

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "signal_propagation"
NOTEBOOK = "01_signal_propagation.ipynb"
KEY = bytes.fromhex("5e" * 32)
MARKER = "resnet-tf-attack-marker-7f3a"
IDS = assignments()[ASSIGNMENT]
POINTS = {pid: PROBLEMS[pid].points for pid in IDS}
FULL = dict(POINTS)
ZERO = dict.fromkeys(IDS, 0.0)


def _read(folder: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / folder / NOTEBOOK, as_version=4)


def with_id(nb: nbformat.NotebookNode, student: str) -> nbformat.NotebookNode:
    """A copy of ``nb`` with ``student`` typed into its STUDENT_ID cell."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.startswith('STUDENT_ID = ""'):
            cell.source = cell.source.replace('STUDENT_ID = ""', f"STUDENT_ID = {student!r}", 1)
            return nb
    raise AssertionError("the notebook has no STUDENT_ID cell")


def after_imports(nb: nbformat.NotebookNode, source: str) -> nbformat.NotebookNode:
    """Insert a code cell right after the cell that calls set_student()."""
    index = next(i for i, c in enumerate(nb.cells)
                 if c.cell_type == "code" and "set_student(" in c.source)
    nb.cells.insert(index + 1, new_code_cell(source))
    return nb


def at_end(nb: nbformat.NotebookNode, source: str) -> nbformat.NotebookNode:
    nb.cells.append(new_code_cell(source))
    return nb


def replace_check(nb: nbformat.NotebookNode, pid: str, answer: str) -> nbformat.NotebookNode:
    """Rewrite the answer of every ``check("pid", ...)`` call as ``answer``."""
    for cell in nb.cells:
        if cell.cell_type != "code" or f'check("{pid}"' not in cell.source:
            continue
        tree = ast.parse(cell.source)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "check" \
                    and isinstance(node.args[0], ast.Constant) and node.args[0].value == pid:
                segment = ast.get_source_segment(cell.source, node)
                cell.source = cell.source.replace(segment, f'check("{pid}", {answer})')
    return nb


def own_value(pid: str, part: str, student: str):
    """The right answer of a numeric part for ``student`` (plain Python data)."""
    problem = PROBLEMS[pid]
    checker = next(p.checker for p in problem.parts if p.name == part)
    return np.asarray(checker.expected(problem.context(part, student))).tolist()


def numeric_parts(pid: str) -> list[str]:
    return [p.name for p in PROBLEMS[pid].parts
            if isinstance(p.checker, (Number, Numbers)) and PROBLEMS[pid].variant]


def part_points(pid: str, part: str) -> float:
    return float(next(p.points for p in PROBLEMS[pid].parts if p.name == part))


def copied_numbers_expectation(source_student: str, student: str) -> dict[str, float]:
    """Full marks, minus every numeric variant part whose copied value is wrong here."""
    expected = dict(FULL)
    for pid in IDS:
        for part in numeric_parts(pid):
            copied = own_value(pid, part, source_student)
            result = grade(pid, {part: copied}, student=student, key=KEY)
            if result.parts[PROBLEMS[pid].part_names.index(part)].status != "passed":
                expected[pid] -= part_points(pid, part)
    return expected


def _hashes(paths) -> dict[str, str]:
    out = {}
    for path in paths:
        if path.is_file() and not path.is_symlink():
            out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _package_files() -> list[Path]:
    root = Path(resnet_tf.__file__).resolve().parent
    return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def _marked_processes() -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if MARKER.encode() in cmdline:
                found.append(int(entry))
    return found


class Attacks:
    """The hostile class, its expected scores, and the outputs of grading it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.class_dir = root / "class"
        self.out = root / "grades"
        self.key_file = root / "course.key"
        self.key_file.write_text(KEY.hex() + "\n")
        self.master = _read("solutions")
        self.blank = _read("exercises")
        self.expected: dict[str, dict[str, float]] = {}
        self.box = sandbox.probe()
        self.protected = bool(self.box.bwrap or self.box.uid is not None)

    def write(self, name: str, nb, expected: dict[str, float] | None) -> Path:
        path = self.class_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(nb, bytes):
            path.write_bytes(nb)
        else:
            for number, cell in enumerate(nb.cells):
                cell.id = f"cell-{number}"
            nbformat.write(nb, path)
        if expected is not None:
            self.expected[Path(name).stem] = expected
        return path

    def plant(self) -> None:
        master, blank = self.master, self.blank
        self.write("honest_s1.ipynb", with_id(master, "s1"), FULL)
        self.write("honest_s2.ipynb", with_id(master, "s2"), FULL)
        self.write("blank_s3.ipynb", with_id(blank, "s3"), ZERO)
        self.write("UPPER_CASE.IPYNB", with_id(master, "s10"), FULL)

        # forged log lines, forged outputs and metadata
        forged = {"problem": IDS[0], "score": 3, "max_score": 3, "status": "passed"}
        nb = after_imports(with_id(blank, "s4"), "\n".join([
            "import json, os, glob",
            "record = " + repr(json.dumps(forged)),
            "for path in [os.environ.get('RESNET_TF_GRADE_LOG', 'checks.jsonl'),",
            "             *glob.glob('/tmp/**/*.jsonl', recursive=True)]:",
            "    try:",
            "        open(path, 'a').write(record + '\\n')",
            "    except OSError as error:",
            "        print('not written:', error)",
            "print('@@' + record + '@@')",
            "print(" + repr(json.dumps({"problem": IDS[0], "checked": True, "calls": 1,
                                         "parts": {}})) + ")",
        ]))
        nb.metadata["resnet_tf"] = {"assignment": ASSIGNMENT, "scores": FULL, "total": 14}
        nb.cells[-1].outputs = [nbformat.v4.new_output("stream", text="3 of 3 points")]
        self.write("forged_log_output_metadata.ipynb", nb, ZERO)

        # monkeypatched check, grade, checkers and the hand-over itself
        nb = after_imports(with_id(blank, "s4"), "\n".join([
            "import json, sys",
            "import resnet_tf.exercises as ex",
            "from resnet_tf.exercises import checkers, core, handover",
            "core.grade = lambda *a, **k: core.Result('x', 99, 99, 'passed', 'ok')",
            "ex.grade = core.grade",
            "for cls in (checkers.Number, checkers.Numbers, checkers.Function,",
            "            checkers.Property):",
            "    cls.check = lambda self, *a, **k: 'fine'",
            "def forged_respond(text):",
            "    request = json.loads(text)",
            "    record = {'problem': request['problem'], 'checked': True, 'calls': 1,",
            "              'score': 99, 'status': 'passed',",
            "              'parts': {name: {'value': 'passed', 'score': 99}",
            "                        for name in ('plain_gain', 'depth', 'ratio')}}",
            "    m = request['marker']",
            "    sys.stdout.write(m + json.dumps(record) + m)",
            "handover.respond = forged_respond",
        ]))
        self.write("monkeypatched.ipynb", nb, ZERO)

        # answers read from the package: the book's numbers and the public hidden seed
        nb = with_id(blank, "s5")
        nb = after_imports(nb, "\n".join([
            "import numpy as _np",
            "from resnet_tf.exercises import PROBLEMS as _P",
            "def _table(pid, part):",
            "    c = {p.name: p.checker for p in _P[pid].parts}[part]",
            "    cases = c.case_list(True)[0]",
            "    table = {repr(args): c.reference(*args) for args in cases}",
            "    return lambda *args: table.get(repr(args), 0.0)",
            "def _book(pid, part):",
            "    c = {p.name: p.checker for p in _P[pid].parts}[part]",
            "    return c.expected(_P[pid].context(part, ''))",
        ]))
        nb = replace_check(nb, "3113800", '{"plain_gain": _table("3113800", "plain_gain"), '
                                          '"residual_gain": _table("3113800", "residual_gain"), '
                                          '"depth": _book("3113800", "depth")}')
        nb = replace_check(nb, "3170015", '{"depth": _book("3170015", "depth")}')
        expected = dict(ZERO)
        expected["3113800"] = (0.0 if own_value("3113800", "depth", "s5")
                               != own_value("3113800", "depth", "") else 1.0)
        expected["3170015"] = (0.0 if own_value("3170015", "depth", "s5")
                               != own_value("3170015", "depth", "") else 1.0)
        self.write("package_answers.ipynb", nb, expected)

        # the solution's numbers, and a classmate's numbers, typed in
        for name, source, student in (("solution_numbers", "", "s6"),
                                      ("classmate_numbers", "s1", "s7")):
            nb = with_id(master, student)
            nb = replace_check(nb, "3113800", '{"plain_gain": plain_gain, "residual_gain": '
                               f'residual_gain, "depth": {own_value("3113800", "depth", source)}}}')
            nb = replace_check(nb, "3170015", '{"bound": bound, "end_to_end_norm": '
                               'end_to_end_norm, "ratio": ratio, '
                               f'"depth": {own_value("3170015", "depth", source)}}}')
            self.write(f"{name}.ipynb", nb, copied_numbers_expectation(source, student))

        # visible cases hard-coded
        nb = after_imports(with_id(master, "s8"), "\n".join([
            "from resnet_tf.exercises import PROBLEMS as _P",
            "_c = {p.name: p.checker for p in _P['3170015'].parts}['end_to_end_norm']",
            "_t = {repr(a): _c.reference(*a) for a in _c.case_list(False)[0]}",
            "_memorised = lambda jacobians: _t.get(repr((jacobians,)), 0.0)",
        ]))
        nb = replace_check(nb, "3170015", '{"bound": bound, "depth": depth, '
                                          '"end_to_end_norm": _memorised, "ratio": ratio}')
        expected = dict(FULL)
        expected["3170015"] -= part_points("3170015", "end_to_end_norm")
        self.write("hardcoded_visible.ipynb", nb, expected)

        # answers whose __eq__ says yes to everything
        nb = after_imports(with_id(blank, "s9"), "\n".join([
            "class Yes(str):",
            "    __eq__ = lambda self, other: True",
            "    __hash__ = str.__hash__",
            "class YesFloat(float):",
            "    __eq__ = lambda self, other: True",
        ]))
        nb = replace_check(nb, "3113800", '{"plain_gain": lambda *a: Yes(), "residual_gain": '
                                          '"(1 + a)**L if Yes() else 0", "depth": YesFloat(1)}')
        expected = dict(ZERO)
        self.write("custom_eq.ipynb", nb, expected)

        # writes to the grader's files, other submissions, the package and the key
        victim = self.class_dir / "honest_s2.ipynb"
        package_file = Path(resnet_tf.__file__).resolve().parent / "exercises" / "core.py"
        targets = [victim, package_file, self.out / "gradebook.csv",
                   self.out / "honest_s1" / "results.json", self.key_file]
        lines = ["import os, signal, glob", "report = []"]
        for target in targets:
            lines += [f"try:\n    open({str(target)!r}, 'w').write('owned')\n"
                      "    report.append('wrote')\nexcept OSError as e:\n"
                      "    report.append(type(e).__name__)"]
        lines += ["for path in glob.glob('/tmp/resnet-tf-grade-*/*/*'):",
                  "    report.append(path)",
                  "print(report)"]
        if self.box.bwrap:  # only a PID namespace keeps the grader out of reach
            lines += ["try:\n    os.kill(os.getppid(), signal.SIGTERM)\nexcept OSError:\n"
                      "    pass"]
        if self.protected:  # never try this on a machine that offers no protection
            nb = after_imports(with_id(blank, "s11"), "\n".join(lines))
            self.write("overwrite_files.ipynb", nb, ZERO)

        # a process left running, detached into its own session
        nb = at_end(with_id(master, "s12"), "\n".join([
            "import subprocess, sys",
            f"code = 'import time; time.sleep(300)  # {MARKER}'",
            "subprocess.Popen([sys.executable, '-c', code], start_new_session=True)",
            "subprocess.Popen(['sh', '-c', 'nohup ' + repr(sys.executable) + ' -c '",
            "                  + repr(code) + ' >/dev/null 2>&1 &'])",
        ]))
        self.write("process_left_running.ipynb", nb, FULL)

        # bounded bombs: memory and processes
        nb = after_imports(with_id(master, "s13"), "\n".join([
            "try:",
            "    hog = bytearray(64 * 2**30)",
            "    print('allocated', len(hog))",
            "except MemoryError:",
            "    print('the memory bomb failed')",
        ]))
        self.write("memory_bomb.ipynb", nb, FULL)
        nb = after_imports(with_id(master, "s14"), "\n".join([
            "import subprocess",
            "children = []",
            "try:",
            "    for _ in range(3000):",
            f"        children.append(subprocess.Popen(['sleep', '300', '{MARKER}']))",
            "except OSError as error:",
            "    print('the process bomb stopped at', len(children), type(error).__name__)",
            "for child in children:  # bounded: it cleans up after itself",
            "    child.kill()",
            "    child.wait()",
        ]))
        self.write("process_bomb.ipynb", nb, FULL)

        # a lone surrogate in messages and outputs; a flood of output
        nb = at_end(with_id(blank, "s15"), "print('\\ud800')\n"
                                            "check('3113800', {'depth': '\\ud800'})")
        self.write("surrogate.ipynb", nb, ZERO)
        nb = at_end(with_id(master, "s16"), "print('x' * 30_000_000)")
        self.write("output_flood.ipynb", nb, FULL)

        # files that must not be read as notebooks
        (self.class_dir / "zero.ipynb").symlink_to("/dev/zero")
        os.mkfifo(self.class_dir / "pipe.ipynb")
        self.expected["zero"] = self.expected["pipe"] = ZERO

    def grade(self) -> None:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", RESNET_TF_PROFILE="quick")
        inputs = [p for p in self.class_dir.rglob("*")] + [self.key_file]
        self.before = _hashes(inputs)
        self.package_before = _hashes(_package_files())
        started = time.perf_counter()
        self.process = subprocess.run(
            [sys.executable, "-m", "resnet_tf", "grade", str(self.class_dir), "--out",
             str(self.out), "--assignment", ASSIGNMENT, "--key", str(self.key_file),
             "--jobs", "2", "--timeout", "60"],
            capture_output=True, text=True, env=env, cwd=self.root, timeout=1200,
        )
        self.seconds = time.perf_counter() - started
        time.sleep(1.0)
        self.left = _marked_processes()
        self.after = _hashes(inputs)
        self.package_after = _hashes(_package_files())
        with open(self.out / "gradebook.csv", newline="", encoding="utf-8") as stream:
            self.rows = {row["submission"]: row for row in csv.DictReader(stream)}

    def results(self, name: str) -> dict:
        return json.loads((self.out / name / "results.json").read_text())


@pytest.fixture(scope="module")
def attacks(tmp_path_factory) -> Attacks:
    run = Attacks(tmp_path_factory.mktemp("attacks"))
    run.plant()
    run.grade()
    yield run
    for pid in _marked_processes():  # never leave anything behind, even when a test fails
        os.kill(pid, signal.SIGKILL)


def test_the_run_finishes_and_grades_every_submission(attacks):
    assert attacks.process.returncode == 0, attacks.process.stderr[-3000:]
    assert set(attacks.rows) == set(attacks.expected)


@pytest.mark.parametrize("name", [
    "honest_s1", "honest_s2", "UPPER_CASE", "blank_s3", "forged_log_output_metadata",
    "monkeypatched", "package_answers", "solution_numbers", "classmate_numbers",
    "hardcoded_visible", "custom_eq", "process_left_running",
    "memory_bomb", "process_bomb", "surrogate", "output_flood", "zero", "pipe",
])
def test_each_submission_earns_exactly_what_its_answers_deserve(attacks, name):
    row = attacks.rows[name]
    got = {pid: float(row[pid]) for pid in IDS}
    assert got == pytest.approx(attacks.expected[name]), (name, row["status"], row["error"])


def test_writing_other_files_earns_nothing(attacks):
    if not attacks.protected:
        pytest.skip("this machine offers no sandbox and no other user for kernels")
    assert float(attacks.rows["overwrite_files"]["total"]) == 0.0


def test_copying_numbers_loses_the_variant_points(attacks):
    for name in ("solution_numbers", "classmate_numbers"):
        assert float(attacks.rows[name]["total"]) < sum(FULL.values()), name
    assert attacks.rows["honest_s1"]["student_id"] == "s1"


def test_every_input_byte_is_unchanged(attacks):
    assert attacks.before == attacks.after
    assert attacks.package_before == attacks.package_after
    for name in ("honest_s1", "honest_s2"):
        file = attacks.rows[name]["file"]
        assert attacks.rows[name]["sha256"] == attacks.before[str(attacks.class_dir / file)]


def test_no_process_outlives_grading(attacks):
    assert attacks.left == []


def test_links_pipes_and_huge_outputs_cost_only_their_own_row(attacks):
    assert attacks.rows["zero"]["status"] == "unreadable"
    assert "symbolic link" in attacks.rows["zero"]["error"]
    assert attacks.rows["pipe"]["status"] == "unreadable"
    executed = attacks.out / "output_flood" / "executed.ipynb"
    assert executed.stat().st_size < 5_000_000
    assert "truncated" in executed.read_text()


def test_the_bombs_were_stopped_by_the_limits(attacks):
    text = (attacks.out / "memory_bomb" / "executed.ipynb").read_text()
    assert "the memory bomb failed" in text
    text = (attacks.out / "process_bomb" / "executed.ipynb").read_text()
    assert "the process bomb stopped at" in text


def test_kernels_could_not_write_outside_their_folder(attacks):
    if not attacks.protected:
        pytest.skip("this machine offers no sandbox and no other user for kernels")
    text = (attacks.out / "overwrite_files" / "executed.ipynb").read_text()
    assert "honest_s" not in text.split("print(report)")[-1]  # no other student's folder
    for name in ("gradebook.csv", "honest_s1/results.json"):
        assert "owned" not in (attacks.out / name).read_text()
    assert attacks.key_file.read_text().strip() == KEY.hex()


def test_output_files_are_readable_by_the_instructor(attacks):
    for path in [attacks.out / "gradebook.csv", attacks.out / "honest_s1" / "results.json"]:
        assert path.stat().st_mode & 0o044 == 0o044, path


def test_nothing_students_receive_shows_a_hidden_case(attacks):
    problem = PROBLEMS["3170015"]
    part = next(p for p in problem.parts if p.name == "end_to_end_norm")
    checker = part.checker
    assert isinstance(checker, Function)
    cases, n_visible = checker.case_list(True, problem.context(part.name, "s8", KEY))
    shown = [_format_args(checker.arg_names, args) for args in cases[n_visible:]]
    folder = attacks.out / "hardcoded_visible"
    received = (folder / "results.json").read_text() + (folder / "feedback.md").read_text()
    assert "hidden case" in received
    for text in shown:
        assert text not in received
    hidden_tests = [t for t in attacks.results("hardcoded_visible")["tests"] if "score" in t]
    assert {t["visibility"] for t in hidden_tests} == {"after_published"}


def test_the_summary_names_the_protections_and_the_key(attacks):
    out = attacks.process.stdout
    assert "from the instructor's key" in out and "resource limits" in out
    manifest = json.loads((attacks.out / "grading.json").read_text())
    assert manifest["key"] is True and KEY.hex() not in json.dumps(manifest)
    if attacks.box.bwrap:
        assert "bubblewrap" in manifest["sandbox"]
    else:
        assert any("bubblewrap" in note for note in manifest["notes"])


@pytest.mark.slow
def test_an_interrupted_run_records_only_finished_submissions(tmp_path):
    """SIGINT while the second submission runs: the first is kept, the second is not."""
    master = with_id(_read("solutions"), "s1")
    slow = at_end(with_id(_read("solutions"), "s2"), "import time\ntime.sleep(120)")
    (tmp_path / "class").mkdir()
    nbformat.write(master, tmp_path / "class" / "a_first.ipynb")
    nbformat.write(slow, tmp_path / "class" / "b_slow.ipynb")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", RESNET_TF_PROFILE="quick")
    process = subprocess.Popen(
        [sys.executable, "-m", "resnet_tf", "grade", str(tmp_path / "class"), "--out",
         str(tmp_path / "out"), "--assignment", ASSIGNMENT, "--timeout", "300"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    gradebook = tmp_path / "out" / "gradebook.csv"
    deadline = time.time() + 300
    while time.time() < deadline and (not gradebook.exists()
                                      or "a_first" not in gradebook.read_text()):
        time.sleep(0.5)
    time.sleep(8)  # the slow one is running its last cell now
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    rows = gradebook.read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("a_first,14,")
    manifest = json.loads((tmp_path / "out" / "grading.json").read_text())
    assert manifest["interrupted"] == ["b_slow"]
    assert "interrupted" in stderr
