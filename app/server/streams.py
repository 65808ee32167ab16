"""From a job's ReplyEvents to HTTP: Chat Completions chunks, Responses events, or one JSON body.

A JobResponse is the ASGI response of a generation. It waits for the job's first
events before choosing the status (a prompt too long for the context is a 400, not
a stream that breaks off), and it watches the connection the whole time: a client
that goes away cancels its job at once, whether it is still queued, processing
the prompt or streaming.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import anyio
from starlette.types import Receive, Scope, Send

from app.server import openai_shapes as S
from app.server.errors import APIError
from app.server.reply import (
    CallArgsDelta, CallDone, CallStarted, Failed, Finished, ReasoningDelta, ReplyEvent, TextDelta,
)
from app.server.runner import EngineRunner, Job

log = logging.getLogger(__name__)

SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
               (b"x-accel-buffering", b"no")]


class ChatRenderer:
    """Chat Completions: ``chat.completion.chunk`` deltas, or one ``chat.completion``."""

    def __init__(self, model: str, spec: S.GenerationSpec) -> None:
        self.cid = S.new_id("chatcmpl")
        self.model = model
        self.spec = spec
        self.created = S.now()
        self.text = ""
        self.reasoning = ""
        self.calls: dict[int, dict[str, Any]] = {}
        self.finished: Finished | None = None

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return S.sse(S.chat_chunk(self.cid, self.model, self.created, delta, finish))

    def head(self) -> list[bytes]:
        return [self._chunk({"role": "assistant", "content": ""})]

    def on(self, ev: ReplyEvent) -> list[bytes]:
        if isinstance(ev, ReasoningDelta):
            self.reasoning += ev.text
            return [self._chunk({"reasoning_content": ev.text})]
        if isinstance(ev, TextDelta):
            self.text += ev.text
            return [self._chunk({"content": ev.text})]
        if isinstance(ev, CallStarted):
            self.calls[ev.index] = S.tool_call_dict(ev.call_id, ev.name, "")
            return [self._chunk({"tool_calls": [{"index": ev.index, "id": ev.call_id, "type": "function",
                                                 "function": {"name": ev.name, "arguments": ""}}]})]
        if isinstance(ev, CallArgsDelta):
            call = self.calls.get(ev.index)
            if call is not None:
                call["function"]["arguments"] += ev.text
            return [self._chunk({"tool_calls": [{"index": ev.index, "function": {"arguments": ev.text}}]})]
        if isinstance(ev, CallDone):
            self.calls[ev.index] = S.tool_call_dict(ev.call_id, ev.name, ev.arguments)
            return []
        if isinstance(ev, Finished):
            self.finished = ev
            out = [self._chunk({}, ev.finish_reason)]
            if self.spec.include_usage:
                out.append(S.sse(S.chat_chunk(self.cid, self.model, self.created, {}, usage=self.usage())))
            return out + [S.sse("[DONE]")]
        return []

    def failed(self, err: APIError) -> list[bytes]:
        return [S.sse(err.body())]

    def usage(self) -> dict[str, Any]:
        assert self.finished is not None
        return S.chat_usage(self.finished.stats)

    def result(self, done_calls: list[dict[str, Any]]) -> dict[str, Any]:
        assert self.finished is not None
        return S.chat_completion(self.cid, self.model, self.created, text=self.text, reasoning=self.reasoning,
                                 calls=done_calls, finish_reason=self.finished.finish_reason, usage=self.usage())


class ResponsesRenderer:
    """Responses: the ``response.*`` event sequence, or one ``response`` object."""

    def __init__(self, model: str, spec: S.GenerationSpec, rid: str | None = None) -> None:
        self.rid = rid or S.new_id("resp")
        self.model = model
        self.spec = spec
        self.created = S.now()
        self.seq = 0
        self.output: list[dict[str, Any]] = []
        self._open: dict[str, Any] | None = None  # the item being streamed
        self._text = ""
        self.finished: Finished | None = None

    def _ev(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return S.sse(data, kind)

    def snapshot(self, status: str, usage: dict[str, Any] | None = None,
                 incomplete: str | None = None) -> dict[str, Any]:
        return S.response_object(self.rid, self.model, self.created, self.spec, status=status,
                                 output=list(self.output), usage=usage, incomplete=incomplete)

    def head(self) -> list[bytes]:
        snap = self.snapshot("in_progress")
        return [self._ev("response.created", response=snap), self._ev("response.in_progress", response=snap)]

    def _index(self) -> int:
        return len(self.output)

    def _start(self, item: dict[str, Any]) -> list[bytes]:
        out = self._close()
        self._open = item
        self._text = ""
        idx = self._index()
        out.append(self._ev("response.output_item.added", output_index=idx, item=item))
        if item["type"] == "reasoning":
            out.append(self._ev("response.content_part.added", item_id=item["id"], output_index=idx,
                                content_index=0, part={"type": "reasoning_text", "text": ""}))
        elif item["type"] == "message":
            out.append(self._ev("response.content_part.added", item_id=item["id"], output_index=idx,
                                content_index=0, part={"type": "output_text", "text": "", "annotations": [],
                                                       "logprobs": []}))
        return out

    def _close(self, status: str = "completed") -> list[bytes]:
        item, self._open = self._open, None
        if item is None:
            return []
        idx = self._index()
        out = []
        if item["type"] == "reasoning":
            done = S.reasoning_item(item["id"], self._text, status)
            part = {"type": "reasoning_text", "text": self._text}
            out.append(self._ev("response.reasoning_text.done", item_id=item["id"], output_index=idx,
                                content_index=0, text=self._text))
            out.append(self._ev("response.content_part.done", item_id=item["id"], output_index=idx,
                                content_index=0, part=part))
        elif item["type"] == "message":
            done = S.message_item(item["id"], self._text, "completed")
            done["status"] = status
            out.append(self._ev("response.output_text.done", item_id=item["id"], output_index=idx,
                                content_index=0, text=self._text, logprobs=[]))
            out.append(self._ev("response.content_part.done", item_id=item["id"], output_index=idx,
                                content_index=0, part=done["content"][0]))
        else:
            done = S.function_call_item(item["id"], item["call_id"], item["name"], self._text, status)
        self.output.append(done)
        out.append(self._ev("response.output_item.done", output_index=idx, item=done))
        return out

    def on(self, ev: ReplyEvent) -> list[bytes]:
        out: list[bytes] = []
        if isinstance(ev, ReasoningDelta):
            if self._open is None or self._open["type"] != "reasoning":
                out += self._start(S.reasoning_item(S.new_id("rs"), "", "in_progress"))
            assert self._open is not None
            self._text += ev.text
            out.append(self._ev("response.reasoning_text.delta", item_id=self._open["id"],
                                output_index=self._index(), content_index=0, delta=ev.text))
        elif isinstance(ev, TextDelta):
            if self._open is None or self._open["type"] != "message":
                out += self._start(S.message_item(S.new_id("msg"), "", "in_progress"))
            assert self._open is not None
            self._text += ev.text
            out.append(self._ev("response.output_text.delta", item_id=self._open["id"], output_index=self._index(),
                                content_index=0, delta=ev.text, logprobs=[]))
        elif isinstance(ev, CallStarted):
            out += self._start(S.function_call_item(S.new_id("fc"), ev.call_id, ev.name, "", "in_progress"))
        elif isinstance(ev, CallArgsDelta):
            if self._open is not None and self._open["type"] == "function_call":
                self._text += ev.text
                out.append(self._ev("response.function_call_arguments.delta", item_id=self._open["id"],
                                    output_index=self._index(), delta=ev.text))
        elif isinstance(ev, CallDone):
            if self._open is not None and self._open["type"] == "function_call":
                self._text = ev.arguments
                out.append(self._ev("response.function_call_arguments.done", item_id=self._open["id"],
                                    output_index=self._index(), name=ev.name, arguments=ev.arguments))
                out += self._close()
        elif isinstance(ev, Finished):
            self.finished = ev
            open_call = self._open is not None and self._open["type"] == "function_call"
            out += self._close("incomplete" if open_call else "completed")
            if ev.finish_reason == "length":
                out.append(self._ev("response.incomplete", response=self.result()))
            else:
                out.append(self._ev("response.completed", response=self.result()))
        return out

    def failed(self, err: APIError) -> list[bytes]:
        snap = self.snapshot("failed")
        snap["error"] = {"code": err.code or "server_error", "message": err.message}
        return [self._ev("response.failed", response=snap)]

    def result(self) -> dict[str, Any]:
        assert self.finished is not None
        usage = S.responses_usage(self.finished.stats)
        if self.finished.finish_reason == "length":
            return self.snapshot("incomplete", usage, "max_output_tokens")
        return self.snapshot("completed", usage)


Renderer = ChatRenderer | ResponsesRenderer


def error_bytes(err: APIError) -> bytes:
    return json.dumps(err.body()).encode()


class JobResponse:
    """The ASGI response for one job (see the module docstring)."""

    def __init__(self, runner: EngineRunner, job: Job, renderer: Renderer, *, stream: bool,
                 body: Callable[[], dict[str, Any]], on_done: Callable[[Finished], None] | None = None,
                 error_param: str = "messages") -> None:
        self.runner = runner
        self.job = job
        self.renderer = renderer
        self.stream = stream
        self.body = body
        self.on_done = on_done
        self.error_param = error_param

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                while True:
                    msg = await receive()
                    if msg["type"] == "http.disconnect":
                        log.info("API client went away; cancelling its generation")
                        self.runner.cancel(self.job)
                        tg.cancel_scope.cancel()
                        return

            tg.start_soon(watch)
            try:
                await self._respond(send)
            finally:
                self.runner.cancel(self.job)  # nothing if it finished
                tg.cancel_scope.cancel()

    async def _next(self) -> list[ReplyEvent]:
        return await self.job.events.get()

    def _failure(self, events: list[ReplyEvent]) -> APIError | None:
        for ev in events:
            if isinstance(ev, Failed):
                err = ev.error
                if err.code == "context_length_exceeded":
                    err.param = self.error_param
                return err
        return None

    async def _send_json(self, send: Send, status: int, payload: bytes) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload, "more_body": False})

    async def _respond(self, send: Send) -> None:
        first = await self._next()
        err = self._failure(first)
        if err is not None:
            await self._send_json(send, err.status, error_bytes(err))
            return
        if not self.stream:
            events = first
            while True:
                for ev in events:
                    self.renderer.on(ev)
                err = self._failure(events)
                if err is not None:
                    await self._send_json(send, err.status, error_bytes(err))
                    return
                if any(isinstance(ev, Finished) for ev in events):
                    break
                events = await self._next()
            self._done()
            await self._send_json(send, 200, json.dumps(self.body(), ensure_ascii=False).encode())
            return
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        chunks = self.renderer.head()
        events = first
        while True:
            for ev in events:
                chunks += self.renderer.on(ev)
            err = self._failure(events)
            if err is not None:
                chunks += self.renderer.failed(err)
            if chunks:
                await send({"type": "http.response.body", "body": b"".join(chunks), "more_body": True})
                chunks = []
            if err is not None or any(isinstance(ev, Finished) for ev in events):
                break
            events = await self._next()
        if err is None:
            self._done()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _done(self) -> None:
        if self.on_done is not None and self.renderer.finished is not None:
            try:
                self.on_done(self.renderer.finished)
            except Exception:  # noqa: BLE001 - bookkeeping must not fail a reply already made
                log.exception("after-reply bookkeeping failed")
