"""Build the book: sources in build/book/<run_id>/src/, HTML in build/book/<run_id>/html/.

    src/conf.py                    Sphinx configuration (MyST-NB, the Jupyter Book theme)
    src/index.md                   the answer first (slmstudy.book.front)
    src/ledger.md, run.md, ...     generated MyST pages (slmstudy.book.pages)
    src/sections/NN_name.ipynb     the executed notebooks, cleaned (slmstudy.book.clean)
    src/logs/NN_name.stderr.log    what the notebooks printed to stderr, linked from each page
    html/index.html                the book (opens from file:// and from any static server)

Sphinx with MyST-NB is the engine of Jupyter Book 1; Jupyter Book 2 (mystmd) downloads its theme
at build time, so it cannot build offline. The notebooks are never executed here
(`nb_execution_mode = "off"`): the book shows the run that made the numbers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..paths import shown

CONF = '''# Sphinx configuration written by slmstudy.book.build — edit the template there, not this copy.
project = "slmstudy"
author = "slmstudy"
copyright = "slmstudy contributors; the seed articles' quotes belong to their authors"
extensions = ["myst_nb"]
html_theme = "sphinx_book_theme"
html_title = {title!r}
html_static_path = ["_static"]
html_css_files = ["slmstudy.css"]
html_last_updated_fmt = None
html_show_sourcelink = False
html_copy_source = False
html_theme_options = {{
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "navigation_with_keys": False,
    "show_navbar_depth": 1,
    # the wide comparison tables get the right column too
    "secondary_sidebar_items": {{"sections/*": ["page-toc"], "run": ["page-toc"]}},
}}
numfig = True
numfig_format = {{"figure": "Figure %s", "table": "Table %s"}}
myst_enable_extensions = ["colon_fence", "attrs_inline"]
myst_heading_anchors = 3
nb_execution_mode = "off"
nb_output_stderr = "remove"     # clean.py has already moved stderr to logs/; this is the backstop
nb_merge_streams = True
nb_render_markdown_format = "myst"
exclude_patterns = ["_build", "**.ipynb_checkpoints", "logs/**"]
suppress_warnings = ["mystnb.unknown_mime_type"]
'''

CSS = """/* slmstudy: tables people can read (the theme styles everything else) */
table.docutils td, table.docutils th { font-variant-numeric: tabular-nums; }
table.docutils, .pst-scrollable-table-container table { font-size: .82em; }
table td { vertical-align: top; }
.verdict-consistent { color: #116329; font-weight: 600; }
.verdict-inconsistent { color: #953800; font-weight: 600; }
.verdict-impossible { color: #a40e26; font-weight: 600; }
.verdict-untestable { color: #57606a; }
div.cell_output { max-height: 40em; overflow: auto; }
/* the comparison tables are wide: give the article the page's width */
.bd-page-width { max-width: 110rem; }
.bd-main .bd-content .bd-article-container { max-width: 100%; }
h3 { font-size: 1.25rem; }
/* the page's contents column only where the screen leaves room for the tables beside it */
@media (max-width: 1500px) { .bd-sidebar-secondary { display: none !important; } }
"""


@dataclass
class BookResult:
    html_dir: Path
    src_dir: Path
    index: Path
    pages: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    log: Path | None = None


def book_dir(run_id: str) -> Path:
    from ..execute import build_dir

    return build_dir() / "book" / run_id


def write_conf(src: Path, title: str) -> None:
    (src / "_static").mkdir(parents=True, exist_ok=True)
    (src / "conf.py").write_text(CONF.format(title=title), encoding="utf-8")
    (src / "_static" / "slmstudy.css").write_text(CSS, encoding="utf-8")


def sphinx_build(src: Path, out: Path, log: Path, timeout_s: float = 900) -> list[str]:
    """Run sphinx-build (the study's own environment) from src into out; returns its warnings.
    Raises with the log's tail when Sphinx fails."""
    if out.exists():
        shutil.rmtree(out)
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-j", "1", "-d", str(out.parent / "doctrees"),
           str(src), str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"$ {' '.join(cmd)}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}", encoding="utf-8")
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-25:])
        raise RuntimeError(f"sphinx-build failed (exit {proc.returncode}); log {shown(log)}:\n{tail}")
    return [line for line in proc.stderr.splitlines() if "WARNING" in line or "ERROR" in line]


def build_book(run_id: str, out_dir: str | Path | None = None, snapshot_dirs=None,
               title: str | None = None) -> BookResult:
    """Write the sources for run `run_id` and build the HTML book. See the module docstring."""
    from . import sources

    t0 = time.monotonic()
    root = Path(out_dir) if out_dir else book_dir(run_id)
    src, html = root / "src", root / "html"
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    pages = sources.write_sources(run_id, src, snapshot_dirs=snapshot_dirs)
    write_conf(src, title or f"slmstudy — run {run_id}")
    log = root / "sphinx-build.log"
    warnings = sphinx_build(src, html, log)
    res = BookResult(html_dir=html, src_dir=src, index=html / "index.html", pages=pages, warnings=warnings,
                     seconds=round(time.monotonic() - t0, 1), log=log)
    (root / "book.json").write_text(json.dumps({"run_id": run_id, "pages": pages, "warnings": warnings,
                                                "seconds": res.seconds}, indent=2), encoding="utf-8")
    return res
