"""A Hugging Face hub cache laid out by hand, for offline tests of the download code."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def populate_hub_cache(hub: Path, repo: str, commit: str, files: Path) -> Path:
    """Lay the files below ``files`` out as revision ``main`` = ``commit`` of ``repo`` in the hub
    cache ``hub`` (``models--org--name/{blobs,refs,snapshots}``, snapshot files linked to blobs),
    as ``snapshot_download`` leaves them; return the snapshot directory."""
    storage = hub / f"models--{repo.replace('/', '--')}"
    snapshot = storage / "snapshots" / commit
    (storage / "blobs").mkdir(parents=True)
    (storage / "refs").mkdir()
    snapshot.mkdir(parents=True)
    (storage / "refs" / "main").write_text(commit)
    for source in sorted(p for p in files.rglob("*") if p.is_file()):
        data = source.read_bytes()
        blob = storage / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / source.relative_to(files)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return snapshot
