"""The chapters' ``full`` branch, run on a CPU so that it cannot rot.

The kernel gets ``RESNET_TF_PROFILE=full`` and the test switch
``RESNET_TF_STUB_DATA=1``: ``data.load("cifar10")`` returns a small synthetic
32x32x3 set instead of downloading, ``pick(..., stub=...)`` gives tiny epochs,
and ``claim`` checks that every claim evaluates to a truth value without
requiring synthetic numbers to hold. Chapter 1 also replays a run directory
made here by the real ``reproduce table6`` command at tiny size.

- ``test_full_data_and_replay_of_chapter_1`` (default run, cheap): chapter 1's
  set-up, its stubbed CIFAR loading and full sizes, and the replayed figure,
  table and claims, without the training cells;
- ``test_full_branch_of_chapter_1_section_1`` (slow): chapter 1 up to the end of
  section 1, i.e. all the full-profile-only code (also the timing estimate, the
  mixed precision scope, progress output, training and its claims);
- ``test_full_branch_of_every_chapter`` (slow): every chapter from top to bottom.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from resnet_tf.cli import main
from resnet_tf.notebooks import execute
from resnet_tf.reproduce import replay

CHAPTERS = Path(__file__).resolve().parent.parent / "chapters"
CHAPTER_1 = CHAPTERS / "01_principles_and_mechanisms.py"
TINY = ["--dataset", "synthetic", "--epochs", "1", "--steps-per-epoch", "1", "--batch-size",
        "32", "--width", "4", "--verbose", "0"]


def make_run(directory: Path, *depths_and_flags: str) -> Path:
    """A finished ``reproduce table6`` run made by the real command at tiny size."""
    out = directory / "table6"
    args = ["reproduce", "table6", *TINY, "--depths", *depths_and_flags, "--out", str(out)]
    assert main(args) == 0
    return out


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    """One network (ResNet-20): enough to replay the table and the figure."""
    return make_run(tmp_path_factory.mktemp("small"), "20")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """ResNet and plain nets of depths 20 and 56: every replayed claim of chapter 1 evaluates."""
    return make_run(tmp_path_factory.mktemp("runs"), "20", "56", "--plain")


def full_env(run_dir: Path) -> dict:
    return {"RESNET_TF_PROFILE": "full", "RESNET_TF_STUB_DATA": "1",
            replay.RUNS_ENV: str(run_dir), "MPLBACKEND": "Agg"}


def outputs(path: Path) -> str:
    """All text the executed notebook printed or displayed."""
    text = []
    for cell in nbformat.read(path, as_version=4).cells:
        for out in cell.get("outputs", []):
            text.append(out.get("text", ""))
            text.append(str(out.get("data", {}).get("text/plain", "")))
    return "\n".join(text)


def until_section(number: int):
    """Cell selector: everything before the markdown heading ``## {number}.``."""
    def select(cells: list) -> list:
        for i, cell in enumerate(cells):
            if cell.cell_type == "markdown" and cell.source.startswith(f"## {number}."):
                return cells[:i]
        raise ValueError(f"no section {number} in the notebook")
    return select


def without_training(select):
    """Cell selector: ``select``, then drop the training cells and those that use them."""
    trained = ("STEP_SECONDS", "HISTORIES", "FINAL")
    return lambda cells: [c for c in select(cells) if not any(t in c.source for t in trained)]


def test_full_data_and_replay_of_chapter_1(small_run, tmp_path):
    out = tmp_path / "chapter1.ipynb"
    execute(CHAPTER_1, env=full_env(small_run), output=out,
            select=without_training(until_section(2)))
    text = outputs(out)
    assert "profile: full" in text
    assert "cifar10: train (512, 32, 32, 3)" in text and "'epochs': 1" in text
    assert "replayed from" in text and "rehearsal settings" in text


@pytest.mark.slow
def test_full_branch_of_chapter_1_section_1(small_run, tmp_path):
    out = tmp_path / "chapter1.ipynb"
    execute(CHAPTER_1, env=full_env(small_run), output=out, select=until_section(2))
    text = outputs(out)
    assert "profile: full" in text
    assert "cifar10: train (512, 32, 32, 3)" in text  # the stubbed CIFAR loader
    assert "Estimated CIFAR training time: about" in text and "on this CPU" in text
    assert "replayed from" in text and "rehearsal settings" in text


@pytest.mark.slow
@pytest.mark.parametrize("chapter", sorted(p.name for p in CHAPTERS.glob("*.py")))
def test_full_branch_of_every_chapter(chapter, tiny_run, tmp_path):
    out = tmp_path / Path(chapter).with_suffix(".ipynb").name
    execute(CHAPTERS / chapter, env=full_env(tiny_run), output=out)
    assert "profile: full" in outputs(out)
