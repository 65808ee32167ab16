"""A small real MCP server for the tests, written with the mcp SDK (MCPServer).

    python -m tests.support.mcp_test_server --port 8765      # streamable HTTP on 127.0.0.1
    python -m tests.support.mcp_test_server --stdio          # stdio

Tools: echo, sleep (for timeouts), fail (a tool error), big (a large result),
add_tool (adds "extra" and says the list changed), crash (the process exits).
It prints one line to stderr at start so tests can check that stderr reaches the log.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError


def build() -> MCPServer:
    server = MCPServer("hearth-test")

    @server.tool(description="Echo the text back.")
    def echo(text: str) -> str:
        return f"echo: {text}"

    @server.tool(description="Sleep for a number of seconds, then say so.")
    async def sleep(seconds: float) -> str:
        await asyncio.sleep(seconds)
        return f"slept {seconds} s"

    @server.tool(description="Always fails with the given message.")
    def fail(message: str = "it broke") -> str:
        raise ToolError(message)

    @server.tool(description="Return n characters of text.")
    def big(n: int) -> str:
        return ("0123456789" * (n // 10 + 1))[:n]

    @server.tool(description="Add the tool 'extra' and tell the client that the tool list changed.")
    async def add_tool(ctx: Context) -> str:
        def extra(x: int) -> str:
            """Double x."""
            return str(2 * x)

        if server._tool_manager.get_tool("extra") is None:
            server.add_tool(extra, name="extra", description="Double x.")
        await ctx.notify_tools_changed()  # 2026-07-28 clients: subscriptions/listen
        try:
            await ctx.session.send_tool_list_changed()  # handshake-era clients: a notification
        except Exception as exc:  # noqa: BLE001 - not every protocol version has this notification
            print(f"legacy list_changed not sent: {exc}", file=sys.stderr, flush=True)
        return "added extra"

    @server.tool(description="Exit the server process at once.")
    def crash() -> str:
        os._exit(3)

    return server


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--stdio", action="store_true")
    args = p.parse_args()
    print("hearth-test MCP server starting", file=sys.stderr, flush=True)
    server = build()
    if args.stdio:
        server.run("stdio")
    else:
        server.settings.log_level = "WARNING"
        server.run("streamable-http", host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
