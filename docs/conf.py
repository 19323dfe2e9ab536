"""Sphinx configuration of the skvae documentation.

Build it with ``tox -e docs`` (or ``sphinx-build -W --keep-going -b html docs
docs/_build/html``). The build reads nothing from the network: no
intersphinx, the theme's assets ship with it, and the gallery runs the
examples on bundled data.
"""

import os
import re
import tempfile
from pathlib import Path

import skvae

ROOT = Path(__file__).resolve().parent.parent

project = "skvae"
author = "The skvae developers"
copyright = "2026, The skvae developers"  # noqa: A001 (Sphinx's name)
version = skvae.__version__
release = skvae.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.extlinks",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_design",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py"]
templates_path = ["_templates"]

# The API reference: one page per public name, generated from the numpydoc
# docstrings. The class template's autodoc ``:members:`` documents the
# methods, so numpydoc's own member tables stay off (they would list every
# method twice).
autosummary_generate = True
autosummary_imported_members = False
autodoc_typehints = "none"
numpydoc_show_class_members = False
# "fit()" rather than "VAEOutlierDetector.fit()" in the page contents.
toc_object_entries_show_parents = "hide"
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

extlinks = {"arxiv": ("https://arxiv.org/abs/%s", "arXiv:%s")}

# Markdown pages (the user guide and the measurement pages) through MyST.
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3


# Every script in examples/ runs once; SKVAE_DOCS_FAST=1 (CI sets it) makes
# them train briefly, with the figures' layout unchanged. Two examples run at
# a time, each on one thread: the scripts are small enough that two one-thread
# runs beat one two-thread run (a clean build, 2 cores: 102 s -> 88 s), and
# two two-thread torch processes on two cores slow each other down.
os.environ.setdefault("OMP_NUM_THREADS", "1")
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/(plot_|quickstart)",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "image_scrapers": ("matplotlib",),
    "abort_on_example_error": True,
    "parallel": 2,
}

html_theme = "pydata_sphinx_theme"
html_title = f"skvae {version}"
html_static_path = ["_static"]
html_css_files = ["skvae.css"]
html_show_sourcelink = False
html_theme_options = {
    # Getting started, How-to guides, Measurements, API; the rest under "More".
    "header_links_before_dropdown": 4,
    "navbar_end": ["theme-switcher"],
    "secondary_sidebar_items": ["page-toc"],
    "show_prev_next": False,
    "navigation_with_keys": False,
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_context = {"default_mode": "light"}
# Pages without sub-pages need no section navigation on the left.
html_sidebars = {
    page: []
    for page in (
        "install",
        "getting_started",
        "user_guide",
        "architecture",
        "changelog",
        "contributing",
    )
}

os.environ.setdefault("MPLBACKEND", "Agg")
# The examples also write their figures as PNG files; keep those out of the
# source tree (the gallery takes the figures from matplotlib directly).
os.environ.setdefault("SKVAE_EXAMPLE_OUTPUT", tempfile.mkdtemp(prefix="skvae-gallery-"))


def _skip_metadata_request_methods(app, what, name, obj, skip, options):
    """Leave out scikit-learn's metadata-routing methods.

    scikit-learn documents metadata routing itself (``get_metadata_routing``
    and the generated ``set_*_request``); listed on every estimator they
    would bury skvae's own methods.
    """
    is_request = name.startswith("set_") and name.endswith("_request")
    if is_request or name == "get_metadata_routing":
        return True
    return skip


# :ref:`text <label>`, :ref:`label`, :term:`text <entry>` and :term:`entry`
SKLEARN_XREF = re.compile(r":(?:ref|term):`(?:([^`<]*?)\s*<[^`>]*>|([^`]*))`")


def _unlink_sklearn_references(app, what, name, obj, options, lines):
    """Show scikit-learn's own cross-references as plain text.

    Methods inherited from scikit-learn (``fit_predict``, ``set_output``,
    ``score``) point to labels of scikit-learn's docs, which an offline
    build cannot resolve; their text stays, the dead link goes.
    """
    if not getattr(obj, "__module__", "").startswith("sklearn"):
        return
    for i, line in enumerate(lines):
        lines[i] = SKLEARN_XREF.sub(lambda m: m[1] or m[2], line)


def setup(app):
    """Connect the skvae-specific autodoc hooks."""
    app.connect("autodoc-skip-member", _skip_metadata_request_methods)
    app.connect("autodoc-process-docstring", _unlink_sklearn_references)
