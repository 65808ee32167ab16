"""Conversations and messages: plain dataclasses over the SQLite database."""

from __future__ import annotations

import functools
import json
import logging
import re
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, TypeVar

from app.storage.versions import VersionInfo, Versions
from app.storage.db import Database, register_migration

log = logging.getLogger(__name__)

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass
class Message:
    id: int
    conversation_id: int
    seq: int
    role: str  # system | user | assistant | tool | context (a marker: see CONTEXT_ROLE)
    content: str = ""
    thinking: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    status: str = "complete"  # complete | streaming | stopped | error | interrupted
    error: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0

    def to_openai(self) -> dict[str, Any]:
        """The message as an OpenAI-style dict (what the prompt renderers take)."""
        d: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.thinking:
            d["thinking"] = self.thinking
        if self.tool_calls:
            d["tool_calls"] = self.tool_calls
        if self.tool_call_id:
            d["tool_call_id"] = self.tool_call_id
        if self.name:
            d["name"] = self.name
        return d


@dataclass
class Conversation:
    id: int
    title: str
    created_at: float
    updated_at: float
    model: str | None = None
    reasoning_effort: str = "medium"
    system_prompt: str = ""
    # Per-conversation choices (see CONVERSATION_OPTIONS): sampling, tools, overflow policy, preset.
    options: dict[str, Any] = field(default_factory=dict)


def _msg(row: Any) -> Message:
    return Message(
        id=row["id"],
        conversation_id=row["conversation_id"],
        seq=row["seq"],
        role=row["role"],
        content=row["content"],
        thinking=row["thinking"],
        tool_calls=json.loads(row["tool_calls"]) if row["tool_calls"] else [],
        tool_call_id=row["tool_call_id"],
        name=row["name"],
        status=row["status"],
        error=row["error"],
        stats=json.loads(row["stats"]) if row["stats"] else {},
        created_at=row["created_at"],
    )


def _conv(row: Any) -> Conversation:
    return Conversation(
        id=row["id"],
        title=row["title"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        model=row["model"],
        reasoning_effort=row["reasoning_effort"],
        system_prompt=row["system_prompt"],
        options=_options(row),
    )


def _options(row: Any) -> dict[str, Any]:
    try:
        raw = row["options"]
    except (IndexError, KeyError):
        return {}
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# A message of this role is not said by anyone: it marks where earlier messages left the
# model's view (stats: kind "dropped" | "summary", view_from_seq, dropped_messages). A
# summary marker's content is the summary the model sees in their place.
CONTEXT_ROLE = "context"

# What a conversation's ``options`` may hold, with the type of each value.
CONVERSATION_OPTIONS: dict[str, tuple[type, ...]] = {
    "temperature": (int, float),
    "top_p": (int, float),
    "max_tokens": (int,),
    "tools": (bool,),
    "overflow": (str,),  # "drop" | "summarize"
    "preset": (str,),
}


def context_marker_text(m: "Message") -> str:
    """What a context marker says, in words (the transcript and exports)."""
    n = int(m.stats.get("dropped_messages", 0))
    what = f"{n} message{'s' if n != 1 else ''}"
    if m.stats.get("kind") == "summary":
        return f"Earlier messages are no longer in the model's view: {what}, replaced by a summary"
    return f"Earlier messages are no longer in the model's view: {what}"


def _checked_options(options: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in options.items():
        types = CONVERSATION_OPTIONS.get(k)
        if types is None:
            raise ValueError(f"unknown conversation option {k!r} (known: {', '.join(CONVERSATION_OPTIONS)})")
        if v is None:
            continue
        if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
            raise ValueError(f"conversation option {k!r} must be {types[0].__name__}, not {type(v).__name__}")
        if k == "overflow" and v not in ("drop", "summarize"):
            raise ValueError("conversation option 'overflow' must be 'drop' or 'summarize'")
        out[k] = v
    return out


MATCH_START, MATCH_END = "\x02", "\x03"  # around the matched words in SearchHit.snippet


def title_from(text: str, limit: int = 48) -> str:
    """A short title from a conversation's first message."""
    line = " ".join(text.split())
    if not line:
        return "New chat"
    if len(line) <= limit:
        return line
    cut = line[:limit].rsplit(" ", 1)[0]
    return (cut or line[:limit]) + "…"


def _migrate_options(c: Any) -> None:
    c.execute("ALTER TABLE conversations ADD COLUMN options TEXT NOT NULL DEFAULT '{}'")


register_migration(4, _migrate_options)


@dataclass
class SearchHit:
    conversation_id: int
    title: str
    message_id: int | None
    snippet: str  # the match is between MATCH_START and MATCH_END


def _storage_errors(fn: _F) -> _F:
    """Turn any SQLite error escaping ``fn`` into a StorageError a person can act on."""

    @functools.wraps(fn)
    def wrapper(self: "ConversationStore", *args: Any, **kw: Any) -> Any:
        try:
            return fn(self, *args, **kw)
        except sqlite3.Error as exc:
            log.exception("%s failed", fn.__name__)
            raise self.db.storage_error(exc) from exc

    return wrapper  # type: ignore[return-value]


def _wrap_public_methods(cls: type) -> type:
    for name, member in list(vars(cls).items()):
        if callable(member) and not name.startswith("_"):
            setattr(cls, name, _storage_errors(member))
    return cls


@_wrap_public_methods
class ConversationStore:
    """Conversations and their messages. Every public method raises StorageError (or a
    subclass: StorageReadOnly, SearchIndexDamaged), never a bare sqlite3 error."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._versions = Versions(db)

    @property
    def _c(self) -> Any:
        return self.db.conn

    # ---- conversations ---------------------------------------------------

    def create(self, title: str = "New chat", *, model: str | None = None,
               reasoning_effort: str = "medium", system_prompt: str = "",
               options: dict[str, Any] | None = None) -> Conversation:
        now = time.time()
        cur = self._c.execute(
            "INSERT INTO conversations(title, created_at, updated_at, model, reasoning_effort, system_prompt)"
            " VALUES (?,?,?,?,?,?)",
            (title, now, now, model, reasoning_effort, system_prompt),
        )
        if options:
            self.update(int(cur.lastrowid), options=options)
        return self.get(int(cur.lastrowid))

    def get(self, conversation_id: int) -> Conversation:
        row = self._c.execute("SELECT * FROM conversations WHERE id=?", (conversation_id,)).fetchone()
        if row is None:
            raise KeyError(f"No conversation with id {conversation_id}")
        return _conv(row)

    def list(self, limit: int | None = None, offset: int = 0) -> list[Conversation]:
        sql = "SELECT * FROM conversations ORDER BY updated_at DESC, id DESC"
        args: tuple[Any, ...] = ()
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            args = (limit, offset)
        return [_conv(r) for r in self._c.execute(sql, args)]

    def count(self) -> int:
        return int(self._c.execute("SELECT count(*) FROM conversations").fetchone()[0])

    def rename(self, conversation_id: int, title: str) -> None:
        title = title.strip() or "New chat"
        self._c.execute("UPDATE conversations SET title=? WHERE id=?", (title, conversation_id))

    def update(self, conversation_id: int, **fields_: Any) -> None:
        allowed = {"model", "reasoning_effort", "system_prompt", "options"}
        bad = set(fields_) - allowed
        if bad:
            raise ValueError(f"cannot update {sorted(bad)}")
        if not fields_:
            return
        if "options" in fields_:
            fields_["options"] = json.dumps(_checked_options(fields_["options"]))
        cols = ", ".join(f"{k}=?" for k in fields_)
        self._c.execute(f"UPDATE conversations SET {cols} WHERE id=?", (*fields_.values(), conversation_id))

    def set_options(self, conversation_id: int, **changes: Any) -> dict[str, Any]:
        """Merge ``changes`` into the conversation's options (a value of None removes the key)."""
        opts = dict(self.get(conversation_id).options)
        for k, v in changes.items():
            if v is None:
                opts.pop(k, None)
            else:
                opts[k] = v
        self.update(conversation_id, options=opts)
        return opts

    def touch(self, conversation_id: int) -> None:
        self._c.execute("UPDATE conversations SET updated_at=? WHERE id=?", (time.time(), conversation_id))

    def delete(self, conversation_id: int) -> None:
        self._c.execute("DELETE FROM conversations WHERE id=?", (conversation_id,))

    def attachment_rows(self, conversation_id: int) -> list[dict[str, Any]]:
        """The conversation's document attachments, as rows to hand back to restore()."""
        if not self._c.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='attachments'").fetchone():
            return []
        rows = self._c.execute("SELECT * FROM attachments WHERE conversation_id=?", (conversation_id,)).fetchall()
        return [dict(r) for r in rows]

    def restore(self, conv: Conversation, messages: Iterable[Message],
                attachments: Iterable[dict[str, Any]] = ()) -> None:
        """Put back a deleted conversation exactly as it was (undo)."""
        c = self._c
        c.execute("BEGIN")
        try:
            c.execute(
                "INSERT INTO conversations(id, title, created_at, updated_at, model, reasoning_effort, system_prompt,"
                " options) VALUES (?,?,?,?,?,?,?,?)",
                (conv.id, conv.title, conv.created_at, conv.updated_at, conv.model,
                 conv.reasoning_effort, conv.system_prompt, json.dumps(conv.options)),
            )
            for m in messages:
                self._insert(m.conversation_id, m.seq, m, msg_id=m.id)
            for row in attachments:
                # Only while the document is still indexed (nothing else was cleaned up meanwhile).
                if c.execute("SELECT 1 FROM documents WHERE id=?", (row.get("document_id"),)).fetchone():
                    cols = ", ".join(row)
                    c.execute(f"INSERT INTO attachments({cols}) VALUES ({', '.join('?' * len(row))})",
                              tuple(row.values()))
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    # ---- messages --------------------------------------------------------

    def _insert(self, conversation_id: int, seq: int, m: Message, msg_id: int | None = None) -> int:
        cur = self._c.execute(
            "INSERT INTO messages(id, conversation_id, seq, role, content, thinking, tool_calls, tool_call_id,"
            " name, status, error, stats, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                msg_id, conversation_id, seq, m.role, m.content, m.thinking,
                json.dumps(m.tool_calls) if m.tool_calls else None, m.tool_call_id, m.name,
                m.status, m.error, json.dumps(m.stats) if m.stats else None, m.created_at or time.time(),
            ),
        )
        return int(cur.lastrowid)

    def add_message(self, conversation_id: int, role: str, content: str = "", **kw: Any) -> Message:
        """Append a message (committed at once: a sent message survives a crash)."""
        c = self._c
        # Another process (a second window, the CLI) may append to the same conversation:
        # the write lock taken before reading MAX(seq) makes read-and-insert one step.
        # busy_timeout (set on every connection) makes the other writer wait, not fail.
        c.execute("BEGIN IMMEDIATE")
        try:
            row = c.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM messages WHERE conversation_id=?",
                            (conversation_id,)).fetchone()
            m = Message(id=0, conversation_id=conversation_id, seq=int(row[0]), role=role, content=content,
                        created_at=time.time(), **kw)
            m.id = self._insert(conversation_id, m.seq, m)
            c.execute("UPDATE conversations SET updated_at=? WHERE id=?", (m.created_at, conversation_id))
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return m

    def update_message(self, message_id: int, **fields_: Any) -> None:
        allowed = {"content", "thinking", "tool_calls", "status", "error", "stats"}
        bad = set(fields_) - allowed
        if bad:
            raise ValueError(f"cannot update {sorted(bad)}")
        vals = []
        for k, v in fields_.items():
            vals.append(json.dumps(v) if k in ("tool_calls", "stats") and v is not None else v)
        cols = ", ".join(f"{k}=?" for k in fields_)
        self._c.execute(f"UPDATE messages SET {cols} WHERE id=?", (*vals, message_id))

    def get_message(self, message_id: int) -> Message:
        row = self._c.execute("SELECT * FROM messages WHERE id=?", (message_id,)).fetchone()
        if row is None:
            raise KeyError(f"No message with id {message_id}")
        return _msg(row)

    def messages(self, conversation_id: int, *, limit: int | None = None) -> list[Message]:
        """Messages in order; with ``limit``, only the last ``limit`` of them."""
        if limit is None:
            rows = self._c.execute("SELECT * FROM messages WHERE conversation_id=? ORDER BY seq",
                                   (conversation_id,)).fetchall()
            return [_msg(r) for r in rows]
        rows = self._c.execute(
            "SELECT * FROM messages WHERE conversation_id=? ORDER BY seq DESC LIMIT ?",
            (conversation_id, limit),
        ).fetchall()
        return [_msg(r) for r in reversed(rows)]

    def messages_before(self, conversation_id: int, seq: int, limit: int) -> list[Message]:
        rows = self._c.execute(
            "SELECT * FROM messages WHERE conversation_id=? AND seq<? ORDER BY seq DESC LIMIT ?",
            (conversation_id, seq, limit),
        ).fetchall()
        return [_msg(r) for r in reversed(rows)]

    # ---- answer versions (regenerate and edit keep what was there) ---------

    def fork_at(self, conversation_id: int, seq: int) -> bool:
        """Keep the messages from ``seq`` on as a version the user can flip back to, and clear them."""
        return self._versions.fork(conversation_id, seq)

    def select_version(self, conversation_id: int, seq: int, position: int) -> None:
        """Show version ``position`` (0-based) of the fork at message ``seq``."""
        self._versions.select(conversation_id, seq, position)

    def version_groups(self, conversation_id: int) -> dict[int, VersionInfo]:
        """The forks on the shown branch, keyed by the position where they part."""
        return self._versions.groups(conversation_id)

    def message_count(self, conversation_id: int) -> int:
        return int(self._c.execute("SELECT count(*) FROM messages WHERE conversation_id=?",
                                   (conversation_id,)).fetchone()[0])

    def delete_from(self, conversation_id: int, seq: int) -> None:
        """Delete the message at ``seq`` and everything after it (edit and regenerate)."""
        self._c.execute("DELETE FROM messages WHERE conversation_id=? AND seq>=?", (conversation_id, seq))

    def discard_if_empty(self, conversation_id: int) -> bool:
        """Delete the conversation if it has no message (a first turn that failed to save)."""
        c = self._c
        # Kept if anything refers to it: a message, or e.g. a document attached before sending.
        tables = [r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for t in tables:
            for fk in c.execute(f'PRAGMA foreign_key_list("{t}")').fetchall():
                if fk["table"] == "conversations" and c.execute(
                        f'SELECT 1 FROM "{t}" WHERE "{fk["from"]}"=? LIMIT 1', (conversation_id,)).fetchone():
                    return False
        # With nothing to cascade to, the cascade is switched off for this one statement:
        # compiling it would open messages_fts, and a damaged index is often why the turn failed.
        c.execute("PRAGMA foreign_keys = OFF")
        try:
            cur = c.execute("DELETE FROM conversations WHERE id=?", (conversation_id,))
        finally:
            c.execute("PRAGMA foreign_keys = ON")
        return cur.rowcount > 0

    def rebuild_search_index(self) -> None:
        """Rebuild the full-text search index from the messages (repairs SearchIndexDamaged)."""
        self.db.rebuild_search_index()

    def mark_interrupted(self) -> int:
        """After a crash: replies left 'streaming' are kept and marked interrupted."""
        cur = self._c.execute("UPDATE messages SET status='interrupted' WHERE status='streaming'")
        return cur.rowcount

    # ---- search ----------------------------------------------------------

    def search(self, query: str, limit: int = 50) -> list[SearchHit]:
        """Full-text search over titles and every message; newest conversations first."""
        words = re.findall(r"\w+", query, flags=re.UNICODE)
        if not words:
            return []
        fts = " ".join('"' + w.replace('"', "") + '"*' for w in words)
        c = self._c
        hits: dict[int, SearchHit] = {}
        for r in c.execute(
            "SELECT c.id, c.title FROM conversations_fts f JOIN conversations c ON c.id=f.rowid"
            " WHERE conversations_fts MATCH ? ORDER BY c.updated_at DESC LIMIT ?", (fts, limit)):
            hits[r[0]] = SearchHit(r[0], r[1], None, r[1])
        rows = c.execute(
            "SELECT m.conversation_id, c.title, m.id, snippet(messages_fts, -1, char(2), char(3), '…', 10)"
            " FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid"
            " JOIN conversations c ON c.id = m.conversation_id"
            " WHERE messages_fts MATCH ? ORDER BY c.updated_at DESC LIMIT ?",
            (fts, limit * 4),
        )
        for conv_id, title, mid, snip in rows:
            if conv_id not in hits:
                hits[conv_id] = SearchHit(conv_id, title, mid, snip)
            if len(hits) >= limit:
                break
        return list(hits.values())

    # ---- export ----------------------------------------------------------

    def export_json(self, conversation_id: int, *, include_thinking: bool = True) -> str:
        conv = self.get(conversation_id)
        msgs = []
        for m in self.messages(conversation_id):
            d = m.to_openai()
            if not include_thinking:
                d.pop("thinking", None)
            d["status"] = m.status
            d["created_at"] = m.created_at
            msgs.append(d)
        return json.dumps(
            {"title": conv.title, "created_at": conv.created_at, "model": conv.model,
             "reasoning_effort": conv.reasoning_effort, "system_prompt": conv.system_prompt,
             "messages": msgs, "attachments": self._attachment_names(conversation_id)},
            indent=2, ensure_ascii=False,
        )

    def export_markdown(self, conversation_id: int, *, include_thinking: bool = False) -> str:
        conv = self.get(conversation_id)
        out = [f"# {conv.title}", ""]
        if conv.model:
            out += [f"*Model: {conv.model}*", ""]
        attachments = self._attachment_names(conversation_id)
        if attachments:
            out += ["**Attachments:** " + ", ".join(attachments), ""]
        for m in self.messages(conversation_id):
            if m.role == CONTEXT_ROLE:
                out += [f"*{context_marker_text(m)}*", ""]
                if m.content:
                    out += ["<details><summary>Summary the model sees</summary>", "", m.content, "",
                            "</details>", ""]
                continue
            who = {"user": "You", "assistant": "Assistant", "tool": f"Tool ({m.name or ''})",
                   "system": "System"}.get(m.role, m.role)
            out.append(f"## {who}")
            out.append("")
            if include_thinking and m.thinking:
                out += ["<details><summary>Thinking</summary>", "", m.thinking, "", "</details>", ""]
            for call in m.tool_calls:
                fn = call.get("function", {})
                out += [f"*Tool call:* `{fn.get('name')}({fn.get('arguments')})`", ""]
            out.append(m.content)
            if m.status == "stopped":
                out += ["", "*(stopped)*"]
            out.append("")
        return "\n".join(out)

    def _attachment_names(self, conversation_id: int) -> list[str]:
        c = self._c
        has = c.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='attachments'").fetchone()
        if not has:
            return []
        try:
            rows = c.execute("SELECT name FROM attachments WHERE conversation_id=? ORDER BY id",
                             (conversation_id,)).fetchall()
        except Exception:  # noqa: BLE001 - the attachments schema belongs to app.documents
            return []
        return [r[0] for r in rows]
