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

from divtrace.errors import ConfigError, FetchError

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


def read_manifest(
    path: str | Path, what: str = "model manifest", rule: str = "fetch_model"
) -> dict[str, Any]:
    """A manifest written by ``rule`` (a JSON object with a ``path``); names the file when it is
    unusable."""
    try:
        manifest = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FetchError(f"{path}: {what} not found (run {rule} first)") from None
    except json.JSONDecodeError as err:
        raise FetchError(f"{path}: {what} is not valid JSON ({err.msg})") from err
    if not isinstance(manifest, dict) or "path" not in manifest:
        raise FetchError(f"{path}: {what} lacks 'path'")
    return manifest


def build_toy(
    name: str,
    spec: Mapping[str, Any],
    out_dir: Path,
    parent_manifest: Path | None,
    threads: int = 1,
) -> dict[str, Any]:
    """Build a toy checkpoint into ``out_dir`` (atomically) and return its manifest.

    A bad ``toy:`` block is a :class:`ConfigError` naming ``models.<name>.toy.<key>``.
    """
    from divtrace.toy.build import build_toy_model

    parent_dir = None
    if parent_manifest is not None:
        parent_dir = Path(read_manifest(parent_manifest)["path"])
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.build-", dir=out_dir.parent))
    try:
        started = time.time()
        try:
            facts = build_toy_model(dict(spec["toy"]), tmp, parent_dir, threads=threads)
        except ConfigError as err:  # "toy.<key>: ..." → the key's place in the config
            raise ConfigError(f"config key models.{name}.{err}") from err
        except FetchError as err:
            raise FetchError(f"models.{name}: {err}") from err
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


_TRUE = {"1", "true", "yes", "on"}


def hub_cache_dir() -> Path | None:
    """The Hugging Face hub cache, read from the environment when the fetch runs.

    ``HF_HUB_CACHE`` wins, then ``HF_HOME``/hub; ``None`` leaves the choice to huggingface_hub
    (``~/.cache/huggingface/hub``). Read here rather than from ``huggingface_hub.constants``, which
    freezes the environment of the moment the library was first imported.
    """
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.path.expanduser(os.environ["HF_HUB_CACHE"]))
    if os.environ.get("HF_HOME"):
        return Path(os.path.expanduser(os.environ["HF_HOME"])) / "hub"
    return None


def hub_offline() -> bool:
    """``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set: use the cache, never the network."""
    return any(
        os.environ.get(var, "").strip().lower() in _TRUE
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _permanent_errors() -> tuple[type[BaseException], ...]:
    """Errors that another try cannot fix: a missing/gated repo or revision, a bad repo id."""
    from huggingface_hub import errors

    names = (
        "RepositoryNotFoundError",  # also GatedRepoError
        "RevisionNotFoundError",
        "DisabledRepoError",
        "HFValidationError",
        "LocalEntryNotFoundError",  # offline and not in the cache
    )
    return tuple(getattr(errors, n) for n in names if hasattr(errors, n))


def download_snapshot(
    repo: str,
    revision: str,
    where: str,
    *,
    allow_patterns: list[str] | None = None,
    ignore_patterns: list[str] | None = None,
    retries: int = 5,
    backoff_seconds: float = 10.0,
    offline: bool = False,
) -> Path:
    """``snapshot_download`` into the hub cache (:func:`hub_cache_dir`); the snapshot directory.

    Network errors are retried ``retries`` times with exponential backoff; errors another try
    cannot fix (no such repo or revision, gated, offline cache miss) fail at once. Every failure is
    a :class:`FetchError` that starts with ``where``.
    """
    from huggingface_hub import snapshot_download

    if retries < 1:
        raise FetchError(f"{where}: retries must be at least 1 (got {retries})")
    permanent = _permanent_errors()
    for attempt in range(1, retries + 1):
        try:
            return Path(
                snapshot_download(
                    repo_id=repo,
                    revision=revision,
                    cache_dir=hub_cache_dir(),
                    allow_patterns=allow_patterns,
                    ignore_patterns=ignore_patterns,
                    local_files_only=offline,
                )
            )
        except Exception as err:  # network errors come in many types; retry the transient ones
            if offline or isinstance(err, permanent):
                mode = " from the local cache (offline)" if offline else ""
                raise FetchError(f"{where}{mode}: {type(err).__name__}: {err}") from err
            if attempt == retries:
                raise FetchError(
                    f"{where} after {retries} attempts: {type(err).__name__}: {err}"
                ) from err
            time.sleep(backoff_seconds * 2 ** (attempt - 1))
    raise AssertionError("unreachable")  # pragma: no cover


def fetch_hf(
    name: str,
    spec: Mapping[str, Any],
    out_dir: Path,
    *,
    retries: int = 5,
    backoff_seconds: float = 10.0,
    local_files_only: bool | None = None,
) -> dict[str, Any]:
    """Download a pinned snapshot into the Hugging Face cache and write a manifest.

    The weights stay in the hub cache (``HF_HUB_CACHE``, else ``$HF_HOME/hub``, else the
    library's default), so a shared ``HF_HOME`` on a cluster is filled once. The manifest points at
    the snapshot directory and records the resolved commit, so a branch name in the config is
    pinned in the manifest, and every file with its size.

    ``local_files_only`` (default: on when ``HF_HUB_OFFLINE`` is set) resolves the revision in the
    cache without any network access. Network errors are retried ``retries`` times with
    exponential backoff; errors another try cannot fix (no such repo or revision, gated, offline
    cache miss) fail at once. Every failure is a :class:`FetchError` naming ``models.<name>``.
    """
    repo, revision = spec["repo"], spec.get("revision", "main")
    offline = hub_offline() if local_files_only is None else local_files_only
    cache_dir = hub_cache_dir()
    snapshot = download_snapshot(
        repo,
        revision,
        f"models.{name}: cannot fetch {repo}@{revision}",
        allow_patterns=HF_ALLOW_PATTERNS,
        retries=retries,
        backoff_seconds=backoff_seconds,
        offline=offline,
    )
    if not (snapshot / "config.json").is_file():
        raise FetchError(f"models.{name}: snapshot {snapshot} of {repo} has no config.json")
    files = _file_list(snapshot)
    if not any(f["path"].endswith(".safetensors") for f in files):
        raise FetchError(
            f"models.{name}: snapshot {snapshot} of {repo}@{revision} has no *.safetensors weights"
        )
    manifest = {
        "name": name,
        "source": "hf",
        "path": str(snapshot),
        "repo": repo,
        "revision": revision,
        "commit": snapshot.name,  # snapshot directories are named by the resolved commit
        "parent": spec.get("parent"),
        "cache_dir": str(cache_dir) if cache_dir is not None else None,
        "offline": offline,
        "allow_patterns": HF_ALLOW_PATTERNS,
        "total_bytes": sum(f["bytes"] for f in files),
        "files": files,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    from divtrace.io import write_text

    write_text(json.dumps(manifest, indent=2), out_dir / MANIFEST)
    return manifest


def fetch_model(
    name: str,
    spec: Mapping[str, Any],
    out_dir: str | Path,
    parent_manifest: str | Path | None,
    threads: int = 1,
) -> dict[str, Any]:
    """Build a toy checkpoint (on ``threads`` torch threads) or fetch a hub snapshot."""
    out = Path(out_dir)
    if spec["source"] == "toy":
        parent = Path(parent_manifest) if parent_manifest else None
        return build_toy(name, spec, out, parent, threads=threads)
    if spec["source"] == "hf":
        return fetch_hf(name, spec, out)
    raise FetchError(f"models.{name}.source: unknown source {spec['source']!r}")


# Weights of other frameworks and exports that the metrics never load.
METRIC_IGNORE_PATTERNS = [
    "*.h5",
    "*.msgpack",
    "*.ot",
    "*.onnx",
    "*.tflite",
    "*.mlmodel",
    "onnx/*",
    "openvino/*",
    "coreml/*",
    "tf_model*",
    "flax_model*",
    "rust_model*",
]
METRIC_ROLES = ("sbert", "nli", "code")


def fetch_metric_model(
    role: str,
    model: str,
    out_dir: str | Path,
    *,
    revision: str = "main",
    retries: int = 5,
    backoff_seconds: float = 10.0,
    local_files_only: bool | None = None,
) -> dict[str, Any]:
    """Make the ``role`` metric model (``sbert`` or ``nli``) available offline; write a manifest.

    ``model`` is resolved as the metrics resolve it (:func:`divtrace.metrics.embeddings.
    resolve_model`): the bundled all-MiniLM-L6-v2 or an existing directory is used in place
    (``source: local``); anything else is a hub id whose snapshot at ``revision`` is downloaded
    into the hub cache (``source: hf``, the resolved commit recorded), so that diversity jobs on
    nodes without network load it from the manifest's ``path``. Failures are :class:`FetchError`
    naming ``metrics.<role>_model``.
    """
    from divtrace.io import write_text
    from divtrace.metrics.embeddings import resolve_model

    if role not in METRIC_ROLES:
        raise FetchError(f"metric model role must be one of {METRIC_ROLES}, got {role!r}")
    key = f"metrics.{role}_model"
    path, local = resolve_model(model)
    manifest: dict[str, Any] = {"role": role, "model": model}
    if local:
        directory = Path(path)
        if not directory.is_dir():
            raise FetchError(f"{key}: {directory} is not a model directory")
        manifest |= {"source": "local", "path": str(directory.resolve()), "revision": None}
    else:
        offline = hub_offline() if local_files_only is None else local_files_only
        directory = download_snapshot(
            model,
            revision,
            f"{key}: cannot fetch {model}@{revision}",
            ignore_patterns=METRIC_IGNORE_PATTERNS,
            retries=retries,
            backoff_seconds=backoff_seconds,
            offline=offline,
        )
        manifest |= {
            "source": "hf",
            "path": str(directory),
            "revision": revision,
            "commit": directory.name,
            "offline": offline,
        }
    if not (directory / "config.json").is_file():
        raise FetchError(f"{key}: {directory} ({model}) has no config.json")
    files = _file_list(directory)
    if not any(f["path"].endswith((".safetensors", ".bin")) for f in files):
        raise FetchError(f"{key}: {directory} ({model}) has no weights (*.safetensors, *.bin)")
    manifest |= {"total_bytes": sum(f["bytes"] for f in files), "files": files}
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    write_text(json.dumps(manifest, indent=2), Path(out_dir) / MANIFEST)
    return manifest
