"""Fusion style with a restrained palette that follows the OS light/dark setting."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

ACCENT = "#d9622b"  # hearth ember


def is_dark(app: QApplication) -> bool:
    try:
        return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark
    except AttributeError:  # Qt < 6.5
        return app.palette().color(QPalette.ColorRole.Window).lightness() < 128


def apply_theme(app: QApplication, theme: str = "system") -> None:
    app.setStyle("Fusion")
    dark = is_dark(app) if theme == "system" else theme == "dark"
    pal = QPalette()
    if dark:
        base, window, text, alt = "#1e1f22", "#26272b", "#e8e6e3", "#2e3035"
    else:
        base, window, text, alt = "#ffffff", "#f6f5f3", "#1f1f1f", "#efeeeb"
    pal.setColor(QPalette.ColorRole.Window, QColor(window))
    pal.setColor(QPalette.ColorRole.Base, QColor(base))
    pal.setColor(QPalette.ColorRole.AlternateBase, QColor(alt))
    pal.setColor(QPalette.ColorRole.Text, QColor(text))
    pal.setColor(QPalette.ColorRole.WindowText, QColor(text))
    pal.setColor(QPalette.ColorRole.ButtonText, QColor(text))
    pal.setColor(QPalette.ColorRole.Button, QColor(alt))
    pal.setColor(QPalette.ColorRole.Highlight, QColor(ACCENT))
    pal.setColor(QPalette.ColorRole.HighlightedText, QColor("#ffffff"))
    pal.setColor(QPalette.ColorRole.ToolTipBase, QColor(base))
    pal.setColor(QPalette.ColorRole.ToolTipText, QColor(text))
    app.setPalette(pal)
    bubble = "#2f3237" if dark else "#efece7"
    card = "#2a2c30" if dark else "#f7f6f4"
    muted = "#9a9a9a" if dark else "#6b6b6b"
    app.setStyleSheet(f"""
        QWidget#chatCanvas {{ background: {base}; }}
        QFrame#userMessage {{ background: {bubble}; border-radius: 12px; margin-left: 80px; }}
        QToolButton {{ color: {muted}; }}
        QToolButton#attachButton {{ font-size: 16px; font-weight: bold; padding: 2px 8px; }}
        QFrame#assistantMessage {{ background: transparent; }}
        QFrame#codeBlock {{ background: {card}; border: 1px solid {alt}; border-radius: 8px; }}
        QFrame#toolCard {{ background: {card}; border: 1px solid {alt}; border-radius: 8px; }}
        QLabel#codeLang, QLabel#messageFooter, QLabel#contextMeter {{ color: {muted}; font-size: 11px; }}
        QLabel#thinkingBody {{ color: {muted}; }}
        QToolButton#thinkingToggle {{ color: {muted}; border: none; }}
        QToolButton#citationChip {{ background: {card}; border: 1px solid {alt}; border-radius: 10px;
                                     padding: 2px 8px; color: {text}; }}
        QLabel#errorLabel {{ color: #c0392b; }}
        QLabel#editBanner {{ background: {card}; padding: 4px 16px; }}
        QLabel#emptyState {{ color: {muted}; padding: 40px; }}
        QPushButton#sendButton {{ background: {ACCENT}; color: white; border-radius: 6px; padding: 6px 14px; }}
        QWidget#header {{ border-bottom: 1px solid {alt}; }}
        QWidget#sidebar {{ background: {window}; }}
        QListView {{ border: none; background: {window}; }}
        QListView::item {{ padding: 5px 4px; }}
    """)
