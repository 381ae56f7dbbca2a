"""Paper figures (docs/design.md §7): one function per figure, each reading tables, never raw generations.

Entry point: :func:`draw_figures` writes every figure of :data:`FIGURE_NAMES` as PDF and PNG.
Importing this package is cheap; matplotlib is imported by the functions that draw.
"""

from divtrace.figures.cot import plot_cot_on_off
from divtrace.figures.decomposition import plot_decomposition
from divtrace.figures.draw import FIGURE_NAMES, FIGURES, draw_figures, figure_paths
from divtrace.figures.quality import plot_quality_by_stage
from divtrace.figures.quality_filtered import plot_quality_filtered_vendi
from divtrace.figures.retention import plot_retention_heatmap
from divtrace.figures.stages import plot_stage_attribution
from divtrace.figures.trajectories import plot_lineage_trajectories

__all__ = [
    "FIGURES",
    "FIGURE_NAMES",
    "draw_figures",
    "figure_paths",
    "plot_cot_on_off",
    "plot_decomposition",
    "plot_lineage_trajectories",
    "plot_quality_by_stage",
    "plot_quality_filtered_vendi",
    "plot_retention_heatmap",
    "plot_stage_attribution",
]
