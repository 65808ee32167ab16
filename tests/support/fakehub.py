"""A loopback stand-in for the Hugging Face Hub, with fault injection, for tests and the benchmark.

Serves the endpoints huggingface_hub and Hearth's downloader use, shaped like
the real ones: ``POST /api/models/{repo}/paths-info/{rev}``,
``GET /api/models/{repo}/tree/{rev}``, ``GET /api/models?search=``,
``HEAD|GET /{repo}/resolve/{rev}/{file}`` (LFS files answer 302 to a CDN URL
with ``X-Linked-Size``, ``X-Linked-Etag``, ``X-Repo-Commit``), and
``GET /cdn/{sha256}`` with byte ranges. Per-file faults: dropped connections
at given offsets, Range ignored, a corrupted byte, a stall, throttling, and
queued error statuses (404/401/429/503 with Retry-After). It also answers
absolute-form requests, so it can stand in as an HTTP proxy. Nothing here is
used by the app at run time; ``bench.py`` and the tests start it on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import logging
import os
import random
import re
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

COMMIT = "0123456789abcdef0123456789abcdef01234567"
_PATHS_INFO = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/paths-info/(?P<rev>[^/]+)$")
_TREE = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?P<sub>/.*)?$")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
_CDN = re.compile(r"^/cdn/(?P<key>[0-9a-f]+)$")
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
_SEND_CHUNK = 256 << 10


@dataclass
class Faults:
    """What goes wrong when a file is fetched. Lists are consumed as the faults fire."""

    drop_at: list[int] = field(default_factory=list)  # absolute offsets: close the connection there, once each
    ignore_range: bool = False  # answer 200 with the whole file to Range requests
    corrupt_at: int | None = None  # flip this byte every time it is sent
    stall_at: int | None = None  # stop sending at this offset until the server stops
    throttle_bps: int | None = None
    resolve_errors: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # next resolve answers


@dataclass
class FakeFile:
    filename: str
    data: bytes | None = None
    path: Path | None = None  # a big file served from disk (sendfile) instead of memory
    lfs: bool = True
    faults: Faults = field(default_factory=Faults)
    size: int = 0
    sha256: str = ""
    git_oid: str = ""

    def __post_init__(self) -> None:
        if self.data is None and self.path is None:
            raise ValueError("a FakeFile needs data or a path")
        if self.data is not None:
            self.size = len(self.data)
            self.sha256 = hashlib.sha256(self.data).hexdigest()
            blob = hashlib.sha1(b"blob %d\0" % self.size + self.data, usedforsecurity=False)
        else:
            assert self.path is not None
            self.size = self.path.stat().st_size
            h = hashlib.sha256()
            blob = hashlib.sha1(b"blob %d\0" % self.size, usedforsecurity=False)
            with open(self.path, "rb") as f:
                while chunk := f.read(8 << 20):
                    h.update(chunk)
                    blob.update(chunk)
            self.sha256 = h.hexdigest()
        if self.lfs:
            pointer = (f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\n"
                       f"size {self.size}\n").encode()
            self.git_oid = hashlib.sha1(b"blob %d\0" % len(pointer) + pointer, usedforsecurity=False).hexdigest()
        else:
            self.git_oid = blob.hexdigest()

    def entry(self) -> dict[str, Any]:
        """The file as the Hub's paths-info and tree endpoints describe it."""
        d: dict[str, Any] = {"type": "file", "oid": self.git_oid, "size": self.size, "path": self.filename}
        if self.lfs:
            d["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": 134}
        return d


@dataclass
class FakeRepo:
    repo_id: str
    files: dict[str, FakeFile] = field(default_factory=dict)
    token: str | None = None  # gated: only this bearer token may read it
    downloads: int = 0
    likes: int = 0
    tags: tuple[str, ...] = ("gguf",)


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    range: str | None
    authorized: bool  # an Authorization header was sent
    status: int


class FakeHub:
    """``with FakeHub() as hub: hub.add_file(...); HfApi(endpoint=hub.url)``."""

    def __init__(self, host: str = "127.0.0.1", cdn_host: str | None = None,
                 tls: tuple[Path, Path] | None = None) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[RequestRecord] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.stalled = threading.Event()  # set when a stall fault starts holding a response
        self.api_errors: list[tuple[int, dict[str, str]]] = []  # next answers of /api/ requests
        self._conns: set[socket.socket] = set()
        self._server = _Server((host, 0), _Handler)
        self._server.hub = self
        scheme = "http"
        if tls is not None:  # (certfile, keyfile): serve HTTPS, e.g. with a self-signed certificate
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(tls[0]), str(tls[1]))
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        self.port = self._server.server_address[1]
        self.url = f"{scheme}://{host}:{self.port}"
        self.cdn_url = f"{scheme}://{cdn_host or host}:{self.port}"
        self._thread: threading.Thread | None = None

    # --- set-up --------------------------------------------------------------

    def add_repo(self, repo_id: str, *, token: str | None = None, downloads: int = 0,
                 tags: tuple[str, ...] = ("gguf",)) -> FakeRepo:
        repo = self.repos.setdefault(repo_id, FakeRepo(repo_id, token=token, downloads=downloads, tags=tags))
        repo.token = token if token is not None else repo.token
        return repo

    def add_file(self, repo_id: str, filename: str, data: bytes | None = None, *, path: Path | None = None,
                 lfs: bool = True, token: str | None = None) -> FakeFile:
        repo = self.add_repo(repo_id, token=token)
        f = FakeFile(filename, data=data, path=path, lfs=lfs)
        repo.files[filename] = f
        return f

    def file(self, repo_id: str, filename: str) -> FakeFile:
        return self.repos[repo_id].files[filename]

    def ranges(self, filename: str) -> list[str | None]:
        """The Range headers of the byte requests for a file (None: the whole file), in order."""
        keys = {f.sha256 for r in self.repos.values() for f in r.files.values() if f.filename.endswith(filename)}
        with self._lock:
            return [r.range for r in self.requests
                    if r.method == "GET" and (m := _CDN.match(r.path.split("?")[0])) and m.group("key") in keys]

    # --- life cycle ------------------------------------------------------------

    def start(self) -> FakeHub:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fakehub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()  # joins the handler threads
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Server(http.server.ThreadingHTTPServer):
    hub: FakeHub
    daemon_threads = True
    block_on_close = True
    allow_reuse_address = True


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 5  # idle keep-alive connections end, so the server can stop
    server: _Server

    # --- plumbing ---------------------------------------------------------------

    @property
    def hub(self) -> FakeHub:
        return self.server.hub

    def setup(self) -> None:
        super().setup()
        with self.hub._lock:
            self.hub._conns.add(self.connection)

    def finish(self) -> None:
        with self.hub._lock:
            self.hub._conns.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("fakehub: " + format, *args)

    def _record(self, status: int) -> None:
        with self.hub._lock:
            self.hub.requests.append(RequestRecord(self.command, self._path(), self.headers.get("Range"),
                                                   self.headers.get("Authorization") is not None, status))

    def _path(self) -> str:
        # Absolute-form requests arrive when the server is used as a proxy.
        if self.path.startswith(("http://", "https://")):
            p = urllib.parse.urlsplit(self.path)
            return p.path + (f"?{p.query}" if p.query else "")
        return self.path

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        self._record(status)
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _error(self, status: int, code: str, message: str) -> None:
        self._json({"error": message}, status, {"X-Error-Code": code, "X-Error-Message": message})

    def _repo(self, repo_id: str) -> FakeRepo | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", f"Repository not found: {repo_id}")
            return None
        if repo.token is not None:
            auth = self.headers.get("Authorization") or ""
            if auth != f"Bearer {repo.token}":
                if auth:
                    self._error(403, "GatedRepo", f"Access to model {repo_id} is restricted.")
                else:
                    self._error(401, "GatedRepo",
                                f"Access to model {repo_id} is restricted. You must be authenticated to access it.")
                return None
        return repo

    # --- endpoints ----------------------------------------------------------------

    def _injected_api_error(self, path: str) -> bool:
        if path.startswith("/api/") and self.hub.api_errors:
            status, headers = self.hub.api_errors.pop(0)
            self._json({"error": f"injected {status}"}, status, headers)
            return True
        return False

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        path = urllib.parse.urlsplit(self._path()).path
        if self._injected_api_error(path):
            return
        m = _PATHS_INFO.match(path)
        if not m:
            self._error(404, "NotFound", f"no route {path}")
            return
        repo = self._repo(m.group("repo"))
        if repo is None:
            return
        if "json" in (self.headers.get("Content-Type") or ""):
            wanted = list(json.loads(body or "{}").get("paths", []))
        else:
            wanted = urllib.parse.parse_qs(body).get("paths", [])
        self._json([repo.files[p].entry() for p in wanted if p in repo.files])

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        parts = urllib.parse.urlsplit(self._path())
        path = urllib.parse.unquote(parts.path)
        query = urllib.parse.parse_qs(parts.query)
        if self._injected_api_error(path):
            return
        if path == "/api/models":
            self._search(query)
        elif m := _TREE.match(path):
            repo = self._repo(m.group("repo"))
            if repo is not None:
                sub = (m.group("sub") or "").strip("/")
                self._json([f.entry() for name, f in sorted(repo.files.items()) if name.startswith(sub)])
        elif m := _RESOLVE.match(path):
            self._resolve(m.group("repo"), m.group("file"))
        elif m := _CDN.match(path):
            f = next((f for r in self.hub.repos.values() for f in r.files.values() if f.sha256 == m.group("key")),
                     None)
            if f is None:
                self._error(404, "EntryNotFound", "no such object")
            else:
                self._serve_bytes(f)
        else:
            self._error(404, "NotFound", f"no route {path}")

    def _search(self, query: dict[str, list[str]]) -> None:
        text = (query.get("search") or [""])[0].lower()
        wanted_tags = set(query.get("filter") or [])
        limit = int((query.get("limit") or ["1000"])[0])
        hits = [r for r in self.hub.repos.values()
                if text in r.repo_id.lower() and wanted_tags <= set(r.tags) and r.token is None]
        hits.sort(key=lambda r: -r.downloads)
        self._json([{"id": r.repo_id, "_id": r.repo_id, "downloads": r.downloads, "likes": r.likes,
                     "tags": list(r.tags), "gated": False, "private": False,
                     "lastModified": "2025-08-05T12:00:00.000Z", "library_name": "gguf"} for r in hits[:limit]])

    def _resolve(self, repo_id: str, filename: str) -> None:
        repo = self._repo(repo_id)
        if repo is None:
            return
        f = repo.files.get(filename)
        if f is None:
            self._error(404, "EntryNotFound", f"{filename} does not exist on main")
            return
        if self.command == "GET" and f.faults.resolve_errors:
            status, headers = f.faults.resolve_errors.pop(0)
            self._json({"error": f"injected {status}"}, status, headers)
            return
        common = {"X-Repo-Commit": COMMIT, "ETag": f'"{f.git_oid}"', "Accept-Ranges": "bytes"}
        if f.lfs:
            common.update({"X-Linked-Size": str(f.size), "X-Linked-Etag": f'"{f.sha256}"',
                           "Location": f"{self.hub.cdn_url}/cdn/{f.sha256}?X-Signature=fake"})
            self._send(302, b"", common)
            return
        self._serve_bytes(f, common)

    def _serve_bytes(self, f: FakeFile, extra: dict[str, str] | None = None) -> None:
        faults = f.faults
        etag = f'"{f.sha256}"' if f.lfs else f'"{f.git_oid}"'
        start, end = 0, f.size
        rng = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        partial = False
        if rng and not faults.ignore_range and (if_range is None or if_range == etag):
            m = _RANGE.match(rng.strip())
            if not m or int(m.group(1)) >= f.size:
                self._send(416, b"", {"Content-Range": f"bytes */{f.size}"})
                return
            start = int(m.group(1))
            end = min(f.size, int(m.group(2)) + 1) if m.group(2) else f.size
            partial = True
        status = 206 if partial else 200
        self._record(status)
        self.send_response(status)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start))
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        if partial:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{f.size}")
        self.end_headers()
        if self.command == "HEAD":
            return
        try:
            self._send_body(f, start, end)
        except OSError:
            self.close_connection = True  # the client went away (pause, cancel)

    def _send_body(self, f: FakeFile, start: int, end: int) -> None:
        faults = f.faults
        plain = (not faults.drop_at and faults.corrupt_at is None and faults.stall_at is None
                 and not faults.throttle_bps)
        if f.path is not None and plain:
            with open(f.path, "rb") as src:
                self.connection.sendfile(src, start, end - start)
            return
        fh = open(f.path, "rb") if f.path is not None else None
        t0 = time.monotonic()
        pos = start
        try:
            while pos < end:
                stop = min(end, pos + _SEND_CHUNK)
                drop = next((d for d in sorted(faults.drop_at) if pos <= d < stop), None)
                if faults.stall_at is not None and pos <= faults.stall_at < stop:
                    self._write(f, fh, pos, faults.stall_at)
                    self.hub.stalled.set()
                    self.hub._stopping.wait()  # until the test ends
                    self._abort_connection()
                    return
                if drop is not None:
                    faults.drop_at.remove(drop)
                    self._write(f, fh, pos, drop)
                    self._abort_connection()
                    return
                self._write(f, fh, pos, stop)
                pos = stop
                if faults.throttle_bps:
                    ahead = (pos - start) / faults.throttle_bps - (time.monotonic() - t0)
                    if ahead > 0 and self.hub._stopping.wait(ahead):
                        self._abort_connection()
                        return
        finally:
            if fh is not None:
                fh.close()

    def _write(self, f: FakeFile, fh: Any, a: int, b: int) -> None:
        if b <= a:
            return
        if fh is not None:
            fh.seek(a)
            data = bytearray(fh.read(b - a))
        else:
            assert f.data is not None
            data = bytearray(f.data[a:b])
        c = f.faults.corrupt_at
        if c is not None and a <= c < b:
            data[c - a] ^= 0xFF
        self.wfile.write(data)

    def _abort_connection(self) -> None:
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def make_blob(size: int, seed: int = 0) -> bytes:
    """Deterministic incompressible-looking bytes for test files."""
    return random.Random(seed).randbytes(size)


def write_blob_file(path: Path, size: int, chunk: int = 8 << 20) -> Path:
    """A big random file for the benchmark (os.urandom: fast, not compressible)."""
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(chunk, left)
            f.write(os.urandom(n))
            left -= n
    return path


def main(argv: list[str] | None = None) -> int:
    """Serve files from another process (the benchmark does, so the server does not share our GIL).

    ``python -m tests.support.fakehub REPO_ID FILE [FILE...]`` prints the URL, then serves until stdin closes.
    """
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2:
        print("usage: python -m tests.support.fakehub REPO_ID FILE [FILE...]", file=sys.stderr)
        return 2
    hub = FakeHub()
    for name in args[1:]:
        p = Path(name)
        hub.add_file(args[0], p.name, path=p)
    with hub:
        print(hub.url, flush=True)
        sys.stdin.read()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
