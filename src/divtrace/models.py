"""Fetch a checkpoint (Hugging Face snapshot) or build a toy one, and describe it in a manifest.

The manifest (``manifest.json`` in the model's directory) is the file downstream rules depend on:
it names where the weights are, the resolved revision and the files with their sizes. It is
written last, inside a directory that is moved into place in one rename, so a killed fetch or
build never leaves a manifest behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
# What a snapshot needs for sampling: weights, configs, tokenizer and chat template.
HF_ALLOW_PATTERNS = [
    "*.json",
    "*.safetensors",
    "*.model",
    "*.txt",
    "*.tiktoken",
    "*.jinja",
    "tokenizer*",
]


class FetchError(RuntimeError):
    """A checkpoint could not be fetched or built."""


def _file_list(directory: Path) -> list[dict[str, Any]]:
    return [
        {"path": str(p.relative_to(directory)), "bytes": p.stat().st_size}
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    ]


def _replace_dir(tmp: Path, final: Path) -> None:
    """Move a finished directory onto ``final`` (removing what a failed attempt left there)."""
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


def build_toy(
    name: str, spec: Mapping[str, Any], out_dir: Path, parent_manifest: Path | None
) -> dict[str, Any]:
    """Build a toy checkpoint into ``out_dir`` (atomically) and return its manifest."""
    from divtrace.toy.build import build_toy_model

    parent_dir = None
    if parent_manifest is not None:
        parent_dir = Path(json.loads(parent_manifest.read_text(encoding="utf-8"))["path"])
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.build-", dir=out_dir.parent))
    try:
        started = time.time()
        facts = build_toy_model(dict(spec["toy"]), tmp, parent_dir)
        manifest = {
            "name": name,
            "source": "toy",
            "path": str(out_dir.resolve()),
            "revision": None,
            "commit": None,
            "toy": dict(spec["toy"]),
            "parent": spec.get("parent"),
            "build": facts,
            "seconds": round(time.time() - started, 2),
            "files": _file_list(tmp),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
        _replace_dir(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return manifest


def fetch_hf(
    name: str,
    spec: Mapping[str, Any],
    out_dir: Path,
    *,
    retries: int = 5,
    backoff_seconds: float = 10.0,
    local_files_only: bool = False,
) -> dict[str, Any]:
    """Download a pinned snapshot into the Hugging Face cache (``HF_HOME``) and write a manifest.

    The weights stay in the cache; the manifest points at the snapshot directory and records the
    resolved commit, so a branch name in the config is pinned in the manifest.
    """
    from huggingface_hub import snapshot_download

    repo, revision = spec["repo"], spec.get("revision", "main")
    last_error: Exception | None = None
    for attempt in range(1, retries + 1):
        try:
            snapshot = Path(
                snapshot_download(
                    repo_id=repo,
                    revision=revision,
                    allow_patterns=HF_ALLOW_PATTERNS,
                    local_files_only=local_files_only,
                )
            )
            break
        except Exception as err:  # network errors come in many types; retry them all
            last_error = err
            if attempt == retries or local_files_only:
                raise FetchError(f"models.{name}: cannot fetch {repo}@{revision}: {err}") from err
            time.sleep(backoff_seconds * 2 ** (attempt - 1))
    else:  # pragma: no cover - loop always breaks or raises
        raise FetchError(f"models.{name}: {last_error}")
    if not (snapshot / "config.json").is_file():
        raise FetchError(f"models.{name}: snapshot {snapshot} of {repo} has no config.json")
    manifest = {
        "name": name,
        "source": "hf",
        "path": str(snapshot),
        "repo": repo,
        "revision": revision,
        "commit": snapshot.name,  # snapshot directories are named by the resolved commit
        "parent": spec.get("parent"),
        "files": _file_list(snapshot),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    from divtrace.io import write_text

    write_text(json.dumps(manifest, indent=2), out_dir / MANIFEST)
    return manifest


def fetch_model(
    name: str, spec: Mapping[str, Any], out_dir: str | Path, parent_manifest: str | Path | None
) -> dict[str, Any]:
    out = Path(out_dir)
    if spec["source"] == "toy":
        return build_toy(name, spec, out, Path(parent_manifest) if parent_manifest else None)
    if spec["source"] == "hf":
        return fetch_hf(name, spec, out)
    raise FetchError(f"models.{name}.source: unknown source {spec['source']!r}")
