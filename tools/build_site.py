"""Build the companion's website from the committed notebooks and the package's docstrings.

    python tools/build_site.py                  # -> build/site/index.html
    python tools/build_site.py --no-solutions   # the same site without the solution pages

Nothing is executed: the chapter, exercise and solution notebooks are rendered with the
outputs stored in them, so the build takes seconds and needs no GPU, no data and no
network. The result is a folder of static files that works when opened from disk or
served by any static host (see README, "Read it as a website").

How it works: the sources are staged into ``build/site-src/`` (the README as the landing
page, the notebooks with an "Open in Colab" / "Download .ipynb" line in place of their
Colab badge, the guides of ``docs/``, one API page per module or sub-package), then Sphinx
runs on that folder with the configuration in ``docs/site/``. The committed notebooks
themselves are copied unchanged to ``build/site/notebooks/`` for the download links.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import pkgutil
import re
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "docs" / "site"
DEFAULT_OUT = ROOT / "build" / "site"
DEFAULT_STAGE = ROOT / "build" / "site-src"

SECTIONS = {
    # folder: (sidebar caption, glob)
    "chapters": ("Chapters", "chapters/*.ipynb"),
    "exercises": ("Assignments", "exercises/*.ipynb"),
    "solutions": ("Solutions", "solutions/*.ipynb"),
}
GUIDES = ("docs/gpu.md", "docs/instructors.md", "docs/site.md")

BADGE = re.compile(
    r"\[!\[Open In Colab\]\(https://colab\.research\.google\.com/assets/colab-badge\.svg\)\]"
    r"\([^)]*\)"
)
LINK = re.compile(r"(!?\[[^\]]*\])\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)

SITE_PACKAGES_HINT = (
    "The website needs Sphinx, myst-nb, sphinx-book-theme and sphinx-mathjax-offline: "
    "pip install -e '.[site]'   (or: pip install -r requirements.txt)"
)


# ------------------------------------------------------------------------ link rewriting


def _slugify(text: str) -> str:
    """The heading anchor Sphinx/MyST gives a heading (MyST's own rule when available)."""
    try:
        from myst_parser.mdit_to_docutils.base import default_slugify
    except ImportError:  # pragma: no cover - myst is required to build anyway
        text = re.sub(r"[^\w\- ]", "", text.strip().lower())
        return text.replace(" ", "-")
    return default_slugify(text)


def _github_url(repo_path: str) -> str:
    from resnet_tf.colab import BRANCH, REPO_URL

    return f"{REPO_URL}/blob/{BRANCH}/{repo_path}"


class Linker:
    """Rewrites relative links of a staged page so that every one resolves on the site.

    A link to a page that is part of the site stays relative (the README becomes
    ``index.md``); a link to another file of the repository points at the code host; a
    link to a left-out page (the solutions with ``--no-solutions``) keeps its text only.
    Jupyter-style anchors (``#1.-The-degradation-problem``) become the heading ids Sphinx
    writes.
    """

    def __init__(self, pages: set[str], left_out: set[str]):
        self.pages = pages  # repository paths staged as pages
        self.left_out = left_out  # repository paths deliberately not on the site

    def rewrite(self, text: str, repo_path: str, anchors: dict[str, str] | None = None) -> str:
        base = Path(repo_path).parent

        def replace(match: re.Match) -> str:
            label, target = match.group(1), match.group(2)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("mailto:"):
                return match.group(0)
            if target.startswith("#"):
                fixed = (anchors or {}).get(target[1:])
                return f"{label}(#{fixed})" if fixed else match.group(0)
            path, _, fragment = target.partition("#")
            resolved = os.path.normpath(base / path).replace(os.sep, "/")
            if resolved in self.left_out:
                return label[2:-1] if label.startswith("!") else label[1:-1]
            if resolved in self.pages:
                return match.group(0)
            if (ROOT / resolved).exists():
                url = _github_url(resolved)
                return f"{label}({url}{'#' + fragment if fragment else ''})"
            return match.group(0)

        return LINK.sub(replace, text)


def _anchor_map(markdown_sources: list[str]) -> dict[str, str]:
    """``{jupyter anchor: sphinx anchor}`` for every heading of a notebook."""
    anchors = {}
    for source in markdown_sources:
        for title in HEADING.findall(source):
            anchors[title.replace(" ", "-")] = _slugify(title)
    return anchors


# ------------------------------------------------------------------------------- staging


def _page_actions(repo_path: str, depth: int) -> str:
    """The "Open in Colab" and "Download .ipynb" line of a notebook page (raw HTML)."""
    from resnet_tf.colab import colab_url

    download = "../" * depth + "notebooks/" + repo_path
    name = Path(repo_path).name
    return (
        '<div class="page-actions">'
        f'<a class="colab-link" href="{colab_url(repo_path)}">Open in Colab</a>'
        f'<a class="download-link" href="{download}" download="{name}">Download .ipynb</a>'
        "</div>"
    )


def stage_notebook(src: Path, dest: Path, repo_path: str, linker: Linker) -> None:
    """Copy a notebook for the site: badge -> page actions, links made to resolve."""
    nb = json.loads(src.read_text(encoding="utf-8"))
    nb = copy.deepcopy(nb)
    markdown = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    anchors = _anchor_map(markdown)
    actions = _page_actions(repo_path, depth=repo_path.count("/"))
    placed = False
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        text = "".join(cell["source"])
        if not placed and BADGE.search(text):
            text, placed = BADGE.sub(lambda _: "\n" + actions + "\n", text, count=1), True
        cell["source"] = linker.rewrite(text, repo_path, anchors)
    if not placed:  # no badge: the actions go right under the first heading cell
        nb["cells"].insert(
            1 if nb["cells"] and nb["cells"][0]["cell_type"] == "markdown" else 0,
            {"cell_type": "markdown", "metadata": {}, "source": actions},
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(nb, ensure_ascii=False, indent=1), encoding="utf-8")


def _api_modules() -> list[str]:
    """Public modules of the package, in import order, skipping ``__main__`` and private ones."""
    import resnet_tf

    names = ["resnet_tf"]
    for info in pkgutil.walk_packages(resnet_tf.__path__, "resnet_tf."):
        parts = info.name.split(".")
        if any(p.startswith("_") for p in parts[1:]):
            continue
        names.append(info.name)
    return sorted(names)


def stage_api(stage: Path) -> list[str]:
    """One reST page per top-level module or sub-package (its modules as sections), and
    ``api/index.md`` listing them. Returns the documented modules."""
    api = stage / "api"
    api.mkdir(parents=True, exist_ok=True)
    modules = _api_modules()
    groups: dict[str, list[str]] = {}
    for name in modules:
        groups.setdefault(".".join(name.split(".")[:2]), []).append(name)
    for page, members in groups.items():
        parts = []
        for name in sorted(members, key=lambda m: (m != page, m)):
            mark = "=" if name == page else "-"
            title = f"``{name}``"
            parts.append(f"{title}\n{mark * len(title)}\n\n.. automodule:: {name}\n")
        (api / f"{page}.rst").write_text("\n".join(parts), encoding="utf-8")
    entries = "\n".join(groups)
    (api / "index.md").write_text(
        "# API reference\n\n"
        "Generated from the docstrings of the `resnet_tf` package: one page per module or\n"
        "sub-package, with the sub-package's modules as sections.\n\n"
        f"```{{toctree}}\n:maxdepth: 2\n\n{entries}\n```\n",
        encoding="utf-8",
    )
    return modules


def stage(stage_dir: Path, solutions: bool = True) -> dict:
    """Write the site's sources into ``stage_dir`` (emptied first). Returns what was staged."""
    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    stage_dir.mkdir(parents=True)
    notebooks = {
        folder: sorted(ROOT.glob(pattern))
        for folder, (_, pattern) in SECTIONS.items()
        if solutions or folder != "solutions"
    }
    left_out = set() if solutions else {
        p.relative_to(ROOT).as_posix() for p in ROOT.glob(SECTIONS["solutions"][1])
    }
    guides = [g for g in GUIDES if (ROOT / g).exists()]
    pages = {p.relative_to(ROOT).as_posix() for paths in notebooks.values() for p in paths}
    pages |= set(guides) | {"README.md"}
    linker = Linker(pages, left_out)

    for paths in notebooks.values():
        for path in paths:
            rel = path.relative_to(ROOT).as_posix()
            stage_notebook(path, stage_dir / rel, rel, linker)
    for guide in guides:
        text = (ROOT / guide).read_text(encoding="utf-8")
        (stage_dir / guide).parent.mkdir(parents=True, exist_ok=True)
        (stage_dir / guide).write_text(linker.rewrite(text, guide), encoding="utf-8")
    modules = stage_api(stage_dir)

    readme = linker.rewrite((ROOT / "README.md").read_text(encoding="utf-8"), "README.md")
    readme = readme.replace("](README.md", "](index.md")
    toctrees = []
    for folder, paths in notebooks.items():
        entries = "\n".join(p.relative_to(ROOT).with_suffix("").as_posix() for p in paths)
        toctrees.append(
            f"```{{toctree}}\n:hidden:\n:caption: {SECTIONS[folder][0]}\n\n{entries}\n```"
        )
    if guides:
        entries = "\n".join(Path(g).with_suffix("").as_posix() for g in guides)
        toctrees.append(f"```{{toctree}}\n:hidden:\n:caption: Guides\n\n{entries}\n```")
    toctrees.append("```{toctree}\n:hidden:\n:caption: Reference\n\napi/index\n```")
    (stage_dir / "index.md").write_text(readme + "\n\n" + "\n\n".join(toctrees) + "\n",
                                        encoding="utf-8")
    return {"notebooks": notebooks, "guides": guides, "modules": modules}


# --------------------------------------------------------------------------------- build


def build(
    out: Path = DEFAULT_OUT,
    stage_dir: Path = DEFAULT_STAGE,
    solutions: bool = True,
    quiet: bool = True,
    strict: bool = False,
    jobs: str = "1",
) -> Path:
    """Stage the sources and run Sphinx; returns the path of the landing page.

    Raises ``RuntimeError`` with the install command when the site tooling is missing,
    and when Sphinx fails.
    """
    try:
        from sphinx.cmd.build import build_main
    except ImportError as err:
        raise RuntimeError(SITE_PACKAGES_HINT) from err
    for module in ("myst_nb", "sphinx_book_theme"):
        try:
            __import__(module)
        except ImportError as err:
            raise RuntimeError(SITE_PACKAGES_HINT) from err

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    staged = stage(Path(stage_dir), solutions=solutions)
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    args = ["-b", "html", "-c", str(CONF_DIR), "-j", jobs, "-E"]
    if quiet:
        args.append("-q")
    if strict:
        args += ["-W", "--keep-going"]
    code = build_main([*args, str(stage_dir), str(out)])
    if code != 0:
        raise RuntimeError(f"Sphinx failed with exit status {code} (run without --quiet)")
    # The committed notebooks, unchanged, for the "Download .ipynb" links.
    for paths in staged["notebooks"].values():
        for path in paths:
            target = out / "notebooks" / path.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    (out / ".nojekyll").write_text("")  # GitHub Pages: serve the _static/ folders as they are
    return out / "index.html"


def folder_size(path: Path) -> int:
    """Total size in bytes of the files under ``path``."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (build/site)")
    parser.add_argument("--no-solutions", action="store_true",
                        help="leave the solution notebooks out of the site")
    parser.add_argument("--verbose", action="store_true", help="show Sphinx's progress")
    parser.add_argument("--strict", action="store_true", help="treat Sphinx warnings as errors")
    parser.add_argument("-j", "--jobs", default="1", help="Sphinx worker processes (or 'auto')")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        index = build(args.out, solutions=not args.no_solutions, quiet=not args.verbose,
                      strict=args.strict, jobs=args.jobs)
    except RuntimeError as err:
        print(f"build_site: {err}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - start
    size = folder_size(args.out) / 1e6
    print(f"site built in {seconds:.1f} s: {index} ({size:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
