"""Structured output: a GBNF grammar holds the reply, from the start or after a trigger text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.engine.client import EngineClient
from app.errors import EngineError
from app.prompt import Segment

PARAMS = {"n_ctx": 512, "n_threads": 2, "flash_attn": True, "swa_full": False}
PROMPT = [Segment("<start_of_turn>user\nDescribe a cat.<end_of_turn>\n<start_of_turn>model\n", True)]


@pytest.fixture
def engine(gemma_path: Path):
    c = EngineClient()
    c.load_blocking(str(gemma_path), PARAMS)
    yield c
    c.close()


def _run(c: EngineClient, **req) -> str:
    req.setdefault("max_tokens", 48)
    req.setdefault("temperature", 0.0)
    req.setdefault("seed", 1)
    req.setdefault("use_cache", False)
    return "".join(ev.text for ev in c.generate(req, PROMPT) if hasattr(ev, "text"))


def test_a_json_schema_grammar_makes_the_reply_parse(engine: EngineClient) -> None:
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12},
                                               "legs": {"type": "integer"}},
              "required": ["name", "legs"], "additionalProperties": False}
    free = _run(engine)
    assert not free.lstrip().startswith("{")  # the model alone does not answer in JSON
    text = _run(engine, grammar=json_schema_to_gbnf(json.dumps(schema)), max_tokens=96)
    data = json.loads(text)
    assert set(data) == {"name", "legs"} and isinstance(data["legs"], int)


def test_the_grammar_starts_after_its_trigger(engine: EngineClient) -> None:
    free = _run(engine, max_tokens=12)
    trigger = free[:6]
    assert trigger.strip()
    text = _run(engine, grammar='root ::= "ZQX" [0-9]+', grammar_trigger=trigger, max_tokens=24)
    head, _, rest = text.partition("ZQX")
    # Free text up to the token that completes the trigger, then only what the grammar allows.
    assert head.startswith(trigger) and free.startswith(head), text
    assert rest.isdigit(), text


def test_a_broken_grammar_is_a_clear_error(engine: EngineClient) -> None:
    with pytest.raises(EngineError, match="output format"):
        _run(engine, grammar="root ::= (")
    assert _run(engine, max_tokens=4)  # the engine goes on
