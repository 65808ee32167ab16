"""MCP servers as tools, against real servers: mcp-server-time (stdio) and the SDK test server (HTTP)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.errors import McpError
from app.harmony.render import validate_tools
from app.harmony.tools import MAX_TOOL_OUTPUT_CHARS, ApprovalRequest, ToolRegistry, default_registry
from app.tools.mcp import McpManager, McpToolProvider, clean_schema, function_name
from app.tools.mcp_config import McpConfig
from tests.support.mcp_servers import TEST_SERVER_STDIO, TIME_SERVER, http_test_server


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    with http_test_server() as url:
        yield url


@pytest.fixture
def config(tmp_path: Path) -> McpConfig:
    return McpConfig(tmp_path / "config" / "mcp.json")


@pytest.fixture
def manager(config: McpConfig) -> Iterator[McpManager]:
    m = McpManager(config, connect_timeout_s=20)
    yield m
    m.close()


def _registry(manager: McpManager, answers: list[str] | None = None,
              asked: list[ApprovalRequest] | None = None) -> ToolRegistry:
    def approver(req: ApprovalRequest) -> str:
        if asked is not None:
            asked.append(req)
        return answers.pop(0) if answers else "deny"

    reg = default_registry()
    reg.approver = approver if answers is not None else None
    reg.policy = manager.config
    reg.add_provider(McpToolProvider(manager))
    return reg


# ---- configuration ---------------------------------------------------------------------


def test_config_round_trips_in_the_mcpservers_shape(config: McpConfig) -> None:
    config.add_command("time", "uvx mcp-server-time --local-timezone 'Europe/Paris'")
    config.add_url("web", "http://127.0.0.1:9/mcp")
    config.set_enabled("web", False)
    config.allow_always("mcp:time.get_current_time")
    data = json.loads(config.path.read_text())
    assert data["mcpServers"]["time"] == {"command": "uvx", "args": ["mcp-server-time", "--local-timezone",
                                                                       "Europe/Paris"],
                                          "alwaysAllow": ["get_current_time"]}
    assert data["mcpServers"]["web"] == {"url": "http://127.0.0.1:9/mcp", "disabled": True}
    again = McpConfig(config.path)
    assert [s.name for s in again.servers()] == ["time", "web"]
    assert again.always_allowed("mcp:time.get_current_time") and not again.always_allowed("mcp:time.convert_time")
    assert not again.get("web").enabled
    again.remove("web")
    assert "web" not in McpConfig(config.path)


def test_import_of_a_claude_desktop_file(config: McpConfig) -> None:
    config.add_command("time", "mcp-server-time")
    names = config.import_json(json.dumps({"mcpServers": {
        "time": {"command": "uvx", "args": ["mcp-server-time"]},
        "Brave Search": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-brave-search"],
                         "env": {"BRAVE_API_KEY": "k"}},
        "remote": {"url": "https://example.invalid/mcp"},
    }}))
    assert names == ["time-2", "Brave-Search", "remote"]  # the user's own "time" is kept
    assert config.get("time").command == "mcp-server-time"
    assert config.get("Brave-Search").env == {"BRAVE_API_KEY": "k"}
    assert config.get("remote").transport == "http"


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ("[]", "Expected a JSON object"),
    ('{"mcpServers": {}}', "No servers found"),
    ('{"mcpServers": {"x": {"args": ["a"]}}}', "either a command"),
    ('{"mcpServers": {"x": {"url": "ftp://h"}}}', "must start with http"),
    ('{"mcpServers": {"x": {"command": "a", "args": "b c"}}}', "must be a list of strings"),
])
def test_bad_imports_say_what_is_wrong_and_add_nothing(config: McpConfig, text: str, message: str) -> None:
    with pytest.raises(McpError, match=message):
        config.import_json(text)
    assert config.servers() == []


def test_server_names_are_checked(config: McpConfig) -> None:
    with pytest.raises(McpError, match="not usable"):
        config.add_command("my.server", "x")
    config.add_command("ok", "x")
    with pytest.raises(McpError, match="already exists"):
        config.add_command("ok", "y")
    with pytest.raises(McpError, match="no MCP server named 'nope'.*configured: ok"):
        config.remove("nope")


def test_function_names_are_valid_harmony_names() -> None:
    assert function_name("time", "get_current_time") == "mcp__time__get_current_time"
    long = function_name("server", "a.tool/with spaces" + "x" * 80)
    assert len(long) <= 64 and validate_tools([{"type": "function", "function": {"name": long}}])
    assert long != function_name("server", "a.tool/with spaces" + "x" * 81)


def test_schemas_are_cleaned_to_what_the_renderer_accepts() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "date-time"}, "b": True,
                                               "c": {"type": "array", "items": [1]}}, "required": "a"}
    cleaned = clean_schema(schema)
    validate_tools([{"type": "function", "function": {"name": "f", "parameters": cleaned}}])
    assert set(cleaned["properties"]) == {"a", "b", "c"} and "required" not in cleaned


# ---- stdio: mcp-server-time from PyPI ---------------------------------------------------------


def test_time_server_over_stdio_offers_namespaced_tools(manager: McpManager) -> None:
    manager.config.add_command("time", TIME_SERVER)
    status = manager.start("time")
    assert status.state == "ready", status.message
    assert {t.name for t in status.tools} == {"get_current_time", "convert_time"}
    reg = _registry(manager, answers=["once"])
    assert "mcp__time__get_current_time" in reg.names() and "calculator" in reg.names()
    validate_tools(reg.schemas())  # what render_harmony will check
    res = reg.call("mcp__time__get_current_time", json.dumps({"timezone": "Europe/Paris"}))
    assert res.ok, res.output
    assert json.loads(res.output)["timezone"] == "Europe/Paris"
    assert res.duration_ms is not None and 0 < res.duration_ms < 10_000


def test_stdio_stderr_goes_to_the_log_not_the_terminal(manager: McpManager, caplog: pytest.LogCaptureFixture,
                                                       capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.INFO, logger="app.tools.mcp.server")
    manager.config.add_command("t", TEST_SERVER_STDIO)
    assert manager.start("t").state == "ready"
    deadline = time.monotonic() + 5
    while "hearth-test MCP server starting" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "[t] hearth-test MCP server starting" in caplog.text
    assert "hearth-test MCP server starting" not in capfd.readouterr().err


def test_a_crashed_server_gives_a_clear_error_and_restarts_on_the_next_call(manager: McpManager) -> None:
    manager.config.add_command("t", TEST_SERVER_STDIO)
    with pytest.raises(McpError, match="'crash' on server 't'.*closed the connection"):
        manager.call("t", "crash", {})
    assert manager.call("t", "echo", {"text": "back"}).output == "echo: back"


def test_a_missing_program_fails_with_its_name(manager: McpManager) -> None:
    manager.config.add_command("ghost", "/nonexistent/mcp-ghost --flag")
    status = manager.start("ghost")
    assert status.state == "failed" and "'/nonexistent/mcp-ghost' was not found" in status.message
    reg = _registry(manager, answers=[])
    assert not any(n.startswith("mcp__ghost") for n in reg.names())  # a failed server offers nothing


# ---- streamable HTTP: the SDK test server ------------------------------------------------------


def test_http_server_tools_errors_and_large_results(manager: McpManager, http_url: str) -> None:
    manager.config.add_url("web", http_url)
    assert manager.start("web").state == "ready"
    reg = _registry(manager, answers=["once"] * 4)
    ok = reg.call("mcp__web__echo", '{"text": "hello"}')
    assert ok.ok and ok.output == "echo: hello"
    failed = reg.call("mcp__web__fail", '{"message": "disk full"}')
    assert not failed.ok
    assert "'fail' on server 'web' reported an error" in failed.output and "disk full" in failed.output
    big = reg.call("mcp__web__big", json.dumps({"n": MAX_TOOL_OUTPUT_CHARS + 5000}))
    assert big.ok and big.output.endswith("[... 5000 more characters cut]")
    bad_args = reg.call("mcp__web__big", '{"n": "many"}')
    assert not bad_args.ok and "'n' must be of type integer" in bad_args.output


def test_a_hung_call_times_out_naming_server_and_tool_and_the_server_still_works(
        manager: McpManager, http_url: str) -> None:
    manager.config.add_url("web", http_url)
    t0 = time.monotonic()
    with pytest.raises(McpError, match="'sleep' on server 'web' did not answer within 1 s"):
        manager.call("web", "sleep", {"seconds": 30}, timeout=1)
    assert time.monotonic() - t0 < 8
    assert manager.call("web", "echo", {"text": "still here"}).output == "echo: still here"


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_a_changed_tool_list_reaches_the_registry(config: McpConfig, http_url: str, mode: str) -> None:
    # "auto" speaks 2026-07-28 (subscriptions/listen); "legacy" the handshake era (a notification).
    manager = McpManager(config, protocol_mode=mode)
    try:
        config.add_url("web", http_url)
        reg = _registry(manager, answers=["always"])
        assert manager.start("web").state == "ready"
        manager.call("web", "add_tool", {})
        deadline = time.monotonic() + 5
        while "mcp__web__extra" not in reg.names() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "mcp__web__extra" in reg.names()
        assert reg.call("mcp__web__extra", '{"x": 21}').output == "42"
    finally:
        manager.close()


def test_offline_mode_runs_stdio_servers_but_not_network_ones(config: McpConfig, http_url: str) -> None:
    manager = McpManager(config, offline=True)
    try:
        config.add_url("web", http_url)
        config.add_command("time", TIME_SERVER)
        assert manager.start("time").state == "ready"
        status = manager.start("web")
        assert status.state == "offline" and "offline mode" in status.message
        with pytest.raises(McpError, match="'echo' on server 'web' was not run: .*offline mode"):
            manager.call("web", "echo", {"text": "x"})
    finally:
        manager.close()


def test_a_switched_off_server_offers_no_tools(manager: McpManager, http_url: str) -> None:
    manager.config.add_url("web", http_url)
    manager.config.set_enabled("web", False)
    assert manager.start("web").state == "disabled"
    assert not any(n.startswith("mcp__") for n in _registry(manager, answers=[]).names())
    with pytest.raises(McpError, match="switched off"):
        manager.call("web", "echo", {"text": "x"})


# ---- approval -----------------------------------------------------------------------------


def test_approval_once_always_deny_and_nobody_to_ask(manager: McpManager, http_url: str) -> None:
    manager.config.add_url("web", http_url)
    manager.start("web")
    asked: list[ApprovalRequest] = []
    reg = _registry(manager, answers=["deny", "once", "always"], asked=asked)
    denied = reg.call("mcp__web__echo", '{"text": "a"}', conversation_id=7)
    assert not denied.ok and "The user denied this call to web › echo" in denied.output
    assert denied.duration_ms is None  # it never ran
    assert asked[0] == ApprovalRequest("mcp__web__echo", "web › echo", "mcp:web.echo", {"text": "a"}, 7)
    assert reg.call("mcp__web__echo", '{"text": "b"}').output == "echo: b"  # once
    assert reg.call("mcp__web__echo", '{"text": "c"}').output == "echo: c"  # always
    assert reg.call("mcp__web__echo", '{"text": "d"}').output == "echo: d"  # not asked again
    assert len(asked) == 3
    assert "echo" in json.loads(manager.config.path.read_text())["mcpServers"]["web"]["alwaysAllow"]
    assert reg.call("calculator", '{"expression": "1+1"}').output == "2"  # built-ins never ask
    nobody = _registry(manager)
    res = nobody.call("mcp__web__big", '{"n": 3}')
    assert not res.ok and "needs the user's approval and no one could be asked" in res.output
