"""Checksums for model files: hashing on a helper thread while downloading, and of files on disk.

hashlib releases the GIL on large updates, so a helper thread hashes one
buffer while the download thread receives and writes the next: verification
costs no wall-clock time when the disk or network is the bottleneck.
Hugging Face publishes sha256 for LFS files and the git blob sha1 for small
files kept in git; both are supported.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SHA256 = "sha256"
GIT_SHA1 = "git-sha1"  # sha1 of b"blob <size>\0" + content: a git blob id

CHUNK = 4 << 20


def new_hasher(kind: str, size: int) -> Any:
    """A fresh hashlib object for ``kind`` (``size`` is the whole file's, for git's header)."""
    if kind == SHA256:
        return hashlib.sha256()
    if kind == GIT_SHA1:
        h = hashlib.sha1(usedforsecurity=False)
        h.update(b"blob %d\0" % size)
        return h
    raise ValueError(f"unknown hash kind {kind!r}")


def iter_hash(path: str | os.PathLike[str], hasher: Any, *, limit: int | None = None,
              chunk: int = CHUNK) -> Iterator[int]:
    """Feed the file (its first ``limit`` bytes) to ``hasher``; yields the byte count after each chunk.

    The caller checks its cancel/pause flags between yields.
    """
    buf = bytearray(chunk)
    mv = memoryview(buf)
    done = 0
    with open(path, "rb", buffering=0) as f:
        while limit is None or done < limit:
            want = chunk if limit is None else min(chunk, limit - done)
            n = f.readinto(mv[:want])
            if not n:
                break
            hasher.update(mv[:n])
            done += n
            yield done


def hash_file(path: str | os.PathLike[str], kind: str = SHA256) -> str:
    """The hex digest of a whole file (no progress, no cancel: for small files and tests)."""
    h = new_hasher(kind, Path(path).stat().st_size)
    for _ in iter_hash(path, h):
        pass
    return str(h.hexdigest())


class HashPipeline:
    """Hashes buffers on a helper thread, in submission order, recycling a fixed set of buffers.

    Use: ``buf = acquire()``, fill it, ``submit(buf, n)``; ``drain()`` waits
    until everything submitted is hashed; ``close()`` stops the thread (always
    call it, e.g. in a ``finally``).
    """

    def __init__(self, hasher: Any, *, buffer_size: int = CHUNK, n_buffers: int = 4) -> None:
        self.hasher = hasher
        self.buffer_size = buffer_size
        self._free: queue.Queue[bytearray] = queue.Queue()
        for _ in range(n_buffers):
            self._free.put(bytearray(buffer_size))
        self._work: queue.Queue[tuple[bytearray, int] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="hearth-hash", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            item = self._work.get()
            try:
                if item is None:
                    return
                buf, n = item
                self.hasher.update(memoryview(buf)[:n])
                self._free.put(buf)
            finally:
                self._work.task_done()

    def acquire(self, timeout: float = 0.1) -> bytearray | None:
        """A free buffer, or None after ``timeout`` (so the caller can check its flags)."""
        try:
            return self._free.get(timeout=timeout)
        except queue.Empty:
            return None

    def release(self, buf: bytearray) -> None:
        """Give back a buffer that was acquired but not submitted."""
        self._free.put(buf)

    def submit(self, buf: bytearray, n: int) -> None:
        self._work.put((buf, n))

    def drain(self) -> None:
        self._work.join()

    def hexdigest(self) -> str:
        self.drain()
        return str(self.hasher.hexdigest())

    def close(self) -> None:
        if self._thread.is_alive():
            self._work.put(None)
            self._thread.join()
