"""Labels styled by the theme's design tokens (ui/widgets/theme.py stylesheet), not inline HTML or colours."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel

from app.planner import DOES_NOT_FIT, FITS, FITS_SLOWER
from ui.widgets import theme


def page_title(text: str) -> QLabel:
    """A page's heading (the stylesheet's QLabel#sectionHeader)."""
    lab = QLabel(text)
    lab.setObjectName("sectionHeader")
    lab.setAccessibleName(text)
    return lab


def hint_label(text: str) -> QLabel:
    """Muted help text under a field or a section (the stylesheet's QLabel#hint)."""
    lab = QLabel(text)
    lab.setObjectName("hint")
    lab.setWordWrap(True)
    return lab


# verdict -> (badge text, background colour): the fit badge on the Models page, the picker and Hardware
VERDICT_BADGES: dict[str, tuple[str, str]] = {
    FITS: ("Fits", "#2e7d32"),
    FITS_SLOWER: ("Fits, slower", "#b26a00"),
    DOES_NOT_FIT: ("Too large", "#c62828"),
}

# planner verdict -> the theme token that colours its badge
VERDICT_TOKENS = {FITS: "success", FITS_SLOWER: "warning", DOES_NOT_FIT: "danger"}


def verdict_colour(verdict: str, fallback: str) -> str:
    """The current theme's colour for a fit verdict (success / warning / danger)."""
    token = VERDICT_TOKENS.get(verdict)
    return getattr(theme.current(), token) if token else fallback
