"""Sphinx configuration for the routilux documentation.

Build with ``make docs`` or, from the repository root::

    sphinx-build -W -b doctest docs docs/_build/doctest
    sphinx-build -W -b html docs docs/_build/html

Besides Sphinx's own extensions and one of our own in ``_ext/``, sphinx-click
writes the command-line reference from the ``routilux`` command itself (it comes
with the ``docs`` extra); the build needs no network.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

# Document the checkout even when routilux is not installed in the environment.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# Local extensions: _ext/bench_table.py renders docs/_static/bench.json.
sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

project = "routilux"
author = "The routilux developers"
copyright = "the routilux developers"

try:
    release = package_version("routilux")
except PackageNotFoundError:
    release = "unknown"
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.napoleon",
    "bench_table",
    "sphinx_click",
]

# Docstrings are written in Google style (STYLE.md).
napoleon_google_docstring = True
napoleon_numpy_docstring = False

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
    # pydantic's plumbing on JobState and ExecutionRecord is not our API.
    "exclude-members": "model_config, model_post_init",
}

# Every code example in the documentation is run by the doctest builder.
doctest_global_setup = "import routilux"

exclude_patterns = ["_build"]
nitpicky = False

html_theme = "alabaster"
html_title = f"routilux {release}"


def _skip_namedtuple_fields(
    app: Any, what: str, name: str, obj: object, skip: bool, options: Any
) -> bool:
    """Skip the field descriptors of NamedTuples (``ActivationInfo``).

    Their class docstrings already describe every field in an ``Attributes:``
    section; documenting the descriptors too defines each attribute twice, which
    ``-W`` turns into an error.
    """
    if type(obj).__name__ == "_tuplegetter":
        return True
    return skip


def setup(app: Any) -> None:
    """Register the skip rule above."""
    app.connect("autodoc-skip-member", _skip_namedtuple_fields)
