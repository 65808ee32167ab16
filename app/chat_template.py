"""Prompts for models other than gpt-oss: the GGUF's own Jinja chat template.

The template is rendered with placeholder markers in place of message contents,
then split at the markers, so every piece the user (or a document) wrote becomes
a plain-text segment that can never turn into a control token.
"""

from __future__ import annotations

import datetime as _dt
import logging
import re
import uuid
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from app.prompt import Prompt, Segment, merge_segments

log = logging.getLogger(__name__)


def _raise(message: str) -> None:
    raise jinja2.TemplateError(message)


def _env() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, loader=jinja2.BaseLoader())
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: _dt.datetime.now().strftime(fmt)
    return env


def render_chat_template(
    template: str,
    messages: list[dict[str, Any]],
    *,
    bos_token: str = "",
    eos_token: str = "",
    add_generation_prompt: bool = True,
    tools: list[dict[str, Any]] | None = None,
) -> Prompt:
    tag = uuid.uuid4().hex[:12]
    markers: dict[str, str] = {}
    masked = []
    for i, m in enumerate(messages):
        mm = dict(m)
        content = m.get("content") or ""
        marker = f"\u2063H{tag}{i}\u2063"
        markers[marker] = content
        mm["content"] = marker
        masked.append(mm)
    text = _env().from_string(template).render(
        messages=masked, bos_token=bos_token, eos_token=eos_token,
        add_generation_prompt=add_generation_prompt, tools=tools,
    )
    # llama.cpp adds BOS itself when the vocab asks for it; don't double it.
    if bos_token and text.startswith(bos_token):
        text = text[len(bos_token):]
    pattern = re.compile("|".join(re.escape(k) for k in markers)) if markers else None
    segments: list[Segment] = []
    pos = 0
    if pattern is not None:
        for match in pattern.finditer(text):
            segments.append(Segment(text[pos:match.start()], True))
            segments.append(Segment(markers[match.group(0)], False))
            pos = match.end()
    segments.append(Segment(text[pos:], True))
    return merge_segments(segments)


def render_plain(messages: list[dict[str, Any]]) -> Prompt:
    """For base models without a chat template: a simple transcript."""
    names = {"system": "System", "developer": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}
    segments: list[Segment] = []
    for m in messages:
        segments.append(Segment(f"{names.get(m['role'], m['role'])}: ", True))
        segments.append(Segment(str(m.get("content") or ""), False))
        segments.append(Segment("\n\n", True))
    segments.append(Segment("Assistant:", True))
    return merge_segments(segments)
