"""What the model generates, as the API's events: reasoning, answer text, tool calls.

The engine streams raw text (harmony special tokens visible for gpt-oss); a
ReplyDecoder turns it into typed events with the harmony parser, keeping the
``analysis`` channel apart from the answer (it goes out as ``reasoning_content``,
never inside ``content``), turning ``to=functions.NAME`` messages into tool calls,
and cutting the answer at the request's ``stop`` strings.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from app.harmony.parser import ContentDelta, HarmonyStreamParser, MessageStart, ToolCall
from app.server.errors import APIError


@dataclass(frozen=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class CallStarted:
    index: int
    call_id: str
    name: str


@dataclass(frozen=True)
class CallArgsDelta:
    index: int
    text: str


@dataclass(frozen=True)
class CallDone:
    index: int
    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Finished:
    stats: dict[str, Any]
    finish_reason: str  # "stop" | "length" | "tool_calls"


@dataclass(frozen=True)
class Failed:
    error: APIError


ReplyEvent = ReasoningDelta | TextDelta | CallStarted | CallArgsDelta | CallDone | Finished | Failed


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


@dataclass
class _Call:
    index: int
    call_id: str
    name: str
    arguments: str = ""


class _StopMatcher:
    """Cuts text at the first stop string; holds back only what could still start one."""

    def __init__(self, stops: Iterable[str]) -> None:
        self.stops = [s for s in stops if s]
        self.held = ""
        self.hit = False

    def feed(self, text: str) -> str:
        if self.hit:
            return ""
        if not self.stops:
            return text
        buf = self.held + text
        cut = min((i for i in (buf.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.hit, self.held = True, ""
            return buf[:cut]
        keep = 0
        for s in self.stops:
            for k in range(min(len(s) - 1, len(buf)), keep, -1):
                if buf.endswith(s[:k]):
                    keep = k
                    break
        self.held = buf[len(buf) - keep:] if keep else ""
        return buf[:len(buf) - keep]

    def flush(self) -> str:
        out, self.held = ("" if self.hit else self.held), ""
        return out


@dataclass
class ReplyDecoder:
    """Feed it the engine's text pieces; it returns ReplyEvents and keeps the whole reply.

    ``prefill``: text the prompt already ends with on the model's behalf (a forced tool
    call's header), parsed as if the model had written it.
    """

    harmony: bool
    stops: tuple[str, ...] = ()
    tool_names: tuple[str, ...] = ()
    prefill: str = ""
    reasoning: str = ""
    text: str = ""
    calls: list[_Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._parser = HarmonyStreamParser(self.tool_names) if self.harmony else None
        self._stop = _StopMatcher(self.stops)
        self._open: _Call | None = None
        self._pending: list[ReplyEvent] = self.feed(self.prefill) if self.prefill else []

    @property
    def stopped(self) -> bool:
        """A stop string was reached: the caller should end the generation."""
        return self._stop.hit

    def feed(self, piece: str) -> list[ReplyEvent]:
        out, self._pending = getattr(self, "_pending", []), []
        if self._parser is None:
            self._answer(piece, out)
        else:
            self._events(self._parser.feed(piece), out)
        return out

    def finish(self, stats: dict[str, Any]) -> list[ReplyEvent]:
        out: list[ReplyEvent] = []
        if self._parser is not None:
            self._events(self._parser.finish(), out)
        tail = self._stop.flush()
        if tail:
            self.text += tail
            out.append(TextDelta(tail))
        if self._open is not None:
            # The generation stopped inside a tool call: it was never made.
            self._open = None
        reason = stats.get("stop_reason")
        if self.calls and not self.stopped:
            finish = "tool_calls"
        elif reason in ("length", "context") and not self.stopped:
            finish = "length"
        else:
            finish = "stop"
        out.append(Finished(stats, finish))
        return out

    # -- internals ------------------------------------------------------------------

    def _answer(self, text: str, out: list[ReplyEvent]) -> None:
        text = self._stop.feed(text)
        if text:
            self.text += text
            out.append(TextDelta(text))

    def _events(self, events: list[Any], out: list[ReplyEvent]) -> None:
        for ev in events:
            if self.stopped:
                return
            if isinstance(ev, MessageStart) and ev.recipient:
                name = ev.recipient.removeprefix("functions.")
                self._open = _Call(len(self.calls), new_call_id(), name)
                out.append(CallStarted(self._open.index, self._open.call_id, name))
            elif isinstance(ev, ContentDelta):
                if ev.recipient:
                    if self._open is not None:
                        self._open.arguments += ev.text
                        out.append(CallArgsDelta(self._open.index, ev.text))
                elif ev.channel == "analysis":
                    self.reasoning += ev.text
                    out.append(ReasoningDelta(ev.text))
                else:
                    # "final", and commentary without a recipient (a preamble before tool calls).
                    self._answer(ev.text, out)
            elif isinstance(ev, ToolCall) and self._open is not None:
                call = self._open
                call.arguments = ev.arguments
                self.calls.append(call)
                self._open = None
                out.append(CallDone(call.index, call.call_id, call.name, call.arguments))
