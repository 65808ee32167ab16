"""One Hearth per data folder: a second start brings the running window forward.

The first instance listens on a local socket named after the data folder; a
later start connects, passes its ``--model`` (if any) and exits, so two processes
never write the same database.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject
from PySide6.QtNetwork import QLocalServer, QLocalSocket

log = logging.getLogger(__name__)


def server_name(data_dir: Path) -> str:
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    return f"hearth-{digest}"


def ask_running_instance(data_dir: Path, message: dict, timeout_ms: int = 500) -> bool:
    """True if another instance got ``message`` (this process should then exit)."""
    sock = QLocalSocket()
    sock.connectToServer(server_name(data_dir))
    if not sock.waitForConnected(timeout_ms):
        return False
    sock.write(json.dumps(message).encode() + b"\n")
    sock.flush()
    sock.waitForBytesWritten(timeout_ms)
    sock.disconnectFromServer()
    return True


class InstanceServer(QObject):
    def __init__(self, data_dir: Path, on_message: Callable[[dict], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._on_message = on_message
        self.server = QLocalServer(self)
        name = server_name(data_dir)
        if not self.server.listen(name):
            # A stale socket from a crashed instance: nobody answered ask_running_instance.
            QLocalServer.removeServer(name)
            if not self.server.listen(name):
                log.warning("single-instance server could not listen: %s", self.server.errorString())
        self.server.newConnection.connect(self._on_server_new_connection)

    def _on_server_new_connection(self) -> None:
        while self.server.hasPendingConnections():
            sock = self.server.nextPendingConnection()
            sock.readyRead.connect(lambda s=sock: self._read(s))

    def _read(self, sock: QLocalSocket) -> None:
        while sock.canReadLine():
            line = bytes(sock.readLine()).decode("utf-8", "replace").strip()
            try:
                msg = json.loads(line) if line else {}
            except ValueError:
                continue
            self._on_message(msg if isinstance(msg, dict) else {})

    def close(self) -> None:
        self.server.close()
