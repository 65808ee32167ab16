"""Running the API: the listening socket, and uvicorn on a thread of its own for the window.

The socket is bound before uvicorn starts, so ``--port 0`` (any free port) can be
reported at once and a port that is taken is said plainly. Binding anything but
loopback needs an API key: the server would otherwise hand the model, and the
user's machine's time, to everyone on the network.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from typing import Any

import uvicorn

from app.errors import HearthError
from app.server.app import APIService, create_app

log = logging.getLogger(__name__)


class ServerError(HearthError):
    """The server cannot start (address taken, unsafe binding)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(host: str, api_key: str | None) -> None:
    if not is_loopback(host) and not api_key:
        raise ServerError(
            f"Serving on {host} would let every computer that can reach this one use the model. "
            "Give an API key (--api-key KEY, or a key in Settings › Local server), or serve on 127.0.0.1."
        )


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one)."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        what = "is already in use" if exc.errno in (48, 98, 10048) else f"cannot be used ({exc.strerror or exc})"
        raise ServerError(f"The address {host}:{port} {what}. Choose another port (--port N, or 0 for any).") from exc
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def uvicorn_server(service: APIService) -> uvicorn.Server:
    config = uvicorn.Config(create_app(service), log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=2, ws="none")
    return uvicorn.Server(config)


class LocalServer:
    """The API on a background thread (the window's Local server switch, and tests)."""

    def __init__(self, service: APIService, host: str = "127.0.0.1", port: int = 0) -> None:
        check_binding(host, service.options.api_key)
        self.service = service
        self.host = host
        self.port = port
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 10.0) -> str:
        """Bind, start serving, return the URL (``http://HOST:PORT``)."""
        sock = bind_socket(self.host, self.port)
        self._sock = sock
        self.url = url_of(sock)
        self._server = uvicorn_server(self.service)
        self._thread = threading.Thread(target=self._serve, name="hearth-api-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self._server.started:
            self.stop()
            raise ServerError(f"The local server did not start on {self.url}; see the log.")
        log.info("local API server listening on %s", self.url)
        return self.url

    def _serve(self) -> None:
        assert self._server is not None and self._sock is not None
        try:
            self._server.run(sockets=[self._sock])
        except Exception:  # noqa: BLE001 - the thread must end with a log line, not silently
            log.exception("the local API server stopped with an error")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving: queued requests get 503, the running one is cancelled."""
        self.service.close()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._server = None

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
