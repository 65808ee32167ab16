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
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from app import context_window as cw
from app.chat_template import render_chat_template, render_plain
from app.engine.client import EngineClient
from app.engine.protocol import GenerationDone, TokenPiece
from app.errors import ContextOverflow, EngineError, HearthError, StorageError, WorkerDied
from app.harmony.detect import HARMONY_STOP_TOKENS, is_harmony_model
from app.harmony.parser import ContentDelta, HarmonyStreamParser, ToolCall
from app.harmony.render import render_harmony
from app.harmony.tools import MAX_TOOL_CALLS_PER_TURN, ToolRegistry
from app.prompt import Prompt
from app.storage.conversations import CONTEXT_ROLE, Conversation, ConversationStore, Message, title_from

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
    duration_ms: float | None = None  # how long the tool ran (None while running, or when it never ran)


@dataclass(frozen=True)
class ReplyFinished:
    message: Message
    stats: dict[str, Any]


@dataclass(frozen=True)
class ReplyFailed:
    message_id: int | None
    error: str
    kind: str  # "context" | "worker_died" | "engine" | "empty"


@dataclass(frozen=True)
class ContextTrimmed:
    """Earlier messages left the model's view; ``marker`` is the stored marker (role "context")."""

    marker: Message


@dataclass(frozen=True)
class Summarizing:
    """The model is writing a summary of the turns that leave its view (before the reply)."""

    conversation_id: int
    messages: int


ChatEvent = ReplyStarted | Delta | ToolCallEvent | ReplyFinished | ReplyFailed | ContextTrimmed | Summarizing


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

    def request(self, *, conv_key: str | None, max_tokens: int, temperature: float | None = None,
                top_p: float | None = None, seed: int | None = None, **extra: Any) -> dict[str, Any]:
        """The engine request for this model: the family's sampling where none is given, its stop
        tokens, and (gpt-oss) the whole distribution, no top-k or min-p cut."""
        temp_default, top_p_default = self.default_sampling()
        req: dict[str, Any] = {
            "conv_key": conv_key,
            "max_tokens": max_tokens,
            "temperature": temperature if temperature is not None else temp_default,
            "top_p": top_p if top_p is not None else top_p_default,
            "seed": seed,
            "stop_tokens": self.stop_tokens,
            **extra,
        }
        if self.harmony:
            req.update(top_k=0, min_p=0.0)
        return req

    def build(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        reasoning_effort: str = "medium",
        current_date: str | None = None,
        builtin_tools: list[str] | None = None,
    ) -> Prompt:
        if self.harmony:
            return render_harmony(
                messages, tools=tools or None, reasoning_effort=reasoning_effort,
                current_date=current_date or _dt.date.today().isoformat(), builtin_tools=builtin_tools or None,
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
    """The stored conversation as the renderers take it: what is in the model's view.

    Failed replies are left out; so is everything before the latest context marker,
    whose summary (in summary mode) joins the instructions.
    """
    view = cw.current_view(messages)
    instructions = system_prompt
    if view.summary.strip():
        head = system_prompt.strip() + "\n\n" if system_prompt.strip() else ""
        instructions = head + cw.SUMMARY_HEADING + "\n" + view.summary.strip()
    out: list[dict[str, Any]] = []
    if instructions.strip():
        out.append({"role": "system", "content": instructions})
    for m in cw.visible(messages, view.start_seq):
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
        self._thread: int | None = None  # the thread running the current turn

    @property
    def builder(self) -> PromptBuilder:
        if not self.engine.model_info:
            raise EngineError("No model is loaded. Open a model first.")
        return PromptBuilder(self.engine.model_info)

    def stop(self) -> None:
        """Stop the running turn (any thread): generation and any tool loop."""
        self._stop = True
        owned = getattr(self.engine, "cancel_if_running_for", None)
        if owned is None:
            self.engine.cancel()
        elif self._thread is not None:
            # Only this turn's request: another user of the engine (the API server) goes on.
            # A turn still waiting for the engine sees ``_stop`` when it gets it.
            owned(self._thread)

    # ---- entry points ----------------------------------------------------

    def send(self, conversation_id: int, text: str) -> Iterator[ChatEvent]:
        self._thread = threading.get_ident()
        if not text.strip():
            yield ReplyFailed(None, "The message is empty.", "empty")
            return
        first = self.store.message_count(conversation_id) == 0
        try:
            problem = self.check_fits(conversation_id, text)
        except (WorkerDied, EngineError):
            problem = None  # the reply's own attempt reports what is wrong with the engine
        if problem:
            # Nothing is sent and nothing is saved: the text stays where the user wrote it.
            if first:
                self.store.discard_if_empty(conversation_id)
            yield ReplyFailed(None, problem, "context")
            return
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
        self._thread = threading.get_ident()
        msgs = self.store.messages(conversation_id)
        last_user = max((m.seq for m in msgs if m.role == "user"), default=None)
        if last_user is None:
            yield ReplyFailed(None, "There is no message to answer yet.", "empty")
            return
        self.store.fork_at(conversation_id, last_user + 1)
        yield from self.respond(conversation_id)

    def edit_and_resend(self, conversation_id: int, message_id: int, new_text: str) -> Iterator[ChatEvent]:
        """A new version of an earlier user message, answered anew; the old branch is kept."""
        self._thread = threading.get_ident()
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
        self._thread = threading.get_ident()
        builder = self.builder
        remote = bool(getattr(self.engine, "is_remote", False))
        conv = self.store.get(conversation_id)
        s = self.sampling_for(conv)
        citations: list[dict[str, Any]] = []
        injected: list[dict[str, Any]] = []
        if self.extra_context is not None:
            history = self.store.messages(conversation_id)
            question = next((m.content for m in reversed(history) if m.role == "user"), "")
            injected, citations = self.extra_context(conversation_id, question)
        tool_schemas, builtin = self._declared_tools(conv, builder, remote)
        n_tool_calls = 0
        total_stats: dict[str, Any] = {}
        while True:
            history = self.store.messages(conversation_id)
            msgs = self._prompt_messages(conv, s, history, injected)
            prompt = None
            if not remote:
                prompt = builder.build(msgs, tools=tool_schemas, reasoning_effort=conv.reasoning_effort,
                                       builtin_tools=builtin)
                try:
                    fitted = yield from self._fit(conversation_id, conv, s, builder, history, injected,
                                                  tool_schemas, prompt, builtin)
                except ContextOverflow as exc:
                    if self._stop:
                        break
                    yield ReplyFailed(None, str(exc), "context")
                    return
                if fitted is not None:
                    prompt = fitted
            reply = self.store.add_message(conversation_id, "assistant", "", status="streaming")
            yield ReplyStarted(conversation_id, reply.id)
            turn = _TurnState(reply)
            req = builder.request(conv_key=f"conv-{conversation_id}", max_tokens=s.max_tokens,
                                  temperature=s.temperature, top_p=s.top_p, seed=s.seed)
            calls: list[ToolCall] = []
            stats: dict[str, Any] = {}
            try:
                if self._stop:
                    events: Iterator[Any] = iter(())
                elif remote:
                    events = self.engine.chat(  # type: ignore[attr-defined]
                        msgs, tools=tool_schemas, reasoning_effort=conv.reasoning_effort, req=req)
                else:
                    assert prompt is not None
                    events = self._local_events(builder, req, prompt)
                for ev in events:
                    if self._stop:
                        self.engine.cancel()  # the engine cleared a cancel that came before it began
                    if isinstance(ev, TokenPiece):
                        turn.tokens += 1
                        self._maybe_save(turn)
                    elif isinstance(ev, ContentDelta):
                        if remote:
                            turn.tokens += 1
                        if ev.recipient:
                            continue  # tool-call arguments, shown on the card
                        yield from self._emit(turn, "analysis" if ev.channel == "analysis" else "final", ev.text)
                        if remote:
                            self._maybe_save(turn)
                    elif isinstance(ev, ToolCall):
                        calls.append(ev)
                    elif isinstance(ev, GenerationDone):
                        stats = ev.stats
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
                    tool_schemas = builtin = None
                    continue
            status = "stopped" if stopped else "complete"
            final_stats = dict(total_stats)
            final_stats["citations"] = citations
            after = self.store.messages(conversation_id)
            final_stats["dropped_messages"] = cw.out_of_view(after, cw.current_view(after).start_seq)
            self.store.update_message(
                reply.id, content=turn.content, thinking=turn.thinking, status=status, stats=final_stats,
            )
            self.store.touch(conversation_id)
            yield ReplyFinished(self.store.get_message(reply.id), final_stats)
            return
        # Stopped during a tool loop (or while the view was being summarised).
        self.store.touch(conversation_id)
        last = self.store.messages(conversation_id, limit=1)[0]
        yield ReplyFinished(last, dict(total_stats, stop_reason="cancelled"))

    def sampling_for(self, conv: Conversation) -> SamplingSettings:
        """The session's sampling with the conversation's own choices (its preset) on top."""
        o = conv.options
        return replace(
            self.sampling,
            temperature=float(o["temperature"]) if "temperature" in o else self.sampling.temperature,
            top_p=float(o["top_p"]) if "top_p" in o else self.sampling.top_p,
            max_tokens=int(o["max_tokens"]) if "max_tokens" in o else self.sampling.max_tokens,
        )

    def _declared_tools(self, conv: Conversation | None, builder: PromptBuilder,
                        remote: bool) -> tuple[list[dict[str, Any]] | None, list[str] | None]:
        """The function tools and gpt-oss's own tools (python: declared in the system message, local
        harmony only) a turn of ``conv`` offers the model; (None, None) with its tools off.
        ``conv`` None: a chat not created yet (tools on)."""
        on = (self.tools is not None and (conv is None or bool(conv.options.get("tools", True)))
              and (builder.harmony or remote))
        if not on or self.tools is None:
            return None, None
        builtin = (self.tools.builtin_tools() or None) if builder.harmony and not remote else None
        return self.tools.schemas(), builtin

    def _prompt_messages(self, conv: Conversation, s: SamplingSettings, history: list[Message],
                         injected: list[dict[str, Any]]) -> list[dict[str, Any]]:
        msgs = history_for_prompt(history, conv.system_prompt or s.system_prompt)
        if injected:
            if getattr(self.extra_context, "last_mode", "") == "whole":
                # The whole documents are the same every turn: right after the system
                # prompt, so the prompt cache keeps them from one turn to the next.
                at = 1 if msgs and msgs[0]["role"] in ("system", "developer") else 0
            else:
                # Passages retrieved for this question go just before it.
                at = max((i for i, m in enumerate(msgs) if m["role"] == "user"), default=len(msgs))
            msgs = msgs[:at] + injected + msgs[at:]
        return msgs

    def _local_events(self, builder: PromptBuilder, req: dict[str, Any], prompt: Prompt) -> Iterator[Any]:
        """The local engine's stream as parsed events (TokenPiece first, for counting)."""
        parser = HarmonyStreamParser(self.tools.names() if self.tools else None) if builder.harmony else None
        for ev in self.engine.generate(req, prompt):
            if isinstance(ev, TokenPiece):
                yield ev
                if parser is None:
                    yield ContentDelta("final", ev.text)
                else:
                    yield from (e for e in parser.feed(ev.text) if isinstance(e, (ContentDelta, ToolCall)))
            else:
                yield ev
        if parser is not None:
            yield from (e for e in parser.finish() if isinstance(e, (ContentDelta, ToolCall)))

    # ---- the model's view of a long conversation ----------------------------

    def _n_ctx(self) -> int:
        return int((getattr(self.engine, "model_info", None) or {}).get("n_ctx") or 0)

    def base_tokens(self, conversation_id: int | None, reasoning_effort: str = "medium") -> int | None:
        """Tokens the model reads before a chat's first message: its instructions and tool definitions.

        What the context meter shows until a reply reports the real count (a new chat
        with gpt-oss and its tools already holds over a thousand). ``conversation_id``
        None: a chat not created yet (the session's defaults, ``reasoning_effort``).
        None for a remote model, whose server does the counting, or none loaded.
        Counts through the engine: call it off the GUI thread.
        """
        if getattr(self.engine, "is_remote", False) or not self._n_ctx():
            return None
        builder = self.builder
        conv = self.store.get(conversation_id) if conversation_id is not None else None
        s = self.sampling_for(conv) if conv is not None else self.sampling
        schemas, builtin = self._declared_tools(conv, builder, remote=False)
        system = (conv.system_prompt if conv is not None else "") or s.system_prompt
        effort = conv.reasoning_effort if conv is not None else reasoning_effort
        prompt = builder.build(history_for_prompt([], system), tools=schemas, reasoning_effort=effort,
                               builtin_tools=builtin)
        return int(self.engine.count_tokens(prompt))

    def check_fits(self, conversation_id: int, text: str) -> str | None:
        """Why ``text`` cannot be sent as one message (it alone outgrows the context), or None."""
        n_ctx = self._n_ctx()
        if not n_ctx or getattr(self.engine, "is_remote", False):
            return None
        conv = self.store.get(conversation_id)
        s = self.sampling_for(conv)
        room = cw.reply_room(n_ctx, s.max_tokens)
        msgs = history_for_prompt([], conv.system_prompt or s.system_prompt) + [{"role": "user", "content": text}]
        n = self.engine.count_tokens(self.builder.build(msgs, reasoning_effort=conv.reasoning_effort))
        if n + room <= n_ctx:
            return None
        return (f"This message is {n:,} tokens long, but the model's context holds {n_ctx:,} tokens "
                f"and {room:,} of them are kept for the reply. Attach the text as a document instead "
                "(drag the file into the chat, or hearth chat --attach FILE): Hearth then sends the "
                "passages that answer each question. Or shorten the message, or raise the context size "
                "in Settings.")

    def _fit(self, conversation_id: int, conv: Conversation, s: SamplingSettings, builder: PromptBuilder,
             history: list[Message], injected: list[dict[str, Any]], tool_schemas: list[dict[str, Any]] | None,
             prompt: Prompt, builtin: list[str] | None = None) -> Iterator[ChatEvent]:
        """Make the prompt fit (prompt + reply room <= context) by moving the view on.

        Returns the new prompt (None when it already fitted); yields ContextTrimmed (and
        Summarizing) events. Raises ContextOverflow when even the newest turn alone does
        not fit.
        """
        n_ctx = self._n_ctx()
        if not n_ctx:
            return None
        room = cw.reply_room(n_ctx, s.max_tokens)
        n = self.engine.count_tokens(prompt)
        if n + room <= n_ctx:
            return None
        view = cw.current_view(history)
        starts = cw.turn_starts(history, view.start_seq)
        if not starts:
            raise ContextOverflow(self._too_long(n, n_ctx, room))

        def tokens_from(start: int, summary: str = "") -> tuple[int, Prompt]:
            fake = [m for m in history if m.seq >= start and m.role != CONTEXT_ROLE]
            marker = [Message(id=0, conversation_id=conversation_id, seq=start - 1 if start else 0,
                              role=CONTEXT_ROLE, content=summary,
                              stats=cw.marker_stats("summary" if summary else "dropped", start, 0))]
            msgs = self._prompt_messages(conv, s, marker + fake, injected)
            pr = builder.build(msgs, tools=tool_schemas, reasoning_effort=conv.reasoning_effort,
                               builtin_tools=builtin)
            return self.engine.count_tokens(pr), pr

        # The fewest turns dropped that bring the prompt under the goal. What cannot be dropped
        # (instructions, tools, documents, the newest turn) is ``n_last``; of the room left
        # beside it, a trim frees at least half, so the next trims are several turns away
        # even when tools and documents take most of a small context. Fewer tokens the later
        # the view starts: bisect.
        lo, hi = 0, len(starts) - 1
        n_last, _ = tokens_from(starts[-1])
        if n_last + room > n_ctx:
            raise ContextOverflow(self._too_long(n_last, n_ctx, room))
        goal = n_last + int((n_ctx - room - n_last) * cw.TRIM_TARGET_SHARE)
        while lo < hi:
            mid = (lo + hi) // 2
            if tokens_from(starts[mid])[0] <= goal:
                hi = mid
            else:
                lo = mid + 1
        new_start = starts[lo]
        dropped = cw.out_of_view(history, new_start)
        summary = ""
        kind = "dropped"
        note = ""
        if conv.options.get("overflow") == "summarize":
            yield Summarizing(conversation_id, dropped)
            summary, note = self._summarize(builder, history, view, new_start, n_ctx)
            if self._stop:
                raise ContextOverflow("Stopped while the summary was being written.")
            if summary:
                kind = "summary"
                n_sum, _ = tokens_from(new_start, summary)
                if n_sum + room > n_ctx:
                    summary, kind, note = "", "dropped", "the summary did not fit next to the newest turn"
        extra = {"note": note} if note else {}
        marker = self.store.add_message(conversation_id, CONTEXT_ROLE, summary,
                                        stats=cw.marker_stats(kind, new_start, dropped, **extra))
        yield ContextTrimmed(marker)
        log.info("conversation %d: view moved to message %d (%d out of view, %s)",
                 conversation_id, new_start, dropped, kind)
        history = self.store.messages(conversation_id)
        return builder.build(self._prompt_messages(conv, s, history, injected), tools=tool_schemas,
                             reasoning_effort=conv.reasoning_effort, builtin_tools=builtin)

    @staticmethod
    def _too_long(n: int, n_ctx: int, room: int) -> str:
        return (f"With the instructions, tools and documents, the newest message needs {n:,} tokens, but the "
                f"model's context holds {n_ctx:,} tokens and {room:,} of them are kept for the reply. Attach "
                "long text as a document instead, offer fewer tools, start a new chat, or raise the context "
                "size in Settings.")

    def _summarize(self, builder: PromptBuilder, history: list[Message], view: cw.View, new_start: int,
                   n_ctx: int) -> tuple[str, str]:
        """A summary of what leaves the view, written by the model; ("", why) when it wrote none."""
        max_summary = max(64, min(400, n_ctx // 4))
        budget_chars = max(400, (n_ctx - max_summary - 200) * 3)
        while True:
            source = cw.summary_source(history, view, new_start, budget_chars)
            msgs = [{"role": "system", "content": cw.SUMMARY_INSTRUCTIONS},
                    {"role": "user", "content": "Summarise this conversation:\n\n" + source}]
            prompt = builder.build(msgs, reasoning_effort="low")
            if self.engine.count_tokens(prompt) + max_summary <= n_ctx or budget_chars <= 400:
                break
            budget_chars //= 2
        req = builder.request(conv_key=None, max_tokens=max_summary, use_cache=False)
        final, analysis = [], []
        try:
            for ev in self._local_events(builder, req, prompt):
                if isinstance(ev, ContentDelta) and not ev.recipient:
                    (analysis if ev.channel == "analysis" else final).append(ev.text)
        except ContextOverflow:
            return "", "the text to summarise did not fit in the context"
        except (WorkerDied, EngineError) as exc:
            log.warning("summary failed: %s", exc)
            return "", f"the summary failed ({exc})"
        text = "".join(final).strip() or "".join(analysis).strip()
        return (text, "") if text else ("", "the model wrote no summary")

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
            duration = None
            if self._stop:
                result_ok, output = False, "Stopped by the user."
            else:
                res = self.tools.call(name, args, conversation_id=conversation_id)
                result_ok, output, duration = res.ok, res.output, res.duration_ms
            self.store.add_message(conversation_id, "tool", output, tool_call_id=tc["id"], name=name,
                                   stats={"ok": result_ok, "duration_ms": duration})
            yield ToolCallEvent(turn.message.id, tc["id"], name, args, output, result_ok, duration)


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
    """Tool calls of a turn with their results, for the CLI's JSON (``output``; ``result`` is its old name)."""
    results = {m.tool_call_id: m for m in messages if m.role == "tool"}
    out = []
    for m in messages:
        for tc in m.tool_calls:
            fn = tc.get("function", {})
            args = fn.get("arguments")
            try:
                parsed = json.loads(args) if isinstance(args, str) else args
            except ValueError:
                parsed = args
            res = results.get(tc.get("id"))
            output = res.content if res is not None else None
            duration = res.stats.get("duration_ms") if res is not None else None
            out.append({"name": fn.get("name"), "arguments": parsed, "output": output, "result": output,
                        "duration_ms": duration})
    return out
