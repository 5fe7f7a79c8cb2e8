"""Serve MathJax from the book itself, so that equations render without a network.

Jupyter Book loads MathJax from a CDN by default: a reader offline (or on a
network that blocks the CDN) then sees raw LaTeX.  The pinned PyPI package
``django-static-mathjax`` ships MathJax 3's files; this extension copies the one
script the book uses and its web fonts into ``_build/html/_static/mathjax`` and
points Sphinx's ``mathjax_path`` at that copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

SCRIPT = "tex-mml-chtml.js"
FONTS = Path("output") / "chtml" / "fonts" / "woff-v2"  # where the script looks, relative to itself


def _mathjax_dir() -> Path:
    try:
        import mathjax  # the django-static-mathjax distribution
    except ImportError as err:  # pragma: no cover - only without requirements.txt
        raise RuntimeError("offline_mathjax: install django-static-mathjax (requirements.txt pins it)") from err
    return Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"


def _use_local_copy(app, config) -> None:
    config.mathjax_path = f"mathjax/{SCRIPT}"


def _copy_files(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    source, target = _mathjax_dir(), Path(app.outdir) / "_static" / "mathjax"
    (target / FONTS).mkdir(parents=True, exist_ok=True)
    shutil.copy2(source / SCRIPT, target / SCRIPT)
    for font in (source / FONTS).glob("*.woff"):
        shutil.copy2(font, target / FONTS / font.name)


def setup(app):
    app.connect("config-inited", _use_local_copy)
    app.connect("build-finished", _copy_files)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
