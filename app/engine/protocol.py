"""Messages between the app and the engine worker process.

Plain picklable dataclasses; the worker imports this module and nothing of Qt.
Requests go app -> worker; events come back worker -> app. A shared one-byte
flag (not a message) cancels the running request, so cancelling never waits
behind a busy pipe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


# ---- requests (app -> worker) ------------------------------------------------


@dataclass(frozen=True)
class LoadRequest:
    path: str
    params: dict[str, Any]
    state_budget_bytes: int = 1 << 30
    state_max_entries: int = 8
    states_dir: str | None = None


@dataclass(frozen=True)
class GenerateRequest:
    req_id: int
    segments: list[tuple[str, bool]]  # (text, special) -- see app.prompt.Segment
    conv_key: str | None = None
    max_tokens: int = 1024
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    seed: int | None = None
    stop_tokens: tuple[str, ...] = ()  # special-token texts that end generation
    use_cache: bool = True
    ignore_eos: bool = False  # generate max_tokens whatever the model says (benchmarks)
    # Structured output: a GBNF grammar the reply must follow. With ``grammar_trigger`` set,
    # generation is free until the generated text contains the trigger (gpt-oss reasons
    # first; the grammar then holds its final channel: "<|channel|>final<|message|>").
    grammar: str | None = None
    grammar_trigger: str | None = None


@dataclass(frozen=True)
class CountRequest:
    req_id: int
    segments: list[tuple[str, bool]]


@dataclass(frozen=True)
class EmbedRequest:
    req_id: int
    texts: list[str]


@dataclass(frozen=True)
class SaveStatesRequest:
    req_id: int
    directory: str
    max_bytes_per_state: int
    conv_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class StatsRequest:
    req_id: int


@dataclass(frozen=True)
class ShutdownRequest:
    pass


# ---- events (worker -> app) --------------------------------------------------


@dataclass(frozen=True)
class LoadProgress:
    fraction: float


@dataclass(frozen=True)
class Loaded:
    info: dict[str, Any]


@dataclass(frozen=True)
class LoadFailed:
    message: str
    kind: str  # "oom" | "format" | "other"
    log_tail: str = ""


@dataclass(frozen=True)
class TokenPiece:
    req_id: int
    text: str


@dataclass(frozen=True)
class GenerationDone:
    req_id: int
    stats: dict[str, Any]


@dataclass(frozen=True)
class RequestFailed:
    req_id: int
    message: str
    kind: str = "other"  # "context" | "cancelled" | "other"


@dataclass(frozen=True)
class CountResult:
    req_id: int
    n_tokens: int
    tokens: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class EmbedResult:
    req_id: int
    vectors: list[list[float]]


@dataclass(frozen=True)
class StatsResult:
    req_id: int
    stats: dict[str, Any] = field(default_factory=dict)
