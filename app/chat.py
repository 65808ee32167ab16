"""Chat turns: history -> prompt -> engine -> parsed reply -> history.

Qt-free and shared by the GUI and the CLI. A turn is a generator of typed
events; the caller runs it off the GUI thread. The user's message is committed
before generation starts and the reply is saved while it streams (at least once
a second), so a crash loses at most the last second of a reply.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Callable

from app.chat_template import render_chat_template, render_plain
from app.engine.client import EngineClient
from app.errors import ContextOverflow, EngineError, HearthError, StorageError, WorkerDied
from app.harmony.detect import HARMONY_STOP_TOKENS, is_harmony_model
from app.harmony.parser import ContentDelta, HarmonyStreamParser, ToolCall
from app.harmony.render import render_harmony
from app.harmony.tools import MAX_TOOL_CALLS_PER_TURN, ToolRegistry
from app.prompt import Prompt
from app.storage.conversations import ConversationStore, Message, title_from

log = logging.getLogger(__name__)

SAVE_INTERVAL_S = 1.0


# ---- events -------------------------------------------------------------------


@dataclass(frozen=True)
class ReplyStarted:
    conversation_id: int
    message_id: int


@dataclass(frozen=True)
class Delta:
    message_id: int
    channel: str  # "analysis" (thinking) | "final" (the answer)
    text: str
    tokens: int = 0  # tokens the model generated since the previous Delta (for the context meter)


@dataclass(frozen=True)
class ToolCallEvent:
    message_id: int
    call_id: str
    name: str
    arguments: str
    result: str | None = None  # None while running
    ok: bool = True


@dataclass(frozen=True)
class ReplyFinished:
    message: Message
    stats: dict[str, Any]


@dataclass(frozen=True)
class ReplyFailed:
    message_id: int | None
    error: str
    kind: str  # "context" | "worker_died" | "engine" | "empty"


ChatEvent = ReplyStarted | Delta | ToolCallEvent | ReplyFinished | ReplyFailed


@dataclass
class SamplingSettings:
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int = 4096
    seed: int | None = None
    system_prompt: str = ""


@dataclass
class _TurnState:
    message: Message
    content: str = ""
    thinking: str = ""
    last_save: float = field(default_factory=time.monotonic)
    tokens: int = 0  # generated, not yet reported in a Delta


class PromptBuilder:
    """Turns OpenAI-style messages into prompt segments for the loaded model."""

    def __init__(self, model_info: dict[str, Any]) -> None:
        self.info = model_info
        arch = {"general.architecture": model_info.get("architecture", "")}
        self.harmony = is_harmony_model(arch)
        self.template = model_info.get("chat_template") if not self.harmony else None

    @property
    def family(self) -> str:
        return "harmony" if self.harmony else ("template" if self.template else "plain")

    @property
    def stop_tokens(self) -> tuple[str, ...]:
        return tuple(HARMONY_STOP_TOKENS) if self.harmony else ()

    def default_sampling(self) -> tuple[float, float]:
        # gpt-oss is trained for temperature 1.0, top_p 1.0 (OpenAI's recommendation).
        return (1.0, 1.0) if self.harmony else (0.8, 0.95)

    def build(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        reasoning_effort: str = "medium",
        current_date: str | None = None,
    ) -> Prompt:
        if self.harmony:
            return render_harmony(
                messages, tools=tools or None, reasoning_effort=reasoning_effort,
                current_date=current_date or _dt.date.today().isoformat(),
            )
        plain = [
            {"role": m["role"] if m["role"] != "developer" else "system", "content": m.get("content", "")}
            for m in messages if m["role"] in ("system", "developer", "user", "assistant")
        ]
        if self.template:
            try:
                return render_chat_template(
                    self.template, plain, bos_token=self.info.get("bos_token", ""),
                    eos_token=self.info.get("eos_token", ""),
                )
            except Exception as exc:  # noqa: BLE001 - a broken template must not block chatting
                log.warning("the model's chat template failed (%s); using a plain transcript", exc)
        return render_plain(plain)


def history_for_prompt(messages: list[Message], system_prompt: str) -> list[dict[str, Any]]:
    """The stored conversation as the renderers take it (failed replies left out)."""
    out: list[dict[str, Any]] = []
    if system_prompt.strip():
        out.append({"role": "system", "content": system_prompt})
    for m in messages:
        if m.role == "assistant" and m.status == "error" and not m.content:
            continue
        if m.role == "assistant" and not (m.content or m.tool_calls):
            continue
        out.append(m.to_openai())
    return out


class ChatSession:
    """Runs turns of conversations against one loaded model."""

    def __init__(
        self,
        store: ConversationStore,
        engine: EngineClient,
        *,
        tools: ToolRegistry | None = None,
        sampling: SamplingSettings | None = None,
        extra_context: Callable[[int, str], tuple[list[dict[str, Any]], list[dict[str, Any]]]] | None = None,
    ) -> None:
        self.store = store
        self.engine = engine
        self.tools = tools
        self.sampling = sampling or SamplingSettings()
        # extra_context(conversation_id, question) -> (messages to insert before the
        # question, citations); documents use it.
        self.extra_context = extra_context
        self._stop = False

    @property
    def builder(self) -> PromptBuilder:
        if not self.engine.model_info:
            raise EngineError("No model is loaded. Open a model first.")
        return PromptBuilder(self.engine.model_info)

    def stop(self) -> None:
        """Stop the running turn (any thread): generation and any tool loop."""
        self._stop = True
        self.engine.cancel()

    # ---- entry points ----------------------------------------------------

    def send(self, conversation_id: int, text: str) -> Iterator[ChatEvent]:
        if not text.strip():
            yield ReplyFailed(None, "The message is empty.", "empty")
            return
        first = self.store.message_count(conversation_id) == 0
        try:
            self.store.add_message(conversation_id, "user", text)
        except StorageError:
            if first:
                # The conversation was made for this message: don't leave it behind, empty.
                try:
                    self.store.discard_if_empty(conversation_id)
                except StorageError as exc:
                    log.warning("could not remove empty conversation %d: %s", conversation_id, exc)
            raise
        if first and self.store.get(conversation_id).title == "New chat":
            self.store.rename(conversation_id, title_from(text))
        yield from self.respond(conversation_id)

    def regenerate(self, conversation_id: int) -> Iterator[ChatEvent]:
        """A new version of the last reply (the old one stays, one click away)."""
        msgs = self.store.messages(conversation_id)
        last_user = max((m.seq for m in msgs if m.role == "user"), default=None)
        if last_user is None:
            yield ReplyFailed(None, "There is no message to answer yet.", "empty")
            return
        self.store.fork_at(conversation_id, last_user + 1)
        yield from self.respond(conversation_id)

    def edit_and_resend(self, conversation_id: int, message_id: int, new_text: str) -> Iterator[ChatEvent]:
        """A new version of an earlier user message, answered anew; the old branch is kept."""
        if not new_text.strip():
            yield ReplyFailed(None, "The message is empty.", "empty")
            return
        m = self.store.get_message(message_id)
        if m.role != "user" or m.conversation_id != conversation_id:
            raise HearthError("Only your own messages can be edited.")
        self.store.fork_at(conversation_id, m.seq)
        self.store.add_message(conversation_id, "user", new_text)
        yield from self.respond(conversation_id)

    # ---- one reply (with its tool loop) -----------------------------------

    def respond(self, conversation_id: int) -> Iterator[ChatEvent]:
        # ``_stop`` is not reset here: a Stop pressed while the turn is being set up (before
        # the engine has started, which clears its own cancel flag) must still stop it.
        builder = self.builder
        conv = self.store.get(conversation_id)
        s = self.sampling
        temp_default, top_p_default = builder.default_sampling()
        citations: list[dict[str, Any]] = []
        injected: list[dict[str, Any]] = []
        if self.extra_context is not None:
            history = self.store.messages(conversation_id)
            question = next((m.content for m in reversed(history) if m.role == "user"), "")
            injected, citations = self.extra_context(conversation_id, question)
        tool_schemas = self.tools.schemas() if (self.tools is not None and builder.harmony) else None
        n_tool_calls = 0
        total_stats: dict[str, Any] = {}
        while True:
            history = self.store.messages(conversation_id)
            msgs = history_for_prompt(history, conv.system_prompt or s.system_prompt)
            if injected:
                if getattr(self.extra_context, "last_mode", "") == "whole":
                    # The whole documents are the same every turn: right after the system
                    # prompt, so the prompt cache keeps them from one turn to the next.
                    at = 1 if msgs and msgs[0]["role"] in ("system", "developer") else 0
                else:
                    # Passages retrieved for this question go just before it.
                    at = max(i for i, m in enumerate(msgs) if m["role"] == "user")
                msgs = msgs[:at] + injected + msgs[at:]
            prompt = builder.build(msgs, tools=tool_schemas, reasoning_effort=conv.reasoning_effort)
            reply = self.store.add_message(conversation_id, "assistant", "", status="streaming")
            yield ReplyStarted(conversation_id, reply.id)
            turn = _TurnState(reply)
            req = {
                "conv_key": f"conv-{conversation_id}",
                "max_tokens": s.max_tokens,
                "temperature": s.temperature if s.temperature is not None else temp_default,
                "top_p": s.top_p if s.top_p is not None else top_p_default,
                "seed": s.seed,
                "stop_tokens": builder.stop_tokens,
            }
            if builder.harmony:
                req.update(top_k=0, min_p=0.0)
            parser = HarmonyStreamParser(self.tools.names() if self.tools else None) if builder.harmony else None
            calls: list[ToolCall] = []
            stats: dict[str, Any] = {}
            try:
                for ev in ([] if self._stop else self.engine.generate(req, prompt)):
                    if self._stop:
                        self.engine.cancel()  # the engine cleared a cancel that came before it began
                    if hasattr(ev, "text"):
                        turn.tokens += 1
                        if parser is None:
                            yield from self._emit(turn, "final", ev.text)
                        else:
                            for pev in parser.feed(ev.text):
                                if isinstance(pev, ContentDelta):
                                    if pev.recipient:
                                        continue  # tool-call arguments, shown on the card
                                    channel = "analysis" if pev.channel == "analysis" else "final"
                                    yield from self._emit(turn, channel, pev.text)
                                elif isinstance(pev, ToolCall):
                                    calls.append(pev)
                        self._maybe_save(turn)
                    else:
                        stats = ev.stats
                if parser is not None:
                    for pev in parser.finish():
                        if isinstance(pev, ContentDelta) and not pev.recipient:
                            channel = "analysis" if pev.channel == "analysis" else "final"
                            yield from self._emit(turn, channel, pev.text)
                        elif isinstance(pev, ToolCall):
                            calls.append(pev)
            except ContextOverflow as exc:
                yield self._fail(turn, str(exc), "context")
                return
            except WorkerDied as exc:
                yield self._fail(turn, str(exc), "worker_died")
                return
            except EngineError as exc:
                yield self._fail(turn, str(exc), "engine")
                return
            _merge_stats(total_stats, stats)
            stopped = stats.get("stop_reason") == "cancelled" or self._stop
            if calls and not stopped and self.tools is not None:
                if n_tool_calls + len(calls) > MAX_TOOL_CALLS_PER_TURN:
                    calls = calls[: max(0, MAX_TOOL_CALLS_PER_TURN - n_tool_calls)]
                if calls:
                    n_tool_calls += len(calls)
                    yield from self._run_tools(conversation_id, turn, calls, stats)
                    if self._stop:
                        break
                    if n_tool_calls < MAX_TOOL_CALLS_PER_TURN:
                        continue
                    # Out of tool calls: one more pass without tools gives the final answer.
                    tool_schemas = None
                    continue
            status = "stopped" if stopped else "complete"
            final_stats = dict(total_stats)
            final_stats["citations"] = citations
            self.store.update_message(
                reply.id, content=turn.content, thinking=turn.thinking, status=status, stats=final_stats,
            )
            self.store.touch(conversation_id)
            yield ReplyFinished(self.store.get_message(reply.id), final_stats)
            return
        # Stopped during a tool loop.
        self.store.touch(conversation_id)
        last = self.store.messages(conversation_id, limit=1)[0]
        yield ReplyFinished(last, dict(total_stats, stop_reason="cancelled"))

    def _emit(self, turn: _TurnState, channel: str, text: str) -> Iterator[ChatEvent]:
        if not text:
            return
        if channel == "analysis":
            turn.thinking += text
        else:
            turn.content += text
        tokens, turn.tokens = turn.tokens, 0
        yield Delta(turn.message.id, channel, text, tokens)

    def _maybe_save(self, turn: _TurnState) -> None:
        now = time.monotonic()
        if now - turn.last_save >= SAVE_INTERVAL_S:
            self.store.update_message(turn.message.id, content=turn.content, thinking=turn.thinking)
            turn.last_save = now

    def _fail(self, turn: _TurnState, error: str, kind: str) -> ReplyFailed:
        # The partial reply is kept; the error is shown with it, never instead of it.
        self.store.update_message(
            turn.message.id, content=turn.content, thinking=turn.thinking, status="error", error=error,
        )
        return ReplyFailed(turn.message.id, error, kind)

    def _run_tools(
        self, conversation_id: int, turn: _TurnState, calls: list[ToolCall], stats: dict[str, Any]
    ) -> Iterator[ChatEvent]:
        assert self.tools is not None
        tool_calls = []
        for call in calls:
            tool_calls.append({
                "id": "call_" + uuid.uuid4().hex[:12],
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            })
        # The assistant message that made the calls keeps its analysis: the chain is open.
        self.store.update_message(
            turn.message.id, content=turn.content, thinking=turn.thinking, tool_calls=tool_calls,
            status="complete", stats=stats,
        )
        for tc in tool_calls:
            name, args = tc["function"]["name"], tc["function"]["arguments"]
            yield ToolCallEvent(turn.message.id, tc["id"], name, args)
            if self._stop:
                result_ok, output = False, "Stopped by the user."
            else:
                res = self.tools.call(name, args, conversation_id=conversation_id)
                result_ok, output = res.ok, res.output
            self.store.add_message(conversation_id, "tool", output, tool_call_id=tc["id"], name=name)
            yield ToolCallEvent(turn.message.id, tc["id"], name, args, output, result_ok)


def _merge_stats(total: dict[str, Any], stats: dict[str, Any]) -> None:
    if not total:
        total.update(stats)
        return
    for key in ("completion_tokens", "prompt_tokens_evaluated", "total_s"):
        total[key] = total.get(key, 0) + stats.get(key, 0)
    for key in ("prompt_tokens", "stop_reason", "raw", "context_used", "n_ctx", "gen_tok_per_s",
                "worker_rss_bytes", "worker_peak_rss_bytes", "prompt_cache"):
        if key in stats:
            total[key] = (total.get("raw", "") + stats["raw"]) if key == "raw" else stats[key]


def tool_calls_summary(messages: list[Message]) -> list[dict[str, Any]]:
    """Tool calls of a turn with their results, for the CLI's JSON."""
    results = {m.tool_call_id: m.content for m in messages if m.role == "tool"}
    out = []
    for m in messages:
        for tc in m.tool_calls:
            fn = tc.get("function", {})
            args = fn.get("arguments")
            try:
                parsed = json.loads(args) if isinstance(args, str) else args
            except ValueError:
                parsed = args
            out.append({"name": fn.get("name"), "arguments": parsed, "result": results.get(tc.get("id"))})
    return out
