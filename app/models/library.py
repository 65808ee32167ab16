"""The installed models: the models folder, models used in place, import, verify and delete.

Models in the models folder are found by scanning it (``*.gguf``; a split set
counts once); models imported in place are remembered in ``library.json`` in
the models folder, which also keeps each file's reference checksum (from the
download, the copy, or the Hugging Face cache's blob name) for ``verify``.
Part files of unfinished downloads are never listed as models; they are
listed separately so they can be resumed or removed.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from app.errors import Cancelled, HearthError, ModelLoadError
from app.gguf_info import GGUFInfo, iter_gguf_files, read_gguf_info
from app.gguf_names import SPLIT_RE
from app.models.architectures import LLAMA_CPP_VERSION, is_known_architecture
from app.models.catalog import CatalogEntry
from app.models.download import DownloadRequest
from app.models.errors import DiskFullError, ImportRejectedError, ModelNotInstalledError
from app.models.filenames import plain_name_problem
from app.models.hashing import CHUNK, GIT_SHA1, SHA256, iter_hash, new_hasher
from app.models.hfcache import CachedModel, blob_sha256, find_cached_models
from app.models.network import CancelToken
from app.models.partfile import PART_SUFFIX, STATE_SUFFIX, PartState, check_disk_space, disk_margin, is_disk_full, \
    read_part_state, write_all
from app.paths import AppPaths

log = logging.getLogger(__name__)

REGISTRY_NAME = "library.json"
REGISTRY_VERSION = 1
IN_MODELS_DIR = "models_dir"
IN_PLACE = "in_place"
_IMPORT_SUFFIX = ".importing"


@dataclass(frozen=True)
class InstalledModel:
    """A usable model. ``name`` is what ``verify``/``remove`` and the CLI take."""

    name: str
    title: str  # general.name from the file
    path: Path  # the file to load (the first part of a split set)
    parts: tuple[Path, ...]
    architecture: str
    n_params: int
    quantization: str
    n_ctx_train: int
    n_layers: int
    size_bytes: int  # all parts, on disk
    location: str  # IN_MODELS_DIR or IN_PLACE
    source: str | None = None  # "huggingface", "import", "hf-cache" or None (found in the folder)
    repo_id: str | None = None
    catalog_id: str | None = None
    has_reference_hash: bool = False  # verify can compare a checksum, not just the header


@dataclass(frozen=True)
class LibraryProblem:
    """A file in the library that cannot be used, and why."""

    path: Path
    message: str


@dataclass(frozen=True)
class PartialDownload:
    """An unfinished download (``NAME.part``); ``request`` is None when its state file is gone."""

    filename: str
    part_path: Path
    bytes_done: int
    total: int | None
    request: DownloadRequest | None


@dataclass(frozen=True)
class LibraryScan:
    models: list[InstalledModel]
    problems: list[LibraryProblem]
    partial: list[PartialDownload]


@dataclass(frozen=True)
class VerifyResult:
    name: str
    ok: bool
    checked_hash: bool  # False: no reference checksum, only the header was checked
    message: str


@dataclass(frozen=True)
class VerifyProgress:
    name: str
    bytes_done: int
    total: int
    result: VerifyResult | None = None  # set on the last event


@dataclass(frozen=True)
class RemoveResult:
    name: str
    freed_bytes: int
    deleted: tuple[Path, ...]
    forgotten: bool  # an in-place model was dropped from the library (its file kept)


@dataclass(frozen=True)
class ImportProgress:
    bytes_done: int
    total: int
    model: InstalledModel | None = None  # set on the last event


def validate_gguf(path: str | os.PathLike[str]) -> GGUFInfo:
    """Check a model file (all parts of a split set) before it is offered as usable.

    Magic, version and metadata are read by app.gguf_info (NotGGUFError on
    failure); the architecture must be one the bundled llama.cpp runs.
    """
    info = read_gguf_info(path)
    if not is_known_architecture(info.architecture):
        raise ImportRejectedError(
            f"{Path(path).name} is a '{info.architecture}' model, which the llama.cpp in this Hearth "
            f"(llama-cpp-python {LLAMA_CPP_VERSION}) cannot run. Choose a model with a supported architecture."
        )
    return info


def model_name(path: Path) -> str:
    """The library name of a model file: its stem, without a split set's part numbering."""
    m = SPLIT_RE.match(path.name)
    return m.group("prefix") if m else path.stem


class ModelLibrary:
    """The models in ``models_dir`` plus those used in place. Thread-safe for one process."""

    def __init__(self, models_dir: str | os.PathLike[str], paths: AppPaths | None = None, *,
                 catalog: list[CatalogEntry] | None = None) -> None:
        self.models_dir = Path(models_dir).expanduser()
        self.paths = paths
        self.catalog = catalog or []
        self._lock = threading.RLock()
        self._info_cache: dict[tuple[str, int, int], GGUFInfo] = {}

    # --- registry -------------------------------------------------------------------

    @property
    def registry_path(self) -> Path:
        return self.models_dir / REGISTRY_NAME

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.registry_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            data = {}
        except (OSError, ValueError) as exc:
            aside = self.registry_path.with_suffix(".broken.json")
            log.warning("library registry %s unreadable (%s); kept as %s", self.registry_path, exc, aside)
            try:
                os.replace(self.registry_path, aside)
            except OSError:
                pass
            data = {}
        if not isinstance(data, dict) or data.get("version") != REGISTRY_VERSION:
            data = {"version": REGISTRY_VERSION}
        data.setdefault("files", {})
        data.setdefault("in_place", [])
        return data

    def _save(self, data: dict[str, Any]) -> None:
        self.models_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.registry_path.with_name(REGISTRY_NAME + ".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.registry_path)

    def _key(self, path: Path) -> str:
        p = Path(os.path.abspath(path))
        try:
            return p.relative_to(Path(os.path.abspath(self.models_dir))).as_posix()
        except ValueError:
            return str(p)

    def _inside(self, path: Path) -> bool:
        return Path(os.path.abspath(path)).parent == Path(os.path.abspath(self.models_dir))

    def record_download(self, path: Path, *, sha256: str | None, git_oid: str | None, repo_id: str,
                        filename: str, revision: str, catalog_id: str | None) -> None:
        """Remember where a verified download came from and its checksum (DownloadRecorder)."""
        with self._lock:
            data = self._load()
            data["files"][self._key(path)] = {
                "sha256": sha256, "git_oid": None if sha256 else git_oid, "source": "huggingface",
                "repo_id": repo_id, "filename": filename, "revision": revision, "catalog_id": catalog_id,
                "size": path.stat().st_size, "added_at": time.time(),
            }
            self._save(data)

    def recorded_hash(self, path: Path) -> str | None:
        """The reference checksum recorded for ``path`` (sha256, or git blob id for small files)."""
        with self._lock:
            rec = self._load()["files"].get(self._key(path)) or {}
        return rec.get("sha256") or rec.get("git_oid")

    # --- listing --------------------------------------------------------------------

    def _info(self, path: Path) -> GGUFInfo:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        info = self._info_cache.get(key)
        if info is None or not all(p.exists() for p in info.parts):  # a part may have gone since
            info = validate_gguf(path)
            self._info_cache[key] = info
        return info

    def _model(self, path: Path, location: str, records: dict[str, Any]) -> InstalledModel:
        info = self._info(path)
        parts = tuple(info.parts) or (path,)
        rec = records.get(self._key(path)) or {}

        def has_reference(p: Path) -> bool:
            r = records.get(self._key(p)) or {}
            return bool(r.get("sha256") or r.get("git_oid") or blob_sha256(p))

        hashed = all(has_reference(p) for p in parts)
        catalog_id = rec.get("catalog_id") or self._catalog_id_for(path.name, info.file_size)
        return InstalledModel(
            name=model_name(path), title=info.name, path=path, parts=parts, architecture=info.architecture,
            n_params=info.n_params, quantization=info.quantization, n_ctx_train=info.n_ctx_train,
            n_layers=info.n_layers, size_bytes=sum(p.stat().st_size for p in parts), location=location,
            source=rec.get("source"), repo_id=rec.get("repo_id"), catalog_id=catalog_id,
            has_reference_hash=bool(hashed) or self._catalog_hash(path.name, info.file_size) is not None,
        )

    def _catalog_id_for(self, filename: str, size: int) -> str | None:
        e = next((e for e in self.catalog if e.filename == filename and (not e.size_exact or e.size_bytes == size)),
                 None)
        return e.id if e else None

    def _catalog_hash(self, filename: str, size: int) -> str | None:
        e = next((e for e in self.catalog if e.filename == filename and e.size_bytes == size and e.sha256), None)
        return e.sha256 if e else None

    def scan(self) -> LibraryScan:
        """Models, unusable files (with the reason) and unfinished downloads."""
        models: list[InstalledModel] = []
        problems: list[LibraryProblem] = []
        with self._lock:
            data = self._load()
        records = data["files"]
        candidates: list[tuple[Path, str]] = []
        if self.models_dir.is_dir():
            candidates += [(p, IN_MODELS_DIR) for p in iter_gguf_files(self.models_dir)]
        for raw in data["in_place"]:
            candidates.append((Path(raw), IN_PLACE))
        seen: set[str] = set()
        names: set[str] = set()
        for path, location in candidates:
            real = os.path.realpath(path)
            if real in seen:
                continue
            seen.add(real)
            if location == IN_PLACE and not path.exists():
                problems.append(LibraryProblem(path, f"{path} was moved or deleted. Import it again from its new "
                                                     f"place, or remove '{model_name(path)}' from the list."))
                continue
            try:
                model = self._model(path, location, records)
            except (ModelLoadError, OSError) as exc:
                problems.append(LibraryProblem(path, str(exc)))
                continue
            if model.name in names:  # same stem in two places: keep both, tell them apart
                i = 2
                while f"{model.name}-{i}" in names:
                    i += 1
                model = _renamed(model, f"{model.name}-{i}")
            names.add(model.name)
            models.append(model)
        return LibraryScan(models=models, problems=problems, partial=self.list_partial())

    def list_installed(self) -> list[InstalledModel]:
        """The usable models (never a part file or a file that fails validation)."""
        return self.scan().models

    def list_partial(self) -> list[PartialDownload]:
        out: list[PartialDownload] = []
        if not self.models_dir.is_dir():
            return out
        for part in sorted(self.models_dir.glob("*" + PART_SUFFIX)):
            filename = part.name[: -len(PART_SUFFIX)]
            state = read_part_state(self.models_dir / (filename + STATE_SUFFIX))
            out.append(PartialDownload(filename=filename, part_path=part, bytes_done=part.stat().st_size,
                                       total=state.size if state else None,
                                       request=_request(state) if state else None))
        return out

    def get(self, name: str) -> InstalledModel:
        """The model called ``name`` (its name, file name, path or catalog id); ModelNotInstalledError if none."""
        models = self.list_installed()
        key = name.strip()
        for test in (
            lambda m: m.name == key,
            lambda m: m.path.name == key or str(m.path) == key or os.path.realpath(m.path) == os.path.realpath(key),
            lambda m: m.catalog_id is not None and m.catalog_id == key,
            lambda m: m.name.lower() == key.lower() or m.path.name.lower() == key.lower(),
        ):
            hits = [m for m in models if test(m)]
            if hits:
                return hits[0]
        have = ", ".join(m.name for m in models) or "none"
        raise ModelNotInstalledError(f"No installed model is called '{name}'. Installed: {have}.")

    # --- remove ---------------------------------------------------------------------

    def remove(self, name: str, *, delete_in_place_files: bool = False) -> RemoveResult:
        """Delete a model's files from the models folder (an in-place model is only forgotten,
        unless ``delete_in_place_files``). Asking for confirmation is the caller's job."""
        model = self.get(name)
        deleted: list[Path] = []
        freed = 0
        with self._lock:
            data = self._load()
            delete = model.location == IN_MODELS_DIR or delete_in_place_files
            for p in model.parts:
                if delete:
                    try:
                        size = p.stat().st_size if not p.is_symlink() else 0
                        p.unlink()
                    except FileNotFoundError:
                        size = 0
                    except OSError as exc:
                        raise HearthError(f"Cannot delete {p}: {exc.strerror or exc}.") from exc
                    freed += size
                    deleted.append(p)
                data["files"].pop(self._key(p), None)
            forgotten = False
            if model.location == IN_PLACE:
                before = len(data["in_place"])
                data["in_place"] = [x for x in data["in_place"] if os.path.realpath(x) != os.path.realpath(model.path)]
                forgotten = len(data["in_place"]) != before
            self._save(data)
        self._info_cache.clear()
        log.info("removed model %s (%d bytes freed)", model.name, freed)
        return RemoveResult(model.name, freed, tuple(deleted), forgotten)

    def remove_partial(self, filename: str) -> RemoveResult:
        """Delete an unfinished download's part and state files."""
        if plain_name_problem(filename) is not None:  # never a path outside the models folder
            raise ModelNotInstalledError(f"There is no unfinished download called '{filename}'.")
        part = self.models_dir / (filename + PART_SUFFIX)
        state = self.models_dir / (filename + STATE_SUFFIX)
        if not part.exists() and not state.exists():
            raise ModelNotInstalledError(f"There is no unfinished download called '{filename}'.")
        freed = part.stat().st_size if part.exists() else 0
        deleted = []
        for p in (part, state):
            if p.exists():
                p.unlink()
                deleted.append(p)
        return RemoveResult(filename, freed, tuple(deleted), False)

    def forget_missing(self) -> int:
        """Drop in-place entries whose files are gone; returns how many."""
        with self._lock:
            data = self._load()
            keep = [x for x in data["in_place"] if Path(x).exists()]
            dropped = len(data["in_place"]) - len(keep)
            data["in_place"] = keep
            self._save(data)
        return dropped

    # --- verify ---------------------------------------------------------------------

    def _reference(self, part: Path, records: dict[str, Any], size: int) -> tuple[str, str] | None:
        rec = records.get(self._key(part)) or {}
        if rec.get("sha256"):
            return SHA256, str(rec["sha256"])
        if rec.get("git_oid"):
            return GIT_SHA1, str(rec["git_oid"])
        blob = blob_sha256(part)
        if blob:
            return SHA256, blob
        cat = self._catalog_hash(part.name, size)
        return (SHA256, cat) if cat else None

    def iter_verify(self, name: str, cancel: CancelToken | None = None) -> Iterator[VerifyProgress]:
        """Re-check a model: header and architecture, then each part's checksum where one is known.

        Yields progress (~10/s); the last event carries the VerifyResult. Raises
        ModelNotInstalledError for an unknown name, Cancelled when cancelled.
        """
        model = self.get(name)
        try:
            info = validate_gguf(model.path)
        except ModelLoadError as exc:
            yield VerifyProgress(model.name, 0, 0, VerifyResult(model.name, False, False, str(exc)))
            return
        with self._lock:
            records = self._load()["files"]
        sizes = [p.stat().st_size for p in info.parts]
        refs = [self._reference(p, records, s) for p, s in zip(info.parts, sizes)]
        total = sum(s for s, r in zip(sizes, refs) if r is not None)
        done = 0
        last_emit = 0.0
        for part, size, ref in zip(info.parts, sizes, refs):
            if ref is None:
                continue
            kind, expected = ref
            hasher = new_hasher(kind, size)
            base = done
            for n in iter_hash(part, hasher, chunk=CHUNK):
                if cancel is not None and cancel.cancelled:
                    raise Cancelled(f"Verification of {model.name} cancelled.")
                done = base + n
                now = time.monotonic()
                if now - last_emit >= 0.1:
                    last_emit = now
                    yield VerifyProgress(model.name, done, total)
            digest = hasher.hexdigest()
            if digest != expected.lower():
                msg = (f"{part.name} is damaged: its checksum does not match ({digest[:16]}… instead of "
                       f"{expected[:16]}…). Delete it (hearth models rm {model.name}) and download it again.")
                yield VerifyProgress(model.name, done, total, VerifyResult(model.name, False, True, msg))
                return
        if all(r is None for r in refs):
            result = VerifyResult(model.name, True, False,
                                  f"{model.name}: the header is valid ({info.architecture}, {info.quantization}); "
                                  "no published checksum is known for this file, so its bytes were not compared.")
        else:
            partial = " (some parts have no reference checksum)" if any(r is None for r in refs) else ""
            result = VerifyResult(model.name, True, True, f"{model.name}: checksum verified{partial}.")
        yield VerifyProgress(model.name, done, total, result)

    def verify(self, name: str, cancel: CancelToken | None = None) -> VerifyResult:
        result: VerifyResult | None = None
        for ev in self.iter_verify(name, cancel):
            result = ev.result or result
        assert result is not None
        return result

    # --- import ---------------------------------------------------------------------

    def iter_import(self, path: str | os.PathLike[str], *, copy: bool,
                    cancel: CancelToken | None = None) -> Iterator[ImportProgress]:
        """Validate a GGUF (any part of a split set) and add it: copied into the models folder
        (hashed on the way, so verify can check it later) or used where it is.

        Raises NotGGUFError / ImportRejectedError for unusable files,
        HearthError for name clashes and disk space, Cancelled when cancelled
        (nothing is left behind).
        """
        src = Path(path).expanduser()
        info = validate_gguf(src)
        parts = [Path(p) for p in info.parts]
        if all(self._inside(p) for p in parts):
            model = self.get(str(parts[0]))
            yield ImportProgress(info.file_size, info.file_size, model)
            return
        total = sum(p.stat().st_size for p in parts)
        if not copy:
            with self._lock:
                data = self._load()
                first = os.path.abspath(parts[0])
                if first not in data["in_place"]:
                    data["in_place"].append(first)
                for p in parts:
                    blob = blob_sha256(p)
                    if blob:
                        data["files"][self._key(p)] = {"sha256": blob, "source": "hf-cache", "size": p.stat().st_size,
                                                       "added_at": time.time()}
                    else:
                        data["files"].setdefault(self._key(p), {"source": "import", "added_at": time.time()})
                self._save(data)
            self._info_cache.clear()
            yield ImportProgress(total, total, self.get(first))
            return

        self.models_dir.mkdir(parents=True, exist_ok=True)
        for p in parts:
            if (self.models_dir / p.name).exists():
                raise HearthError(f"A file named {p.name} is already in {self.models_dir}. "
                                  "Remove it first or use the model in place.")
        check_disk_space(self.models_dir, total + disk_margin(total))
        temps = [self.models_dir / (p.name + _IMPORT_SUFFIX) for p in parts]
        hashes: list[str] = []
        done = 0
        last_emit = 0.0
        try:
            for src_part, tmp in zip(parts, temps):
                h = new_hasher(SHA256, 0)
                with open(src_part, "rb", buffering=0) as fin, open(tmp, "wb", buffering=0) as fout:
                    buf = bytearray(CHUNK)
                    mv = memoryview(buf)
                    while n := fin.readinto(mv):
                        if cancel is not None and cancel.cancelled:
                            raise Cancelled(f"Import of {src.name} cancelled.")
                        write_all(fout, mv[:n])
                        h.update(mv[:n])
                        done += n
                        now = time.monotonic()
                        if now - last_emit >= 0.1:
                            last_emit = now
                            yield ImportProgress(done, total)
                    os.fsync(fout.fileno())
                hashes.append(h.hexdigest())
            for src_part, tmp in zip(parts, temps):
                os.replace(tmp, self.models_dir / src_part.name)
        except BaseException as exc:
            for tmp in temps:
                try:
                    tmp.unlink()
                except OSError:
                    pass
            if isinstance(exc, OSError):
                if is_disk_full(exc):
                    raise DiskFullError(f"Not enough disk space in {self.models_dir} to copy {src.name}. "
                                        "Free some space, or use the model in place instead.") from exc
                raise HearthError(f"Cannot copy {src.name} into {self.models_dir}: {exc.strerror or exc}.") from exc
            raise
        with self._lock:
            data = self._load()
            for src_part, digest in zip(parts, hashes):
                dest = self.models_dir / src_part.name
                data["files"][self._key(dest)] = {"sha256": digest, "source": "import", "size": dest.stat().st_size,
                                                  "imported_from": str(src_part), "added_at": time.time()}
            self._save(data)
        self._info_cache.clear()
        yield ImportProgress(total, total, self.get(str(self.models_dir / parts[0].name)))

    def import_model(self, path: str | os.PathLike[str], *, copy: bool = False,
                     cancel: CancelToken | None = None) -> InstalledModel:
        model: InstalledModel | None = None
        for ev in self.iter_import(path, copy=copy, cancel=cancel):
            model = ev.model or model
        assert model is not None
        return model

    # --- Hugging Face cache -----------------------------------------------------------

    def find_hf_cache_models(self, cache_dir: str | os.PathLike[str] | None = None) -> list[CachedModel]:
        """GGUF models in the Hugging Face cache that are not in the library yet (import them in place)."""
        known = {os.path.realpath(m.path) for m in self.list_installed()}
        return [c for c in find_cached_models(cache_dir) if os.path.realpath(c.path) not in known]


def _request(state: PartState) -> DownloadRequest:
    return DownloadRequest(state.repo_id, state.filename, state.revision, sha256=state.sha256,
                           catalog_id=state.catalog_id)


def _renamed(model: InstalledModel, name: str) -> InstalledModel:
    return replace(model, name=name)
