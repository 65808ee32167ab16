"""Streaming parser for what gpt-oss generates after the prompt's ``<|start|>assistant``.

llama.cpp hands back text with the harmony special tokens visible (``<|channel|>``,
``<|message|>``, ...). The parser turns it into typed events as it streams: content
goes out at once (only a possible special-token prefix at the very end is held
back), headers are buffered until complete. It never raises and never drops the
model's words: malformed output (garbled channel names, a missing ``<|message|>``
or ``<|end|>``, text without any header) is logged and the text is delivered in the
most sensible place, usually the final answer.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

CHANNELS = ("analysis", "commentary", "final")

SPECIAL_TOKENS = (
    "<|start|>", "<|end|>", "<|message|>", "<|channel|>", "<|constrain|>",
    "<|return|>", "<|call|>", "<|startoftext|>", "<|endoftext|>",
)
_SPECIALS = frozenset(SPECIAL_TOKENS)
_SPECIAL_PREFIXES = frozenset(tok[:k] for tok in SPECIAL_TOKENS for k in range(1, len(tok)))
_LONGEST_SPECIAL = max(map(len, SPECIAL_TOKENS))
# Message terminators: inside a header they end the message without any content.
_TERMINATORS = frozenset({"<|end|>", "<|return|>", "<|call|>", "<|start|>", "<|startoftext|>", "<|endoftext|>"})

# A header longer than this (or with a line break) is not a header: the text is content.
MAX_HEADER_CHARS = 200

_PUNCT = "?!.,:;*#~"
_ROLES = ("assistant", "user", "system", "developer", "tool")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_NAME = r"[A-Za-z0-9_.\-]+"
# Content types after the recipient: "json" for functions, "code" for the python built-in
# (``<|channel|>analysis to=python code<|message|>``).
_CONTENT_TYPES = ("json", "code")
_CT = "|".join(_CONTENT_TYPES)
_TAIL = rf"(?: *to=(?P<to>{_NAME}))?(?: +(?P<ct>{_CT}))?"
# What a header region consumes; anything after it (when the header breaks off) is content.
_CONSUME = {
    "pre": re.compile(rf"(?:\s*to=(?P<to>{_NAME}))?(?: +(?P<ct>{_CT}))?"),
    "role": re.compile(rf"(?P<role>{'|'.join(_ROLES)}|functions\.{_NAME})?{_TAIL}"),
    "channel": re.compile(rf"(?P<word>(?:{'|'.join(CHANNELS)})[{re.escape(_PUNCT)}]*|[{re.escape(_PUNCT)}]+)?{_TAIL}"),
    "constrain": re.compile(r" *(?P<ct>[A-Za-z0-9_\-]+)?"),
}
_CONSTRAIN_OK = re.compile(r" *[A-Za-z0-9_\-]{0,32} *")


# ---- events ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageStart:
    role: str
    channel: str
    recipient: str | None = None
    constrain: str | None = None


@dataclass(frozen=True, slots=True)
class ContentDelta:
    channel: str
    text: str
    recipient: str | None = None


@dataclass(frozen=True, slots=True)
class MessageEnd:
    channel: str
    recipient: str | None = None


@dataclass(frozen=True, slots=True)
class ToolCall:
    recipient: str  # e.g. "functions.get_weather"
    name: str  # the recipient without "functions."
    arguments: str  # raw text, normally JSON


@dataclass(frozen=True, slots=True)
class Return:
    """The model ended its turn with ``<|return|>``."""


Event = MessageStart | ContentDelta | MessageEnd | ToolCall | Return


# ---- header validity: could this text still become a proper header? ------------------


def _word_ok(word: str, known: tuple[str, ...]) -> bool:
    if not word or any(k.startswith(word) for k in known):
        return True
    for k in known:
        if word.startswith(k):
            return all(c in _PUNCT for c in word[len(k):])
    return len(word) <= 8 and all(c in _PUNCT for c in word)


def _word_complete(word: str, known: tuple[str, ...]) -> bool:
    return word in known or (bool(word) and _word_ok(word, known) and word[-1] in _PUNCT)


def _tail_ok(parts: list[str]) -> bool:
    """The words after a role or channel: ``to=NAME`` and a content type, once each."""
    seen_to = seen_ct = False
    last = len(parts) - 1
    for k, p in enumerate(parts):
        if not p:
            continue
        if p.startswith("to="):
            name = p[3:]
            if seen_to or seen_ct or not all(c in _NAME_CHARS for c in name) or (k < last and not name):
                return False
            seen_to = True
        elif p in _CONTENT_TYPES or (k == last and any(ct.startswith(p) for ct in _CONTENT_TYPES)):
            if seen_ct or (k < last and p not in _CONTENT_TYPES):
                return False
            seen_ct = True
        elif not (k == last and "to=".startswith(p)):
            return False
    return True


def _region_ok(kind: str, text: str) -> bool:
    if kind == "constrain":
        return _CONSTRAIN_OK.fullmatch(text) is not None
    if kind == "pre":
        body = text.lstrip()
        if "\n" in body or "\r" in body or "\t" in body:
            return False
        return _tail_ok(body.split(" "))
    if "\n" in text or "\r" in text or "\t" in text:
        return False
    parts = text.split(" ")
    word = parts[0]
    if kind == "role":
        ok = _word_ok(word, _ROLES) or word.startswith("functions.") or "functions.".startswith(word)
        complete = word in _ROLES or word.startswith("functions.")
        ok = ok and all(c in _NAME_CHARS for c in word)
    else:
        ok = _word_ok(word, CHANNELS)
        complete = _word_complete(word, CHANNELS) or not word
    if not ok or (len(parts) > 1 and not complete):
        return False
    return _tail_ok(parts[1:])


# ---- the parser -------------------------------------------------------------------------


@dataclass
class _Header:
    explicit: bool  # after <|start|>: the role is written out
    regions: list[list[str]] = field(default_factory=list)  # [kind, text]
    size: int = 0

    def __post_init__(self) -> None:
        if not self.regions:
            self.regions.append(["role" if self.explicit else "pre", ""])


class HarmonyStreamParser:
    """Feed it generated text in pieces of any size; it returns events as they become certain.

    ``tool_names``: the functions offered to the model, if known; used to repair the
    "glued json" header (``to=functions.NAMEjson``) that gpt-oss sometimes writes.
    """

    def __init__(self, tool_names: Iterable[str] | None = None) -> None:
        self._tool_names = frozenset(tool_names or ())
        self._reset()

    def _reset(self) -> None:
        self._pending = ""  # a possible special-token prefix held back
        self._header: _Header | None = _Header(explicit=False)
        self._role = "assistant"
        self._channel = "final"
        self._recipient: str | None = None
        self._args: list[str] = []
        self._out: list[Event] = []

    # -- public ------------------------------------------------------------------

    def feed(self, text: str) -> list[Event]:
        """Events that ``text`` completes; content is never held back longer than needed."""
        if self._header is None and not self._pending and "<" not in text:
            # The common case: a piece of message content.
            if not text:
                return []
            if self._recipient is not None:
                self._args.append(text)
            return [ContentDelta(self._channel, text, self._recipient)]
        s, self._pending = self._pending + text, ""
        try:
            self._process(s, final=False)
        except Exception:  # noqa: BLE001 - a parser bug must not lose the user's answer
            log.exception("harmony parser failed; passing the text through as the answer")
            self._out.append(ContentDelta(self._channel, text, self._recipient))
            self._pending = ""
        out, self._out = self._out, []
        return out

    def finish(self) -> list[Event]:
        """The end of the generation: flush what is held and close the open message.

        The parser is then ready for a new generation.
        """
        try:
            pending, self._pending = self._pending, ""
            self._process(pending, final=True)
            if self._header is not None:
                self._header_ends(terminator=None)
            else:
                self._end_message()
        except Exception:  # noqa: BLE001
            log.exception("harmony parser failed while finishing")
        out = self._out
        self._reset()
        return out

    # -- the machine -----------------------------------------------------------------

    def _process(self, s: str, final: bool) -> None:
        i, n = 0, len(s)
        while i < n:
            j = s.find("<", i)
            if j < 0:
                j = n
            if j > i:
                i = self._text(s, i, j)
                if i < j:
                    continue  # a header broke off at i: the rest is content
            if j >= n:
                break
            k = s.find("|>", j + 2, j + _LONGEST_SPECIAL)
            tok = s[j:k + 2] if k >= 0 else ""
            if tok in _SPECIALS:
                self._special(tok)
                i = j + len(tok)
                continue
            if not final and s[j:] in _SPECIAL_PREFIXES:
                self._pending = s[j:]
                return
            # A lone "<": text. (If it breaks a header, the next round emits it as content.)
            i = self._text(s, j, j + 1)

    def _text(self, s: str, i: int, j: int) -> int:
        """Plain text s[i:j]; returns how far it got (less than j when a header broke off)."""
        h = self._header
        if h is None:
            self._content(s[i:j])
            return j
        region = h.regions[-1]
        piece = s[i:j]
        if h.size + len(piece) <= MAX_HEADER_CHARS and _region_ok(region[0], region[1] + piece):
            region[1] += piece
            h.size += len(piece)
            return j
        # Find the character that breaks the header; the header ends just before it.
        base, used = region[1], 0
        for m in range(1, len(piece) + 1):
            if h.size + m > MAX_HEADER_CHARS or not _region_ok(region[0], base + piece[:m]):
                used = m - 1
                break
        region[1] = base + piece[:used]
        h.size += used
        self._header_breaks()
        return i + used

    def _special(self, tok: str) -> None:
        h = self._header
        if h is not None:
            if tok == "<|message|>":
                self._header_complete()
            elif tok == "<|channel|>":
                h.regions.append(["channel", ""])
            elif tok == "<|constrain|>":
                h.regions.append(["constrain", ""])
            else:
                self._header_ends(terminator=tok)
            return
        if tok in ("<|end|>", "<|call|>", "<|endoftext|>"):
            self._end_message()
        elif tok == "<|return|>":
            self._end_message()
            self._out.append(Return())
        elif tok == "<|start|>":
            log.warning("harmony: a message was not closed with <|end|> before <|start|>")
            self._end_message()
            self._header = _Header(explicit=True)
        elif tok == "<|channel|>":
            log.warning("harmony: a new channel began without <|end|><|start|>")
            self._end_message()
            self._header = _Header(explicit=False, regions=[["pre", ""], ["channel", ""]])
        else:
            # <|message|>, <|constrain|>, <|startoftext|> inside content mean nothing here.
            log.warning("harmony: stray %s inside a message; kept as text", tok)
            self._content(tok)

    # -- content ----------------------------------------------------------------------

    def _content(self, text: str) -> None:
        if not text:
            return
        if self._recipient is not None:
            self._args.append(text)
        out = self._out
        if out and isinstance(out[-1], ContentDelta):
            last = out[-1]
            out[-1] = ContentDelta(last.channel, last.text + text, last.recipient)
        else:
            out.append(ContentDelta(self._channel, text, self._recipient))

    def _end_message(self) -> None:
        self._out.append(MessageEnd(self._channel, self._recipient))
        if self._recipient is not None:
            name = self._recipient
            if name.startswith("functions."):
                name = name[len("functions."):]
            self._out.append(ToolCall(self._recipient, name, "".join(self._args)))
        self._args = []
        self._recipient = None
        self._header = _Header(explicit=False)

    # -- headers -----------------------------------------------------------------------

    def _parse_header(self) -> tuple[str, str, str | None, str | None, str]:
        """(role, channel, recipient, constrain, leftover text of the last region)."""
        h = self._header
        assert h is not None
        role, word, recipients, constrain, leftover = "assistant", None, [], None, ""
        for idx, (kind, text) in enumerate(h.regions):
            m = _CONSUME[kind].match(text)
            assert m is not None  # every pattern can match the empty string
            groups = m.groupdict()
            if groups.get("role"):
                role = groups["role"]
            if groups.get("word"):
                word = groups["word"]
            elif kind == "channel":
                word = None  # a later channel replaces an earlier one ("stray" commentary)
            if groups.get("to"):
                recipients.append(groups["to"])
            if groups.get("ct"):
                constrain = groups["ct"]
            if idx == len(h.regions) - 1:
                leftover = text[m.end():]
        recipient = next((r for r in recipients if r != "assistant"), None)
        if word is None:
            channel = "commentary" if recipient else "final"
            if any(kind == "channel" for kind, _ in h.regions):
                log.warning("harmony: unrecognised channel in header %r; treating it as %s",
                            self._header_text(), channel)
        else:
            channel = word.rstrip(_PUNCT)
            if channel not in CHANNELS:
                channel = "commentary" if recipient else "final"
            if channel != word:
                log.warning("harmony: garbled channel %r read as %s", word, channel)
        if recipient and constrain is None and recipient.endswith("json") and self._tool_names:
            bare = recipient[:-4]
            if bare.startswith("functions.") and bare[len("functions."):] in self._tool_names:
                recipient, constrain = bare, "json"
        return role, channel, recipient, constrain, leftover

    def _header_text(self) -> str:
        h = self._header
        assert h is not None
        marks = {"pre": "", "role": "<|start|>", "channel": "<|channel|>", "constrain": "<|constrain|>"}
        return "".join(marks[k] + t for k, t in h.regions)

    def _open(self, role: str, channel: str, recipient: str | None, constrain: str | None) -> None:
        self._header = None
        self._role, self._channel, self._recipient = role, channel, recipient
        self._args = []
        self._out.append(MessageStart(role, channel, recipient, constrain))

    def _header_complete(self) -> None:
        role, channel, recipient, constrain, leftover = self._parse_header()
        if leftover:
            log.warning("harmony: ignoring %r in message header", leftover)
        h = self._header
        if h is not None and not any(kind == "channel" for kind, _ in h.regions):
            log.warning("harmony: message header %r has no channel; treating it as %s",
                        self._header_text(), channel)
        self._open(role, channel, recipient, constrain)

    def _header_breaks(self) -> None:
        """The header cannot continue: what it holds so far is the header, the rest content."""
        h = self._header
        assert h is not None
        role, channel, recipient, constrain, leftover = self._parse_header()
        if len(h.regions) == 1 and leftover == h.regions[0][1]:
            log.warning("harmony: text without a message header; showing it as the answer")
        else:
            log.warning("harmony: malformed header %r (no <|message|>); the rest is content",
                        self._header_text())
        self._open(role, channel, recipient, constrain)
        self._content(leftover)

    def _header_ends(self, terminator: str | None) -> None:
        """A terminator (or the end of the stream) arrived inside a header."""
        h = self._header
        assert h is not None
        role, channel, recipient, constrain, leftover = self._parse_header()
        if len(h.regions) > 1 or recipient is not None or leftover.strip():
            log.warning("harmony: message header %r ended without <|message|>", self._header_text())
            self._open(role, channel, recipient, constrain)
            self._content(leftover)
            if terminator is None and recipient is not None:
                # The stream stopped inside a tool-call header: no call was made.
                self._recipient = None
            self._end_message()
        else:
            # "<|start|>assistant" with nothing after it, or blank lines between messages.
            self._header = _Header(explicit=False)
        if terminator == "<|return|>":
            self._out.append(Return())
        elif terminator == "<|start|>":
            self._header = _Header(explicit=True)
