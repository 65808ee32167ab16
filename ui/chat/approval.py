"""Approval of MCP calls in the chat: the tool card shows the arguments and Allow once / Always / Deny.

The turn runs on a worker thread; ``ApprovalBroker`` is the registry's approver there:
it posts the question to the GUI thread with a signal and waits on a threading.Event
until a button answers (or Stop / quit cancels). The GUI thread never waits.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from PySide6.QtCore import QObject, QThread, QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.harmony.tools import ApprovalRequest, Decision

log = logging.getLogger(__name__)

CARD_WAIT_MS = 400  # the card's event may reach the GUI a frame after the question does


class ApprovalTicket:
    """One question: answered once, from the GUI thread (or cancelled)."""

    def __init__(self, request: ApprovalRequest) -> None:
        self.request = request
        self.decision: Decision | None = None
        self._done = threading.Event()

    def answer(self, decision: Decision) -> None:
        if self.decision is None:
            self.decision = decision
            self._done.set()

    @property
    def answered(self) -> bool:
        return self._done.is_set()

    def wait(self) -> Decision:
        self._done.wait()
        return self.decision or "deny"


class ApprovalBroker(QObject):
    """The registry's approver for the window (callable from the turn's worker thread)."""

    requested = Signal(object)  # ApprovalTicket
    settled = Signal(object)  # ApprovalTicket, once answered or cancelled

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pending: list[ApprovalTicket] = []
        self._lock = threading.Lock()

    def __call__(self, request: ApprovalRequest) -> Decision:
        if QThread.currentThread() is self.thread():
            # Waiting here would freeze the window; a call made on the GUI thread is refused.
            log.warning("approval for %s asked on the GUI thread; refused", request.name)
            return "deny"
        ticket = ApprovalTicket(request)
        with self._lock:
            self._pending.append(ticket)
        self.requested.emit(ticket)
        decision = ticket.wait()
        with self._lock:
            if ticket in self._pending:
                self._pending.remove(ticket)
        self.settled.emit(ticket)
        return decision

    def pending(self) -> list[ApprovalTicket]:
        with self._lock:
            return list(self._pending)

    def cancel_all(self) -> None:
        """Stop or quit: every open question is answered "deny" (the turn then ends)."""
        for ticket in self.pending():
            ticket.answer("deny")


class ApprovalPanel(QFrame):
    """The arguments and the three choices, inside a tool card."""

    decided = Signal(str)

    def __init__(self, ticket: ApprovalTicket, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ticket = ticket
        self.setObjectName("approvalPanel")
        req = ticket.request
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 4, 0, 4)
        self.title = QLabel(f"Run {req.title}? It acts outside Hearth.")
        self.title.setWordWrap(True)
        lay.addWidget(self.title)
        self.arguments = QLabel(json.dumps(req.arguments, indent=2, ensure_ascii=False))
        self.arguments.setObjectName("approvalArguments")
        self.arguments.setWordWrap(True)
        self.arguments.setAccessibleName("Arguments of the tool call")
        lay.addWidget(self.arguments)
        row = QHBoxLayout()
        self.allow_once = QPushButton("Allow once")
        self.allow_always = QPushButton("Always allow this tool")
        self.deny = QPushButton("Deny")
        for button, decision in ((self.allow_once, "once"), (self.allow_always, "always"), (self.deny, "deny")):
            button.clicked.connect(lambda _=False, d=decision: self._on_choice(d))
            row.addWidget(button)
        row.addStretch(1)
        lay.addLayout(row)
        self.allow_once.setDefault(True)

    def _on_choice(self, decision: str) -> None:
        self.ticket.answer(decision)  # type: ignore[arg-type]
        self.settle()
        self.decided.emit(decision)

    def settle(self) -> None:
        """Answered (here, by Stop, or elsewhere): the buttons go, a line says what happened."""
        shown = {"once": "Allowed once.", "always": "Always allowed.", "deny": "Denied."}
        self.title.setText(shown.get(self.ticket.decision or "deny", "Denied."))
        for b in (self.allow_once, self.allow_always, self.deny):
            b.setVisible(False)


class ApprovalPresenter(QObject):
    """Puts each question on its tool card in the chat (GUI thread only)."""

    def __init__(self, broker: ApprovalBroker, chat_view: Any, controller: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.broker = broker
        self.chat_view = chat_view
        self.panels: dict[ApprovalTicket, ApprovalPanel] = {}
        broker.requested.connect(self._on_broker_requested)
        broker.settled.connect(self._on_broker_settled)
        controller.tool_event.connect(self._on_controller_tool_event)
        controller.stopping.connect(broker.cancel_all)

    def _find_card(self, name: str) -> Any:
        used = {p.parentWidget() for p in self.panels.values()}
        for widget in reversed(list(self.chat_view.widgets.values())):
            for card in reversed(list(getattr(widget, "tool_cards", {}).values())):
                if card.name == name and card.result is None and card not in used:
                    return card
        return None

    def _attach(self, ticket: ApprovalTicket) -> bool:
        if ticket in self.panels or ticket.answered:
            return True
        card = self._find_card(ticket.request.name)
        if card is None:
            return False
        panel = ApprovalPanel(ticket, card)
        card.layout().addWidget(panel)
        self.panels[ticket] = panel
        panel.allow_once.setFocus()
        return True

    def _on_broker_requested(self, ticket: ApprovalTicket) -> None:
        if not self._attach(ticket):
            QTimer.singleShot(CARD_WAIT_MS, lambda: self._fallback(ticket))

    def _on_controller_tool_event(self, _ev: Any) -> None:
        for ticket in self.broker.pending():
            self._attach(ticket)

    def _fallback(self, ticket: ApprovalTicket) -> None:
        """No card showed up (a view that hides tool cards): ask under the newest reply instead."""
        if self._attach(ticket):
            return
        widgets = list(self.chat_view.widgets.values())
        host = widgets[-1] if widgets else self.chat_view
        panel = ApprovalPanel(ticket, host)
        host.layout().addWidget(panel)
        self.panels[ticket] = panel

    def _on_broker_settled(self, ticket: ApprovalTicket) -> None:
        panel = self.panels.pop(ticket, None)
        if panel is not None:
            panel.settle()
