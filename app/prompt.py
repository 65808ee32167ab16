"""A prompt as a list of segments that know whether control tokens may appear in them.

llama-cpp-python tokenizes with special tokens enabled, so text typed by a user or
found in a document would turn a literal ``<|end|>`` into a control token. The
renderers therefore keep template text (``special=True``) apart from content
(``special=False``); the engine tokenizes each segment with the matching flag.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Segment:
    text: str
    special: bool  # True: template text, control tokens parsed; False: plain content


Prompt = list[Segment]


def template(text: str) -> Segment:
    return Segment(text, True)


def content(text: str) -> Segment:
    return Segment(text, False)


def prompt_text(segments: Iterable[Segment]) -> str:
    """The exact prompt text, as a person or the official template would write it."""
    return "".join(s.text for s in segments)


def merge_segments(segments: Iterable[Segment]) -> Prompt:
    """Join neighbouring segments of the same kind (fewer tokenizer calls)."""
    out: Prompt = []
    for seg in segments:
        if not seg.text:
            continue
        if out and out[-1].special == seg.special:
            out[-1] = Segment(out[-1].text + seg.text, seg.special)
        else:
            out.append(seg)
    return out
