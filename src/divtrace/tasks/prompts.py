"""Load a task's dataset and turn it into the prompts table (DESIGN §3).

Prompts are chosen by a seeded shuffle of the dataset (after the family's record filter, if it
has one, and round-robin over a field's values, if it balances one); each keeps a stable
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
import pandas as pd

from divtrace.tasks.base import Record, TaskDataError, TaskFamily


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Records of a JSON-lines file; a bad line is reported with its line number."""
    records: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
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
            raise TaskDataError(f"{source}: no such file")
        return read_jsonl(source)
    import datasets

    default_config = None if Path(source).is_dir() else family.hf_config
    dataset = datasets.load_dataset(
        source,
        hf_config if hf_config is not None else default_config,
        split=split or family.split,
        revision=revision,
    )
    return [dict(row) for row in dataset]


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
) -> tuple[list[int], dict[str, Any]]:
    """Row numbers of the chosen prompts, in order, and a report of how they were chosen.

    Without ``family.keep`` and ``family.balance_by`` this is :func:`select`. With ``keep``, every
    record is checked and those ``keep`` rejects are dropped first; the seeded shuffle then runs
    over the kept rows (which keep their source row numbers). With ``balance_by``, the shuffled
    rows are taken round-robin over the values of that field (see :func:`_round_robin`), so every
    prefix is balanced as far as the groups allow. Truncation to ``n`` comes last, so a larger
    ``n`` extends the same order.
    """
    rows = list(range(len(records)))
    if family.keep is not None:
        kept = []
        for row in rows:
            where = f"{source} record {row}"
            family.check_record(records[row], where)
            try:
                if family.keep(records[row]):
                    kept.append(row)
            except TaskDataError as err:
                raise TaskDataError(f"{where}: {err}") from err
        rows = kept
        if not rows:
            raise TaskDataError(
                f"{source}: the {family.name} record filter dropped all {len(records)} records"
            )
    order = [rows[i] for i in select(len(rows), None, seed, task)]
    if family.balance_by is not None:
        order = _round_robin(order, records, family.balance_by)
    chosen = order if n is None else order[:n]
    report: dict[str, Any] = {
        "n_records": len(records),
        "n_kept": len(rows),
        "n_dropped_by_filter": len(records) - len(rows),
    }
    if family.balance_by is not None:
        counts: dict[str, int] = {}
        for row in chosen:
            key = str(records[row].get(family.balance_by))
            counts[key] = counts.get(key, 0) + 1
        report["balance_by"] = family.balance_by
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
) -> pd.DataFrame:
    """The prompts table of ``task``: ``n`` records (all if fewer) in seeded-shuffle order.

    ``table.attrs["selection"]`` reports the selection (:func:`select_records`): how many records
    the family's filter dropped and, for a balanced family, how many prompts each group got.
    """
    if not records:
        raise TaskDataError(f"{source}: the dataset has no records for task {task!r}")
    chosen, report = select_records(task, family, records, n=n, seed=seed, source=source)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, row_number in enumerate(chosen):
        record = records[row_number]
        where = f"{source} record {row_number}"
        family.check_record(record, where)
        id_field, local_id = family.record_id(record, row_number)
        prompt_id = f"{task}/{local_id}"
        if prompt_id in seen:
            raise TaskDataError(f"{where}: duplicate id {local_id!r} in field {id_field!r}")
        seen.add(prompt_id)
        try:
            reference = family.reference(record)
        except TaskDataError as err:
            raise TaskDataError(f"{where}: {err}") from err
        rows.append(
            {
                "task": task,
                "prompt_id": prompt_id,
                "index": index,
                "text": family.render_text(record),
                "messages": json.dumps([{"role": "user", "content": family.render_user(record)}]),
                "reference": json.dumps(reference, sort_keys=True),
                "meta": json.dumps(
                    {
                        "source": source,
                        "row": row_number,
                        "family": family.name,
                        **{f: record[f] for f in family.meta_fields if f in record},
                    },
                    sort_keys=True,
                    default=str,
                ),
            }
        )
    table = pd.DataFrame(rows)
    table.attrs["selection"] = report
    return table
