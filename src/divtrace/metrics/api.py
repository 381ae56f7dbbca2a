"""Diversity of a generations table, as rows of the DIVERSITY contract (DESIGN §3, §5).

Semantics of :func:`compute_diversity`:

* Groups: one per (model, task, cot) in the input; a file may hold several.
* Dropping: outputs with ``think_closed == False`` (a reasoning trace that never closed) and
  samples with ``finish_reason == "prompt_too_long"`` (never generated: the prompt did not fit the
  context) are left out; null ``think_closed`` means an output without a think block and is kept. Every row carries
  ``n_dropped``: per input, the outputs of that prompt dropped; across inputs, the prompts of the
  group left with no output at all (so for subset ``all``, n_outputs + n_dropped is the number of
  samples, respectively prompts).
* Subsets restrict the pool of outputs first, scopes then build sets from the pool:
  ``all`` = every kept output; ``correct`` (only when ``quality`` is given and has rows for the
  group) = kept outputs judged correct.
* Scopes: ``per_input`` = the outputs of one prompt (one row per metric and prompt);
  ``across_input`` = the first output (lowest ``sample``) of every prompt in the pool (one row
  per metric, prompt_id null).
* A set needs at least 1 output in subset ``all`` and at least 2 in subset ``correct``;
  smaller sets get no row. ``n_outputs`` is the size of the set. A single output has SBERT and
  NLI diversity 0 and Vendi score 1.

All texts that SBERT or Vendi need are embedded in one deduplicated batch, and all sentence pairs
that NLI needs are scored in one deduplicated batch (see :mod:`divtrace.metrics.nli`). NLI's random
choice of sentence positions is seeded per set by :func:`nli_seed`, from (model, task, cot, scope,
prompt_id) and the two texts of each pair, never by processing order; the subset is left out on
purpose, so a pair of outputs present in both ``all`` and ``correct`` is scored identically in both
(common random numbers for the comparison of subsets). Rows come out in a fixed order (group,
subset, scope, prompt, metric), independent of the input's row order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import pandas as pd

from divtrace import io
from divtrace.generation.backend import PROMPT_TOO_LONG
from divtrace.metrics.ead import DEFAULT_VOCAB_SIZE, ead_many
from divtrace.metrics.embeddings import DEFAULT_MODEL, Embedder, TextEmbedder
from divtrace.metrics.nli import DEFAULT_NLI_MODEL, HFNLIScorer, PairScorer, nli_many, set_seed
from divtrace.metrics.sbert import sbert_many
from divtrace.metrics.vendi import vendi_many

METRICS: tuple[str, ...] = ("ead", "sbert", "vendi", "nli")
NOT_YET_AVAILABLE: dict[str, str] = {}

GROUP_KEYS = ["model", "task", "cot"]
SAMPLE_KEYS = [*GROUP_KEYS, "prompt_id", "sample"]
REQUIRED_COLUMNS = [*SAMPLE_KEYS, "answer"]
# The diversity contract (DESIGN §3), plus how many outputs each row dropped.
OUTPUT_COLUMNS = [*io.DIVERSITY.names, "n_dropped"]
MIN_SET_SIZE = {"all": 1, "correct": 2}


def check_metrics(metrics: Sequence[str]) -> list[str]:
    """Validated, lower-cased, de-duplicated metric names (in the order given)."""
    if isinstance(metrics, str):
        metrics = [metrics]
    names: list[str] = []
    for metric in metrics:
        name = str(metric).strip().lower()
        if name in NOT_YET_AVAILABLE:
            raise ValueError(
                f"diversity metric {metric!r} is not available yet: {NOT_YET_AVAILABLE[name]}; "
                f"available: {', '.join(METRICS)}"
            )
        if name not in METRICS:
            raise ValueError(
                f"unknown diversity metric {metric!r}; available: {', '.join(METRICS)}"
            )
        if name not in names:
            names.append(name)
    if not names:
        raise ValueError("no diversity metric requested")
    return names


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} table lacks column(s) {missing}")
    for column in columns:
        nulls = int(frame[column].isna().sum())
        if nulls:
            raise ValueError(f"{what} column {column!r} has {nulls} null value(s)")


def _normalise_keys(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    out = frame.copy()
    for column in [*GROUP_KEYS, "prompt_id"]:
        out[column] = out[column].astype(str)
    try:
        out["sample"] = out["sample"].astype(np.int64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} column 'sample' must hold integers: {err}") from err
    duplicated = out.duplicated(SAMPLE_KEYS)
    if duplicated.any():
        first = out.loc[duplicated, SAMPLE_KEYS].iloc[0].to_dict()
        raise ValueError(
            f"{what} table has {int(duplicated.sum())} duplicated (model, task, cot, prompt_id, "
            f"sample) row(s), e.g. {first}"
        )
    return out


def _kept(frame: pd.DataFrame) -> np.ndarray:
    """True for outputs the metrics use: ``think_closed`` is True or null (or absent), and the
    sample was generated (``finish_reason`` is not ``prompt_too_long``)."""
    kept = np.ones(len(frame), dtype=bool)
    if "finish_reason" in frame.columns:
        kept &= (frame["finish_reason"] != PROMPT_TOO_LONG).to_numpy(dtype=bool)
    if "think_closed" not in frame.columns:
        return kept
    try:
        closed = frame["think_closed"].astype("boolean")
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"generations column 'think_closed' must be boolean or null: {err}"
        ) from err
    return kept & ~closed.eq(False).fillna(False).to_numpy(dtype=bool)


def _prepare(generations: pd.DataFrame) -> pd.DataFrame:
    _require_columns(generations, SAMPLE_KEYS, "generations")
    if "answer" not in generations.columns:
        raise ValueError("generations table lacks column(s) ['answer']")
    columns = [*REQUIRED_COLUMNS] + [
        c for c in ("think_closed", "finish_reason") if c in generations.columns
    ]
    frame = _normalise_keys(generations[columns], "generations")
    frame["kept"] = _kept(frame)
    bad = frame["kept"] & frame["answer"].isna()
    if bad.any():
        raise ValueError(f"generations column 'answer' has {int(bad.sum())} null value(s)")
    frame = frame.sort_values(SAMPLE_KEYS, kind="mergesort").reset_index(drop=True)
    frame["answer"] = frame["answer"].where(frame["kept"], "").astype(str)
    return frame


def _attach_quality(frame: pd.DataFrame, quality: pd.DataFrame) -> pd.Series:
    """Per generation: True/False when judged, NA for groups absent from ``quality``."""
    _require_columns(quality, [*SAMPLE_KEYS, "correct"], "quality")
    judged = _normalise_keys(quality[[*SAMPLE_KEYS, "correct"]], "quality")
    try:
        judged["correct"] = judged["correct"].astype(bool)
    except (TypeError, ValueError) as err:
        raise ValueError(f"quality column 'correct' must be boolean: {err}") from err
    merged = frame[[*SAMPLE_KEYS, "kept"]].merge(judged, on=SAMPLE_KEYS, how="left")
    judged_groups = set(map(tuple, judged[GROUP_KEYS].drop_duplicates().to_numpy().tolist()))
    in_judged = np.fromiter(
        (tuple(k) in judged_groups for k in merged[GROUP_KEYS].to_numpy().tolist()),
        dtype=bool,
        count=len(merged),
    )
    unjudged = in_judged & merged["kept"].to_numpy(dtype=bool) & merged["correct"].isna().to_numpy()
    if unjudged.any():
        first = merged.loc[unjudged, SAMPLE_KEYS].iloc[0].to_dict()
        raise ValueError(
            f"quality table has no row for {int(unjudged.sum())} generation(s), e.g. {first}"
        )
    judged_mask = pd.Series(in_judged, index=merged.index)
    return merged["correct"].astype("boolean").where(judged_mask)


def count_dropped(generations: pd.DataFrame) -> pd.DataFrame:
    """Per (model, task, cot, prompt_id): ``n_samples`` and ``n_dropped`` (unclosed think blocks
    and samples whose prompt did not fit)."""
    frame = _prepare(generations)
    frame["dropped"] = ~frame["kept"]
    counts = frame.groupby([*GROUP_KEYS, "prompt_id"], sort=True).agg(
        n_samples=("sample", "size"), n_dropped=("dropped", "sum")
    )
    return counts.reset_index().astype({"n_samples": np.int64, "n_dropped": np.int64})


def _build_sets(frame: pd.DataFrame, with_quality: bool) -> list[dict[str, Any]]:
    """Every (group, subset, scope, prompt) set: its keys, row indices and drop count."""
    sets: list[dict[str, Any]] = []
    kept = frame["kept"].to_numpy(dtype=bool)
    correct = frame["correct"].fillna(False).to_numpy(dtype=bool) if with_quality else None
    judged = frame["correct"].notna().to_numpy() if with_quality else None
    for key, rows in frame.groupby(GROUP_KEYS, sort=True).indices.items():
        model, task, cot = cast(tuple[str, str, str], key)
        rows = np.sort(rows)
        prompt_ids = frame["prompt_id"].to_numpy()[rows]
        prompts, prompt_codes = np.unique(prompt_ids, return_inverse=True)
        dropped = np.bincount(prompt_codes, weights=~kept[rows], minlength=len(prompts))
        subsets = ["all"]
        if judged is not None and judged[rows].any():
            subsets.append("correct")
        for subset in subsets:
            mask = kept[rows].copy()
            if subset == "correct":
                assert correct is not None
                mask &= correct[rows]
            pool = rows[mask]
            pool_codes = prompt_codes[mask]
            minimum = MIN_SET_SIZE[subset]
            base = {"model": model, "task": task, "cot": cot, "subset": subset}
            # Rows are sorted by (prompt_id, sample) inside a group, so runs of equal codes are
            # the prompts' outputs in sample order.
            starts = np.r_[0, np.flatnonzero(np.diff(pool_codes)) + 1] if pool.size else pool
            for start, members in zip(starts, np.split(pool, starts[1:]), strict=False):
                code = pool_codes[start]
                if members.size >= minimum:
                    sets.append(
                        {
                            **base,
                            "scope": "per_input",
                            "prompt_id": str(prompts[code]),
                            "rows": members,
                            "n_dropped": int(dropped[code]),
                        }
                    )
            firsts = pool[starts]
            if firsts.size >= minimum:
                n_empty = int(np.sum(dropped == np.bincount(prompt_codes, minlength=len(prompts))))
                sets.append(
                    {
                        **base,
                        "scope": "across_input",
                        "prompt_id": None,
                        "rows": firsts,
                        "n_dropped": n_empty,
                    }
                )
    return sets


def nli_seed(s: dict[str, Any]) -> int:
    """The NLI seed of a set: from its (model, task, cot, scope, prompt_id), not its subset."""
    return set_seed(s["model"], s["task"], s["cot"], s["scope"], s["prompt_id"])


def compute_diversity(
    generations: pd.DataFrame,
    metrics: Sequence[str],
    *,
    sbert_model: str = DEFAULT_MODEL,
    ead_vocab_size: int = DEFAULT_VOCAB_SIZE,
    quality: pd.DataFrame | None = None,
    embedder: TextEmbedder | None = None,
    nli_model: str = DEFAULT_NLI_MODEL,
    nli_scorer: PairScorer | None = None,
    nli_stats: dict[str, int] | None = None,
    device: str | None = None,
) -> pd.DataFrame:
    """Diversity rows (DIVERSITY contract plus ``n_dropped``) for a generations table.

    See the module docstring for the semantics. ``device`` (None/"auto": CUDA when available)
    places the default SBERT and NLI models. ``embedder`` (anything with
    ``embed(texts) -> ndarray``) overrides the default :class:`Embedder` built from
    ``sbert_model``; it is only used when "sbert" or "vendi" is requested. Likewise
    ``nli_scorer`` (anything with ``score(premises, hypotheses) -> (n, 2) ndarray``) overrides
    the default :class:`~divtrace.metrics.nli.HFNLIScorer` built from ``nli_model`` (a local
    path or a hub name); it is only used when "nli" is requested. ``nli_stats``, when given, is
    updated with the counts of :func:`~divtrace.metrics.nli.nli_many`.
    """
    names = check_metrics(metrics)
    frame = _prepare(generations)
    with_quality = quality is not None
    if quality is not None:
        frame["correct"] = _attach_quality(frame, quality).array
    sets = _build_sets(frame, with_quality)
    if not sets:
        return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in OUTPUT_COLUMNS})

    answers = frame["answer"].to_numpy(dtype=object)
    values: dict[str, np.ndarray] = {}
    if "ead" in names:
        values["ead"] = ead_many([answers[s["rows"]].tolist() for s in sets], ead_vocab_size)
    if "sbert" in names or "vendi" in names:
        used = np.unique(np.concatenate([s["rows"] for s in sets]))
        codes = np.full(len(frame), -1, dtype=np.int64)
        used_codes, uniques = pd.factorize(answers[used])
        codes[used] = used_codes
        if embedder is None:
            embedder = Embedder(sbert_model, device=device, show_progress_bar=True)
        emb = np.asarray(embedder.embed([str(t) for t in uniques]), dtype=np.float64)
        if emb.ndim != 2 or emb.shape[0] != len(uniques):
            raise ValueError(
                f"embedder returned shape {emb.shape} for {len(uniques)} texts; expected (n, dim)"
            )
        matrices = [emb[codes[s["rows"]]] for s in sets]
        if "sbert" in names:
            values["sbert"] = sbert_many(matrices)
        if "vendi" in names:
            values["vendi"] = vendi_many(matrices)
    if "nli" in names:
        if nli_scorer is None:
            nli_scorer = HFNLIScorer(nli_model, device=device)
        values["nli"] = nli_many(
            [answers[s["rows"]].tolist() for s in sets],
            [nli_seed(s) for s in sets],
            nli_scorer,
            stats=nli_stats,
        )

    records: list[dict[str, Any]] = []
    for i, s in enumerate(sets):
        for name in names:
            records.append(
                {
                    "model": s["model"],
                    "task": s["task"],
                    "cot": s["cot"],
                    "scope": s["scope"],
                    "subset": s["subset"],
                    "prompt_id": s["prompt_id"],
                    "metric": name,
                    "value": float(values[name][i]),
                    "n_outputs": len(s["rows"]),
                    "n_dropped": s["n_dropped"],
                }
            )
    out = pd.DataFrame.from_records(records, columns=OUTPUT_COLUMNS)
    out["prompt_id"] = pd.Series([r["prompt_id"] for r in records], dtype=object)
    return out.astype({"value": np.float64, "n_outputs": np.int64, "n_dropped": np.int64})


def _dtype(column: str) -> Any:
    if column == "value":
        return np.float64
    if column in ("n_outputs", "n_dropped"):
        return np.int64
    return object
