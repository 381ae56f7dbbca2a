"""Shared look of the figures: a colour-blind-safe palette and print-ready matplotlib settings.

Importing this module does not import matplotlib; :func:`style_context` and :func:`save_figure` do.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from divtrace import io

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Okabe & Ito (2008), "Color Universal Design"; black last so it is the least used.
OKABE_ITO = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",  # black
)
# Marker shapes paired with the colours, so lines stay apart in greyscale print.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "h")

PANEL_WIDTH_IN = 2.6
PANEL_HEIGHT_IN = 2.0
DPI = 300

# Sans-serif faces in order of preference; only installed ones are used (no findfont warnings).
SANS_SERIF = ("Helvetica", "Arial", "Liberation Sans", "Nimbus Sans", "DejaVu Sans")

RC: dict[str, Any] = {
    "font.family": "sans-serif",
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 8,
    "figure.titlesize": 10,
    "figure.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#d9d9d9",
    "grid.linewidth": 0.5,
    "axes.linewidth": 0.6,
    "lines.linewidth": 1.4,
    "lines.markersize": 4.5,
    "savefig.dpi": DPI,
    "figure.dpi": 100,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.03,
    "pdf.fonttype": 42,  # embed TrueType: text stays text in the PDF (journals ask for it)
    "ps.fonttype": 42,
    "svg.fonttype": "none",
}


def color(i: int) -> str:
    return OKABE_ITO[i % len(OKABE_ITO)]


def marker(i: int) -> str:
    return MARKERS[i % len(MARKERS)]


def rc_params() -> dict[str, Any]:
    """:data:`RC` plus the installed sans-serif fonts from :data:`SANS_SERIF`."""
    from matplotlib import font_manager

    installed = {font.name for font in font_manager.fontManager.ttflist}
    fonts = [name for name in SANS_SERIF if name in installed] or ["DejaVu Sans"]
    return {**RC, "font.sans-serif": fonts}


@contextlib.contextmanager
def style_context() -> Iterator[None]:
    """Apply the divtrace style inside the block only (global rcParams are left alone)."""
    import matplotlib

    params: Any = rc_params()  # matplotlib types rc keys as a Literal union
    with matplotlib.rc_context(params):
        yield


def new_figure(width_in: float, height_in: float) -> Figure:
    """A figure on the Agg canvas, created without pyplot (no global backend or figure state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure(
    figure: Figure, out_pdf: str | os.PathLike[str], out_png: str | os.PathLike[str]
) -> None:
    """Write ``figure`` as PDF and PNG, each atomically (temp file beside it, then ``os.replace``).

    Timestamps are left out of the file metadata so that rerunning gives identical files.
    """
    with io.atomic_path(out_pdf, ".pdf") as tmp:
        figure.savefig(tmp, format="pdf", metadata={"CreationDate": None, "ModDate": None})
        _check_written(tmp, out_pdf)
    with io.atomic_path(out_png, ".png") as tmp:
        figure.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
        _check_written(tmp, out_png)


def _check_written(tmp: Path, final: str | os.PathLike[str]) -> None:
    if tmp.stat().st_size == 0:
        raise OSError(f"{final}: matplotlib wrote an empty file")
