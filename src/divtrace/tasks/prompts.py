"""Load a task's dataset and turn it into the prompts table (docs/design.md §3).

Prompts are rendered and chosen in one of the prompt styles of :mod:`divtrace.tasks.styles`:
``instructed`` draws them by a shuffle seeded with the study's seed (after the family's record
filter, if it has one, and round-robin over a field's values, if it balances one); ``paper``
takes the paper's filter and lighteval's seed-42 shuffle. Either way each prompt keeps a stable
``prompt_id`` (the record's own id field, else its row number in the source) and its gold
reference, so nothing is ever re-matched later by text.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from divtrace import io
from divtrace.errors import MissingFileError
from divtrace.tasks import styles
from divtrace.tasks.base import Record, TaskDataError, TaskFamily


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Records of a JSON-lines file; a bad line (not UTF-8, not JSON, not an object) is reported
    with the file and its line number."""
    records: list[dict[str, Any]] = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise TaskDataError(
                    f"{path}:{number}: not UTF-8 text (byte 0x{raw[err.start]:02x} at column "
                    f"{err.start + 1})"
                ) from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise TaskDataError(f"{path}:{number}: not valid JSON ({err.msg})") from err
            if not isinstance(record, dict):
                raise TaskDataError(f"{path}:{number}: a record must be a JSON object")
            records.append(record)
    return records


def load_records(
    source: str,
    family: TaskFamily,
    *,
    hf_config: str | None = None,
    split: str | None = None,
    revision: str | None = None,
) -> list[dict[str, Any]]:
    """Records from a local ``.jsonl`` file or a Hugging Face dataset (``datasets.load_dataset``).

    A local directory of data files (a stand-in for a hub dataset) is loaded with the datasets
    library too, but without the family's hub configuration name, which it does not have.
    """
    if source.endswith(".jsonl") or Path(source).is_file():
        if not Path(source).is_file():
            raise MissingFileError(f"{source}: no such file")
        return read_jsonl(source)
    import datasets

    default_config = None if Path(source).is_dir() else family.hf_config
    try:
        dataset = datasets.load_dataset(
            source,
            hf_config if hf_config is not None else default_config,
            split=split or family.split,
            revision=revision,
        )
    except FileNotFoundError as err:  # no such dataset (or data files), locally or on the hub
        raise MissingFileError(f"{source}: dataset not found ({_one_line(err)})") from err
    except Exception as err:  # the datasets library raises many kinds
        # A directory it cannot read as a dataset, a hub id it cannot reach (offline, no such
        # repo, gated), a bad config or split name: one line naming the source, no traceback.
        raise TaskDataError(
            f"{source}: cannot load the dataset ({type(err).__name__}: {_one_line(err)})"
        ) from err
    return [dict(row) for row in dataset]


def _one_line(err: BaseException, limit: int = 300) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _seed_int(*parts: object) -> int:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def select(n_records: int, n: int | None, seed: int, task: str) -> list[int]:
    """Row numbers of the chosen prompts: a seeded shuffle, truncated to ``n``."""
    order = np.random.default_rng(_seed_int(seed, task)).permutation(n_records)
    return [int(i) for i in (order if n is None else order[:n])]


def _round_robin(order: Sequence[int], records: Sequence[Record], field: str) -> list[int]:
    """``order`` regrouped by the value of ``field``: the first row of each group (groups sorted by
    value), then the second of each, and so on; a group that runs out is skipped."""
    groups: dict[str, list[int]] = {}
    for row in order:
        groups.setdefault(str(records[row].get(field)), []).append(row)
    queues = [groups[key] for key in sorted(groups)]
    depth = max((len(q) for q in queues), default=0)
    return [q[i] for i in range(depth) for q in queues if i < len(q)]


def select_records(
    task: str,
    family: TaskFamily,
    records: Sequence[Record],
    *,
    n: int | None,
    seed: int,
    source: str,
    style: str = styles.DEFAULT_PROMPT_STYLE,
) -> tuple[list[int], dict[str, Any]]:
    """Row numbers of the chosen prompts, in order, and a report of how they were chosen.

    The style's record filter (:func:`divtrace.tasks.styles.record_filter`), if any, runs first:
    every record is checked and those it rejects are dropped (the kept rows keep their source row
    numbers). The kept rows are then shuffled: ``instructed`` by :func:`select` (seeded with
    ``seed`` and the task name), taken round-robin over the values of the family's ``balance_by``
    field where it has one (see :func:`_round_robin`), so every prefix is balanced as far as the
    groups allow; ``paper`` by lighteval's ``random.Random(42).shuffle``
    (:func:`divtrace.tasks.styles.paper_order`). Truncation to ``n`` comes last, so a larger
    ``n`` extends the same order.
    """
    rows = list(range(len(records)))
    keep = styles.record_filter(family, style)
    if keep is not None:
        kept = []
        for row in rows:
            where = f"{source} record {row}"
            family.check_record(records[row], where)
            try:
                if keep(records[row]):
                    kept.append(row)
            except TaskDataError as err:
                raise TaskDataError(f"{where}: {err}") from err
        rows = kept
        if not rows:
            raise TaskDataError(
                f"{source}: the {family.name} record filter ({style} style) dropped all "
                f"{len(records)} records"
            )
    if style == styles.PAPER:
        order = [rows[i] for i in styles.paper_order(len(rows))]
        selection_seed = styles.PAPER_SELECTION_SEED
    else:
        order = [rows[i] for i in select(len(rows), None, seed, task)]
        selection_seed = seed
    balance_by = styles.balance_field(family, style)
    if balance_by is not None:
        order = _round_robin(order, records, balance_by)
    chosen = order if n is None else order[:n]
    report: dict[str, Any] = {
        "prompt_style": style,
        "selection_seed": selection_seed,
        "n_records": len(records),
        "n_kept": len(rows),
        "n_dropped_by_filter": len(records) - len(rows),
    }
    if balance_by is not None:
        counts: dict[str, int] = {}
        for row in chosen:
            key = str(records[row].get(balance_by))
            counts[key] = counts.get(key, 0) + 1
        report["balance_by"] = balance_by
        report["selected_per_group"] = dict(sorted(counts.items()))
    return chosen, report


def build_prompts(
    task: str,
    family: TaskFamily,
    records: Sequence[Record],
    *,
    n: int | None,
    seed: int,
    source: str,
    style: str = styles.DEFAULT_PROMPT_STYLE,
) -> pl.DataFrame:
    """The prompts table of ``task`` in prompt ``style``: ``n`` records (all if fewer), in the
    order of the style's selection (:func:`build_prompts_and_selection` without the report)."""
    table, _ = build_prompts_and_selection(
        task, family, records, n=n, seed=seed, source=source, style=style
    )
    return table


def build_prompts_and_selection(
    task: str,
    family: TaskFamily,
    records: Sequence[Record],
    *,
    n: int | None,
    seed: int,
    source: str,
    style: str = styles.DEFAULT_PROMPT_STYLE,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """The prompts table of ``task`` in prompt ``style`` and the report of its selection.

    The table holds ``n`` records (all if fewer), in the order of the style's selection, with the
    PROMPTS contract's columns and types. A record whose rendered prompt repeats an earlier one's
    is dropped (the next in the order takes its place) and counted in the report
    (``n_duplicates_dropped``, and the first 20 ``duplicates`` as [row, row it repeats]) — except
    in the ``paper`` style, which must select the very records the paper's code selected: there
    the duplicate is kept and only counted (``n_duplicates_kept``). The
    report (:func:`select_records`) gives the style and the seed of its shuffle, how many records
    the filter dropped and, for a balanced family, how many prompts each group got;
    ``divtrace prompts`` stores it in the file's metadata.
    """
    if not records:
        raise TaskDataError(f"{source}: the dataset has no records for task {task!r}")
    styles.check_style(style)
    order, report = select_records(
        task, family, records, n=None, seed=seed, source=source, style=style
    )
    rows: list[dict[str, Any]] = []
    chosen: list[int] = []
    seen: set[str] = set()
    # A record whose prompt is that of an earlier one (a duplicate in the source) is dropped and
    # counted: K samples of one prompt under two ids would count twice in every mean, and the
    # across-input set would hold the same prompt twice. The next record in the order takes its
    # place, so the task still gets n prompts when the source has them.
    # The paper's code sent duplicates as they came: its style keeps them (counted).
    keep_duplicates = style == styles.PAPER
    first_of: dict[tuple[str, str], int] = {}
    duplicates: list[list[int]] = []
    for row_number in order:
        if n is not None and len(rows) >= n:
            break
        record = records[row_number]
        where = f"{source} record {row_number}"
        family.check_record(record, where)
        try:
            reference = family.reference(record)
            rendered = styles.render(family, record, style)
        except TaskDataError as err:
            raise TaskDataError(f"{where}: {err}") from err
        prompt_key = (rendered.text, rendered.user)
        if prompt_key in first_of:
            duplicates.append([row_number, first_of[prompt_key]])
            if not keep_duplicates:
                continue
        else:
            first_of[prompt_key] = row_number
        id_field, local_id = family.record_id(record, row_number)
        prompt_id = f"{task}/{local_id}"
        if prompt_id in seen:
            raise TaskDataError(f"{where}: duplicate id {local_id!r} in field {id_field!r}")
        seen.add(prompt_id)
        index = len(rows)
        chosen.append(row_number)
        rows.append(
            {
                "task": task,
                "prompt_id": prompt_id,
                "index": index,
                "text": rendered.text,
                "messages": json.dumps([{"role": "user", "content": rendered.user}]),
                "reference": json.dumps(reference, sort_keys=True),
                "meta": json.dumps(
                    {
                        "source": source,
                        "row": row_number,
                        "family": family.name,
                        "prompt_style": style,
                        **{f: record[f] for f in family.meta_fields if f in record},
                    },
                    sort_keys=True,
                    default=str,
                ),
            }
        )
    report["n_duplicates_dropped"] = 0 if keep_duplicates else len(duplicates)
    report["n_duplicates_kept"] = len(duplicates) if keep_duplicates else 0
    if duplicates:
        report["duplicates"] = duplicates[:20]  # [source row, the row whose prompt it repeats]
    if "balance_by" in report:
        counts: dict[str, int] = {}
        for row in chosen:
            key = str(records[row].get(report["balance_by"]))
            counts[key] = counts.get(key, 0) + 1
        report["selected_per_group"] = dict(sorted(counts.items()))
    return pl.DataFrame(rows, schema=io.empty_frame("prompts").schema), report
