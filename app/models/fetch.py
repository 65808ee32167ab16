"""Byte transfer for downloads: HTTP(S) GET with Range, redirects, proxies, always-on TLS checks.

huggingface_hub resolves what to fetch; this module moves the bytes, because
the transfer must resume after a restart, hash as it goes and stop within a
fraction of a second when the user pauses. ``AbortHandle.abort()`` (from any
thread) shuts the socket down, which wakes a read blocked on a stalled server
at once. The standard library's http.client is used directly: its
``readinto1`` path copies socket data straight into our buffers.
"""

from __future__ import annotations

import base64
import errno
import http.client
import logging
import select
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.errors import HearthError
from app.settings import PROXY_SCHEMES

log = logging.getLogger(__name__)

_REDIRECTS = (301, 302, 303, 307, 308)
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class Aborted(Exception):
    """Internal: the transfer was stopped on purpose (pause or cancel)."""


class AbortHandle:
    """Lets another thread stop the connection in use, even mid-read or mid-connect."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._aborted = False

    @property
    def aborted(self) -> bool:
        return self._aborted

    def reset(self) -> None:
        with self._lock:
            self._aborted = False
            self._sock = None

    def attach(self, sock: socket.socket) -> None:
        with self._lock:
            self._sock = sock
            if self._aborted:
                _shutdown(sock)

    def detach(self, sock: socket.socket | None = None) -> None:
        with self._lock:
            if sock is None or self._sock is sock:
                self._sock = None

    def abort(self) -> None:
        with self._lock:
            self._aborted = True
            if self._sock is not None:
                _shutdown(self._sock)

    def check(self) -> None:
        if self._aborted:
            raise Aborted()


def _shutdown(sock: socket.socket) -> None:
    # shutdown (not close) is safe while another thread is blocked in recv on
    # the same socket, and makes that recv return at once.
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _ssl_context() -> ssl.SSLContext:
    # certifi when available: python.org builds on macOS ship without a CA store.
    try:
        import certifi
    except ImportError:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


_SSL_CONTEXT: ssl.SSLContext | None = None
_SSL_LOCK = threading.Lock()


def ssl_context() -> ssl.SSLContext:
    """The one TLS context for downloads: certificates and host names are always checked."""
    global _SSL_CONTEXT
    with _SSL_LOCK:
        if _SSL_CONTEXT is None:
            _SSL_CONTEXT = _ssl_context()
        return _SSL_CONTEXT


def tls_failure_message(url: str, exc: BaseException) -> str:
    host = urllib.parse.urlsplit(url).hostname or url
    reason = getattr(exc, "verify_message", None) or str(exc)
    return (f"The certificate of {host} could not be verified ({reason}). Hearth always checks certificates: "
            "check the mirror address and proxy in Settings, and the computer's date and time.")


def _abortable_connect(abort: AbortHandle, connect_timeout: float, io_timeout: float) -> Any:
    """A socket.create_connection replacement that polls the abort flag while connecting."""

    def create(address: tuple[str, int], timeout: Any = None, source_address: Any = None) -> socket.socket:
        host, port = address
        last: OSError | None = None
        for family, stype, proto, _, addr in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
            sock = socket.socket(family, stype, proto)
            try:
                abort.attach(sock)
                sock.setblocking(False)
                err = sock.connect_ex(addr)
                deadline = time.monotonic() + connect_timeout
                while err in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY, 10035):
                    abort.check()
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError(f"connecting to {host}:{port} timed out")
                    _, writable, _ = select.select([], [sock], [], min(0.1, left))
                    if writable:
                        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        break
                abort.check()
                if err not in (0, errno.EISCONN):
                    raise OSError(err, f"cannot connect to {host}:{port}: {errno.errorcode.get(err, err)}")
                sock.setblocking(True)
                sock.settimeout(io_timeout)
                return sock
            except (OSError, Aborted) as exc:
                abort.detach(sock)
                sock.close()
                if isinstance(exc, Aborted):
                    raise
                last = exc
        raise last or OSError(f"cannot resolve {host}")

    return create


class _Conn(http.client.HTTPConnection):
    def __init__(self, host: str, port: int | None, abort: AbortHandle, connect_timeout: float,
                 io_timeout: float) -> None:
        super().__init__(host, port, timeout=io_timeout)
        self._abort = abort
        self._create_connection = _abortable_connect(abort, connect_timeout, io_timeout)

    def connect(self) -> None:
        super().connect()
        self._abort.attach(self.sock)


class _TLSConn(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int | None, abort: AbortHandle, connect_timeout: float,
                 io_timeout: float) -> None:
        super().__init__(host, port, timeout=io_timeout, context=ssl_context())
        self._abort = abort
        self._create_connection = _abortable_connect(abort, connect_timeout, io_timeout)

    def connect(self) -> None:
        super().connect()
        self._abort.attach(self.sock)


# PROXY_SCHEMES: the proxy kinds both transfers support, metadata (httpx) and
# files (here). An https:// proxy would need TLS inside TLS, which http.client cannot do.


@dataclass(frozen=True)
class _Proxy:
    scheme: str
    host: str
    port: int
    auth: str | None  # value of Proxy-Authorization (http)
    user: str | None = None  # socks5 username/password authentication
    password: str | None = None


def unsupported_proxy_message(proxy: str) -> str | None:
    """Why Hearth cannot use ``proxy``, or None when it can (no scheme means http://)."""
    try:
        parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return f"The proxy '{proxy}' is not a valid address: enter it as http://host:port or socks5://host:port."
    if parts.scheme not in PROXY_SCHEMES:
        return (f"The proxy '{parts.scheme}://{parts.hostname or ''}' is not supported: Hearth can use HTTP "
                "proxies (http://host:port) and SOCKS5 proxies (socks5://host:port or socks5h://host:port). "
                "Most proxies offered as https:// also accept http://.")
    if not parts.hostname:
        return f"The proxy '{proxy}' names no host: enter it as http://host:port or socks5://host:port."
    return None


def _parse_proxy(proxy: str) -> _Proxy:
    problem = unsupported_proxy_message(proxy)
    if problem:
        raise HearthError(problem + " Change it in Settings (or in the HTTPS_PROXY environment variable).")
    parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    assert parts.hostname
    user = urllib.parse.unquote(parts.username) if parts.username else None
    password = urllib.parse.unquote(parts.password or "") if parts.username else None
    auth = None
    if user is not None:
        auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    default_port = 8080 if parts.scheme == "http" else 1080
    return _Proxy(parts.scheme, parts.hostname, parts.port or default_port, auth, user, password)


class SocksError(OSError):
    """The SOCKS proxy refused or garbled the connection."""


_SOCKS_REPLIES = {1: "general failure", 2: "connection not allowed by the proxy's rules", 3: "network unreachable",
                  4: "host unreachable", 5: "connection refused", 6: "TTL expired", 7: "command not supported",
                  8: "address type not supported"}


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise SocksError("the SOCKS proxy closed the connection during the handshake")
        buf += chunk
    return buf


def _socks_connect(px: _Proxy, abort: AbortHandle, connect_timeout: float, io_timeout: float) -> Any:
    """A create_connection replacement that reaches the address through a SOCKS5 proxy (RFC 1928/1929).

    socks5h lets the proxy resolve the host name; socks5 resolves it here.
    """
    to_proxy = _abortable_connect(abort, connect_timeout, io_timeout)

    def create(address: tuple[str, int], timeout: Any = None, source_address: Any = None) -> socket.socket:
        host, port = address
        sock = to_proxy((px.host, px.port))
        try:
            methods = b"\x00\x02" if px.user is not None else b"\x00"
            sock.sendall(b"\x05" + bytes([len(methods)]) + methods)
            ver, method = _recv_exact(sock, 2)
            if ver != 5:
                raise SocksError(f"{px.host}:{px.port} is not a SOCKS5 proxy")
            if method == 2 and px.user is not None:
                user, pw = px.user.encode(), (px.password or "").encode()
                if len(user) > 255 or len(pw) > 255:
                    raise SocksError("the SOCKS user name or password is longer than 255 bytes")
                sock.sendall(b"\x01" + bytes([len(user)]) + user + bytes([len(pw)]) + pw)
                if _recv_exact(sock, 2)[1] != 0:
                    raise SocksError("the SOCKS proxy rejected the user name or password")
            elif method != 0:
                raise SocksError("the SOCKS proxy wants a login method Hearth does not offer "
                                 "(give user:password@ in the proxy address)")
            if px.scheme == "socks5h":
                name = host.encode("idna")
                addr = b"\x03" + bytes([len(name)]) + name
            else:
                family, _, _, _, sa = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0]
                packed = socket.inet_pton(family, sa[0])
                addr = (b"\x01" if family == socket.AF_INET else b"\x04") + packed
            sock.sendall(b"\x05\x01\x00" + addr + port.to_bytes(2, "big"))
            ver, rep, _, atyp = _recv_exact(sock, 4)
            if ver != 5 or rep != 0:
                reason = _SOCKS_REPLIES.get(rep, f"error {rep}") if ver == 5 else "a garbled reply"
                raise SocksError(f"the SOCKS proxy could not connect to {host}:{port} ({reason})")
            skip = {1: 4, 4: 16}.get(atyp)
            if skip is None:
                skip = _recv_exact(sock, 1)[0]
            _recv_exact(sock, skip + 2)  # the proxy's bound address and port
            return sock
        except BaseException:
            abort.detach(sock)
            sock.close()
            raise

    return create


def proxy_for(url: str, configured: str | None) -> str | None:
    """The proxy to use for ``url``: the configured one, else the environment's (loopback never)."""
    if configured:
        return configured
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if host in _LOOPBACK or urllib.request.proxy_bypass(host):
        return None
    return urllib.request.getproxies().get(parts.scheme)


class Response:
    """An open response; read the body with ``readinto1`` and always ``close``."""

    def __init__(self, url: str, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse,
                 abort: AbortHandle) -> None:
        self.url = url
        self.status = resp.status
        self.headers = resp.headers
        self._conn = conn
        self._resp = resp
        self._abort = abort
        length = resp.getheader("Content-Length")
        self.content_length = int(length) if length and length.isdigit() else None
        # With a known length and no chunking, read the socket's buffered
        # stream directly: one syscall and one copy per call.
        self._direct = self.content_length is not None and not resp.chunked
        self._left = self.content_length if self._direct else None

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def readinto1(self, buf: memoryview) -> int:
        """Read what is available (at least one byte, at most len(buf)); 0 at the end of the body.

        Raises ConnectionError when the server closes early.
        """
        if self._direct:
            assert self._left is not None
            if self._left == 0:
                return 0
            want = min(len(buf), self._left)
            fp = self._resp.fp
            if fp is None:
                raise ConnectionError("the connection was closed")
            n = fp.readinto1(buf[:want])
            if not n:
                raise ConnectionError(f"the server closed the connection with {self._left:,} bytes still to send")
            self._left -= n
            return n
        data = self._resp.read1(len(buf))
        n = len(data)
        buf[:n] = data
        return n

    def read_small(self, limit: int = 65536) -> bytes:
        """Read a short body (error pages); never more than ``limit`` bytes."""
        try:
            return self._resp.read(limit)
        except (OSError, http.client.HTTPException):
            return b""

    def close(self) -> None:
        sock = self._conn.sock
        try:
            self._resp.close()
        finally:
            self._conn.close()
            self._abort.detach(sock)


def open_url(url: str, *, headers: Mapping[str, str], abort: AbortHandle, proxy: str | None = None,
             connect_timeout: float = 20.0, io_timeout: float = 60.0, max_redirects: int = 10) -> Response:
    """GET ``url`` following redirects; the Authorization header never follows to another host.

    Returns the first non-redirect response whatever its status. Raises
    OSError / http.client.HTTPException on connection trouble, Aborted when
    ``abort`` was triggered.
    """
    hdrs = dict(headers)
    origin = _origin(url)
    for _ in range(max_redirects + 1):
        abort.check()
        resp = _request(url, hdrs, abort, proxy_for(url, proxy), connect_timeout, io_timeout)
        if resp.status not in _REDIRECTS:
            return resp
        location = resp.header("Location")
        resp.read_small()
        resp.close()
        if not location:
            raise http.client.HTTPException(f"redirect without a Location from {_origin(url)}")
        url = urllib.parse.urljoin(url, location)
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise http.client.HTTPException(f"refusing a redirect to {urllib.parse.urlsplit(url).scheme}:")
        if _origin(url) != origin:
            # Like browsers and httpx: a token meant for the hub must not reach a CDN.
            hdrs = {k: v for k, v in hdrs.items() if k.lower() != "authorization"}
    raise http.client.HTTPException(f"too many redirects fetching {url.split('?')[0]}")


def _origin(url: str) -> tuple[str, str, int | None]:
    p = urllib.parse.urlsplit(url)
    return p.scheme, (p.hostname or "").lower(), p.port


def _request(url: str, headers: dict[str, str], abort: AbortHandle, proxy: str | None,
             connect_timeout: float, io_timeout: float) -> Response:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HearthError(f"Cannot download from '{url}': only http and https addresses are supported.")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    hdrs = dict(headers)
    conn: http.client.HTTPConnection
    if proxy and _parse_proxy(proxy).scheme != "http":
        px = _parse_proxy(proxy)
        # The SOCKS tunnel replaces the TCP connection; HTTP and TLS run over it unchanged.
        conn = (_TLSConn if parts.scheme == "https" else _Conn)(parts.hostname, parts.port, abort,
                                                                 connect_timeout, io_timeout)
        conn._create_connection = _socks_connect(px, abort, connect_timeout, io_timeout)
    elif proxy:
        px = _parse_proxy(proxy)
        if parts.scheme == "https":
            conn = _TLSConn(px.host, px.port, abort, connect_timeout, io_timeout)
            tunnel_headers = {"Proxy-Authorization": px.auth} if px.auth else None
            conn.set_tunnel(parts.hostname, parts.port or 443, headers=tunnel_headers)
        else:
            conn = _Conn(px.host, px.port, abort, connect_timeout, io_timeout)
            target = url  # absolute form for a plain-HTTP proxy
            if px.auth:
                hdrs["Proxy-Authorization"] = px.auth
    elif parts.scheme == "https":
        conn = _TLSConn(parts.hostname, parts.port, abort, connect_timeout, io_timeout)
    else:
        conn = _Conn(parts.hostname, parts.port, abort, connect_timeout, io_timeout)
    try:
        conn.request("GET", target, headers=hdrs)
        resp = conn.getresponse()
    except BaseException:
        sock = conn.sock
        conn.close()
        abort.detach(sock)
        raise
    return Response(url, conn, resp, abort)
