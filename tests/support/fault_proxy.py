"""A loopback TCP proxy that breaks things on purpose, in front of a real server.

Faults: ``drop_after`` (forward that many bytes of the answer, then cut both
connections: a stream dropped mid-reply), ``status`` (answer every request with
that HTTP status and an OpenAI-style error body without reaching the server),
``stall_s`` (hold the answer back that long before forwarding: a slow server),
and ``tls`` (speak TLS with a self-signed certificate the client must refuse).
Binds 127.0.0.1 only; ``close()`` joins every thread it started.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 (openssl CLI)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


class FaultProxy:
    def __init__(self, upstream_port: int, *, drop_after: int | None = None, status: int | None = None,
                 stall_s: float = 0.0, retry_after: str | None = None, message: str | None = None,
                 tls_cert: tuple[Path, Path] | None = None) -> None:
        self.upstream_port = upstream_port
        self.drop_after = drop_after
        self.status = status
        self.stall_s = stall_s
        self.retry_after = retry_after
        self.message = message
        self.requests = 0
        self._tls: ssl.SSLContext | None = None
        if tls_cert is not None:
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(str(tls_cert[0]), str(tls_cert[1]))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._accept = threading.Thread(target=self._serve, name="fault-proxy", daemon=True)
        self._accept.start()

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}/v1"

    def _spawn(self, target, *args) -> None:  # type: ignore[no-untyped-def]
        t = threading.Thread(target=target, args=args, name="fault-proxy-conn", daemon=True)
        with self._lock:
            self._threads.append(t)
        t.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            with self._lock:
                self._socks.append(conn)
            self._spawn(self._handle, conn)

    def _handle(self, conn: socket.socket) -> None:
        if self._tls is not None:
            try:
                conn.settimeout(5)
                conn = self._tls.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError):
                conn.close()  # the client refused the certificate: what the test wants
                return
        self.requests += 1
        if self.status is not None:
            self._answer_status(conn)
            return
        try:
            up = socket.create_connection(("127.0.0.1", self.upstream_port))
        except OSError:
            conn.close()
            return
        with self._lock:
            self._socks.append(up)
        self._spawn(self._pump, conn, up, None, 0.0)
        self._pump(up, conn, self.drop_after, self.stall_s)

    def _answer_status(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                piece = conn.recv(65536)
                if not piece:
                    break
                data += piece
            reason = {401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests"}.get(self.status or 0, "Error")
            body = json.dumps({"error": {"message": self.message or f"fault proxy: {reason.lower()}", "type": "test",
                                         "code": self.status}}).encode()
            extra = f"Retry-After: {self.retry_after}\r\n" if self.retry_after else ""
            conn.sendall(f"HTTP/1.1 {self.status} {reason}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n".encode() + body)
        except OSError:
            pass
        finally:
            conn.close()

    def _pump(self, src: socket.socket, dst: socket.socket, limit: int | None, stall_s: float) -> None:
        sent = 0
        first = True
        try:
            src.settimeout(0.2)
            while not self._stop.is_set():
                try:
                    data = src.recv(65536)
                except (TimeoutError, socket.timeout):
                    continue
                if not data:
                    break
                if first and stall_s:
                    deadline = time.monotonic() + stall_s
                    while time.monotonic() < deadline and not self._stop.is_set():
                        time.sleep(0.02)
                first = False
                if limit is not None and sent + len(data) >= limit:
                    dst.sendall(data[: max(0, limit - sent)])
                    break  # cut both ends mid-answer
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._accept.join(5)
        with self._lock:
            socks, threads = list(self._socks), list(self._threads)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for t in threads:
            t.join(5)

    def __enter__(self) -> "FaultProxy":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
