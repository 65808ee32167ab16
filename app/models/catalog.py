"""The curated model catalog (``assets/catalog.json``) and each entry's fit verdict for this machine.

The catalog carries the numbers the load planner needs before a model is
downloaded (layers, widths, experts, context, expert bytes). Whether a model
fits is the planner's call: ``load_catalog(fit=...)`` takes any function from
an entry to a FitVerdict, and ``planner_fit(hw)`` adapts app.planner to it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from app.errors import HearthError
from app.hardware.info import HardwareInfo
from app.models.download import DownloadRequest
from app.planner import ModelSpec, plan_load

log = logging.getLogger(__name__)

CATALOG_PATH = Path(__file__).resolve().parents[2] / "assets" / "catalog.json"
ROLES = ("chat", "embedding")
UNKNOWN = "unknown"


@dataclass(frozen=True)
class FitVerdict:
    """Whether a model runs here: app.planner's verdict ("fits", "fits_slower", "does_not_fit") or "unknown"."""

    verdict: str
    summary: str  # one line for the Models page


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    name: str
    publisher: str
    repo_id: str
    filename: str
    size_bytes: int
    sha256: str | None  # None: taken from Hugging Face (get_paths_info) at download time
    license: str
    architecture: str
    n_layers: int
    n_embd: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_expert: int
    n_expert_used: int
    n_ctx_train: int
    sliding_window: int
    expert_bytes: int
    quantization: str
    description: str
    role: str  # "chat" | "embedding"
    size_exact: bool = False  # size_bytes is the published byte count, not a rounded figure
    parameters: int = 0
    n_ff: int = 0
    n_ff_expert: int = 0
    vocab_size: int = 0
    tied_embeddings: bool = False
    recommended: bool = False
    fit: FitVerdict | None = None

    def to_dict(self) -> dict[str, Any]:
        """The entry as catalog.json holds it (what app.planner's ModelSpec.from_catalog reads)."""
        d = asdict(self)
        d.pop("fit")
        return d

    def download_request(self) -> DownloadRequest:
        return DownloadRequest(self.repo_id, self.filename, sha256=self.sha256, catalog_id=self.id)


FitFn = Callable[[CatalogEntry], "FitVerdict | None"]

_REQUIRED_INT = ("size_bytes", "n_layers", "n_embd", "n_head", "n_head_kv", "head_dim", "n_expert",
                 "n_expert_used", "n_ctx_train", "sliding_window", "expert_bytes")
_REQUIRED_STR = ("id", "name", "publisher", "repo_id", "filename", "license", "architecture", "quantization",
                 "description", "role")


def _entry(raw: Any, where: Path, index: int) -> CatalogEntry:
    if not isinstance(raw, dict):
        raise HearthError(f"The model catalog {where} is damaged: entry {index + 1} is not an object.")
    ident = raw.get("id") or f"#{index + 1}"
    for key in _REQUIRED_STR:
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise HearthError(f"The model catalog {where} is damaged: entry {ident} has no '{key}'.")
    for key in _REQUIRED_INT:
        v = raw.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise HearthError(f"The model catalog {where} is damaged: entry {ident} has a bad '{key}' ({v!r}).")
    if raw["role"] not in ROLES:
        raise HearthError(f"The model catalog {where} is damaged: entry {ident} has role {raw['role']!r}.")
    sha = raw.get("sha256")
    if sha is not None and (not isinstance(sha, str) or len(sha) != 64):
        raise HearthError(f"The model catalog {where} is damaged: entry {ident} has a malformed sha256.")
    known = {f.name for f in fields(CatalogEntry)} - {"fit"}
    values = {k: v for k, v in raw.items() if k in known}
    if sha is not None:
        values["sha256"] = sha.lower()
    return CatalogEntry(**values)


def load_catalog(path: str | os.PathLike[str] | None = None, *, fit: FitFn | None = None) -> list[CatalogEntry]:
    """The catalog's entries in file order (gpt-oss-20b first), each with ``fit(entry)`` when given.

    Raises HearthError when the file is missing or malformed. A fit function
    that fails gives an "unknown" verdict with the reason (and a log line).
    """
    where = Path(path) if path is not None else CATALOG_PATH
    try:
        data = json.loads(where.read_text(encoding="utf-8"))
    except OSError as exc:
        raise HearthError(f"Cannot read the model catalog {where}: {exc.strerror or exc}. Reinstall Hearth.") from exc
    except ValueError as exc:
        raise HearthError(f"The model catalog {where} is not valid JSON ({exc}). Reinstall Hearth.") from exc
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, list):
        raise HearthError(f"The model catalog {where} is damaged: it has no 'models' list. Reinstall Hearth.")
    entries = [_entry(raw, where, i) for i, raw in enumerate(models)]
    ids = [e.id for e in entries]
    if len(set(ids)) != len(ids):
        raise HearthError(f"The model catalog {where} is damaged: an id appears twice.")
    if fit is not None:
        entries = [replace(e, fit=_safe_fit(fit, e)) for e in entries]
    return entries


def _safe_fit(fit: FitFn, entry: CatalogEntry) -> FitVerdict:
    try:
        verdict = fit(entry)
    except (HearthError, ValueError, ArithmeticError, KeyError, TypeError) as exc:
        log.warning("fit check for %s failed: %s", entry.id, exc)
        return FitVerdict(UNKNOWN, f"Hearth could not estimate whether {entry.name} fits: {exc}")
    return verdict if verdict is not None else FitVerdict(UNKNOWN, "Not estimated.")


def find_entry(entries: list[CatalogEntry], key: str) -> CatalogEntry | None:
    """The entry whose id (any case) or file name is ``key``."""
    k = key.strip().lower()
    for e in entries:
        if e.id.lower() == k or e.filename.lower() == k:
            return e
    return None


def planner_fit(hw: HardwareInfo) -> FitFn:
    """A fit function backed by app.planner: plan a load of each entry on ``hw``."""

    def fit(entry: CatalogEntry) -> FitVerdict:
        plan = plan_load(ModelSpec.from_catalog(entry.to_dict()), hw)
        return FitVerdict(plan.verdict, plan.explanation)

    return fit
