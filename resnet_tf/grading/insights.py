"""What a class got wrong, and which submissions look alike.

After a run the grader writes, next to the gradebook:

- ``misconceptions.txt``: per problem and part, the mean score, how many solved it, and
  the kinds of wrong answers counted (the first clause of each checker's verdict, e.g.
  "the sign is wrong", "2 of 3 values are off", "wrong type", with numbers replaced by
  ``N`` so that equal mistakes count together), and how often ``hint(...)`` was called
  for it in the submitted notebooks;
- ``scores.png``: the distribution of each problem's score over the class;
- ``similarity.txt``: pairs of submissions whose answer cells are identical or nearly
  so, with the cells side by side. Only the source counts (outputs never do), after
  normalising it (comments, blank lines, formatting and the ``STUDENT_ID`` line are
  dropped by parsing and unparsing it). The cells handed out with the assignment are not
  answers: they are recognised in the exercise notebook of the course
  (``--course-root``/``RESNET_TF_COURSE_ROOT``) when it is known, and otherwise as the
  cells that most of the class share. The report only flags; it never changes a score.
"""

from __future__ import annotations

import ast
import difflib
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .collect import UsageError
from .reports import fmt, write_text
from .results import ClassResult

COURSE_ROOT_ENV = "RESNET_TF_COURSE_ROOT"
MISCONCEPTIONS = "misconceptions.txt"
FIGURE = "scores.png"
SIMILARITY = "similarity.txt"
#: Pairs at or above this similarity of their answer cells are listed.
SIMILARITY_THRESHOLD = 0.9
MIN_ANSWER_CHARS = 40  # shorter answer sets are too small to say anything


# --------------------------------------------------------------------------- course root


def course_root(explicit: str | os.PathLike | None = None) -> Path | None:
    """The course repository: ``explicit``, else ``$RESNET_TF_COURSE_ROOT``, else None.

    Raises :class:`UsageError` when a root is named but holds no ``exercises/`` folder.
    """
    value = explicit or os.environ.get(COURSE_ROOT_ENV) or None
    if value is None:
        return None
    root = Path(value).expanduser()
    if not (root / "exercises").is_dir():
        where = "--course-root" if explicit else f"${COURSE_ROOT_ENV}"
        raise UsageError(f"{where} {root} is not a course repository: it has no exercises/ "
                         "folder")
    return root


def scaffold_sources(root: Path | None, assignment: str) -> set[str]:
    """Normalised code cells of the handed-out notebook of ``assignment`` (or empty)."""
    if root is None:
        return set()
    import nbformat

    for path in sorted((root / "exercises").glob("*.ipynb")):
        try:
            notebook = nbformat.read(path, as_version=4)
        except Exception:  # noqa: BLE001 - not a notebook: not the scaffold
            continue
        meta = notebook.metadata.get("resnet_tf", {})
        if isinstance(meta, dict) and meta.get("assignment") == assignment:
            return {normalise(c.source) for c in notebook.cells if c.cell_type == "code"}
    return set()


# --------------------------------------------------------------------------- misconceptions


def category(message: str) -> str:
    """The kind of a wrong answer: the first clause of the verdict, numbers as ``N``."""
    text = str(message).strip().splitlines()[0] if str(message).strip() else "no message"
    text = re.split(r"(?<=[a-z)])\. |; |: (?=[A-Z])", text)[0].rstrip(".")
    text = re.sub(r"\[[^\]]*\]", "[..]", text)
    text = re.sub(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", "N", text)
    return text[:80]


def hints_used(notebook: Any) -> Counter:
    """Calls of ``hint("ID", ...)`` per problem id in a notebook's code cells."""
    counts: Counter = Counter()
    for cell in getattr(notebook, "cells", []) or []:
        if cell.get("cell_type") != "code" or "hint" not in cell.get("source", ""):
            continue
        try:
            tree = ast.parse(cell["source"])
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "hint" and node.args
                    and isinstance(node.args[0], ast.Constant)):
                counts[str(node.args[0].value).strip()] += 1
    return counts


@dataclass
class PartSummary:
    """One part of one problem over the class."""

    problem: str
    part: str
    max_score: float
    mean: float
    solved: int
    answered: int
    mistakes: Counter


def part_summaries(run: ClassResult) -> list[PartSummary]:
    """Per problem and part: mean, solved, answered, wrong-answer kinds (ran notebooks)."""
    results = [r for r in run.results if r.ran]
    summaries = []
    for pid in run.problem_ids:
        scores = [p for r in results for p in r.problems if p.problem == pid]
        names: list[str] = []
        for score in scores:
            names += [part["name"] for part in score.parts if part["name"] not in names]
        for name in names or ["(whole)"]:
            parts = [part for s in scores for part in (s.parts or [{"name": "(whole)",
                     "score": s.score, "max_score": s.max_score, "status": s.status,
                     "message": s.output}]) if part["name"] == name]
            top = max((p["max_score"] for p in parts), default=0.0)
            solved = sum(1 for p in parts if p["status"] == "passed")
            answered = sum(1 for p in parts if p["status"] not in ("unanswered",
                                                                   "not_checked"))
            mistakes = Counter(category(p.get("message", "")) for p in parts
                               if p["status"] in ("failed", "error"))
            mean = sum(p["score"] for p in parts) / len(results) if results else 0.0
            summaries.append(PartSummary(pid, name, top, mean, solved, answered, mistakes))
    return summaries


def misconceptions_text(run: ClassResult) -> str:
    """The plain-text report of what the class got wrong."""
    ran = [r for r in run.results if r.ran]
    hints: dict[str, Counter] = {}
    for result in ran:
        for pid, n in hints_used(result.executed).items():
            hints.setdefault(pid, Counter())[result.submission.name] += n
    lines = [f"What the class got wrong: assignment {run.assignment}, {len(ran)} notebook(s) "
             f"that ran (of {len(run.results)})", ""]
    current = None
    for part in part_summaries(run):
        if part.problem != current:
            current = part.problem
            used = hints.get(part.problem, Counter())
            problem_scores = [p.score for r in ran for p in r.problems if p.problem == current]
            mean = sum(problem_scores) / len(ran) if ran else 0.0
            lines += ["", f"{current} {run.titles.get(current, '')}".rstrip()
                      + f": mean {mean:.2f} of {fmt(run.points[current])}; hints asked "
                      f"{sum(used.values())} time(s) by {len(used)} student(s)"]
        lines.append(f"  {part.part}: mean {part.mean:.2f} of {fmt(part.max_score)}, solved "
                     f"{part.solved}/{len(ran)}, answered {part.answered}/{len(ran)}")
        for kind, count in part.mistakes.most_common(5):
            lines.append(f"      {count:>3} x {kind}")
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"


def score_figure(run: ClassResult, path: Path) -> Path | None:
    """Save the score distribution per problem (one box and the points of each student)."""
    if not run.results:
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    ids = run.problem_ids
    data = [[p.score / p.max_score if p.max_score else 0.0 for r in run.results
             for p in r.problems if p.problem == pid] for pid in ids]
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(ids), 3.4))
    ax.boxplot(data, showfliers=False)
    rng = np.random.default_rng(0)
    for i, values in enumerate(data, start=1):
        ax.scatter(i + rng.uniform(-0.15, 0.15, len(values)), values, s=10, alpha=0.6)
    ax.set_xticks(range(1, len(ids) + 1), ids, rotation=30)
    ax.set_ylabel("fraction of the points")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(f"{run.assignment}: scores per problem ({len(run.results)} submissions)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- similarity


def normalise(source: str) -> str:
    """Code without comments, blank lines, formatting or ``STUDENT_ID = ...`` lines."""
    text = "\n".join(line for line in str(source).splitlines()
                     if not line.lstrip().startswith(("%", "!")))
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return "\n".join(" ".join(line.split("#", 1)[0].split())
                         for line in text.splitlines() if line.split("#", 1)[0].strip())
    tree.body = [node for node in tree.body
                 if not (isinstance(node, ast.Assign) and any(
                     isinstance(t, ast.Name) and t.id == "STUDENT_ID" for t in node.targets))]
    return ast.unparse(tree).strip()


def answer_cells(notebook: Any, handed_out: set[str]) -> list[str]:
    """The normalised code cells of a notebook that are not handed-out cells."""
    cells = []
    for cell in getattr(notebook, "cells", []) or []:
        if cell.get("cell_type") != "code":
            continue
        text = normalise(cell.get("source", ""))
        if text and text not in handed_out:
            cells.append(text)
    return cells


@dataclass
class Pair:
    """Two submissions whose answers look alike."""

    first: str
    second: str
    ratio: float
    cells: list[tuple[str, str]]


def similar_pairs(run: ClassResult, root: Path | None = None,
                  threshold: float = SIMILARITY_THRESHOLD) -> list[Pair]:
    """Pairs of submissions with answer cells at least ``threshold`` alike (1.0: same)."""
    handed_out = scaffold_sources(root, run.assignment)
    books = [(r.submission.name, r.executed) for r in run.results if r.executed is not None]
    raw = {name: [normalise(c.get("source", "")) for c in nb.cells
                  if c.get("cell_type") == "code"] for name, nb in books}
    if not handed_out:
        # without the exercise notebook: cells most of the class share were handed out
        counts = Counter(text for cells in raw.values() for text in set(cells) if text)
        handed_out = {t for t, n in counts.items() if n > max(1, len(raw) // 2)}
    answers = {name: answer_cells(nb, handed_out) for name, nb in books}
    names = sorted(n for n in answers if sum(len(c) for c in answers[n]) >= MIN_ANSWER_CHARS)
    pairs = []
    for i, first in enumerate(names):
        text_a = "\n".join(answers[first])
        for second in names[i + 1:]:
            text_b = "\n".join(answers[second])
            ratio = 1.0 if text_a == text_b else difflib.SequenceMatcher(
                None, text_a, text_b, autojunk=False).ratio()
            if ratio >= threshold:
                pairs.append(Pair(first, second, ratio, _matched_cells(answers[first],
                                                                       answers[second])))
    return sorted(pairs, key=lambda p: (-p.ratio, p.first, p.second))


def _matched_cells(cells_a: list[str], cells_b: list[str]) -> list[tuple[str, str]]:
    """Each answer cell of the first submission with the closest cell of the second."""
    matched = []
    for cell in cells_a:
        best = max(cells_b, key=lambda other: difflib.SequenceMatcher(
            None, cell, other, autojunk=False).ratio(), default="")
        matched.append((cell, best))
    return matched


def similarity_text(pairs: list[Pair], width: int = 60) -> str:
    """The report: each pair, then its answer cells side by side."""
    if not pairs:
        return ("No two submissions have identical or near-identical answer cells "
                f"(threshold {SIMILARITY_THRESHOLD:.0%}).\n")
    lines = [f"{len(pairs)} pair(s) of submissions with answer cells at least "
             f"{SIMILARITY_THRESHOLD:.0%} alike. This is a flag for a person to look at, "
             "not a finding: short answers to the same question can agree by right. "
             "Scores are not changed.", ""]
    for pair in pairs:
        lines += [f"== {pair.first}  <->  {pair.second}: {pair.ratio:.0%} alike", ""]
        lines.append(f"{pair.first[:width]:<{width}} | {pair.second[:width]}")
        lines.append("-" * width + "-+-" + "-" * width)
        for left, right in pair.cells:
            a, b = left.splitlines(), right.splitlines()
            for k in range(max(len(a), len(b))):
                x = a[k] if k < len(a) else ""
                y = b[k] if k < len(b) else ""
                mark = "|" if x == y else "*"
                lines.append(f"{x[:width]:<{width}} {mark} {y[:width]}")
            lines.append(f"{'':<{width}} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def write_insights(run: ClassResult, root: Path | None = None) -> list[Path]:
    """Write the misconception report, the figure and the similarity report of a run."""
    out = run.out_dir
    written = [out / MISCONCEPTIONS, out / SIMILARITY]
    write_text(out / MISCONCEPTIONS, misconceptions_text(run))
    write_text(out / SIMILARITY, similarity_text(similar_pairs(run, root)))
    figure = score_figure(run, out / FIGURE)
    if figure is not None:
        written.append(figure)
    return written
