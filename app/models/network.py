"""Network settings, retry policy and cancel tokens shared by the hub client and the downloader.

Settings are passed in explicitly (never read from a global) so that a change in
the Settings dialog takes effect on the next call, and so tests can point
everything at a loopback server.
"""

from __future__ import annotations

import email.utils
import os
import threading
import time
from dataclasses import dataclass, field

from app.errors import Cancelled
from app.models.errors import OfflineError

DEFAULT_ENDPOINT = "https://huggingface.co"


@dataclass(frozen=True)
class NetworkConfig:
    """How (and whether) Hearth may reach Hugging Face.

    ``endpoint`` None means ``$HF_ENDPOINT`` or huggingface.co, read at call
    time. ``proxy`` is an ``http://``, ``socks5://`` or ``socks5h://``
    ``[user:pass@]host:port`` proxy (app.settings.PROXY_SCHEMES); None means
    the usual ``HTTPS_PROXY``/``HTTP_PROXY`` environment variables. The token
    is never part of ``repr`` so it cannot end up in a log line.
    """

    offline: bool = False
    endpoint: str | None = None
    proxy: str | None = None
    token: str | None = field(default=None, repr=False)

    @property
    def resolved_endpoint(self) -> str:
        return (self.endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")

    def require_online(self, action: str) -> None:
        """Raise OfflineError before any socket is opened when offline mode is on."""
        if self.offline:
            raise OfflineError(
                f"Offline mode is on: Hearth did not connect to the internet to {action}. "
                "Turn Offline mode off in Settings to use Hugging Face; installed models keep working."
            )


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before trying a failed request again.

    ``max_attempts`` counts consecutive failures that made no progress: a
    download that keeps moving forward between dropped connections is never
    given up on.
    """

    max_attempts: int = 8
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    max_retry_after_s: float = 600.0
    connect_timeout_s: float = 20.0
    stall_timeout_s: float = 60.0  # no byte for this long: treat the connection as dropped

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt ``failures + 1``; a server's Retry-After wins."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.max_retry_after_s))
        return float(min(self.max_delay_s, self.base_delay_s * 2.0 ** max(0, failures - 1)))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None if absent or malformed."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class CancelToken:
    """Thread-safe cancel flag for long jobs; ``wait`` doubles as an interruptible sleep."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds; True as soon as the token is cancelled."""
        return self._event.wait(timeout)

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("Cancelled.")
