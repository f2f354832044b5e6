"""One look for every figure of the book: the book's figure style, figures sized for the text
column, figures handed to the page as numbered, captioned figures, and a registry of method styles.

**The page.** ``book_style()``, called once at the top of every chapter notebook, sets matplotlib's
rcParams for the book and makes the notebook's figures SVG. SVG rather than a 200-dpi PNG: the
figures are line plots, which as vectors stay sharp at every zoom and screen density, their text
scales with them, and an SVG of a line plot weighs about what a PNG of it does. The few heavy
artists (images, filled contours, bands and curves of thousands of points) are drawn with
``rasterized=True``: a bitmap at ``figure.dpi`` = 200 inside the SVG, with the text still vector.
An SVG is shown at its own size, so a figure ``TEXT_WIDTH`` wide fills the text column of a
desktop page without being scaled down, and its fonts keep their point sizes: 8.5 to 10 pt, 11 to
13 CSS pixels. ``panels(n)`` lays ``n`` panels out in rows of at most two (or three) within that
width, ``figure_legend`` puts one legend for all of them below, and ``figsize`` gives the size of
any other layout (a grid of images).

A finished figure goes to the page through ``glue_figure("fig-name", fig)``: the figure is glued
under that name (MyST-NB's ``glue``) and closed, and a markdown cell shows it with

    ```{glue:figure} fig-name
    :name: fig-name
    :alt: what the figure shows, in words

    The caption: what is plotted, and what to see in it.
    ```

which gives it a number, a caption and alt text. Without MyST-NB (an install without the book's
packages, running ``repro run``) the figure is displayed in place instead, and ``glue`` of a value
does nothing.

**The methods.** A method is drawn the same way on every page that shows it: ``style("anti_pgd")``
gives its label, colour, marker and line style, ``label(...)`` and ``color(...)`` one of them.
Chapters add the methods only they show with ``register``; re-registering a name with another look
is refused, so two chapters cannot silently disagree.

Used in: every derivation and experiments notebook.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import matplotlib
import matplotlib.pyplot as plt

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class Style:
    label: str
    color: str
    marker: str = "o"
    linestyle: str = "-"

    def kwargs(self, **overrides) -> dict:
        """Keyword arguments for ``ax.plot``: label, color, marker, linestyle."""
        out = {"label": self.label, "color": self.color, "marker": self.marker,
               "linestyle": self.linestyle}
        out.update(overrides)
        return out


STYLES: dict[str, Style] = {
    # Part II, noise injection (chapter 10)
    "gd": Style("GD", "tab:gray"),
    "pgd": Style("PGD", "tab:red"),
    "anti_pgd": Style("Anti-PGD", "tab:blue"),
    "sgd": Style("SGD (batch 128)", "tab:green"),
    # Part VI, multi-task aggregators (chapter 39)
    "ls": Style("LS", "tab:gray"),
    "pcgrad": Style("PCGrad", "tab:orange"),
    "mgda": Style("MGDA", "tab:green"),
    "cagrad": Style("CAGrad", "tab:purple"),
    "nash": Style("Nash-MTL", "tab:blue"),
    # Part VI, compressed sensing (chapter 40)
    "lasso": Style("Lasso (DCT)", "tab:gray"),
    "csgm": Style("CSGM", "tab:blue"),
    "cs_bgm": Style("CS-BGM (MAP)", "tab:red"),
    # Part I: the convex answer of matrix problems
    "nuclear": Style("min nuclear norm", "k", "d", ":"),
}


def register(name: str, label: str, color: str, marker: str = "o", linestyle: str = "-") -> Style:
    """Add a method's style; registering the same name again must give the same look."""
    new = Style(label, color, marker, linestyle)
    old = STYLES.get(name)
    if old is not None and old != new:
        raise ValueError(f"style {name!r} is already registered as {old}; pick another name")
    STYLES[name] = new
    return new


def style(name: str, **changes) -> Style:
    """The registered style of ``name`` (with ``changes`` applied to a copy)."""
    try:
        found = STYLES[name]
    except KeyError:
        raise KeyError(f"no plot style for {name!r}; register it with "
                       "repro.plot.register") from None
    return replace(found, **changes) if changes else found


def label(name: str) -> str:
    return style(name).label


def color(name: str) -> str:
    return style(name).color


# --- the book's look ---------------------------------------------------------------------------

TEXT_WIDTH = 6.5
"""The widest figure, in inches: the text column of a desktop page (6.5 in = 624 CSS pixels, so an
SVG this wide is shown at its own size and its fonts at their point sizes)."""

SINGLE_WIDTH = 4.8
"""The width of a figure with a single panel, in inches: wide enough to read, narrow enough not to
fill the screen."""

MAX_COLUMNS = 3
"""The most panels side by side in one row."""

BOOK_RC = {
    # text that reads at the size the figure is shown (1 pt = 4/3 CSS pixels)
    "font.size": 10.0,
    "axes.titlesize": 10.0,
    "axes.labelsize": 10.0,
    "xtick.labelsize": 9.0,
    "ytick.labelsize": 9.0,
    "legend.fontsize": 8.5,
    "legend.title_fontsize": 9.0,
    "figure.titlesize": 10.5,
    "legend.framealpha": 0.85,
    "lines.linewidth": 1.6,
    "lines.markersize": 5.0,
    # rasterized artists (filled contours, images) inside the SVG, and any PNG saved by hand
    "figure.dpi": 200,
    "savefig.dpi": 200,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "figure.figsize": (SINGLE_WIDTH, 0.72 * SINGLE_WIDTH),
    # identical SVG for identical figures (no random ids), so unchanged figures keep their file
    "svg.hashsalt": "repro-book",
    "svg.fonttype": "path",
}
"""The rcParams ``book_style`` sets."""

FORMAT = "svg"


def book_style(fmt: str = FORMAT) -> None:
    """Set the book's look: ``BOOK_RC``, and, in a notebook, figures shown as ``fmt`` (SVG).

    Call once at the top of a notebook. Outside IPython only the rcParams change."""
    if fmt not in ("svg", "png"):
        raise ValueError(f"fmt must be 'svg' or 'png' (at figure.dpi), got {fmt!r}")
    matplotlib.rcParams.update(BOOK_RC)
    shell = _shell()
    if shell is None:
        return
    from IPython.core.pylabtools import select_figure_formats
    from matplotlib_inline.config import InlineBackend

    # no time stamp in the SVG: the same figure gives the same file
    kwargs = {"bbox_inches": "tight", **({"metadata": {"Date": None}} if fmt == "svg" else {})}
    # The inline backend selects its formats when it is first activated (at the first figure);
    # setting its configuration makes it select ours then, and the call below selects them now.
    config = InlineBackend.instance(parent=shell)
    config.print_figure_kwargs = kwargs
    config.figure_formats = {fmt}
    select_figure_formats(shell, {fmt}, **kwargs)


def _shell():
    """The running IPython shell, or None."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipykernel
        return None
    return get_ipython()


def figsize(cols: int = 1, rows: int = 1, aspect: float = 0.72,
            width: float | None = None) -> tuple[float, float]:
    """Width and height in inches of a figure of ``rows`` x ``cols`` panels for the text column.

    The width is ``width`` (default: ``SINGLE_WIDTH`` for one column, ``TEXT_WIDTH`` for more),
    never more than ``TEXT_WIDTH``; each panel is ``aspect`` times as high as it is wide."""
    if cols < 1 or rows < 1:
        raise ValueError(f"need at least one row and one column, got {rows} x {cols}")
    if width is None:
        width = SINGLE_WIDTH if cols == 1 else TEXT_WIDTH
    width = min(float(width), TEXT_WIDTH)
    return width, rows * (width / cols) * aspect


def panels(n: int = 1, cols: int | None = None, aspect: float = 0.72, width: float | None = None,
           **kwargs) -> tuple[Figure, np.ndarray]:
    """A figure with ``n`` panels for the text column: (fig, a flat array of ``n`` axes).

    The panels fill rows of ``cols`` (default 2, at most ``MAX_COLUMNS``), the last row maybe
    short; the figure is ``figsize(cols, rows, aspect, width)`` with a constrained layout, which
    keeps labels clear of the neighbouring panels and makes room for ``figure_legend``. Other
    keyword arguments go to ``plt.subplots`` (``sharex=True``, ...)."""
    if n < 1:
        raise ValueError(f"a figure needs at least one panel, got n = {n}")
    cols = min(n, 2) if cols is None else cols
    if not 1 <= cols <= MAX_COLUMNS:
        raise ValueError(f"cols must be 1 to {MAX_COLUMNS}: wider rows shrink the panels below "
                         f"readable (got {cols}); stack them in more rows")
    cols = min(cols, n)
    rows = -(-n // cols)
    kwargs.setdefault("layout", "constrained")
    fig, grid = plt.subplots(rows, cols, figsize=figsize(cols, rows, aspect, width),
                             squeeze=False, **kwargs)
    axes = grid.ravel()
    for ax in axes[n:]:
        ax.remove()
    return fig, axes[:n]


def figure_legend(fig: Figure, ncols: int = 3, **kwargs):
    """One legend for a figure of several panels, below them: every labelled line of every panel,
    each label once, in ``ncols`` columns (the panels keep their whole width for the data)."""
    found: dict = {}
    for ax in fig.axes:
        for handle, text in zip(*ax.get_legend_handles_labels()):
            found.setdefault(text, handle)
    kwargs.setdefault("loc", "outside lower center")
    return fig.legend(list(found.values()), list(found), ncols=min(ncols, max(len(found), 1)),
                      **kwargs)


def glue(name: str, value, display: bool = True) -> None:
    """MyST-NB's ``glue(name, value, display)``; without MyST-NB, ``value`` is only displayed
    (when ``display``), so that a notebook runs in an environment without the book's packages."""
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display:
            _display(value)
        return
    myst_glue(name, value, display=display)


def glue_figure(name: str, fig: Figure | str) -> None:
    """Hand a finished figure to the page under ``name``, for a ``{glue:figure}`` directive.

    ``fig`` is glued without being displayed, then closed, so that the inline backend does not
    show it a second time, unnumbered. A string instead of a figure is glued as markdown: the
    note a figure's place shows when this run did not make it (a section off at this preset).
    Without MyST-NB the figure (or the note) is displayed in place."""
    if isinstance(fig, str):
        from IPython.display import Markdown

        value = Markdown(fig)
    else:
        value = fig
    try:
        import myst_nb  # noqa: F401
    except ImportError:
        _display(value)
    else:
        glue(name, value, display=False)
    if not isinstance(fig, str):
        plt.close(fig)


def _display(value) -> None:
    if _shell() is None:
        return
    from IPython.display import display

    display(value)


def log_axes(ax: Axes, x: bool = True, y: bool = True) -> None:
    """Log scales and a light grid, the book's default for rates and errors."""
    if x:
        ax.set_xscale("log")
    if y:
        ax.set_yscale("log")
    ax.grid(True, which="major", alpha=0.3)


__all__ = ["BOOK_RC", "MAX_COLUMNS", "SINGLE_WIDTH", "STYLES", "Style", "TEXT_WIDTH", "book_style",
           "color", "figsize", "figure_legend", "glue", "glue_figure", "label", "log_axes",
           "panels", "register", "style"]
