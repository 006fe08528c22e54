"""Stamp every notebook with this release: its setup cell and ``metadata.resnet_tf.version``.

    python tools/stamp_notebooks.py            # rewrite what is out of date
    python tools/stamp_notebooks.py --check    # exit 1 if anything is out of date

Run it after changing ``resnet_tf.__version__`` or :data:`resnet_tf.colab.SETUP_CELL`.
Both halves of each jupytext pair are updated in place (the ``.py`` source and the
``.ipynb`` with its stored outputs); nothing else in them changes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

from resnet_tf import __version__
from resnet_tf.colab import SETUP_CELL

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("chapters", "solutions", "exercises")


def stamp(notebook) -> bool:
    """Set the setup cell and the version metadata of an ``.ipynb``; True if it changed."""
    changed = False
    setup = next(cell for cell in notebook.cells if cell.cell_type == "code")
    if setup.source.strip() != SETUP_CELL.strip():
        setup.source = SETUP_CELL
        changed = True
    meta = notebook.metadata.setdefault("resnet_tf", {})
    if meta.get("version") != __version__:
        meta["version"] = __version__
        changed = True
    return changed


def stamp_source(text: str) -> str:
    """The same for a percent-format ``.py``, edited as text so nothing else moves.

    The first ``# %%`` code cell becomes :data:`SETUP_CELL`; the YAML header gets
    ``resnet_tf: version: ...`` (added to an existing ``resnet_tf`` block, or as a new one).
    """
    lines = text.split("\n")
    end = lines.index("# ---", 1)  # the header's closing line
    header, body = lines[: end + 1], lines[end + 1 :]
    if "#   resnet_tf:" in header:
        start = header.index("#   resnet_tf:") + 1
        stop = start
        while stop < end and header[stop].startswith("#     "):
            stop += 1
        block = [line for line in header[start:stop] if not line.startswith("#     version:")]
        header[start:stop] = [*block, f"#     version: {__version__}"]
    else:
        header[end:end] = ["#   resnet_tf:", f"#     version: {__version__}"]
    first = body.index("# %%")
    following = next(i for i in range(first + 1, len(body)) if body[i].startswith("# %%"))
    body[first + 1 : following] = [*SETUP_CELL.strip().split("\n"), ""]
    return "\n".join(header + body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report what is out of date")
    args = parser.parse_args(argv)
    stale = []
    for folder in FOLDERS:
        for source in sorted((ROOT / folder).glob("*.py")):
            pair = source.with_suffix(".ipynb")
            text = source.read_text()
            stamped = stamp_source(text)
            stored = nbformat.read(pair, as_version=4) if pair.exists() else None
            if stamped != text:
                stale.append(source)
                if not args.check:
                    source.write_text(stamped)
            if stored is not None and stamp(stored):
                stale.append(pair)
                if not args.check:
                    nbformat.write(stored, pair)
    for path in stale:
        print(f"{'out of date' if args.check else 'stamped'}: {path.relative_to(ROOT)}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
