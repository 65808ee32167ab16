"""Answer versions: regenerate and edit never throw away what was written.

The ``messages`` table always holds the branch the user sees (so prompts, the
follow-up cache, search and export all follow it). Where a conversation forks, at
message position ``seq``, the other versions of "that message and everything after
it" are kept in ``message_versions`` as JSON, each with the forks nested inside it.
Switching versions swaps the shown tail for a kept one in one transaction.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from app.storage.db import Database, register_migration, run_script


def migrate_versions(c: sqlite3.Connection) -> None:
    run_script(c, """
        CREATE TABLE message_versions (
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            position INTEGER NOT NULL,
            payload TEXT NOT NULL,
            PRIMARY KEY (conversation_id, seq, position)
        );
        CREATE TABLE version_groups (
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            active INTEGER NOT NULL,
            total INTEGER NOT NULL,
            PRIMARY KEY (conversation_id, seq)
        );
    """)


register_migration(3, migrate_versions)


@dataclass(frozen=True)
class VersionInfo:
    seq: int
    active: int  # 0-based
    total: int


class Versions:
    """Forks of one database's conversations (thread-safe like ConversationStore: a connection per thread)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @property
    def _c(self) -> sqlite3.Connection:
        return self._db.conn

    # ---- reading ---------------------------------------------------------

    def groups(self, conversation_id: int) -> dict[int, VersionInfo]:
        """The forks on the shown branch, by the position of the message where they part."""
        rows = self._c.execute("SELECT seq, active, total FROM version_groups WHERE conversation_id=?",
                               (conversation_id,)).fetchall()
        return {int(r[0]): VersionInfo(int(r[0]), int(r[1]), int(r[2])) for r in rows}

    # ---- forking and switching -------------------------------------------

    def fork(self, conversation_id: int, seq: int) -> bool:
        """Keep the messages from ``seq`` on as a version and clear them for a new one.

        Returns False (and changes nothing) when there is nothing from ``seq`` on.
        """
        c = self._c
        c.execute("BEGIN IMMEDIATE")
        try:
            group = self._group(conversation_id, seq)
            payload = self._take_tail(conversation_id, seq)
            if payload is None:
                c.execute("ROLLBACK")
                return False
            active, total = group if group else (0, 1)
            self._keep(conversation_id, seq, active, payload)
            c.execute("INSERT OR REPLACE INTO version_groups(conversation_id, seq, active, total) VALUES (?,?,?,?)",
                      (conversation_id, seq, total, total + 1))
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return True

    def select(self, conversation_id: int, seq: int, position: int) -> None:
        """Show version ``position`` (0-based) of the fork at ``seq``."""
        c = self._c
        c.execute("BEGIN IMMEDIATE")
        try:
            group = self._group(conversation_id, seq)
            if group is None or not 0 <= position < group[1]:
                raise IndexError(f"no version {position} at message {seq}")
            active, total = group
            if position != active:
                kept = c.execute("SELECT payload FROM message_versions WHERE conversation_id=? AND seq=? AND position=?",
                                 (conversation_id, seq, position)).fetchone()
                if kept is None:
                    raise IndexError(f"version {position} at message {seq} is missing")
                shown = self._take_tail(conversation_id, seq) or {"messages": [], "versions": [], "groups": []}
                self._keep(conversation_id, seq, active, shown)
                c.execute("DELETE FROM message_versions WHERE conversation_id=? AND seq=? AND position=?",
                          (conversation_id, seq, position))
                self._put_tail(conversation_id, json.loads(kept[0]))
                c.execute("UPDATE version_groups SET active=? WHERE conversation_id=? AND seq=?",
                          (position, conversation_id, seq))
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    # ---- inside a transaction --------------------------------------------

    def _group(self, conversation_id: int, seq: int) -> tuple[int, int] | None:
        row = self._c.execute("SELECT active, total FROM version_groups WHERE conversation_id=? AND seq=?",
                              (conversation_id, seq)).fetchone()
        return (int(row[0]), int(row[1])) if row else None

    def _keep(self, conversation_id: int, seq: int, position: int, payload: dict[str, Any]) -> None:
        self._c.execute("INSERT INTO message_versions(conversation_id, seq, position, payload) VALUES (?,?,?,?)",
                        (conversation_id, seq, position, json.dumps(payload)))

    def _take_tail(self, conversation_id: int, seq: int) -> dict[str, Any] | None:
        """Remove messages from ``seq`` on, with the forks after ``seq``; return them."""
        c = self._c
        msgs = [dict(r) for r in c.execute(
            "SELECT * FROM messages WHERE conversation_id=? AND seq>=? ORDER BY seq", (conversation_id, seq))]
        if not msgs:
            return None
        versions = [dict(r) for r in c.execute(
            "SELECT seq, position, payload FROM message_versions WHERE conversation_id=? AND seq>?",
            (conversation_id, seq))]
        groups = [dict(r) for r in c.execute(
            "SELECT seq, active, total FROM version_groups WHERE conversation_id=? AND seq>?", (conversation_id, seq))]
        c.execute("DELETE FROM message_versions WHERE conversation_id=? AND seq>?", (conversation_id, seq))
        c.execute("DELETE FROM version_groups WHERE conversation_id=? AND seq>?", (conversation_id, seq))
        c.execute("DELETE FROM messages WHERE conversation_id=? AND seq>=?", (conversation_id, seq))
        return {"messages": msgs, "versions": versions, "groups": groups}

    def _put_tail(self, conversation_id: int, payload: dict[str, Any]) -> None:
        c = self._c
        for m in payload["messages"]:
            cols = list(m)
            c.execute(f"INSERT INTO messages({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                      [m[k] for k in cols])
        for v in payload["versions"]:
            c.execute("INSERT INTO message_versions(conversation_id, seq, position, payload) VALUES (?,?,?,?)",
                      (conversation_id, v["seq"], v["position"], v["payload"]))
        for g in payload["groups"]:
            c.execute("INSERT INTO version_groups(conversation_id, seq, active, total) VALUES (?,?,?,?)",
                      (conversation_id, g["seq"], g["active"], g["total"]))
