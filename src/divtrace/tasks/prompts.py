"""Load a task's dataset and turn it into the prompts table (DESIGN §3).

Prompts are chosen by a seeded shuffle of the dataset; each keeps a stable ``prompt_id`` (the
record's own id field, else its row number in the source) and its gold reference, so nothing is
ever re-matched later by text.
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
    """Records from a local ``.jsonl`` file or a Hugging Face dataset (``datasets.load_dataset``)."""
    if source.endswith(".jsonl") or Path(source).is_file():
        if not Path(source).is_file():
            raise TaskDataError(f"{source}: no such file")
        return read_jsonl(source)
    import datasets

    dataset = datasets.load_dataset(
        source,
        hf_config if hf_config is not None else family.hf_config,
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


def build_prompts(
    task: str,
    family: TaskFamily,
    records: Sequence[Record],
    *,
    n: int | None,
    seed: int,
    source: str,
) -> pd.DataFrame:
    """The prompts table of ``task``: ``n`` records (all if fewer) in seeded-shuffle order."""
    if not records:
        raise TaskDataError(f"{source}: the dataset has no records for task {task!r}")
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, row_number in enumerate(select(len(records), n, seed, task)):
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
    return pd.DataFrame(rows)
