"""`hearth tools …`: list tools, configure MCP servers, run a tool by hand.

Contract (scripts rely on it):
- ``hearth tools list [--json]``
- ``hearth tools mcp add NAME (--command "CMD ARGS…" | --url URL)``, ``hearth tools mcp rm NAME``
- ``hearth tools run python --code CODE [--code CODE …] [--json]``
- ``hearth tools run mcp:NAME.TOOL --args JSON [--json]``

Exit codes: 0 the tool ran (even if the code raised), 2 bad arguments, 1 the tool could not run.
"""

from __future__ import annotations

import argparse
from typing import Any

from app.exit_codes import EXIT_USAGE
from app.paths import AppPaths


def add_tools_parser(sub: Any) -> None:
    t = sub.add_parser("tools", help="list tools, configure MCP servers, run a tool")
    tsub = t.add_subparsers(dest="tools_command")
    ls = tsub.add_parser("list", help="built-in tools and configured MCP servers with their tools")
    ls.add_argument("--json", action="store_true")
    m = tsub.add_parser("mcp", help="configure MCP servers")
    msub = m.add_subparsers(dest="mcp_command")
    add = msub.add_parser("add", help="add an MCP server")
    add.add_argument("name")
    how = add.add_mutually_exclusive_group(required=True)
    how.add_argument("--command", dest="server_command", help='a stdio server: "CMD ARGS…"')
    how.add_argument("--url", help="a streamable-HTTP server")
    rm = msub.add_parser("rm", help="remove an MCP server")
    rm.add_argument("name")
    run = tsub.add_parser("run", help="run a tool once, as a model's call would")
    run.add_argument("tool", help="python, or mcp:SERVER.TOOL")
    run.add_argument("--code", action="append", default=[], help="python code (repeat: one session)")
    run.add_argument("--args", dest="tool_args", help="JSON arguments for an MCP tool")
    run.add_argument("--json", action="store_true", help="one JSON line per call")


def run_tools(args: argparse.Namespace, paths: AppPaths, settings: Any) -> int:
    cmd = getattr(args, "tools_command", None)
    if cmd == "run" and args.tool == "python":
        from app.tools.python_cli import run_python

        return run_python(args, paths, settings)
    if cmd in ("list", "mcp", "run"):
        from app.tools.mcp_cli import run_mcp_command

        return run_mcp_command(args, paths, settings)
    print("hearth tools: say what to do: list, mcp add|rm, or run (see hearth tools --help).")
    return EXIT_USAGE
