"""repro.plot: the style registry (the chapters' old LABEL / COLOR dicts, conflicting
re-registration refused), style kwargs, and the figure helpers."""

from __future__ import annotations

import dataclasses

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from repro import plot  # noqa: E402
from repro.plot import STYLES, Style, color, label, log_axes, panels, register, style  # noqa: E402

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


def test_panels_and_log_axes():
    fig, axes = panels(3, width=2.0, height=1.5)
    assert len(axes) == 3
    assert tuple(fig.get_size_inches()) == pytest.approx((6.0, 1.5))
    log_axes(axes[0])
    log_axes(axes[1], x=False)
    assert (axes[0].get_xscale(), axes[0].get_yscale()) == ("log", "log")
    assert (axes[1].get_xscale(), axes[1].get_yscale()) == ("linear", "log")
    fig1, one = panels(1)
    assert len(one) == 1
    plt.close(fig)
    plt.close(fig1)
