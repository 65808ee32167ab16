"""Harmony helpers for tests: a finished generation parsed whole, event streams
compared, and CONV.json documents read (the app itself only ever streams)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.harmony.parser import CHANNELS, ContentDelta, Event, HarmonyStreamParser, Return, ToolCall
from app.harmony.render import validate_messages


@dataclass
class ParsedTurn:
    """A whole generation, parsed: what each channel said and the tool calls made."""

    analysis: str
    final: str
    commentary: str  # preambles: commentary without a recipient
    tool_calls: list[ToolCall]
    returned: bool  # ended with <|return|>
    events: list[Event]


def parse_complete(text: str, tool_names: Iterable[str] | None = None) -> ParsedTurn:
    """Parse a finished generation (the text after the prompt's ``<|start|>assistant``)."""
    p = HarmonyStreamParser(tool_names)
    events = p.feed(text) + p.finish()
    parts: dict[str, list[str]] = {c: [] for c in CHANNELS}
    for ev in events:
        if isinstance(ev, ContentDelta) and ev.recipient is None:
            parts[ev.channel].append(ev.text)
    return ParsedTurn(
        analysis="".join(parts["analysis"]),
        final="".join(parts["final"]),
        commentary="".join(parts["commentary"]),
        tool_calls=[ev for ev in events if isinstance(ev, ToolCall)],
        returned=any(isinstance(ev, Return) for ev in events),
        events=events,
    )


def merge_deltas(events: Iterable[Event]) -> list[Event]:
    """Join neighbouring ContentDeltas of the same message (for comparing event streams)."""
    out: list[Event] = []
    for ev in events:
        if (isinstance(ev, ContentDelta) and out and isinstance(out[-1], ContentDelta)
                and out[-1].channel == ev.channel and out[-1].recipient == ev.recipient):
            out[-1] = ContentDelta(ev.channel, out[-1].text + ev.text, ev.recipient)
        elif not (isinstance(ev, ContentDelta) and not ev.text):
            out.append(ev)
    return out


def render_conversation_json(obj: Any) -> list[dict[str, Any]]:
    """Messages from a CONV.json document (its text or the parsed value), validated.

    Accepts a list of messages or an object with a ``messages`` list.
    """
    if isinstance(obj, (str, bytes)):
        try:
            obj = json.loads(obj)
        except ValueError as exc:
            raise ValueError(f"the conversation is not valid JSON: {exc}") from exc
    if isinstance(obj, dict):
        if set(obj) - {"messages"} or not isinstance(obj.get("messages"), list):
            raise ValueError("the conversation must be a JSON list of messages "
                             "(or an object whose only key is \"messages\")")
        obj = obj["messages"]
    return validate_messages(obj)
