"""The Models page driven like a user would, against the loopback fake Hugging Face hub:
catalog fit badges, search and download with progress, pause / resume / cancel / retry,
import by drag-and-drop, delete, load, offline mode, unfinished downloads and the HF cache."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QPushButton

from app.context import AppContext
from app.hardware import builtin_profile
from app.models import DownloadRequest, DownloadState, TokenStore, hub
from tests.support.fakehub import FakeHub
from app.models.library import ModelLibrary
from tests.app.models.conftest import FAST
from tests.keyrings import MemoryKeyring
from tests.gguf_models import write_tiny_gptoss
from tests.ui.dnd import drop_files
from ui.shell.main_window import MainWindow
from ui.models import page as models_page
from ui.models.browse import SEARCH_OFFLINE
from ui.models.page import ModelsPage
from ui.models.widgets import DownloadRow
from ui.shell.app import add_models_page, add_settings_page, connect_pages

REPO = "tester/tiny-gpt-oss-GGUF"
FILE = "tiny-gpt-oss-MXFP4.gguf"
JOB = f"{REPO}@main:{FILE}"


@pytest.fixture(autouse=True)
def _isolated_network_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No real keyring; HF_HUB_OFFLINE set by an offline window is undone after the test."""
    before = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    yield
    keyring.set_keyring(before)


@pytest.fixture
def fakehub() -> Iterator[FakeHub]:
    with FakeHub() as hub:
        yield hub


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A 2 MB gpt-oss GGUF: big enough for a throttled download to show progress for a while."""
    return write_tiny_gptoss(tmp_path / "src" / FILE, n_embd=256)


@pytest.fixture
def ctx(tmp_path: Path, fakehub: FakeHub) -> Iterator[AppContext]:
    c = AppContext.create(tmp_path / "data")
    c.settings.models_dir = str(tmp_path / "models")
    c.settings.hf_endpoint = fakehub.url
    c.settings.first_run_done = True
    yield c
    c.close()


def open_models(qtbot, ctx: AppContext) -> tuple[MainWindow, ModelsPage]:
    win = MainWindow(ctx)
    qtbot.addWidget(win)
    page = add_models_page(win, TokenStore())
    page.retry_policy = FAST
    win.show()
    win.show_page(page)
    qtbot.waitUntil(lambda: page.scan_result is not None and bool(page.catalog), timeout=10000)
    return win, page


@pytest.fixture
def window(qtbot, ctx: AppContext) -> Iterator[tuple[MainWindow, ModelsPage]]:
    win, page = open_models(qtbot, ctx)
    yield win, page
    win.close()


def click(qtbot, button: QPushButton) -> None:
    # (a widget added to a shown layout becomes visible on the event loop's next pass)
    qtbot.waitUntil(button.isVisible, timeout=2000)
    assert button.isEnabled(), button.text()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def row(page: ModelsPage, job_id: str = JOB) -> DownloadRow:
    return page.downloads.rows[job_id]


def wait_row_state(qtbot, page: ModelsPage, state: DownloadState, job_id: str = JOB, timeout: int = 20000) -> None:
    qtbot.waitUntil(lambda: job_id in page.downloads.rows and row(page, job_id).state is state, timeout=timeout)


def serve(fakehub: FakeHub, tiny: Path, *, bps: int | None = None, repo: str = REPO, name: str = FILE):
    f = fakehub.add_file(repo, name, tiny.read_bytes())
    f.faults.throttle_bps = bps
    return f


def search_and_download(qtbot, page: ModelsPage, query: str = "tiny", repo: str = REPO, name: str = FILE) -> None:
    page.tabs.setCurrentWidget(page.search_tab)
    tab = page.search_tab
    tab.query.setText(query)
    with qtbot.waitSignal(tab.results_shown, timeout=10000):
        click(qtbot, tab.search_button)
    with qtbot.waitSignal(tab.files_shown, timeout=10000):
        click(qtbot, tab.repo_cards[repo].buttons["files"])
    card = tab.file_cards[(repo, name)]
    assert card.badge is not None and card.badge.text() == "Not estimated"
    assert "MXFP4" in card.facts.text() and "2.1 MB" in card.facts.text()
    click(qtbot, card.buttons["download"])


class Answers:
    """QMessageBox.question, answered by the test; the questions asked are kept."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.asked: list[str] = []
        self.answer = QMessageBox.StandardButton.No
        monkeypatch.setattr(QMessageBox, "question", self._question)

    def _question(self, _parent, _title, text, *_args) -> QMessageBox.StandardButton:
        self.asked.append(text)
        return self.answer


# ---- catalog -------------------------------------------------------------------


def test_catalog_lists_gpt_oss_first_with_the_planner_fit_for_this_machine(qtbot, window) -> None:
    win, page = window
    assert any(a.text() == "Models" and a.shortcut().toString() == "Ctrl+2" for a in win.view_menu.actions())
    page.tabs.setCurrentWidget(page.catalog_tab)
    cards = page.catalog_tab.cards
    first_id, first = next(iter(cards.items()))
    assert first_id == "gpt-oss-20b"
    assert "Recommended" in first.title.text()
    facts = first.facts.text()
    for want in ("OpenAI", "12.1 GB", "MXFP4", "131,072-token context", "license apache-2.0"):
        assert want in facts
    assert first.badge.text() == "Checking…"  # no hardware known yet

    with qtbot.waitSignal(page.fits_updated, timeout=10000):
        page.set_hardware(builtin_profile("cpu-16gb"))
    first = page.catalog_tab.cards["gpt-oss-20b"]
    assert first.badge.text() == "Fits"
    tip = first.badge.toolTip()
    assert "Runs on the CPU" in tip and "17.2 GB RAM" in tip and "Predicted memory:" in tip
    assert first.buttons["download"].text() == "Download 12.1 GB"

    with qtbot.waitSignal(page.fits_updated, timeout=10000):
        page.set_hardware(builtin_profile("cpu-8gb"))
    first = page.catalog_tab.cards["gpt-oss-20b"]
    assert first.badge.text() == "Too large"
    assert "Does not fit" in first.badge.toolTip() and "8.6 GB" in first.badge.toolTip()
    assert page.catalog_tab.cards["qwen2.5-1.5b-instruct"].badge.text() == "Fits"


def test_scans_imports_and_searches_never_run_on_the_gui_thread(qtbot, ctx, fakehub, tiny, monkeypatch) -> None:
    threads: dict[str, str] = {}

    def spy(name: str, fn):
        def wrapper(*args, **kwargs):
            threads[name] = threading.current_thread().name
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(ModelLibrary, "scan", spy("scan", ModelLibrary.scan))
    monkeypatch.setattr(ModelLibrary, "iter_import", spy("import", ModelLibrary.iter_import))
    monkeypatch.setattr(hub, "search_models", spy("search", hub.search_models))
    fakehub.add_repo(REPO)
    win, page = open_models(qtbot, ctx)
    try:
        with qtbot.waitSignal(page.import_finished, timeout=10000):
            page.import_files([tiny])
        page.search_tab.query.setText("tiny")
        with qtbot.waitSignal(page.search_tab.results_shown, timeout=10000):
            page.search_tab.search()
        assert list(page.search_tab.repo_cards) == [REPO]
    finally:
        win.close()
    assert set(threads) == {"scan", "import", "search"}
    assert threading.main_thread().name not in threads.values()


# ---- downloads -----------------------------------------------------------------


def test_search_download_shows_progress_then_the_model_is_installed(qtbot, window, fakehub, tiny,
                                                                    ctx) -> None:
    _win, page = window
    fakehub.add_repo("someone/unrelated-GGUF")
    serve(fakehub, tiny, bps=1_200_000)
    seen: list[tuple[float, str]] = []

    def on_progress(ev) -> None:
        if ev.state is DownloadState.DOWNLOADING and ev.total and 0 < ev.bytes_done < ev.total:
            seen.append((row(page).progress.value() / 1000, row(page).status.text()))

    page.downloads.progress.connect(on_progress)
    search_and_download(qtbot, page)
    assert page.downloads.isVisible() and JOB in page.downloads.rows
    button = page.search_tab.file_cards[(REPO, FILE)].buttons["download"]
    assert button.text() == "In Downloads" and not button.isEnabled()
    wait_row_state(qtbot, page, DownloadState.COMPLETED)
    assert seen, "progress was shown while the bytes came in"
    assert all(0 < frac < 1 for frac, _ in seen)
    assert any(" of 2.1 MB" in text and "/s" in text and "left" in text for _, text in seen)
    assert len(seen) < 40, "progress reaches the GUI at most ~10 times a second"
    assert "downloaded and verified" in row(page).status.text()
    qtbot.waitUntil(lambda: "tiny-gpt-oss-MXFP4" in page.installed_tab.cards, timeout=10000)
    card = page.installed_tab.cards["tiny-gpt-oss-MXFP4"]
    for want in ("gpt-oss", "MXFP4", "4,096-token context", "on disk"):
        assert want in card.facts.text()
    target = Path(ctx.settings.models_dir) / FILE
    assert str(target) in card.detail.text()
    assert target.read_bytes() == tiny.read_bytes()
    assert not list(Path(ctx.settings.models_dir).glob("*.part*"))


def test_pause_then_resume_continues_from_the_part_file(qtbot, window, fakehub, tiny, ctx) -> None:
    _win, page = window
    serve(fakehub, tiny, bps=600_000)
    search_and_download(qtbot, page)
    qtbot.waitUntil(lambda: row(page).job.last.bytes_done > 300_000, timeout=10000)
    click(qtbot, row(page).buttons["pause"])
    wait_row_state(qtbot, page, DownloadState.PAUSED)
    part = Path(ctx.settings.models_dir) / (FILE + ".part")
    assert part.exists() and part.stat().st_size > 0
    assert "Paused at" in row(page).status.text()
    assert row(page).buttons["resume"].isVisible() and not row(page).buttons["pause"].isVisible()
    with qtbot.waitSignal(page.scanned, timeout=5000):
        page.refresh()
    assert FILE not in page.installed_tab.partial_cards, "a paused download stays in the Downloads list"
    assert "tiny-gpt-oss-MXFP4" not in page.installed_tab.cards, "a partial file is never listed as usable"
    fakehub.file(REPO, FILE).faults.throttle_bps = None
    click(qtbot, row(page).buttons["resume"])
    wait_row_state(qtbot, page, DownloadState.COMPLETED)
    ranges = fakehub.ranges(FILE)
    assert ranges[0] is None and ranges[-1] is not None and ranges[-1].startswith("bytes=")
    assert (Path(ctx.settings.models_dir) / FILE).read_bytes() == tiny.read_bytes()


def test_cancel_asks_then_removes_the_part_file(qtbot, window, fakehub, tiny, ctx, monkeypatch) -> None:
    _win, page = window
    answers = Answers(monkeypatch)
    serve(fakehub, tiny, bps=500_000)
    search_and_download(qtbot, page)
    qtbot.waitUntil(lambda: row(page).job.last.bytes_done > 300_000, timeout=10000)
    part = Path(ctx.settings.models_dir) / (FILE + ".part")
    assert part.exists()
    click(qtbot, row(page).buttons["cancel"])  # "No": keeps downloading
    assert len(answers.asked) == 1 and "Cancel the download" in answers.asked[0]
    assert "partial file" in answers.asked[0]
    qtbot.wait(300)
    assert row(page).state is DownloadState.DOWNLOADING and part.exists()
    answers.answer = QMessageBox.StandardButton.Yes
    click(qtbot, row(page).buttons["cancel"])
    qtbot.waitUntil(lambda: JOB not in page.downloads.rows, timeout=10000)
    assert not part.exists() and not part.with_name(FILE + ".part.json").exists()
    assert "cancelled" in page.notice.text() and not page.downloads.isVisible()
    assert not (Path(ctx.settings.models_dir) / FILE).exists()


def test_failed_downloads_say_what_happened_and_retry_works(qtbot, window, fakehub, tiny, ctx,
                                                          tmp_path) -> None:
    _win, page = window
    f = serve(fakehub, tiny)
    f.faults.resolve_errors = [(404, {})]
    search_and_download(qtbot, page)
    wait_row_state(qtbot, page, DownloadState.FAILED)
    r = row(page)
    assert "no longer has" in r.status.text() and "404" in r.status.text()
    assert r.status.objectName() == "errorLabel"
    assert r.buttons["retry"].isVisible() and not r.buttons["pause"].isVisible()
    click(qtbot, r.buttons["retry"])
    wait_row_state(qtbot, page, DownloadState.COMPLETED)
    click(qtbot, row(page).buttons["dismiss"])
    assert JOB not in page.downloads.rows

    # A corrupted transfer: caught by the checksum, the damaged file deleted, Retry gets a good copy.
    other = "tiny-gpt-oss-Q8_0.gguf"
    g = serve(fakehub, write_tiny_gptoss(tmp_path / "src" / other, seed=5), name=other)
    g.faults.corrupt_at = 1000
    job_id = f"{REPO}@main:{other}"
    page.downloads.download(DownloadRequest(REPO, other), other)
    wait_row_state(qtbot, page, DownloadState.FAILED, job_id)
    assert "is corrupt" in row(page, job_id).status.text()
    models = Path(ctx.settings.models_dir)
    assert not (models / other).exists() and not (models / (other + ".part")).exists()
    g.faults.corrupt_at = None
    click(qtbot, row(page, job_id).buttons["retry"])
    wait_row_state(qtbot, page, DownloadState.COMPLETED, job_id)
    assert hashlib.sha256((models / other).read_bytes()).hexdigest() == g.sha256


def test_downloads_queue_up_and_run_one_at_a_time(qtbot, window, fakehub, tmp_path) -> None:
    _win, page = window
    names = ["a-Q4_0.gguf", "b-Q4_0.gguf"]
    for i, n in enumerate(names):
        serve(fakehub, write_tiny_gptoss(tmp_path / "src" / n, n_embd=256, seed=i), bps=2_000_000, name=n)
    running: list[int] = []

    def on_progress(_ev) -> None:
        running.append(sum(1 for r in page.downloads.rows.values() if r.state is DownloadState.DOWNLOADING))

    page.downloads.progress.connect(on_progress)
    for n in names:
        page.downloads.download(DownloadRequest(REPO, n), n)
    second = f"{REPO}@main:{names[1]}"
    qtbot.waitUntil(lambda: row(page, f"{REPO}@main:{names[0]}").state is DownloadState.DOWNLOADING, timeout=10000)
    assert row(page, second).state is DownloadState.QUEUED
    assert "Waiting" in row(page, second).status.text()
    for n in names:
        wait_row_state(qtbot, page, DownloadState.COMPLETED, f"{REPO}@main:{n}")
    assert max(running) == 1


def test_closing_the_window_mid_download_keeps_the_part_and_a_new_window_offers_resume(
        qtbot, ctx, fakehub, tiny) -> None:
    win, page = open_models(qtbot, ctx)
    serve(fakehub, tiny, bps=600_000)
    page.downloads.download(DownloadRequest(REPO, FILE), FILE)
    qtbot.waitUntil(lambda: row(page).job.last.bytes_done > 300_000, timeout=10000)
    win.close()  # pauses the download and joins its thread (the test fails if a thread is left)
    assert not any(t.name.startswith("hearth-download") for t in threading.enumerate() if t.is_alive())
    part = Path(ctx.settings.models_dir) / (FILE + ".part")
    assert part.exists()

    win2, page2 = open_models(qtbot, ctx)
    try:
        assert "tiny-gpt-oss-MXFP4" not in page2.installed_tab.cards, "a partial file is never usable"
        card = page2.installed_tab.partial_cards[FILE]
        assert "downloaded" in card.facts.text() and "not usable" in card.facts.text()
        fakehub.file(REPO, FILE).faults.throttle_bps = None
        click(qtbot, card.buttons["resume"])
        wait_row_state(qtbot, page2, DownloadState.COMPLETED)
        qtbot.waitUntil(lambda: "tiny-gpt-oss-MXFP4" in page2.installed_tab.cards, timeout=10000)
        assert FILE not in page2.installed_tab.partial_cards and not part.exists()
    finally:
        win2.close()


# ---- import, delete, load ---------------------------------------------------------


def test_dropping_gguf_files_adds_them_in_place_or_copied_and_other_files_get_a_clear_error(
        qtbot, window, tmp_path, ctx) -> None:
    _win, page = window
    src = write_tiny_gptoss(tmp_path / "elsewhere" / "mine.gguf")
    with qtbot.waitSignal(page.import_finished, timeout=10000):
        assert drop_files(page, [src])
    qtbot.waitUntil(lambda: "mine" in page.installed_tab.cards, timeout=10000)
    card = page.installed_tab.cards["mine"]
    assert "gpt-oss" in card.facts.text() and "MXFP4" in card.facts.text() and "4,096" in card.facts.text()
    assert f"Used where it is: {src}" == card.detail.text()
    assert "used where it is" in page.notice.text()
    assert not (Path(ctx.settings.models_dir) / "mine.gguf").exists()

    notes = tmp_path / "notes.txt"
    notes.write_text("not a model at all, just some notes")
    with qtbot.waitSignal(page.import_finished, timeout=10000) as blocker:
        assert drop_files(page, [notes])
    assert blocker.args[1] is None
    assert "notes.txt is not a GGUF model" in page.notice.text()
    assert page.notice.objectName() == "errorLabel"
    assert len(page.installed_tab.cards) == 1

    page.copy_check.setChecked(True)
    copy_src = write_tiny_gptoss(tmp_path / "elsewhere" / "copied.gguf", seed=3)
    with qtbot.waitSignal(page.import_finished, timeout=10000):
        assert drop_files(page, [copy_src])
    copied = Path(ctx.settings.models_dir) / "copied.gguf"
    assert copied.read_bytes() == copy_src.read_bytes()
    qtbot.waitUntil(lambda: "copied" in page.installed_tab.cards, timeout=10000)
    assert "In the models folder" in page.installed_tab.cards["copied"].detail.text()


def test_import_button_opens_a_file_dialog(qtbot, window, tiny, monkeypatch) -> None:
    _win, page = window
    monkeypatch.setattr(models_page.QFileDialog, "getOpenFileNames", lambda *a, **k: ([str(tiny)], ""))
    with qtbot.waitSignal(page.import_finished, timeout=10000):
        click(qtbot, page.import_button)
    qtbot.waitUntil(lambda: "tiny-gpt-oss-MXFP4" in page.installed_tab.cards, timeout=10000)


def test_delete_asks_then_frees_the_disk(qtbot, window, ctx, monkeypatch) -> None:
    _win, page = window
    answers = Answers(monkeypatch)
    target = write_tiny_gptoss(Path(ctx.settings.models_dir) / "doomed.gguf")
    with qtbot.waitSignal(page.scanned, timeout=10000):
        click(qtbot, page.refresh_button)
    card = page.installed_tab.cards["doomed"]
    click(qtbot, card.buttons["delete"])  # "No"
    assert "Delete doomed?" in answers.asked[0] and "366 KB" in answers.asked[0]
    assert target.exists()
    answers.answer = QMessageBox.StandardButton.Yes
    with qtbot.waitSignal(page.scanned, timeout=10000):
        click(qtbot, page.installed_tab.cards["doomed"].buttons["delete"])
    assert not target.exists()
    assert "doomed" not in page.installed_tab.cards
    assert "366 KB freed" in page.notice.text()


def test_load_opens_the_model_in_the_chat(qtbot, window, ctx, monkeypatch) -> None:
    win, page = window
    opened: list[str] = []
    monkeypatch.setattr(win, "open_model", opened.append)
    target = write_tiny_gptoss(Path(ctx.settings.models_dir) / "loadme.gguf")
    with qtbot.waitSignal(page.scanned, timeout=10000):
        click(qtbot, page.refresh_button)
    click(qtbot, page.installed_tab.cards["loadme"].buttons["load"])
    assert opened == [str(target)]
    assert win.pages.currentWidget() is win.chat_page


def test_models_in_the_hugging_face_cache_are_offered(qtbot, ctx, tiny, tmp_path) -> None:
    data = tiny.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    repo_dir = Path(os.environ["HF_HUB_CACHE"]) / "models--someone--tiny-GGUF"
    (repo_dir / "blobs").mkdir(parents=True)
    (repo_dir / "blobs" / sha).write_bytes(data)
    snap = repo_dir / "snapshots" / ("c" * 40)
    snap.mkdir(parents=True)
    (snap / "cached-tiny.gguf").symlink_to(Path("../../blobs") / sha)
    win, page = open_models(qtbot, ctx)
    try:
        card = page.installed_tab.cache_cards[str(snap / "cached-tiny.gguf")]
        assert "someone/tiny-GGUF" in card.facts.text()
        with qtbot.waitSignal(page.import_finished, timeout=10000):
            click(qtbot, card.buttons["use"])
        qtbot.waitUntil(lambda: "cached-tiny" in page.installed_tab.cards, timeout=10000)
        assert not page.installed_tab.cache_cards, "once added it is no longer offered"
        assert "Used where it is" in page.installed_tab.cards["cached-tiny"].detail.text()
    finally:
        win.close()


# ---- offline ---------------------------------------------------------------------


def test_offline_search_says_it_needs_the_network_and_connects_nowhere(qtbot, ctx, monkeypatch) -> None:
    def no_connect(self, *args) -> None:
        pytest.fail(f"a socket connected to {args} in offline mode")

    monkeypatch.setattr(socket.socket, "connect", no_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", no_connect)
    ctx.settings.offline = True
    write_tiny_gptoss(Path(ctx.settings.models_dir) / "local.gguf")
    win, page = open_models(qtbot, ctx)
    try:
        assert os.environ.get("HF_HUB_OFFLINE") == "1"
        page.tabs.setCurrentWidget(page.search_tab)
        tab = page.search_tab
        assert tab.status.text() == SEARCH_OFFLINE
        assert not tab.search_button.isEnabled() and not tab.query.isEnabled()
        tab.query.setText("gpt-oss")
        tab.search()  # even when asked directly, no call is made
        assert tab.status.text() == SEARCH_OFFLINE and not page.worker.busy("search")
        assert page.downloads.download(DownloadRequest(REPO, FILE)) is None
        assert "Offline mode is on" in page.notice.text() and not page.downloads.rows
        page.tabs.setCurrentWidget(page.catalog_tab)
        assert not page.catalog_tab.cards["gpt-oss-20b"].buttons["download"].isEnabled()
        # installed models still work
        opened: list[str] = []
        monkeypatch.setattr(win, "open_model", opened.append)
        page.tabs.setCurrentWidget(page.installed_tab)
        click(qtbot, page.installed_tab.cards["local"].buttons["load"])
        assert opened == [str(Path(ctx.settings.models_dir) / "local.gguf")]
    finally:
        win.close()


def test_turning_offline_mode_on_in_settings_applies_to_the_page_at_once(qtbot, ctx) -> None:
    win = MainWindow(ctx)
    qtbot.addWidget(win)
    tokens = TokenStore()
    settings = add_settings_page(win, tokens)
    page = add_models_page(win, tokens)
    connect_pages(settings=settings, models=page)
    win.show()
    try:
        # one token store: a token kept for this session only in Settings is used by downloads too
        assert page.tokens is settings.tokens
        tab = page.search_tab
        assert tab.search_button.isEnabled() and tab.status.text() != SEARCH_OFFLINE
        settings.offline.setChecked(True)
        assert tab.status.text() == SEARCH_OFFLINE and not tab.search_button.isEnabled()
        assert ctx.settings.offline and os.environ.get("HF_HUB_OFFLINE") == "1"
        settings.offline.setChecked(False)
        assert tab.search_button.isEnabled() and tab.status.text() == ""
    finally:
        win.close()


class SilentServer:
    """127.0.0.1: accepts connections and answers none of them until closed (a hub that hangs)."""

    ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]"

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.conns: list[socket.socket] = []
        self.accepted = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            self.conns.append(conn)
            self.accepted.set()

    def close(self) -> None:
        """Answer the held requests (an empty search) so the client threads end, and stop listening."""
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
        for c in self.conns:
            try:
                c.sendall(self.ANSWER)
            except OSError:
                pass
            c.close()
        self.conns.clear()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    s = SilentServer()
    yield s
    s.close()


def start_search(qtbot, page: ModelsPage, query: str = "gpt-oss") -> None:
    page.tabs.setCurrentWidget(page.search_tab)
    tab = page.search_tab
    tab.query.setText(query)
    click(qtbot, tab.search_button)


def test_a_search_shows_a_busy_indicator_and_can_be_cancelled(qtbot, ctx, silent) -> None:
    ctx.settings.hf_endpoint = silent.url
    win, page = open_models(qtbot, ctx)
    try:
        tab = page.search_tab
        start_search(qtbot, page)
        assert silent.accepted.wait(10)
        assert tab.busy.isVisible() and tab.cancel_button.isVisible() and tab.searching
        assert silent.url in tab.status.text()
        with qtbot.waitSignal(tab.results_shown, timeout=1000):
            click(qtbot, tab.cancel_button)
        assert tab.status.text() == "Search cancelled." and not tab.searching
        assert not tab.busy.isVisible() and not tab.cancel_button.isVisible() and tab.search_button.isEnabled()
    finally:
        silent.close()
        win.close()


def test_a_search_that_gets_no_answer_times_out_naming_the_server(qtbot, ctx, silent) -> None:
    ctx.settings.hf_endpoint = silent.url
    win, page = open_models(qtbot, ctx)
    try:
        tab = page.search_tab
        tab.timeout_s = 0.5
        with qtbot.waitSignal(tab.results_shown, timeout=5000):
            start_search(qtbot, page)
        assert silent.url in tab.status.text() and "did not answer within 0.5 seconds" in tab.status.text()
        assert tab.status.objectName() == "errorLabel" and not tab.busy.isVisible() and tab.search_button.isEnabled()
    finally:
        silent.close()
        win.close()


def test_offline_mode_during_a_search_says_so_at_once_and_connects_no_more(qtbot, ctx, silent,
                                                                            monkeypatch) -> None:
    ctx.settings.hf_endpoint = silent.url
    win, page = open_models(qtbot, ctx)
    try:
        tab = page.search_tab
        start_search(qtbot, page)
        assert silent.accepted.wait(10) and tab.busy.isVisible()

        def no_connect(self, *args) -> None:
            pytest.fail(f"a socket connected to {args} in offline mode")

        monkeypatch.setattr(socket.socket, "connect", no_connect)
        monkeypatch.setattr(socket.socket, "connect_ex", no_connect)
        ctx.settings.offline = True
        page.on_settings_saved(["offline"])  # what Settings' Offline switch does
        # at once, not after the hung request ends
        assert tab.status.text() == SEARCH_OFFLINE and not tab.busy.isVisible() and not tab.searching
        tab.query.setText("qwen")
        tab.search()  # asked directly: the message again, no call
        assert tab.status.text() == SEARCH_OFFLINE and not tab.searching and not tab.busy.isVisible()
        qtbot.wait(300)
        assert tab.status.text() == SEARCH_OFFLINE
    finally:
        silent.close()
        win.close()
