"""A chat's attached files, copied on request into its python tool's working folder (issue 17)."""

from __future__ import annotations

from pathlib import Path

from app.context import AppContext
from app.tools.python_tool import PythonSessions
from tests.ui.dnd import drop_files
from ui.shell.app import add_documents, add_python_tool
from ui.shell.main_window import MainWindow


def test_copy_the_attached_files_to_pythons_folder(qtbot, tmp_path: Path) -> None:
    ctx = AppContext.create(tmp_path / "data")
    ctx.settings.python_tool = True
    win = MainWindow(ctx)
    add_documents(win)
    sessions = add_python_tool(win)
    qtbot.addWidget(win)
    win.show()
    try:
        notes = tmp_path / "sales figures.csv"
        notes.write_text("month,units\njan,3\nfeb,5\n", encoding="utf-8")
        assert drop_files(win, [notes])
        qtbot.waitUntil(lambda: win.documents is not None and not win.documents.tasks
                        and not win.documents.jobs.busy, timeout=30000)
        conv = win.conversation_id
        assert conv is not None
        qtbot.waitUntil(lambda: win.header.reset_python_button.isVisible(), timeout=5000)
        win.header.copy_files_action.trigger()
        target = sessions.scratch_for(conv) / "sales figures.csv"
        qtbot.waitUntil(target.is_file, timeout=10000)
        assert target.read_text(encoding="utf-8") == notes.read_text(encoding="utf-8")
        qtbot.waitUntil(lambda: "sales figures.csv" in win.statusBar().currentMessage(), timeout=5000)
        # Only under the app's data folder, one folder per chat.
        assert Path(ctx.paths.data_dir) in target.parents
    finally:
        win.close()
        ctx.close()


def test_copy_in_skips_missing_files_and_keeps_plain_names(tmp_path: Path) -> None:
    sessions = PythonSessions(tmp_path / "py", tmp_path / "cache")
    a = tmp_path / "a.txt"
    a.write_text("x", encoding="utf-8")
    assert sessions.copy_in(7, [a, tmp_path / "gone.txt"]) == ["a.txt"]
    assert (tmp_path / "py" / "7" / "a.txt").read_text(encoding="utf-8") == "x"
