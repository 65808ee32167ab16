"""The tool registry and the built-in offline tools, as the model experiences them."""

from __future__ import annotations

import datetime as _dt
import json
import math
from typing import Any

import pytest

from app.harmony.detect import HARMONY_STOP_TOKENS, is_harmony_model
from app.harmony.render import render_harmony, validate_tools
from app.harmony.tools import (
    MAX_TOOL_CALLS_PER_TURN, MAX_TOOL_OUTPUT_CHARS, Tool, ToolError, ToolRegistry, current_datetime,
    default_registry, evaluate_expression,
)
from app.prompt import prompt_text


def calc(expression: str) -> tuple[bool, str]:
    res = default_registry().call("calculator", json.dumps({"expression": expression}))
    return res.ok, res.output


@pytest.mark.parametrize("expression, expected", [
    ("2 + 3 * 4", "14"), ("(2 + 3) * 4", "20"), ("7 / 2", "3.5"), ("7 // 2", "3"), ("-7 % 3", "2"),
    ("2 ** 10", "1024"), ("2 ** -1", "0.5"), ("-3 ** 2", "-9"), ("(-3) ** 2", "9"), ("--4", "4"),
    ("0.1 + 0.2", "0.3"), ("1e3 / 8", "125"), ("2 ** 100", "1267650600228229401496703205376"),
    ("sqrt(16)", "4"), ("sin(pi / 2)", "1"), ("cos(0)", "1"), ("tan(0)", "0"), ("log(e)", "1"),
    ("log(8, 2)", "3"), ("exp(0)", "1"), ("abs(-3.5)", "3.5"), ("round(2.567, 2)", "2.57"), ("round(7.5)", "8"),
    ("3 × 4 ÷ 2", "6"), ("factorial(5)", "120"), ("max(1, 5, 3)", "5"),
])
def test_calculator_answers(expression: str, expected: str) -> None:
    assert calc(expression) == (True, expected)


def test_calculator_float_precision() -> None:
    ok, out = calc("1 / 3")
    assert ok and math.isclose(float(out), 1 / 3, rel_tol=1e-14)


@pytest.mark.parametrize("expression, complaint", [
    ("__import__('os')", "unknown function '__import__'"),
    ("__import__('os').system('echo hacked')", "unknown function"),
    ("os", "unknown name 'os'"),
    ("x + 1", "unknown name 'x'"),
    ("(1).__class__", "not allowed"),
    ("'a' * 3", "only numbers"),
    ("[1, 2]", "not allowed"),
    ("lambda: 1", "not allowed"),
    ("True + 1", "only numbers"),
    ("2 ** 100000", "too large"),
    ("10 ** 10 ** 10", "too large"),
    ("9 ** 9 ** 9", "too large"),
    ("(10 ** 4000) * (10 ** 4000)", "too large"),
    ("1e308 * 10", "not a finite number"),
    ("exp(1000)", "too large"),
    ("1 / 0", "division by zero"),
    ("sqrt(-1)", "cannot compute"),
    ("(-8) ** (1 / 3)", "not a real number"),
    ("2 ^ 3", "write powers as"),
    ("sqrt(x=4)", "positional arguments only"),
    ("log(1, 2, 3)", "takes 1 to 2 argument"),
    ("1 +", "cannot read"),
    ("", "empty"),
    ("1" * 600, "longer than"),
])
def test_calculator_refuses_non_arithmetic(expression: str, complaint: str) -> None:
    ok, out = calc(expression)
    assert not ok
    assert out.startswith("Error: ") and complaint in out


def test_calculator_never_evaluates_python() -> None:
    with pytest.raises(ToolError):
        evaluate_expression("open('/etc/passwd').read()")


def test_current_datetime_in_a_time_zone() -> None:
    fixed = _dt.datetime(2025, 1, 1, 0, 30, tzinfo=_dt.timezone.utc)
    assert current_datetime({"timezone": "Asia/Tokyo"}, now=fixed) == \
        "Wednesday, 2025-01-01 09:30:00 (Asia/Tokyo, UTC+09:00)"
    assert current_datetime({"timezone": "UTC"}, now=fixed).startswith("Wednesday, 2025-01-01 00:30:00")


def test_current_datetime_through_the_registry() -> None:
    reg = default_registry()
    res = reg.call("get_current_datetime", "{}")
    assert res.ok and _dt.date.today().isoformat() in res.output
    utc = reg.call("get_current_datetime", json.dumps({"timezone": "UTC"}))
    assert utc.ok and _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d") in utc.output
    bad = reg.call("get_current_datetime", json.dumps({"timezone": "Mars/Olympus_Mons"}))
    assert not bad.ok and "unknown time zone 'Mars/Olympus_Mons'" in bad.output
    sneaky = reg.call("get_current_datetime", json.dumps({"timezone": "../../../etc/passwd"}))
    assert not sneaky.ok


def test_registry_errors_go_back_to_the_model() -> None:
    reg = default_registry()
    unknown = reg.call("browse_web", "{}")
    assert not unknown.ok and "no tool named 'browse_web'" in unknown.output and "calculator" in unknown.output
    broken = reg.call("calculator", '{"expression": "2+2"')
    assert not broken.ok and "not valid JSON" in broken.output
    not_object = reg.call("calculator", '["2+2"]')
    assert not not_object.ok and "must be a JSON object" in not_object.output
    missing = reg.call("calculator", "{}")
    assert not missing.ok and "missing required argument(s): expression" in missing.output
    wrong_type = reg.call("calculator", '{"expression": 4}')
    assert not wrong_type.ok and "'expression' must be of type string" in wrong_type.output
    assert reg.call("get_current_datetime", "").ok  # no arguments at all is an empty object


def test_a_failing_tool_is_reported_not_raised() -> None:
    reg = ToolRegistry()

    def explode(args: dict[str, Any]) -> str:
        raise RuntimeError("disk on fire")

    reg.register(Tool("explode", "Fails.", {"type": "object", "properties": {}}, explode))
    res = reg.call("explode", "{}")
    assert res == res.__class__(False, "Error: the tool explode failed: RuntimeError: disk on fire")


def test_tool_output_is_capped_and_non_strings_become_json() -> None:
    reg = ToolRegistry()
    reg.register(Tool("big", "Big.", {"type": "object", "properties": {}}, lambda a: "x" * (MAX_TOOL_OUTPUT_CHARS + 5)))
    reg.register(Tool("obj", "Obj.", {"type": "object", "properties": {}}, lambda a: {"a": "é"}))  # type: ignore[arg-type,return-value]
    big = reg.call("big", "{}")
    assert big.ok and big.output.endswith("[... 5 more characters cut]")
    assert reg.call("obj", "{}").output == '{"a": "é"}'


def test_registration_rules_and_schemas() -> None:
    reg = default_registry()
    with pytest.raises(ValueError, match="already registered"):
        reg.register(Tool("calculator", "again", {"type": "object"}, lambda a: ""))
    with pytest.raises(ValueError, match="type object"):
        reg.register(Tool("bad", "bad", {"type": "string"}, lambda a: ""))
    reg.register(Tool("search_documents", "Search the attached documents.",
                      {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
                      lambda a: "no hits"))
    schemas = reg.schemas()
    assert [s["function"]["name"] for s in schemas] == ["get_current_datetime", "calculator", "search_documents"]
    assert validate_tools(schemas) == schemas
    text = prompt_text(render_harmony([{"role": "user", "content": "hi"}], tools=schemas, current_date="2025-08-05"))
    assert "type search_documents = (_: {\nquery: string,\n}) => any;" in text
    assert MAX_TOOL_CALLS_PER_TURN == 8


def test_harmony_detection() -> None:
    assert is_harmony_model({"general.architecture": "gpt-oss"})
    assert not is_harmony_model({"general.architecture": "gemma3"})
    assert not is_harmony_model({})
    assert HARMONY_STOP_TOKENS == ("<|return|>", "<|call|>")
