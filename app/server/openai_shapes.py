"""OpenAI's request and response shapes, read and written exactly enough for the official client.

Requests (Chat Completions and Responses) are checked field by field and turned
into one GenerationSpec; a field that is wrong gives a 400 that names it. Replies
are plain dicts in the shapes the ``openai`` package parses.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from app.server.errors import APIError, bad_request
from app.server.json_grammar import SchemaError, schema_to_gbnf

EFFORTS = {"low": "low", "medium": "medium", "high": "high", "minimal": "low"}


@dataclass
class GenerationSpec:
    """One request, whichever endpoint it came through."""

    messages: list[dict[str, Any]]  # OpenAI chat messages; assistant ones may carry "thinking"
    tools: list[dict[str, Any]] | None = None  # chat-completions form {"type": "function", "function": {...}}
    tool_choice: str = "auto"  # "auto" | "none" | "required" | "function:NAME"
    reasoning_effort: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    grammar: str | None = None  # GBNF for structured output
    stream: bool = False
    include_usage: bool = False
    model: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


# ---- field checks ------------------------------------------------------------------


def _obj(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body


def _number(body: dict[str, Any], key: str, lo: float, hi: float) -> float | None:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
        raise bad_request(f"'{key}' must be a number from {lo:g} to {hi:g}, got {v!r}.", key)
    return float(v)


def _int(body: dict[str, Any], key: str, lo: int) -> int | None:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise bad_request(f"'{key}' must be a whole number of at least {lo}, got {v!r}.", key)
    return v


def _model(body: dict[str, Any]) -> str:
    m = body.get("model")
    if not isinstance(m, str) or not m:
        raise bad_request("'model' is required: use an id from GET /v1/models.", "model")
    return m


def _effort(value: Any, param: str) -> str | None:
    if value is None:
        return None
    if value not in EFFORTS:
        raise bad_request(f"'{param}' must be one of low, medium, high; got {value!r}.", param)
    return EFFORTS[value]


def _stop(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or len(value) > 4 or not all(isinstance(s, str) and s for s in value):
        raise bad_request("'stop' must be a string or a list of up to 4 non-empty strings.", "stop")
    return tuple(value)


def text_of(content: Any, param: str) -> str:
    """Message content as text: a string, or a list of text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for i, part in enumerate(content):
            if isinstance(part, str):
                out.append(part)
                continue
            kind = part.get("type") if isinstance(part, dict) else None
            if kind in ("text", "input_text", "output_text", "reasoning_text", "summary_text") \
                    and isinstance(part.get("text"), str):
                out.append(part["text"])
            else:
                raise bad_request(f"{param}[{i}]: only text parts are supported, got type {kind!r}.",
                                  f"{param}[{i}]")
        return "".join(out)
    raise bad_request(f"{param} must be a string or a list of text parts.", param)


def _grammar(schema: Any, param: str) -> str:
    try:
        return schema_to_gbnf(schema)
    except SchemaError as exc:
        raise bad_request(f"{param}: {exc}", param) from exc


def _check_tool_function(fn: Any, param: str) -> dict[str, Any]:
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
        raise bad_request(f"{param}: a function tool needs a 'name'.", param)
    out = {"name": fn["name"]}
    if fn.get("description") is not None:
        out["description"] = str(fn["description"])
    params = fn.get("parameters")
    if params is not None:
        if not isinstance(params, dict):
            raise bad_request(f"{param}.parameters must be a JSON schema object.", f"{param}.parameters")
        out["parameters"] = params
    return out


def _tool_choice(value: Any, tools: list[dict[str, Any]] | None, param: str = "tool_choice") -> str:
    if value is None:
        return "auto"
    if value in ("auto", "none", "required"):
        return str(value)
    if isinstance(value, dict) and value.get("type") == "function":
        fn = value.get("function") if isinstance(value.get("function"), dict) else value
        name = fn.get("name")
        if not tools or name not in {t["function"]["name"] for t in tools}:
            raise bad_request(f"'{param}' names the function {name!r}, which is not in 'tools'.", param)
        return f"function:{name}"
    raise bad_request(f"'{param}' must be \"auto\", \"none\", \"required\" or a function.", param)


def _leading_instructions(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Harmony has one developer message: leading system/developer messages are joined."""
    head: list[str] = []
    i = 0
    while i < len(messages) and messages[i]["role"] in ("system", "developer"):
        head.append(messages[i].get("content") or "")
        i += 1
    for j, m in enumerate(messages[i:], start=i):
        if m["role"] in ("system", "developer"):
            raise bad_request(f"messages[{j}]: a {m['role']} message may only come before the conversation.",
                              f"messages[{j}]")
    rest = messages[i:]
    return ([{"role": "system", "content": "\n\n".join(h for h in head if h)}] if head else []) + rest


# ---- Chat Completions ----------------------------------------------------------------


def chat_request(body: Any) -> GenerationSpec:
    body = _obj(body)
    model = _model(body)
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise bad_request("'messages' must be a non-empty list.", "messages")
    messages: list[dict[str, Any]] = []
    for i, m in enumerate(raw):
        p = f"messages[{i}]"
        if not isinstance(m, dict):
            raise bad_request(f"{p} must be an object with 'role' and 'content'.", p)
        role = m.get("role")
        if role not in ("system", "developer", "user", "assistant", "tool"):
            raise bad_request(f"{p}: unknown role {role!r}.", f"{p}.role")
        msg: dict[str, Any] = {"role": role, "content": text_of(m.get("content"), f"{p}.content")}
        if role == "assistant":
            thinking = m.get("reasoning_content", m.get("reasoning"))
            if isinstance(thinking, str) and thinking:
                msg["thinking"] = thinking
            calls = m.get("tool_calls")
            if calls:
                if not isinstance(calls, list):
                    raise bad_request(f"{p}.tool_calls must be a list.", f"{p}.tool_calls")
                msg["tool_calls"] = calls
            if not msg["content"] and not calls:
                msg["content"] = ""
        elif role == "tool":
            if m.get("tool_call_id") is not None:
                msg["tool_call_id"] = m["tool_call_id"]
            if m.get("name") is not None:
                msg["name"] = m["name"]
        messages.append(msg)
    messages = _leading_instructions(messages)
    tools = None
    if body.get("tools") is not None:
        if not isinstance(body["tools"], list):
            raise bad_request("'tools' must be a list.", "tools")
        tools = []
        for i, t in enumerate(body["tools"]):
            if not isinstance(t, dict) or t.get("type", "function") != "function":
                raise bad_request(f"tools[{i}]: only function tools are supported.", f"tools[{i}]")
            tools.append({"type": "function", "function": _check_tool_function(t.get("function"), f"tools[{i}].function")})
    n = body.get("n")
    if n not in (None, 1):
        raise bad_request("'n' must be 1: Hearth generates one choice per request.", "n")
    max_tokens = _int(body, "max_completion_tokens", 1)
    if max_tokens is None:
        max_tokens = _int(body, "max_tokens", 1)
    grammar = None
    rf = body.get("response_format")
    if rf is not None:
        if not isinstance(rf, dict) or rf.get("type") not in ("text", "json_object", "json_schema"):
            raise bad_request("'response_format.type' must be text, json_object or json_schema.", "response_format")
        if rf["type"] == "json_object":
            grammar = _grammar({"type": "object"}, "response_format")
        elif rf["type"] == "json_schema":
            js = rf.get("json_schema")
            if not isinstance(js, dict) or not isinstance(js.get("schema"), dict):
                raise bad_request("'response_format.json_schema.schema' must be a JSON schema object.",
                                  "response_format.json_schema")
            grammar = _grammar(js["schema"], "response_format.json_schema.schema")
    so = body.get("stream_options")
    ignore_eos = body.get("ignore_eos", False)  # llama.cpp server's extension: benchmarks generate max_tokens
    if not isinstance(ignore_eos, bool):
        raise bad_request("'ignore_eos' must be true or false.", "ignore_eos")
    return GenerationSpec(
        messages=messages, tools=tools or None, tool_choice=_tool_choice(body.get("tool_choice"), tools),
        reasoning_effort=_effort(body.get("reasoning_effort"), "reasoning_effort"),
        max_tokens=max_tokens, temperature=_number(body, "temperature", 0, 2), top_p=_number(body, "top_p", 0, 1),
        seed=_int(body, "seed", -(2**63)), stop=_stop(body.get("stop")), grammar=grammar,
        stream=bool(body.get("stream")), include_usage=bool(isinstance(so, dict) and so.get("include_usage")),
        model=model, extra={"ignore_eos": ignore_eos},
    )


def chat_usage(stats: dict[str, Any]) -> dict[str, Any]:
    prompt = int(stats.get("prompt_tokens", 0))
    done = int(stats.get("completion_tokens", 0))
    cached = max(0, prompt - int(stats.get("prompt_tokens_evaluated", prompt)))
    return {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done,
            "prompt_tokens_details": {"cached_tokens": cached}}


def tool_call_dict(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def chat_completion(cid: str, model: str, created: int, *, text: str, reasoning: str,
                    calls: list[dict[str, Any]], finish_reason: str, usage: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text if (text or not calls) else None}
    if reasoning:
        message["reasoning_content"] = reasoning
    if calls:
        message["tool_calls"] = calls
    return {"id": cid, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
            "usage": usage}


def chat_chunk(cid: str, model: str, created: int, delta: dict[str, Any], finish_reason: str | None = None,
               usage: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                           "choices": [] if usage is not None else
                           [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]}
    if usage is not None:
        out["usage"] = usage
    return out


# ---- Responses --------------------------------------------------------------------------


def _input_items(value: Any) -> list[dict[str, Any]]:
    """Responses ``input`` (a string or items) as chat messages."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise bad_request("'input' must be a string or a non-empty list of items.", "input")
    out: list[dict[str, Any]] = []
    thinking = ""
    for i, item in enumerate(value):
        p = f"input[{i}]"
        if not isinstance(item, dict):
            raise bad_request(f"{p} must be an object.", p)
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "system", "developer", "assistant"):
                raise bad_request(f"{p}: unknown role {role!r}.", f"{p}.role")
            msg: dict[str, Any] = {"role": role, "content": text_of(item.get("content"), f"{p}.content")}
            if role == "assistant" and thinking:
                msg["thinking"], thinking = thinking, ""
            out.append(msg)
        elif kind == "reasoning":
            parts = item.get("content") or item.get("summary") or []
            thinking += text_of(parts, f"{p}.content")
        elif kind == "function_call":
            name, args, call_id = item.get("name"), item.get("arguments", "{}"), item.get("call_id")
            if not isinstance(name, str) or not isinstance(args, str) or not isinstance(call_id, str):
                raise bad_request(f"{p}: a function_call needs string 'call_id', 'name' and 'arguments'.", p)
            call = tool_call_dict(call_id, name, args)
            last = out[-1] if out else None
            if last is not None and last["role"] == "assistant" and last.get("tool_calls") is not None:
                last["tool_calls"].append(call)
            else:
                msg = {"role": "assistant", "content": "", "tool_calls": [call]}
                if thinking:
                    msg["thinking"], thinking = thinking, ""
                out.append(msg)
        elif kind == "function_call_output":
            call_id, output = item.get("call_id"), item.get("output")
            if not isinstance(call_id, str):
                raise bad_request(f"{p}: a function_call_output needs its 'call_id'.", f"{p}.call_id")
            out.append({"role": "tool", "tool_call_id": call_id,
                        "content": output if isinstance(output, str) else text_of(output, f"{p}.output")})
        else:
            raise bad_request(f"{p}: items of type {kind!r} are not supported.", f"{p}.type")
    return out


def responses_request(body: Any, history: list[dict[str, Any]] | None = None) -> GenerationSpec:
    """``history``: the messages of the previous response's chain (previous_response_id)."""
    body = _obj(body)
    model = _model(body)
    if "input" not in body:
        raise bad_request("'input' is required.", "input")
    new = _input_items(body["input"])
    messages = list(history or []) + new
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise bad_request("'instructions' must be a string.", "instructions")
    if instructions:
        messages = [{"role": "system", "content": instructions}] + messages
    try:
        messages = _leading_instructions(messages)
    except APIError as exc:
        exc.param = "input"
        raise
    tools = None
    if body.get("tools") is not None:
        if not isinstance(body["tools"], list):
            raise bad_request("'tools' must be a list.", "tools")
        tools = []
        for i, t in enumerate(body["tools"]):
            if not isinstance(t, dict) or t.get("type") != "function":
                raise bad_request(f"tools[{i}]: only function tools are supported (type \"function\").",
                                  f"tools[{i}]")
            tools.append({"type": "function", "function": _check_tool_function(t, f"tools[{i}]")})
    reasoning = body.get("reasoning")
    if reasoning is not None and not isinstance(reasoning, dict):
        raise bad_request("'reasoning' must be an object like {\"effort\": \"low\"}.", "reasoning")
    grammar = None
    text = body.get("text")
    if isinstance(text, dict) and isinstance(text.get("format"), dict):
        fmt = text["format"]
        if fmt.get("type") == "json_schema":
            if not isinstance(fmt.get("schema"), dict):
                raise bad_request("'text.format.schema' must be a JSON schema object.", "text.format.schema")
            grammar = _grammar(fmt["schema"], "text.format.schema")
        elif fmt.get("type") == "json_object":
            grammar = _grammar({"type": "object"}, "text.format")
        elif fmt.get("type") not in (None, "text"):
            raise bad_request("'text.format.type' must be text, json_object or json_schema.", "text.format.type")
    return GenerationSpec(
        messages=messages, tools=tools or None, tool_choice=_tool_choice(body.get("tool_choice"), tools),
        reasoning_effort=_effort((reasoning or {}).get("effort"), "reasoning.effort"),
        max_tokens=_int(body, "max_output_tokens", 1), temperature=_number(body, "temperature", 0, 2),
        top_p=_number(body, "top_p", 0, 1), grammar=grammar, stream=bool(body.get("stream")), model=model,
        extra={"instructions": instructions, "text": text, "tools": body.get("tools") or [],
               "previous_response_id": body.get("previous_response_id"),
               "store": body.get("store", True) is not False, "new_messages": new},
    )


def responses_usage(stats: dict[str, Any]) -> dict[str, Any]:
    prompt = int(stats.get("prompt_tokens", 0))
    done = int(stats.get("completion_tokens", 0))
    cached = max(0, prompt - int(stats.get("prompt_tokens_evaluated", prompt)))
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": done, "total_tokens": prompt + done}


def response_object(rid: str, model: str, created: int, spec: GenerationSpec, *, status: str,
                    output: list[dict[str, Any]], usage: dict[str, Any] | None,
                    incomplete: str | None = None) -> dict[str, Any]:
    extra = spec.extra
    text = extra.get("text") if isinstance(extra.get("text"), dict) else {"format": {"type": "text"}}
    return {
        "id": rid, "object": "response", "created_at": created, "model": model, "status": status,
        "error": None, "incomplete_details": {"reason": incomplete} if incomplete else None,
        "instructions": extra.get("instructions"), "max_output_tokens": spec.max_tokens,
        "metadata": {}, "output": output, "parallel_tool_calls": True,
        "previous_response_id": extra.get("previous_response_id"),
        "reasoning": {"effort": spec.reasoning_effort, "summary": None},
        "store": extra.get("store", True), "temperature": spec.temperature, "text": text,
        "tool_choice": spec.tool_choice if not spec.tool_choice.startswith("function:")
        else {"type": "function", "name": spec.tool_choice.split(":", 1)[1]},
        "tools": extra.get("tools", []), "top_p": spec.top_p, "truncation": "disabled", "usage": usage,
    }


def reasoning_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    return {"type": "reasoning", "id": item_id, "summary": [], "status": status,
            "content": [{"type": "reasoning_text", "text": text}] if text else []}


def message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    return {"type": "message", "id": item_id, "role": "assistant", "status": status,
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
            if status == "completed" else []}


def function_call_item(item_id: str, call_id: str, name: str, arguments: str,
                       status: str = "completed") -> dict[str, Any]:
    return {"type": "function_call", "id": item_id, "call_id": call_id, "name": name, "arguments": arguments,
            "status": status}


def now() -> int:
    return int(time.time())


def sse(data: dict[str, Any] | str, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()
