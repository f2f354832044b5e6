"""repro.plot: the style registry (the chapters' old LABEL / COLOR dicts, conflicting
re-registration refused), style kwargs, the book's figure style (SVG, readable fonts), figures
sized for the text column, and figures glued for a captioned figure directive."""

from __future__ import annotations

import dataclasses
import re
import sys
from io import StringIO

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from repro import plot  # noqa: E402
from repro.plot import (  # noqa: E402
    MAX_COLUMNS,
    SINGLE_WIDTH,
    STYLES,
    TEXT_WIDTH,
    Style,
    book_style,
    color,
    figsize,
    figure_legend,
    glue,
    glue_figure,
    label,
    log_axes,
    panels,
    register,
    style,
)

# The dicts the experiments notebooks defined before the restructure (chapters 10, 39, 40).
OLD_LABEL = {"gd": "GD", "pgd": "PGD", "anti_pgd": "Anti-PGD", "sgd": "SGD (batch 128)",
             "ls": "LS", "pcgrad": "PCGrad", "mgda": "MGDA", "cagrad": "CAGrad",
             "nash": "Nash-MTL", "lasso": "Lasso (DCT)", "csgm": "CSGM", "cs_bgm": "CS-BGM (MAP)"}
OLD_COLOR = {"gd": "tab:gray", "pgd": "tab:red", "anti_pgd": "tab:blue", "sgd": "tab:green",
             "ls": "tab:gray", "pcgrad": "tab:orange", "mgda": "tab:green", "cagrad": "tab:purple",
             "nash": "tab:blue", "lasso": "tab:gray", "csgm": "tab:blue", "cs_bgm": "tab:red"}


@pytest.fixture
def registry(monkeypatch):
    """A private copy of the registry, so that registrations in a test do not leak."""
    monkeypatch.setattr(plot, "STYLES", dict(STYLES))
    return plot.STYLES


def test_preregistered_styles_are_the_chapters_old_labels_and_colours():
    for name in OLD_LABEL:
        assert label(name) == OLD_LABEL[name], name
        assert color(name) == OLD_COLOR[name], name
    assert style("nuclear") == Style("min nuclear norm", "k", "d", ":")


def test_style_kwargs_for_ax_plot():
    kw = style("anti_pgd").kwargs()
    assert kw == {"label": "Anti-PGD", "color": "tab:blue", "marker": "o", "linestyle": "-"}
    assert style("anti_pgd").kwargs(marker="", lw=2) == {
        "label": "Anti-PGD", "color": "tab:blue", "marker": "", "linestyle": "-", "lw": 2}
    fig, ax = plt.subplots()
    (line,) = ax.plot([0, 1], [1, 0], **style("pgd").kwargs())
    assert line.get_label() == "PGD" and line.get_color() == "tab:red"
    plt.close(fig)


def test_style_with_changes_is_a_copy():
    dashed = style("gd", linestyle="--")
    assert dashed.linestyle == "--" and dashed.label == "GD"
    assert style("gd").linestyle == "-"                  # the registry is unchanged
    with pytest.raises(dataclasses.FrozenInstanceError):
        style("gd").label = "changed"                    # styles are frozen


def test_unknown_style_names_the_fix():
    with pytest.raises(KeyError, match="register"):
        style("no_such_method")


def test_register_adds_and_accepts_the_same_look_again(registry):
    new = register("momentum", "momentum", "tab:olive", marker="s")
    assert registry["momentum"] is new and label("momentum") == "momentum"
    assert register("momentum", "momentum", "tab:olive", marker="s") == new


@pytest.mark.parametrize("change", [dict(label="Heavy ball"), dict(color="tab:red"),
                                   dict(marker="x"), dict(linestyle=":")])
def test_register_refuses_a_conflicting_re_registration(registry, change):
    look = dict(label="momentum", color="tab:olive", marker="s", linestyle="-")
    register("momentum", **look)
    with pytest.raises(ValueError, match="already registered"):
        register("momentum", **{**look, **change})
    assert registry["momentum"] == Style(**look)          # the first registration stands
    with pytest.raises(ValueError, match="already registered"):
        register("gd", "Gradient descent", "tab:gray")     # a pre-registered one too


def test_log_axes():
    fig, axes = panels(2)
    log_axes(axes[0])
    log_axes(axes[1], x=False)
    assert (axes[0].get_xscale(), axes[0].get_yscale()) == ("log", "log")
    assert (axes[1].get_xscale(), axes[1].get_yscale()) == ("linear", "log")
    plt.close(fig)


# --- the book's look ---------------------------------------------------------------------------

CSS_PX_PER_PT = 96 / 72      # a browser shows an SVG at its own size: 1 pt = 4/3 CSS pixels


@pytest.fixture
def book_rc():
    """book_style's rcParams for one test, the previous ones restored afterwards."""
    with matplotlib.rc_context():
        book_style()
        yield matplotlib.rcParams


def test_book_style_is_sharp_and_readable_at_the_text_width(book_rc):
    # rasterized parts of an SVG (and any PNG saved by hand) at 200 dpi or more
    assert book_rc["figure.dpi"] >= 200 and book_rc["savefig.dpi"] >= 200
    # every text of a figure at least 11 CSS pixels when shown at its own size (the issue
    # measured 5-6 px), labels and titles at least 13
    for key in ("xtick.labelsize", "ytick.labelsize", "legend.fontsize"):
        assert book_rc[key] * CSS_PX_PER_PT >= 11, key
    for key in ("font.size", "axes.labelsize", "axes.titlesize", "figure.titlesize"):
        assert book_rc[key] * CSS_PX_PER_PT >= 13, key
    # the widest figure fits the text column of a desktop page (about 630-790 CSS px) unscaled
    assert TEXT_WIDTH * 96 <= 650 and SINGLE_WIDTH < TEXT_WIDTH
    # the same figure gives the same SVG (no random ids), white behind the lines in dark mode
    assert book_rc["svg.hashsalt"] and book_rc["savefig.facecolor"] == "white"


def test_book_style_svg_is_the_text_width_wide(book_rc):
    fig, axes = panels(2)
    for ax in axes:
        ax.plot([1, 2, 3], [3, 1, 2], label="a curve")
        ax.set_xlabel("step")
        ax.legend()
    out = StringIO()
    fig.savefig(out, format="svg", metadata={"Date": None})
    plt.close(fig)
    svg = out.getvalue()
    width = float(re.search(r'<svg[^>]* width="([0-9.]+)pt"', svg).group(1))
    assert width == pytest.approx(TEXT_WIDTH * 72)        # shown 624 px wide: fonts unscaled
    assert "<dc:date>" not in svg


@pytest.mark.filterwarnings("ignore:InlineBackend:DeprecationWarning")  # matplotlib_inline warns
def test_book_style_makes_a_notebook_show_svg(book_rc, monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell.instance(config=config)
    try:
        monkeypatch.setattr(plot, "_shell", lambda: shell)
        book_style()
        fig, ax = plt.subplots()
        ax.plot([0, 1], [1, 0])
        data, _ = shell.display_formatter.format(fig)
        plt.close(fig)
        assert "image/svg+xml" in data and "image/png" not in data
        assert data["image/svg+xml"].lstrip().startswith("<?xml")
        assert "<dc:date>" not in data["image/svg+xml"]       # no time stamp: stable files
        with pytest.raises(ValueError, match="svg"):
            book_style("gif")
    finally:
        from matplotlib_inline.config import InlineBackend

        InlineBackend.clear_instance()
        InteractiveShell.clear_instance()


def test_figsize_fits_the_text_column():
    assert figsize() == pytest.approx((SINGLE_WIDTH, 0.72 * SINGLE_WIDTH))
    assert figsize(2) == pytest.approx((TEXT_WIDTH, TEXT_WIDTH / 2 * 0.72))
    assert figsize(3, rows=2, aspect=1.0) == pytest.approx((TEXT_WIDTH, 2 * TEXT_WIDTH / 3))
    assert figsize(1, width=20.0)[0] == TEXT_WIDTH                  # never wider than the column
    with pytest.raises(ValueError):
        figsize(0)


@pytest.mark.parametrize("n, cols, rows", [(1, None, 1), (2, None, 1), (3, None, 2),
                                           (4, None, 2), (3, 3, 1), (5, 3, 2), (2, 3, 1)])
def test_panels_stack_in_rows_of_at_most_three(n, cols, rows):
    fig, axes = panels(n, cols=cols, sharex=True)
    assert len(axes) == n and len(fig.axes) == n                   # no empty panel left over
    width, height = fig.get_size_inches()
    assert width <= TEXT_WIDTH + 1e-9
    per_row = min(n, cols or 2)
    assert per_row <= MAX_COLUMNS
    assert height == pytest.approx(rows * width / per_row * 0.72)
    assert len({round(ax.get_position().y0, 3) for ax in axes}) == rows
    plt.close(fig)


def test_panels_refuse_rows_too_wide_to_read():
    with pytest.raises(ValueError, match="stack them"):
        panels(4, cols=4)
    with pytest.raises(ValueError):
        panels(0)


def test_figure_legend_lists_each_label_once_below_the_panels():
    fig, axes = panels(2)
    for ax in axes:
        ax.plot([0, 1], label="GD")
        ax.axhline(0.5, label="bound")
    axes[1].plot([1, 0], label="Anti-PGD")
    legend = figure_legend(fig, ncols=2)
    assert [t.get_text() for t in legend.get_texts()] == ["GD", "bound", "Anti-PGD"]
    fig.canvas.draw()
    box = legend.get_window_extent()
    assert box.y1 <= min(ax.get_window_extent().y0 for ax in axes) + 1   # below the panels
    assert box.x1 <= fig.bbox.x1 + 1                                    # inside the figure
    plt.close(fig)


def test_glue_figure_glues_and_closes_the_figure(capsys):
    pytest.importorskip("myst_nb")
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    glue_figure("fig-test", fig)
    assert not plt.fignum_exists(fig.number)        # the inline backend will not show it again
    glue_figure("fig-note", "Not run at this preset.")
    glue("a-number", 1.5, display=False)


def test_glue_without_myst_nb_degrades(monkeypatch):
    """In an environment without the book's packages a notebook still runs: glue of a value does
    nothing, a figure is shown in place (here, outside IPython, nowhere) and closed."""
    monkeypatch.setitem(sys.modules, "myst_nb", None)          # import myst_nb now fails
    with pytest.raises(ImportError):
        import myst_nb  # noqa: F401
    glue("a-number", 1.5, display=False)
    glue("shown", 2.5)
    fig, ax = plt.subplots()
    glue_figure("fig-test", fig)
    assert not plt.fignum_exists(fig.number)
    glue_figure("fig-note", "Not run at this preset.")
