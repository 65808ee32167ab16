"""The model manager: catalog, Hugging Face search and metadata, resumable verified downloads, the library.

Entry points for the UI and the CLI:

- ``load_catalog(fit=...)`` -> ``list[CatalogEntry]`` (``planner_fit(hw)`` plugs in app.planner)
- ``DownloadJob(request, models_dir, net, library=...)``: ``run()`` yields ``DownloadProgress``;
  ``pause()`` / ``cancel()`` from any thread. ``DownloadQueue`` runs jobs on worker threads.
- ``ModelLibrary(models_dir, paths)``: ``scan()``, ``list_installed()``, ``import_model()``,
  ``iter_verify()``, ``remove()``, ``find_hf_cache_models()``
- ``hub.search_models`` / ``hub.list_gguf_files`` / ``hub.file_info`` (the only huggingface_hub user)
- ``NetworkConfig(offline, endpoint, proxy, token)``; ``TokenStore`` keeps the token in the keyring.
"""

from __future__ import annotations

from app.models.catalog import CatalogEntry, FitVerdict, find_entry, load_catalog, planner_fit
from app.models.download import DownloadJob, DownloadProgress, DownloadRequest, DownloadState, run_to_end
from app.models.download_queue import DownloadQueue
from app.models.library import InstalledModel, ModelLibrary, validate_gguf
from app.models.network import CancelToken, NetworkConfig, RetryPolicy
from app.models.token import TokenStore

__all__ = [
    "CancelToken", "CatalogEntry", "DownloadJob", "DownloadProgress", "DownloadQueue", "DownloadRequest",
    "DownloadState", "FitVerdict", "InstalledModel", "ModelLibrary", "NetworkConfig", "RetryPolicy", "TokenStore",
    "find_entry", "load_catalog", "planner_fit", "run_to_end", "validate_gguf",
]
