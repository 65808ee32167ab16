"""Documents in the window: drop and attach, progress, cancel, errors, chips, restart,
citation preview, and a chat turn that reads the attached text."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import pytest
from PySide6.QtCore import QElapsedTimer, QEvent, QMimeData, QPoint, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QTextCursor
from PySide6.QtWidgets import QApplication

from app.context import AppContext
from tests.support.pdfgen import PdfPage, write_pdf
from app.harmony.tools import default_registry
from tests.app.documents.helpers import RC4Encryption
from tests.ui.dnd import drop_files
from ui.shell.app import add_documents, build_window
from ui.documents.feature import DROP_TEXT, DocumentsFeature
from ui.shell.main_window import MainWindow
from tests.ui.helpers import send, use_script

HARBOUR = "The harbour gate code for the night shift is AZURE-7731, changed every Monday."


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def open_window(qtbot, data_dir: Path) -> tuple[MainWindow, AppContext]:
    # The chat window with only the documents installed: other pages are not under test here.
    ctx = AppContext.create(data_dir)
    win = MainWindow(ctx)
    add_documents(win)
    qtbot.addWidget(win)
    win.show()
    return win, ctx


@pytest.fixture
def window(qtbot, data_dir: Path):
    win, ctx = open_window(qtbot, data_dir)
    yield win
    win.close()
    ctx.close()


def docs(win: MainWindow) -> DocumentsFeature:
    assert win.documents is not None
    return win.documents


def chip_names(win: MainWindow) -> list[str]:
    bar = docs(win).bar
    return [c.attachment.name for c in bar.chips.values() if not c.isHidden()]


def wait_idle(qtbot, win: MainWindow, timeout: int = 30000) -> None:
    qtbot.waitUntil(lambda: not docs(win).tasks and not docs(win).jobs.busy, timeout=timeout)


def pages_with(n: int, marker: str = "") -> list[str]:
    filler = ("Clause {i} describes how the tenant and the landlord share the cost of repairs, heating and "
              "the garden; it also covers the notice period and what happens to the deposit. ")
    return [f"Page {i + 1}. {marker if i == 1 else ''} " + filler.format(i=i + 1) * 6 for i in range(n)]


def test_the_app_window_has_documents(qtbot, data_dir: Path) -> None:
    ctx = AppContext.create(data_dir)
    win = build_window(ctx)
    qtbot.addWidget(win)
    try:
        assert isinstance(docs(win), DocumentsFeature)
        lay = win.chat_page.layout()
        assert lay.indexOf(docs(win).bar) == lay.indexOf(win.composer) - 1, "the bar sits right above the composer"
        assert win.controller.extra_context_factory is docs(win).turns
        chat_menu = next(a.menu() for a in win.menuBar().actions() if a.text() == "&Chat")
        texts = [a.text() for a in chat_menu.actions()]
        assert "Attach &files…" in texts and "Attach a f&older…" in texts
    finally:
        win.close()
        ctx.close()


def test_drop_two_files_shows_progress_rows_then_chips(qtbot, window: MainWindow, tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "lease.pdf", pages_with(40))
    txt = tmp_path / "notes.txt"
    txt.write_text(HARBOUR * 200, encoding="utf-8")
    feature = docs(window)
    seen_rows: dict[str, float] = {}

    def on_progress(task) -> None:
        row = feature.bar.rows.get(task.id)
        # (a row added to the bar is shown on the next pass of the event loop)
        if row is not None:  # a fast file may finish before the row is painted
            seen_rows[task.name] = row.progress.value() / row.progress.maximum()

    feature.ingest_progress.connect(on_progress)
    assert drop_files(window, [pdf, txt])
    wait_idle(qtbot, window)
    assert set(seen_rows) == {"lease.pdf", "notes.txt"}, "each file showed a progress row while it was added"
    assert all(0.0 <= f <= 1.0 for f in seen_rows.values())
    assert chip_names(window) == ["lease.pdf", "notes.txt"]
    assert not feature.bar.rows and not feature.bar.notices
    labels = [c.label.text() for c in feature.bar.chips.values()]
    assert "40 pages" in labels[0] and "notes.txt" in labels[1]
    assert feature.bar.isVisible()
    # the drop created the chat, which the sidebar lists
    assert window.conversation_id is not None
    assert window.sidebar.model.ids() == [window.conversation_id]


def test_gui_keeps_responding_while_a_big_pdf_is_added(qtbot, window: MainWindow, tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "manual.pdf", pages_with(1500))
    gaps: list[float] = []
    clock = QElapsedTimer()
    clock.start()
    last = [clock.elapsed()]

    def tick() -> None:
        now = clock.elapsed()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    timer.start()
    t0 = time.perf_counter()
    assert drop_files(window, [pdf])
    wait_idle(qtbot, window, timeout=120000)
    elapsed = time.perf_counter() - t0
    timer.stop()
    assert chip_names(window) == ["manual.pdf"]
    assert elapsed > 0.5, "the file was big enough to measure"
    # The event loop kept turning while the file was read (how smoothly: the benchmark says).
    assert len(gaps) >= 10, f"the event loop ran only {len(gaps)} times in {elapsed:.1f} s of ingestion"


def test_cancel_an_ingestion(qtbot, window: MainWindow, tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "huge.pdf", pages_with(3000))
    feature = docs(window)
    assert drop_files(window, [pdf])
    # well into the extraction, page by page
    qtbot.waitUntil(lambda: any(r.progress.value() > 100 for r in feature.bar.rows.values()), timeout=30000)
    row = next(iter(feature.bar.rows.values()))
    assert row.phase_label.text().startswith("Page ") and row.isVisible()
    assert row.cancel_button.accessibleName() == "Cancel adding huge.pdf"
    qtbot.mouseClick(row.cancel_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)
    assert chip_names(window) == [] and not feature.bar.rows
    assert "cancelled" in window.statusBar().currentMessage()
    n_docs = window.ctx.db.conn.execute("SELECT count(*) FROM documents").fetchone()[0]
    assert n_docs == 0, "nothing of the cancelled file was kept"


def test_bad_files_show_their_message_and_the_good_one_lands(qtbot, window: MainWindow, tmp_path: Path) -> None:
    fake = tmp_path / "scan.pdf"
    fake.write_bytes(os.urandom(4096))
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    image = tmp_path / "photo.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(100))
    scanned = write_pdf(tmp_path / "scanned.pdf", [PdfPage(image=True), PdfPage(image=True)])
    huge = tmp_path / "huge.txt"
    with open(huge, "wb") as f:
        f.truncate(201 * 1024 * 1024)  # sparse: over the limit without writing 200 MB
    missing = tmp_path / "moved-away.txt"
    good = tmp_path / "good.md"
    good.write_text("# Notes\n\n" + HARBOUR, encoding="utf-8")
    feature = docs(window)
    assert drop_files(window, [fake, empty, image, scanned, huge, missing, good])
    wait_idle(qtbot, window)
    assert chip_names(window) == ["good.md"]
    messages = [n.message for n in feature.bar.notices.values()]
    assert len(messages) == 6
    assert any("scan.pdf is not a PDF" in m for m in messages)
    assert any("empty.txt is empty" in m for m in messages)
    assert any("photo.png is an image" in m for m in messages)
    assert any("No text was found in scanned.pdf" in m for m in messages)
    assert any("huge.txt is 201 MB, over the 200 MB limit" in m for m in messages)
    assert any("moved-away.txt cannot be found" in m for m in messages)
    qtbot.waitUntil(lambda: all(n.isVisible() for n in feature.bar.notices.values()), timeout=5000)
    # dismissing takes a message away
    first = next(iter(feature.bar.notices.values()))
    qtbot.mouseClick(first.dismiss_button, Qt.MouseButton.LeftButton)
    assert len(feature.bar.notices) == 5


def test_encrypted_pdf_asks_for_the_password(qtbot, window: MainWindow, tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "secret.pdf", pages_with(3, marker=HARBOUR),
                    encryption=RC4Encryption(user_password="hunter2"))
    feature = docs(window)
    assert drop_files(window, [pdf])
    qtbot.waitUntil(lambda: feature.passwords.dialog is not None and feature.passwords.dialog.isVisible(),
                    timeout=20000)
    dlg = feature.passwords.dialog
    assert "secret.pdf is protected by a password" in dlg.labelText()
    assert dlg.textEchoMode().name == "Password"
    dlg.setTextValue("wrong")
    dlg.accept()
    qtbot.waitUntil(lambda: feature.passwords.dialog is not None and feature.passwords.dialog is not dlg
                    and feature.passwords.dialog.isVisible(), timeout=20000)
    dlg = feature.passwords.dialog
    assert "not correct" in dlg.labelText()
    dlg.setTextValue("hunter2")
    dlg.accept()
    wait_idle(qtbot, window)
    assert chip_names(window) == ["secret.pdf"]
    assert not feature.bar.notices


def test_refusing_the_password_leaves_a_clear_message(qtbot, window: MainWindow, tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "locked.pdf", pages_with(2), encryption=RC4Encryption(user_password="pw"))
    txt = tmp_path / "plain.txt"
    txt.write_text(HARBOUR, encoding="utf-8")
    feature = docs(window)
    assert drop_files(window, [pdf, txt])
    qtbot.waitUntil(lambda: feature.passwords.dialog is not None and feature.passwords.dialog.isVisible(),
                    timeout=20000)
    feature.passwords.dialog.reject()
    wait_idle(qtbot, window)
    assert chip_names(window) == ["plain.txt"]
    [notice] = feature.bar.notices.values()
    assert "locked.pdf was not added" in notice.message and "password" in notice.message


def test_remove_an_attachment(qtbot, window: MainWindow, tmp_path: Path) -> None:
    a = tmp_path / "a.txt"
    a.write_text("Alpha " * 500, encoding="utf-8")
    b = tmp_path / "b.txt"
    b.write_text("Beta " * 500, encoding="utf-8")
    feature = docs(window)
    assert drop_files(window, [a, b])
    wait_idle(qtbot, window)
    chip = next(c for c in feature.bar.chips.values() if c.attachment.name == "a.txt")
    assert chip.remove_button.accessibleName() == "Remove a.txt"
    qtbot.mouseClick(chip.remove_button, Qt.MouseButton.LeftButton)
    assert chip_names(window) == ["b.txt"], "the chip goes at once"
    wait_idle(qtbot, window)
    assert [x.name for x in feature.index.attachments(window.conversation_id)] == ["b.txt"]
    assert chip_names(window) == ["b.txt"]
    names = [r[0] for r in window.ctx.db.conn.execute("SELECT name FROM documents")]
    assert names == ["b.txt"], "the removed document's index is gone too"


def test_attachments_follow_the_conversation_and_survive_a_restart(qtbot, data_dir: Path, tmp_path: Path) -> None:
    win, ctx = open_window(qtbot, data_dir)
    f = tmp_path / "report.pdf"
    write_pdf(f, pages_with(12))
    assert drop_files(win, [f])
    wait_idle(qtbot, win)
    conv = win.conversation_id
    assert chip_names(win) == ["report.pdf"]
    win.new_chat()
    win.action_new.trigger()
    assert chip_names(win) == [] and not docs(win).bar.isVisible()
    win.sidebar.select(conv)
    assert win.conversation_id == conv and chip_names(win) == ["report.pdf"]
    win.close()
    ctx.close()

    win2, ctx2 = open_window(qtbot, data_dir)
    try:
        assert win2.conversation_id == conv, "the last chat reopens"
        assert chip_names(win2) == ["report.pdf"]
        assert "12 pages" in next(iter(docs(win2).bar.chips.values())).label.text()
    finally:
        win2.close()
        ctx2.close()


def test_drop_overlay_appears_while_dragging(qtbot, window: MainWindow, tmp_path: Path) -> None:
    f = tmp_path / "x.txt"
    f.write_text("hello there", encoding="utf-8")
    overlay = docs(window).overlay
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(f))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        enter = QDragEnterEvent(QPoint(40, 40), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    assert overlay.isVisible() and overlay.text() == DROP_TEXT
    assert overlay.geometry() == window.chat_page.rect()
    # drags go through it to the window and the widgets underneath
    center = overlay.mapTo(window, overlay.rect().center())
    assert window.childAt(center) is not overlay
    QApplication.sendEvent(window, QEvent(QEvent.Type.DragLeave))
    assert not overlay.isVisible()
    assert drop_files(window, [f])
    assert not overlay.isVisible()
    wait_idle(qtbot, window)
    assert chip_names(window) == ["x.txt"]


def test_files_dropped_on_the_message_box_are_attached_not_pasted(qtbot, window: MainWindow,
                                                                   tmp_path: Path) -> None:
    f = tmp_path / "memo.txt"
    f.write_text("Meeting moved to Thursday.", encoding="utf-8")
    window.composer.set_text("draft")
    viewport = window.composer.edit.viewport()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(f))])
    mime.setText(str(f))  # file managers add the path as text too
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        enter = QDragEnterEvent(QPoint(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, enter)
    assert enter.isAccepted() and docs(window).overlay.isVisible()
    drop = QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, drop)
    assert drop.isAccepted() and not docs(window).overlay.isVisible()
    wait_idle(qtbot, window)
    assert chip_names(window) == ["memo.txt"]
    assert window.composer.text() == "draft", "the message being written is untouched"


def test_attach_button_opens_a_dialog_for_files_and_folders(qtbot, window: MainWindow, tmp_path: Path) -> None:
    folder = tmp_path / "project"
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "main.py").write_text("def main() -> None:\n    print('hi')\n", encoding="utf-8")
    (folder / "README.md").write_text("# Project\n\nA small project.", encoding="utf-8")
    (folder / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    one = tmp_path / "one.txt"
    one.write_text("one " * 50, encoding="utf-8")
    feature = docs(window)
    qtbot.mouseClick(window.composer.attach_button, Qt.MouseButton.LeftButton)
    assert feature.chooser.menu.isVisible()
    feature.chooser.menu.hide()
    feature.chooser.action_folder.trigger()
    dlg = feature.chooser.dialog
    assert dlg is not None and dlg.isVisible()
    dlg.selectFile(str(folder))
    dlg.accept()
    wait_idle(qtbot, window)
    assert chip_names(window) == ["README.md", "main.py"]
    assert "Skipped 1 file" in window.statusBar().currentMessage()
    feature.chooser.action_files.trigger()
    dlg = feature.chooser.dialog
    dlg.setDirectory(str(tmp_path))
    dlg.selectFile(str(one))
    dlg.accept()
    wait_idle(qtbot, window)
    assert chip_names(window) == ["README.md", "main.py", "one.txt"]


def _highlighted_text(preview) -> str:
    doc = preview.text.document()
    cur = QTextCursor(doc)
    out = []
    for pos in range(doc.characterCount() - 1):
        cur.setPosition(pos)
        cur.setPosition(pos + 1, QTextCursor.MoveMode.KeepAnchor)
        if cur.charFormat().background().style() != Qt.BrushStyle.NoBrush:
            out.append(cur.selectedText())
    return "".join(out).replace("\u2029", "\n")


def test_citation_chip_opens_the_page_with_the_passage_highlighted(qtbot, window: MainWindow,
                                                                    tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "report.pdf", pages_with(30, marker=HARBOUR))
    assert drop_files(window, [pdf])
    wait_idle(qtbot, window)
    conv = window.conversation_id
    feature = docs(window)
    [hit] = feature.index.search(conv, "harbour gate code AZURE", k=1)
    assert hit.page == 2
    store = window.ctx.store
    store.add_message(conv, "user", "What is the gate code?")
    store.add_message(conv, "assistant", "It is AZURE-7731 (report.pdf, p. 2).",
                      stats={"citations": [hit.citation()]})
    window.new_chat()
    window.open_conversation(conv)
    reply = [w for w in window.chat_view.widgets.values() if w.role == "assistant"][0]
    [chip] = reply.citation_buttons
    assert chip.text() == "report.pdf, p. 2"
    qtbot.mouseClick(chip, Qt.MouseButton.LeftButton)
    preview = feature.preview
    qtbot.waitUntil(lambda: preview is not None and preview.isVisible() and not preview.loading, timeout=10000)
    assert preview.windowTitle() == "report.pdf, p. 2"
    assert not preview.isModal()
    page_text = feature.index.page_text(hit.document_id, 2)
    assert preview.text.toPlainText() == page_text
    marked = _highlighted_text(preview)
    assert "AZURE-7731" in marked and marked.strip() == hit.text.strip()
    # the passage is scrolled into view
    cursor_rect = preview.text.cursorRect()
    assert preview.text.viewport().rect().intersects(cursor_rect)


def test_citation_of_a_removed_document_shows_the_passage(qtbot, window: MainWindow) -> None:
    feature = docs(window)
    citation = {"file": "gone.pdf", "page": 4, "text": "The quoted words.", "heading": None,
                "document_id": 999, "chunk_id": 5, "start": 10, "end": 27}
    feature.open_citation(citation)
    qtbot.waitUntil(lambda: not feature.preview.loading, timeout=10000)
    assert feature.preview.windowTitle() == "gone.pdf, p. 4"
    assert feature.preview.text.toPlainText() == "The quoted words."
    assert "no longer attached" in feature.preview.note.text()


# ---- a chat turn through the scripted engine --------------------------------------

def test_a_turn_reads_the_attached_document_and_cites_it(qtbot, window: MainWindow, tmp_path: Path) -> None:
    notes = tmp_path / "shift-notes.txt"
    notes.write_text("Night shift notes.\n\n" + HARBOUR + "\n\nBring a torch.", encoding="utf-8")
    assert drop_files(window, [notes])
    wait_idle(qtbot, window)
    eng = use_script(window, ["<|channel|>final<|message|>The code is AZURE-7731 (shift-notes.txt).<|return|>"], delay=0.001)
    send(qtbot, window, "What is the harbour gate code?")
    assert "AZURE-7731" in eng.prompts[0], "the document's text reached the prompt"
    reply = window.ctx.store.messages(window.conversation_id)[-1]
    assert reply.stats["citations"][0]["file"] == "shift-notes.txt"
    w = window.chat_view.message_widget(reply.id)
    assert [b.text() for b in w.citation_buttons] == ["shift-notes.txt"]
    qtbot.waitUntil(w.citations_row.isVisible, timeout=5000)  # new widgets are shown on the next loop pass


def test_a_long_document_is_searched_with_the_tool(qtbot, window: MainWindow, tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "handbook.pdf", pages_with(80, marker=HARBOUR))
    assert drop_files(window, [pdf])
    wait_idle(qtbot, window)
    call = ('<|channel|>commentary to=functions.search_documents <|constrain|>json<|message|>'
            '{"query": "harbour gate code"}<|call|>')
    eng = use_script(window, [call, "<|channel|>final<|message|>It is AZURE-7731 (handbook.pdf, p. 2).<|return|>"], delay=0.001)
    send(qtbot, window, "Tell me about the deposit.")
    assert "search_documents" in eng.prompts[0], "the tool was offered to the model"
    assert "too long to include whole" in eng.prompts[0]
    msgs = window.ctx.store.messages(window.conversation_id)
    tool = [m for m in msgs if m.role == "tool"][0]
    assert "AZURE-7731" in tool.content and "handbook.pdf, p. 2" in tool.content
    assert "AZURE-7731" in eng.prompts[1]
    reply = msgs[-1]
    labels = [b.text() for b in window.chat_view.message_widget(reply.id).citation_buttons]
    assert "handbook.pdf, p. 2" in labels


def test_the_turn_hook_also_takes_the_registry_directly(qtbot, window: MainWindow, tmp_path: Path) -> None:
    # The form ChatController can switch to: extra_context_factory(conversation_id, tools).
    pdf = write_pdf(tmp_path / "handbook.pdf", pages_with(80, marker=HARBOUR))
    assert drop_files(window, [pdf])
    wait_idle(qtbot, window)
    registry = default_registry()
    extra = docs(window).turns(window.conversation_id, registry)
    messages, citations = extra(window.conversation_id, "What is the harbour gate code?")
    assert "search_documents" in registry
    assert "AZURE-7731" in messages[0]["content"]
    assert citations[0]["file"] == "handbook.pdf" and citations[0]["page"] == 2
