"""One message in the chat: Markdown answer, thinking panel, tool cards, footer, actions."""

from __future__ import annotations

import html
import json
import time
from typing import Any

from PySide6.QtCore import QEvent, QSize, Qt, Signal
from PySide6.QtGui import QGuiApplication, QPalette, QTextDocument
from PySide6.QtWidgets import (
    QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QToolButton, QVBoxLayout, QWidget,
)

from app.storage.conversations import Message
from ui.chat.markdown import highlight_code, merge_prose, plain_html, render_blocks
from ui.widgets import theme
from ui.widgets.icons import icon


class WrapLabel(QLabel):
    """A word-wrapped label that remembers its height for each width.

    Layouts ask a label's height for its width many times per pass (each nesting level,
    with and without the scroll bar) and QLabel lays its whole text out every time: a
    canvas resize took 11 ms for one long reply. With the cache it takes a tenth of that.
    """

    def __init__(self, text: str = "") -> None:
        super().__init__(text)
        self._hfw: dict[int, int] = {}

    def setText(self, text: str) -> None:  # noqa: N802 - QLabel's name
        self._hfw.clear()
        super().setText(text)

    def clear(self) -> None:
        self._hfw.clear()
        super().clear()

    def heightForWidth(self, width: int) -> int:  # noqa: N802 - Qt override
        h = self._hfw.get(width)
        if h is None:
            if len(self._hfw) > 8:
                self._hfw.clear()
            h = self._hfw[width] = super().heightForWidth(width)
        return h

    def changeEvent(self, e: QEvent) -> None:  # noqa: N802 - Qt override
        if e.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange, QEvent.Type.ContentsRectChange):
            self._hfw.clear()
        super().changeEvent(e)

    def setContentsMargins(self, *args: Any) -> None:  # noqa: N802
        self._hfw.clear()
        super().setContentsMargins(*args)


def _label(text: str = "", *, rich: bool = True, selectable: bool = True) -> QLabel:
    lab = WrapLabel("")
    lab.setWordWrap(True)
    lab.setTextFormat(Qt.TextFormat.RichText if rich else Qt.TextFormat.PlainText)
    lab.setText(text)
    flags = Qt.TextInteractionFlag.LinksAccessibleByMouse
    if selectable:
        flags |= Qt.TextInteractionFlag.TextSelectableByMouse
    lab.setTextInteractionFlags(flags)
    lab.setOpenExternalLinks(False)
    # Height for width: a wrapped label is exactly as tall as its text at the width it gets
    # (a plain size policy would drop QLabel's height-for-width flag, and the layout would use
    # a height guessed for another width).
    policy = QSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
    policy.setHeightForWidth(True)
    lab.setSizePolicy(policy)
    # A long unbreakable word (a URL, a hash) must not make the label wider than the column:
    # a widget squeezed below its minimum width gets the height for a width it does not have,
    # and the transcript ends up with empty space below the last message.
    lab.setMinimumWidth(1)
    return lab


BUBBLE_INDENT = 64  # a user bubble never starts at the column's left edge


class CodeBlock(QFrame):
    """A highlighted code block with its own Copy button."""

    def __init__(self, html: str, code: str, language: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("codeBlock")
        self.code = code
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 4, 8, 8)
        head = QHBoxLayout()
        self.language_label = QLabel(language or "code")
        self.language_label.setObjectName("codeLang")
        head.addWidget(self.language_label)
        head.addStretch(1)
        self.copy_button = QToolButton()
        self.copy_button.setObjectName("iconButton")
        self.copy_button.setText("Copy")
        self.copy_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.copy_button.setIconSize(QSize(14, 14))
        self.copy_button.setIcon(icon("copy", theme.current().muted))
        self.copy_button.setAccessibleName("Copy code")
        self.copy_button.clicked.connect(self._copy)
        head.addWidget(self.copy_button)
        lay.addLayout(head)
        self.body = _label(html)
        self.body.setObjectName("codeBody")
        lay.addWidget(self.body)

    def set_content(self, html: str, code: str, language: str = "") -> None:
        self.code = code
        self.body.setText(html)
        if self.language_label.text() != (language or "code"):  # the fence's name arrives in pieces
            self.language_label.setText(language or "code")

    def _copy(self) -> None:
        QGuiApplication.clipboard().setText(self.code)
        self.copy_button.setText("Copied")


class MarkdownView(QWidget):
    """Renders Markdown as a column of prose labels and code blocks; updates in place."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._lay = QVBoxLayout(self)
        self._lay.setContentsMargins(0, 0, 0, 0)
        self._lay.setSpacing(6)
        self._widgets: list[tuple[str, QWidget]] = []
        self.text = ""

    def set_markdown(self, text: str) -> None:
        self.text = text
        dark = self.palette().color(QPalette.ColorRole.Window).lightness() < 128
        blocks = merge_prose(render_blocks(text, dark=dark))
        for i, b in enumerate(blocks):
            if i < len(self._widgets) and self._widgets[i][0] == b.kind:
                w = self._widgets[i][1]
                if b.kind == "code":
                    assert isinstance(w, CodeBlock)
                    if w.code != b.code or w.language_label.text() != (b.language or "code"):
                        w.set_content(b.html, b.code, b.language)
                else:
                    assert isinstance(w, QLabel)
                    if w.text() != b.html:
                        w.setText(b.html)
                continue
            self._drop(i)
            w = CodeBlock(b.html, b.code, b.language) if b.kind == "code" else _label(b.html)
            self._lay.addWidget(w)
            self._widgets.append((b.kind, w))
        self._drop(len(blocks))

    def _drop(self, start: int) -> None:
        """Remove the widgets from ``start`` on (out of the layout at once, deleted later)."""
        for _, old in self._widgets[start:]:
            self._lay.removeWidget(old)
            old.hide()
            old.deleteLater()
        del self._widgets[start:]


class ThinkingPanel(QWidget):
    """Collapsible 'Thinking…' section: open while reasoning, 'Thought for N s' after."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.toggle = QToolButton()
        self.toggle.setObjectName("thinkingToggle")
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.ArrowType.DownArrow)
        self.toggle.setCheckable(True)
        self.toggle.setChecked(True)
        self.toggle.setAccessibleName("Show or hide the model's thinking")
        self.toggle.toggled.connect(self._on_toggle_toggled)
        lay.addWidget(self.toggle)
        self.body = _label("", rich=False)
        self.body.setObjectName("thinkingBody")
        lay.addWidget(self.body)
        self.text = ""
        self.started = time.monotonic()
        self.seconds: float | None = None
        self._update_title()

    def _update_title(self) -> None:
        if self.seconds is None:
            self.toggle.setText("Thinking…")
        else:
            self.toggle.setText(f"Thought for {max(1, round(self.seconds))} s")

    def append(self, text: str) -> None:
        self.text += text
        self.body.setText(self.text)

    def set_text(self, text: str) -> None:
        self.text = text
        self.body.setText(text)

    def finish(self, seconds: float | None = None) -> None:
        if self.seconds is None:
            self.seconds = seconds if seconds is not None else time.monotonic() - self.started
        self._update_title()
        self.toggle.setChecked(False)

    @property
    def expanded(self) -> bool:
        return self.toggle.isChecked()

    def _on_toggle_toggled(self, on: bool) -> None:
        self.body.setVisible(on)
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)


class ToolCard(QFrame):
    """[tool icon] name(args) → result; click to see the full arguments and result."""

    def __init__(self, name: str, arguments: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("toolCard")
        self.name, self.arguments = name, arguments
        self.result: str | None = None
        self.ok = True
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 4, 8, 4)
        self.header = QToolButton()
        self.header.setObjectName("toolHeader")
        self.header.setCheckable(True)
        self.header.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.header.setIconSize(QSize(14, 14))
        self.header.setMinimumWidth(1)
        self.header.setIcon(icon("python" if name == "python" else "tool", theme.current().muted))
        self.header.setAccessibleName(f"Tool call {name}")
        self.header.toggled.connect(self._on_header_toggled)
        lay.addWidget(self.header)
        self.detail = _label("", rich=False)
        self.detail.setVisible(False)
        lay.addWidget(self.detail)
        self._refresh()

    def _short(self, s: str, n: int = 60) -> str:
        s = " ".join(s.split())
        return s if len(s) <= n else s[: n - 1] + "…"

    def _refresh(self) -> None:
        args = self.arguments
        try:
            parsed = json.loads(args)
            if isinstance(parsed, dict) and len(parsed) == 1:
                args = str(next(iter(parsed.values())))
        except (ValueError, TypeError):
            pass
        head = f"{self.name}({self._short(args, 40)})"
        if self.result is None:
            head += " …"
        else:
            head += (" → " if self.ok else " failed: ") + self._short(self.result)
            if not self.ok:
                self.header.setIcon(icon("warning", theme.current().danger))
        self.header.setText(head)
        if self.name == "python":
            # gpt-oss's python tool: the code (highlighted) and what it printed.
            self.detail.setTextFormat(Qt.TextFormat.RichText)
            out = self.result if self.result is not None else "running…"
            self.detail.setText(highlight_code(self.arguments, "python", theme.current().dark)
                                + '<pre style="margin:0;font-family:monospace;white-space:pre-wrap">'
                                + html.escape(out) + "</pre>")
            return
        self.detail.setText(f"Arguments:\n{self.arguments}\n\nResult:\n{self.result or ''}")

    def set_result(self, result: str, ok: bool) -> None:
        self.result, self.ok = result, ok
        self._refresh()

    def _on_header_toggled(self, on: bool) -> None:
        self.detail.setVisible(on)


class MessageWidget(QFrame):
    """A user bubble or an assistant reply with hover actions."""

    copy_requested = Signal(int)
    regenerate_requested = Signal(int)
    edit_requested = Signal(int)
    retry_requested = Signal(int)
    citation_clicked = Signal(dict)
    version_requested = Signal(int, int)  # seq of the fork, version to show (0-based)

    def __init__(self, message: Message, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.message = message
        self.message_id = message.id
        self.role = message.role
        self.setObjectName("userMessage" if message.role == "user" else "assistantMessage")
        self.setAccessibleName("Your message" if message.role == "user" else "Assistant's reply")
        lay = QVBoxLayout(self)
        margin = 0 if message.role == "user" else theme.SPACE_XS
        lay.setContentsMargins(margin, margin, margin, margin)
        lay.setSpacing(6)
        self.thinking: ThinkingPanel | None = None
        self.tool_cards: dict[str, ToolCard] = {}
        self._content_text = ""
        self._thinking_started: float | None = None
        if message.role == "user":
            # A bubble as wide as its text (up to the column), on the right.
            self.bubble = QFrame()
            self.bubble.setObjectName("userBubble")
            bl = QVBoxLayout(self.bubble)
            bl.setContentsMargins(theme.SPACE_M + 2, theme.SPACE_S + 2, theme.SPACE_M + 2, theme.SPACE_S + 2)
            self.body = _label(plain_html(message.content))
            self.body.setObjectName("userBody")
            bl.addWidget(self.body)
            row = QHBoxLayout()
            row.setContentsMargins(0, 0, 0, 0)
            row.addSpacing(BUBBLE_INDENT)
            row.addStretch(1)
            row.addWidget(self.bubble, 100)
            lay.addLayout(row)
            self.markdown = None
        else:
            self._tool_box = QVBoxLayout()
            self._tool_box.setSpacing(4)
            self.markdown = MarkdownView()
            lay.addLayout(self._tool_box)
            lay.addWidget(self.markdown)
            self.body = None
        self.citations_row = QWidget()
        self._citations_lay = QHBoxLayout(self.citations_row)
        self._citations_lay.setContentsMargins(0, 0, 0, 0)
        self._citations_lay.setSpacing(6)
        self.citations_row.setVisible(False)
        self.citations_row.setMinimumWidth(1)
        self.citation_buttons: list[QToolButton] = []
        lay.addWidget(self.citations_row)
        self.error_row = QWidget()
        er = QHBoxLayout(self.error_row)
        er.setContentsMargins(0, 0, 0, 0)
        self.error_label = _label("", rich=False)
        self.error_label.setObjectName("errorLabel")
        self.retry_button = QPushButton("Retry")
        self.retry_button.setAccessibleName("Retry this reply")
        self.retry_button.clicked.connect(lambda: self.retry_requested.emit(self.message_id))
        er.addWidget(self.error_label, 1)
        er.addWidget(self.retry_button)
        self.error_row.setVisible(False)
        lay.addWidget(self.error_row)
        # footer: stats, versions, actions (shown on hover; they keep their place when hidden)
        foot = QHBoxLayout()
        foot.setContentsMargins(0, 0, 0, 0)
        foot.setSpacing(2)
        self.footer = QLabel("")
        self.footer.setMinimumWidth(1)  # clipped in a very narrow window, never widening the message
        self.footer.setObjectName("messageFooter")
        self.footer.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.versions_row = QWidget()
        vr = QHBoxLayout(self.versions_row)
        vr.setContentsMargins(0, 0, 0, 0)
        vr.setSpacing(0)
        self.prev_version_button = self._icon_button("chevron-left", "Previous version")
        self.next_version_button = self._icon_button("chevron-right", "Next version")
        self.version_label = QLabel("")
        self.version_label.setObjectName("versionLabel")
        self.version_label.setAccessibleName("Version")
        vr.addWidget(self.prev_version_button)
        vr.addWidget(self.version_label)
        vr.addWidget(self.next_version_button)
        self.versions_row.setVisible(False)
        self.prev_version_button.clicked.connect(lambda: self._flip(-1))
        self.next_version_button.clicked.connect(lambda: self._flip(+1))
        self.version: tuple[int, int, int] | None = None  # (seq, active, total)
        self.copy_button = self._icon_button("copy", "Copy message")
        self.copy_button.clicked.connect(self._copy)
        self.actions: list[QToolButton] = [self.copy_button]
        if message.role == "user":
            self.edit_button = self._icon_button("edit", "Edit and resend")
            self.edit_button.clicked.connect(lambda: self.edit_requested.emit(self.message_id))
            self.actions.append(self.edit_button)
            foot.addStretch(1)
            foot.addWidget(self.footer)
            foot.addWidget(self.versions_row)
            for b in self.actions:
                foot.addWidget(b)
        else:
            self.regen_button = self._icon_button("regenerate", "Regenerate reply")
            self.regen_button.clicked.connect(lambda: self.regenerate_requested.emit(self.message_id))
            self.actions.append(self.regen_button)
            foot.addWidget(self.versions_row)
            for b in self.actions:
                foot.addWidget(b)
            foot.addStretch(1)
            foot.addWidget(self.footer)
        for b in self.actions:
            policy = b.sizePolicy()
            policy.setRetainSizeWhenHidden(True)
            b.setSizePolicy(policy)
        self._pinned = False  # the newest reply keeps its actions in view
        lay.addLayout(foot)
        theme.notifier().changed.connect(self._retint)
        self.set_message(message)

    # ---- content ---------------------------------------------------------

    def set_message(self, m: Message) -> None:
        self.message = m
        if m.role == "user":
            assert self.body is not None
            self.body.setText(plain_html(m.content))
            # As wide as the text's longest line (then it wraps); the width does not depend
            # on the view's, so the height for any width stays exact.
            doc = QTextDocument()
            doc.setDefaultFont(self.body.font())
            doc.setHtml(plain_html(m.content))
            margins = self.bubble.contentsMargins()
            self.bubble.setMaximumWidth(int(doc.idealWidth()) + margins.left() + margins.right() + 16)
        else:
            if m.thinking:
                panel = self._ensure_thinking()
                panel.set_text(m.thinking)
                if m.status != "streaming":
                    panel.finish(m.stats.get("thinking_s") if m.stats else None)
            self._content_text = m.content
            assert self.markdown is not None
            self.markdown.set_markdown(m.content)
        self.set_status(m.status, m.error, m.stats)
        if m.role == "assistant" and m.stats and m.stats.get("citations") and m.status != "streaming":
            self.set_citations(m.stats["citations"])

    def _ensure_thinking(self) -> ThinkingPanel:
        if self.thinking is None:
            self.thinking = ThinkingPanel()
            lay = self.layout()
            assert isinstance(lay, QVBoxLayout)
            lay.insertWidget(0, self.thinking)
        return self.thinking

    def append(self, channel: str, text: str) -> None:
        if channel == "analysis":
            if self._thinking_started is None:
                self._thinking_started = time.monotonic()
            self._ensure_thinking().append(text)
            return
        if self.thinking is not None and self.thinking.seconds is None:
            self.thinking.finish()  # the answer started: collapse the thinking
        self._content_text += text
        assert self.markdown is not None
        self.markdown.set_markdown(self._content_text)

    @property
    def content_text(self) -> str:
        return self._content_text if self.role != "user" else self.message.content

    def add_tool_event(self, call_id: str, name: str, arguments: str, result: str | None, ok: bool) -> None:
        card = self.tool_cards.get(call_id)
        if card is None:
            card = ToolCard(name, arguments)
            self.tool_cards[call_id] = card
            self._tool_box.addWidget(card)
        if result is not None:
            card.set_result(result, ok)

    def set_citations(self, citations: list[dict[str, Any]]) -> None:
        """Chips like "report.pdf, p. 12" under the answer; a click opens the passage."""
        for b in self.citation_buttons:
            b.deleteLater()
        self.citation_buttons = []
        seen: set[tuple[Any, Any]] = set()
        for c in citations:
            key = (c.get("file"), c.get("page"))
            if key in seen:
                continue
            seen.add(key)
            label = str(c.get("file"))
            if c.get("page"):
                label += f", p. {c['page']}"
            b = QToolButton()
            b.setObjectName("citationChip")
            b.setText(label)
            b.setToolTip((c.get("text") or "")[:300])
            b.setAccessibleName(f"Open citation {label}")
            b.clicked.connect(lambda _=False, c=c: self.citation_clicked.emit(dict(c)))
            self._citations_lay.addWidget(b)
            self.citation_buttons.append(b)
        self._citations_lay.addStretch(1)
        self.citations_row.setVisible(bool(self.citation_buttons))

    def set_status(self, status: str, error: str | None = None, stats: dict[str, Any] | None = None) -> None:
        parts = []
        if stats:
            if stats.get("gen_tok_per_s"):
                parts.append(f"{stats['gen_tok_per_s']:.1f} tok/s")
            if stats.get("completion_tokens"):
                parts.append(f"{stats['completion_tokens']} tokens")
            if stats.get("total_s"):
                parts.append(f"{stats['total_s']:.1f} s")
        if status == "stopped":
            parts.append("Stopped")
        elif status == "interrupted":
            parts.append("Interrupted")
        self.footer.setText(" · ".join(parts))
        self.error_row.setVisible(status == "error")
        self.error_label.setText(error or "")
        if status != "streaming" and self.thinking is not None and self.thinking.seconds is None:
            self.thinking.finish()
        self._show_actions(self._pinned or self.underMouse())

    def _copy(self) -> None:
        QGuiApplication.clipboard().setText(self.content_text)
        self.copy_requested.emit(self.message_id)
        self.copy_button.setToolTip("Copied")

    # ---- hover actions and versions ------------------------------------

    def _icon_button(self, name: str, text: str) -> QToolButton:
        b = QToolButton()
        b.setObjectName("iconButton")
        b.setText(text)
        b.setToolTip(text)
        b.setAccessibleName(text)
        b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        b.setIconSize(QSize(16, 16))
        b.setIcon(icon(name, theme.current().muted))
        b.setProperty("iconName", name)
        b.setAutoRaise(True)
        return b

    def _retint(self, t: theme.Tokens) -> None:
        for b in (*self.actions, self.prev_version_button, self.next_version_button):
            b.setIcon(icon(str(b.property("iconName")), t.muted))
        for card in self.tool_cards.values():
            card.header.setIcon(icon("python" if card.name == "python" else "tool", t.muted))

    def set_pinned(self, pinned: bool) -> None:
        """Keep the actions in view (the newest reply) or show them on hover only."""
        self._pinned = pinned
        self._show_actions(pinned or self.underMouse())

    def _show_actions(self, on: bool) -> None:
        streaming = self.message.status == "streaming"
        for b in self.actions:
            b.setVisible(on and not streaming)

    def enterEvent(self, e) -> None:  # noqa: N802, ANN001 - Qt override
        self._show_actions(True)
        super().enterEvent(e)

    def leaveEvent(self, e) -> None:  # noqa: N802, ANN001 - Qt override
        self._show_actions(self._pinned)
        super().leaveEvent(e)

    def set_version(self, seq: int | None, active: int = 0, total: int = 1) -> None:
        """"‹ 2/3 ›" when this message has other versions."""
        self.version = (seq, active, total) if seq is not None and total > 1 else None
        self.versions_row.setVisible(self.version is not None)
        if self.version is not None:
            self.version_label.setText(f"{active + 1}/{total}")
            self.version_label.setAccessibleDescription(f"Version {active + 1} of {total}")
            self.prev_version_button.setEnabled(active > 0)
            self.next_version_button.setEnabled(active + 1 < total)

    def _flip(self, step: int) -> None:
        if self.version is None:
            return
        seq, active, total = self.version
        target = active + step
        if 0 <= target < total:
            self.version_requested.emit(seq, target)
