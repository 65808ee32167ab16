"""What the model sees of a long conversation: its view, and how the view moves on.

gpt-oss holds up to 128k tokens, but a 16 GB laptop runs it with 32k or less, and
reasoning plus tool results fill that fast. When the next prompt would not fit,
the oldest whole turns leave the model's view (never half a message; the system
and developer messages, the documents and the newest turn always stay). A marker
message (role ``context``) records where it happened and from which message on
the model sees the conversation; in summary mode the marker also holds the
summary the model sees in place of what left.

The view moves in chunks: a trim frees at least half of the room the conversation
has beside what always stays (instructions, tools, documents, the newest turn),
so the follow-up state cache (which needs an unchanged prefix) is rebuilt once
every several turns, not on every turn. Qt-free; used by ``app.chat``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.storage.conversations import CONTEXT_ROLE, Message

# After a trim, the conversation takes at most this share of the room it has beside what
# always stays (1.0 would drop just enough: a trim, and a full re-read, on every turn).
TRIM_TARGET_SHARE = 0.5
# The reply's room: max_tokens, but never more than this share of the context (a
# 4,096-token max_tokens must not make a 4k context useless) and at least this many.
REPLY_ROOM_SHARE = 0.25
MIN_REPLY_ROOM = 256

SUMMARY_HEADING = "Summary of the earlier part of this conversation (those messages are no longer shown to you):"
SUMMARY_INSTRUCTIONS = (
    "You summarise conversations for your own later reference. Keep the facts, names, numbers, "
    "decisions, code identifiers and open questions; leave out pleasantries. At most 200 words. "
    "Write only the summary."
)


def reply_room(n_ctx: int, max_tokens: int) -> int:
    """Tokens kept free for the reply when deciding whether a prompt fits."""
    cap = max(MIN_REPLY_ROOM, int(n_ctx * REPLY_ROOM_SHARE))
    return max(1, min(int(max_tokens), cap, n_ctx // 2))


@dataclass(frozen=True)
class View:
    start_seq: int  # messages before this position are out of the model's view
    summary: str  # what the model sees in their place ("" when they were dropped)
    marker: Message | None


def current_view(messages: list[Message]) -> View:
    """The view the latest context marker set (the whole conversation if there is none)."""
    for m in reversed(messages):
        if m.role == CONTEXT_ROLE:
            return View(int(m.stats.get("view_from_seq", 0)), m.content if m.stats.get("kind") == "summary" else "", m)
    return View(0, "", None)


def out_of_view(messages: list[Message], start_seq: int) -> int:
    """How many messages (markers not counted) the model no longer sees."""
    return sum(1 for m in messages if m.seq < start_seq and m.role != CONTEXT_ROLE)


def turn_starts(messages: list[Message], after_seq: int) -> list[int]:
    """Positions where a turn (a user message and what answered it) begins, after ``after_seq``."""
    return [m.seq for m in messages if m.role == "user" and m.seq > after_seq]


def visible(messages: list[Message], start_seq: int) -> list[Message]:
    return [m for m in messages if m.seq >= start_seq and m.role != CONTEXT_ROLE]


def summary_source(messages: list[Message], old: View, new_start: int, budget_chars: int) -> str:
    """The text a summary is written from: the previous summary and the turns leaving the view.

    Cut to ``budget_chars`` from the middle (the beginning and the most recent part
    say the most about where a conversation stands).
    """
    parts = []
    if old.summary:
        parts.append(f"Earlier summary:\n{old.summary}")
    for m in messages:
        if not (old.start_seq <= m.seq < new_start) or m.role == CONTEXT_ROLE:
            continue
        if m.role == "user":
            parts.append(f"User: {m.content}")
        elif m.role == "assistant" and m.content:
            parts.append(f"Assistant: {m.content}")
        elif m.role == "tool":
            parts.append(f"Tool {m.name or ''} result: {m.content[:500]}")
    text = "\n\n".join(parts)
    if len(text) > budget_chars:
        half = max(1, budget_chars // 2)
        text = text[:half] + "\n\n[…]\n\n" + text[-half:]
    return text


def marker_stats(kind: str, start_seq: int, dropped: int, **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "view_from_seq": start_seq, "dropped_messages": dropped, **extra}
