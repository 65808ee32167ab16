"""Hearth's look: a few design tokens (spacing, radii, colours for light and dark, one
accent) and the one stylesheet built from them. Fusion style; follows the OS scheme."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QWidget

from ui.widgets.icons import assets_dir

ACCENT = "#d9622b"  # hearth ember

# spacing scale (px) and corner radii, used by layouts and the stylesheet alike
SPACE_XS, SPACE_S, SPACE_M, SPACE_L, SPACE_XL = 4, 8, 12, 16, 24
RADIUS_S, RADIUS_M, RADIUS_L = 6, 10, 14
COLUMN_MAX = 760  # the centred message column
LABEL_WIDTH = 180  # form labels on every page line up at one x position


@dataclass(frozen=True)
class Tokens:
    dark: bool
    bg: str  # chat canvas, inputs
    window: str  # sidebar, pages
    surface: str  # user bubble, cards, code
    border: str
    text: str
    muted: str
    accent: str
    accent_hover: str
    on_accent: str
    danger: str
    warning: str
    success: str
    selection: str


LIGHT = Tokens(dark=False, bg="#ffffff", window="#f7f6f3", surface="#f1efeb", border="#e3dfd8", text="#1f1f1f",
               muted="#6b6763", accent=ACCENT, accent_hover="#c4541f", on_accent="#ffffff", danger="#c0392b",
               warning="#b7791f", success="#2f855a", selection="#f6dccd")
DARK = Tokens(dark=True, bg="#1d1e21", window="#25262a", surface="#2e3035", border="#3a3c42", text="#e8e6e3",
              muted="#a09c97", accent="#e4733c", accent_hover="#f08550", on_accent="#ffffff", danger="#ef6b5b",
              warning="#e0a640", success="#5cc08a", selection="#5a3424")


class _ThemeNotifier(QObject):
    changed = Signal(object)  # Tokens


_notifier: _ThemeNotifier | None = None
_current: Tokens = LIGHT


def notifier() -> _ThemeNotifier:
    """Widgets that paint their own icons listen here to re-tint them."""
    global _notifier
    if _notifier is None:
        _notifier = _ThemeNotifier()
    return _notifier


def current() -> Tokens:
    return _current


def is_dark(app: QApplication) -> bool:
    try:
        return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark
    except AttributeError:  # Qt < 6.5
        return app.palette().color(QPalette.ColorRole.Window).lightness() < 128


def palette(t: Tokens) -> QPalette:
    pal = QPalette()
    roles = {
        QPalette.ColorRole.Window: t.window, QPalette.ColorRole.Base: t.bg, QPalette.ColorRole.AlternateBase: t.surface,
        QPalette.ColorRole.Text: t.text, QPalette.ColorRole.WindowText: t.text, QPalette.ColorRole.ButtonText: t.text,
        QPalette.ColorRole.Button: t.surface, QPalette.ColorRole.Highlight: t.accent,
        QPalette.ColorRole.HighlightedText: t.on_accent, QPalette.ColorRole.ToolTipBase: t.bg,
        QPalette.ColorRole.ToolTipText: t.text, QPalette.ColorRole.PlaceholderText: t.muted,
        QPalette.ColorRole.Link: t.accent, QPalette.ColorRole.Mid: t.border,
    }
    for role, colour in roles.items():
        pal.setColor(role, QColor(colour))
    pal.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor(t.muted))
    pal.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor(t.muted))
    pal.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText, QColor(t.muted))
    return pal


def stylesheet(t: Tokens) -> str:
    s, m, l_ = SPACE_S, SPACE_M, SPACE_L
    return f"""
    QToolTip {{ background: {t.bg}; color: {t.text}; border: 1px solid {t.border}; padding: 4px 6px; }}
    QWidget#chatCanvas, QWidget#chatColumn {{ background: {t.bg}; }}
    QWidget#chatPage {{ background: {t.bg}; }}
    QWidget#header {{ background: {t.bg}; border-bottom: 1px solid {t.border}; }}
    QWidget#sidebar {{ background: {t.window}; border-right: 1px solid {t.border}; }}
    QListView#conversationList {{ border: none; background: {t.window}; outline: 0; }}
    QListView#conversationList::item {{ padding: 6px {s}px; border-radius: {RADIUS_S}px; }}
    QListView#conversationList::item:hover {{ background: {t.surface}; }}
    QListView#conversationList::item:selected {{ background: {t.selection}; color: {t.text}; }}
    QPushButton#navButton {{ text-align: left; border: none; padding: 6px {s}px; border-radius: {RADIUS_S}px;
                             color: {t.text}; background: transparent; }}
    QPushButton#navButton:hover {{ background: {t.surface}; }}
    QPushButton#navButton:checked {{ background: {t.selection}; }}
    QPushButton#newChatButton {{ border: 1px solid {t.border}; border-radius: {RADIUS_S}px; padding: 7px {m}px;
                                 background: {t.bg}; color: {t.text}; text-align: left; }}
    QPushButton#newChatButton:hover {{ border-color: {t.accent}; }}
    QLineEdit, QPlainTextEdit, QTextEdit, QSpinBox, QDoubleSpinBox, QComboBox {{
        border: 1px solid {t.border}; border-radius: {RADIUS_S}px; padding: 4px 6px; background: {t.bg};
        selection-background-color: {t.accent}; selection-color: {t.on_accent}; }}
    QLineEdit:focus, QPlainTextEdit:focus, QSpinBox:focus, QDoubleSpinBox:focus, QComboBox:focus {{
        border-color: {t.accent}; }}
    QFrame#composerBox {{ border: 1px solid {t.border}; border-radius: {RADIUS_L}px; background: {t.bg}; }}
    QPlainTextEdit#composerEdit {{ border: none; background: transparent; padding: 2px 0; }}
    QToolButton#sendButton {{ background: {t.accent}; border: none; border-radius: 16px; }}
    QToolButton#sendButton:hover {{ background: {t.accent_hover}; }}
    QToolButton#sendButton:disabled {{ background: {t.border}; }}
    QToolButton#iconButton, QToolButton#attachButton {{ border: none; border-radius: {RADIUS_S}px; padding: 3px; }}
    QToolButton#iconButton:hover, QToolButton#attachButton:hover {{ background: {t.surface}; }}
    QToolButton {{ color: {t.muted}; }}
    QToolButton#segment {{ border: 1px solid {t.border}; padding: 2px 10px; color: {t.muted}; background: {t.bg};
                           font-size: 11px; }}
    QToolButton#segment:checked {{ background: {t.selection}; color: {t.text}; }}
    QToolButton#segment[position="first"] {{ border-top-left-radius: {RADIUS_S}px;
                                            border-bottom-left-radius: {RADIUS_S}px; }}
    QToolButton#segment[position="last"] {{ border-top-right-radius: {RADIUS_S}px;
                                           border-bottom-right-radius: {RADIUS_S}px; }}
    QFrame#userMessage {{ background: transparent; }}
    QFrame#userBubble {{ background: {t.surface}; border-radius: {RADIUS_L}px; }}
    QFrame#assistantMessage {{ background: transparent; }}
    QFrame#codeBlock {{ background: {t.surface}; border: 1px solid {t.border}; border-radius: {RADIUS_M}px; }}
    QFrame#toolCard {{ background: {t.window}; border: 1px solid {t.border}; border-radius: {RADIUS_M}px; }}
    QToolButton#toolHeader {{ border: none; color: {t.text}; text-align: left; }}
    QLabel#codeLang, QLabel#messageFooter, QLabel#contextMeter, QLabel#versionLabel {{
        color: {t.muted}; font-size: 11px; }}
    QLabel#contextMeter[level="warn"] {{ color: {t.warning}; font-weight: bold; }}
    QLabel#thinkingBody {{ color: {t.muted}; border-left: 2px solid {t.border}; padding-left: {s}px; }}
    QToolButton#thinkingToggle {{ color: {t.muted}; border: none; }}
    QToolButton#citationChip {{ background: {t.surface}; border: 1px solid {t.border}; border-radius: 10px;
                                padding: 2px {s}px; color: {t.text}; }}
    QLabel#errorLabel {{ color: {t.danger}; }}
    QLabel#editBanner {{ background: {t.selection}; padding: 6px {l_}px; }}
    QLabel#emptyState {{ color: {t.muted}; padding: 40px; }}
    QLabel#sectionHeader {{ font-weight: bold; font-size: 15px; }}
    QLabel#muted, QLabel#hint {{ color: {t.muted}; }}
    QPushButton {{ border: 1px solid {t.border}; border-radius: {RADIUS_S}px; padding: 5px {m}px; background: {t.bg}; }}
    QPushButton:hover {{ border-color: {t.accent}; }}
    QPushButton:disabled {{ color: {t.muted}; }}
    QPushButton#primaryButton {{ background: {t.accent}; color: {t.on_accent}; border: none; }}
    QPushButton#primaryButton:hover {{ background: {t.accent_hover}; }}
    QComboBox#modelPicker {{ border: 1px solid {t.border}; border-radius: {RADIUS_S}px; padding: 4px 8px;
                             font-weight: bold; }}
    QLabel#modelState {{ color: {t.muted}; }}
    QLabel#remoteBadge {{ color: {t.warning}; }}
    QStatusBar {{ background: {t.window}; color: {t.muted}; border-top: 1px solid {t.border}; }}
    QStatusBar QLabel {{ color: {t.muted}; padding: 0 {s}px; }}
    QScrollArea {{ border: none; }}
    QScrollBar:vertical {{ background: transparent; width: 10px; margin: 2px; }}
    QScrollBar::handle:vertical {{ background: {t.border}; border-radius: 3px; min-height: 32px; }}
    QScrollBar::handle:vertical:hover {{ background: {t.muted}; }}
    QScrollBar:horizontal {{ background: transparent; height: 10px; margin: 2px; }}
    QScrollBar::handle:horizontal {{ background: {t.border}; border-radius: 3px; min-width: 32px; }}
    QScrollBar::add-line, QScrollBar::sub-line {{ width: 0; height: 0; border: none; background: none; }}
    QScrollBar::add-page, QScrollBar::sub-page {{ background: none; }}
    QComboBox::drop-down {{ border: none; width: 22px; subcontrol-position: center right; }}
    QComboBox::down-arrow {{ image: url("{_arrow(t)}"); width: 12px; height: 12px; }}
    QComboBox QAbstractItemView {{ border: 1px solid {t.border}; background: {t.bg};
                                   selection-background-color: {t.selection}; selection-color: {t.text};
                                   padding: 4px; outline: 0; }}
    QLabel#modelState[state="loaded"] {{ color: {t.success}; }}
    QLabel#modelState[state="failed"] {{ color: {t.danger}; }}
    QGroupBox {{ border: 1px solid {t.border}; border-radius: {RADIUS_M}px; margin-top: 14px; padding: {m}px; }}
    QGroupBox::title {{ subcontrol-origin: margin; left: {m}px; padding: 0 4px; font-weight: bold; }}
    QProgressBar {{ border: 1px solid {t.border}; border-radius: 4px; background: {t.window}; height: 8px;
                    text-align: center; }}
    QProgressBar::chunk {{ background: {t.accent}; border-radius: 3px; }}
    QTabBar::tab {{ padding: 6px {m}px; border: none; color: {t.muted}; }}
    QTabBar::tab:selected {{ color: {t.text}; border-bottom: 2px solid {t.accent}; }}
    QTabWidget::pane {{ border: none; }}
    """


def set_style_property(widget: QWidget, name: str, value: str) -> None:
    """Set a property the stylesheet selects on (``QLabel[level="warn"]``) and restyle the widget."""
    if widget.property(name) != value:
        widget.setProperty(name, value)
        widget.style().unpolish(widget)
        widget.style().polish(widget)


def _arrow(t: Tokens) -> str:
    path = assets_dir() / "icons" / f"combo-arrow-{'dark' if t.dark else 'light'}.svg"
    return path.as_posix()


def apply_theme(app: QApplication, theme: str = "system") -> Tokens:
    global _current
    app.setStyle("Fusion")
    dark = is_dark(app) if theme == "system" else theme == "dark"
    _current = DARK if dark else LIGHT
    app.setPalette(palette(_current))
    app.setStyleSheet(stylesheet(_current))
    notifier().changed.emit(_current)
    return _current
