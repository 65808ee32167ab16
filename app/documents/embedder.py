"""Embeddings for document search from an installed embedding GGUF, in its own worker.

When an embedding model is installed (the catalog's embedding entry, any GGUF of an
embedding architecture, or the one named in Settings), document passages get
vectors and search ranks by keywords and meaning together. The model runs in a
second engine worker, started on first use, so chatting is never blocked by it.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from app.engine.client import EngineClient
from app.errors import HearthError, ModelLoadError
from app.gguf_info import iter_gguf_files, read_gguf_info

log = logging.getLogger(__name__)

# llama.cpp architectures that are embedding (encoder) models rather than chat models.
EMBEDDING_ARCHITECTURES = frozenset({
    "bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "jina-bert-v3", "modern-bert", "neo-bert",
    "gemma-embedding", "t5encoder",
})
EMBED_PARAMS = {"embedding": True, "n_ctx": 2048, "n_batch": 2048, "n_ubatch": 2048}


def find_embedding_model(settings: Any, models_dir: Path) -> Path | None:
    """The embedding GGUF to use: the one named in Settings, else the first installed one."""
    named = getattr(settings, "embedding_model", None)
    if named:
        path = Path(named).expanduser()
        if path.is_file():
            return path
        log.warning("the embedding model in Settings (%s) does not exist; searching by keywords only", path)
        return None
    if not models_dir.is_dir():
        return None
    for path in sorted(iter_gguf_files(models_dir)):
        try:
            if read_gguf_info(path).architecture in EMBEDDING_ARCHITECTURES:
                return Path(path)
        except HearthError:
            continue
    return None


class Embedder:
    """``embed(texts) -> vectors`` through a dedicated engine worker (thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._client: EngineClient | None = None
        self._lock = threading.Lock()
        self._failed: str | None = None

    @property
    def model_name(self) -> str:
        return self.path.name

    def __call__(self, texts: list[str]) -> list[list[float]]:
        with self._lock:
            if self._failed:
                raise HearthError(self._failed)
            if self._client is None or not self._client.loaded:
                client = EngineClient()
                try:
                    client.load_blocking(str(self.path), dict(EMBED_PARAMS))
                except ModelLoadError as exc:
                    client.close()
                    self._failed = f"The embedding model could not be loaded: {exc}"
                    raise HearthError(self._failed) from exc
                self._client = client
            return self._client.embed(list(texts))

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
