"""The remote engine: a model served elsewhere (vLLM, llama-server, Ollama, LM Studio, another Hearth).

Speaks OpenAI's Chat Completions with streaming, which every one of those
servers has, and turns the stream into the same typed events the local harmony
parser gives (``ContentDelta``, ``ToolCall``) plus one ``GenerationDone`` with the
local engine's stats keys, so ``ChatSession`` runs the tool loop, Stop and saving
the same way for both kinds. Reasoning arrives as ``reasoning_content`` (llama.cpp,
vLLM), ``reasoning`` (Ollama, LM Studio) or as raw harmony text inside the content
(a server that passes gpt-oss output through), which Hearth's own parser splits.

``cancel()`` may be called from any thread: it shuts the socket down, so a
blocked read returns at once instead of at the next token or timeout.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx2

from app.engine.protocol import GenerationDone
from app.errors import EngineError
from app.harmony.parser import SPECIAL_TOKENS, ContentDelta, HarmonyStreamParser, ToolCall

log = logging.getLogger(__name__)

USER_AGENT = "Hearth (OpenAI-compatible client)"
_SPECIAL_PREFIXES = frozenset(tok[:k] for tok in SPECIAL_TOKENS for k in range(1, len(tok)))


class RemoteError(EngineError):
    """A remote server failed; ``kind`` says how, ``str()`` names the server and what to do.

    kind: "down" (cannot connect), "tls" (certificate), "auth" (401/403), "model"
    (404 for the model), "url" (404 for the endpoint), "rate" (429), "timeout",
    "dropped" (the stream broke off mid-reply), "offline" (Offline mode blocks it),
    "server" (5xx), "bad_request" (400), "protocol" (an answer that is not OpenAI's shape).
    """

    def __init__(self, message: str, kind: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status


@dataclass(frozen=True)
class Timeouts:
    """Seconds. ``read`` is the longest silence between two pieces of a reply: a big
    prompt on a busy server can take a while before the first token."""

    connect: float = 10.0
    read: float = 300.0
    write: float = 60.0

    def httpx(self) -> httpx2.Timeout:
        return httpx2.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.connect)


@dataclass(frozen=True)
class RemoteModel:
    id: str
    owned_by: str | None = None
    n_ctx: int | None = None


# ---- addresses -----------------------------------------------------------------------


def normalize_base_url(url: str) -> str:
    """``http://host:8000`` -> ``http://host:8000/v1``; a URL with a path is kept as given.

    Raises ValueError with a message fit for the user when the URL cannot be used.
    """
    text = (url or "").strip()
    if not text:
        raise ValueError("the server address is empty (for example http://gpu-box.lan:8000/v1)")
    if "://" not in text:
        text = "http://" + text
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{url}: the server address must start with http:// or https://")
    if not parts.hostname:
        raise ValueError(f"{url}: the server address has no host name")
    try:
        parts.port
    except ValueError as exc:
        raise ValueError(f"{url}: the port is not a number between 0 and 65535") from exc
    if parts.query or parts.fragment:
        raise ValueError(f"{url}: the server address cannot have a query (?…) or fragment (#…)")
    path = parts.path.rstrip("/")
    if not path:
        path = "/v1"
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def host_of(url: str) -> str:
    """The host a URL points at, as people write it ("gpu-box.lan", "10.0.0.5:8000")."""
    parts = urllib.parse.urlsplit(url if "://" in url else "http://" + url)
    host = parts.hostname or url
    if parts.port and parts.port not in (80, 443):
        return f"{host}:{parts.port}"
    return host


def is_loopback(url: str) -> bool:
    """True when the URL points at this computer (127.0.0.0/8, ::1, localhost)."""
    host = urllib.parse.urlsplit(url if "://" in url else "http://" + url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def offline_message(url: str) -> str:
    return (f"Offline mode is on: Hearth sends nothing to {host_of(url)}. Switch Offline mode off in "
            "Settings to use this server (servers on this computer, such as 127.0.0.1, stay allowed).")


# ---- the engine --------------------------------------------------------------------------


class RemoteEngine:
    """One model on one OpenAI-compatible server. Thread-safe for ``cancel()``; one chat at a time."""

    is_remote = True

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        server_name: str | None = None,
        timeouts: Timeouts | None = None,
        is_offline: Callable[[], bool] | None = None,
        verify: bool | str = True,
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self.model = model
        self.host = host_of(self.base_url)
        self.server_name = server_name or self.host
        self._api_key = api_key or None
        self._timeouts = timeouts or Timeouts()
        self._is_offline = is_offline or (lambda: False)
        self._verify = verify
        self._cancel = threading.Event()
        self._sock_lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._closed = False
        self.n_ctx: int | None = None
        # Which API the replies go through: "responses" where the server has OpenAI's
        # Responses API (vLLM, Ollama, another Hearth: gpt-oss's reasoning as its own
        # items), else "chat" (Chat Completions, which every server has). None: not known
        # yet; the first reply tries Responses and remembers a 404.
        self.api: str | None = None
        self.model_info: dict[str, Any] | None = {
            "name": model, "architecture": "remote", "server": self.host, "server_name": self.server_name,
            "base_url": self.base_url, "n_ctx": None,
        }

    # -- the engine interface ---------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return not self._closed and self.model_info is not None

    def cancel(self) -> None:
        """Stop the running reply now (any thread): the socket is shut down under the read."""
        self._cancel.set()
        with self._sock_lock:
            sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed

    def close(self) -> None:
        self.cancel()
        self._closed = True
        self.model_info = None

    # alias the local engine has; the window unloads through it
    unload = close

    # -- requests ---------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        h = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if self._api_key:
            h["Authorization"] = f"Bearer {self._api_key}"
        return h

    def _check_allowed(self) -> None:
        if self._closed:
            raise RemoteError(f"The connection to {self.host} was closed. Choose the model again.", "down")
        if self._is_offline() and not is_loopback(self.base_url):
            raise RemoteError(offline_message(self.base_url), "offline")

    def _client(self, *, stream: bool) -> httpx2.Client:
        # A stream gets a connection of its own (no keep-alive reuse), so the socket that
        # cancel() shuts down is always this request's, captured when it connects.
        limits = httpx2.Limits(max_keepalive_connections=0) if stream else httpx2.Limits()
        return httpx2.Client(timeout=self._timeouts.httpx(), limits=limits, verify=self._verify,
                             follow_redirects=False, trust_env=False)

    def _trace(self, event: str, info: dict[str, Any]) -> None:
        if event == "connection.connect_tcp.complete":
            stream = info.get("return_value")
            sock = stream.get_extra_info("socket") if stream is not None else None
            with self._sock_lock:
                self._sock = sock
            if self._cancel.is_set() and sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def get_json(self, path: str) -> Any:
        """GET a JSON document under the base URL (``/models``); raises RemoteError."""
        self._check_allowed()
        url = self.base_url + path
        try:
            with self._client(stream=False) as client:
                resp = client.get(url, headers=self._headers())
                if resp.status_code >= 400:
                    raise self._status_error(resp.status_code, resp.text, resp.headers, path)
                try:
                    return resp.json()
                except ValueError as exc:
                    raise RemoteError(
                        f"{self.host} answered {path} with something that is not JSON: is "
                        f"{self.base_url} an OpenAI-compatible server (the address usually ends in /v1)?",
                        "protocol") from exc
        except httpx2.HTTPError as exc:
            raise self._transport_error(exc, during_reply=False) from exc

    def list_models(self) -> list[RemoteModel]:
        """The server's models (``GET /v1/models``)."""
        data = self.get_json("/models")
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise RemoteError(f"{self.host} sent a model list Hearth cannot read (no \"data\" list).", "protocol")
        out = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                continue
            out.append(RemoteModel(item["id"], item.get("owned_by"), _context_of(item)))
        return out

    def test_connection(self) -> list[RemoteModel]:
        """Check the server answers and knows this engine's model; sets ``n_ctx`` when the server says."""
        models = self.list_models()
        match = next((m for m in models if m.id == self.model), None)
        if match is None and self.model:
            names = ", ".join(m.id for m in models[:8]) or "none"
            raise RemoteError(f"{self.host} has no model named {self.model!r} (it has: {names}).", "model",
                              status=404)
        if match is not None and match.n_ctx:
            self.n_ctx = match.n_ctx
            if self.model_info is not None:
                self.model_info["n_ctx"] = match.n_ctx
        return models

    # -- chat --------------------------------------------------------------------------------

    def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        reasoning_effort: str = "medium",
        req: dict[str, Any] | None = None,
    ) -> Iterator[ContentDelta | ToolCall | GenerationDone]:
        """Stream one reply: ContentDelta("analysis"|"final") and ToolCall events, then GenerationDone.

        Raises RemoteError; a stream that breaks off raises after yielding what arrived.
        Stop (``cancel()``) ends it with ``stop_reason`` "cancelled".
        """
        req = dict(req or {})
        self._cancel.clear()
        self._check_allowed()
        body: dict[str, Any] = {
            "model": self.model,
            "messages": wire_messages(messages),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if req.get("max_tokens"):
            body["max_tokens"] = int(req["max_tokens"])
        for key in ("temperature", "top_p", "seed"):
            if req.get(key) is not None:
                body[key] = req[key]
        if reasoning_effort:
            body["reasoning_effort"] = reasoning_effort
        if tools:
            body["tools"] = tools
        body.update(req.get("extra_body") or {})
        t_start = time.perf_counter()
        state = _StreamState(tool_names=[t.get("function", {}).get("name", "") for t in tools or []])
        dropped_param: set[str] = set()
        if self.api in (None, "responses") and not req.get("extra_body"):
            try:
                yield from self._stream_responses(responses_body(self.model, messages, tools, reasoning_effort, req),
                                                  state, t_start)
                self.api = "responses"
                return
            except _NoResponsesApi:
                log.info("%s has no Responses API; using Chat Completions", self.host)
                self.api = "chat"
            finally:
                with self._sock_lock:
                    self._sock = None
        try:
            while True:
                try:
                    yield from self._stream(body, state, t_start)
                    break
                except _RetryWithout as again:
                    # A server that refuses an optional field (OpenAI's own API rejects
                    # reasoning_effort for models without reasoning): ask once without it.
                    if again.field in dropped_param:
                        raise again.error from None
                    log.info("%s refused %s; asking again without it", self.host, again.field)
                    dropped_param.add(again.field)
                    body.pop(again.field, None)
        finally:
            with self._sock_lock:
                self._sock = None

    def _stream(self, body: dict[str, Any], st: "_StreamState", t_start: float
                ) -> Iterator[ContentDelta | ToolCall | GenerationDone]:
        url = self.base_url + "/chat/completions"
        finish: str | None = None
        done = False
        try:
            with self._client(stream=True) as client:
                with client.stream("POST", url, json=body, headers=self._headers(),
                                   extensions={"trace": self._trace}) as resp:
                    if resp.status_code >= 400:
                        text = resp.read().decode("utf-8", "replace")
                        err = self._status_error(resp.status_code, text, resp.headers, "/chat/completions")
                        if resp.status_code in (400, 422):
                            for optional in ("reasoning_effort", "stream_options"):
                                if optional in body and optional in text:
                                    raise _RetryWithout(optional, err)
                        raise err
                    ctype = resp.headers.get("content-type", "")
                    if "text/event-stream" not in ctype and "json" in ctype:
                        # A server that ignores "stream": one JSON answer.
                        yield from st.whole(json.loads(resp.read() or b"{}"), self)
                        finish = st.finish or "stop"
                        done = True
                    else:
                        for line in resp.iter_lines():
                            if self._cancel.is_set():
                                break
                            if not line.startswith("data:"):
                                continue
                            data = line[5:].strip()
                            if data == "[DONE]":
                                done = True
                                break
                            try:
                                chunk = json.loads(data)
                            except ValueError:
                                log.warning("%s sent a stream line that is not JSON: %.200s", self.host, data)
                                continue
                            if isinstance(chunk, dict) and chunk.get("error"):
                                raise RemoteError(
                                    f"{self.host} stopped the reply with an error: {_error_text(chunk)}",
                                    "server")
                            yield from st.chunk(chunk)
                        finish = st.finish
        except RemoteError:
            raise
        except (httpx2.HTTPError, OSError) as exc:
            if not self._cancel.is_set():
                yield from st.flush()
                raise self._transport_error(exc, during_reply=st.started) from exc
        yield from st.flush()
        if self._cancel.is_set():
            stop_reason = "cancelled"
        elif not done and finish is None:
            raise RemoteError(
                f"The connection to {self.host} ended before the reply was complete. The part that "
                "arrived is kept; press Retry to ask again.", "dropped")
        else:
            stop_reason = {"length": "length", "tool_calls": "tool_calls", "function_call": "tool_calls"}.get(
                finish or "stop", "stop")
            if st.tool_calls_seen and stop_reason == "stop":
                stop_reason = "tool_calls"
        t_end = time.perf_counter()
        yield GenerationDone(0, st.stats(t_start, t_end, stop_reason, self.n_ctx))

    def _stream_responses(self, body: dict[str, Any], st: "_StreamState", t_start: float
                          ) -> Iterator[ContentDelta | ToolCall | GenerationDone]:
        """One reply through ``POST /responses`` (streamed events); _NoResponsesApi if the server lacks it."""
        url = self.base_url + "/responses"
        finish: str | None = None
        try:
            with self._client(stream=True) as client:
                with client.stream("POST", url, json=body, headers=self._headers(),
                                   extensions={"trace": self._trace}) as resp:
                    if resp.status_code in (404, 405, 501) and self.api is None:
                        raise _NoResponsesApi()
                    if resp.status_code >= 400:
                        text = resp.read().decode("utf-8", "replace")
                        if self.api is None and resp.status_code in (400, 422):
                            raise _NoResponsesApi()  # a server whose Responses API wants other fields
                        raise self._status_error(resp.status_code, text, resp.headers, "/responses")
                    if "text/event-stream" not in resp.headers.get("content-type", ""):
                        if self.api is None:
                            raise _NoResponsesApi()
                        raise RemoteError(f"{self.host} answered /responses without an event stream.", "protocol")
                    self.api = "responses"  # it streams: from here on, errors are the reply's
                    for line in resp.iter_lines():
                        if self._cancel.is_set():
                            break
                        if not line.startswith("data:"):
                            continue
                        try:
                            ev = json.loads(line[5:].strip())
                        except ValueError:
                            continue
                        kind = ev.get("type", "") if isinstance(ev, dict) else ""
                        if kind == "response.reasoning_text.delta" and ev.get("delta"):
                            st._mark()
                            yield ContentDelta("analysis", ev["delta"])
                        elif kind == "response.output_text.delta" and ev.get("delta"):
                            st._mark()
                            st.raw.append(ev["delta"])
                            yield ContentDelta("final", ev["delta"])
                        elif kind == "response.output_item.done":
                            item = ev.get("item") or {}
                            if item.get("type") == "function_call" and item.get("name"):
                                st._mark()
                                st.tool_calls_seen = True
                                yield ToolCall(f"functions.{item['name']}", item["name"], item.get("arguments") or "{}")
                        elif kind in ("response.completed", "response.incomplete"):
                            r = ev.get("response") or {}
                            usage = r.get("usage") or {}
                            st.usage = {"prompt_tokens": usage.get("input_tokens") or 0,
                                        "completion_tokens": usage.get("output_tokens") or 0}
                            reason = (r.get("incomplete_details") or {}).get("reason")
                            finish = "length" if kind == "response.incomplete" and reason == "max_output_tokens" \
                                else "stop"
                        elif kind in ("response.failed", "error"):
                            raise RemoteError(
                                f"{self.host} stopped the reply with an error: {_error_text(ev.get('response') or ev)}",
                                "server")
        except (RemoteError, _NoResponsesApi):
            raise
        except (httpx2.HTTPError, OSError) as exc:
            if not self._cancel.is_set():
                raise self._transport_error(exc, during_reply=st.started) from exc
        if self._cancel.is_set():
            stop_reason = "cancelled"
        elif finish is None:
            raise RemoteError(
                f"The connection to {self.host} ended before the reply was complete. The part that "
                "arrived is kept; press Retry to ask again.", "dropped")
        else:
            stop_reason = "tool_calls" if st.tool_calls_seen else finish
        yield GenerationDone(0, st.stats(t_start, time.perf_counter(), stop_reason, self.n_ctx))

    # -- errors --------------------------------------------------------------------------------

    def _status_error(self, status: int, text: str, headers: Any, path: str) -> RemoteError:
        detail = _error_text(_maybe_json(text)) or text.strip()[:300]
        said = f" The server said: {detail}" if detail else ""
        host = self.host
        if status in (401, 403):
            return RemoteError(
                f"{host} refused the request ({status}): the API key is missing or wrong. Set the key for "
                f"this server in Settings › Servers (or hearth servers add … --api-key-env VAR).{said}",
                "auth", status=status)
        if status == 404:
            if "model" in detail.lower():
                return RemoteError(f"{host} has no model named {self.model!r} (404). Pick one of the models "
                                   f"it lists in Settings › Servers.{said}", "model", status=status)
            return RemoteError(
                f"{host} has no {path} endpoint (404): check the server address in Settings › Servers "
                f"(an OpenAI-compatible address usually ends in /v1, e.g. http://{host}/v1).{said}",
                "url", status=status)
        if status == 429:
            after = headers.get("retry-after") if headers is not None else None
            wait = f" It asks to wait {after} s." if after else ""
            return RemoteError(f"{host} is busy and asked Hearth to slow down (429).{wait} Press Retry in a "
                               f"moment.{said}", "rate", status=status)
        if status in (408, 504):
            return RemoteError(f"{host} timed out ({status}). Press Retry, or ask a shorter question.{said}",
                               "timeout", status=status)
        if status in (400, 422):
            return RemoteError(f"{host} rejected the request ({status}).{said}", "bad_request", status=status)
        if status >= 500:
            return RemoteError(f"{host} failed with a server error ({status}). Press Retry; if it keeps "
                               f"failing, look at the server's log.{said}", "server", status=status)
        return RemoteError(f"{host} answered {status}.{said}", "server", status=status)

    def _transport_error(self, exc: BaseException, *, during_reply: bool) -> RemoteError:
        host = self.host
        if isinstance(exc, httpx2.TimeoutException):
            if isinstance(exc, httpx2.ConnectTimeout):
                return RemoteError(f"{host} did not answer within {self._timeouts.connect:g} s: is the server "
                                   "running and reachable from this computer?", "timeout")
            return RemoteError(f"{host} went silent for {self._timeouts.read:g} s"
                               f"{' in the middle of the reply' if during_reply else ''}. "
                               "The part that arrived is kept; press Retry.", "timeout")
        if _is_tls_error(exc):
            reason = _tls_reason(exc)
            return RemoteError(f"The certificate of {host} could not be verified ({reason}). Hearth always "
                               "checks certificates: use the server's proper https address, or http:// on a "
                               "trusted network.", "tls")
        if isinstance(exc, httpx2.ConnectError) or (isinstance(exc, OSError) and not during_reply):
            return RemoteError(f"Cannot connect to {host} ({_short(exc)}): is the server running, and is the "
                               f"address {self.base_url} right?", "down")
        return RemoteError(f"The connection to {host} broke off in the middle of the reply ({_short(exc)}). "
                           "The part that arrived is kept; press Retry to ask again.", "dropped")


class _NoResponsesApi(Exception):
    """The server has no (usable) Responses API: use Chat Completions."""


def responses_body(model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None,
                   reasoning_effort: str, req: dict[str, Any]) -> dict[str, Any]:
    """A Responses API request for Hearth's stored messages (the whole history, nothing stored there)."""
    instructions = "\n\n".join(m.get("content") or "" for m in messages if m.get("role") in ("system", "developer"))
    items: list[dict[str, Any]] = []
    for m in messages:
        role = m.get("role")
        if role in ("user", "assistant") and m.get("content"):
            items.append({"role": role, "content": m["content"]})
        if role == "assistant":
            for tc in m.get("tool_calls") or []:
                fn = tc.get("function") or {}
                items.append({"type": "function_call", "call_id": tc.get("id") or "", "name": fn.get("name"),
                              "arguments": fn.get("arguments") or "{}"})
        elif role == "tool":
            items.append({"type": "function_call_output", "call_id": m.get("tool_call_id") or "",
                          "output": m.get("content") or ""})
    body: dict[str, Any] = {"model": model, "input": items, "stream": True, "store": False}
    if instructions.strip():
        body["instructions"] = instructions
    if reasoning_effort:
        body["reasoning"] = {"effort": reasoning_effort}
    if req.get("max_tokens"):
        body["max_output_tokens"] = int(req["max_tokens"])
    for key in ("temperature", "top_p"):
        if req.get(key) is not None:
            body[key] = req[key]
    if tools:
        body["tools"] = [{"type": "function", "name": (t.get("function") or {}).get("name"),
                          "description": (t.get("function") or {}).get("description", ""),
                          "parameters": (t.get("function") or {}).get("parameters") or {"type": "object"}}
                         for t in tools]
    return body


class _RetryWithout(Exception):
    def __init__(self, field: str, error: RemoteError) -> None:
        super().__init__(field)
        self.field = field
        self.error = error


# ---- the stream's state --------------------------------------------------------------------


@dataclass
class _ToolCallParts:
    id: str = ""
    name: str = ""
    arguments: str = ""


class _StreamState:
    """Turns chunks into events; keeps counts for the stats."""

    def __init__(self, tool_names: list[str]) -> None:
        self.tool_names = [n for n in tool_names if n]
        self.parser: HarmonyStreamParser | None = None
        self.held = ""  # the end of the content that may be the start of a harmony token
        self.calls: dict[int, _ToolCallParts] = {}
        self.tool_calls_seen = False
        self.finish: str | None = None
        self.usage: dict[str, Any] = {}
        self.n_pieces = 0
        self.t_first: float | None = None
        self.raw: list[str] = []

    @property
    def started(self) -> bool:
        return self.t_first is not None

    def _mark(self) -> None:
        self.n_pieces += 1
        if self.t_first is None:
            self.t_first = time.perf_counter()

    def chunk(self, chunk: Any) -> Iterator[ContentDelta | ToolCall]:
        if not isinstance(chunk, dict):
            return
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                self._mark()
                yield ContentDelta("analysis", reasoning)
            content = delta.get("content")
            if isinstance(content, str) and content:
                self._mark()
                self.raw.append(content)
                yield from self._content(content)
            for tc in delta.get("tool_calls") or []:
                self._mark()
                self._tool_delta(tc)
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]

    def whole(self, data: Any, engine: RemoteEngine) -> Iterator[ContentDelta | ToolCall]:
        """A non-streamed answer (a server that ignored ``stream``)."""
        if isinstance(data, dict) and isinstance(data.get("usage"), dict):
            self.usage = data["usage"]
        choices = data.get("choices") if isinstance(data, dict) else None
        if not choices:
            raise RemoteError(f"{engine.host} sent an answer without choices.", "protocol")
        msg = choices[0].get("message") or {}
        reasoning = msg.get("reasoning_content") or msg.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            self._mark()
            yield ContentDelta("analysis", reasoning)
        if isinstance(msg.get("content"), str) and msg["content"]:
            self._mark()
            self.raw.append(msg["content"])
            yield from self._content(msg["content"])
        for i, tc in enumerate(msg.get("tool_calls") or []):
            self._tool_delta(dict(tc, index=i))
        self.finish = choices[0].get("finish_reason")

    def _tool_delta(self, tc: Any) -> None:
        if not isinstance(tc, dict):
            return
        parts = self.calls.setdefault(int(tc.get("index", 0) or 0), _ToolCallParts())
        if tc.get("id"):
            parts.id = tc["id"]
        fn = tc.get("function") or {}
        if fn.get("name") and not parts.name:
            parts.name = fn["name"]
        args = fn.get("arguments")
        if isinstance(args, str):
            parts.arguments += args
        elif isinstance(args, dict):
            parts.arguments += json.dumps(args)

    def _content(self, text: str) -> Iterator[ContentDelta | ToolCall]:
        if self.parser is not None:
            yield from self._parsed(self.parser.feed(text))
            return
        s = self.held + text
        self.held = ""
        at = s.find("<|")
        while at >= 0:
            end = s.find("|>", at + 2)
            if end < 0:
                break
            if s[at:end + 2] in SPECIAL_TOKENS:
                # Raw harmony in the content: from here on Hearth's parser splits the channels.
                if at:
                    yield ContentDelta("final", s[:at])
                self.parser = HarmonyStreamParser(self.tool_names)
                yield from self._parsed(self.parser.feed(s[at:]))
                return
            at = s.find("<|", at + 2)
        # Hold back a tail that may still become a special token.
        for k in range(min(len(s), 16), 0, -1):
            if s[-k:] in _SPECIAL_PREFIXES or (s[-k:].startswith("<|") and "|>" not in s[-k:] and k <= 15):
                self.held, s = s[-k:], s[:-k]
                break
        if s:
            yield ContentDelta("final", s)

    def _parsed(self, events: list[Any]) -> Iterator[ContentDelta | ToolCall]:
        for ev in events:
            if isinstance(ev, ContentDelta):
                if ev.recipient:
                    continue  # tool-call arguments: the ToolCall carries them
                yield ContentDelta("analysis" if ev.channel == "analysis" else "final", ev.text)
            elif isinstance(ev, ToolCall):
                self.tool_calls_seen = True
                yield ev

    def flush(self) -> Iterator[ContentDelta | ToolCall]:
        """The end of the stream: what was held back, the parser's tail, the assembled tool calls."""
        if self.held:
            held, self.held = self.held, ""
            yield ContentDelta("final", held)
        if self.parser is not None:
            yield from self._parsed(self.parser.finish())
            self.parser = None
        for _, parts in sorted(self.calls.items()):
            if parts.name:
                self.tool_calls_seen = True
                yield ToolCall(f"functions.{parts.name}", parts.name, parts.arguments)
        self.calls = {}

    def stats(self, t_start: float, t_end: float, stop_reason: str, n_ctx: int | None) -> dict[str, Any]:
        completion = int(self.usage.get("completion_tokens") or self.n_pieces)
        prompt = int(self.usage.get("prompt_tokens") or 0)
        gen_s = t_end - self.t_first if (self.t_first is not None and completion > 1) else 0.0
        return {
            "prompt_tokens": prompt,
            "prompt_tokens_evaluated": prompt,
            "completion_tokens": completion,
            "ttft_ms": ((self.t_first if self.t_first is not None else t_end) - t_start) * 1000.0,
            "gen_tok_per_s": ((completion - 1) / gen_s) if gen_s > 0 else 0.0,
            "total_s": t_end - t_start,
            "stop_reason": stop_reason,
            "raw": "".join(self.raw),
            "n_ctx": n_ctx,
            "context_used": (prompt + completion) if prompt else None,
            "usage_reported": bool(self.usage),
        }


# ---- helpers -------------------------------------------------------------------------------


def wire_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Hearth's stored messages as Chat Completions messages.

    ``developer`` becomes ``system`` (not every server knows the newer role); the
    stored thinking stays here (servers render history themselves and drop it).
    """
    out: list[dict[str, Any]] = []
    for m in messages:
        role = m.get("role")
        if role == "developer":
            role = "system"
        if role not in ("system", "user", "assistant", "tool"):
            continue
        w: dict[str, Any] = {"role": role, "content": m.get("content") or ""}
        if role == "assistant" and m.get("tool_calls"):
            w["tool_calls"] = [
                {"id": tc.get("id"), "type": "function",
                 "function": {"name": (tc.get("function") or {}).get("name"),
                              "arguments": (tc.get("function") or {}).get("arguments") or "{}"}}
                for tc in m["tool_calls"]
            ]
            if not w["content"]:
                w["content"] = None
        if role == "tool":
            w["tool_call_id"] = m.get("tool_call_id") or ""
            if m.get("name"):
                w["name"] = m["name"]
        out.append(w)
    return out


def _context_of(item: dict[str, Any]) -> int | None:
    """The context length a /v1/models entry gives, where the server says it."""
    for key in ("max_model_len", "context_length", "context_window", "max_context_length"):
        v = item.get(key)
        if isinstance(v, int) and v > 0:
            return v
    meta = item.get("meta")
    if isinstance(meta, dict):
        for key in ("n_ctx", "n_ctx_train"):
            v = meta.get(key)
            if isinstance(v, int) and v > 0:
                return v
    return None


def _maybe_json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return text


def _error_text(data: Any) -> str:
    """The message inside an OpenAI-style error body ({"error": {"message": …}} and variants)."""
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("detail") or err.get("msg")
            if isinstance(msg, str):
                return msg[:300]
            if isinstance(data.get("detail"), (str, list)):
                return str(data["detail"])[:300]
        elif isinstance(err, str):
            return err[:300]
        if isinstance(data.get("detail"), (str, list)):
            return str(data["detail"])[:300]
        return ""
    return str(data).strip()[:300] if data else ""


def _is_tls_error(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


def _tls_reason(exc: BaseException) -> str:
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            break
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen.verify_message or str(seen)
        seen = seen.__cause__ or seen.__context__
    return _short(exc)


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "…"
