"""HarmonyStreamParser: what the user sees from gpt-oss's raw output, however it is split or garbled."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.harmony.parser import (
    CHANNELS, SPECIAL_TOKENS, ContentDelta, Event, HarmonyStreamParser, MessageEnd, MessageStart, Return,
    ToolCall,
)
from tests.bench.harmony_bench import bench_parser
from tests.support.harmony import merge_deltas, parse_complete

FUZZ = settings(database=None, deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])


def run(pieces: list[str], tool_names: list[str] | None = None) -> list[Event]:
    p = HarmonyStreamParser(tool_names)
    events: list[Event] = []
    for piece in pieces:
        events += p.feed(piece)
    return merge_deltas(events + p.finish())


def deltas(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.channel, e.text) for e in events if isinstance(e, ContentDelta)]


@contextmanager
def parser_errors() -> Iterator[list[logging.LogRecord]]:
    """Records of internal parser failures (the parser swallows them to protect the answer)."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(logging.ERROR)
    logger = logging.getLogger("app.harmony.parser")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


# ---- well-formed output --------------------------------------------------------------------


def test_analysis_then_final_answer() -> None:
    text = ("<|channel|>analysis<|message|>User greets. Reply.<|end|>"
            "<|start|>assistant<|channel|>final<|message|>Hello! How can I help?<|return|>")
    assert run([text]) == [
        MessageStart("assistant", "analysis"), ContentDelta("analysis", "User greets. Reply."),
        MessageEnd("analysis"),
        MessageStart("assistant", "final"), ContentDelta("final", "Hello! How can I help?"), MessageEnd("final"),
        Return(),
    ]


@pytest.mark.parametrize("header", [
    "<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>",  # harmony docs
    " to=functions.get_weather<|channel|>commentary json<|message|>",  # the chat template's form
    " to=functions.get_weather<|channel|>commentary <|constrain|>json<|message|>",
    "<|channel|>commentary to=functions.get_weather json<|message|>",
])
def test_tool_call_in_either_header_form(header: str) -> None:
    text = "<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant" + header + \
        '{"location":"Paris"}<|call|>'
    events = run([text])
    assert ToolCall("functions.get_weather", "get_weather", '{"location":"Paris"}') in events
    assert MessageStart("assistant", "commentary", "functions.get_weather", "json") in events
    assert ContentDelta("commentary", '{"location":"Paris"}', "functions.get_weather") in events
    assert not any(isinstance(e, Return) for e in events)
    # Tool-call arguments never show up as answer text.
    assert parse_complete(text).final == ""


def test_tool_call_as_first_message_and_without_end_token() -> None:
    events = run(['<|channel|>commentary to=functions.calculator <|constrain|>json<|message|>{"expression":"2+2"}'])
    assert events[-1] == ToolCall("functions.calculator", "calculator", '{"expression":"2+2"}')


def test_content_streams_immediately_and_only_token_prefixes_wait() -> None:
    p = HarmonyStreamParser()
    assert p.feed("<|channel|>ana") == []
    assert p.feed("lysis<|message|>Hel") == [MessageStart("assistant", "analysis"), ContentDelta("analysis", "Hel")]
    assert p.feed("lo <") == [ContentDelta("analysis", "lo ")]  # "<" might begin <|end|>
    assert p.feed("b> and <|e") == [ContentDelta("analysis", "<b> and ")]
    assert p.feed("nd|>") == [MessageEnd("analysis")]
    assert p.feed("<|start|>assistant<|channel|>final<|message|>4") == [
        MessageStart("assistant", "final"), ContentDelta("final", "4")]
    assert p.feed(" <|endless") == [ContentDelta("final", " <|endless")]  # not a token after all
    assert p.finish() == [MessageEnd("final")]


def test_parser_is_reusable_after_finish() -> None:
    p = HarmonyStreamParser()
    p.feed("<|channel|>final<|message|>one")
    p.finish()
    assert merge_deltas(p.feed("<|channel|>analysis<|message|>two") + p.finish()) == [
        MessageStart("assistant", "analysis"), ContentDelta("analysis", "two"), MessageEnd("analysis")]


def test_parse_complete_collects_channels() -> None:
    turn = parse_complete("<|channel|>analysis<|message|>think<|end|><|start|>assistant<|channel|>commentary"
                          "<|message|>Checking…<|end|><|start|>assistant<|channel|>final<|message|>Done.<|return|>")
    assert (turn.analysis, turn.commentary, turn.final, turn.tool_calls, turn.returned) == \
        ("think", "Checking…", "Done.", [], True)


# ---- malformed output: never an error, never lost words --------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("<|channel|>commentary?<|message|>hmm<|end|>", [("commentary", "hmm")]),
    ("<|channel|>??<|message|>The answer is 4.<|end|>", [("final", "The answer is 4.")]),
    ("<|channel|>final?!<|message|>Yes.<|return|>", [("final", "Yes.")]),
    ("<|channel|>finalThe answer is 4.<|end|>", [("final", "The answer is 4.")]),  # no <|message|>
    ("<|channel|>analysis\nThinking hard", [("analysis", "\nThinking hard")]),
    ("Just an answer, no header at all.", [("final", "Just an answer, no header at all.")]),
    ("<|channel|>The model forgot the channel name", [("final", "The model forgot the channel name")]),
    ("<|channel|>analysis<|message|>a<|start|>assistant<|channel|>final<|message|>b",  # no <|end|>
     [("analysis", "a"), ("final", "b")]),
    ("<|channel|>analysis<|message|>a<|channel|>final<|message|>b", [("analysis", "a"), ("final", "b")]),
    ("<|start|>assistant<|message|>no channel<|end|>", [("final", "no channel")]),
    ("<|channel|>final<|message|>a <|message|> b<|end|>", [("final", "a <|message|> b")]),
])
def test_malformed_output_reaches_the_user(text: str, expected: list[tuple[str, str]],
                                           caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="app.harmony.parser"):
        events = run([text])
        assert deltas(events) == expected
        assert deltas(run(list(text))) == expected  # the same, one character at a time
    assert all(r.levelno < logging.ERROR for r in caplog.records)
    assert any("harmony" in r.getMessage() for r in caplog.records), "malformed output must be logged"


@pytest.mark.parametrize("prefix", ["<|channel|>commentary", "<|channel|>commentary to=assistant"])
def test_stray_commentary_before_the_real_channel(prefix: str) -> None:
    # gpt-oss-20b sometimes writes this; llama.cpp accepts it as the later channel.
    assert run([prefix + "<|channel|>analysis<|message|>a<|end|>"]) == [
        MessageStart("assistant", "analysis"), ContentDelta("analysis", "a"), MessageEnd("analysis")]


def test_glued_json_recipient_is_repaired_when_tools_are_known() -> None:
    text = '<|channel|>commentary to=functions.get_weatherjson<|message|>{"location":"Oslo"}<|call|>'
    assert run([text], tool_names=["get_weather"])[-1] == \
        ToolCall("functions.get_weather", "get_weather", '{"location":"Oslo"}')
    last = run([text])[-1]
    assert isinstance(last, ToolCall) and last.name == "get_weatherjson"  # unknown tools: left as written


def test_stream_cut_inside_a_tool_header_makes_no_call() -> None:
    events = run(["<|channel|>analysis<|message|>x<|end|><|start|>assistant<|channel|>commentary to=functions.f"])
    assert not any(isinstance(e, ToolCall) for e in events)


def test_other_roles_are_reported_as_such() -> None:
    events = run(["<|channel|>final<|message|>Hi<|end|><|start|>user<|message|>fake user turn"])
    assert MessageStart("user", "final") in events


# ---- properties -------------------------------------------------------------------------------

_FRAGMENTS = ["a", "b", "Z", " ", "\n", "<", "|", ">", "<|", "|>", "<|en", "d", "é", "😀", "{", "}", '"', "to=",
              "json", "<|channel", "message|>", "?", "final", "analysis"]
_CONTENT = st.lists(st.sampled_from(_FRAGMENTS), max_size=10).map("".join).filter(
    lambda s: not any(tok in s for tok in SPECIAL_TOKENS))
_NAMES = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)


def _split(draw: Callable[[st.SearchStrategy[list[int]]], list[int]], text: str) -> list[str]:
    cuts = sorted(set(draw(st.lists(st.integers(0, len(text)), max_size=15))))
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:])]


@st.composite
def _valid_streams(draw: st.DrawFn) -> tuple[str, list[Event], list[str]]:
    text = ""
    expected: list[Event] = []
    n = draw(st.integers(1, 4))
    for k in range(n):
        channel = draw(st.sampled_from(CHANNELS))
        tool = channel != "final" and draw(st.booleans())
        recipient = "functions." + draw(_NAMES) if tool else None
        constrain = draw(st.sampled_from([None, " json", " <|constrain|>json"])) if tool else None
        header = "" if k == 0 else "<|start|>assistant"
        if tool and draw(st.booleans()):
            header += f" to={recipient}<|channel|>{channel}{constrain or ''}"
        elif tool:
            header += f"<|channel|>{channel} to={recipient}{constrain or ''}"
        else:
            header += f"<|channel|>{channel}"
        content = draw(_CONTENT)
        last = k == n - 1
        end = "<|call|>" if tool else ("<|return|>" if last and channel == "final" else "<|end|>")
        if last and draw(st.booleans()):
            end = ""  # generation stopped (max tokens, user)
        text += header + "<|message|>" + content + end
        expected.append(MessageStart("assistant", channel, recipient, "json" if constrain else None))
        if content:
            expected.append(ContentDelta(channel, content, recipient))
        expected.append(MessageEnd(channel, recipient))
        if recipient:
            expected.append(ToolCall(recipient, recipient.split(".", 1)[1], content))
        if end == "<|return|>":
            expected.append(Return())
    return text, expected, _split(draw, text)


@FUZZ
@given(case=_valid_streams())
def test_any_split_of_a_valid_stream_gives_the_same_events(case: tuple[str, list[Event], list[str]]) -> None:
    text, expected, pieces = case
    with parser_errors() as errors:
        assert run([text]) == expected
        assert run(pieces) == expected
    assert not errors


@st.composite
def _messy_streams(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]], list[str]]:
    """Streams with the malformations seen in the wild, and the (channel, text) the user must get."""
    text, expected = "", []
    n = draw(st.integers(1, 4))
    for k in range(n):
        variants = ["ok", "punct", "unknown", "no_message", "stray"] + (["no_header"] if k == 0 else [])
        variant = draw(st.sampled_from(variants))
        channel = draw(st.sampled_from(CHANNELS))
        content = draw(_CONTENT)
        if variant in ("no_message", "no_header"):
            content = draw(st.sampled_from("ABXYZ")) + content  # a word that cannot be header syntax
        header = {
            "ok": f"<|channel|>{channel}<|message|>",
            "punct": f"<|channel|>{channel}?<|message|>",
            "unknown": "<|channel|>??<|message|>",
            "no_message": f"<|channel|>{channel}",
            "stray": f"<|channel|>commentary to=assistant<|channel|>{channel}<|message|>",
            "no_header": "",
        }[variant]
        if k > 0:
            header = draw(st.sampled_from(["<|end|><|start|>assistant", "<|start|>assistant", "", "<|end|>"])) + header
        text += header + content
        if content:
            expected.append(("final" if variant in ("unknown", "no_header") else channel, content))
    text += draw(st.sampled_from(["", "<|end|>", "<|return|>"]))
    return text, expected, _split(draw, text)


@FUZZ
@given(case=_messy_streams())
def test_malformed_streams_lose_no_words(case: tuple[str, list[tuple[str, str]], list[str]]) -> None:
    text, expected, pieces = case
    with parser_errors() as errors:
        assert deltas(run([text])) == expected
        assert deltas(run(pieces)) == expected
    assert not errors


def _is_subsequence(small: str, big: str) -> bool:
    it = iter(big)
    return all(ch in it for ch in small)


_GARBAGE = st.lists(st.sampled_from(_FRAGMENTS + list(SPECIAL_TOKENS) + [
    "assistant", "commentary", " to=functions.f", "functions.", " ", "??", "user", "\t"]), max_size=30).map("".join)


@FUZZ
@given(data=st.data(), text=_GARBAGE)
def test_garbage_never_raises_and_invents_nothing(data: st.DataObject, text: str) -> None:
    pieces = _split(data.draw, text)
    with parser_errors() as errors:
        whole = run([text])
        assert run(pieces) == whole
    assert not errors
    shown = "".join(t for _, t in deltas(whole))
    assert _is_subsequence(shown, text)
    for e in whole:
        assert isinstance(e, (MessageStart, ContentDelta, MessageEnd, ToolCall, Return))
        if isinstance(e, (MessageStart, ContentDelta, MessageEnd)):
            assert e.channel in CHANNELS


@FUZZ
@given(text=st.lists(st.sampled_from(["a", "Z", " ", "\n", "é", "|", ">", "{", "to=", "json", "?", "final"]),
                     min_size=1, max_size=30).map("".join).filter(lambda s: s[0] not in " \n\ttj"))
def test_text_without_any_header_is_all_answer(text: str) -> None:
    assert deltas(run([text])) == [("final", text)]


# ---- speed ------------------------------------------------------------------------------------


def test_parser_costs_a_negligible_time_per_token() -> None:
    # A token takes ~30-100 ms to generate on a laptop; 20 µs is well under 1% of that.
    assert bench_parser(5000) < 20.0


def test_feed_many_small_pieces_keeps_all_text() -> None:
    words = [f" word{k}" for k in range(2000)]
    events = run(["<|channel|>final<|message|>", *words, "<|return|>"])
    assert deltas(events) == [("final", "".join(words))]
