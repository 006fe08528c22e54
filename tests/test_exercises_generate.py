"""exercises/ is generated from solutions/, shows no answers, and matches the problem bank."""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import nbformat
import pytest

from resnet_tf.exercises import ASSIGNMENTS, PROBLEMS, assignments
from resnet_tf.exercises.generate import (
    CODE_PROMPT,
    MARKDOWN_PROMPT,
    RegionError,
    build,
    exercise_source,
    masters,
    strip_solutions,
)

ROOT = Path(__file__).resolve().parents[1]
MASTERS = masters(ROOT)
CHECK_CALL = re.compile(r'check\("(\d+)"')


def _outputs(notebook) -> str:
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", ""))
            texts.append(str(output.get("data", {}).get("text/plain", "")))
    return "\n".join(texts)


def test_one_master_per_assignment():
    assert sorted(p.stem for p in MASTERS) == sorted(a.notebook for a in ASSIGNMENTS.values())


def test_exercises_are_up_to_date():
    stale = build(ROOT, check=True)
    assert not stale, f"run `python -m resnet_tf exercises build --execute`; stale: {stale}"


@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.stem)
def test_exercise_cells_match_the_generator(master):
    expected = jupytext.reads(exercise_source(master.read_text(), master.stem), fmt="py:percent")
    stored = nbformat.read(ROOT / "exercises" / f"{master.stem}.ipynb", as_version=4)
    assert [(c.cell_type, c.source.strip()) for c in stored.cells] == [
        (c.cell_type, c.source.strip()) for c in expected.cells]


@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.stem)
def test_no_solution_leaks(master):
    text = master.read_text()
    exercise = (ROOT / "exercises" / f"{master.stem}.py").read_text()
    _, regions = strip_solutions(text)
    assert regions, "a master without solution regions"
    exercise_lines = {line.strip() for line in exercise.splitlines()}
    outside = {line.strip() for line in re.sub(
        r"(?s)# BEGIN SOLUTION.*?# END SOLUTION", "", text).splitlines()}
    for region in regions:
        for line in region.text.splitlines():
            line = line.strip()
            if len(line) > 12 and line not in outside and not line.startswith("#"):
                assert line not in exercise_lines, f"solution line leaked: {line!r}"
    stored = nbformat.read(ROOT / "exercises" / f"{master.stem}.ipynb", as_version=4)
    outputs = _outputs(stored)
    assert "correct" not in outputs.lower()
    assert "worked solution" not in exercise.lower()


@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.stem)
def test_metadata_and_checks_cover_the_assignment(master):
    notebook = jupytext.read(master)
    meta = notebook.metadata["resnet_tf"]
    assert ASSIGNMENTS[meta["assignment"]].notebook == master.stem
    assert meta["problems"] == assignments()[meta["assignment"]]
    checked = CHECK_CALL.findall(master.read_text())
    assert checked == meta["problems"]
    exercise = nbformat.read(ROOT / "exercises" / f"{master.stem}.ipynb", as_version=4)
    assert exercise.metadata["resnet_tf"] == meta


@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.stem)
def test_stored_verdicts(master):
    """Solutions earn every point; blank exercises are 'not answered yet' everywhere."""
    problems = jupytext.read(master).metadata["resnet_tf"]["problems"]
    solved = _outputs(nbformat.read(master.with_suffix(".ipynb"), as_version=4))
    blank = _outputs(nbformat.read(ROOT / "exercises" / f"{master.stem}.ipynb", as_version=4))
    for problem_id in problems:
        points = f"{PROBLEMS[problem_id].points:g}"
        assert f"[{problem_id}]" in solved and f"{points} of {points} points" in solved
        assert f"[{problem_id}] {PROBLEMS[problem_id].title}: not answered yet" in blank


MASTER = '''# %% [markdown]
# # Title<!-- BEGIN SOLUTION --> (solutions)<!-- END SOLUTION -->
#
# <!-- BEGIN SOLUTION -->
# Because of the chain rule.
# <!-- END SOLUTION -->

# %%
def f(x):
    # BEGIN SOLUTION
    y = 2 * x
    return y
    # END SOLUTION


# BEGIN SOLUTION
a, b = 1, 2
_scratch = 3
# END SOLUTION
d = 4  # SOLUTION
# BEGIN PROMPT
# answer = {"k": ...}
# END PROMPT
# BEGIN SOLUTION
answer = {"k": 3}
# END SOLUTION

# %%
# BEGIN SOLUTION NO PROMPT
print("figure")
# END SOLUTION
'''


def test_strip_solutions_regions():
    text, regions = strip_solutions(MASTER)
    assert len(regions) == 7
    assert "# # Title\n" in text and "chain rule" not in text and MARKDOWN_PROMPT in text
    assert f"    {CODE_PROMPT}" in text and "2 * x" not in text
    assert f"a = {CODE_PROMPT}" in text and f"b = {CODE_PROMPT}" in text
    assert "_scratch" not in text
    assert f"d = {CODE_PROMPT}" in text
    assert 'answer = {"k": ...}' in text and "BEGIN PROMPT" not in text
    assert "figure" not in text and text.count("# %%") == 2


@pytest.mark.parametrize("broken", [
    "# BEGIN SOLUTION\nx = 1\n",
    "x = 1\n# END SOLUTION\n",
    "# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n",
    "# <!-- BEGIN SOLUTION -->\n# text\n",
])
def test_broken_regions_raise(broken):
    with pytest.raises(RegionError):
        strip_solutions(broken)


def test_command_line_check(capsys):
    from resnet_tf.cli import main

    assert main(["exercises", "build", "--check", "--root", str(ROOT)]) == 0
    assert "up to date" in capsys.readouterr().out


def test_repository_root_is_explicit(tmp_path, monkeypatch):
    from resnet_tf.exercises import generate

    monkeypatch.delenv(generate.ROOT_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=generate.ROOT_ENV):
        generate.repository_root()
    (tmp_path / "solutions").mkdir()
    (tmp_path / "solutions" / "01_x.py").write_text("# %%\n")
    assert generate.repository_root() == tmp_path.resolve()  # the current directory
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv(generate.ROOT_ENV, str(tmp_path))
    assert [p.name for p in masters()] == ["01_x.py"]
    assert masters(ROOT) == MASTERS  # an argument wins over the environment
