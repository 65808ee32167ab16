"""MCP servers as tools: one asyncio loop thread owns every connection; callers stay synchronous.

The mcp SDK is asyncio; Hearth's turns run on worker threads and the CLI is plain
code. So one background thread runs an event loop with a task per server (connect,
list tools, follow list changes, stay open), and the public methods post work to it
and wait with a timeout. A stdio server's stderr goes to Hearth's log, never the
terminal. A server that crashes, hangs or errors gives an McpError naming the
server and the tool; the next call after a crash starts the server again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from types import SimpleNamespace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import mcp_types as types
    from mcp.client import Client

from app.errors import McpError
from app.harmony.render import validate_tools
from app.harmony.tools import Tool, ToolError
from app.tools.mcp_config import McpConfig, McpServerConfig

log = logging.getLogger(__name__)
server_log = logging.getLogger("app.tools.mcp.server")  # what stdio servers write to stderr

_SDK: SimpleNamespace | None = None


def sdk() -> SimpleNamespace:
    """The mcp SDK, imported on first use: it takes about a second and 50 MB, which a window
    (or a chat) with no MCP server should not pay."""
    global _SDK
    if _SDK is None:
        import anyio
        import mcp_types
        from mcp.client import Client
        from mcp.client.stdio import StdioServerParameters, stdio_client
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared.exceptions import MCPError
        from mcp_types.version import MODERN_PROTOCOL_VERSIONS

        _SDK = SimpleNamespace(
            anyio=anyio, types=mcp_types, Client=Client, StdioServerParameters=StdioServerParameters,
            stdio_client=stdio_client, streamable_http_client=streamable_http_client, MCPError=MCPError,
            MODERN_PROTOCOL_VERSIONS=MODERN_PROTOCOL_VERSIONS)
    return _SDK


DEFAULT_CONNECT_TIMEOUT_S = 30.0
MAX_LIST_PAGES = 20
FUNCTION_PREFIX = "mcp__"

OFFLINE_MESSAGE = ("MCP server {name!r} is a network server ({url}); Hearth is in offline mode, so it is not "
                   "started. Local (command) servers still run. Turn Offline mode off in Settings to use it.")


@dataclass(frozen=True)
class McpToolInfo:
    server: str
    name: str  # the server's own name for the tool
    description: str
    input_schema: dict[str, Any]

    @property
    def function_name(self) -> str:
        return function_name(self.server, self.name)


@dataclass(frozen=True)
class ServerStatus:
    name: str
    state: str  # "disabled" | "stopped" | "starting" | "ready" | "failed" | "offline"
    message: str = ""
    tools: tuple[McpToolInfo, ...] = ()
    protocol: str = ""


@dataclass(frozen=True)
class McpCallResult:
    output: str
    is_error: bool  # the server ran the tool and said it failed
    duration_ms: float


def function_name(server: str, tool: str) -> str:
    """``mcp__SERVER__TOOL``: a harmony/OpenAI function name (1-64 of [A-Za-z0-9_-])."""
    raw = f"{FUNCTION_PREFIX}{server}__{tool}"
    name = re.sub(r"[^A-Za-z0-9_-]", "_", raw)
    if len(name) > 64:
        digest = hashlib.sha1(raw.encode()).hexdigest()[:8]
        name = f"{name[:55]}_{digest}"
    return name


_SCHEMA_TYPES = {"string", "number", "integer", "boolean", "object", "array", "null"}


def clean_schema(spec: Any) -> dict[str, Any]:
    """A server's JSON schema reduced to what the harmony renderer accepts (nothing else is lost)."""
    if not isinstance(spec, dict):
        return {}
    out = dict(spec)
    t = out.get("type")
    if t is not None:
        kinds = t if isinstance(t, list) else [t]
        if not all(isinstance(k, str) and k in _SCHEMA_TYPES for k in kinds):
            out.pop("type")
    for key in ("description", "title"):
        if key in out and not isinstance(out[key], str):
            out.pop(key)
    if "enum" in out and not isinstance(out["enum"], list):
        out.pop("enum")
    if "required" in out and not (isinstance(out["required"], list)
                                  and all(isinstance(r, str) for r in out["required"])):
        out.pop("required")
    if "properties" in out:
        props = out["properties"]
        out["properties"] = {str(k): clean_schema(v) for k, v in props.items()} if isinstance(props, dict) else {}
    if "items" in out:
        if isinstance(out["items"], dict):
            out["items"] = clean_schema(out["items"])
        else:
            out.pop("items")
    for key in ("oneOf", "anyOf"):
        if key in out:
            out[key] = [clean_schema(s) for s in out[key]] if isinstance(out[key], list) else []
    return out


def result_text(result: types.CallToolResult) -> str:
    """What a tool returned, as the text the model reads."""
    parts: list[str] = []
    for block in result.content or []:
        if isinstance(block, sdk().types.TextContent):
            parts.append(block.text)
        elif isinstance(block, sdk().types.ImageContent):
            parts.append(f"[image: {block.mime_type}, {len(block.data) * 3 // 4} bytes, not shown]")
        elif isinstance(block, sdk().types.AudioContent):
            parts.append(f"[audio: {block.mime_type}, not played]")
        elif isinstance(block, sdk().types.EmbeddedResource):
            res = block.resource
            text = getattr(res, "text", None)
            parts.append(text if isinstance(text, str) else f"[resource {res.uri}: binary, not shown]")
        elif isinstance(block, sdk().types.ResourceLink):
            parts.append(f"[resource link: {block.uri}]")
        else:
            parts.append(str(block))
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False, default=str))
    return "\n".join(parts)


class _StderrToLog:
    """A pipe whose write end is the server's stderr; a thread turns each line into a log record."""

    def __init__(self, server: str) -> None:
        r, w = os.pipe()
        self.file: TextIO = os.fdopen(w, "w", encoding="utf-8", errors="replace")
        self._reader = os.fdopen(r, "r", encoding="utf-8", errors="replace")
        self._thread = threading.Thread(target=self._pump, args=(server,), name=f"mcp-stderr-{server}", daemon=True)
        self._thread.start()

    def _pump(self, server: str) -> None:
        with self._reader:
            for line in self._reader:
                line = line.rstrip()
                if line:
                    server_log.info("[%s] %s", server, line)

    def close_write_end(self) -> None:
        """Once the child has its copy: the reader then ends when the server exits."""
        if not self.file.closed:
            self.file.close()


@dataclass
class _Conn:
    config: McpServerConfig
    state: str = "stopped"
    message: str = ""
    tools: tuple[McpToolInfo, ...] = ()
    protocol: str = ""
    client: Client | None = None
    task: asyncio.Task[None] | None = None
    stop: asyncio.Event | None = None
    ready: threading.Event = field(default_factory=threading.Event)


class McpManager:
    """Connections to the configured MCP servers, usable from any thread but the loop's own.

    ``offline`` is read at each connect (the Settings flag can change while Hearth runs).
    ``protocol_mode`` is the SDK's: "auto" (the newest the server speaks) or "legacy".
    """

    def __init__(self, config: McpConfig, *, offline: Callable[[], bool] | bool = False,
                 connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S, protocol_mode: str = "auto") -> None:
        self.config = config
        self._offline = offline if callable(offline) else (lambda: bool(offline))
        self.connect_timeout_s = connect_timeout_s
        self.protocol_mode = protocol_mode
        self._conns: dict[str, _Conn] = {}
        self._lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._listeners: list[Callable[[str], None]] = []
        self._closed = False

    # ---- listeners ---------------------------------------------------------

    def add_listener(self, fn: Callable[[str], None]) -> None:
        """``fn(server_name)`` after a server's state or tools change (called on the loop thread)."""
        self._listeners.append(fn)

    def _changed(self, name: str) -> None:
        for fn in list(self._listeners):
            try:
                fn(name)
            except Exception:  # noqa: BLE001 - a listener's bug must not stop the connection
                log.warning("MCP change listener failed", exc_info=True)

    # ---- the loop thread ---------------------------------------------------------

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise McpError("The MCP connections are closed (Hearth is shutting down).")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                started = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(started.set)
                    loop.run_forever()

                self._thread = threading.Thread(target=run, name="mcp-loop", daemon=True)
                self._thread.start()
                started.wait()
                self._loop = loop
            return self._loop

    def _submit(self, coro: Any) -> concurrent.futures.Future[Any]:
        loop = self._ensure_loop()
        if threading.current_thread() is self._thread:
            coro.close()
            raise McpError("internal: an MCP call was made from the MCP loop itself")
        return asyncio.run_coroutine_threadsafe(coro, loop)

    # ---- status -------------------------------------------------------------------

    def status(self, name: str) -> ServerStatus:
        cfg = self.config.get(name)
        with self._lock:
            conn = self._conns.get(name)
        if not cfg.enabled:
            return ServerStatus(name, "disabled", "Switched off.")
        if conn is None or conn.config is not cfg:
            if cfg.is_network and self._offline():
                return ServerStatus(name, "offline", OFFLINE_MESSAGE.format(name=name, url=cfg.url))
            return ServerStatus(name, "stopped")
        return ServerStatus(name, conn.state, conn.message, conn.tools, conn.protocol)

    def statuses(self) -> list[ServerStatus]:
        return [self.status(s.name) for s in self.config.servers()]

    def tools(self, name: str) -> list[McpToolInfo]:
        return list(self.status(name).tools)

    # ---- connecting -------------------------------------------------------------

    def start(self, name: str, *, wait: bool = True, timeout: float | None = None) -> ServerStatus:
        """Connect (if not already) and, with ``wait``, return once it is ready or has failed."""
        cfg = self.config.get(name)
        if not cfg.enabled:
            return ServerStatus(name, "disabled", "Switched off.")
        with self._lock:
            conn = self._conns.get(name)
            if conn is None or conn.config is not cfg or conn.state not in ("ready", "starting"):
                # A fresh record each time: a dying old connection cannot overwrite the new one's state.
                if conn is not None:
                    self._stop_conn(conn)
                conn = _Conn(cfg, state="starting")
                self._conns[name] = conn
                if cfg.is_network and self._offline():
                    conn.state, conn.message = "offline", OFFLINE_MESSAGE.format(name=name, url=cfg.url)
                    return self.status(name)
                self._submit(self._start_task(conn)).result(5)
        if wait:
            limit = self.connect_timeout_s if timeout is None else timeout
            if not conn.ready.wait(limit + 2):
                self._fail(conn, f"MCP server {name!r} did not answer within {limit:g} s; check its command "
                                 "or URL (Settings › Tools).")
                self._stop_conn(conn)
        return self.status(name)

    def start_all(self, *, wait: bool = False) -> list[ServerStatus]:
        out = []
        for cfg in self.config.servers():
            if cfg.enabled:
                try:
                    out.append(self.start(cfg.name, wait=wait))
                except McpError as exc:
                    log.warning("%s", exc)
        return out

    async def _start_task(self, conn: _Conn) -> None:
        conn.stop = asyncio.Event()
        conn.task = asyncio.get_running_loop().create_task(self._serve(conn), name=f"mcp-{conn.config.name}")

    def _fail(self, conn: _Conn, message: str) -> None:
        log.warning("%s", message)
        conn.state, conn.message, conn.client = "failed", message, None
        conn.ready.set()
        self._changed(conn.config.name)

    def _transport(self, cfg: McpServerConfig, errlog: _StderrToLog | None) -> Any:
        if cfg.url:
            return sdk().streamable_http_client(cfg.url)
        assert cfg.command and errlog is not None
        params = sdk().StdioServerParameters(command=cfg.command, args=list(cfg.args), env=dict(cfg.env) or None)
        return sdk().stdio_client(params, errlog=errlog.file)

    async def _serve(self, conn: _Conn) -> None:
        cfg, name = conn.config, conn.config.name
        errlog = _StderrToLog(name) if not cfg.url else None
        watchdog = asyncio.get_running_loop().call_later(
            self.connect_timeout_s, lambda: conn.task.cancel() if conn.task and conn.state == "starting" else None)

        async def on_message(message: Any) -> None:
            if isinstance(message, sdk().types.ToolListChangedNotification):
                if conn.protocol not in sdk().MODERN_PROTOCOL_VERSIONS:  # modern: the listen loop refreshes
                    asyncio.get_running_loop().create_task(self._refresh(conn))
            elif isinstance(message, Exception):
                log.warning("MCP server %s: transport error: %s", name, message)
            await sdk().anyio.lowlevel.checkpoint()

        try:
            client = sdk().Client(self._transport(cfg, errlog), mode=self.protocol_mode, message_handler=on_message,
                            cache=None)
            async with client:
                if errlog is not None:
                    errlog.close_write_end()
                conn.client = client
                conn.protocol = client.protocol_version
                await self._list_tools(conn)
                watchdog.cancel()
                conn.state, conn.message = "ready", ""
                conn.ready.set()
                log.info("MCP server %s ready (%s, protocol %s): %d tools", name, cfg.transport, conn.protocol,
                         len(conn.tools))
                self._changed(name)
                async with sdk().anyio.create_task_group() as tg:
                    if conn.protocol in sdk().MODERN_PROTOCOL_VERSIONS:
                        tg.start_soon(self._listen, conn)
                    assert conn.stop is not None
                    await conn.stop.wait()
                    tg.cancel_scope.cancel()
            conn.state, conn.client = "stopped", None
            conn.ready.set()
            self._changed(name)
        except asyncio.CancelledError:
            if conn.state == "starting":
                self._fail(conn, f"MCP server {name!r} did not answer within {self.connect_timeout_s:g} s; "
                                 "check its command or URL (Settings › Tools).")
            else:
                conn.state, conn.client = "stopped", None
                conn.ready.set()
        except Exception as exc:  # noqa: BLE001 - any failure to connect is the server's status, not a crash
            self._fail(conn, _connect_error(cfg, exc))
        finally:
            watchdog.cancel()
            if errlog is not None:
                errlog.close_write_end()

    async def _list_tools(self, conn: _Conn) -> None:
        assert conn.client is not None
        found: list[McpToolInfo] = []
        cursor: str | None = None
        for _ in range(MAX_LIST_PAGES):
            page = await conn.client.list_tools(cursor=cursor)
            for t in page.tools:
                info = McpToolInfo(conn.config.name, t.name, t.description or "", clean_schema(t.input_schema))
                try:
                    validate_tools([_schema(info)])
                except ValueError as exc:
                    log.warning("MCP server %s: tool %r left out: %s", conn.config.name, t.name, exc)
                    continue
                found.append(info)
            cursor = page.next_cursor
            if cursor is None:
                break
        conn.tools = tuple(found)

    async def _refresh(self, conn: _Conn) -> None:
        try:
            await self._list_tools(conn)
        except Exception as exc:  # noqa: BLE001 - keep the old list; say why
            log.warning("MCP server %s: could not list its tools again: %s", conn.config.name, exc)
            return
        log.info("MCP server %s changed its tools: %s", conn.config.name, ", ".join(t.name for t in conn.tools))
        self._changed(conn.config.name)

    async def _listen(self, conn: _Conn) -> None:
        """2026-07-28 servers announce list changes only to a ``subscriptions/listen`` stream."""
        assert conn.client is not None
        try:
            async with conn.client.listen(tools_list_changed=True) as sub:
                async for _event in sub:
                    await self._refresh(conn)
        except Exception as exc:  # noqa: BLE001 - without the stream the list is only read at connect
            log.info("MCP server %s: no tool-list updates (%s)", conn.config.name, exc)

    # ---- calling ------------------------------------------------------------------

    def call(self, server: str, tool: str, arguments: dict[str, Any], *, timeout: float | None = None) -> McpCallResult:
        """Run one tool; McpError when it could not run (off, offline, crashed, timed out)."""
        cfg = self.config.get(server)
        where = f"MCP tool {tool!r} on server {server!r}"
        if not cfg.enabled:
            raise McpError(f"{where} was not run: the server is switched off (Settings › Tools).")
        with self._lock:
            conn = self._conns.get(server)
        if conn is None or conn.config is not cfg or conn.state != "ready":
            status = self.start(server)  # first use, or a restart after a crash
            if status.state != "ready":
                raise McpError(f"{where} was not run: {status.message or 'the server is not running.'}")
            with self._lock:
                conn = self._conns[server]
        limit = cfg.timeout_s if timeout is None else timeout
        t0 = time.perf_counter()
        fut = self._submit(self._call(conn, tool, arguments, limit))
        try:
            result = fut.result(limit + 5)
        except (TimeoutError, asyncio.TimeoutError, concurrent.futures.TimeoutError):
            fut.cancel()
            raise McpError(f"{where} did not answer within {limit:g} s and was abandoned. The server may be "
                           "busy or stuck; try again, or raise its timeout in Settings › Tools.") from None
        except McpError:
            raise
        except Exception as exc:  # noqa: BLE001 - the connection broke: restart it on the next call
            message = f"{where} failed: {exc or 'the server stopped answering'}."
            self._fail(conn, message)
            self._stop_conn(conn)
            raise McpError(message + " It will be started again on the next call.") from exc
        duration = round((time.perf_counter() - t0) * 1000, 3)
        return McpCallResult(result_text(result), bool(result.is_error), duration)

    async def _call(self, conn: _Conn, tool: str, arguments: dict[str, Any], limit: float) -> types.CallToolResult:
        client = conn.client
        if client is None:
            raise McpError(f"MCP server {conn.config.name!r} is not connected.")
        try:
            return await asyncio.wait_for(client.call_tool(tool, arguments, read_timeout_seconds=limit), limit + 1)
        except asyncio.TimeoutError:
            raise
        except sdk().MCPError as exc:
            if exc.code == sdk().types.CONNECTION_CLOSED:
                raise ConnectionError("the server closed the connection (it may have crashed or exited)") from exc
            if _is_timeout(exc):
                raise asyncio.TimeoutError() from exc
            # The server answered with a protocol error (unknown tool, bad arguments): it still runs.
            raise McpError(f"MCP tool {tool!r} on server {conn.config.name!r} failed: {exc.error.message}") from exc

    # ---- stopping --------------------------------------------------------------

    def _stop_conn(self, conn: _Conn) -> None:
        loop, stop, task = self._loop, conn.stop, conn.task
        if loop is None or task is None:
            return

        def halt() -> None:
            if stop is not None:
                stop.set()
            if conn.state == "starting" and not task.done():
                task.cancel()

        loop.call_soon_threadsafe(halt)

    def stop(self, name: str, *, wait: float = 5.0) -> None:
        with self._lock:
            conn = self._conns.pop(name, None)
        if conn is None or conn.task is None:
            return
        self._stop_conn(conn)
        if wait and self._loop is not None and threading.current_thread() is not self._thread:
            done = asyncio.run_coroutine_threadsafe(_wait_task(conn.task, wait), self._loop)
            try:
                done.result(wait + 1)
            except (concurrent.futures.TimeoutError, TimeoutError):
                log.warning("MCP server %s did not stop within %g s", name, wait)

    def close(self, timeout: float = 8.0) -> None:
        """Stop every server and the loop thread (at quit; each stdio server gets its grace period)."""
        with self._lock:
            names = list(self._conns)
        deadline = time.monotonic() + timeout
        for name in names:
            self.stop(name, wait=max(0.5, deadline - time.monotonic()))
        with self._lock:
            self._closed = True
            loop, thread = self._loop, self._thread
            self._loop = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(max(0.5, deadline - time.monotonic()))
            if not thread.is_alive():
                loop.close()


async def _wait_task(task: asyncio.Task[None], limit: float) -> None:
    try:
        await asyncio.wait_for(asyncio.shield(task), limit)
    except (asyncio.TimeoutError, asyncio.CancelledError):
        pass


def _is_timeout(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, TimeoutError) or "timed out" in text or "timeout" in text


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for e in exc.exceptions for leaf in _leaves(e)]
    return [exc]


def _connect_error(cfg: McpServerConfig, exc: BaseException) -> str:
    leaf = _leaves(exc)[0]
    what = f"MCP server {cfg.name!r} ({cfg.describe()})"
    if isinstance(leaf, FileNotFoundError):
        return f"{what} could not start: the program {cfg.command!r} was not found. Check the command."
    if isinstance(leaf, PermissionError):
        return f"{what} could not start: {cfg.command!r} is not executable."
    text = f"{type(leaf).__name__}: {leaf}" if str(leaf) else type(leaf).__name__
    if cfg.url:
        return f"{what} could not be reached: {text}. Check the URL and that the server runs."
    return f"{what} stopped before it answered: {text}. Its messages are in Hearth's log."


# ---- the registry side ----------------------------------------------------------------


def _schema(info: McpToolInfo) -> dict[str, Any]:
    params = dict(info.input_schema) or {"type": "object", "properties": {}}
    params.setdefault("type", "object")
    return {"type": "function", "function": {
        "name": info.function_name, "description": info.description or f"{info.name} (MCP server {info.server})",
        "parameters": params}}


class McpToolProvider:
    """The ready servers' tools as registry Tools (a ToolProvider): asked again at every read, so a
    server that changed its list offers the new list on the next turn."""

    def __init__(self, manager: McpManager, servers: list[str] | None = None) -> None:
        self.manager = manager
        self.servers = servers  # None: every enabled server

    def _names(self) -> list[str]:
        if self.servers is not None:
            return list(self.servers)
        return [s.name for s in self.manager.config.servers() if s.enabled]

    def tools(self) -> list[Tool]:
        out: list[Tool] = []
        for name in self._names():
            try:
                status = self.manager.status(name)
            except McpError:
                continue
            for info in status.tools:
                spec = _schema(info)["function"]
                out.append(Tool(info.function_name, spec["description"], spec["parameters"],
                                self._runner(info), approval_key=McpConfig.approval_key(info.server, info.name),
                                title=f"{info.server} › {info.name}"))
        return out

    def _runner(self, info: McpToolInfo) -> Callable[[dict[str, Any]], str]:
        def run(args: dict[str, Any]) -> str:
            try:
                res = self.manager.call(info.server, info.name, args)
            except McpError as exc:
                raise ToolError(str(exc)) from exc
            if res.is_error:
                raise ToolError(f"MCP tool {info.name!r} on server {info.server!r} reported an error: "
                                f"{res.output or 'no details'}")
            return res.output

        return run
