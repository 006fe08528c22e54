"""Sphinx configuration of the companion's website.

The sources are not here: ``tools/build_site.py`` stages the README, the notebooks
(with their stored outputs), the guides in ``docs/`` and generated API pages into a
build folder and runs Sphinx on it with this configuration (``-c docs/site``).
Nothing is executed and nothing is fetched from the network: MathJax comes from the
``sphinx-mathjax-offline`` package and search is Sphinx's own index.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the package the API reference documents

import resnet_tf  # noqa: E402

project = "ResNet companion"
author = "the resnet_tf authors"
copyright = "the resnet_tf authors, MIT licence"
release = resnet_tf.__version__
version = release

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",
]

# --- notebooks: render the committed outputs, never execute
nb_execution_mode = "off"
nb_merge_streams = True
nb_ipywidgets_js = {}  # no widget manager from a CDN: widgets are for live notebooks
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist", "html_image"]
myst_heading_anchors = 3
# Jupyter accepts $$...$$ inside a paragraph; so must the site.
myst_dmath_double_inline = True
exclude_patterns = ["_notebooks/**", "**/.ipynb_checkpoints"]
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type"]

# --- API reference
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "description"
napoleon_google_docstring = False
# Keras layers carry long inherited docstrings; document only what the package defines.
autodoc_inherit_docstrings = False
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# --- look
html_theme = "sphinx_book_theme"
html_title = f"ResNet companion {release}"
html_static_path = ["_static"]
html_css_files = ["site.css"]
html_favicon = "_static/favicon.svg"  # a page without one makes browsers ask for /favicon.ico
# The light look by default (the figures are drawn on white); readers can switch.
html_context = {"default_mode": "light"}
html_copy_source = False  # notebooks are offered by the "Download .ipynb" links
html_show_sourcelink = False
html_theme_options = {
    "use_download_button": False,
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "show_toc_level": 2,
    "home_page_in_toc": True,
    "navigation_with_keys": False,
}
html_last_updated_fmt = None


def _unlink_problematic(app, doctree, docname):
    """Show docstring markup errors as their text, not as links to hidden messages.

    docutils turns markup it cannot parse (e.g. ``|x|`` read as a substitution) into a
    link to its error message; the message itself is only in the build log, so the link
    would lead nowhere on the page.
    """
    from docutils import nodes

    for node in list(doctree.findall(nodes.problematic)):
        node.replace_self(nodes.inline(text=node.astext()))


def setup(app):
    app.connect("doctree-resolved", _unlink_problematic)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
