"""Documents in a chat turn: the ``extra_context`` callable for ChatSession, the
``search_documents`` tool, and the CLI's ``--attach`` handling.

When everything attached fits the context budget it goes in whole; otherwise
the passages that best match the question do, and gpt-oss can search again
with the tool. Document text only ever travels in message contents, which the
renderers tokenize as plain text, so a literal ``<|end|>`` in a file stays text.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from app.documents.extract import expand_paths
from app.documents.index import DocumentIndex, EmbedFn, estimate_tokens
from app.documents.errors import PasswordRequired
from app.documents.models import IngestDone, IngestFailed, Passage
from app.errors import DocumentError
from app.harmony.tools import Tool, ToolError, ToolRegistry

log = logging.getLogger(__name__)

TOOL_NAME = "search_documents"
DEFAULT_K = 8
# Retrieved passages are capped below the budget: more text of lower rank
# dilutes the answer more than it helps.
RETRIEVAL_MAX_TOKENS = 3000
TOOL_DEFAULT_K = 5
TOOL_MAX_K = 10
DEFAULT_N_CTX = 8192
HISTORY_RESERVE_TOKENS = 1500  # system prompt, tool declarations and recent turns

ExtraContext = Callable[[int, str], tuple[list[dict[str, Any]], list[dict[str, Any]]]]


def budget_for_context(n_ctx: int, max_tokens: int) -> int:
    """Tokens the documents may take in a context of ``n_ctx``: room is left for
    the reply and for the conversation itself."""
    reply = min(max_tokens, n_ctx // 4)
    return max(1024, int((n_ctx - reply - HISTORY_RESERVE_TOKENS) * 0.75))


def format_passages(passages: Iterable[Passage]) -> str:
    """Passages as the model (and the tool) sees them: numbered, labelled as cited."""
    out = []
    for i, p in enumerate(passages, start=1):
        head = f"[{i}] {p.label}" + (f" ({p.heading})" if p.heading else "")
        out.append(f"{head}\n{p.text.strip()}")
    return "\n\n".join(out)


class _ToolTarget:
    """What a registry's search_documents tool searches: the context that ran last.

    ChatSession calls extra_context at the start of every reply, so the last
    caller is the conversation being answered when the model calls the tool.
    """

    def __init__(self) -> None:
        self.context: DocumentContext | None = None


_targets: "weakref.WeakKeyDictionary[ToolRegistry, _ToolTarget]" = weakref.WeakKeyDictionary()


class DocumentContext:
    """``extra_context(conversation_id, question) -> (messages, citations)`` for ChatSession."""

    def __init__(self, index: DocumentIndex, *, budget_tokens: int, tools: ToolRegistry | None = None,
                 k: int = DEFAULT_K) -> None:
        self.index = index
        self.budget_tokens = budget_tokens
        self.tools = tools
        self.k = k
        self.conversation_id: int | None = None
        # 'none' | 'whole' | 'retrieval' for the last question (a GUI can show it;
        # whole text is the same every turn, so it can be placed where the prompt
        # cache keeps it).
        self.last_mode = "none"
        # The citations list handed to ChatSession for the running reply; passages
        # the tool finds are appended to it, so they are cited too.
        self._citations: list[dict[str, Any]] = []

    def __call__(self, conversation_id: int, question: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        self.conversation_id = conversation_id
        if self.tools is not None and self.tools in _targets:
            _targets[self.tools].context = self
        atts = self.index.attachments(conversation_id)
        self._citations = []
        if not atts:
            self.last_mode = "none"
            return [], self._citations
        names = ", ".join(a.name for a in atts)
        count = f"{len(atts)} document{'s' if len(atts) != 1 else ''}"
        if self.index.token_estimate(conversation_id) <= self.budget_tokens:
            self.last_mode = "whole"
            hits = self.index.search(conversation_id, question, self.k) or self.index.leading_passages(conversation_id)
            self._citations.extend(p.citation() for p in hits)
            content = (
                f"The user attached {count} to this conversation: {names}. Their full text follows, each "
                "page marked like [report.pdf, p. 12]. Answer from it, and cite the pages you use like "
                "(report.pdf, p. 12).\n\n" + self.index.full_text(conversation_id)
            )
            return [{"role": "user", "content": content}], self._citations
        self.last_mode = "retrieval"
        can_search = self._ensure_tool()
        hits = self.index.search(conversation_id, question, self.k)
        matched = bool(hits)
        if not hits:
            hits = self.index.leading_passages(conversation_id)
        hits = self._fit(hits, min(self.budget_tokens, RETRIEVAL_MAX_TOKENS))
        self._citations.extend(p.citation() for p in hits)
        which = ("the passages that best match the next question, best first" if matched else
                 "no passage matched the next question's words, so here are the beginnings of the documents")
        more = f" To look for something else in them, call {TOOL_NAME}." if can_search else ""
        content = (
            f"The user attached {count} to this conversation: {names}. They are too long to include "
            f"whole; below are {which}, each marked like [report.pdf, p. 12]. Answer from them and cite "
            f"the pages you use like (report.pdf, p. 12). If they do not hold the answer, say so.{more}"
            "\n\n" + format_passages(hits)
        )
        return [{"role": "user", "content": content}], self._citations

    @staticmethod
    def _fit(hits: list[Passage], budget: int) -> list[Passage]:
        out: list[Passage] = []
        used = 0
        for p in hits:
            cost = estimate_tokens(p.text) + 16
            if out and used + cost > budget:
                break
            out.append(p)
            used += cost
        return out

    # ---- the search_documents tool --------------------------------------------

    def _ensure_tool(self) -> bool:
        """Offer search_documents on the registry (once per registry). True if offered."""
        if self.tools is None:
            return False
        target = _targets.get(self.tools)
        if target is None:
            if TOOL_NAME in self.tools:
                log.warning("a tool named %s is already registered; documents cannot add theirs", TOOL_NAME)
                return False
            target = _ToolTarget()
            _targets[self.tools] = target
            self.tools.register(Tool(
                name=TOOL_NAME,
                description=("Search the documents the user attached to this conversation. Returns the "
                             "best-matching passages with their file and page, to quote and cite."),
                parameters={
                    "type": "object",
                    "properties": {
                        "query": {"type": "string", "description": "words or a question to look for"},
                        "k": {"type": "integer",
                              "description": f"how many passages to return (1-{TOOL_MAX_K}, "
                                             f"default {TOOL_DEFAULT_K})"},
                    },
                    "required": ["query"],
                    "additionalProperties": False,
                },
                fn=functools.partial(_run_tool, target),
            ))
        target.context = self
        return True

    def search_tool(self, args: dict[str, Any]) -> str:
        query = str(args.get("query") or "").strip()
        if not query:
            raise ToolError("give a query: the words to look for in the documents.")
        try:
            k = int(args.get("k") or TOOL_DEFAULT_K)
        except (TypeError, ValueError) as exc:
            raise ToolError(f"k must be a whole number from 1 to {TOOL_MAX_K}.") from exc
        k = max(1, min(TOOL_MAX_K, k))
        if self.conversation_id is None:
            return "No documents are attached to this conversation."
        hits = self.index.search(self.conversation_id, query, k)
        if not hits:
            return f"No passage in the attached documents matches {query!r}. Try other words."
        seen = {c.get("chunk_id") for c in self._citations}
        self._citations.extend(p.citation() for p in hits if p.chunk_id not in seen)
        return format_passages(hits)


def _run_tool(target: _ToolTarget, args: dict[str, Any]) -> str:
    if target.context is None:
        return "No documents are attached to this conversation."
    return target.context.search_tool(args)


def make_extra_context(index: DocumentIndex, conversation_id: int | None = None, *, budget_tokens: int,
                       tools: ToolRegistry | None = None, k: int = DEFAULT_K) -> DocumentContext:
    """The ``extra_context`` callable for ChatSession (it serves any conversation;
    ``conversation_id`` is accepted for symmetry with prepare_attachments)."""
    ctx = DocumentContext(index, budget_tokens=budget_tokens, tools=tools, k=k)
    ctx.conversation_id = conversation_id
    return ctx


def _stderr(message: str) -> None:
    sys.stderr.write(f"hearth chat: {message}\n")
    sys.stderr.flush()


def parse_passwords(items: Iterable[str]) -> dict[str, str]:
    """``FILE=PASSWORD`` arguments as a dict; ValueError naming the item without ``=`` or a file."""
    out: dict[str, str] = {}
    for item in items:
        file, sep, password = item.partition("=")
        if not sep or not file.strip():
            raise ValueError(f"--password takes FILE=PASSWORD (e.g. --password report.pdf=secret), not {item!r}")
        out[file.strip()] = password
    return out


def password_for(path: str | os.PathLike[str], passwords: dict[str, str]) -> str | None:
    """The password given for ``path``: by the path as given (resolved), else by the file's name."""
    if not passwords:
        return None
    real = os.path.abspath(os.path.expanduser(path))
    for file, password in passwords.items():
        if os.path.abspath(os.path.expanduser(file)) == real:
            return password
    return passwords.get(os.path.basename(real))


def prepare_attachments(ctx: Any, conversation_id: int, files: Iterable[str | os.PathLike[str]],
                        tools: ToolRegistry | None = None, *, budget_tokens: int | None = None,
                        n_ctx: int | None = None, embed_fn: EmbedFn | None = None, embed_model: str | None = None,
                        warn: Callable[[str], None] | None = None,
                        passwords: dict[str, str] | None = None) -> DocumentContext:
    """For ``hearth chat --attach``: add the files (folders are walked) to the
    conversation and return the extra_context callable.

    Each file that cannot be added is reported through ``warn`` (default: a line
    on stderr, for the CLI) and the others go on; if none of them can be added,
    DocumentError says why. ``ctx`` is the AppContext (``.db``, ``.settings``).
    ``passwords`` maps a file (its path as given, or its name) to its password
    (``hearth chat --password FILE=PW``).
    """
    warn = warn or _stderr
    index = DocumentIndex(ctx.db, embed_fn=embed_fn, embed_model=embed_model)
    given = list(files)
    paths, skipped = expand_paths(given)
    if skipped:
        log.info("skipped %d files Hearth cannot read in the attached folders", len(skipped))
    failures: list[str] = []
    added = 0
    for path in paths:
        password = password_for(path, passwords or {})
        for ev in index.ingest(path, conversation_id, password=password):
            if isinstance(ev, IngestFailed):
                message = ev.message
                if isinstance(ev.error, PasswordRequired) and not ev.error.wrong_password:
                    # The GUI asks for it; here the way to give it is an option.
                    name = os.path.basename(path)
                    message = (f"{name} is protected by a password. Give it with --password \"{name}=PASSWORD\" "
                               "(one --password per file).")
                failures.append(message)
            elif isinstance(ev, IngestDone):
                added += 1
                if ev.note:
                    warn(ev.note)
    if given and not added:
        if not paths:
            raise DocumentError("The attached folders hold no files Hearth can read (PDF, Word .docx, text, "
                                "Markdown, HTML, CSV or source code).")
        if len(failures) == 1:
            raise DocumentError(failures[0])
        raise DocumentError("None of the attached files could be added:\n" + "\n".join(failures))
    for message in failures:
        warn(message)
    if budget_tokens is None:
        settings = ctx.settings
        budget_tokens = budget_for_context(n_ctx or settings.context_size or DEFAULT_N_CTX, settings.max_tokens)
    return make_extra_context(index, conversation_id, budget_tokens=budget_tokens, tools=tools)
