"""Diversity of a generations table, as rows of the DIVERSITY contract (docs/design.md §3, §5).

Semantics of :func:`compute_diversity`:

* Groups: one per (model, task, cot) in the input; a file may hold several.
* Dropping: outputs with ``think_closed == False`` (a reasoning trace that never closed) and
  samples with ``finish_reason == "prompt_too_long"`` (never generated: the prompt did not fit the
  context) are left out; null ``think_closed`` means an output without a think block and is
  kept. Every row carries ``n_dropped``: per input, the outputs of that prompt dropped; across
  inputs, the prompts whose sample 0 was dropped (so for subset ``all``, n_outputs + n_dropped
  is the number of samples, respectively prompts).
* Subsets restrict the pool of outputs first, scopes then build sets from the pool:
  ``all`` = every kept output; ``correct`` (only when ``quality`` is given and has rows for the
  group) = kept outputs judged correct.
* Scopes: ``per_input`` = the outputs of one prompt (one row per metric and prompt, for every
  prompt of the group); ``across_input`` = each prompt's sample 0 (its lowest ``sample``), the
  paper's convention: a prompt whose sample 0 is not in the pool is left out of the set (and
  counted), never replaced by a later sample (one row per metric, prompt_id null).
* A set needs at least :data:`~divtrace.names.MIN_OUTPUTS` (2) outputs for any metric: one output
  has no spread to measure. A smaller set still has its rows, with a null ``value`` and its
  ``n_outputs`` (0 or 1), so the analysis counts the prompts left out instead of averaging a
  collapse that never happened. NLI's value is also null for a set whose every pair of outputs
  has an output without a sentence (:mod:`divtrace.metrics.nli`).

All texts that SBERT or Vendi need are embedded in one deduplicated batch, and all sentence pairs
that NLI needs are scored in one deduplicated batch (see :mod:`divtrace.metrics.nli`). NLI's random
choice of sentence positions is seeded per set by :func:`nli_seed`, from (model, task, cot, scope,
prompt_id) and the two texts of each pair, never by processing order; the subset is left out on
purpose, so a pair of outputs present in both ``all`` and ``correct`` is scored identically in both
(common random numbers for the comparison of subsets). Rows come out in a fixed order (group,
subset, scope, prompt, metric), independent of the input's row order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from divtrace import io
from divtrace.errors import ContractError, MetricError
from divtrace.generation.backend import PROMPT_TOO_LONG
from divtrace.metrics import classes as class_metrics
from divtrace.metrics import code as code_metrics
from divtrace.metrics import fixed_k
from divtrace.metrics.ead import DEFAULT_N_MAX, DEFAULT_TOKENIZE, DEFAULT_VOCAB_SIZE, ead_many
from divtrace.metrics.ead import tokenize as ead_tokens
from divtrace.metrics.embeddings import DEFAULT_MODEL, Embedder, TextEmbedder, normalize_rows
from divtrace.metrics.nli import DEFAULT_NLI_MODEL, HFNLIScorer, PairScorer, nli_many, set_seed
from divtrace.metrics.sbert import sbert_many
from divtrace.metrics.vendi import vendi_many
from divtrace.names import (
    BEHAVIOUR_METRICS,
    CLASS_METRICS,
    CODE_EMBEDDING_FAMILIES,
    CODE_EMBEDDING_METRICS,
    CODE_FAMILIES,
    CODE_METRICS,
    EMBEDDING_METRICS,
    MIN_OUTPUTS,
    VENDI_ORDERS,
    metric_applies,
)

METRICS: tuple[str, ...] = (
    "ead",
    "sbert",
    "vendi",
    "nli",
    *VENDI_ORDERS,
    *CODE_METRICS,
    *CODE_EMBEDDING_METRICS,
    *CLASS_METRICS,
    *BEHAVIOUR_METRICS,
)
#: Metrics with a value at a fixed set size k (``k_grid``); NLI's pooled mean weighs each output
#: pair by its sentence pairs, so it has no closed form at k and is left out.
K_METRICS: frozenset[str] = frozenset(
    {
        "ead",
        "sbert",
        "vendi",
        *VENDI_ORDERS,
        "ast_distinct",
        "ast_pairwise",
        "ast_struct_pairwise",
        "ast_parseable",
        "code_sbert",
        "code_vendi",
        *CLASS_METRICS,
        *BEHAVIOUR_METRICS,
    }
)
#: The paper's code encoder (PAPER.md §8.1) and the tokens it saw.
DEFAULT_CODE_MODEL = "microsoft/unixcoder-base"
DEFAULT_CODE_MAX_LENGTH = 512
_ORDER_OF: dict[str, float] = {"vendi": 1.0, **VENDI_ORDERS}
NOT_YET_AVAILABLE: dict[str, str] = {}

GROUP_KEYS = ["model", "task", "cot"]
SAMPLE_KEYS = [*GROUP_KEYS, "prompt_id", "sample"]
REQUIRED_COLUMNS = [*SAMPLE_KEYS, "answer"]
#: Every generations column :func:`compute_diversity` reads (``divtrace diversity`` reads only
#: these); the last two are optional.
INPUT_COLUMNS = [*REQUIRED_COLUMNS, "think_closed", "finish_reason"]
#: Every quality column it reads.
QUALITY_COLUMNS = [*SAMPLE_KEYS, "correct"]
# The diversity contract (docs/design.md §3), plus how many outputs each row dropped.
OUTPUT_COLUMNS = [*io.DIVERSITY.names, "n_dropped"]
#: Columns of the rows at a fixed set size (``k_grid``): ``k`` (null for the whole set) and
#: ``se``, the Monte Carlo standard error (null where the value is exact).
K_COLUMNS = ["k", "se"]
OUTPUT_SCHEMA: dict[str, pl.DataType] = {
    **{name: pl.String() for name in OUTPUT_COLUMNS},
    "value": pl.Float64(),
    "n_outputs": pl.Int64(),
    "n_dropped": pl.Int64(),
}
K_SCHEMA: dict[str, pl.DataType] = {**OUTPUT_SCHEMA, "k": pl.Int64(), "se": pl.Float64()}


applies = metric_applies


def check_metrics(metrics: Sequence[str]) -> list[str]:
    """Validated, lower-cased, de-duplicated metric names (in the order given)."""
    if isinstance(metrics, str):
        metrics = [metrics]
    names: list[str] = []
    for metric in metrics:
        name = str(metric).strip().lower()
        if name in NOT_YET_AVAILABLE:
            raise MetricError(
                f"diversity metric {metric!r} is not available yet: {NOT_YET_AVAILABLE[name]}; "
                f"available: {', '.join(METRICS)}"
            )
        if name not in METRICS:
            raise MetricError(
                f"unknown diversity metric {metric!r}; available: {', '.join(METRICS)}"
            )
        if name not in names:
            names.append(name)
    if not names:
        raise MetricError("no diversity metric requested")
    return names


def _require_columns(frame: pl.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ContractError(f"{what} table lacks column(s) {missing}")
    nulls = frame.select(pl.col(c).null_count() for c in columns).row(0)
    for column, count in zip(columns, nulls, strict=True):
        if count:
            raise ContractError(f"{what} column {column!r} has {count} null value(s)")


def _normalise_keys(frame: pl.DataFrame, what: str) -> pl.DataFrame:
    """Keys as strings and ``sample`` as int64; a repeated (model, task, cot, prompt_id, sample)
    is an error."""
    out = frame.with_columns(pl.col([*GROUP_KEYS, "prompt_id"]).cast(pl.String))
    try:
        out = out.with_columns(pl.col("sample").cast(pl.Int64))
    except pl.exceptions.PolarsError as err:
        raise ContractError(f"{what} column 'sample' must hold integers: {err}") from err
    repeated = out.filter(~pl.struct(SAMPLE_KEYS).is_first_distinct())
    if repeated.height:
        first = repeated.select(SAMPLE_KEYS).row(0, named=True)
        raise ContractError(
            f"{what} table has {repeated.height} duplicated (model, task, cot, prompt_id, "
            f"sample) row(s), e.g. {first}"
        )
    return out


def _kept(frame: pl.DataFrame) -> pl.Series:
    """True for outputs the metrics use: ``think_closed`` is True or null (or absent), and the
    sample was generated (``finish_reason`` is not ``prompt_too_long``)."""
    kept = pl.lit(True)
    if "finish_reason" in frame.columns:
        kept = kept & pl.col("finish_reason").cast(pl.String).ne_missing(PROMPT_TOO_LONG)
    if "think_closed" in frame.columns:
        try:
            closed = frame.get_column("think_closed").cast(pl.Boolean)
        except pl.exceptions.PolarsError as err:
            raise ContractError(
                f"generations column 'think_closed' must be boolean or null: {err}"
            ) from err
        frame = frame.with_columns(closed)
        kept = kept & ~pl.col("think_closed").eq_missing(False)
    # with_columns broadcasts the literal when neither optional column is present
    return frame.with_columns(kept.alias("kept")).get_column("kept")


def _prepare(generations: pl.DataFrame) -> pl.DataFrame:
    """The key, answer and drop columns, keys normalised, sorted by (model, task, cot,
    prompt_id, sample), with ``kept`` and the answers of dropped outputs blanked."""
    _require_columns(generations, SAMPLE_KEYS, "generations")
    if "answer" not in generations.columns:
        raise ContractError("generations table lacks column(s) ['answer']")
    columns = [c for c in INPUT_COLUMNS if c in generations.columns]
    frame = _normalise_keys(generations.select(columns), "generations")
    frame = frame.with_columns(_kept(frame))
    bad = frame.filter(pl.col("kept") & pl.col("answer").is_null()).height
    if bad:
        raise ContractError(f"generations column 'answer' has {bad} null value(s)")
    return frame.sort(SAMPLE_KEYS, maintain_order=True).with_columns(
        answer=pl.when(pl.col("kept")).then(pl.col("answer").cast(pl.String)).otherwise(pl.lit(""))
    )


def _attach_quality(frame: pl.DataFrame, quality: pl.DataFrame) -> pl.Series:
    """Per generation (in ``frame``'s order): True/False when judged, null for groups absent
    from ``quality``."""
    _require_columns(quality, QUALITY_COLUMNS, "quality")
    judged = _normalise_keys(quality.select(QUALITY_COLUMNS), "quality")
    try:
        judged = judged.with_columns(pl.col("correct").cast(pl.Boolean))
    except pl.exceptions.PolarsError as err:
        raise ContractError(f"quality column 'correct' must be boolean: {err}") from err
    groups = judged.select(GROUP_KEYS).unique().with_columns(_judged=pl.lit(True))
    merged = (
        frame.select([*SAMPLE_KEYS, "kept"])
        .join(judged, on=SAMPLE_KEYS, how="left", maintain_order="left")
        .join(groups, on=GROUP_KEYS, how="left", maintain_order="left")
        .with_columns(pl.col("_judged").fill_null(False))
    )
    unjudged = merged.filter(pl.col("_judged") & pl.col("kept") & pl.col("correct").is_null())
    if unjudged.height:
        first = unjudged.select(SAMPLE_KEYS).row(0, named=True)
        raise ContractError(
            f"quality table has no row for {unjudged.height} generation(s), e.g. {first}"
        )
    # Only judged groups have quality rows, so ``correct`` is null outside them.
    return merged.get_column("correct")


def _attach_classes(frame: pl.DataFrame, quality: pl.DataFrame) -> pl.Series:
    """Per generation (in ``frame``'s order): its answer-class key, null where none."""
    column = class_metrics.CLASS
    keyed = _normalise_keys(quality.select([*SAMPLE_KEYS, column]), "quality").with_columns(
        pl.col(column).cast(pl.String)
    )
    merged = frame.select(SAMPLE_KEYS).join(
        keyed, on=SAMPLE_KEYS, how="left", maintain_order="left"
    )
    return merged.get_column(column)


def count_dropped(generations: pl.DataFrame) -> pl.DataFrame:
    """Per (model, task, cot, prompt_id), sorted: ``n_samples`` and ``n_dropped`` (unclosed
    think blocks and samples whose prompt did not fit)."""
    keys = [*GROUP_KEYS, "prompt_id"]
    return (
        _prepare(generations)
        .group_by(keys)
        .agg(
            n_samples=pl.len().cast(pl.Int64),
            n_dropped=(~pl.col("kept")).sum().cast(pl.Int64),
        )
        .sort(keys)
    )


def _build_sets(frame: pl.DataFrame, with_quality: bool) -> list[dict[str, Any]]:
    """Every (group, subset, scope, prompt) set: its keys, row indices and drop count.

    ``frame`` is sorted by (model, task, cot, prompt_id, sample) (:func:`_prepare`), so a group
    is a run of rows and its prompts' outputs are runs inside it, in sample order. Every prompt
    of a group has a per-input set in every subset, and every group an across-input set, however
    few outputs they hold (a set smaller than :data:`MIN_OUTPUTS` gets no value, but its row
    counts what is missing).
    """
    sets: list[dict[str, Any]] = []
    kept = frame.get_column("kept").to_numpy()
    correct = frame.get_column("correct").fill_null(False).to_numpy() if with_quality else None
    judged = frame.get_column("correct").is_not_null().to_numpy() if with_quality else None
    prompt_id = np.asarray(frame.get_column("prompt_id").to_list(), dtype=object)
    bounds = (
        frame.with_row_index("_row")
        .group_by(GROUP_KEYS, maintain_order=True)
        .agg(start=pl.col("_row").first(), stop=pl.col("_row").last() + 1)
    )
    for model, task, cot, start, stop in bounds.iter_rows():
        rows = np.arange(start, stop, dtype=np.int64)
        prompts, prompt_codes = np.unique(prompt_id[rows], return_inverse=True)
        prompt_codes = prompt_codes.reshape(-1)
        dropped = np.bincount(prompt_codes, weights=~kept[rows], minlength=len(prompts))
        # Each prompt's sample 0 (its lowest sample index): the rows are in sample order.
        first_rows = np.r_[0, np.flatnonzero(np.diff(prompt_codes)) + 1]
        subsets = ["all"]
        if judged is not None and judged[rows].any():
            subsets.append("correct")
        for subset in subsets:
            mask = kept[rows].copy()
            if subset == "correct":
                assert correct is not None
                mask &= correct[rows]
            base = {"model": model, "task": task, "cot": cot, "subset": subset}
            for code, pid in enumerate(prompts):
                sets.append(
                    {
                        **base,
                        "scope": "per_input",
                        "prompt_id": str(pid),
                        "rows": rows[mask & (prompt_codes == code)],
                        "n_dropped": int(dropped[code]),
                    }
                )
            # Across inputs: every prompt's sample 0, never a later sample in its place.
            firsts = first_rows[mask[first_rows]]
            sets.append(
                {
                    **base,
                    "scope": "across_input",
                    "prompt_id": None,
                    "rows": rows[firsts],
                    "n_dropped": int((~kept[rows][first_rows]).sum()),
                }
            )
    return sets


def _factorize(texts: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Codes of ``texts`` and the distinct texts, in order of first appearance."""
    index: dict[str, int] = {}
    codes = np.fromiter(
        (index.setdefault(t, len(index)) for t in texts), dtype=np.int64, count=len(texts)
    )
    return codes, list(index)


def nli_seed(s: dict[str, Any]) -> int:
    """The NLI seed of a set: from its (model, task, cot, scope, prompt_id), not its subset."""
    return set_seed(s["model"], s["task"], s["cot"], s["scope"], s["prompt_id"])


def compute_diversity(
    generations: pl.DataFrame,
    metrics: Sequence[str],
    *,
    sbert_model: str = DEFAULT_MODEL,
    ead_vocab_size: int = DEFAULT_VOCAB_SIZE,
    ead_tokenize: str = DEFAULT_TOKENIZE,
    quality: pl.DataFrame | None = None,
    embedder: TextEmbedder | None = None,
    nli_model: str = DEFAULT_NLI_MODEL,
    nli_scorer: PairScorer | None = None,
    nli_max_length: int = HFNLIScorer.DEFAULT_MAX_LENGTH,
    nli_stats: dict[str, int] | None = None,
    device: str | None = None,
    families: Mapping[str, str] | None = None,
    k_grid: Sequence[int] = (),
    code_model: str = DEFAULT_CODE_MODEL,
    code_max_length: int = DEFAULT_CODE_MAX_LENGTH,
    code_embedder: TextEmbedder | None = None,
) -> pl.DataFrame:
    """Diversity rows (DIVERSITY contract plus ``n_dropped``) for a generations table.

    See the module docstring for the semantics. ``device`` (None/"auto": CUDA when available)
    places the default SBERT and NLI models. ``embedder`` (anything with
    ``embed(texts) -> ndarray``) overrides the default :class:`Embedder` built from
    ``sbert_model``; it is only used when an embedding metric (SBERT, Vendi of any order) is
    requested. Likewise
    ``nli_scorer`` (anything with ``score(premises, hypotheses) -> (n, 2) ndarray``) overrides
    the default :class:`~divtrace.metrics.nli.HFNLIScorer` built from ``nli_model`` (a local
    path or a hub name), which truncates each sentence pair to ``nli_max_length`` tokens; it is
    only used when "nli" is requested. ``nli_stats``, when given, is
    updated with the counts of :func:`~divtrace.metrics.nli.nli_many`.

    ``code_sbert`` and ``code_vendi`` embed the extracted code of each output
    (:func:`divtrace.metrics.code.extract_code`; blank code left out of the set) with
    ``code_embedder``, by default an :class:`Embedder` of ``code_model`` truncating to
    ``code_max_length`` tokens (sentence-transformers adds mean pooling to a plain encoder such as
    UniXcoder, as the paper's script relied on).

    ``families`` maps a task to its family (a task not in it is the family of its name): the code
    metrics are computed only for code tasks (:func:`applies`) and have no rows elsewhere.
    ``k_grid``: set sizes k; each per-input set then also gets, for each metric of
    :data:`K_METRICS` and each k, a row with the metric's mean over the set's k-subsets
    (:mod:`divtrace.metrics.fixed_k`; null where the set has fewer than k usable outputs), and
    the table the columns :data:`K_COLUMNS` (``k`` null on the whole-set rows).
    """
    names = check_metrics(metrics)
    grid = fixed_k.parse_k_grid(k_grid) if len(k_grid) else []
    frame = _prepare(generations)
    with_quality = quality is not None
    if quality is not None:
        frame = frame.with_columns(_attach_quality(frame, quality).alias("correct"))
    # the behaviours are the answer classes of code: the same keys (answer_class), counted alike
    class_names = [n for n in names if n in CLASS_METRICS or n in BEHAVIOUR_METRICS]
    if class_names and quality is not None and class_metrics.CLASS in quality.columns:
        frame = frame.with_columns(_attach_classes(frame, quality))
    sets = _build_sets(frame, with_quality)
    schema = K_SCHEMA if grid else OUTPUT_SCHEMA
    if not sets:
        return pl.DataFrame(schema=schema)

    family_of = dict(families or {})
    answers = np.asarray(frame.get_column("answer").to_list(), dtype=object)
    # Only sets of at least MIN_OUTPUTS outputs are scored; the others keep a missing value.
    scored = [i for i, s in enumerate(sets) if len(s["rows"]) >= MIN_OUTPUTS]
    scored_sets = [sets[i] for i in scored]
    values: dict[str, np.ndarray] = {}
    computed: dict[str, np.ndarray] = {}
    # (set index, metric, k) -> (value, se): the rows at fixed k
    at_k: dict[tuple[int, str, int], tuple[float, float]] = {}
    if scored_sets and "ead" in names:
        computed["ead"] = ead_many(
            [answers[s["rows"]].tolist() for s in scored_sets],
            ead_vocab_size,
            tokenize_mode=ead_tokenize,
        )
    matrices: list[np.ndarray] = []
    if scored_sets and EMBEDDING_METRICS & set(names):
        used = np.unique(np.concatenate([s["rows"] for s in scored_sets]))
        codes = np.full(len(frame), -1, dtype=np.int64)
        used_codes, uniques = _factorize(answers[used].tolist())
        codes[used] = used_codes
        if embedder is None:
            embedder = Embedder(sbert_model, device=device, show_progress_bar=True)
        emb = np.asarray(embedder.embed(uniques), dtype=np.float64)
        if emb.ndim != 2 or emb.shape[0] != len(uniques):
            raise ValueError(
                f"embedder returned shape {emb.shape} for {len(uniques)} texts; expected (n, dim)"
            )
        matrices = [emb[codes[s["rows"]]] for s in scored_sets]
        if "sbert" in names:
            computed["sbert"] = sbert_many(matrices)
        if "vendi" in names:
            computed["vendi"] = vendi_many(matrices)
        orders = [n for n in names if n in VENDI_ORDERS]
        if orders:
            per_set = np.stack(
                [
                    fixed_k.vendi_orders(normalize_rows(m), [VENDI_ORDERS[n] for n in orders])
                    for m in matrices
                ]
            )
            for j, name in enumerate(orders):
                computed[name] = per_set[:, j]
    if scored_sets and "nli" in names:
        if nli_scorer is None:
            nli_scorer = HFNLIScorer(nli_model, device=device, max_length=nli_max_length)
        computed["nli"] = nli_many(
            [answers[s["rows"]].tolist() for s in scored_sets],
            [nli_seed(s) for s in scored_sets],
            nli_scorer,
            stats=nli_stats,
        )
    code_embedding = [n for n in names if n in CODE_EMBEDDING_METRICS]
    # per scored set of a code task: the embeddings of its extracted programs (one row each)
    code_matrices: dict[int, np.ndarray] = {}
    code_embedding_sets = [
        j
        for j, s in enumerate(scored_sets)
        if code_embedding and family_of.get(s["task"], s["task"]) in CODE_EMBEDDING_FAMILIES
    ]
    if code_embedding_sets:
        for name in code_embedding:
            computed[name] = np.full(len(scored_sets), np.nan)
        codes_of = {
            j: [
                c
                for c in (code_metrics.extract_code(a) for a in answers[scored_sets[j]["rows"]])
                if c.strip()
            ]
            for j in code_embedding_sets
        }
        distinct_code = list(dict.fromkeys(c for cs in codes_of.values() for c in cs))
        if code_embedder is None:
            code_embedder = Embedder(
                code_model, device=device, show_progress_bar=True, max_seq_length=code_max_length
            )
        vectors = np.asarray(code_embedder.embed(distinct_code), dtype=np.float64)
        row_of = {c: i for i, c in enumerate(distinct_code)}
        for j, cs in codes_of.items():
            if len(cs) < MIN_OUTPUTS:
                continue
            matrix = vectors[[row_of[c] for c in cs]]
            code_matrices[j] = matrix
            if "code_sbert" in computed:
                computed["code_sbert"][j] = sbert_many([matrix])[0]
            if "code_vendi" in computed:
                computed["code_vendi"][j] = vendi_many([matrix])[0]
    code_names = [n for n in names if n in CODE_METRICS]
    code_sets = [
        j
        for j, s in enumerate(scored_sets)
        if code_names and family_of.get(s["task"], s["task"]) in CODE_FAMILIES
    ]
    progs: dict[int, code_metrics.Programs] = {}
    if code_sets:
        for name in code_names:
            computed[name] = np.full(len(scored_sets), np.nan)
        for j in code_sets:
            progs[j] = code_metrics.programs(answers[scored_sets[j]["rows"]].tolist())
            p = progs[j]
            for name, value in (
                ("ast_distinct", code_metrics.distinct(p.plain)),
                ("ast_pairwise", code_metrics.mean_pairwise(p.plain)),
                ("ast_struct_pairwise", code_metrics.mean_pairwise(p.structure)),
                ("ast_parseable", p.parsed / p.n_outputs),
            ):
                if name in computed:
                    computed[name][j] = value
    # Answer classes: per input, for the families that have them, where the quality table
    # gave each sample's class (:mod:`divtrace.metrics.classes`).
    class_sets: dict[int, tuple[list[str], list[bool] | None]] = {}
    if class_names and class_metrics.CLASS in frame.columns:
        keys_col = np.asarray(frame.get_column(class_metrics.CLASS).to_list(), dtype=object)
        judged = frame.get_column("correct").to_list()
        for name in class_names:
            computed[name] = np.full(len(scored_sets), np.nan)
        for j, s in enumerate(scored_sets):
            family = family_of.get(s["task"], s["task"])
            rows = s["rows"]
            if not any(metric_applies(n, family, s["scope"]) for n in class_names):
                continue
            found = keys_col[rows].tolist()
            if any(key is None for key in found):
                continue
            right = [judged[r] for r in rows]
            correct = None if any(c is None for c in right) else [bool(c) for c in right]
            class_sets[j] = (found, correct)
            for name, value in class_metrics.class_values(found, correct).items():
                if name in computed:
                    computed[name][j] = value
    for name in names:
        values[name] = np.full(len(sets), np.nan)
        if name in computed:
            values[name][scored] = computed[name]

    if grid:
        k_names = [n for n in names if n in K_METRICS]
        for j, s in enumerate(scored_sets):
            if s["scope"] != "per_input":
                continue
            i = scored[j]
            texts = answers[s["rows"]].tolist()
            grams = (
                fixed_k.ngram_presence([ead_tokens(t, ead_tokenize) for t in texts], DEFAULT_N_MAX)
                if "ead" in k_names
                else []
            )
            pooled = (
                fixed_k.PooledItems(*code_metrics.presence(progs[j].plain))
                if j in progs and "ast_distinct" in k_names
                else None
            )
            for k in grid:
                seed = set_seed(s["model"], s["task"], s["cot"], s["subset"], s["prompt_id"], k)
                n = len(texts)
                if "ead" in k_names and k <= n:
                    at_k[(i, "ead", k)] = fixed_k.ead_at_k(grams, k, ead_vocab_size, seed)
                if "sbert" in k_names and k <= n:
                    at_k[(i, "sbert", k)] = (
                        fixed_k.pairwise_at_k(computed["sbert"][j], n, k),
                        math.nan,
                    )
                vendis = [m for m in k_names if m in _ORDER_OF]
                if vendis and k <= n:
                    unit = normalize_rows(matrices[j])
                    results = fixed_k.vendi_at_k(unit, k, [_ORDER_OF[m] for m in vendis], seed)
                    for m, result in zip(vendis, results, strict=True):
                        at_k[(i, m, k)] = result
                if j in class_sets and k <= n:
                    found, correct = class_sets[j]
                    for name, result in class_metrics.class_values_at_k(
                        found, correct, k, seed
                    ).items():
                        if name in class_names:
                            at_k[(i, name, k)] = result
                if j in code_matrices and k <= len(code_matrices[j]):
                    matrix = code_matrices[j]
                    if "code_sbert" in k_names:
                        at_k[(i, "code_sbert", k)] = (
                            fixed_k.pairwise_at_k(computed["code_sbert"][j], len(matrix), k),
                            math.nan,
                        )
                    if "code_vendi" in k_names:
                        (at_k[(i, "code_vendi", k)],) = fixed_k.vendi_at_k(
                            normalize_rows(matrix), k, [1.0], seed
                        )
                if j in progs and "ast_parseable" in k_names and k <= progs[j].n_outputs:
                    at_k[(i, "ast_parseable", k)] = (
                        fixed_k.share_at_k(computed["ast_parseable"][j], progs[j].n_outputs, k),
                        math.nan,
                    )
                if j in progs:
                    p = progs[j]
                    n_prog = len(p.plain)
                    if k > n_prog:
                        continue
                    for name, multisets in (
                        ("ast_pairwise", p.plain),
                        ("ast_struct_pairwise", p.structure),
                    ):
                        if name in k_names:
                            at_k[(i, name, k)] = (
                                fixed_k.pairwise_at_k(
                                    code_metrics.mean_pairwise(multisets), n_prog, k
                                ),
                                math.nan,
                            )
                    if pooled is not None:
                        at_k[(i, "ast_distinct", k)] = fixed_k.distinct_ratio_at_k(pooled, k, seed)

    # One row per (set, metric), sets in their fixed order and metrics in the order asked for;
    # a code metric only for the sets of code tasks; then, with a k grid, the rows at each k.
    cells = [
        (i, name)
        for i, s in enumerate(sets)
        for name in names
        if applies(name, family_of.get(s["task"], s["task"]), s["scope"])
    ]
    keys: list[tuple[int, str, int | None]] = [(i, name, None) for i, name in cells]
    if grid:
        keys += [
            (i, name, k)
            for i, name in cells
            if sets[i]["scope"] == "per_input" and name in K_METRICS
            for k in grid
        ]

    def value_of(i: int, name: str, k: int | None) -> float | None:
        v = float(values[name][i]) if k is None else at_k.get((i, name, k), (math.nan,))[0]
        return None if math.isnan(v) else v

    columns: dict[str, list[Any]] = {
        "model": [sets[i]["model"] for i, _, _ in keys],
        "task": [sets[i]["task"] for i, _, _ in keys],
        "cot": [sets[i]["cot"] for i, _, _ in keys],
        "scope": [sets[i]["scope"] for i, _, _ in keys],
        "subset": [sets[i]["subset"] for i, _, _ in keys],
        "prompt_id": [sets[i]["prompt_id"] for i, _, _ in keys],
        "metric": [name for _, name, _ in keys],
        "value": [value_of(i, name, k) for i, name, k in keys],
        "n_outputs": [len(sets[i]["rows"]) for i, _, _ in keys],
        "n_dropped": [sets[i]["n_dropped"] for i, _, _ in keys],
    }
    if grid:
        columns["k"] = [k for _, _, k in keys]
        se = [math.nan if k is None else at_k.get((i, n, k), (0, math.nan))[1] for i, n, k in keys]
        columns["se"] = [None if math.isnan(v) else v for v in se]
    return pl.DataFrame(columns, schema=schema)
