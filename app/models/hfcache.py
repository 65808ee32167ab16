"""Find GGUF models already in the Hugging Face cache, so they are offered instead of downloaded again.

The cache layout is ``models--{owner}--{name}/snapshots/{commit}/{path}``,
each snapshot file a symlink into ``blobs/`` (a copy on Windows without
developer mode). An LFS blob is named after its sha256, which gives a
reference checksum for free. The cache folder is worked out from the
environment at call time, the way huggingface_hub does at import.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from app.gguf_names import SPLIT_RE, split_part_names

log = logging.getLogger(__name__)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def hf_cache_dir() -> Path:
    """``HF_HUB_CACHE``, else ``HUGGINGFACE_HUB_CACHE``, else ``$HF_HOME/hub`` (~/.cache/huggingface/hub)."""
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface")
    legacy = os.environ.get("HUGGINGFACE_HUB_CACHE") or os.path.join(home, "hub")
    return Path(os.path.expandvars(os.path.expanduser(os.environ.get("HF_HUB_CACHE") or legacy)))


@dataclass(frozen=True)
class CachedModel:
    """A GGUF model in the Hugging Face cache (split sets: the first part stands for the set)."""

    repo_id: str
    revision: str  # the snapshot's commit hash
    filename: str  # path inside the repo
    path: Path  # the snapshot path (what llama.cpp opens)
    size: int  # all parts
    n_parts: int
    sha256: str | None  # the blob's name when it is an LFS sha256

    @property
    def name(self) -> str:
        m = SPLIT_RE.match(Path(self.filename).name)
        return m.group("prefix") if m else Path(self.filename).stem


def blob_sha256(path: Path) -> str | None:
    """The sha256 a cache snapshot file is stored under, if it is one."""
    try:
        target = path.resolve()
    except OSError:
        return None
    if target.parent.name == "blobs" and _SHA256.match(target.name):
        return target.name
    return None


def find_cached_models(cache_dir: str | os.PathLike[str] | None = None) -> list[CachedModel]:
    """Every complete GGUF model in the cache, newest snapshot first per file; never raises on odd layouts."""
    root = Path(cache_dir) if cache_dir is not None else hf_cache_dir()
    found: list[CachedModel] = []
    if not root.is_dir():
        return found
    for repo_dir in sorted(root.glob("models--*")):
        repo_id = repo_dir.name[len("models--"):].replace("--", "/")
        snapshots = repo_dir / "snapshots"
        if not snapshots.is_dir():
            continue
        seen: set[str] = set()
        revs = sorted((p for p in snapshots.iterdir() if p.is_dir()), key=_mtime, reverse=True)
        for rev in revs:
            for f in sorted(rev.rglob("*.gguf")):
                rel = f.relative_to(rev).as_posix()
                if rel in seen or not f.exists():  # a dangling symlink: blob was deleted
                    continue
                m = SPLIT_RE.match(f.name)
                parts = [f]
                if m:
                    if int(m.group("no")) != 1:
                        continue
                    count = int(m.group("count"))
                    parts = [f.with_name(n) for n in split_part_names(m.group("prefix"), count)]
                    if not all(p.exists() for p in parts):
                        log.info("HF cache: %s %s is missing parts; not offered", repo_id, rel)
                        continue
                seen.add(rel)
                try:
                    size = sum(p.stat().st_size for p in parts)
                except OSError:
                    continue
                found.append(CachedModel(repo_id=repo_id, revision=rev.name, filename=rel, path=f, size=size,
                                         n_parts=len(parts), sha256=blob_sha256(f)))
    return found


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0
