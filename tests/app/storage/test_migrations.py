"""Storage knows nothing of documents: documents registers its own migration."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.context import AppContext
from app.storage import db as dbmod

ROOT = Path(__file__).resolve().parents[3]


def test_storage_never_imports_documents() -> None:
    bad = []
    for path in sorted((ROOT / "app" / "storage").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            bad += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.startswith("app.documents")]
    assert not bad


def test_documents_migration_arrives_when_documents_is_imported(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import sys
        from app.storage import Database
        assert "app.documents" not in sys.modules
        path = {str(tmp_path / "h.db")!r}
        db = Database(path)
        tables = lambda: {{r[0] for r in db.conn.execute("SELECT name FROM sqlite_master")}}
        assert db.conn.execute("SELECT version FROM schema_version").fetchone()[0] == 1
        assert "documents" not in tables()
        import app.documents.index
        from app.storage.db import MIGRATIONS
        app.documents.index.DocumentIndex(db)  # on the database opened before: upgraded in place
        assert db.conn.execute("SELECT version FROM schema_version").fetchone()[0] == len(MIGRATIONS)
        db.close()
        db = Database(path)
        # version 2 (documents) arrived, and storage's own versions 3 (answer versions) and 4
        # (conversation options) that waited for it
        assert db.conn.execute("SELECT version FROM schema_version").fetchone()[0] == 4
        assert {{"documents", "chunks", "attachments", "message_versions"}} <= tables()
        db.close()
    """)
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_the_app_database_has_every_part(tmp_path: Path) -> None:
    ctx = AppContext.create(tmp_path)
    names = {r[0] for r in ctx.db.conn.execute("SELECT name FROM sqlite_master")}
    assert {"conversations", "messages", "documents", "chunks", "attachments"} <= names
    assert ctx.db.conn.execute("SELECT version FROM schema_version").fetchone()[0] == len(dbmod.MIGRATIONS) >= 2
    ctx.close()


def test_registering_twice_is_refused_and_a_gap_waits() -> None:
    def other(c: object) -> None:
        pass

    with pytest.raises(RuntimeError, match="already"):
        dbmod.register_migration(1, other)  # type: ignore[arg-type]
    n = len(dbmod.MIGRATIONS)
    dbmod.register_migration(n + 2, other)  # type: ignore[arg-type]
    try:
        assert len(dbmod.MIGRATIONS) == n, "a version waits for the one under it"
        with pytest.raises(RuntimeError, match="already"):
            dbmod.register_migration(n + 2, lambda c: None)  # type: ignore[arg-type]
    finally:
        dbmod._PENDING.pop(n + 2)  # noqa: SLF001
    dbmod.register_migration(1, dbmod.MIGRATIONS[0])  # the same one again: nothing happens
