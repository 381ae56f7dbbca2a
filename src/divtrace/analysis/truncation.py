"""What the budgets cut: one row per checkpoint, task and CoT mode, from the generations.

Columns (after the lineage columns of :data:`~divtrace.analysis.common.LINEAGE_COLUMNS`):

``task``, ``cot``
    the run.
``n_prompts``, ``n_samples``
    prompts and samples of the run, as sampled.
``n_prompt_too_long``
    prompts whose text did not fit the model's context (their samples were never generated:
    ``finish_reason`` ``prompt_too_long``); left out of every metric.
``length_share``
    of the generated samples, the share that ran to the token budget (``finish_reason``
    ``length``): their text is cut.
``unclosed_share``
    of the generated samples, the share whose think block never closed (``think_closed`` False:
    the reasoning ran out of budget before the answer); left out of the metrics. 0 for models
    that write no think block.
``n_short_prompts``, ``short_prompt_share``
    prompts left with fewer than 2 usable outputs (generated, and not an unclosed trace), and
    their share of the run's prompts: such a prompt has no per-input diversity.

Shares are null where their denominator is 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from divtrace.analysis.common import LINEAGE_COLUMNS, finish, lineage_columns
from divtrace.generation.backend import LENGTH, PROMPT_TOO_LONG
from divtrace.lineage import Lineage

#: The generation columns the table reads (a projection: never the texts).
INPUT_COLUMNS = ("model", "task", "cot", "prompt_id", "sample", "finish_reason", "think_closed")
#: A prompt needs this many usable outputs to have a per-input diversity.
MIN_USABLE = 2

COLUMNS = (
    *LINEAGE_COLUMNS,
    "task",
    "cot",
    "n_prompts",
    "n_samples",
    "n_prompt_too_long",
    "length_share",
    "unclosed_share",
    "n_short_prompts",
    "short_prompt_share",
)


def _share(count: int, total: int) -> float:
    return count / total if total else np.nan


def truncation_table(generations: pd.DataFrame, lineage: Lineage) -> pd.DataFrame:
    """The truncation table (see the module docstring) of the generations of many runs."""
    missing = [c for c in INPUT_COLUMNS if c not in generations.columns]
    if missing:
        raise ValueError(f"generations table lacks column(s) {missing}")
    frame = generations[list(INPUT_COLUMNS)].copy()
    unknown = sorted(set(frame["model"]) - set(lineage.checkpoints))
    if unknown:
        raise ValueError(f"generations of model(s) {unknown} not in the lineage")
    too_long = (frame["finish_reason"] == PROMPT_TOO_LONG).to_numpy()
    unclosed = frame["think_closed"].astype("boolean").eq(False).fillna(False).to_numpy(bool)
    frame["generated"] = ~too_long
    frame["length"] = (frame["finish_reason"] == LENGTH).to_numpy() & ~too_long
    frame["unclosed"] = unclosed & ~too_long
    frame["usable"] = ~too_long & ~unclosed
    frame["too_long"] = too_long
    rows: list[dict[str, object]] = []
    for (model, task, cot), group in frame.groupby(["model", "task", "cot"], sort=True):
        prompts = group.groupby("prompt_id", sort=True).agg(
            usable=("usable", "sum"), too_long=("too_long", "all")
        )
        generated = int(group["generated"].sum())
        n_prompts = len(prompts)
        short = int((prompts["usable"] < MIN_USABLE).sum())
        rows.append(
            {
                "model": model,
                **lineage_columns(lineage, str(model)),
                "task": task,
                "cot": cot,
                "n_prompts": n_prompts,
                "n_samples": len(group),
                "n_prompt_too_long": int(prompts["too_long"].sum()),
                "length_share": _share(int(group["length"].sum()), generated),
                "unclosed_share": _share(int(group["unclosed"].sum()), generated),
                "n_short_prompts": short,
                "short_prompt_share": _share(short, n_prompts),
            }
        )
    return finish(rows, COLUMNS, lineage, ("task", "cot"))
