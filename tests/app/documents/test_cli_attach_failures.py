"""``hearth chat --attach``: a failed attach leaves no empty chat; encrypted PDFs take ``--password FILE=PW``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.context import AppContext
from app.documents.chat_support import parse_passwords, password_for, prepare_attachments
from app.errors import DocumentError
from tests.app.documents.helpers import RC4Encryption
from tests.support.pdfgen import write_pdf

ROOT = Path(__file__).resolve().parents[3]


def test_parse_passwords() -> None:
    assert parse_passwords(["a.pdf=pw", "dir/b.pdf=x=y", "c.pdf="]) == {"a.pdf": "pw", "dir/b.pdf": "x=y", "c.pdf": ""}
    for bad in ("nopassword", "=pw"):
        with pytest.raises(ValueError, match="FILE=PASSWORD"):
            parse_passwords([bad])


def test_password_found_by_path_or_name(tmp_path: Path) -> None:
    f = tmp_path / "docs" / "a.pdf"
    assert password_for(f, {str(f): "1"}) == "1"
    assert password_for(f, {"a.pdf": "2"}) == "2"
    assert password_for(f, {"b.pdf": "3"}) is None


def test_encrypted_pdf_opens_with_the_password_and_says_how(tmp_path: Path, docs: Path) -> None:
    locked = write_pdf(docs / "locked.pdf", ["The code word is heron."], encryption=RC4Encryption("pw"))
    ctx = AppContext.create(tmp_path / "data")
    try:
        conv = ctx.store.create().id
        with pytest.raises(DocumentError) as err:
            prepare_attachments(ctx, conv, [locked])
        assert 'locked.pdf is protected by a password' in str(err.value)
        assert '--password "locked.pdf=PASSWORD"' in str(err.value)
        with pytest.raises(DocumentError) as err:
            prepare_attachments(ctx, conv, [locked], passwords={"locked.pdf": "wrong"})
        assert "not correct" in str(err.value) and "--password" not in str(err.value)
        extra = prepare_attachments(ctx, conv, [locked], passwords={"locked.pdf": "pw"})
        messages, _ = extra(conv, "What is the code word?")
        assert "heron" in messages[0]["content"]
    finally:
        ctx.close()


def _chat(data: Path, model: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HEARTH_DATA_DIR": str(data)}
    return subprocess.run([sys.executable, "-m", "ui.shell.entry", "chat", "--model", str(model), "--ctx", "2048",
                           "--max-tokens", "2", "--seed", "1", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
def test_failed_attach_leaves_no_empty_chat(tmp_path: Path, docs: Path, gptoss_mxfp4_path: Path) -> None:
    data = tmp_path / "data"
    (docs / "broken.pdf").write_bytes(b"not a pdf at all")
    locked = write_pdf(docs / "locked.pdf", ["The code word is heron."], encryption=RC4Encryption("pw"))
    r = _chat(data, gptoss_mxfp4_path, "--attach", str(docs / "broken.pdf"), "hi")
    assert r.returncode == 2 and "broken.pdf is not a PDF" in r.stderr
    r = _chat(data, gptoss_mxfp4_path, "--attach", str(locked), "hi")
    assert r.returncode == 2 and '--password "locked.pdf=PASSWORD"' in r.stderr
    ctx = AppContext.create(data)
    try:
        assert ctx.store.list() == []  # neither failure left a "New chat" behind
    finally:
        ctx.close()
    r = _chat(data, gptoss_mxfp4_path, "--attach", str(locked), "--password", f"{locked}=pw", "hi")
    assert r.returncode == 0, r.stderr
    r = _chat(data, gptoss_mxfp4_path, "--password", "locked.pdf", "hi")
    assert r.returncode == 2 and "FILE=PASSWORD" in r.stderr
    ctx = AppContext.create(data)
    try:
        assert len(ctx.store.list()) == 1
    finally:
        ctx.close()
