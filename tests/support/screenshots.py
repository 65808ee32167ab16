"""README screenshots, taken under a real X server (``make screenshots``).

    python -m tests.support.screenshots [--out assets] [--only NAME ...]

With no ``DISPLAY`` the script starts its own Xvfb (plus openbox when installed)
and runs itself again inside it. Each picture is a real X capture of the main
window (``import -window <id>``), so it shows what the xcb platform renders,
not Qt's offscreen painter. Conversations come from the scripted engine
(tests/ui/fake_engine.py): no model is needed.

The module's top level needs nothing but the standard library: the real-display
smoke test (tests/ui/shell/test_xvfb_smoke.py) imports :class:`XServer` from here.
"""

from __future__ import annotations

import argparse
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
WINDOW_SIZE = (1100, 720)
SHOTS = ("screenshot.png", "screenshot-dark.png", "screenshot-thinking.png", "screenshot-models.png",
         "screenshot-settings.png")
MAX_BYTES = 300_000


# ---- the X server ------------------------------------------------------------


def xvfb_missing() -> str | None:
    """Why no X server can be started here (None when Xvfb is installed)."""
    if sys.platform != "linux":
        return f"Xvfb runs on Linux only (this is {sys.platform})"
    if shutil.which("Xvfb") is None:
        return "Xvfb is not installed (apt-get install xvfb)"
    return None


class XServer:
    """A private Xvfb display (the number picked by Xvfb itself), with openbox when ``wm`` and installed."""

    def __init__(self, width: int = 1280, height: int = 800, *, wm: bool = True) -> None:
        self.size = (width, height)
        self.want_wm = wm
        self.display = ""
        self.xvfb: subprocess.Popen[bytes] | None = None
        self.wm: subprocess.Popen[bytes] | None = None
        self.log = Path(tempfile.mkstemp(prefix="hearth-xvfb-", suffix=".log")[1])

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ, DISPLAY=self.display, QT_QPA_PLATFORM="xcb")
        env.pop("WAYLAND_DISPLAY", None)
        env.update(extra)
        return env

    def start(self, timeout: float = 15.0) -> XServer:
        r, w = os.pipe()
        with self.log.open("wb") as log:
            self.xvfb = subprocess.Popen(
                ["Xvfb", "-displayfd", str(w), "-screen", "0", f"{self.size[0]}x{self.size[1]}x24",
                 "-nolisten", "tcp", "-noreset"],
                pass_fds=(w,), stdout=log, stderr=log, start_new_session=True,
            )
        os.close(w)
        buf = b""
        deadline = time.monotonic() + timeout
        try:
            while not buf.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or self.xvfb.poll() is not None:
                    raise RuntimeError(f"Xvfb did not start: {self.log.read_text(errors='replace')[-2000:]}")
                ready, _, _ = select.select([r], [], [], min(left, 0.5))
                if ready:
                    chunk = os.read(r, 64)
                    if not chunk:
                        raise RuntimeError(f"Xvfb closed its display pipe: {self.log.read_text(errors='replace')[-2000:]}")
                    buf += chunk
        except BaseException:
            self.stop()
            raise
        finally:
            os.close(r)
        self.display = ":" + buf.decode().strip()
        if self.want_wm and shutil.which("openbox"):
            self.wm = subprocess.Popen(["openbox", "--sm-disable"], env=self.env(), stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL, start_new_session=True)
            time.sleep(0.3)  # let it take the root window before the app maps its own
        return self

    def stop(self) -> None:
        for p in (self.wm, self.xvfb):
            if p is None or p.poll() is not None:
                continue
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        self.wm = self.xvfb = None
        self.log.unlink(missing_ok=True)

    def __enter__(self) -> XServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# ---- the conversations -------------------------------------------------------

QUESTION = "How do I keep a long-running Python script from eating all my memory? It processes big CSV files."

THINKING = (
    "The user has a script reading big CSV files and memory grows. Likely causes: reading the whole file "
    "with pandas.read_csv, building lists of rows, or keeping references in a cache. Suggest streaming: "
    "csv module row by row, or pandas with chunksize. Mention generators, measuring with tracemalloc, and "
    "dtype choices. Give a short checklist and a code example that processes in chunks."
)

ANSWER = """Most memory growth in CSV jobs comes from **holding the whole file at once**. Stream it instead:

1. **Read in chunks**: `pandas.read_csv(path, chunksize=100_000)` yields frames you can process and drop.
2. **Pick small dtypes**: `category` for repeated strings, `float32` where precision allows.
3. **Keep no references**: append results to a file, not to a list that lives for the whole run.
4. **Measure**: `tracemalloc` shows which line allocates the most.

```python
import pandas as pd

totals = {}
for chunk in pd.read_csv("sales.csv", chunksize=100_000,
                         dtype={"region": "category"}):
    for region, amount in chunk.groupby("region")["amount"].sum().items():
        totals[region] = totals.get(region, 0) + amount
print(totals)
```

With this, memory stays flat at roughly one chunk, whatever the file's size."""

SIDEBAR_TITLES = ["Lisbon in three days", "Explain MoE models", "Cover letter draft", "Regex for ISO dates"]


def harmony(thinking: str, answer: str) -> str:
    return (f"<|channel|>analysis<|message|>{thinking}<|end|>"
            f"<|start|>assistant<|channel|>final<|message|>{answer}<|return|>")


# ---- inside the X server: the app and the pictures -----------------------------


def _take(out: Path, names: list[str]) -> list[str]:
    """Run inside the X server: build the window, set up each scene and capture it. Returns problems."""
    import keyring
    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtTest import QTest

    from app.context import AppContext
    from tests.keyrings import MemoryKeyring
    from tests.ui.helpers import use_script
    from ui.shell.app import build_window, create_app
    from ui.widgets.theme import apply_theme

    keyring.set_keyring(MemoryKeyring())  # never the developer's real keyring
    os.environ.setdefault("HEARTH_NO_FIRST_RUN", "1")
    problems: list[str] = []
    app = create_app(["hearth"])

    def wait(ms: int) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    def wait_until(pred: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                return False
            wait(20)
        return True

    def capture(win: Any, name: str) -> None:
        wait(400)
        path = out / name
        raw = path.with_suffix(".raw.png")
        wid = hex(int(win.winId()))
        r = subprocess.run(["import", "-window", wid, str(raw)], capture_output=True, text=True, timeout=30)
        if r.returncode != 0 or not raw.exists():
            shot = win.screen().grabWindow(int(win.winId()))  # no ImageMagick: Qt reads the X window itself
            if not shot.save(str(raw)):
                problems.append(f"{name}: could not capture the window ({r.stderr.strip()})")
                return
        _shrink(raw, path)
        raw.unlink(missing_ok=True)
        print(f"wrote {path} ({path.stat().st_size // 1024} KiB)", flush=True)

    def window(theme: str, conversations: int = 1, delay: float = 0.002, pieces: list[str] | None = None) -> Any:
        # The Settings page shows this path: a short, plain one rather than a random temp name.
        data = Path(tempfile.gettempdir()) / "hearth-screenshots" / "Hearth"
        shutil.rmtree(data.parent, ignore_errors=True)
        ctx = AppContext.create(data)
        ctx.settings.theme = theme
        ctx.settings.first_run_done = True
        apply_theme(app, theme)
        # Earlier chats for the sidebar (newest last, so the open one stays on top).
        for title in SIDEBAR_TITLES[:conversations]:
            conv = ctx.store.create(title)
            ctx.store.add_message(conv.id, "user", title)
            ctx.store.add_message(conv.id, "assistant", "…")
        win = build_window(ctx)
        win.resize(*WINDOW_SIZE)
        win.move(40, 30)
        win.show()
        win.raise_()
        win.activateWindow()
        QTest.qWaitForWindowExposed(win, 5000)
        eng = use_script(win, pieces or [harmony(THINKING, ANSWER)], delay=delay)
        eng.model_info.update(name="gpt-oss-20b-MXFP4", n_ctx=8192, path="/models/gpt-oss-20b-MXFP4.gguf")
        win._on_controller_model_loaded(eng.model_info)  # noqa: SLF001 - the name shown in the header
        win.status_backend.setText("Backend: CPU")
        win.status_memory.setText("Model memory: 12.1 GB")
        win.sidebar.refresh()
        return win

    def ask(win: Any, text: str) -> None:
        win.composer.set_text(text)
        win.composer.focus()
        QTest.keyClick(win.composer.edit, Qt.Key.Key_Return)

    def finished(win: Any) -> bool:
        return not win.controller.generating

    def close(win: Any) -> None:
        win.close()
        wait(50)
        win.ctx.close()
        win.deleteLater()
        wait(50)

    for theme, name in (("light", "screenshot.png"), ("dark", "screenshot-dark.png")):
        if name not in names:
            continue
        win = window(theme, conversations=len(SIDEBAR_TITLES))
        ask(win, QUESTION)
        if not wait_until(lambda w=win: finished(w), 60):
            problems.append(f"{name}: the scripted reply never finished")
        # Shown as reopened from history: a code block's language label can keep the first
        # characters streamed of its fence ("p" for "python"), a UI bug reported separately.
        conv_id = win.conversation_id
        win.new_chat()
        win.open_conversation(conv_id)
        win.sidebar.select(conv_id, emit=False)  # as when picked in the sidebar
        wait(300)
        win.chat_view.verticalScrollBar().setValue(0)  # the question and the start of the answer
        capture(win, name)
        close(win)

    if "screenshot-thinking.png" in names:
        thinking = ("We need to weigh the migration. Jenkins: self-hosted, plugins, Groovy pipelines, a real "
                    "maintenance burden. GitHub Actions: hosted runners, YAML workflows, marketplace actions, "
                    "cost per minute for private repos, self-hosted runners possible. Questions to ask: where "
                    "is the code hosted, how many build minutes a month, any special hardware, compliance "
                    "needs. A phased plan would help: start with one repository, keep Jenkins for the rest.")
        win = window("light", conversations=2, delay=0.05,
                     pieces=[harmony(thinking, "It usually is, if your code already lives on GitHub.")])
        ask(win, "Is it worth switching our team's CI from Jenkins to GitHub Actions?")
        # Mid-stream: the reasoning is being written, the answer has not started.
        if not wait_until(lambda: any(w.thinking is not None and len(w.thinking.text) > 270
                                      for w in win.chat_view.widgets.values()), 60):
            problems.append("screenshot-thinking.png: no reasoning streamed in")
        capture(win, "screenshot-thinking.png")
        win.controller.stop()
        wait_until(lambda: finished(win), 30)
        close(win)

    for name, attr in (("screenshot-models.png", "models_page"), ("screenshot-settings.png", "settings_page")):
        if name not in names:
            continue
        win = window("light", conversations=len(SIDEBAR_TITLES))
        page = getattr(win, attr, None)
        if page is None:
            problems.append(f"{name}: the window has no {attr}")
            close(win)
            continue
        win.show_page(page)
        if attr == "models_page":
            # The catalog with this computer's fit badges: wait for hardware detection and the verdicts.
            page.tabs.setCurrentWidget(page.catalog_tab)
            if not wait_until(lambda p=page: p.hardware is not None and bool(p.fits), 60):
                problems.append(f"{name}: no hardware verdicts after 60 s")
        wait(300)
        capture(win, name)
        close(win)
    return problems


def _shrink(src: Path, dst: Path) -> None:
    """Strip metadata; quantize when the PNG is over MAX_BYTES (ImageMagick when present, else Qt as is)."""
    convert = shutil.which("convert")
    if convert is None:
        shutil.copyfile(src, dst)
        return
    subprocess.run([convert, str(src), "-strip", str(dst)], check=True, timeout=60)
    if dst.stat().st_size > MAX_BYTES:
        subprocess.run([convert, str(src), "-strip", "-colors", "256", "PNG8:" + str(dst)], check=True, timeout=60)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "assets")
    ap.add_argument("--only", nargs="*", default=None, help="file names, e.g. screenshot-dark.png")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    names = args.only or list(SHOTS)
    unknown = sorted(set(names) - set(SHOTS))
    if unknown:
        ap.error(f"unknown screenshot(s): {', '.join(unknown)}; known: {', '.join(SHOTS)}")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.child:
        problems = _take(out, names)
        for p in problems:
            print("problem:", p, file=sys.stderr)
        return 1 if problems else 0

    def run_all(env: dict[str, str]) -> int:
        # One process per picture: each starts from a fresh QApplication, theme and window.
        rc = 0
        for name in names:
            cmd = [sys.executable, "-m", "tests.support.screenshots", "--child", "--out", str(out), "--only", name]
            r = subprocess.run(cmd, cwd=ROOT, env=env, timeout=300)
            rc = rc or r.returncode
        return rc

    if os.environ.get("DISPLAY") and os.environ.get("QT_QPA_PLATFORM", "xcb") == "xcb":
        return run_all(dict(os.environ, QT_QPA_PLATFORM="xcb"))
    why = xvfb_missing()
    if why:
        print(f"make screenshots needs an X server: {why}", file=sys.stderr)
        return 1
    with XServer(1280, 800) as x:
        return run_all(x.env())


if __name__ == "__main__":
    sys.exit(main())
