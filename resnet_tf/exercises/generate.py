"""Generate the student notebooks in ``exercises/`` from the masters in ``solutions/``.

The masters are jupytext percent-format ``.py`` files. Their answers sit in regions that
the generator removes:

- code: lines between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` become a prompt
  (``# BEGIN SOLUTION NO PROMPT`` leaves nothing; a cell left empty is dropped). By
  default the prompt assigns ``...`` to every name the region assigns at its top level
  (``answer = ...  # YOUR ANSWER HERE``); a region with a top-level ``return``, or one that
  assigns nothing, becomes ``...  # YOUR ANSWER HERE``. An optional
  ``# BEGIN PROMPT`` / ``# END PROMPT`` block of comment lines right before the region
  gives the prompt explicitly (uncommented) and is itself removed. A single line ending in
  ``# SOLUTION`` keeps its assignment target: ``x = 5  # SOLUTION`` -> ``x = ...``.
- markdown: ``<!-- BEGIN SOLUTION -->`` ... ``<!-- END SOLUTION -->`` on several lines
  becomes :data:`MARKDOWN_PROMPT`; on one line it is simply dropped (handy in titles).

The Colab badge is pointed at the exercise notebook. The exercise ``.py`` is rewritten
every build; its ``.ipynb`` twin is rewritten (without outputs) only when its cells
changed, so executed outputs survive a no-op build; ``--execute`` runs the notebooks that
need it. ``--check`` writes nothing and fails when ``exercises/`` is out of date.

    python -m resnet_tf exercises build [--check] [--execute]
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from ..notebooks import execute as execute_notebook

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
BEGIN_PROMPT, END_PROMPT = "# BEGIN PROMPT", "# END PROMPT"
MD_BEGIN, MD_END = "<!-- BEGIN SOLUTION -->", "<!-- END SOLUTION -->"
CODE_PROMPT = "...  # YOUR ANSWER HERE"
MARKDOWN_PROMPT = "**Your answer:** _replace this line with your reasoning._"
ROOT_ENV = "RESNET_TF_ROOT"


def repository_root(root: str | Path | None = None) -> Path:
    """The course repository holding ``solutions/`` and ``exercises/``.

    ``root`` when given, else the environment variable ``RESNET_TF_ROOT``, else the
    current directory. ``FileNotFoundError`` when the folder has no ``solutions/``.
    """
    chosen = root if root is not None else os.environ.get(ROOT_ENV) or Path.cwd()
    path = Path(chosen).expanduser().resolve()
    if not (path / "solutions").is_dir():
        raise FileNotFoundError(
            f"{path} has no solutions/ folder: pass the course repository's root "
            f"(--root, or the root argument) or set {ROOT_ENV}"
        )
    return path


def __getattr__(name: str):
    if name == "ROOT":  # the former module constant
        from .. import _deprecation

        _deprecation.warn("resnet_tf.exercises.generate.ROOT",
                          "resnet_tf.exercises.generate.repository_root()")
        return repository_root()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

_INLINE_MD = re.compile(re.escape(MD_BEGIN) + r".*?" + re.escape(MD_END))
_ONE_LINE = re.compile(r"^(\s*)([A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*)\s*=.*#\s*SOLUTION\s*$")


class RegionError(ValueError):
    """A solution region is not closed, nested, or closed without being opened."""


@dataclass
class Region:
    """One removed solution region: where it was and what it held."""

    start: int
    stop: int
    text: str
    markdown: bool


def _default_prompt(region_lines: list[str], indent: str) -> list[str]:
    """``name = ...`` for each top-level assignment, or a bare ``...``."""
    code = textwrap.dedent("\n".join(region_lines))
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return [indent + CODE_PROMPT]
    if any(isinstance(node, ast.Return) for node in tree.body):
        return [indent + CODE_PROMPT]
    names: list[str] = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else [])
        for target in targets:
            elements = target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]
            for element in elements:
                if isinstance(element, ast.Name) and not element.id.startswith("_") \
                        and element.id not in names:
                    names.append(element.id)
    if not names:
        return [indent + CODE_PROMPT]
    return [f"{indent}{name} = {CODE_PROMPT}" for name in names]


def strip_solutions(text: str) -> tuple[str, list[Region]]:
    """Remove every solution region from a percent-format notebook source.

    Returns the exercise source and the regions removed (for leak tests).
    """
    lines = text.splitlines()
    out: list[str] = []
    regions: list[Region] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith(BEGIN_PROMPT):
            end = _find(lines, i + 1, END_PROMPT, "prompt")
            prompt = [ln.replace("# ", "", 1) if ln.strip().startswith("#") else ln
                      for ln in lines[i + 1:end]]
            nxt = end + 1
            if nxt >= len(lines) or not lines[nxt].strip().startswith(BEGIN):
                raise RegionError(f"line {i + 1}: a prompt must come right before {BEGIN!r}")
            stop = _find(lines, nxt + 1, END, "solution")
            regions.append(Region(nxt, stop, "\n".join(lines[nxt + 1:stop]), False))
            out.extend(prompt)
            i = stop + 1
            continue
        if stripped.startswith(BEGIN):
            stop = _find(lines, i + 1, END, "solution")
            body = lines[i + 1:stop]
            indent = line[: len(line) - len(line.lstrip())]
            regions.append(Region(i, stop, "\n".join(body), False))
            if not stripped.startswith(BEGIN + " NO PROMPT"):
                out.extend(_default_prompt(body, indent))
            i = stop + 1
            continue
        if stripped.startswith(END) or stripped.startswith(END_PROMPT):
            raise RegionError(f"line {i + 1}: {stripped!r} without a matching BEGIN")
        if MD_BEGIN in line and MD_END not in line:
            stop = _find(lines, i + 1, MD_END, "markdown solution")
            before = line.split(MD_BEGIN)[0]
            after = lines[stop].split(MD_END, 1)[1]
            regions.append(Region(i, stop, "\n".join(lines[i + 1:stop]), True))
            prefix = "# " if line.lstrip().startswith("#") else ""
            if before.strip("# ").strip():
                out.append(before.rstrip())
            out.append(prefix + MARKDOWN_PROMPT)
            if after.strip():
                out.append(prefix + after.strip())
            i = stop + 1
            continue
        if MD_BEGIN in line:
            for match in _INLINE_MD.finditer(line):
                regions.append(Region(i, i, match.group(0), True))
            out.append(_INLINE_MD.sub("", line).rstrip())
            i += 1
            continue
        one = _ONE_LINE.match(line)
        if one:
            regions.append(Region(i, i, line.strip(), False))
            out.append(f"{one.group(1)}{one.group(2)} = {CODE_PROMPT}")
            i += 1
            continue
        out.append(line)
        i += 1
    return _drop_empty_cells("\n".join(out) + ("\n" if text.endswith("\n") else "")), regions


def _drop_empty_cells(text: str) -> str:
    """Remove code cells left empty (a ``NO PROMPT`` region that filled the whole cell)."""
    chunks = re.split(r"(?m)^(?=# %%)", text)
    kept = [c for c in chunks
            if not (c.startswith("# %%") and "[markdown]" not in c.splitlines()[0]
                    and not "".join(c.splitlines()[1:]).strip())]
    return "".join(kept)


def _find(lines: list[str], start: int, marker: str, what: str) -> int:
    """Index of the line closing a region opened before ``start``; no nesting allowed."""
    opener = MD_BEGIN if marker == MD_END else BEGIN
    for j in range(start, len(lines)):
        stripped = lines[j].strip()
        closes = marker in stripped if marker == MD_END else stripped.startswith(marker)
        if closes:
            return j
        if opener in stripped if opener == MD_BEGIN else stripped.startswith(opener):
            raise RegionError(f"line {j + 1}: a {what} region opens inside another")
    raise RegionError(f"line {start}: the {what} region is never closed ({marker!r} missing)")


def exercise_source(master_text: str, name: str) -> str:
    """The exercise notebook source for the master ``solutions/{name}.py``."""
    from ..colab import colab_url

    text, _ = strip_solutions(master_text)
    return text.replace(colab_url(f"solutions/{name}.ipynb"), colab_url(f"exercises/{name}.ipynb"))


def masters(root: str | Path | None = None) -> list[Path]:
    """The master notebook sources: ``solutions/*.py`` under :func:`repository_root`."""
    return sorted((repository_root(root) / "solutions").glob("*.py"))


def _cells(notebook) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in notebook.cells]


def _notebook_from_text(text: str):
    import jupytext

    notebook = jupytext.reads(text, fmt="py:percent")
    notebook.metadata["kernelspec"] = {
        "name": "python3", "display_name": "Python 3", "language": "python",
    }
    return notebook


def build(root: str | Path | None = None, check: bool = False, execute: bool = False,
          echo: bool = True) -> list[str]:
    """Write (or, with ``check``, compare) ``exercises/`` from ``solutions/``.

    Returns the problems found: with ``check``, the out-of-date files; otherwise the
    files written. ``execute`` runs every exercise notebook whose cells changed, or
    that has no outputs yet.
    """
    import nbformat

    root = repository_root(root)
    problems: list[str] = []
    to_run: list[Path] = []
    target_dir = root / "exercises"
    expected_names = set()
    for master in masters(root):
        name = master.stem
        expected_names.add(name)
        text = exercise_source(master.read_text(encoding="utf-8"), name)
        py_path, nb_path = target_dir / f"{name}.py", target_dir / f"{name}.ipynb"
        notebook = _notebook_from_text(text)
        py_stale = not py_path.exists() or py_path.read_text(encoding="utf-8") != text
        nb_stale = True
        stored = None
        if nb_path.exists():
            stored = nbformat.read(nb_path, as_version=4)
            nb_stale = _cells(stored) != _cells(notebook)
        unexecuted = stored is None or any(
            c.cell_type == "code" and c.execution_count is None for c in stored.cells)
        if check:
            problems += [str(p.relative_to(root)) for p, stale in
                         ((py_path, py_stale), (nb_path, nb_stale)) if stale]
            continue
        target_dir.mkdir(exist_ok=True)
        if py_stale:
            py_path.write_text(text, encoding="utf-8")
            problems.append(str(py_path.relative_to(root)))
        if nb_stale:
            nbformat.write(notebook, nb_path)
            problems.append(str(nb_path.relative_to(root)))
        if nb_stale or unexecuted:
            to_run.append(py_path)
    orphans = sorted(p for p in target_dir.glob("*.py") if p.stem not in expected_names)
    if check:
        problems += [f"{p.relative_to(root)} (no master in solutions/)" for p in orphans]
    if execute and not check:
        for source in to_run:
            seconds = execute_notebook(source)
            if echo:
                print(f"{seconds:7.1f} s  executed {source.relative_to(root)}")
    return problems


def handler(args: argparse.Namespace) -> int:
    """``python -m resnet_tf exercises build [--check] [--execute]``."""
    if args.action != "build":
        print(f"unknown action {args.action!r}; use: build", file=sys.stderr)
        return 2
    try:
        root = repository_root(args.root)
        changed = build(root, check=args.check, execute=args.execute)
    except FileNotFoundError as error:
        print(error, file=sys.stderr)
        return 2
    except RegionError as error:
        print(f"error in a master notebook: {error}", file=sys.stderr)
        return 1
    if args.check:
        if changed:
            print("exercises/ is out of date with solutions/:", *changed, sep="\n  ")
            print("run: python -m resnet_tf exercises build --execute")
            return 1
        print(f"exercises/ is up to date ({len(masters(root))} notebooks)")
        return 0
    print("\n".join(f"wrote {p}" for p in changed) or "exercises/ already up to date")
    return 0


def register(subparsers) -> None:
    """Add the ``exercises`` sub-command to the command line."""
    parser = subparsers.add_parser(
        "exercises", help="generate the student notebooks in exercises/ from solutions/",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("action", choices=["build"], help="build: write exercises/")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when exercises/ is out of date")
    parser.add_argument("--execute", action="store_true",
                        help="also run the exercise notebooks whose cells changed")
    parser.add_argument("--root", default=None,
                        help=f"repository root (default: ${ROOT_ENV}, else the current directory)")
    parser.set_defaults(func=handler)
