"""One plotting helper: consistent style, a CJK-capable font, figures saved under figures/."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use(os.environ.get("MPLBACKEND", "Agg"))
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import font_manager  # noqa: E402

from .paths import FIGURES_DIR  # noqa: E402

CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans SC", "WenQuanYi Zen Hei",
                "Source Han Sans SC")


def cjk_font() -> str | None:
    """The first installed CJK font family (Debian: fonts-noto-cjk), or None."""
    names = {f.name for f in font_manager.fontManager.ttflist}
    for fam in CJK_FAMILIES:
        if fam in names:
            return fam
    font_manager.fontManager.__init__()  # fonts installed after matplotlib built its cache
    names = {f.name for f in font_manager.fontManager.ttflist}
    return next((fam for fam in CJK_FAMILIES if fam in names), None)


def setup_style() -> str | None:
    fam = cjk_font()
    plt.rcParams.update({
        "figure.figsize": (7.5, 4.2), "figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3,
        "axes.spines.top": False, "axes.spines.right": False, "savefig.bbox": "tight",
        "font.sans-serif": ([fam] if fam else []) + ["DejaVu Sans"],
        "axes.unicode_minus": False,
    })
    return fam


def save(fig, name: str, folder: Path | None = None, caption: str | None = None) -> Path:
    """Save `fig` as figures/<name>.png (+ .svg); returns the PNG path."""
    folder = Path(folder or FIGURES_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    png = folder / f"{name}.png"
    fig.savefig(png, dpi=130)
    fig.savefig(folder / f"{name}.svg")
    if caption:
        (folder / f"{name}.txt").write_text(caption, encoding="utf-8")
    return png


def show(fig, name: str, caption: str, folder: Path | None = None) -> None:
    """Save `fig` (see save) and display that PNG with its caption in the output's metadata
    (`{"slmstudy": {"caption", "name"}}`), which the book turns into a numbered, captioned figure
    (slmstudy.book.clean); the figure is then closed so the inline backend does not show it twice.
    Outside IPython it only saves. Returns nothing, so a notebook cell that ends with it shows the
    figure only (save() gives the path)."""
    if not caption or not caption.strip():
        raise ValueError(f"figure {name!r} has no caption: every figure in the report is captioned; "
                         "pass caption='what the reader sees'")
    png = save(fig, name, folder=folder, caption=caption)
    plt.close(fig)
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:  # pragma: no cover - IPython ships with the study's environment
        return
    if get_ipython() is not None:
        display(Image(filename=str(png)), metadata={"slmstudy": {"caption": caption, "name": name}})
