"""Finding submissions on disk and giving each one a unique, file-system-safe name.

Instructors pass files and folders. Folders are searched recursively for ``*.ipynb``,
in any case (``HW1.IPYNB`` too); Jupyter's ``.ipynb_checkpoints`` and hidden entries are
skipped, and so is the output folder of the grading run. A file named explicitly is
graded whatever its extension, so a renamed notebook is still looked at. Paths are not
followed through symbolic links here: whether an entry is a regular file is checked when
it is read (:func:`resnet_tf.grading.runner.read_bounded`), so a link, a pipe or a device
costs its own row and nothing else.

Names: each submission is named by its path relative to the deepest folder that holds
all submissions, without the extension, with the path separators turned into ``__``
(``alice/hw1.ipynb`` -> ``alice__hw1``). Two students' ``hw1.ipynb`` in different
folders therefore never share an output folder; names that still clash (after making
them safe, ignoring case) get ``-2``, ``-3``, ... appended.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

SKIPPED_DIRS = {".ipynb_checkpoints", "__pycache__", ".git"}


class UsageError(ValueError):
    """A problem with the command line (a missing path, no submissions, ...)."""


@dataclass(frozen=True)
class Submission:
    """One notebook to grade.

    ``path`` is the absolute path of the file, ``display`` the path shown to people
    (relative to the common folder), ``name`` the unique safe name used for its output
    folder and the ``submission`` column of the gradebook.
    """

    path: Path
    display: str
    name: str


def sha256_bytes(data: bytes) -> str:
    """The SHA-256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _inside(path: Path, folder: Path | None) -> bool:
    """True when ``path`` is ``folder`` or lies below it."""
    if folder is None:
        return False
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def find_notebooks(paths: list[str | os.PathLike], exclude: Path | None = None) -> list[Path]:
    """Absolute paths of the notebooks named by ``paths`` (files and folders).

    Folders are walked recursively (sorted, skipping hidden entries, checkpoints and
    anything inside ``exclude``). Raises :class:`UsageError` for a path that does not
    exist, and for an explicitly named file inside ``exclude``. Duplicates are dropped.
    """
    exclude = exclude.resolve() if exclude is not None else None
    found: list[Path] = []
    seen: set[Path] = set()

    def add(path: Path) -> None:
        if path not in seen:
            seen.add(path)
            found.append(path)

    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists() and not path.is_symlink():
            raise UsageError(f"no such file or folder: {raw}")
        path = Path(os.path.abspath(path))
        if path.is_dir() and not path.is_symlink():
            path = path.resolve()
            if _inside(path, exclude):
                raise UsageError(f"{raw} is inside the output folder {exclude}")
            for root, dirs, files in os.walk(path):
                root_path = Path(root)
                dirs[:] = sorted(
                    d for d in dirs
                    if d not in SKIPPED_DIRS and not d.startswith(".")
                    and not _inside(root_path / d, exclude)
                )
                for name in sorted(files):
                    if name.lower().endswith(".ipynb") and not name.startswith("."):
                        add(root_path / name)
        else:
            if _inside(path, exclude) or _inside(path.resolve(), exclude):
                raise UsageError(f"{raw} is inside the output folder {exclude}")
            add(path)
    return found


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str) -> str:
    """``text`` reduced to letters, digits, ``.``, ``_`` and ``-`` (never empty or dotted)."""
    name = _UNSAFE.sub("_", text).strip("._") or "submission"
    return name[:150]


def name_submissions(paths: list[Path], reserved: tuple[str, ...] = ()) -> list[Submission]:
    """Give every path a display path and a unique safe name (see the module docstring).

    Names in ``reserved`` (the grader's own files in the output folder) are never given.
    """
    if not paths:
        return []
    if len(paths) == 1:
        base = paths[0].parent
    else:
        base = Path(os.path.commonpath([str(p.parent) for p in paths]))
    submissions = []
    taken: set[str] = {r.lower() for r in reserved}
    for path in paths:
        relative = path.relative_to(base)
        stem_parts = [*relative.parts[:-1], relative.stem
                      if relative.suffix.lower() == ".ipynb" else relative.name]
        name = safe_name("__".join(stem_parts))
        candidate, counter = name, 1
        while candidate.lower() in taken:
            counter += 1
            candidate = f"{name}-{counter}"
        taken.add(candidate.lower())
        submissions.append(Submission(path=path, display=relative.as_posix(), name=candidate))
    return submissions
