"""Hearth's local OpenAI-compatible API: the Starlette application and what it serves.

``APIService`` holds the engine (the window's or the headless server's), the
queue in front of it, the chains behind ``previous_response_id`` and the
counters the Settings page shows; ``create_app(service)`` is the ASGI app with
``/v1/models``, ``/v1/chat/completions``, ``/v1/responses`` and ``/v1/embeddings``.
"""

from __future__ import annotations

import array
import asyncio
import base64
import collections
import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.chat import PromptBuilder
from app.errors import HearthError
from app.prompt import Segment
from app.server import openai_shapes as S
from app.server.errors import APIError, bad_request
from app.server.reply import Finished, ReplyDecoder
from app.server.runner import EngineRunner, QueueFull
from app.server.streams import ChatRenderer, JobResponse, ResponsesRenderer

log = logging.getLogger(__name__)

# The harmony header that opens gpt-oss's answer: structured output starts after it,
# so the model still reasons freely first.
FINAL_HEADER = "<|channel|>final<|message|>"


@dataclass
class ServerOptions:
    api_key: str | None = None
    max_queue: int = 32  # waiting + running; more get 429
    max_body_bytes: int = 4 << 20
    cors_origins: tuple[str, ...] = ()
    max_tokens: int = 4096  # when a request names no limit
    reasoning_effort: str = "medium"  # when a request names none
    kept_responses: int = 256  # chains previous_response_id can continue


@dataclass
class _Chain:
    messages: list[dict[str, Any]]  # the conversation so far, without instructions
    conv_key: str


@dataclass
class APIService:
    """Everything a request needs; shared by the headless server and the window."""

    engine: Any
    options: ServerOptions = field(default_factory=ServerOptions)
    embedder: Any = None  # callable(texts) -> vectors, with .model_name; None if none is installed
    save_exchange: Callable[[str, list[dict[str, Any]], str, str], None] | None = None

    def __post_init__(self) -> None:
        self.runner = EngineRunner(self.engine, max_queue=self.options.max_queue)
        self._chains: collections.OrderedDict[str, _Chain] = collections.OrderedDict()
        self._lock = threading.Lock()
        self.requests_total = 0

    def close(self) -> None:
        self.runner.close()

    # -- models -------------------------------------------------------------------------

    @property
    def model_id(self) -> str | None:
        info = getattr(self.engine, "model_info", None)
        if not info:
            return None
        return Path(str(info.get("path") or info.get("name") or "model")).stem

    def _model_names(self) -> set[str]:
        info = self.engine.model_info or {}
        path = Path(str(info.get("path") or ""))
        return {n for n in (self.model_id, path.name, info.get("name")) if n}

    def embedding_id(self) -> str | None:
        if self.embedder is None:
            return None
        return Path(str(getattr(self.embedder, "model_name", "embedding"))).stem

    def check_model(self, name: str) -> PromptBuilder:
        """The prompt builder for the loaded model; 503 when none is loaded, 404 for another name."""
        if not getattr(self.engine, "model_info", None):
            raise APIError(503, "No model is loaded. Load a model in Hearth (or start 'hearth serve "
                                "--model FILE') and try again.", None, "model_not_loaded")
        if name not in self._model_names():
            raise APIError(404, f"The model {name!r} does not exist here; this server serves {self.model_id!r} "
                                "(see GET /v1/models).", "model", "model_not_found")
        return PromptBuilder(self.engine.model_info)

    # -- generation ---------------------------------------------------------------------

    def plan(self, spec: S.GenerationSpec, conv_key: str | None,
             param: str) -> tuple[dict[str, Any], list[Segment], ReplyDecoder]:
        builder = self.check_model(spec.model)
        tools = spec.tools if builder.harmony and spec.tool_choice != "none" else None
        if spec.tools and not builder.harmony:
            log.info("tools ignored: %s does not take tools", self.model_id)
        effort = spec.reasoning_effort or self.options.reasoning_effort
        try:
            segments = list(builder.build(spec.messages, tools=tools, reasoning_effort=effort))
        except (ValueError, TypeError, KeyError) as exc:
            raise bad_request(str(exc), param) from exc
        prefill = ""
        if tools and spec.tool_choice.startswith("function:"):
            name = spec.tool_choice.split(":", 1)[1]
            prefill = f" to=functions.{name}<|channel|>commentary json<|message|>"
            segments += [Segment(f" to=functions.{name}", False), Segment("<|channel|>commentary json<|message|>", True)]
        elif tools and spec.tool_choice == "required":
            prefill = "<|channel|>commentary to=functions."
            segments += [Segment("<|channel|>", True), Segment("commentary to=functions.", False)]
        req = builder.request(conv_key=conv_key, max_tokens=spec.max_tokens or self.options.max_tokens,
                              temperature=spec.temperature, top_p=spec.top_p, seed=spec.seed)
        if spec.extra.get("ignore_eos"):
            req["ignore_eos"] = True
        if spec.grammar:
            req["grammar"] = spec.grammar
            if builder.harmony:
                req["grammar_trigger"] = FINAL_HEADER
        names = tuple(t["function"]["name"] for t in tools or [])
        return req, segments, ReplyDecoder(builder.harmony, spec.stop, names, prefill)

    def submit(self, req: dict[str, Any], segments: list[Segment], decoder: ReplyDecoder) -> Any:
        try:
            return self.runner.submit(req, segments, decoder, asyncio.get_running_loop())
        except QueueFull as exc:
            raise APIError(429, f"Hearth is busy: {exc}. Try again in a moment.", None, "queue_full") from exc

    # -- previous_response_id --------------------------------------------------------------

    def chain(self, rid: str) -> _Chain:
        with self._lock:
            chain = self._chains.get(rid)
            if chain is None:
                raise bad_request(f"There is no response {rid!r} to continue (this server keeps the last "
                                  f"{self.options.kept_responses}, and forgets them when it stops).",
                                  "previous_response_id", "previous_response_not_found")
            self._chains.move_to_end(rid)
            return chain

    def remember(self, rid: str, chain: _Chain) -> None:
        with self._lock:
            self._chains[rid] = chain
            while len(self._chains) > self.options.kept_responses:
                self._chains.popitem(last=False)

    def count_request(self) -> None:
        with self._lock:
            self.requests_total += 1


def _conversation_key(messages: list[dict[str, Any]]) -> str:
    """Requests that start alike share a key, so a resent conversation's prefix is cached."""
    head = json.dumps(messages[:2], sort_keys=True, ensure_ascii=False)
    return "api-chat-" + hashlib.sha256(head.encode()).hexdigest()[:16]


def _output_messages(decoder: ReplyDecoder) -> list[dict[str, Any]]:
    msg: dict[str, Any] = {"role": "assistant", "content": decoder.text}
    if decoder.reasoning:
        msg["thinking"] = decoder.reasoning
    if decoder.calls:
        msg["tool_calls"] = [S.tool_call_dict(c.call_id, c.name, c.arguments) for c in decoder.calls]
    return [msg]


# ---- the ASGI app -------------------------------------------------------------------------


def create_app(service: APIService) -> Starlette:
    opts = service.options

    async def guard(request: Request) -> None:
        service.count_request()
        if opts.api_key:
            auth = request.headers.get("authorization", "")
            token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
            if not hmac.compare_digest(token.encode(), opts.api_key.encode()):
                raise APIError(401, "Incorrect API key. Use the key shown in Hearth's Settings › Local server "
                                    "(Authorization: Bearer KEY).", None, "invalid_api_key")

    async def read_json(request: Request) -> Any:
        await guard(request)
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > opts.max_body_bytes:
            raise APIError(413, f"The request body is {int(length):,} bytes; the limit is "
                                f"{opts.max_body_bytes:,}.", None, "request_too_large")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > opts.max_body_bytes:
                raise APIError(413, f"The request body is over the limit of {opts.max_body_bytes:,} bytes.",
                               None, "request_too_large")
        try:
            return json.loads(body)
        except ValueError as exc:
            raise bad_request(f"The request body is not valid JSON: {exc}.") from exc

    async def models(request: Request) -> JSONResponse:
        await guard(request)
        data = []
        for mid in (service.model_id, service.embedding_id()):
            if mid:
                data.append({"id": mid, "object": "model", "created": 0, "owned_by": "hearth"})
        return JSONResponse({"object": "list", "data": data})

    async def chat_completions(request: Request) -> Any:
        spec = S.chat_request(await read_json(request))
        req, segments, decoder = service.plan(spec, _conversation_key(spec.messages), "messages")
        job = service.submit(req, segments, decoder)
        renderer = ChatRenderer(spec.model, spec)

        def body() -> dict[str, Any]:
            calls = [S.tool_call_dict(c.call_id, c.name, c.arguments) for c in decoder.calls]
            return renderer.result(calls)

        def done(fin: Finished) -> None:
            if service.save_exchange is not None:
                service.save_exchange(spec.model, spec.messages, decoder.text, decoder.reasoning)

        return JobResponse(service.runner, job, renderer, stream=spec.stream, body=body, on_done=done)

    async def responses(request: Request) -> Any:
        raw = await read_json(request)
        prev_id = raw.get("previous_response_id") if isinstance(raw, dict) else None
        if prev_id is not None and not isinstance(prev_id, str):
            raise bad_request("'previous_response_id' must be a string.", "previous_response_id")
        previous = service.chain(prev_id) if prev_id else None
        spec = S.responses_request(raw, previous.messages if previous else None)
        renderer = ResponsesRenderer(spec.model, spec)
        conv_key = previous.conv_key if previous else f"api-resp-{renderer.rid}"
        req, segments, decoder = service.plan(spec, conv_key, "input")
        job = service.submit(req, segments, decoder)
        history = (previous.messages if previous else []) + spec.extra["new_messages"]

        def done(fin: Finished) -> None:
            if spec.extra.get("store", True):
                service.remember(renderer.rid, _Chain(history + _output_messages(decoder), conv_key))
            if service.save_exchange is not None:
                service.save_exchange(spec.model, spec.messages, decoder.text, decoder.reasoning)

        return JobResponse(service.runner, job, renderer, stream=spec.stream, body=renderer.result, on_done=done,
                           error_param="input")

    async def embeddings(request: Request) -> JSONResponse:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise bad_request("The request body must be a JSON object.")
        if service.embedder is None:
            raise APIError(404, "No embedding model is installed. Install one from Hearth's Models page "
                                "(or name one in Settings) to use /v1/embeddings.", "model", "model_not_found")
        model = body.get("model")
        if model not in {service.embedding_id(), getattr(service.embedder, "model_name", None)}:
            raise APIError(404, f"The embedding model {model!r} does not exist here; use "
                                f"{service.embedding_id()!r}.", "model", "model_not_found")
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
            raise bad_request("'input' must be a non-empty string or a list of non-empty strings.", "input")
        fmt = body.get("encoding_format", "float")
        if fmt not in ("float", "base64"):
            raise bad_request("'encoding_format' must be float or base64.", "encoding_format")
        try:
            vectors = await run_in_threadpool(service.embedder, list(texts))
        except HearthError as exc:
            raise APIError(503, str(exc), None, "embedding_failed") from exc
        data = []
        for i, v in enumerate(vectors):
            emb: Any = base64.b64encode(array.array("f", v).tobytes()).decode() if fmt == "base64" else v
            data.append({"object": "embedding", "index": i, "embedding": emb})
        return JSONResponse({"object": "list", "data": data, "model": service.embedding_id(),
                             "usage": {"prompt_tokens": 0, "total_tokens": 0}})

    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, APIError)
        return JSONResponse(exc.body(), status_code=exc.status)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        err = APIError(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}. "
                                        "Hearth serves /v1/models, /v1/chat/completions, /v1/responses and "
                                        "/v1/embeddings.", None, "not_found" if exc.status_code == 404 else None)
        return JSONResponse(err.body(), status_code=exc.status_code)

    middleware = []
    if opts.cors_origins:
        middleware.append(Middleware(CORSMiddleware, allow_origins=list(opts.cors_origins),
                                     allow_methods=["GET", "POST", "OPTIONS"],
                                     allow_headers=["authorization", "content-type"]))
    routes = [
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/responses", responses, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
    ]
    return Starlette(routes=routes, middleware=middleware,
                     exception_handlers={APIError: api_error, HTTPException: http_error})
