"""Which tools a chat offers: ``hearth chat --tools python,calculator,mcp:NAME … [--yes]``.

``build_chat_tools`` turns that list into a ToolRegistry whose MCP calls ask first
(on the terminal, or not at all with ``--yes``); ``registry.close()`` stops the MCP
servers and python sessions it started.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any, TextIO

from app.errors import McpError
from app.harmony.tools import ApprovalRequest, Decision, Tool, ToolRegistry, default_registry
from app.paths import AppPaths
from app.tools.mcp_config import McpConfig

if TYPE_CHECKING:
    from app.tools.mcp import McpManager

log = logging.getLogger(__name__)

# Names a person types, and the registry's names for them.
BUILTIN_NAMES = {"calculator": "calculator", "date": "get_current_datetime",
                 "get_current_datetime": "get_current_datetime"}
TOOL_SPEC_HELP = ("calculator, date, python, documents, mcp (every enabled MCP server), mcp:NAME "
                  "(one MCP server), or none")


def parse_tools_spec(spec: str) -> list[str]:
    """``"python, calculator,mcp:time"`` -> ``["python", "calculator", "mcp:time"]``; ValueError if unknown."""
    items = [s.strip() for s in spec.split(",") if s.strip()]
    if not items:
        raise ValueError(f"--tools is empty; give a comma-separated list of: {TOOL_SPEC_HELP}.")
    for item in items:
        if item in BUILTIN_NAMES or item in ("python", "documents", "mcp", "none"):
            continue
        if item.startswith("mcp:") and len(item) > 4:
            continue
        raise ValueError(f"--tools: unknown tool {item!r}; choose from: {TOOL_SPEC_HELP}.")
    if "none" in items and len(items) > 1:
        raise ValueError("--tools: 'none' cannot be combined with other tools.")
    return items


def terminal_approver(stdin: TextIO | None = None, stderr: TextIO | None = None) -> Any:
    """Ask on the terminal before each MCP call; without a terminal, refuse and say to use --yes."""
    def approve(req: ApprovalRequest) -> Decision:
        inp, out = stdin or sys.stdin, stderr or sys.stderr
        args = ", ".join(f"{k}={v!r}" for k, v in req.arguments.items())
        if not inp.isatty():
            print(f"hearth: {req.title}({args}) needs your approval; not run (use --yes to allow tool calls "
                  "in scripts).", file=out)
            return "deny"
        out.write(f"\nThe model wants to run {req.title}({args}).\n"
                  "Allow once [o], always allow this tool [a], or deny [d]? ")
        out.flush()
        answer = inp.readline().strip().lower()
        return "once" if answer in ("o", "once", "y", "yes") else "always" if answer in ("a", "always") else "deny"

    return approve


def _approve_all(_req: ApprovalRequest) -> Decision:
    return "once"


def build_chat_tools(spec: str | None, settings: Any, paths: AppPaths, *, yes: bool,
                     manager: McpManager | None = None) -> ToolRegistry:
    """The registry for one chat. ``spec`` None: the built-ins (python when Settings has it on).

    Raises ValueError for a bad list (exit 2) and McpError when a named MCP server cannot be
    started (exit 1). MCP servers are started here, before the model loads its first token.
    Call ``registry.close()`` when the chat ends.
    """
    items = parse_tools_spec(spec) if spec is not None else ["calculator", "date", "python", "documents"]
    reg = ToolRegistry(approver=_approve_all if yes else terminal_approver())
    if items == ["none"]:
        return reg
    builtins = default_registry()
    for item in items:
        name = BUILTIN_NAMES.get(item)
        if name is not None and name not in reg:
            tool = builtins.get(name)
            assert isinstance(tool, Tool)
            reg.register(tool)
    if "python" in items and (spec is not None or getattr(settings, "python_tool", True)):
        _add_python(reg, paths)
    servers = _mcp_servers(items, paths, manager)
    if servers:
        # The MCP SDK is imported only when a chat uses MCP servers (it costs start-up time).
        from app.tools.mcp import McpManager, McpToolProvider

        config = manager.config if manager is not None else McpConfig.for_paths(paths)
        if manager is None:
            manager = McpManager(config, offline=lambda: bool(getattr(settings, "offline", False)))
            reg.on_close(manager.close)
        reg.policy = config
        for name in servers:
            manager.start(name, wait=False)
        for name in servers:
            status = manager.start(name)
            if status.state != "ready":
                reg.close()
                raise McpError(status.message or f"MCP server {name!r} did not start.")
        reg.add_provider(McpToolProvider(manager, servers))
    return reg


def _mcp_servers(items: list[str], paths: AppPaths, manager: McpManager | None) -> list[str]:
    wanted = [i[4:] for i in items if i.startswith("mcp:")]
    if not wanted and "mcp" not in items:
        return []
    config = manager.config if manager is not None else McpConfig.for_paths(paths)
    for name in wanted:
        cfg = config.get(name)  # McpError: no such server (names the configured ones)
        if not cfg.enabled:
            raise McpError(f"MCP server {name!r} is switched off; switch it on in Settings › Tools first.")
    if "mcp" in items:
        wanted += [s.name for s in config.servers() if s.enabled and s.name not in wanted]
    return wanted


def _add_python(reg: ToolRegistry, paths: AppPaths) -> None:
    # Imported here: the python tool needs its sandbox runtime only when a chat asks for it.
    from app.tools.python_tool import PythonSessions, add_python_tool

    sessions = PythonSessions.for_paths(paths)
    add_python_tool(reg, sessions)
    reg.on_close(sessions.close_all)
