"""Functions gpt-oss may call during a turn, and the offline built-ins.

A call never raises: bad arguments, an unknown tool or a failing tool become an
``ok=False`` result whose text goes back to the model, so it can correct itself.
"""

from __future__ import annotations

import ast
import datetime as _dt
import json
import logging
import math
import operator
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

log = logging.getLogger(__name__)

MAX_TOOL_CALLS_PER_TURN = 8
# Tool output is fed back into the context window; keep one result from filling it.
MAX_TOOL_OUTPUT_CHARS = 20_000

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "number": (int, float), "integer": (int,), "boolean": (bool,),
    "object": (dict,), "array": (list,), "null": (type(None),),
}


class ToolError(Exception):
    """Raised by a tool function: the message goes back to the model as the result."""


@dataclass(frozen=True)
class ToolResult:
    ok: bool
    output: str
    # How long the tool itself ran (not the wait for the user's approval); None when it never ran.
    duration_ms: float | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments object
    fn: Callable[[dict[str, Any]], str]
    # Tools that act outside Hearth (MCP servers) ask the user first: the key under which an
    # "Always allow" is remembered, e.g. "mcp:time.get_current_time". None: runs without asking.
    approval_key: str | None = None
    title: str = ""  # how the approval prompt names the tool ("time › get_current_time")

    def schema(self) -> dict[str, Any]:
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}


def _type_ok(value: Any, expected: Any) -> bool:
    names = expected if isinstance(expected, list) else [expected]
    for name in names:
        types = _JSON_TYPES.get(name)
        if types is None:
            return True  # a type we do not check
        # JSON has no separate bool: true is not a number here.
        if isinstance(value, bool) and name != "boolean":
            continue
        if isinstance(value, types) or (name == "integer" and isinstance(value, float) and value.is_integer()):
            return True
    return False


def check_arguments(schema: dict[str, Any], args: dict[str, Any]) -> str | None:
    """A short complaint about ``args`` against the top level of ``schema``, or None if fine."""
    props = schema.get("properties") or {}
    missing = [r for r in schema.get("required") or [] if r not in args]
    if missing:
        return f"missing required argument(s): {', '.join(missing)}"
    if schema.get("additionalProperties") is False:
        extra = sorted(set(args) - set(props))
        if extra:
            return f"unknown argument(s): {', '.join(extra)} (allowed: {', '.join(props) or 'none'})"
    for key, value in args.items():
        spec = props.get(key)
        if not isinstance(spec, dict):
            continue
        if "type" in spec and not (value is None and spec.get("nullable")) and not _type_ok(value, spec["type"]):
            return f"argument {key!r} must be of type {spec['type']}, got {json.dumps(value)[:80]}"
        if spec.get("enum") and value not in spec["enum"]:
            return f"argument {key!r} must be one of {json.dumps(spec['enum'])}"
    return None


Decision = Literal["once", "always", "deny"]


@dataclass(frozen=True)
class ApprovalRequest:
    """A call waiting for the user's yes or no; crosses from the turn's thread to the asker."""

    name: str  # the function name the model called
    title: str  # the tool as a person reads it ("time › get_current_time")
    key: str  # Tool.approval_key
    arguments: dict[str, Any]
    conversation_id: int | None = None


Approver = Callable[[ApprovalRequest], Decision]


class ApprovalPolicy(Protocol):
    """Remembers "Always allow this tool" (MCP: per tool, in the MCP config)."""

    def always_allowed(self, key: str) -> bool: ...

    def allow_always(self, key: str) -> None: ...


class ToolProvider(Protocol):
    """Tools that come and go (an MCP server's list): asked again each time the registry is read."""

    def tools(self) -> list[Tool]: ...


@dataclass(frozen=True)
class BuiltinTool:
    """A harmony built-in tool (gpt-oss's ``python``): declared in the system message, not
    as a function; the model sends it raw text (code), and it may keep state per conversation."""

    name: str
    run: Callable[[str, int | None], ToolResult]  # (text, conversation_id) -> result; never raises


class ToolRegistry:
    """The tools offered to the model, by name: fixed ones plus any providers' current tools.

    Tools with an ``approval_key`` run only once ``approver`` says so (or ``policy``
    remembers an "always"); with no approver there is no one to ask and the call is refused.
    """

    def __init__(self, *, approver: Approver | None = None, policy: ApprovalPolicy | None = None) -> None:
        self._tools: dict[str, Tool] = {}
        self._providers: list[ToolProvider] = []
        self._closers: list[Callable[[], None]] = []
        self._builtins: dict[str, BuiltinTool] = {}
        self.approver = approver
        self.policy = policy
        self._lock = threading.Lock()

    def register(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        if not isinstance(tool.parameters, dict) or tool.parameters.get("type", "object") != "object":
            raise ValueError(f"tool {tool.name!r}: parameters must be a JSON schema of type object")
        self._tools[tool.name] = tool

    def register_builtin(self, tool: BuiltinTool) -> None:
        if tool.name in self._builtins:
            raise ValueError(f"a built-in tool named {tool.name!r} is already registered")
        self._builtins[tool.name] = tool

    def builtin_tools(self) -> list[str]:
        """The harmony built-ins to declare (render_harmony's ``builtin_tools``), e.g. ["python"]."""
        return list(self._builtins)

    def on_close(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` at close(): what the registry's tools hold (MCP connections, sandboxes)."""
        self._closers.append(fn)

    def close(self) -> None:
        """Release what the tools hold, last added first; safe to call twice."""
        closers, self._closers = self._closers[::-1], []
        for fn in closers:
            try:
                fn()
            except Exception:  # noqa: BLE001 - every closer runs even if one fails
                log.warning("closing a tool failed", exc_info=True)

    def add_provider(self, provider: ToolProvider) -> None:
        """Offer a provider's tools too; a name already taken by a fixed tool keeps the fixed one."""
        self._providers.append(provider)

    def _all(self) -> dict[str, Tool]:
        tools = dict(self._tools)
        for provider in self._providers:
            try:
                offered = provider.tools()
            except Exception:  # noqa: BLE001 - one broken provider must not take the built-ins down
                log.warning("tool provider %r failed; its tools are left out", provider, exc_info=True)
                continue
            for tool in offered:
                if tool.name in tools:
                    log.warning("tool %s is offered twice; the first one is kept", tool.name)
                    continue
                tools[tool.name] = tool
        return tools

    def get(self, name: str) -> Tool | None:
        return self._all().get(name)

    def names(self) -> list[str]:
        return list(self._all())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._all()

    def __len__(self) -> int:
        return len(self._all())

    def schemas(self) -> list[dict[str, Any]]:
        """The OpenAI ``tools`` list (what render_harmony takes)."""
        return [t.schema() for t in self._all().values()]

    def _approve(self, tool: Tool, args: dict[str, Any], conversation_id: int | None) -> str | None:
        """None when the call may run, else the refusal the model reads."""
        key = tool.approval_key
        assert key is not None
        if self.policy is not None and self.policy.always_allowed(key):
            return None
        title = tool.title or tool.name
        if self.approver is None:
            return (f"Error: the call to {title} was not run: it needs the user's approval and no one "
                    "could be asked. Answer without this tool.")
        # One question at a time: two prompts for the same tool would ask twice for one answer.
        with self._lock:
            if self.policy is not None and self.policy.always_allowed(key):
                return None
            try:
                decision = self.approver(ApprovalRequest(tool.name, title, key, args, conversation_id))
            except Exception:  # noqa: BLE001 - a broken prompt is a refusal, not a crash of the turn
                log.warning("asking approval for %s failed", tool.name, exc_info=True)
                decision = "deny"
            if decision == "always" and self.policy is not None:
                try:
                    self.policy.allow_always(key)
                except Exception:  # noqa: BLE001 - the call is still allowed this once
                    log.warning("could not remember 'always allow' for %s", key, exc_info=True)
        if decision in ("once", "always"):
            return None
        return (f"The user denied this call to {title}; it was not run. Do not call it again for this "
                "request; answer without it, or tell the user what you would need it for.")

    def call(self, name: str, arguments: str, *, conversation_id: int | None = None) -> ToolResult:
        """Run one call. ``conversation_id`` scopes stateful tools (the python session)."""
        builtin = self._builtins.get(name)
        if builtin is not None:
            return builtin.run(arguments or "", conversation_id)
        tools = self._all()
        tool = tools.get(name)
        if tool is None:
            known = ", ".join(tools) or "none"
            return ToolResult(False, f"Error: there is no tool named {name!r}. Available tools: {known}.")
        text = (arguments or "").strip() or "{}"
        try:
            args = json.loads(text)
        except json.JSONDecodeError as exc:
            return ToolResult(False, f"Error: the arguments for {name} are not valid JSON ({exc.msg} at "
                                     f"position {exc.pos}). Send one JSON object with the parameters.")
        except (ValueError, RecursionError):
            return ToolResult(False, f"Error: the arguments for {name} are not usable JSON. "
                                     "Send one JSON object with the parameters.")
        if not isinstance(args, dict):
            return ToolResult(False, f"Error: the arguments for {name} must be a JSON object, "
                                     f"not {type(args).__name__}.")
        problem = check_arguments(tool.parameters, args)
        if problem:
            return ToolResult(False, f"Error: {name}: {problem}.")
        if tool.approval_key is not None:
            refusal = self._approve(tool, args, conversation_id)
            if refusal is not None:
                return ToolResult(False, refusal)
        t0 = time.perf_counter()
        try:
            output = tool.fn(args)
        except ToolError as exc:
            return ToolResult(False, f"Error: {exc}", _ms_since(t0))
        except Exception as exc:  # noqa: BLE001 - a tool's failure is reported to the model, not raised
            log.warning("tool %s failed", name, exc_info=True)
            return ToolResult(False, f"Error: the tool {name} failed: {type(exc).__name__}: {exc}", _ms_since(t0))
        duration = _ms_since(t0)
        if not isinstance(output, str):
            output = json.dumps(output, ensure_ascii=False, default=str)
        if len(output) > MAX_TOOL_OUTPUT_CHARS:
            cut = len(output) - MAX_TOOL_OUTPUT_CHARS
            output = output[:MAX_TOOL_OUTPUT_CHARS] + f"\n[... {cut} more characters cut]"
        return ToolResult(True, output, duration)


def _ms_since(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 3)


# ---- built-in: current date and time ---------------------------------------------------


def current_datetime(args: dict[str, Any], now: _dt.datetime | None = None) -> str:
    """The local (or the given IANA time zone's) date and time, as the model should read it."""
    tz_name = args.get("timezone")
    if tz_name:
        try:
            tz: _dt.tzinfo | None = ZoneInfo(str(tz_name))
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ToolError(f"unknown time zone {tz_name!r}; use an IANA name such as "
                            "'Europe/Paris' or 'America/New_York', or leave it out for local time") from exc
    else:
        tz = None
    now = (now or _dt.datetime.now(_dt.timezone.utc)).astimezone(tz)
    offset = now.strftime("%z")
    offset = f"UTC{offset[:3]}:{offset[3:]}" if offset else "UTC"
    zone = tz_name or now.tzname() or "local time"
    return f"{now.strftime('%A, %Y-%m-%d %H:%M:%S')} ({zone}, {offset})"


DATETIME_TOOL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "timezone": {
            "type": "string",
            "description": "IANA time zone such as Europe/Paris; omit for the user's local time",
        },
    },
}


# ---- built-in: calculator ---------------------------------------------------------------

MAX_EXPRESSION_CHARS = 500
MAX_INT_BITS = 4096  # about 1,233 decimal digits
MAX_EXPONENT = 10_000

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _log(x: float, base: float | None = None) -> float:
    return math.log(x) if base is None else math.log(x, base)


def _factorial(n: Any) -> int:
    if not isinstance(n, int) or n < 0 or n > 500:
        raise ToolError("factorial takes a whole number from 0 to 500")
    return math.factorial(n)


_FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int]] = {  # name: (fn, min args, max args)
    "sqrt": (math.sqrt, 1, 1), "sin": (math.sin, 1, 1), "cos": (math.cos, 1, 1), "tan": (math.tan, 1, 1),
    "asin": (math.asin, 1, 1), "acos": (math.acos, 1, 1), "atan": (math.atan, 1, 1),
    "log": (_log, 1, 2), "ln": (math.log, 1, 1), "log10": (math.log10, 1, 1), "log2": (math.log2, 1, 1),
    "exp": (math.exp, 1, 1), "abs": (abs, 1, 1), "round": (round, 1, 2),
    "floor": (math.floor, 1, 1), "ceil": (math.ceil, 1, 1), "factorial": (_factorial, 1, 1),
    "min": (min, 1, 20), "max": (max, 1, 20),
}


def _bits(x: Any) -> int:
    return abs(x).bit_length() if isinstance(x, int) else 0


def _power(base: Any, exp: Any) -> Any:
    if isinstance(exp, int) and abs(exp) > MAX_EXPONENT and abs(base) not in (0, 1):
        raise ToolError(f"the exponent {exp} is too large (at most {MAX_EXPONENT})")
    if isinstance(base, int) and isinstance(exp, int) and exp > 0 and _bits(base) * exp > MAX_INT_BITS * 2:
        raise ToolError("the result would be too large to write down")
    if isinstance(exp, float) and abs(exp) > MAX_EXPONENT and abs(base) not in (0, 1):
        raise ToolError(f"the exponent {exp} is too large (at most {MAX_EXPONENT})")
    return base ** exp


def _eval(node: ast.AST) -> Any:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ToolError(f"only numbers are allowed, not {node.value!r}")
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            result = _power(left, right)
        else:
            if isinstance(node.op, ast.Mult) and _bits(left) + _bits(right) > MAX_INT_BITS * 2:
                raise ToolError("the result would be too large to write down")
            result = _BINOPS[type(node.op)](left, right)
        if isinstance(result, complex):
            raise ToolError("the result is not a real number")
        if _bits(result) > MAX_INT_BITS:
            raise ToolError("the result would be too large to write down")
        return result
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitXor):
        raise ToolError("'^' is not a power here; write powers as 2**10")
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise ToolError(f"unknown name {node.id!r}; known constants: {', '.join(_CONSTANTS)}")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
            shown = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            raise ToolError(f"unknown function {shown!r}; available: {', '.join(_FUNCTIONS)}")
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise ToolError("functions take plain positional arguments only")
        fn, lo, hi = _FUNCTIONS[node.func.id]
        if not lo <= len(node.args) <= hi:
            want = str(lo) if lo == hi else f"{lo} to {hi}"
            raise ToolError(f"{node.func.id} takes {want} argument(s), got {len(node.args)}")
        args = [_eval(a) for a in node.args]
        if node.func.id == "round" and len(args) == 2 and (not isinstance(args[1], int) or abs(args[1]) > 100):
            raise ToolError("round's second argument must be a whole number of digits")
        return fn(*args)
    raise ToolError(f"not allowed in a calculation: {ast.unparse(node)!r}; only numbers, + - * / // % **, "
                    "parentheses and the listed functions")


def _format_number(x: Any) -> str:
    if isinstance(x, int):
        return str(x)
    if math.isnan(x) or math.isinf(x):
        raise ToolError("the result is not a finite number")
    return format(x, ".15g")  # hides binary noise such as 0.1 + 0.2 = 0.30000000000000004


def evaluate_expression(expression: str) -> str:
    """Evaluate arithmetic safely (parsed, whitelisted, never ``eval``); ToolError explains failures."""
    expr = expression.strip().replace("×", "*").replace("÷", "/").replace("−", "-")
    if not expr:
        raise ToolError("the expression is empty")
    if len(expr) > MAX_EXPRESSION_CHARS:
        raise ToolError(f"the expression is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as exc:
        raise ToolError(f"cannot read the expression {expression!r}: {exc.msg}") from exc
    try:
        return _format_number(_eval(tree))
    except ZeroDivisionError as exc:
        raise ToolError("division by zero") from exc
    except OverflowError as exc:
        raise ToolError("the result is too large") from exc
    except (ValueError, TypeError) as exc:
        raise ToolError(f"cannot compute that: {exc}") from exc
    except RecursionError as exc:
        raise ToolError("the expression is nested too deeply") from exc


CALCULATOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "expression": {
            "type": "string",
            "description": "Arithmetic such as (2 + 3) * 4 / 7 or sqrt(2) ** 3; operators + - * / // % **, "
                           "functions sqrt sin cos tan log exp abs round, constants pi e",
        },
    },
    "required": ["expression"],
}


def default_registry() -> ToolRegistry:
    """The built-in offline tools; later features register more."""
    reg = ToolRegistry()
    reg.register(Tool(
        "get_current_datetime",
        "Get the current date, time and weekday, locally or in a given time zone.",
        DATETIME_TOOL_SCHEMA,
        current_datetime,
    ))
    reg.register(Tool(
        "calculator",
        "Evaluate an arithmetic expression exactly; use it instead of doing arithmetic in your head.",
        CALCULATOR_SCHEMA,
        lambda args: evaluate_expression(str(args["expression"])),
    ))
    return reg
