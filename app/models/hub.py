"""Hugging Face metadata through huggingface_hub: file sizes and hashes, search, repo listings, URLs.

This is the only module that imports huggingface_hub, and it does so lazily:
the library reads ``HF_HUB_OFFLINE`` and ``HF_ENDPOINT`` once at import, so
``configure_environment`` must run first, and the endpoint is passed
explicitly on every call so a changed setting takes effect without a restart.
Every network function checks offline mode before anything else, so no
socket is opened when it is on. Library exceptions are turned into
HubError subclasses with messages a person can act on.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

from app.errors import Cancelled
from app.gguf_names import SPLIT_RE
from app.models.errors import AuthRequiredError, HubError, NetworkError, OfflineError, RemoteNotFoundError
from app.models.fetch import tls_failure_message
from app.models.filenames import is_plain_remote_name
from app.models.hashing import GIT_SHA1, SHA256
from app.models.network import CancelToken, NetworkConfig, RetryPolicy, parse_retry_after

log = logging.getLogger(__name__)

T = TypeVar("T")
_RETRY_STATUS = (408, 429, 500, 502, 503, 504)

_lock = threading.Lock()
_installed_for_proxy: tuple[str | None] | None = None  # the proxy of the client factory we installed


def configure_environment(offline: bool) -> None:
    """Call at start-up, before anything imports huggingface_hub.

    Sets ``HF_HUB_OFFLINE`` so the library itself refuses the network too, and
    turns its telemetry off. Hearth's own check (``NetworkConfig.require_online``)
    is what guarantees no connection when offline mode is switched on later.
    """
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    if offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
    elif os.environ.get("HF_HUB_OFFLINE") == "1" and _set_by_hearth.get("offline"):
        # Offline mode was switched off in Settings: undo what Hearth set, also in the
        # library's import-time constants if it is already loaded.
        os.environ.pop("HF_HUB_OFFLINE", None)
    _set_by_hearth["offline"] = offline
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None and hasattr(constants, "HF_HUB_OFFLINE"):
        constants.HF_HUB_OFFLINE = offline or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


_set_by_hearth: dict[str, bool] = {}


def _hf() -> ModuleType:
    # Imported on first use, not at module import: see the module docstring.
    import huggingface_hub
    import huggingface_hub.errors
    import huggingface_hub.utils

    return huggingface_hub


def _prepare(net: NetworkConfig, action: str) -> ModuleType:
    net.require_online(action)
    hf = _hf()
    _install_client(hf, net.proxy)
    return hf


def _install_client(hf: ModuleType, proxy: str | None) -> None:
    """Give huggingface_hub an httpx client with the configured proxy and timeouts (TLS checks stay on)."""
    global _installed_for_proxy
    with _lock:
        if _installed_for_proxy == (proxy,):
            return
        import httpx2

        try:  # the hook that enforces HF_HUB_OFFLINE and tags requests; private, so guarded
            from huggingface_hub.utils._http import hf_request_event_hook
            hooks: dict[str, list[Any]] = {"request": [hf_request_event_hook]}
        except ImportError:
            hooks = {}

        def factory() -> Any:
            # Unlike the library's default (no timeout), a stalled metadata call ends.
            return httpx2.Client(event_hooks=hooks, follow_redirects=True, proxy=proxy,
                                 timeout=httpx2.Timeout(60.0, connect=20.0))

        hf.set_client_factory(factory)
        _installed_for_proxy = (proxy,)


def _token(net: NetworkConfig) -> str | bool:
    # False, not None: never fall back to a token huggingface_hub finds on disk.
    return net.token or False


def auth_headers(net: NetworkConfig) -> dict[str, str]:
    """Headers for a file request: user agent and, when a token is set, Authorization."""
    hf = _prepare(net, "download a model")
    headers = dict(hf.utils.build_hf_headers(token=_token(net), library_name="hearth"))
    headers["Accept-Encoding"] = "identity"  # byte ranges must count the file's own bytes
    return headers


def file_url(repo_id: str, filename: str, net: NetworkConfig, revision: str = "main") -> str:
    """The ``/resolve/`` URL of a file on the configured endpoint."""
    hf = _prepare(net, "download a model")
    return str(hf.hf_hub_url(repo_id, filename, revision=revision, endpoint=net.resolved_endpoint))


@dataclass(frozen=True)
class RemoteFile:
    """A file in a Hugging Face repository, as its metadata describes it."""

    repo_id: str
    filename: str  # path inside the repo
    size: int
    sha256: str | None  # LFS files: the published sha256
    git_oid: str | None  # the git blob id (sha1 over a header + content)
    revision: str = "main"

    @property
    def hash_kind(self) -> str | None:
        return SHA256 if self.sha256 else GIT_SHA1 if self.git_oid else None

    @property
    def expected_hash(self) -> str | None:
        return self.sha256 or self.git_oid

    @property
    def basename(self) -> str:
        return self.filename.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class RemoteModelFile:
    """One GGUF model in a repository: a single file, or every part of a split set."""

    repo_id: str
    name: str  # the file name, or the split set's prefix + ".gguf"
    files: tuple[RemoteFile, ...]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def is_split(self) -> bool:
        return len(self.files) > 1

    @property
    def first(self) -> RemoteFile:
        return self.files[0]


@dataclass(frozen=True)
class RemoteRepo:
    """A search hit."""

    repo_id: str
    downloads: int | None
    likes: int | None
    gated: bool
    last_modified: str | None
    tags: tuple[str, ...]


def _describe(repo_id: str, filename: str | None) -> str:
    return f"{repo_id}/{filename}" if filename else repo_id


def _wrap(hf: ModuleType, exc: Exception, repo_id: str | None, filename: str | None,
          net: NetworkConfig) -> Exception:
    """A HearthError for a huggingface_hub/httpx exception, or the exception itself to retry."""
    errors = hf.errors
    what = _describe(repo_id, filename) if repo_id else "Hugging Face"
    where = net.resolved_endpoint
    if isinstance(exc, errors.OfflineModeIsEnabled):
        return OfflineError(f"Offline mode is on (HF_HUB_OFFLINE is set): Hearth cannot reach {where}.")
    status = None
    response = getattr(exc, "response", None)
    if response is not None:
        status = getattr(response, "status_code", None)
    if isinstance(exc, errors.GatedRepoError) or status == 403:
        if net.token:
            return AuthRequiredError(
                f"Your Hugging Face token has no access to {repo_id}. Open {where}/{repo_id} while logged in, "
                "accept the model's terms, then try again."
            )
        return AuthRequiredError(
            f"{repo_id} is gated: accept its terms at {where}/{repo_id}, then add a Hugging Face access token "
            "in Settings (Hearth keeps it in the system keyring) and try again."
        )
    if status == 401:
        if net.token:
            return AuthRequiredError(
                f"Hugging Face refused the token for {repo_id}: it is invalid or has no access to this repository. "
                "Create a new read token at huggingface.co/settings/tokens and enter it in Settings."
            )
        return AuthRequiredError(
            f"{repo_id} was not found or needs a login: it may be private or gated. Check the name; if it is "
            "gated or private, add a Hugging Face access token in Settings (kept in the system keyring)."
        )
    if isinstance(exc, errors.RevisionNotFoundError):
        return RemoteNotFoundError(f"{repo_id} has no revision by that name. Check the revision or use 'main'.")
    if isinstance(exc, (errors.RemoteEntryNotFoundError, errors.EntryNotFoundError)):
        return RemoteNotFoundError(f"{what} does not exist. List the repository's files to find the right name.")
    if isinstance(exc, errors.RepositoryNotFoundError) or status == 404:
        return RemoteNotFoundError(
            f"{what} was not found on {where}. Check the repository name (owner/name) and the file name."
        )
    if status is not None and status not in _RETRY_STATUS:
        return HubError(f"{where} answered {status} for {what}. Try again later.")
    return exc


def _call(fn: Callable[[], T], *, net: NetworkConfig, action: str, repo_id: str | None = None,
          filename: str | None = None, policy: RetryPolicy | None = None,
          cancel: CancelToken | None = None) -> T:
    """Run a huggingface_hub call with Hearth's retry policy and error messages."""
    hf = _prepare(net, action)
    import httpx2

    policy = policy or RetryPolicy()
    failures = 0
    while True:
        try:
            return fn()
        except (hf.errors.HfHubHTTPError, hf.errors.OfflineModeIsEnabled, httpx2.TransportError) as exc:
            if "CERTIFICATE_VERIFY_FAILED" in str(exc):  # not transient: never retried, never bypassed
                raise HubError(tls_failure_message(net.resolved_endpoint, exc)) from exc
            wrapped = _wrap(hf, exc, repo_id, filename, net)
            if wrapped is not exc:
                raise wrapped from exc
            failures += 1
            response = getattr(exc, "response", None)
            status = getattr(response, "status_code", None) if response is not None else None
            reason = f"HTTP {status}" if status else type(exc).__name__
            # No route to the server at all (DNS, refused, no network): a few quick tries, not minutes.
            limit = min(policy.max_attempts, 3) if isinstance(exc, httpx2.ConnectError) else policy.max_attempts
            if failures >= limit:
                raise NetworkError(
                    f"Could not reach {net.resolved_endpoint} to {action} ({reason}, {failures} tries). "
                    "Check your internet connection, proxy and mirror settings, then try again."
                ) from exc
            retry_after = parse_retry_after(response.headers.get("Retry-After")) if response is not None else None
            delay = policy.delay(failures, retry_after)
            log.info("%s: %s; retrying in %.1fs", action, reason, delay)
            if cancel is not None:
                if cancel.wait(delay):
                    raise Cancelled("Cancelled.") from exc
            else:
                time.sleep(delay)


def _api(hf: ModuleType, net: NetworkConfig) -> Any:
    return hf.HfApi(endpoint=net.resolved_endpoint, token=_token(net), library_name="hearth")


def _remote_file(repo_id: str, revision: str, item: Any) -> RemoteFile:
    lfs = getattr(item, "lfs", None)
    sha = None
    if lfs is not None:
        sha = getattr(lfs, "sha256", None) or (lfs.get("sha256") if isinstance(lfs, dict) else None)
    return RemoteFile(repo_id=repo_id, filename=item.path, size=int(item.size), sha256=sha,
                      git_oid=getattr(item, "blob_id", None), revision=revision)


def file_info(repo_id: str, filename: str, net: NetworkConfig, *, revision: str = "main",
              policy: RetryPolicy | None = None, cancel: CancelToken | None = None) -> RemoteFile:
    """Size and sha256 of one file (``HfApi.get_paths_info``). Raises HubError subclasses."""
    action = f"look up {filename}"
    hf = _prepare(net, action)

    def call() -> list[Any]:
        return list(_api(hf, net).get_paths_info(repo_id, [filename], revision=revision))

    items = _call(call, net=net, action=action, repo_id=repo_id, filename=filename, policy=policy, cancel=cancel)
    for item in items:
        if getattr(item, "path", None) == filename and hasattr(item, "size"):
            return _remote_file(repo_id, revision, item)
    raise RemoteNotFoundError(
        f"{repo_id} has no file named {filename} (revision {revision}). "
        f"Run 'hearth models files {repo_id}' to see its files."
    )


def search_models(query: str, net: NetworkConfig, *, limit: int = 20, policy: RetryPolicy | None = None,
                  cancel: CancelToken | None = None) -> list[RemoteRepo]:
    """GGUF repositories matching ``query``, most downloaded first."""
    action = "search Hugging Face"
    hf = _prepare(net, action)

    def call() -> list[Any]:
        return list(_api(hf, net).list_models(search=query, filter="gguf", sort="downloads", limit=limit))

    found = _call(call, net=net, action=action, policy=policy, cancel=cancel)
    return [
        RemoteRepo(repo_id=m.id, downloads=m.downloads, likes=m.likes, gated=bool(m.gated),
                   last_modified=m.last_modified.isoformat() if m.last_modified else None,
                   tags=tuple(m.tags or ()))
        for m in found
    ]


def list_gguf_files(repo_id: str, net: NetworkConfig, *, revision: str = "main",
                    policy: RetryPolicy | None = None, cancel: CancelToken | None = None) -> list[RemoteModelFile]:
    """The GGUF models in a repository with their sizes; split sets come back as one entry."""
    action = f"list the files of {repo_id}"
    hf = _prepare(net, action)

    def call() -> list[Any]:
        return list(_api(hf, net).list_repo_tree(repo_id, recursive=True, revision=revision))

    items = _call(call, net=net, action=action, repo_id=repo_id, policy=policy, cancel=cancel)
    files = []
    for it in items:
        if not hasattr(it, "size") or not str(it.path).lower().endswith(".gguf"):
            continue
        if not is_plain_remote_name(str(it.path)):
            # Offering it would only end in a refused download (see filenames.local_file_name).
            log.warning("%s: %r is not a plain file name; not offered for download", repo_id, it.path)
            continue
        files.append(_remote_file(repo_id, revision, it))
    return group_split_files(repo_id, files)


def group_split_files(repo_id: str, files: Iterable[RemoteFile]) -> list[RemoteModelFile]:
    """Group ``x-00001-of-00003.gguf`` parts into one model; single files stay alone."""
    singles: list[RemoteModelFile] = []
    sets: dict[tuple[str, int], list[RemoteFile]] = {}
    for f in files:
        m = SPLIT_RE.match(f.filename)
        if m:
            sets.setdefault((m.group("prefix"), int(m.group("count"))), []).append(f)
        else:
            singles.append(RemoteModelFile(repo_id, f.basename, (f,)))
    for (prefix, count), parts in sets.items():
        parts.sort(key=lambda f: f.filename)
        if len(parts) != count:
            log.info("%s: split set %s has %d of %d parts; skipped", repo_id, prefix, len(parts), count)
            continue
        singles.append(RemoteModelFile(repo_id, prefix.rsplit("/", 1)[-1] + ".gguf", tuple(parts)))
    return sorted(singles, key=lambda m: m.name.lower())
