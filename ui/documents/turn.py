"""The chat-turn hook: ChatController's ``extra_context_factory`` for attached documents."""

from __future__ import annotations

import logging
from typing import Any

from app.documents.chat_support import DEFAULT_N_CTX, DocumentContext, budget_for_context, make_extra_context
from app.documents.index import DocumentIndex
from app.harmony.tools import ToolRegistry

log = logging.getLogger(__name__)

_MISSING: Any = object()


class _ToolsTap:
    """Wraps ChatController.tools_factory to remember the registry it made last.

    ChatController._make_session calls tools_factory() and then
    extra_context_factory(conversation_id) on the GUI thread, one right after the
    other, so the registry remembered here is the one the new session uses and
    search_documents lands on it. (Needed until the controller passes the
    registry to extra_context_factory itself; then it is bypassed.)
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.last: ToolRegistry | None = None

    def __call__(self) -> ToolRegistry | None:
        self.last = self.inner() if self.inner is not None else None
        return self.last

    def take(self) -> ToolRegistry | None:
        reg, self.last = self.last, None
        return reg


class DocumentTurns:
    """Gives each chat turn its documents: whole when they fit the context, else the
    best passages plus the search_documents tool on the session's registry."""

    def __init__(self, index: DocumentIndex, controller: Any, settings: Any) -> None:
        self.index = index
        self.controller = controller
        self.settings = settings
        self._tap = _ToolsTap(controller.tools_factory)
        self._warned = False

    def install(self) -> None:
        self.controller.tools_factory = self._tap
        self.controller.extra_context_factory = self

    def __call__(self, conversation_id: int, tools: Any = _MISSING) -> DocumentContext:
        """extra_context_factory(conversation_id[, tools]) -> the extra_context callable."""
        ctl = self.controller
        if tools is _MISSING:
            if ctl.tools_factory is self._tap:
                tools = self._tap.take()
            else:
                tools = None
                if not self._warned:
                    self._warned = True
                    log.info("the chat's tools_factory was replaced after documents were installed; long "
                             "documents are still searched per question, but search_documents is not offered")
        info = ctl.model_info or {}
        n_ctx = int(info.get("n_ctx") or self.settings.context_size or DEFAULT_N_CTX)
        return make_extra_context(self.index, conversation_id,
                                  budget_tokens=budget_for_context(n_ctx, self.settings.max_tokens), tools=tools)
