"""``hearth tools list / mcp add|rm / run mcp:…`` through the real command line, on real servers;
``build_chat_tools`` for ``hearth chat --tools …``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.cli import main as cli_main
from app.errors import McpError
from app.harmony.tools import ApprovalRequest
from app.paths import resolve_paths
from app.settings import Settings
from app.tools.mcp_config import McpConfig
from app.tools.selection import build_chat_tools, parse_tools_spec, terminal_approver
from tests.support.mcp_servers import TIME_SERVER, http_test_server

ROOT = Path(__file__).resolve().parents[3]


def hearth(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HEARTH_DATA_DIR=str(data))
    return subprocess.run([sys.executable, "-m", "ui.shell.entry", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=120)


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    with http_test_server() as url:
        yield url


def test_add_list_run_and_remove(tmp_path: Path, http_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d"

    def hearth_in(*args: str) -> subprocess.CompletedProcess[str]:
        code = cli_main(["--data-dir", str(data), *args])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    added = hearth_in("tools", "mcp", "add", "time", "--command", TIME_SERVER)
    assert added.returncode == 0, added.stderr
    assert "Added MCP server 'time' (stdio" in added.stdout
    assert hearth_in("tools", "mcp", "add", "web", "--url", http_url).returncode == 0
    dup = hearth_in("tools", "mcp", "add", "web", "--url", http_url)
    assert dup.returncode == 2 and "already exists" in dup.stderr

    listed = hearth(data, "tools", "list", "--json")  # the real entry point, once
    assert listed.returncode == 0, listed.stderr
    out = json.loads(listed.stdout)
    assert {"calculator", "get_current_datetime", "search_documents", "python"} <= {b["name"] for b in out["builtin"]}
    servers = {s["name"]: s for s in out["mcp"]}
    assert servers["time"]["state"] == "ready" and servers["time"]["transport"] == "stdio"
    assert {t["function"] for t in servers["time"]["tools"]} == {"mcp__time__get_current_time",
                                                                 "mcp__time__convert_time"}
    assert servers["web"]["transport"] == "http" and "sleep" in {t["name"] for t in servers["web"]["tools"]}
    text = hearth_in("tools", "list")
    assert "MCP servers:" in text.stdout and "get_current_time" in text.stdout

    ran = hearth_in("tools", "run", "mcp:time.get_current_time", "--args", '{"timezone": "Asia/Tokyo"}', "--json")
    assert ran.returncode == 0, ran.stderr
    line = json.loads(ran.stdout)
    assert line["error"] is None and json.loads(line["output"])["timezone"] == "Asia/Tokyo"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] > 0

    tool_error = hearth_in("tools", "run", "mcp:web.fail", "--args", '{"message": "nope"}', "--json")
    assert tool_error.returncode == 0  # the tool ran; its failure is in "error"
    assert "reported an error" in json.loads(tool_error.stdout)["error"]

    removed = hearth_in("tools", "mcp", "rm", "web")
    assert removed.returncode == 0 and "Removed MCP server 'web'" in removed.stdout
    assert [s["name"] for s in json.loads(hearth_in("tools", "list", "--json").stdout)["mcp"]] == ["time"]


@pytest.mark.parametrize("argv, message", [
    (["run", "mcp:time.get_current_time", "--args", "{bad"], "not valid JSON"),
    (["run", "mcp:time.get_current_time", "--args", "[1]"], "must be a JSON object"),
    (["run", "mcp:time.get_current_time", "--args", "{}"], "missing required argument(s): timezone"),
    (["run", "mcp:time.no_such_tool", "--args", "{}"], "has no tool 'no_such_tool'; it has: get_current_time"),
    (["run", "mcp:nope.x", "--args", "{}"], "no MCP server named 'nope'"),
    (["run", "mcp:time"], "use python, or mcp:SERVER.TOOL"),
    (["mcp", "add", "bad.name", "--command", "x"], "not usable"),
    (["mcp", "rm", "nope"], "no MCP server named 'nope'"),
])
def test_bad_arguments_exit_2_with_a_reason(tmp_path: Path, argv: list[str], message: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d"
    McpConfig.for_paths(resolve_paths(data)).add_command("time", TIME_SERVER)
    assert cli_main(["--data-dir", str(data), "tools", *argv]) == 2  # in-process: quicker than a subprocess
    assert message in capsys.readouterr().err


def test_a_tool_that_cannot_run_exits_1(tmp_path: Path, http_url: str) -> None:
    data = tmp_path / "d"
    config = McpConfig.for_paths(resolve_paths(data))
    config.add_url("web", http_url)
    config.add_command("ghost", "/nonexistent/mcp-ghost")
    hung = hearth(data, "tools", "run", "mcp:web.sleep", "--args", '{"seconds": 1.5}', "--json")
    assert hung.returncode == 0 and json.loads(hung.stdout)["output"] == "slept 1.5 s"
    config.get("web").timeout_s = 1
    config.save()
    timed_out = hearth(data, "tools", "run", "mcp:web.sleep", "--args", '{"seconds": 20}', "--json")
    assert timed_out.returncode == 1
    line = json.loads(timed_out.stdout)
    assert line["output"] is None and "'sleep' on server 'web' did not answer within 1 s" in line["error"]
    missing = hearth(data, "tools", "run", "mcp:ghost.x", "--args", "{}")
    assert missing.returncode == 1 and "'/nonexistent/mcp-ghost' was not found" in missing.stderr


# ---- hearth chat --tools … ----------------------------------------------------------------------


def test_tools_spec_is_checked() -> None:
    assert parse_tools_spec("python, calculator,mcp:time") == ["python", "calculator", "mcp:time"]
    with pytest.raises(ValueError, match="unknown tool 'browser'"):
        parse_tools_spec("calculator,browser")
    with pytest.raises(ValueError, match="empty"):
        parse_tools_spec(" , ")


def test_build_chat_tools_starts_the_named_servers(tmp_path: Path) -> None:
    paths = resolve_paths(tmp_path / "d")
    McpConfig.for_paths(paths).add_command("time", TIME_SERVER)
    reg = build_chat_tools("calculator,mcp:time", Settings(), paths, yes=True)
    try:
        assert set(reg.names()) == {"calculator", "mcp__time__get_current_time", "mcp__time__convert_time"}
        res = reg.call("mcp__time__get_current_time", '{"timezone": "UTC"}')  # --yes: not asked
        assert res.ok and json.loads(res.output)["timezone"] == "UTC" and res.duration_ms
    finally:
        reg.close()
    with pytest.raises(McpError, match="no MCP server named 'nope'"):
        build_chat_tools("mcp:nope", Settings(), paths, yes=True)
    McpConfig.for_paths(paths).add_command("ghost", "/nonexistent/ghost")
    with pytest.raises(McpError, match="was not found"):
        build_chat_tools("mcp:ghost", Settings(), paths, yes=True)


def test_without_yes_the_terminal_is_asked_or_the_call_refused() -> None:
    req = ApprovalRequest("mcp__time__x", "time › x", "mcp:time.x", {"a": 1})
    err = io.StringIO()
    assert terminal_approver(io.StringIO("a\n"), err)(req) == "deny"  # StringIO is no terminal
    assert "needs your approval; not run (use --yes" in err.getvalue()

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = io.StringIO()
    assert terminal_approver(Tty("a\n"), out)(req) == "always"
    assert "time › x(a=1)" in out.getvalue()
    assert terminal_approver(Tty("o\n"), out)(req) == "once"
    assert terminal_approver(Tty("\n"), out)(req) == "deny"
