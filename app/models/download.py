"""Resumable, verified model downloads: ``NAME.part`` + ``NAME.part.json``, Range requests, sha256.

A DownloadJob is a generator job: ``run()`` yields DownloadProgress events
(at most ~10 a second while bytes flow) and ends with one whose state is
COMPLETED, PAUSED, CANCELLED or FAILED. ``pause()`` and ``cancel()`` may be
called from any thread and take effect within a fraction of a second, even on
a stalled connection. The part file survives a pause, a quit or a crash; the
next run re-hashes it and asks the server for the rest. The file is renamed
into place only after its sha256 matches, so a partial or corrupt file is
never mistaken for a model.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import shutil
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from app.errors import Cancelled, DownloadError, HearthError
from app.models import fetch, hub
from app.models.errors import AuthRequiredError, DiskFullError, HashMismatchError, NetworkError, RemoteNotFoundError, \
    UnsafeFileNameError
from app.models.filenames import local_file_name
from app.models.hashing import CHUNK, SHA256, HashPipeline, iter_hash, new_hasher
from app.models.network import CancelToken, NetworkConfig, RetryPolicy, parse_retry_after
from app.models.partfile import PART_SUFFIX, STATE_SUFFIX, PartState, check_disk_space, disk_margin, is_disk_full, \
    lock_part, open_part, read_part_state, write_all, write_part_state
from app.models.units import format_bytes

log = logging.getLogger(__name__)

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class DownloadState(str, Enum):
    QUEUED = "queued"
    STARTING = "starting"  # asking Hugging Face for the size and checksum
    CHECKING = "checking"  # re-hashing a partial download before resuming it
    DOWNLOADING = "downloading"
    RETRYING = "retrying"  # waiting before the next try (retry_in_s says how long)
    VERIFYING = "verifying"
    COMPLETED = "completed"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (DownloadState.COMPLETED, DownloadState.PAUSED, DownloadState.CANCELLED,
                        DownloadState.FAILED)


@dataclass(frozen=True)
class DownloadRequest:
    """What to download: a file of a Hugging Face repository."""

    repo_id: str
    filename: str  # path inside the repo
    revision: str = "main"
    sha256: str | None = None  # expected (from the catalog); the hub's published value wins
    catalog_id: str | None = None

    @property
    def basename(self) -> str:
        """The file's name for display (may be unsafe as a path: see ``local_name``)."""
        return self.filename.rsplit("/", 1)[-1]

    @property
    def local_name(self) -> str:
        """The name in the models folder; raises UnsafeFileNameError for a name that is not a plain file name."""
        return local_file_name(self.filename, source=self.repo_id)

    @property
    def job_id(self) -> str:
        return f"{self.repo_id}@{self.revision}:{self.filename}"


@dataclass(frozen=True)
class DownloadProgress:
    """One progress event. While CHECKING, bytes_done/total count the part file being re-hashed."""

    job_id: str
    filename: str
    state: DownloadState
    bytes_done: int = 0
    total: int | None = None
    speed_bps: float | None = None
    eta_s: float | None = None
    message: str = ""
    retry_in_s: float | None = None
    resumed_from: int = 0  # bytes already on disk when this run started
    error: HearthError | None = None
    path: Path | None = None  # the installed file, once COMPLETED

    @property
    def fraction(self) -> float | None:
        return self.bytes_done / self.total if self.total else None


class DownloadRecorder(Protocol):
    """Where a finished download is recorded (ModelLibrary implements it)."""

    def record_download(self, path: Path, *, sha256: str | None, git_oid: str | None, repo_id: str,
                        filename: str, revision: str, catalog_id: str | None) -> None: ...

    def recorded_hash(self, path: Path) -> str | None: ...


# A generator that yields progress and returns the final event.
_Job = Generator[DownloadProgress, None, DownloadProgress]


class _Stop(Exception):
    """Internal: pause or cancel was requested."""


class _Retry(Exception):
    """Internal: this attempt failed in a way worth trying again."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _Speed:
    """Speed over the last few seconds (a whole-run average would hide a stall)."""

    def __init__(self, window_s: float = 4.0) -> None:
        self._window = window_s
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, done: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[1][0] > self._window:
            self._samples.popleft()

    def reset(self) -> None:
        self._samples.clear()

    def rate(self) -> float | None:
        if len(self._samples) < 2:
            return None
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 - t0 >= 0.2 else None


class DownloadJob:
    """One file download into ``models_dir``. See the module docstring for the life cycle.

    ``opener`` opens the part file for writing (tests inject faults through
    it). ``library`` records the verified file so ``verify`` can re-check it.
    """

    def __init__(self, request: DownloadRequest, models_dir: str | os.PathLike[str], net: NetworkConfig, *,
                 policy: RetryPolicy | None = None, library: DownloadRecorder | None = None,
                 opener: Callable[[Path], BinaryIO] | None = None, progress_interval_s: float = 0.1,
                 buffer_size: int = CHUNK) -> None:
        self.request = request
        self.models_dir = Path(models_dir)
        self.net = net
        self.policy = policy or RetryPolicy()
        self.library = library
        self._opener = opener or open_part
        self._interval = progress_interval_s
        self._buffer_size = buffer_size
        self._pause = threading.Event()
        self._cancel = threading.Event()
        self._stop = CancelToken()  # set by pause and cancel: wakes back-off sleeps and hub retries
        self._abort = fetch.AbortHandle()
        self._running = threading.Lock()
        self.state = DownloadState.QUEUED
        self.error: HearthError | None = None
        self.final_path: Path | None = None
        self.last: DownloadProgress = DownloadProgress(request.job_id, request.basename, DownloadState.QUEUED)
        # per-run state
        self._file: BinaryIO | None = None
        self._pipe: HashPipeline | None = None
        self._done = 0
        self._total: int | None = None
        self._resumed_from = 0
        self._speed = _Speed()
        self._etag: str | None = None
        self._hash_kind = SHA256
        self._last_emit = 0.0

    # --- paths --------------------------------------------------------------

    @property
    def job_id(self) -> str:
        return self.request.job_id

    @property
    def target(self) -> Path:
        return self.models_dir / self.request.local_name

    @property
    def part_path(self) -> Path:
        return self.models_dir / (self.request.local_name + PART_SUFFIX)

    @property
    def state_path(self) -> Path:
        return self.models_dir / (self.request.local_name + STATE_SUFFIX)

    # --- control (any thread) ------------------------------------------------

    def pause(self) -> None:
        """Stop soon, keeping the part file so a later ``run()`` resumes it."""
        self._pause.set()
        self._stop.cancel()
        self._abort.abort()

    def cancel(self) -> None:
        """Stop soon and delete the part file. A job that is not running is cancelled at once."""
        self._cancel.set()
        self._stop.cancel()
        self._abort.abort()
        if self._running.acquire(blocking=False):
            try:
                if self.state is not DownloadState.COMPLETED:
                    self._delete_part()
                    self.state = DownloadState.CANCELLED
            finally:
                self._running.release()

    @property
    def running(self) -> bool:
        return self._running.locked()

    # --- the job ----------------------------------------------------------------

    def run(self) -> Iterator[DownloadProgress]:
        """Download (or resume) the file, yielding progress; the last event says how it ended."""
        if not self._running.acquire(timeout=1.0):  # a concurrent cancel() holds it only briefly
            raise RuntimeError(f"{self.job_id} is already running")
        try:
            if self._cancel.is_set():
                self._delete_part()
                yield self._finish(DownloadState.CANCELLED, "Download cancelled.")
                return
            self._pause.clear()
            self._stop = CancelToken()
            self._abort.reset()
            self._speed.reset()
            self.error = None
            final: DownloadProgress | None = None
            try:
                final = yield from self._download()
            except _Stop:
                self._close()
                if self._cancel.is_set():
                    self._delete_part()
                    final = self._finish(DownloadState.CANCELLED, "Download cancelled; the partial file was deleted.")
                else:
                    final = self._finish(DownloadState.PAUSED, "Paused. Resume to continue where it stopped.")
            except HearthError as exc:
                self._close()
                self.error = exc
                log.warning("download of %s failed: %s", self.job_id, exc)
                final = self._finish(DownloadState.FAILED, str(exc), error=exc)
            finally:
                self._close()
                if final is None:  # the consumer left early (generator closed, Ctrl+C): the part stays
                    self.state = DownloadState.PAUSED
            yield final
        finally:
            self._running.release()

    # --- internals ----------------------------------------------------------------

    def _event(self, state: DownloadState, message: str = "", **kw: Any) -> DownloadProgress:
        self.state = state
        rate = self._speed.rate() if state is DownloadState.DOWNLOADING else None
        eta = None
        if rate and self._total:
            eta = max(0.0, (self._total - self._done) / rate)
        values: dict[str, Any] = dict(job_id=self.job_id, filename=self.request.basename, state=state,
                                      bytes_done=self._done, total=self._total, speed_bps=rate, eta_s=eta,
                                      message=message, resumed_from=self._resumed_from)
        values.update(kw)
        self.last = DownloadProgress(**values)
        return self.last

    def _finish(self, state: DownloadState, message: str, **kw: Any) -> DownloadProgress:
        return self._event(state, message, **kw)

    def _check_stop(self) -> None:
        if self._pause.is_set() or self._cancel.is_set():
            raise _Stop()

    def _close(self) -> None:
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None

    def _delete_part(self) -> None:
        try:
            paths = (self.part_path, self.state_path)
        except UnsafeFileNameError:
            return  # such a name never became a file
        for p in paths:
            try:
                p.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("could not delete %s: %s", p, exc)

    def _download(self) -> _Job:
        req = self.request
        local_file_name(req.filename, source=req.repo_id)  # an unsafe name fails here, before any I/O
        self.net.require_online(f"download {req.basename}")
        yield self._event(DownloadState.STARTING, f"Looking up {req.filename} on {self.net.resolved_endpoint}")
        try:
            self.models_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DownloadError(f"Cannot create the models folder {self.models_dir}: {exc.strerror or exc}.") from exc
        try:
            remote = hub.file_info(req.repo_id, req.filename, self.net, revision=req.revision,
                                   policy=self.policy, cancel=self._stop)
        except HearthError:
            self._check_stop()
            raise
        self._check_stop()
        if req.sha256 and remote.sha256 and req.sha256.lower() != remote.sha256.lower():
            log.warning("%s: the catalog's sha256 differs from the hub's; verifying against the hub's", req.job_id)
        if remote.expected_hash is None and req.sha256:
            remote = replace(remote, sha256=req.sha256.lower())
        if remote.expected_hash is None:
            raise DownloadError(
                f"Hugging Face published no checksum for {req.filename}, so Hearth cannot verify it. "
                "Download it yourself and import it instead."
            )
        self._total = remote.size
        if self.target.exists():
            return (yield from self._existing_target(remote))

        url = hub.file_url(req.repo_id, req.filename, self.net, revision=req.revision)
        headers = hub.auth_headers(self.net)
        saved = read_part_state(self.state_path)
        self._done = 0
        if self.part_path.exists() and saved is not None and saved.matches(size=remote.size, sha256=remote.sha256, git_oid=remote.git_oid,
                                                                      filename=remote.filename):
            self._done = min(self.part_path.stat().st_size, remote.size)
            self._etag = saved.etag
        else:
            if self.part_path.exists():
                log.info("%s: discarding a part file from another version of the file", req.basename)
            self._delete_part()
            self._etag = None
        self._resumed_from = self._done
        check_disk_space(self.models_dir, remote.size - self._done + disk_margin(remote.size))
        state = PartState(req.repo_id, req.filename, req.revision, url, remote.size, remote.sha256,
                          remote.git_oid, self._etag, req.catalog_id)
        try:
            write_part_state(self.state_path, state)
            self._file = self._opener(self.part_path)
        except OSError as exc:
            raise self._write_error(exc) from exc
        lock_part(self._file, req.basename)
        self._hash_kind = remote.hash_kind or SHA256
        hasher = new_hasher(self._hash_kind, remote.size)
        if self._done:
            yield from self._rehash(hasher)
        # Truncate only when there is something to cut: on ext4, truncating to
        # zero marks the file for a forced flush on close (auto_da_alloc),
        # which costs a second per GB at the end of every download.
        if os.fstat(self._file.fileno()).st_size != self._done:
            self._file.truncate(self._done)
        self._file.seek(self._done)
        self._pipe = HashPipeline(hasher, buffer_size=self._buffer_size)

        failures = 0
        while self._done < remote.size:
            self._check_stop()
            before = self._done
            try:
                yield from self._attempt(url, headers, remote, state)
            except _Retry as retry:
                if self._done > before:
                    failures = 0
                failures += 1
                if failures >= self.policy.max_attempts:
                    raise NetworkError(
                        f"Downloading {req.basename} failed {failures} times in a row ({retry.reason}). "
                        "The partial file is kept: check your connection and resume the download."
                    ) from retry
                delay = self.policy.delay(failures, retry.retry_after)
                log.info("%s: %s; retry %d in %.1fs", req.basename, retry.reason, failures, delay)
                self._speed.reset()
                yield self._event(DownloadState.RETRYING, f"{retry.reason}; retrying in {delay:.0f}s",
                                  retry_in_s=delay)
                if self._stop.wait(delay):
                    raise _Stop() from retry
        return (yield from self._verify_and_install(remote))

    def _existing_target(self, remote: hub.RemoteFile) -> _Job:
        """The file is already in the models folder: done if it is this file, else refuse to overwrite."""
        expected = remote.expected_hash
        recorded = self.library.recorded_hash(self.target) if self.library is not None else None
        if recorded is None or recorded != expected:
            if self.target.stat().st_size == remote.size:
                hasher = new_hasher(remote.hash_kind or SHA256, remote.size)
                self._done = 0
                self._total = remote.size
                for n in iter_hash(self.target, hasher):
                    self._check_stop()
                    self._done = n
                    if self._due():
                        yield self._event(DownloadState.CHECKING, f"Checking the existing {self.target.name}")
                recorded = str(hasher.hexdigest())
            if recorded != expected:
                raise DownloadError(
                    f"A different file named {self.target.name} is already in {self.models_dir}. "
                    "Remove it first (hearth models rm) or choose another models folder."
                )
            self._record(remote)
        self._done = remote.size
        self.final_path = self.target
        return self._finish(DownloadState.COMPLETED, f"{self.target.name} is already installed and verified.",
                            path=self.target)

    def _due(self) -> bool:
        now = time.monotonic()
        if now - self._last_emit >= self._interval:
            self._last_emit = now
            return True
        return False

    def _rehash(self, hasher: Any) -> Iterator[DownloadProgress]:
        """Hash the bytes already on disk so the final checksum covers the whole file."""
        have = self._done
        self._done = 0
        yield self._event(DownloadState.CHECKING, "Checking the partial download", total=have)
        done = 0
        for done in iter_hash(self.part_path, hasher, limit=have):
            self._check_stop()
            if self._due():
                self._done = done
                yield self._event(DownloadState.CHECKING, "Checking the partial download", total=have)
        self._done = done  # a part shorter than recorded: resume from what is really there
        self._resumed_from = done

    def _restart(self, why: str) -> None:
        """The server sent the whole file: drop what we have and start from byte 0."""
        log.info("%s: %s; starting over from the beginning", self.request.basename, why)
        assert self._pipe is not None and self._file is not None
        self._pipe.drain()
        self._pipe.hasher = new_hasher(self._hash_kind, self._total or 0)
        self._file.truncate(0)
        self._file.seek(0)
        self._done = 0
        self._speed.reset()

    def _attempt(self, url: str, base_headers: dict[str, str], remote: hub.RemoteFile,
                 state: PartState) -> Iterator[DownloadProgress]:
        headers = dict(base_headers)
        if self._done:
            headers["Range"] = f"bytes={self._done}-"
            if self._etag and not self._etag.startswith("W/"):
                headers["If-Range"] = self._etag
        try:
            resp = fetch.open_url(url, headers=headers, abort=self._abort, proxy=self.net.proxy,
                                  connect_timeout=self.policy.connect_timeout_s,
                                  io_timeout=self.policy.stall_timeout_s)
        except fetch.Aborted as exc:
            raise _Stop() from exc
        except ssl.SSLCertVerificationError as exc:
            raise DownloadError(fetch.tls_failure_message(url, exc)) from exc
        except (OSError, http.client.HTTPException) as exc:
            if self._abort.aborted:
                raise _Stop() from exc
            raise _Retry(f"connection failed ({_reason(exc)})") from exc
        try:
            status = resp.status
            if status in (401, 403):
                raise self._auth_error(status)
            if status == 404:
                raise RemoteNotFoundError(
                    f"{remote.repo_id} no longer has {remote.filename} ({self.net.resolved_endpoint} answered 404)."
                )
            if status == 416:
                if self._done >= remote.size:
                    return
                self._restart("the server refused the byte range")
                raise _Retry("the server refused the byte range", retry_after=0)
            if status in (408, 429) or status >= 500:
                raise _Retry(f"the server answered {status}", parse_retry_after(resp.header("Retry-After")))
            if status == 200:
                if self._done:
                    self._restart("the server ignored the byte range")
                if resp.content_length is not None and resp.content_length != remote.size:
                    raise DownloadError(
                        f"The server sent {resp.content_length:,} bytes for {remote.filename}, but Hugging Face "
                        f"lists {remote.size:,}. Try again later."
                    )
            elif status == 206:
                m = _CONTENT_RANGE.match(resp.header("Content-Range") or "")
                if not m or int(m.group(1)) != self._done or m.group(3) not in ("*", str(remote.size)):
                    self._restart(f"the server sent an unexpected range ({resp.header('Content-Range')})")
                    raise _Retry("the server sent an unexpected byte range", retry_after=0)
            else:
                raise DownloadError(f"The server answered {status} for {remote.filename}. Try again later.")
            etag = resp.header("ETag")
            if etag and etag != self._etag:
                self._etag = etag
                state.etag = etag
                try:
                    write_part_state(self.state_path, state)
                except OSError as exc:
                    raise self._write_error(exc) from exc
            yield from self._stream(resp, remote.size)
        finally:
            resp.close()

    def _auth_error(self, status: int) -> AuthRequiredError:
        repo = self.request.repo_id
        if self.net.token:
            return AuthRequiredError(
                f"Hugging Face refused access to {repo} ({status}) with your token. Make sure you accepted the "
                f"model's terms on its page and that the token is valid, then try again."
            )
        return AuthRequiredError(
            f"{repo} needs a login ({status}): add a Hugging Face access token in Settings "
            "(kept in the system keyring) and accept the model's terms on its page."
        )

    def _stream(self, resp: fetch.Response, size: int) -> Iterator[DownloadProgress]:
        pipe, f = self._pipe, self._file
        assert pipe is not None and f is not None
        self._speed.add(self._done)
        yield self._event(DownloadState.DOWNLOADING)
        while self._done < size:
            self._check_stop()
            buf = pipe.acquire()
            if buf is None:
                continue
            mv = memoryview(buf)
            cap = min(len(buf), size - self._done)
            filled = 0
            failure: BaseException | None = None
            ended = False
            started = time.monotonic()
            try:
                while filled < cap:
                    n = resp.readinto1(mv[filled:cap])
                    if n == 0:
                        ended = True
                        break
                    filled += n
                    if time.monotonic() - started >= self._interval:
                        break  # hand over what we have: progress stays live on slow links
            except (OSError, http.client.HTTPException) as exc:
                failure = exc
            if filled:
                try:
                    write_all(f, mv[:filled])
                except OSError as exc:
                    pipe.release(buf)
                    raise self._write_error(exc) from exc
                pipe.submit(buf, filled)
                self._done += filled
                self._speed.add(self._done)
            else:
                pipe.release(buf)
            if failure is not None:
                if self._abort.aborted:
                    raise _Stop() from failure
                raise _Retry(f"the connection dropped ({_reason(failure)})") from failure
            if ended and self._done < size:
                if self._abort.aborted:
                    raise _Stop()
                raise _Retry("the server ended the response early")
            if self._due():
                yield self._event(DownloadState.DOWNLOADING)

    def _write_error(self, exc: OSError) -> HearthError:
        if is_disk_full(exc):
            try:
                free = format_bytes(shutil.disk_usage(self.models_dir).free)
            except OSError:
                free = "almost nothing"
            left = format_bytes((self._total or 0) - self._done)
            return DiskFullError(
                f"Not enough disk space in {self.models_dir}: need {left} more, {free} free. "
                "The partial download is kept: free some space, then resume."
            )
        return DownloadError(f"Cannot write {self.part_path}: {exc.strerror or exc}.")

    def _verify_and_install(self, remote: hub.RemoteFile) -> _Job:
        pipe, f = self._pipe, self._file
        assert pipe is not None and f is not None
        yield self._event(DownloadState.VERIFYING, "Verifying the checksum")
        digest = pipe.hexdigest()
        expected = (remote.expected_hash or "").lower()
        if digest != expected:
            self._close()
            self._delete_part()
            what = "sha256" if remote.sha256 else "git checksum"
            raise HashMismatchError(
                f"{remote.basename} is corrupt: its {what} is {digest[:16]}…, expected {expected[:16]}…. "
                "The damaged file was deleted; try the download again."
            )
        # No fsync: like curl, browsers and huggingface_hub, the data is left to
        # the OS to write back; waiting for the disk would cost seconds per GB
        # (the loopback benchmark halves). A power cut right after a download
        # is caught by "verify", which compares the recorded sha256.
        self._close()
        try:
            os.replace(self.part_path, self.target)
        except OSError as exc:
            raise DownloadError(f"Cannot move the finished download into place as {self.target}: "
                                f"{exc.strerror or exc}.") from exc
        try:
            self.state_path.unlink()
        except FileNotFoundError:
            pass
        self._record(remote)
        self.final_path = self.target
        return self._finish(DownloadState.COMPLETED, f"{self.target.name} downloaded and verified.",
                            path=self.target)

    def _record(self, remote: hub.RemoteFile) -> None:
        if self.library is None:
            return
        try:
            self.library.record_download(self.target, sha256=remote.sha256, git_oid=remote.git_oid,
                                         repo_id=remote.repo_id, filename=remote.filename,
                                         revision=remote.revision, catalog_id=self.request.catalog_id)
        except OSError as exc:
            # The model is installed and verified; only the record for a later "verify" is missing.
            log.warning("could not record %s in the library: %s", self.target.name, exc)


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 120 else text[:117] + "..."


def run_to_end(job: DownloadJob, on_progress: Callable[[DownloadProgress], None] | None = None) -> Path:
    """Run a job to its end on this thread; the installed path, or the job's error raised.

    A pause or cancel ends it with app.errors.Cancelled.
    """
    last: DownloadProgress | None = None
    for last in job.run():
        if on_progress is not None:
            on_progress(last)
    if last is None or last.state is DownloadState.CANCELLED or last.state is DownloadState.PAUSED:
        raise Cancelled(last.message if last else "Cancelled.")
    if last.state is DownloadState.FAILED:
        assert last.error is not None
        raise last.error
    assert last.path is not None
    return last.path
