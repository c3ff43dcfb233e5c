"""The published report as a book: Sphinx + MyST-NB (Jupyter Book's engine) with the Jupyter Book
theme, built from a run's executed notebooks, its results and the committed GPU snapshots.

    clean    an executed notebook → the page's notebook: stderr and engine logs to a log file,
             code collapsed, captioned figures as numbered <figure>s
    pages    what a run and the snapshots hold (Context); the ledger and run pages
    front    the front page: the articles' tables rebuilt with measured values, the scorecard,
             the three figures
    sources  writes the book's source folder
    build    conf.py and sphinx-build
    browser  reads the built book in headless Chromium: heights, images, captions, stderr, CJK
             glyphs, links, requests leaving the machine; screenshots

`publish(run_id)` does it all: build/book/<run_id>/html/index.html, the browser's report in
build/book/<run_id>/browser.json and a screenshot of every page in build/book/<run_id>/screenshots/.
"""

from __future__ import annotations

import json
from pathlib import Path

from .browser import BookReport, check_book  # noqa: F401
from .build import BookResult, book_dir, build_book  # noqa: F401


def publish(run_id: str, out_dir: str | Path | None = None, snapshot_dirs=None, check: bool = True
            ) -> tuple[BookResult, BookReport | None]:
    """Build the book for `run_id`, then read every page in Chromium (screenshots kept)."""
    res = build_book(run_id, out_dir=out_dir, snapshot_dirs=snapshot_dirs)
    report = read_in_browser(res) if check else None
    return res, report


def read_in_browser(res: BookResult) -> BookReport:
    """Read the built book in Chromium; its report goes to browser.json, its PNGs to screenshots/."""
    root = res.html_dir.parent
    report = check_book(res.html_dir, screenshots=root / "screenshots")
    (root / "browser.json").write_text(json.dumps({**report.to_dict(), "problems": report.problems()},
                                                  indent=2, ensure_ascii=False), encoding="utf-8")
    return report
