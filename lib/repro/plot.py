"""One look for every figure of the book: a registry of method styles and the few figure helpers
every chapter repeats.

A method is drawn the same way on every page that shows it: ``style("anti_pgd")`` gives its
label, colour, marker and line style, ``label(...)`` and ``color(...)`` one of them. Chapters add
the methods only they show with ``register``; re-registering a name with another look is refused,
so two chapters cannot silently disagree.

Used in: every experiments notebook.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

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


def panels(n: int, width: float = 5.0, height: float = 3.6,
           **kwargs) -> tuple[Figure, np.ndarray]:
    """A figure with ``n`` panels side by side, each ``width`` x ``height`` inches: (fig, axes)."""
    kwargs.setdefault("squeeze", False)
    fig, axes = plt.subplots(1, n, figsize=(width * n, height), **kwargs)
    return fig, axes[0]


def log_axes(ax: Axes, x: bool = True, y: bool = True) -> None:
    """Log scales and a light grid, the book's default for rates and errors."""
    if x:
        ax.set_xscale("log")
    if y:
        ax.set_yscale("log")
    ax.grid(True, which="major", alpha=0.3)


__all__ = ["STYLES", "Style", "color", "label", "log_axes", "panels", "register", "style"]
