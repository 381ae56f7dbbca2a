"""Paper figures (DESIGN §7): one function per figure, each reading tables, never raw generations.

Importing this package is cheap; matplotlib is imported by the functions that draw.
"""

from divtrace.figures.trajectories import plot_lineage_trajectories

__all__ = ["plot_lineage_trajectories"]
