"""``hearth tools list``, ``hearth tools mcp add|rm`` and ``hearth tools run mcp:SERVER.TOOL``.

Exit codes (a contract): 0 the tool ran (even if it reported an error: that is in
``error``), 2 bad arguments, 1 the tool could not run (server missing, crashed, timed out).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from app.errors import McpError
from app.exit_codes import EXIT_FAIL, EXIT_OK, EXIT_USAGE
from app.harmony.tools import check_arguments, default_registry
from app.paths import AppPaths
from app.tools.mcp import McpManager, ServerStatus
from app.tools.mcp_config import McpConfig


BUILTIN_EXTRA = [
    ("search_documents", "Search the documents attached to the conversation (offered when some are attached)."),
    ("python", "gpt-oss's built-in python tool: stateful, in a WebAssembly sandbox (no network, one scratch "
               "folder per conversation)."),
]


def _err(msg: str) -> None:
    print(f"hearth: {msg}", file=sys.stderr)


def _manager(paths: AppPaths, settings: Any) -> McpManager:
    return McpManager(McpConfig.for_paths(paths), offline=lambda: bool(getattr(settings, "offline", False)))


def run_mcp_command(args: argparse.Namespace, paths: AppPaths, settings: Any) -> int:
    cmd = getattr(args, "tools_command", None)
    try:
        if cmd == "list":
            return _list(args, paths, settings)
        if cmd == "mcp":
            return _mcp(args, paths)
        if cmd == "run":
            return _run(args, paths, settings)
    except McpError as exc:
        _err(str(exc))
        return EXIT_FAIL
    _err("say what to do: list, mcp add|rm, or run (see hearth tools --help).")
    return EXIT_USAGE


# ---- list --------------------------------------------------------------------------


def _list(args: argparse.Namespace, paths: AppPaths, settings: Any) -> int:
    builtins = [{"name": t["function"]["name"], "description": t["function"]["description"], "enabled": True}
                for t in default_registry().schemas()]
    for name, desc in BUILTIN_EXTRA:
        enabled = bool(getattr(settings, "python_tool", True)) if name == "python" else True
        builtins.append({"name": name, "description": desc, "enabled": enabled})
    manager = _manager(paths, settings)
    try:
        config = manager.config
        manager.start_all(wait=False)  # in parallel; then wait for each in turn
        servers = []
        for cfg in config.servers():
            status = manager.start(cfg.name) if cfg.enabled else manager.status(cfg.name)
            servers.append(_server_json(config, status))
    finally:
        manager.close()
    if args.json:
        print(json.dumps({"builtin": builtins, "mcp": servers}, ensure_ascii=False))
        return EXIT_OK
    print("Built-in tools:")
    for b in builtins:
        off = "" if b["enabled"] else "  (switched off in Settings)"
        print(f"  {b['name']:<22} {b['description']}{off}")
    print("\nMCP servers:" if servers else "\nMCP servers: none (add one with: hearth tools mcp add NAME --command "
                                              "\"CMD ARGS…\" or --url URL)")
    for s in servers:
        print(f"  {s['name']} [{s['state']}] {s['transport']}: {s.get('url') or s.get('command')}")
        if s["message"]:
            print(f"    {s['message']}")
        for t in s["tools"]:
            print(f"    {t['name']:<24} {t['description'].splitlines()[0] if t['description'] else ''}"
                  f"{'  (always allowed)' if t['approval'] == 'always' else ''}")
    return EXIT_OK


def _server_json(config: McpConfig, status: ServerStatus) -> dict[str, Any]:
    cfg = config.get(status.name)
    out: dict[str, Any] = {"name": cfg.name, "transport": cfg.transport, "enabled": cfg.enabled,
                           "state": status.state, "message": status.message}
    if cfg.url:
        out["url"] = cfg.url
    else:
        out["command"] = cfg.describe()
    out["tools"] = [{"name": t.name, "function": t.function_name, "description": t.description,
                     "approval": "always" if t.name in cfg.always_allow else "ask"} for t in status.tools]
    return out


# ---- mcp add / rm ---------------------------------------------------------------------


def _mcp(args: argparse.Namespace, paths: AppPaths) -> int:
    config = McpConfig.for_paths(paths)
    sub = getattr(args, "mcp_command", None)
    try:
        if sub == "add":
            server = (config.add_url(args.name, args.url) if args.url
                      else config.add_command(args.name, args.server_command))
            kind = "streamable HTTP" if server.url else "stdio"
            print(f"Added MCP server {server.name!r} ({kind}: {server.describe()}). "
                  "See its tools with: hearth tools list")
            return EXIT_OK
        if sub == "rm":
            config.remove(args.name)
            print(f"Removed MCP server {args.name!r}.")
            return EXIT_OK
    except McpError as exc:
        _err(str(exc))
        return EXIT_USAGE
    _err("say what to do: hearth tools mcp add NAME (--command \"CMD ARGS…\" | --url URL), or mcp rm NAME.")
    return EXIT_USAGE


# ---- run mcp:SERVER.TOOL ----------------------------------------------------------------


def _run(args: argparse.Namespace, paths: AppPaths, settings: Any) -> int:
    target = args.tool
    if not target.startswith("mcp:") or "." not in target[4:]:
        _err(f"unknown tool {target!r}: use python, or mcp:SERVER.TOOL (for example mcp:time.get_current_time).")
        return EXIT_USAGE
    server, _, tool = target[4:].partition(".")
    if args.code:
        _err("--code is for python; an MCP tool takes --args JSON.")
        return EXIT_USAGE
    try:
        arguments = json.loads(args.tool_args) if args.tool_args else {}
    except ValueError as exc:
        _err(f"--args is not valid JSON ({exc}); give one object, for example --args '{{\"timezone\": \"UTC\"}}'.")
        return EXIT_USAGE
    if not isinstance(arguments, dict):
        _err("--args must be a JSON object, for example --args '{\"timezone\": \"UTC\"}'.")
        return EXIT_USAGE
    config = McpConfig.for_paths(paths)
    if server not in config:
        _err(str(McpError(f"There is no MCP server named {server!r} (configured: "
                          f"{', '.join(s.name for s in config.servers()) or 'none'}). "
                          "Add it with 'hearth tools mcp add'.")))
        return EXIT_USAGE
    manager = McpManager(config, offline=lambda: bool(getattr(settings, "offline", False)))
    try:
        status = manager.start(server)
        if status.state != "ready":
            return _report(args, None, status.message or f"MCP server {server!r} did not start.", None, EXIT_FAIL)
        info = next((t for t in status.tools if t.name == tool), None)
        if info is None:
            _err(f"MCP server {server!r} has no tool {tool!r}; it has: "
                 f"{', '.join(t.name for t in status.tools) or 'none'}.")
            return EXIT_USAGE
        problem = check_arguments(info.input_schema, arguments)
        if problem:
            _err(f"{target}: {problem}.")
            return EXIT_USAGE
        try:
            res = manager.call(server, tool, arguments)
        except McpError as exc:
            return _report(args, None, str(exc), None, EXIT_FAIL)
        if res.is_error:
            return _report(args, res.output, f"MCP tool {tool!r} on server {server!r} reported an error: "
                                             f"{res.output or 'no details'}", res.duration_ms, EXIT_OK)
        return _report(args, res.output, None, res.duration_ms, EXIT_OK)
    finally:
        manager.close()


def _report(args: argparse.Namespace, output: str | None, error: str | None, duration_ms: float | None,
            code: int) -> int:
    if args.json:
        print(json.dumps({"output": output, "error": error, "duration_ms": duration_ms}, ensure_ascii=False))
    else:
        if output is not None and error is None:
            print(output)
        if error is not None:
            _err(error)
    return code
