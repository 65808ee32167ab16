"""The files of an unfinished download: ``NAME.part`` (the bytes) and ``NAME.part.json`` (how to resume).

Also the disk-space rules and the low-level writes, shared by downloads and imports.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO

from app.errors import DownloadError
from app.models.errors import DiskFullError
from app.models.units import format_bytes

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]
    import msvcrt

PART_SUFFIX = ".part"
STATE_SUFFIX = ".part.json"
STATE_VERSION = 1
_WRITE_SLICE = 512 << 10


@dataclass
class PartState:
    """What ``NAME.part.json`` holds: enough to resume after a restart (never a token)."""

    repo_id: str
    filename: str  # path inside the repo
    revision: str
    url: str  # the /resolve/ URL (a CDN's signed URL expires, so it is not kept)
    size: int
    sha256: str | None
    git_oid: str | None
    etag: str | None = None  # the server's ETag for the bytes, sent back as If-Range
    catalog_id: str | None = None
    version: int = STATE_VERSION
    started_at: float = field(default_factory=time.time)

    def matches(self, *, size: int, sha256: str | None, git_oid: str | None, filename: str) -> bool:
        """True when the part belongs to this very file (same size and checksum)."""
        return (self.version == STATE_VERSION and self.size == size and self.sha256 == sha256
                and self.git_oid == git_oid and self.filename == filename)


def read_part_state(path: Path) -> PartState | None:
    """The state file, or None if it is missing, unreadable or from another version."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            return None
        return PartState(**{k: data[k] for k in PartState.__dataclass_fields__ if k in data})
    except (OSError, ValueError, TypeError, KeyError):
        return None


def write_part_state(path: Path, state: PartState) -> None:
    """Write the state file atomically (a crash leaves the old one or the new one)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def disk_margin(size: int) -> int:
    """Space kept free besides the file itself: a full disk breaks more than the download."""
    return max(256 << 20, size // 50)


def check_disk_space(folder: Path, need: int) -> None:
    """Raise DiskFullError (before any byte is written) when ``folder`` has less than ``need`` free."""
    free = shutil.disk_usage(folder).free
    if free < need:
        raise DiskFullError(
            f"Not enough disk space in {folder}: need {format_bytes(need)}, {format_bytes(free)} free. "
            "Free some space or choose another models folder in Settings."
        )


def is_disk_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1))


def open_part(path: Path) -> BinaryIO:
    """Open (or create) a part file for reading and writing, unbuffered, without truncating it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
    return os.fdopen(fd, "r+b", buffering=0)


def lock_part(f: BinaryIO, name: str) -> None:
    """Keep a second Hearth (GUI and CLI at once) from writing the same part file."""
    try:
        if fcntl is not None:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
    except OSError as exc:
        raise DownloadError(f"{name} is already being downloaded by another Hearth window or command.") from exc


def write_all(f: BinaryIO, data: memoryview) -> None:
    """Write every byte, in slices of 512 KiB.

    On Linux, multi-MiB writes into the page cache hit the kernel's dirty-page
    throttling hard (measured here: 1 GiB in ~5 s with 4 MiB writes, ~0.6 s
    with 512 KiB). An unbuffered file may also write less than asked.
    """
    while len(data):
        n = f.write(data[:_WRITE_SLICE])
        if n is None or n <= 0:
            raise OSError(errno.EIO, "the write made no progress")
        data = data[n:]
