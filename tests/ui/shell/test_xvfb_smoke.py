"""On a real X display (Xvfb, xcb platform): a long reply is visible wherever the user scrolls.

The other UI tests run on Qt's offscreen platform. This one starts Xvfb (and openbox
when installed), runs the app in a subprocess with QT_QPA_PLATFORM=xcb, streams a
reply three viewports tall through the scripted engine and checks what a person
would see: text at the bottom, at the top and after reopening the chat, a scroll
range equal to the content's height (no blank space to scroll into), and a real
X screenshot that is not blank. Skipped where Xvfb is not installed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.screenshots import XServer, xvfb_missing

ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.skipif(xvfb_missing() is not None, reason=f"no real X display: {xvfb_missing()}")

# Run in a subprocess: this process already has an offscreen QApplication, and Qt picks
# its platform once per process.
APP_SCRIPT = r'''
import os, shutil, subprocess, sys, time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEventLoop, QPoint, Qt, QTimer
from PySide6.QtGui import QImage
from PySide6.QtTest import QTest

from app.context import AppContext
from tests.ui.helpers import use_script
from ui.shell.app import create_app
from ui.shell.main_window import MainWindow
from ui.widgets.theme import apply_theme

T0 = time.monotonic()
MIN_INK = 0.02  # share of the viewport's pixels that are not background
failures = []


def log(msg):
    print(f"[{time.monotonic() - T0:5.1f}s] {msg}", flush=True)


def check(ok, msg):
    log(("ok   " if ok else "FAIL ") + msg)
    if not ok:
        failures.append(msg)


def wait(ms):
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            log(f"FAIL timed out after {timeout} s waiting for {what}")
            sys.exit(1)
        wait(20)


def ink(img):
    """Share of pixels that differ from the most common colour (the background)."""
    img = img.convertToFormat(QImage.Format.Format_RGB32)
    w, h = img.width(), img.height()
    if not w or not h:
        return 0.0
    a = np.frombuffer(img.constBits(), dtype=np.uint8, count=img.sizeInBytes())
    a = a.reshape(h, img.bytesPerLine())[:, : w * 4].reshape(h, w, 4)[:, :, :3].astype(np.int16)
    flat = a.reshape(-1, 3)
    keys = (flat[:, 0].astype(np.int64) << 16) | (flat[:, 1].astype(np.int64) << 8) | flat[:, 2]
    vals, counts = np.unique(keys, return_counts=True)
    bg = vals[counts.argmax()]
    bg_rgb = np.array([(bg >> 16) & 255, (bg >> 8) & 255, bg & 255], dtype=np.int16)
    return float((np.abs(flat - bg_rgb).max(axis=1) > 24).mean())


def viewport_ink(win, where):
    img = win.chat_view.viewport().grab().toImage()
    share = ink(img)
    check(share > MIN_INK, f"{where}: {share:.1%} of the chat viewport is text or drawing (> {MIN_INK:.0%})")
    if share <= MIN_INK:
        img.save(os.path.join(os.environ["SMOKE_OUT"], where.replace(" ", "-") + ".png"))


def geometry(win, where):
    view = win.chat_view
    bar = view.verticalScrollBar()
    canvas = view.widget()
    check(bar.maximum() + bar.pageStep() == canvas.height(),
          f"{where}: scroll range {bar.maximum()} + page {bar.pageStep()} == canvas height {canvas.height()}")
    last = list(view.widgets.values())[-1]
    bottom = last.mapTo(canvas, QPoint(0, last.height())).y()
    check(0 <= canvas.height() - bottom <= 40,
          f"{where}: last message ends {canvas.height() - bottom} px above the canvas bottom (<= 40)")


paragraphs = [
    "Mixture-of-experts models route each token through a few of many feed-forward blocks, so a "
    "20-billion-parameter model only computes with about 3.6 billion of them per token.",
    "That is why gpt-oss-20b runs at a usable speed on a laptop CPU: memory holds every expert, "
    "but each step reads only the ones the router picked.",
    "Quantisation matters as much as the architecture. MXFP4 stores the expert weights in four bits "
    "with a shared scale per block of thirty-two values, which keeps the file near 12 GB.",
    "Context length costs memory too: the key-value cache grows with every token, and reasoning "
    "models write long chains of thought before they answer, so leave room for them.",
]
reply = []
for i in range(20):
    reply.append(f"**{i + 1}.** " + paragraphs[i % len(paragraphs)])
reply.append("A checklist:\n\n" + "\n".join(f"- item {k}: check the setting and note the result" for k in range(1, 13)))
reply.append("```python\n" + "\n".join(f"total_{k} = sum(x * {k} for x in range({k * 10}))" for k in range(1, 21)) + "\n```")
reply.append("That is the whole answer; the last line must be visible at the bottom.")
script = ("<|channel|>analysis<|message|>The user wants a long explanation.<|end|>"
          "<|start|>assistant<|channel|>final<|message|>" + "\n\n".join(reply) + "<|return|>")

os.environ["HEARTH_NO_FIRST_RUN"] = "1"
app = create_app(["hearth-smoke"])
log(f"platform {app.platformName()}, screen {app.primaryScreen().size().width()}x{app.primaryScreen().size().height()}")
if app.platformName() != "xcb":
    log(f"FAIL expected the xcb platform, got {app.platformName()}")
    sys.exit(1)
apply_theme(app, "light")
ctx = AppContext.create(Path(os.environ["SMOKE_DATA"]))
ctx.settings.first_run_done = True
win = MainWindow(ctx)
win.resize(900, 600)
win.move(20, 20)
win.show()
if not QTest.qWaitForWindowExposed(win, 10000):
    log("FAIL the window was never exposed on the X display")
    sys.exit(1)
use_script(win, [script], delay=0.001)

states = []
win.controller.busy_changed.connect(states.append)
win.composer.set_text("Explain how gpt-oss-20b fits on a laptop, in detail.")
win.composer.focus()
QTest.keyClick(win.composer.edit, Qt.Key.Key_Return)
wait_until(lambda: True in states, 10, "the reply to start")
wait_until(lambda: states[-1] is False, 60, "the reply to finish")
log("reply finished")
wait(500)

view = win.chat_view
bar = view.verticalScrollBar()
canvas = view.widget()
vp = view.viewport().height()
check(canvas.height() >= 2.5 * vp, f"the reply is long: canvas {canvas.height()} px >= 2.5 x viewport {vp} px")
check(bar.value() >= bar.maximum() - 24, f"the view followed the reply to its end (value {bar.value()}, max {bar.maximum()})")
bar.setValue(bar.maximum())
wait(200)
geometry(win, "at the bottom")
viewport_ink(win, "at the bottom")

shot = os.path.join(os.environ["SMOKE_OUT"], "root.png")
if shutil.which("import"):
    r = subprocess.run(["import", "-window", "root", shot], capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, f"import -window root: rc {r.returncode} {r.stderr.strip()[:200]}")
    img = QImage(shot)
else:
    img = app.primaryScreen().grabWindow(0).toImage()  # Qt reads the root window itself
    img.save(shot)
share = ink(img)
check(not img.isNull() and share > 0.05, f"the X screenshot is not blank: {share:.1%} non-background pixels")
win_img = img.copy(win.frameGeometry()) if not img.isNull() else img
check(ink(win_img) > MIN_INK, f"the window's area in the X screenshot shows content ({ink(win_img):.1%})")

bar.setValue(0)
wait(200)
viewport_ink(win, "at the top")

conv_id = win.conversation_id
win.new_chat()
wait(100)
win.open_conversation(conv_id)
wait(500)
check(bar.value() == bar.maximum(), f"reopened at the end (value {bar.value()}, max {bar.maximum()})")
geometry(win, "after reopening")
viewport_ink(win, "after reopening")
bar.setValue(0)
wait(200)
viewport_ink(win, "after reopening, at the top")

win.close()
wait(50)
ctx.close()
log(f"done: {len(failures)} failure(s)")
sys.exit(1 if failures else 0)
'''


def test_long_reply_is_visible_on_a_real_display(tmp_path: Path) -> None:
    t0 = time.monotonic()
    out = tmp_path / "out"
    out.mkdir()
    with XServer(1280, 800) as x:
        env = x.env(SMOKE_DATA=str(tmp_path / "data"), SMOKE_OUT=str(out))
        try:
            r = subprocess.run([sys.executable, "-c", APP_SCRIPT], cwd=ROOT, env=env, capture_output=True,
                               text=True, timeout=90)
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"the app did not finish within 90 s on {x.display}:\n{exc.stdout or ''}\n{exc.stderr or ''}")
    print(r.stdout)
    print(r.stderr[-4000:], file=sys.stderr)
    if r.returncode != 0 and 'Could not load the Qt platform plugin "xcb"' in r.stderr:
        # Xvfb is there but not the libraries Qt's xcb plugin links to (.ci/run installs them).
        hints = [ln.strip() for ln in r.stderr.splitlines() if "needed" in ln or "cannot open" in ln.lower()]
        pytest.skip(f"Qt's xcb platform plugin cannot load here: {'; '.join(hints) or r.stderr.strip()[-300:]}")
    assert r.returncode == 0, (f"real-display smoke test failed (rc {r.returncode}; pictures of failures in {out}):\n"
                               f"{r.stdout}\n{r.stderr[-4000:]}")
    print(f"xvfb smoke test took {time.monotonic() - t0:.1f} s")
