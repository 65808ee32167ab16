"""Every proxy Settings accepts carries both the metadata requests and the file transfer.

A real SOCKS5 proxy on 127.0.0.1 (written here, RFC 1928/1929) relays to the
loopback fake hub; the hub's host name exists only in the proxy's own table,
so a download that completes went through the proxy for every request.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.errors import HearthError, SettingsError
from app.models import fetch
from app.models.download import DownloadJob, DownloadRequest, DownloadState
from app.models.library import ModelLibrary
from app.models.network import NetworkConfig
from app.settings import Settings
from tests.app.models.conftest import FAST
from tests.support.fakehub import FakeHub, make_blob

REPO = "org/tiny-GGUF"


def _recv(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


class Socks5Proxy:
    """A small SOCKS5 server: CONNECT only, optional user/password, names resolved from ``hosts``."""

    def __init__(self, hosts: dict[str, str], user: str | None = None, password: str | None = None) -> None:
        self.hosts = hosts
        self.user, self.password = user, password
        self.connects: list[tuple[str, int, int]] = []  # (host, port, address type)
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stopped = False
        self._spawn(self._accept)

    def _spawn(self, fn: object, *args: object) -> None:
        t = threading.Thread(target=fn, args=args, name="test-socks", daemon=True)  # type: ignore[arg-type]
        with self._lock:
            self._threads.append(t)
        t.start()

    def _track(self, s: socket.socket) -> None:
        with self._lock:
            self._socks.append(s)

    def _accept(self) -> None:
        self._server.settimeout(0.1)  # closing a socket does not wake accept(): poll the flag
        while not self._stopped:
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            self._track(client)
            self._spawn(self._serve, client)

    def _serve(self, client: socket.socket) -> None:
        try:
            ver, n = _recv(client, 2)
            methods = _recv(client, n)
            want = 2 if self.user is not None else 0
            if ver != 5 or want not in methods:
                client.sendall(b"\x05\xff")
                return
            client.sendall(bytes([5, want]))
            if want == 2:
                _, ulen = _recv(client, 2)
                user = _recv(client, ulen).decode()
                plen = _recv(client, 1)[0]
                password = _recv(client, plen).decode()
                ok = (user, password) == (self.user, self.password)
                client.sendall(b"\x01\x00" if ok else b"\x01\x01")
                if not ok:
                    return
            _, cmd, _, atyp = _recv(client, 4)
            if atyp == 1:
                host = socket.inet_ntoa(_recv(client, 4))
            elif atyp == 3:
                host = _recv(client, _recv(client, 1)[0]).decode()
            else:
                host = socket.inet_ntop(socket.AF_INET6, _recv(client, 16))
            port = int.from_bytes(_recv(client, 2), "big")
            self.connects.append((host, port, atyp))
            try:
                if cmd != 1:
                    raise OSError("only CONNECT")
                upstream = socket.create_connection((self.hosts.get(host, host), port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.sendall(b"\x05\x04\x00\x01" + bytes(6))  # host unreachable
                return
            self._track(upstream)
            client.sendall(b"\x05\x00\x00\x01" + bytes(6))
            self._spawn(self._pipe, upstream, client)
            self._pipe(client, upstream)
        except OSError:
            pass

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._stopped = True
        self._server.close()
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


@pytest.fixture
def socks() -> Iterator[Socks5Proxy]:
    proxy = Socks5Proxy({"hub.invalid": "127.0.0.1"})
    try:
        yield proxy
    finally:
        proxy.close()


def _download(fakehub: FakeHub, models_dir: Path, proxy: str, endpoint_host: str = "hub.invalid") -> list:
    net = NetworkConfig(endpoint=f"http://{endpoint_host}:{fakehub.port}", proxy=proxy)
    job = DownloadJob(DownloadRequest(REPO, "model.gguf"), models_dir, net, policy=FAST,
                      library=ModelLibrary(models_dir))
    return list(job.run())


def test_socks5h_carries_metadata_and_file(fakehub: FakeHub, socks: Socks5Proxy, models_dir: Path) -> None:
    data = make_blob(150_000, seed=3)
    fakehub.add_file(REPO, "model.gguf", data)
    events = _download(fakehub, models_dir, f"socks5h://127.0.0.1:{socks.port}")
    assert events[-1].state is DownloadState.COMPLETED, events[-1].message
    assert (models_dir / "model.gguf").read_bytes() == data
    # Names go to the proxy unresolved (address type 3): the hub's for metadata, the CDN's for the file.
    assert ("hub.invalid", fakehub.port, 3) in socks.connects
    assert ("127.0.0.1", fakehub.port, 3) in socks.connects
    assert all(atyp == 3 for _, _, atyp in socks.connects)
    assert any(r.path.startswith("/api/") for r in fakehub.requests)
    assert any(not r.path.startswith("/api/") for r in fakehub.requests)


def test_socks5_resolves_locally_and_logs_in(fakehub: FakeHub, models_dir: Path) -> None:
    proxy = Socks5Proxy({}, user="ann", password="p@ss word")
    try:
        fakehub.add_file(REPO, "model.gguf", make_blob(50_000, seed=4))
        events = _download(fakehub, models_dir, f"socks5://ann:p%40ss%20word@127.0.0.1:{proxy.port}",
                           endpoint_host="127.0.0.1")
        assert events[-1].state is DownloadState.COMPLETED, events[-1].message
        assert proxy.connects and all(c == ("127.0.0.1", fakehub.port, 1) for c in proxy.connects)
    finally:
        proxy.close()


def test_socks_failure_is_a_message_not_a_traceback(models_dir: Path, socks: Socks5Proxy) -> None:
    # The proxy cannot reach "nowhere.invalid": the file transfer says so.
    abort = fetch.AbortHandle()
    with pytest.raises(OSError, match=r"SOCKS proxy could not connect to nowhere.invalid:80 \(host unreachable\)"):
        fetch.open_url("http://nowhere.invalid/x", headers={}, abort=abort,
                       proxy=f"socks5h://127.0.0.1:{socks.port}")


@pytest.mark.parametrize("proxy", ["https://proxy.example:3128", "socks4://proxy.example:1080", "ftp://x"])
def test_settings_refuse_proxies_hearth_cannot_use(proxy: str) -> None:
    with pytest.raises(SettingsError, match=r"http://, socks5:// or socks5h://"):
        Settings(proxy=proxy).validate()


@pytest.mark.parametrize("proxy", ["http://proxy.example:3128", "socks5://p:1080", "socks5h://u:p@p:1080"])
def test_settings_accept_what_both_transfers_carry(proxy: str) -> None:
    Settings(proxy=proxy).validate()
    assert fetch.unsupported_proxy_message(proxy) is None


def test_an_https_proxy_from_the_environment_is_named(models_dir: Path) -> None:
    with pytest.raises(HearthError, match=r"'https://proxy.example' is not supported"):
        fetch.open_url("https://huggingface.co/x", headers={}, abort=fetch.AbortHandle(),
                       proxy="https://proxy.example:3128")
