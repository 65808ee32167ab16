"""The MCP servers Hearth knows: one JSON file in the config dir, in the ``mcpServers`` shape.

The file is the one Claude Desktop, LM Studio and Jan read (``{"mcpServers": {NAME:
{"command", "args", "env"} | {"url"}}}``), so it can be copied both ways; Hearth's own
keys per server (``disabled``, ``alwaysAllow``, ``timeout``) follow Cline's spelling.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.errors import McpError
from app.jsonfile import write_json_atomic
from app.paths import AppPaths

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
DEFAULT_TIMEOUT_S = 60.0
# Server names become part of function names (mcp__NAME__TOOL) and of "mcp:NAME.TOOL" on
# the command line: no dots, spaces or odd characters.
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


def config_path(paths: AppPaths) -> Path:
    return paths.config_dir / "mcp.json"


def check_server_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise McpError(f"MCP server name {name!r} is not usable: use 1-40 letters, digits, '-' or '_' "
                       "(for example 'time' or 'git-tools').")
    return name


def _clean_name(name: str) -> str:
    """An imported name made usable ('Brave Search' -> 'Brave-Search')."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", str(name)).strip("-")[:40]
    return cleaned or "server"


@dataclass
class McpServerConfig:
    name: str
    command: str | None = None  # stdio: the program, with ``args``
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    url: str | None = None  # streamable HTTP
    enabled: bool = True
    always_allow: list[str] = field(default_factory=list)  # tools run without asking
    timeout_s: float = DEFAULT_TIMEOUT_S  # per call

    @property
    def transport(self) -> str:
        return "http" if self.url else "stdio"

    @property
    def is_network(self) -> bool:
        return self.url is not None

    def describe(self) -> str:
        """The command line or URL, as a person would type it."""
        if self.url:
            return self.url
        return shlex.join([self.command or "", *self.args])

    def validate(self) -> None:
        check_server_name(self.name)
        if bool(self.command) == bool(self.url):
            raise McpError(f"MCP server {self.name!r} needs either a command (a local stdio server) or a URL "
                           "(a streamable-HTTP server), not both and not neither.")
        if self.url and not self.url.startswith(("http://", "https://")):
            raise McpError(f"MCP server {self.name!r}: the URL must start with http:// or https:// "
                           f"(got {self.url!r}).")
        if not all(isinstance(a, str) for a in self.args):
            raise McpError(f"MCP server {self.name!r}: 'args' must be a list of strings.")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.env.items()):
            raise McpError(f"MCP server {self.name!r}: 'env' must map names to string values.")
        if not (isinstance(self.timeout_s, (int, float)) and 1 <= self.timeout_s <= 3600):
            raise McpError(f"MCP server {self.name!r}: the timeout must be between 1 and 3600 seconds.")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"url": self.url} if self.url else {"command": self.command, "args": list(self.args)}
        if self.env:
            out["env"] = dict(self.env)
        if not self.enabled:
            out["disabled"] = True
        if self.always_allow:
            out["alwaysAllow"] = list(self.always_allow)
        if self.timeout_s != DEFAULT_TIMEOUT_S:
            out["timeout"] = self.timeout_s
        return out


def server_from_json(name: str, spec: Any) -> McpServerConfig:
    """One entry of an ``mcpServers`` object; McpError says what is wrong with it."""
    if not isinstance(spec, dict):
        raise McpError(f"MCP server {name!r} must be an object with \"command\" (and \"args\") or \"url\".")
    url = spec.get("url") or spec.get("serverUrl")
    command = spec.get("command")
    args = spec.get("args") or []
    env = spec.get("env") or {}
    if command is not None and not isinstance(command, str):
        raise McpError(f"MCP server {name!r}: \"command\" must be a string.")
    if not isinstance(args, list):
        raise McpError(f"MCP server {name!r}: \"args\" must be a list of strings.")
    if not isinstance(env, dict):
        raise McpError(f"MCP server {name!r}: \"env\" must be an object of strings.")
    if spec.get("type") == "sse" or (isinstance(url, str) and url.rstrip("/").endswith("/sse")):
        log.info("MCP server %s looks like an SSE server; Hearth speaks streamable HTTP to it", name)
    allow = spec.get("alwaysAllow") or spec.get("autoApprove") or []
    timeout = spec.get("timeout", DEFAULT_TIMEOUT_S)
    cfg = McpServerConfig(
        name=name, command=command or None, args=list(args), env={str(k): v for k, v in env.items()},
        url=url if isinstance(url, str) else None,
        enabled=not bool(spec.get("disabled", False)),
        always_allow=[str(t) for t in allow] if isinstance(allow, list) else [],
        timeout_s=float(timeout) if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) else -1,
    )
    if url is not None and not isinstance(url, str):
        raise McpError(f"MCP server {name!r}: \"url\" must be a string.")
    cfg.validate()
    return cfg


class McpConfig:
    """The configured servers, saved at once on every change (thread-safe).

    Also the tool registry's ApprovalPolicy: keys are ``mcp:SERVER.TOOL``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._servers: dict[str, McpServerConfig] = {}
        self._extra: dict[str, Any] = {}
        self.load()

    @classmethod
    def for_paths(cls, paths: AppPaths) -> McpConfig:
        return cls(config_path(paths))

    # ---- file ---------------------------------------------------------------

    def load(self) -> None:
        with self._lock:
            self._servers = {}
            if not self.path.exists():
                return
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                if not isinstance(data, dict) or not isinstance(data.get("mcpServers", {}), dict):
                    raise ValueError("not an object with \"mcpServers\"")
            except (OSError, ValueError) as exc:
                aside = self.path.with_suffix(".broken.json")
                log.warning("MCP config %s is unreadable (%s); kept as %s, starting with no servers",
                            self.path, exc, aside)
                try:
                    os.replace(self.path, aside)
                except OSError:
                    pass
                return
            self._extra = {k: v for k, v in data.items() if k not in ("mcpServers", "schema_version")}
            for name, spec in data.get("mcpServers", {}).items():
                try:
                    self._servers[name] = server_from_json(name, spec)
                except McpError as exc:
                    log.warning("MCP config %s: server %r skipped: %s", self.path, name, exc)

    def save(self) -> None:
        with self._lock:
            data = dict(self._extra)
            data["schema_version"] = SCHEMA_VERSION
            data["mcpServers"] = {name: s.to_json() for name, s in self._servers.items()}
            try:
                write_json_atomic(self.path, data)
            except OSError as exc:
                raise McpError(f"Could not save the MCP servers to {self.path}: {exc.strerror or exc}") from exc

    # ---- servers ------------------------------------------------------------

    def servers(self) -> list[McpServerConfig]:
        with self._lock:
            return list(self._servers.values())

    def get(self, name: str) -> McpServerConfig:
        with self._lock:
            try:
                return self._servers[name]
            except KeyError:
                known = ", ".join(self._servers) or "none"
                raise McpError(f"There is no MCP server named {name!r} (configured: {known}). "
                               "Add it with 'hearth tools mcp add' or in Settings › Tools.") from None

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._servers

    def add(self, server: McpServerConfig, *, replace: bool = False) -> None:
        server.validate()
        with self._lock:
            if server.name in self._servers and not replace:
                raise McpError(f"An MCP server named {server.name!r} already exists; remove it first or pick "
                               "another name.")
            self._servers[server.name] = server
            self.save()

    def add_command(self, name: str, command_line: str, *, env: dict[str, str] | None = None) -> McpServerConfig:
        """A stdio server from one command line ("uvx mcp-server-time --local-timezone UTC")."""
        check_server_name(name)
        try:
            parts = shlex.split(command_line, posix=os.name != "nt")
        except ValueError as exc:
            raise McpError(f"Cannot read the command {command_line!r}: {exc}.") from exc
        if not parts:
            raise McpError(f"MCP server {name!r}: the command is empty.")
        server = McpServerConfig(name=name, command=parts[0], args=parts[1:], env=dict(env or {}))
        self.add(server)
        return server

    def add_url(self, name: str, url: str) -> McpServerConfig:
        server = McpServerConfig(name=name, url=url.strip())
        self.add(server)
        return server

    def remove(self, name: str) -> None:
        with self._lock:
            self.get(name)
            del self._servers[name]
            self.save()

    def set_enabled(self, name: str, enabled: bool) -> None:
        with self._lock:
            self.get(name).enabled = enabled
            self.save()

    def import_json(self, text: str) -> list[str]:
        """Add the servers of an ``mcpServers`` JSON (Claude Desktop, LM Studio, Jan); their names.

        The whole text is checked before anything is added; a name already taken gets
        a number ("time-2") rather than replacing the server the user has.
        """
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise McpError(f"This is not valid JSON ({exc}). Paste the whole file, starting with {{.") from exc
        if not isinstance(data, dict):
            raise McpError('Expected a JSON object such as {"mcpServers": {"time": {"command": "uvx", '
                           '"args": ["mcp-server-time"]}}}.')
        servers = data.get("mcpServers", data.get("servers"))
        if not isinstance(servers, dict) or not servers:
            raise McpError('No servers found: the JSON needs an "mcpServers" object with at least one server, '
                           'as in {"mcpServers": {"time": {"command": "uvx", "args": ["mcp-server-time"]}}}.')
        parsed: list[McpServerConfig] = []
        with self._lock:
            taken = set(self._servers)
            for raw_name, spec in servers.items():
                name = _clean_name(raw_name)
                base, n = name, 2
                while name in taken:
                    name = f"{base[:37]}-{n}"
                    n += 1
                taken.add(name)
                parsed.append(server_from_json(name, spec))
            for server in parsed:
                self._servers[server.name] = server
            self.save()
        return [s.name for s in parsed]

    # ---- approval (ApprovalPolicy) --------------------------------------------

    @staticmethod
    def approval_key(server: str, tool: str) -> str:
        return f"mcp:{server}.{tool}"

    @staticmethod
    def _split_key(key: str) -> tuple[str, str] | None:
        if not key.startswith("mcp:") or "." not in key:
            return None
        server, _, tool = key[4:].partition(".")
        return server, tool

    def always_allowed(self, key: str) -> bool:
        parts = self._split_key(key)
        if parts is None:
            return False
        with self._lock:
            server = self._servers.get(parts[0])
            return server is not None and parts[1] in server.always_allow

    def allow_always(self, key: str) -> None:
        parts = self._split_key(key)
        if parts is None:
            raise McpError(f"{key!r} is not an MCP tool.")
        with self._lock:
            server = self.get(parts[0])
            if parts[1] not in server.always_allow:
                server.always_allow.append(parts[1])
                self.save()

    def set_ask(self, server: str, tool: str) -> None:
        """Back to asking before each call of this tool."""
        with self._lock:
            s = self.get(server)
            if tool in s.always_allow:
                s.always_allow.remove(tool)
                self.save()
