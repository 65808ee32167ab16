"""Harmony prompts for gpt-oss: the official chat template's exact bytes, as safe segments.

The output of ``prompt_text(render_harmony(...))`` is byte-identical to the
``openai-gpt-oss-120b.jinja`` template rendered the way llama-cpp-python renders
it, for every conversation the template accepts. Where the template raises or
cannot express something (several tool calls in one message, an assistant
message with both a preamble and thinking, tool arguments given as a JSON
string), the choices made here are documented at the spot.

Segments: text between special tokens is always a ``special=False`` segment, so
segment boundaries fall only next to special tokens and tokenizing segment by
segment gives the same tokens as tokenizing the whole string (for content free of
literal special tokens), while a ``<|end|>`` typed by a user stays plain text.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import re
from typing import Any

from app.prompt import Prompt, Segment, merge_segments

log = logging.getLogger(__name__)

reasoning_efforts = ("low", "medium", "high")

MODEL_IDENTITY = "You are ChatGPT, a large language model trained by OpenAI."
KNOWLEDGE_CUTOFF = "2024-06"

ROLES = ("system", "developer", "user", "assistant", "tool")
MESSAGE_KEYS = frozenset({"role", "content", "thinking", "tool_calls", "tool_call_id", "name"})

# OpenAI's rule for function names; also keeps a name from breaking the header.
_TOOL_NAME_RE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_CONTENT_TYPE_RE = re.compile(r"^[A-Za-z0-9_\-./]{1,64}$")
_SCHEMA_TYPES = ("string", "number", "integer", "boolean", "object", "array", "null")

# The template's own indentation leaks into the output in two places (a Jinja
# ``{{ }}`` without ``-`` after a line break); reproduced for byte identity.
_NESTED_MEMBER_GAP = "\n" + " " * 16
_ONEOF_DEFAULT_GAP = " " * 20


def _tojson(value: Any) -> str:
    # llama-cpp-python replaces Jinja's tojson with this (no HTML escaping, no ASCII escaping).
    return json.dumps(value, ensure_ascii=False)


# ---- validation ------------------------------------------------------------------


def _where(i: int, msg: Any) -> str:
    role = msg.get("role") if isinstance(msg, dict) else None
    return f"message {i + 1}" + (f" ({role})" if isinstance(role, str) else "")


def _check_tool_call(where: str, j: int, call: Any) -> None:
    at = f"{where}: tool call {j + 1}"
    if not isinstance(call, dict):
        raise ValueError(f"{at} must be an object like {{\"type\": \"function\", \"function\": {{...}}}}")
    if call.get("type", "function") != "function":
        raise ValueError(f"{at}: only type \"function\" is supported, got {call.get('type')!r}")
    fn = call["function"] if "function" in call else call
    if not isinstance(fn, dict):
        raise ValueError(f"{at}: 'function' must be an object with 'name' and 'arguments'")
    name = fn.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{at}: the function needs a non-empty string 'name'")
    args = fn.get("arguments", {})
    if not isinstance(args, (str, dict)):
        raise ValueError(f"{at}: 'arguments' must be a JSON string or an object, got {type(args).__name__}")
    ctype = fn.get("content_type")
    if ctype is not None and (not isinstance(ctype, str) or not _CONTENT_TYPE_RE.match(ctype)):
        raise ValueError(f"{at}: 'content_type' must be a short word such as \"json\"")
    if "id" in call and not isinstance(call["id"], str):
        raise ValueError(f"{at}: 'id' must be a string")


def validate_messages(messages: Any, tools: Any = None) -> list[dict[str, Any]]:
    """Check OpenAI-style messages (and tools) for render_harmony; ValueError says what is wrong.

    Returns the messages unchanged, so a caller can validate and use in one step.
    """
    if not isinstance(messages, list):
        raise ValueError(f"messages must be a list of objects, got {type(messages).__name__}")
    tool_call_seen = False
    for i, msg in enumerate(messages):
        where = _where(i, msg)
        if not isinstance(msg, dict):
            raise ValueError(f"{where} must be an object with 'role' and 'content', got {type(msg).__name__}")
        unknown = sorted(set(msg) - MESSAGE_KEYS)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))} "
                             f"(allowed: {', '.join(sorted(MESSAGE_KEYS))})")
        role = msg.get("role")
        if role not in ROLES:
            raise ValueError(f"{where}: unknown role {role!r} (use one of {', '.join(ROLES)})")
        content = msg.get("content")
        if role == "assistant":
            if content is not None and not isinstance(content, str):
                raise ValueError(f"{where}: 'content' must be a string or null")
            thinking = msg.get("thinking")
            if thinking is not None and not isinstance(thinking, str):
                raise ValueError(f"{where}: 'thinking' must be a string or null")
            calls = msg.get("tool_calls")
            if calls is not None:
                if not isinstance(calls, list):
                    raise ValueError(f"{where}: 'tool_calls' must be a list, got {type(calls).__name__}")
                for j, call in enumerate(calls):
                    _check_tool_call(where, j, call)
                tool_call_seen = tool_call_seen or bool(calls)
        else:
            if role == "tool":
                if content is not None and not isinstance(content, str):
                    raise ValueError(f"{where}: 'content' must be the tool's output as a string")
            elif not isinstance(content, str):
                raise ValueError(f"{where}: 'content' must be a string, got {type(content).__name__}")
            for key in ("thinking", "tool_calls"):
                if msg.get(key) is not None:
                    raise ValueError(f"{where}: only assistant messages may have {key!r}")
        if role in ("system", "developer") and i != 0:
            raise ValueError(f"{where}: a {role} message may only be the first message")
        if role == "tool":
            if not tool_call_seen and not msg.get("name"):
                raise ValueError(f"{where}: a tool result must follow an assistant message with tool_calls")
            for key in ("tool_call_id", "name"):
                if msg.get(key) is not None and not isinstance(msg[key], str):
                    raise ValueError(f"{where}: {key!r} must be a string")
    validate_tools(tools)
    return messages


def _check_schema(where: str, spec: Any) -> None:
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: a schema must be an object, got {type(spec).__name__}")
    t = spec.get("type")
    if t is not None:
        types = t if isinstance(t, list) else [t]
        if not isinstance(t, (str, list)) or not all(isinstance(x, str) and x in _SCHEMA_TYPES for x in types):
            raise ValueError(f"{where}: 'type' must be one of {', '.join(_SCHEMA_TYPES)} "
                             f"(or a list of them), got {t!r}")
    for key in ("description",):
        if key in spec and not isinstance(spec[key], str):
            raise ValueError(f"{where}: {key!r} must be a string")
    if "enum" in spec and not isinstance(spec["enum"], list):
        raise ValueError(f"{where}: 'enum' must be a list")
    if "required" in spec and (not isinstance(spec["required"], list)
                               or not all(isinstance(r, str) for r in spec["required"])):
        raise ValueError(f"{where}: 'required' must be a list of property names")
    props = spec.get("properties")
    if props is not None:
        if not isinstance(props, dict):
            raise ValueError(f"{where}: 'properties' must be an object mapping names to schemas")
        for name, sub in props.items():
            _check_schema(f"{where}.{name}", sub)
    if "items" in spec:
        _check_schema(f"{where}[]", spec["items"])
    if "oneOf" in spec:
        if not isinstance(spec["oneOf"], list):
            raise ValueError(f"{where}: 'oneOf' must be a list of schemas")
        for k, sub in enumerate(spec["oneOf"]):
            _check_schema(f"{where}.oneOf[{k}]", sub)


def validate_tools(tools: Any) -> list[dict[str, Any]]:
    """Check an OpenAI ``tools`` list; ValueError names the tool and the problem."""
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise ValueError(f"tools must be a list, got {type(tools).__name__}")
    seen: set[str] = set()
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("function"), dict):
            raise ValueError(f"tool {i + 1} must look like {{\"type\": \"function\", \"function\": "
                             f"{{\"name\": ..., \"description\": ..., \"parameters\": {{...}}}}}}")
        if tool.get("type", "function") != "function":
            raise ValueError(f"tool {i + 1}: only type \"function\" is supported, got {tool.get('type')!r}")
        fn = tool["function"]
        name = fn.get("name")
        if not isinstance(name, str) or not _TOOL_NAME_RE.match(name):
            raise ValueError(f"tool {i + 1}: name {name!r} must be 1-64 letters, digits, '_' or '-'")
        if name in seen:
            raise ValueError(f"tool {name!r} is defined twice")
        seen.add(name)
        if "description" in fn and not isinstance(fn["description"], str):
            raise ValueError(f"tool {name!r}: 'description' must be a string")
        params = fn.get("parameters")
        if params is not None:
            if not isinstance(params, dict):
                raise ValueError(f"tool {name!r}: 'parameters' must be a JSON schema object")
            _check_schema(f"tool {name!r} parameters", params)
    return tools


# ---- the tool namespace (TypeScript-like declarations) ------------------------------


def _ts_type(spec: dict[str, Any]) -> str:
    """The template's ``render_typescript_type`` macro, quirks included."""
    t = spec.get("type")
    if t == "array":
        items = spec.get("items")
        if items:
            item_type = items.get("type")
            if item_type == "string":
                out = "string[]"
            elif item_type in ("number", "integer"):
                out = "number[]"
            elif item_type == "boolean":
                out = "boolean[]"
            else:
                inner = _ts_type(items)
                out = "any[]" if inner == "object | object" or len(inner) > 50 else inner + "[]"
        else:
            out = "any[]"
        return out + (" | null" if spec.get("nullable") else "")
    if isinstance(t, list) and t:
        return " | ".join(t) if len(t) > 1 else str(t[0])
    if spec.get("oneOf"):
        # The template means to answer "any" for unions with object variants, but a Jinja
        # ``set`` inside a loop does not leak out, so it always lists the variants.
        parts = []
        variants = spec["oneOf"]
        for k, variant in enumerate(variants):
            part = _ts_type(variant)
            if variant.get("description"):
                part += "// " + variant["description"]
            if "default" in variant:
                part += _ONEOF_DEFAULT_GAP + "// default: " + _tojson(variant["default"])
            if k < len(variants) - 1:
                part += " | \n"
            parts.append(part)
        return "".join(parts)
    if t == "string":
        if spec.get("enum"):
            return '"' + '" | "'.join(str(v) for v in spec["enum"]) + '"'
        return "string" + (" | null" if spec.get("nullable") else "")
    if t in ("number", "integer"):
        return "number"
    if t == "boolean":
        return "boolean"
    if t == "object":
        props = spec.get("properties")
        if not props:
            return "object"
        required = spec.get("required") or []
        members = [
            name + ("" if name in required else "?") + ": " + _NESTED_MEMBER_GAP + _ts_type(sub)
            for name, sub in props.items()
        ]
        return "{\n" + ", ".join(members) + "}"
    return "any"


def _default_text(value: Any) -> str:
    # The template concatenates enum/oneOf defaults as strings (and fails on others);
    # a non-string default is written as JSON instead of failing.
    return value if isinstance(value, str) else _tojson(value)


def _tool_declaration(fn: dict[str, Any]) -> str:
    out: str = ""
    if isinstance(fn.get("description"), str):
        out += "// " + fn["description"] + "\n"
    # (A tool without a description fails in the template; here it just has no comment.)
    out += "type " + fn["name"] + " = "
    params = fn.get("parameters")
    if not (params and params.get("properties")):
        return out + "() => any;\n\n"
    required = params.get("required") or []
    out += "(_: {\n"
    for name, spec in params["properties"].items():
        if spec.get("description"):
            out += "// " + spec["description"] + "\n"
        out += name + ("" if name in required else "?") + ": " + _ts_type(spec)
        if "default" in spec:
            if spec.get("enum"):
                out += ", // default: " + _default_text(spec["default"])
            elif spec.get("oneOf"):
                out += "// default: " + _default_text(spec["default"])
            else:
                out += ", // default: " + _tojson(spec["default"])
        out += ",\n"
    return out + "}) => any;\n\n"


def tools_namespace(tools: list[dict[str, Any]]) -> str:
    """The ``## functions`` block of the developer message for OpenAI-style tools."""
    body = "".join(_tool_declaration(t["function"]) for t in tools)
    return "## functions\n\nnamespace functions {\n\n" + body + "} // namespace functions"


# ---- the prompt ------------------------------------------------------------------------


class _Builder:
    def __init__(self) -> None:
        self.parts: list[Segment] = []

    def special(self, text: str) -> None:
        self.parts.append(Segment(text, True))

    def plain(self, text: str) -> None:
        self.parts.append(Segment(text, False))

    def message(self, header: str, body: str, end: str = "<|end|>") -> None:
        self.special(header)
        self.plain(body)
        self.special(end)


def _call_function(call: dict[str, Any]) -> dict[str, Any]:
    # OpenAI form {"function": {...}}; the template also takes the bare function object.
    fn = call.get("function")
    return fn if isinstance(fn, dict) else call


def _arguments_text(args: Any) -> str:
    """Tool-call arguments as the template writes them: ``arguments|tojson`` of an object.

    The template expects an object (llama.cpp's server parses string arguments before
    rendering, since ``tojson`` of a string would double-encode it); do the same here.
    A string that is not JSON (a broken call the model made) is written back verbatim.
    """
    if isinstance(args, str):
        raw: str = args
        try:
            args = json.loads(raw)
        except (ValueError, RecursionError):
            log.warning("tool-call arguments are not valid JSON; writing them back verbatim")
            return raw
    return _tojson(args)


# gpt-oss's built-in python tool, declared in the system message (the template's
# ``render_builtin_tools`` text, byte for byte). Its calls and results are not functions:
# ``<|start|>assistant to=python<|channel|>analysis code<|message|>CODE<|call|>`` and
# ``<|start|>python to=assistant<|channel|>analysis<|message|>OUTPUT<|end|>`` (the header order
# openai-harmony renders; the template itself cannot write them back).
PYTHON_TOOL = "python"
BUILTIN_TOOLS = (PYTHON_TOOL,)
PYTHON_TOOL_TEXT = (
    "## python\n\n"
    "Use this tool to execute Python code in your chain of thought. The code will not be shown to the "
    "user. This tool should be used for internal reasoning, but not for code that is intended to be "
    "visible to the user (e.g. when creating plots, tables, or files).\n\n"
    "When you send a message containing Python code to python, it will be executed in a stateful "
    "Jupyter notebook environment. python will respond with the output of the execution or time out "
    "after 120.0 seconds. The drive at '/mnt/data' can be used to save and persist user files. Internet "
    "access for this session is UNKNOWN. Depends on the cluster.\n\n"
)


def _python_code(args: Any) -> str:
    """The python tool's code as the model sent it (raw text; an object's "code" if given one)."""
    if isinstance(args, dict):
        code = args.get("code")
        return code if isinstance(code, str) else _tojson(args)
    return args if isinstance(args, str) else _tojson(args)


def _system_text(reasoning_effort: str, current_date: str, has_tools: bool,
                 builtin_tools: list[str] | None = None) -> str:
    text = (
        f"{MODEL_IDENTITY}\nKnowledge cutoff: {KNOWLEDGE_CUTOFF}\nCurrent date: {current_date}\n\n"
        f"Reasoning: {reasoning_effort}\n\n"
    )
    if builtin_tools:
        text += "# Tools\n\n" + (PYTHON_TOOL_TEXT if PYTHON_TOOL in builtin_tools else "")
    text += "# Valid channels: analysis, commentary, final. Channel must be included for every message."
    if has_tools:
        text += "\nCalls to these tools must go to the commentary channel: 'functions'."
    return text


def render_harmony(
    messages: list[dict[str, Any]],
    *,
    tools: list[dict[str, Any]] | None = None,
    reasoning_effort: str = "medium",
    current_date: str | None = None,
    add_generation_prompt: bool = True,
    builtin_tools: list[str] | None = None,
) -> Prompt:
    """Render a conversation for gpt-oss as prompt segments (see the module docstring).

    ``messages``: OpenAI-style dicts; a system or developer message may come first
    and becomes the developer message's ``# Instructions``. Assistant messages may
    carry ``thinking`` (analysis) and ``tool_calls``; tool messages answer the latest
    call (or the call whose id is their ``tool_call_id``).
    ``builtin_tools``: harmony built-ins to declare in the system message (``["python"]``).
    A call named ``python`` (unless a function of that name is declared) is written as the
    built-in tool's call, its code verbatim, and its result as a message from ``python``.
    Raises ValueError for input the renderer cannot use.
    """
    if reasoning_effort not in reasoning_efforts:
        raise ValueError(f"reasoning effort must be one of {', '.join(reasoning_efforts)}, "
                         f"got {reasoning_effort!r}")
    validate_messages(messages, tools)
    builtin_tools = list(builtin_tools or [])
    unknown = [t for t in builtin_tools if t not in BUILTIN_TOOLS]
    if unknown:
        raise ValueError(f"unknown built-in tool(s) {', '.join(map(repr, unknown))} "
                         f"(supported: {', '.join(BUILTIN_TOOLS)})")
    if current_date is None:
        current_date = _dt.date.today().isoformat()
    tools = tools or []

    b = _Builder()
    b.message("<|start|>system<|message|>",
              _system_text(reasoning_effort, current_date, bool(tools), builtin_tools))
    python_is_function = any(t["function"].get("name") == PYTHON_TOOL for t in tools)

    def is_python(name: str | None) -> bool:
        return name == PYTHON_TOOL and not python_is_function

    loop_messages = messages
    developer = ""
    if messages and messages[0]["role"] in ("system", "developer"):
        developer = messages[0].get("content") or ""
        loop_messages = messages[1:]
    if developer or tools:
        body = ""
        if developer:
            body += "# Instructions\n\n" + developer + "\n\n"
        if tools:
            body += "# Tools\n\n" + tools_namespace(tools)
        b.message("<|start|>developer<|message|>", body)

    def has_calls(m: dict[str, Any]) -> bool:
        return bool(m.get("tool_calls"))

    last_call_name: str | None = None
    names_by_id: dict[str, str] = {}
    for idx, msg in enumerate(loop_messages):
        role = msg["role"]
        is_last = idx == len(loop_messages) - 1
        if role == "user":
            b.message("<|start|>user<|message|>", msg["content"])
        elif role == "tool":
            name = names_by_id.get(msg.get("tool_call_id") or "") or last_call_name or msg.get("name")
            if name is None:
                raise ValueError(f"{_where(idx + len(messages) - len(loop_messages), msg)}: "
                                 "a tool result must follow an assistant message with tool_calls")
            if is_python(name):
                b.special("<|start|>")
                b.plain(PYTHON_TOOL)
                b.message(" to=assistant<|channel|>analysis<|message|>", msg.get("content") or "")
                continue
            b.special("<|start|>")
            b.plain("functions." + name)
            b.message(" to=assistant<|channel|>commentary<|message|>", _tojson(msg.get("content")))
        elif role == "assistant" and has_calls(msg):
            # The analysis that led to a call stays while the chain is open, i.e. until a
            # later assistant message without calls (the final answer) exists.
            chain_open = not any(m["role"] == "assistant" and not has_calls(m)
                                 for m in loop_messages[idx + 1:])
            content, thinking = msg.get("content") or "", msg.get("thinking") or ""
            if content and thinking:
                # The template refuses this; the harmony way is analysis, then the
                # content as a commentary preamble (which survives the chain's end).
                if chain_open:
                    b.message("<|start|>assistant<|channel|>analysis<|message|>", thinking)
                b.message("<|start|>assistant<|channel|>commentary<|message|>", content)
            elif (content or thinking) and chain_open:
                b.message("<|start|>assistant<|channel|>analysis<|message|>", content or thinking)
            # The template renders only the first call; each call gets its own message here.
            for call in msg["tool_calls"]:
                fn = _call_function(call)
                if is_python(fn["name"]):
                    b.special("<|start|>assistant")
                    b.plain(" to=" + PYTHON_TOOL)
                    b.message("<|channel|>analysis " + (fn.get("content_type") or "code") + "<|message|>",
                              _python_code(fn.get("arguments", "")), "<|call|>")
                    last_call_name = fn["name"]
                    if isinstance(call.get("id"), str):
                        names_by_id[call["id"]] = fn["name"]
                    continue
                b.special("<|start|>assistant")
                b.plain(" to=functions." + fn["name"])
                b.message("<|channel|>commentary " + (fn.get("content_type") or "json") + "<|message|>",
                          _arguments_text(fn.get("arguments", {})), "<|call|>")
                last_call_name = fn["name"]
                if isinstance(call.get("id"), str):
                    names_by_id[call["id"]] = fn["name"]
        elif role == "assistant" and is_last and not add_generation_prompt:
            # Only for training-style renders: the last answer keeps its analysis and
            # ends with <|return|>, exactly as the template writes it.
            if msg.get("thinking") is not None:
                b.message("<|start|>assistant<|channel|>analysis<|message|>", msg["thinking"])
            b.message("<|start|>assistant<|channel|>final<|message|>", msg.get("content") or "", "<|return|>")
        elif role == "assistant":
            # A finished turn: only its final answer is kept.
            b.message("<|start|>assistant<|channel|>final<|message|>", msg.get("content") or "")
            last_call_name = None
            names_by_id.clear()
    if add_generation_prompt:
        b.special("<|start|>assistant")
    return merge_segments(b.parts)
