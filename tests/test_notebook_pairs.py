"""Every notebook is a jupytext pair in sync, opens with the badge and setup cell,
and has stored outputs from a full run."""

from pathlib import Path

import jupytext
import nbformat
import pytest

from resnet_tf.colab import SETUP_CELL, badge_markdown

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(
    p for folder in ("chapters", "exercises", "solutions") for p in (ROOT / folder).glob("*.ipynb")
)
SOURCES = sorted(
    p for folder in ("chapters", "exercises", "solutions") for p in (ROOT / folder).glob("*.py")
)


def _cells(notebook):
    return [(c.cell_type, c.source.strip()) for c in notebook.cells]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_source_has_its_notebook(source):
    assert source.with_suffix(".ipynb").exists(), f"{source.name} has no executed .ipynb twin"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_pair_in_sync(notebook):
    source = notebook.with_suffix(".py")
    assert source.exists(), f"{notebook.name} has no jupytext .py source"
    stored = nbformat.read(notebook, as_version=4)
    assert _cells(jupytext.read(source)) == _cells(stored), (
        f"{notebook.relative_to(ROOT)} differs from its .py source; re-run "
        f"python tools/execute_notebooks.py {source.relative_to(ROOT)}"
    )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_opening_cells_and_outputs(notebook):
    stored = nbformat.read(notebook, as_version=4)
    relative = notebook.relative_to(ROOT).as_posix()
    first, second = stored.cells[0], stored.cells[1]
    assert first.cell_type == "markdown" and badge_markdown(relative) in first.source
    assert second.cell_type == "code" and second.source.strip() == SETUP_CELL.strip()
    code = [c for c in stored.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), "stored notebook was not executed"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"stored notebook has errors: {errors[0].get('ename')}"


def test_every_notebook_is_stamped_with_this_release():
    """Setup cell and ``metadata.resnet_tf.version`` name this release (see
    tools/stamp_notebooks.py)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("stamp", ROOT / "tools" / "stamp_notebooks.py")
    stamp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stamp)
    assert stamp.main(["--check"]) == 0, "run python tools/stamp_notebooks.py"
