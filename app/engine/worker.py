"""The engine worker: the one process, and the one module, that owns llama_cpp.

It runs under the ``spawn`` start method (never forked from a Qt process), reads
requests from a pipe and streams events back. If llama.cpp crashes or the OS
kills it, only this process dies; the app sees the pipe close and says so.

Follow-up turns cost only their new tokens: after each prompt is evaluated the
worker snapshots the sequence state (llama.cpp's seq state API) under the
conversation's key. The next prompt of that conversation starts from the longest
snapshot that is a prefix of it -- which survives gpt-oss dropping the previous
turn's analysis and the sliding-window layers being unable to roll back.
"""

from __future__ import annotations

import codecs
import ctypes
import gc
import hashlib
import json
import logging
import os
import re
import struct
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from app.engine import llama_internals as internals
from app.engine import protocol as P
from app.engine import sampling as sampling_mod

log = logging.getLogger(__name__)

_LOG_TAIL_LINES = 60
SEND_INTERVAL_S = 0.01
_STATE_MAGIC = b"HEARTHSTATE1"


def _rss_bytes() -> int:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:  # noqa: BLE001 - psutil absent or the probe failed: report 0, not a crash
        return 0


def _peak_rss_bytes() -> int:
    # Linux: VmHWM is this process's own peak. ru_maxrss is not: it keeps the parent's
    # high-water mark across fork and exec, so a large app made the worker look large.
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # Linux reports KiB, macOS bytes.
        return int(peak if sys.platform == "darwin" else peak * 1024)
    except Exception:  # noqa: BLE001 - Windows has no resource module
        return _rss_bytes()


@dataclass
class _Snapshot:
    tokens: list[int]
    data: bytes


class _StateCache:
    """Recent sequence states keyed by conversation, bounded in bytes and entries."""

    def __init__(self, budget_bytes: int, max_entries: int) -> None:
        self.budget_bytes = budget_bytes
        self.max_entries = max_entries
        self._items: OrderedDict[tuple[str, int], _Snapshot] = OrderedDict()

    @property
    def n_bytes(self) -> int:
        return sum(len(s.data) for s in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def put(self, conv_key: str, snap: _Snapshot) -> None:
        if len(snap.data) > self.budget_bytes:
            return
        key = (conv_key, len(snap.tokens))
        self._items.pop(key, None)
        self._items[key] = snap
        # Keep at most a few prefixes per conversation: the newest turns matter most.
        per_conv = [k for k in self._items if k[0] == conv_key]
        for k in per_conv[:-3]:
            del self._items[k]
        while self._items and (
            self.n_bytes > self.budget_bytes or len(self._items) > self.max_entries
        ):
            self._items.popitem(last=False)

    def best_prefix(self, conv_key: str | None, tokens: list[int]) -> _Snapshot | None:
        best: _Snapshot | None = None
        best_key = None
        for key, snap in self._items.items():
            n = len(snap.tokens)
            if n > len(tokens) or (best is not None and n <= len(best.tokens)):
                continue
            if snap.tokens == tokens[:n]:
                best, best_key = snap, key
        if best_key is not None:
            self._items.move_to_end(best_key)
        return best

    def latest_for(self, conv_key: str) -> _Snapshot | None:
        found = None
        for key, snap in self._items.items():
            if key[0] == conv_key and (found is None or len(snap.tokens) > len(found.tokens)):
                found = snap
        return found


class Engine:
    """Owns one ``llama_cpp.Llama``; every method runs on the worker's main thread."""

    def __init__(self, conn: Connection, cancel_flag: Any) -> None:
        self.conn = conn
        self.cancel_flag = cancel_flag
        self.llm: Any = None
        self.llama_cpp: Any = None
        self.model_path = ""
        self.model_identity = ""
        self.swa = 0
        self.states = _StateCache(1 << 30, 8)
        self.states_dir: Path | None = None
        self.log_lines: list[str] = []
        self._log_partial = ""
        self._log_cb: Any = None
        self._abort_cb: Any = None
        self._progress_dots = 0
        self._loading = False
        self._vocab: Any = None
        self._piece_buf = ctypes.create_string_buffer(256)
        self._special_ids: dict[str, int] = {}

    # ---- llama.cpp log ---------------------------------------------------

    def _install_log(self) -> None:
        lc = self.llama_cpp

        @lc.llama_log_callback
        def _cb(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
            s = text.decode("utf-8", "replace")
            if self._loading and s == ".":
                # llama.cpp's default progress callback prints one dot per percent.
                self._progress_dots += 1
                if self._progress_dots % 5 == 0:
                    self._send(P.LoadProgress(min(1.0, self._progress_dots / 100.0)))
                return
            self._log_partial += s
            while "\n" in self._log_partial:
                line, self._log_partial = self._log_partial.split("\n", 1)
                if line.strip():
                    self.log_lines.append(line)
                    if len(self.log_lines) > 4000:
                        del self.log_lines[:2000]
                    if level in (3, 4):  # GGML_LOG_LEVEL_WARN, _ERROR
                        log.warning("llama.cpp: %s", line)
                    else:
                        log.debug("llama.cpp: %s", line)

        self._log_cb = _cb  # keep the ctypes callback alive
        lc.llama_log_set(_cb, ctypes.c_void_p(0))

    def _send(self, msg: Any) -> None:
        self.conn.send(msg)

    # ---- load ------------------------------------------------------------

    def load(self, req: P.LoadRequest) -> None:
        t0 = time.perf_counter()
        self.close_model()
        if self.llama_cpp is None:
            import llama_cpp  # the only import of llama_cpp in Hearth

            self.llama_cpp = llama_cpp
            self._install_log()
        lc = self.llama_cpp
        params = dict(req.params)
        cpu_moe = int(params.pop("cpu_moe_layers", 0) or 0)
        params.pop("seed", None)
        path = req.path
        self.log_lines.clear()
        self._progress_dots = 0
        self._loading = True
        self._send(P.LoadProgress(0.0))
        try:
            if not os.path.isfile(path):
                raise ValueError(f"{path} does not exist")
            kwargs: dict[str, Any] = {
                "model_path": path,
                "verbose": False,
                "n_ctx": int(params.pop("n_ctx", 4096)),
            }
            for key in (
                "n_threads", "n_threads_batch", "n_gpu_layers", "n_batch", "n_ubatch",
                "flash_attn", "swa_full", "use_mmap", "type_k", "type_v", "embedding",
                "pooling_type",
            ):
                if key in params and params[key] is not None:
                    kwargs[key] = params.pop(key)
            if cpu_moe > 0:
                from app.engine.moe_offload import cpu_moe_overrides

                with cpu_moe_overrides(lc, cpu_moe):
                    self.llm = lc.Llama(**kwargs)
            else:
                self.llm = lc.Llama(**kwargs)
        except Exception as exc:  # noqa: BLE001 - every load failure becomes a message
            self._loading = False
            tail = "\n".join(self.log_lines[-_LOG_TAIL_LINES:])
            self._send(P.LoadFailed(*_explain_load_failure(path, exc, tail), log_tail=tail))
            self.llm = None
            gc.collect()
            return
        self._loading = False
        llm = self.llm
        self.model_path = path
        st = os.stat(path)
        self.model_identity = f"{os.path.abspath(path)}|{st.st_size}|{int(st.st_mtime)}"
        self._vocab = lc.llama_model_get_vocab(llm.model)
        self.swa = int(lc.llama_model_n_swa(llm.model)) if hasattr(lc, "llama_model_n_swa") else 0
        self.states = _StateCache(req.state_budget_bytes, req.state_max_entries)
        self.states_dir = Path(req.states_dir) if req.states_dir else None
        self._special_ids.clear()
        meta = dict(llm.metadata)
        info = {
            "path": path,
            "n_ctx": llm.n_ctx(),
            "n_vocab": llm.n_vocab(),
            "n_ctx_train": int(lc.llama_model_n_ctx_train(llm.model)),
            "architecture": meta.get("general.architecture", ""),
            "name": meta.get("general.name", Path(path).stem),
            "chat_template": meta.get("tokenizer.chat_template"),
            "bos_token": self._piece(llm.token_bos()) if llm.token_bos() >= 0 else "",
            "eos_token": self._piece(llm.token_eos()) if llm.token_eos() >= 0 else "",
            "load_seconds": time.perf_counter() - t0,
            "rss_bytes": _rss_bytes(),
            "gpu_offload": bool(lc.llama_supports_gpu_offload()),
            "n_swa": self.swa,
            "pid": os.getpid(),
            "log_tail": "\n".join(self.log_lines[-_LOG_TAIL_LINES:]),
            "overrides_applied": [ln for ln in self.log_lines if "buffer type overridden" in ln][:8],
            "overrides_applied_count": sum("buffer type overridden" in ln for ln in self.log_lines),
        }
        self._send(P.Loaded(info))

    def close_model(self) -> None:
        if self.llm is not None:
            try:
                self.llm.close()
            except Exception:  # noqa: BLE001 - freeing memory is best-effort; the process exit frees the rest
                log.exception("closing the model failed")
            self.llm = None
            self.states = _StateCache(0, 0)
            gc.collect()

    # ---- tokens ----------------------------------------------------------

    def _piece(self, token: int) -> str:
        return self._piece_bytes(token).decode("utf-8", "replace")

    def _piece_bytes(self, token: int) -> bytes:
        n = self.llama_cpp.llama_token_to_piece(
            self._vocab, token, self._piece_buf, len(self._piece_buf), 0, True
        )
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self.llama_cpp.llama_token_to_piece(self._vocab, token, buf, -n, 0, True)
            return bytes(buf.raw[:n])
        return bytes(self._piece_buf.raw[:n])

    def tokenize(self, segments: list[tuple[str, bool]]) -> list[int]:
        llm = self.llm
        out: list[int] = []
        add_bos = bool(self.llama_cpp.llama_vocab_get_add_bos(self._vocab))
        if add_bos:
            out.append(llm.token_bos())
        for text, special in segments:
            if not text:
                continue
            if special:
                out.extend(llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))
                continue
            # llama.cpp matches USER_DEFINED tokens even with special=False -- for
            # gpt-oss that includes <|start|>, <|message|>, <|end|>, <|channel|> and
            # <|constrain|>. Plain text is tokenized in pieces cut inside anything
            # shaped like a special token, so it can never form one.
            for piece in _plain_pieces(text):
                out.extend(llm.tokenize(piece.encode("utf-8"), add_bos=False, special=False))
        return out

    def special_id(self, text: str) -> int | None:
        if text not in self._special_ids:
            ids = self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
            self._special_ids[text] = ids[0] if len(ids) == 1 else -1
        tid = self._special_ids[text]
        return tid if tid >= 0 else None

    # ---- generation ------------------------------------------------------

    def _cancelled(self) -> bool:
        return bool(self.cancel_flag[0])

    def _set_abort(self, on: bool) -> None:
        """Let a Stop interrupt prompt processing (decode checks between graph nodes).

        ggml calls the abort callback after every graph node, so a Python callback
        costs ~5% of prompt speed. C's ``strlen`` has the callback's shape
        (``bool f(void *data)``) and, given the two-byte shared flag ``{cancel, 0}``,
        returns exactly 0 or 1: the check then never enters Python.
        """
        lc = self.llama_cpp
        if not hasattr(lc, "llama_set_abort_callback"):
            return
        if not on:
            lc.llama_set_abort_callback(self.llm.ctx, lc.ggml_abort_callback(0), None)
            return
        if self._abort_cb is None:
            strlen = _c_strlen()
            if strlen is not None:
                self._abort_cb = lc.ggml_abort_callback(strlen)
            else:
                flag = self.cancel_flag

                @lc.ggml_abort_callback
                def _abort(_data: ctypes.c_void_p) -> bool:
                    return bool(flag[0])

                self._abort_cb = _abort
        data = ctypes.c_void_p(ctypes.addressof(self.cancel_flag))
        lc.llama_set_abort_callback(self.llm.ctx, self._abort_cb, data)

    def _reset_live(self) -> None:
        llm = self.llm
        mem = self.llama_cpp.llama_get_memory(llm.ctx)
        self.llama_cpp.llama_memory_clear(mem, True)
        internals.set_cached_count(llm, 0)

    def _restore(self, snap: _Snapshot) -> bool:
        lc = self.llama_cpp
        llm = self.llm
        buf = (ctypes.c_uint8 * len(snap.data)).from_buffer_copy(snap.data)
        self._reset_live()
        n = lc.llama_state_seq_set_data(llm.ctx, buf, len(snap.data), 0)
        if n == 0:
            log.warning("restoring a saved state failed; evaluating the whole prompt")
            self._reset_live()
            return False
        internals.set_cached_tokens(llm, snap.tokens)
        return True

    def _snapshot(self, tokens: list[int]) -> _Snapshot | None:
        lc = self.llama_cpp
        ctx = self.llm.ctx
        size = lc.llama_state_seq_get_size(ctx, 0)
        if size <= 0 or size > self.states.budget_bytes:
            return None
        buf = (ctypes.c_uint8 * size)()
        n = lc.llama_state_seq_get_data(ctx, buf, size, 0)
        if n <= 0:
            return None
        return _Snapshot(list(tokens), bytes(memoryview(buf)[:n]))

    def _live_reuse(self, tokens: list[int]) -> int:
        """How many tokens of the live KV cache this prompt can keep (0 if none)."""
        llm = self.llm
        n_live = internals.cached_count(llm)
        if n_live == 0:
            return 0
        live = internals.cached_tokens(llm, n_live)
        common = 0
        for a, b in zip(live, tokens):
            if a != b:
                break
            common += 1
        if common == n_live:
            return common
        if self.swa > 0:
            # Sliding-window layers only keep the last window of positions: rolling
            # back is only valid while the whole window before `common` is still held.
            mem = self.llama_cpp.llama_get_memory(llm.ctx)
            pos_min = int(self.llama_cpp.llama_memory_seq_pos_min(mem, 0))
            if pos_min > max(0, common - self.swa):
                return 0
        return common

    def _prepare(self, req: P.GenerateRequest, tokens: list[int]) -> tuple[int, str]:
        """Position the KV cache so that only new tokens are evaluated; returns kept count."""
        llm = self.llm
        source = "none"
        keep = 0
        if req.use_cache:
            keep = self._live_reuse(tokens)
            source = "live" if keep else "none"
            snap = self.states.best_prefix(req.conv_key, tokens)
            if snap is None and req.conv_key and self.states_dir is not None:
                snap = self._load_disk_state(req.conv_key, tokens)
            if snap is not None and len(snap.tokens) > keep:
                if self._restore(snap):
                    keep, source = len(snap.tokens), "snapshot"
                else:
                    keep, source = 0, "none"
        else:
            keep = 0
        if keep >= len(tokens):
            keep = len(tokens) - 1  # re-evaluate one token so there are logits to sample from
        if keep == 0:
            self._reset_live()
        internals.set_cached_count(llm, keep)
        return keep, source

    def generate(self, req: P.GenerateRequest) -> None:
        llm = self.llm
        lc = self.llama_cpp
        if llm is None:
            self._send(P.RequestFailed(req.req_id, "No model is loaded.", "other"))
            return
        t_start = time.perf_counter()
        try:
            tokens = self.tokenize(req.segments)
        except Exception as exc:  # noqa: BLE001
            self._send(P.RequestFailed(req.req_id, f"Could not tokenize the prompt: {exc}"))
            return
        n_ctx = llm.n_ctx()
        if not tokens:
            self._send(P.RequestFailed(req.req_id, "The prompt is empty.", "other"))
            return
        if len(tokens) >= n_ctx:
            self._send(
                P.RequestFailed(
                    req.req_id,
                    f"The conversation is {len(tokens):,} tokens long, but the model's context "
                    f"holds {n_ctx:,}. Shorten the message, start a new chat, or raise the "
                    "context size in Settings.",
                    "context",
                )
            )
            return
        stop_ids = {i for i in (self.special_id(t) for t in req.stop_tokens) if i is not None}
        if not req.stop_tokens:
            stop_ids.add(llm.token_eos())
        keep, source = self._prepare(req, tokens)
        if req.seed is not None:
            llm.set_seed(int(req.seed))
        sampling = dict(top_k=req.top_k, top_p=req.top_p, min_p=req.min_p, temp=req.temperature,
                        repeat_penalty=req.repeat_penalty)
        sampler = internals.new_sampler(llm, **sampling)
        grammar_sampler = None
        if req.grammar:
            # llama.cpp returns no sampler for a grammar it cannot parse, and a chain given
            # none crashes: parse it on its own first.
            # It also serves as the checker: a token sampled freely is kept when the grammar
            # allows it, and only otherwise is the grammar applied to the whole vocabulary
            # (llama.cpp's own order: the full pass costs ~1 s per token on a 200k vocabulary).
            checker = internals.GrammarChecker.parse(lc, self._vocab, req.grammar)
            if checker is None:
                self._send(P.RequestFailed(
                    req.req_id, "The output format could not be used: llama.cpp cannot parse its grammar "
                    "(see the log for where). Check the JSON schema.", "other"))
                return
            grammar = self.llama_cpp.LlamaGrammar.from_string(req.grammar, verbose=False)
            grammar_sampler = internals.new_sampler(llm, **sampling, grammar=grammar)
        grammar_on = bool(req.grammar) and not req.grammar_trigger
        # Greedy, and gpt-oss's sampling (the whole distribution at temperature 1), without
        # llama.cpp's per-token pass over every vocabulary entry (app/engine/sampling.py).
        n_vocab = int(lc.llama_vocab_n_tokens(self._vocab))
        pick = None if grammar_sampler is not None else sampling_mod.fast_sampler(
            n_vocab, req.temperature, req.top_k, req.top_p, req.min_p, req.repeat_penalty, req.seed)
        trigger_tail = ""
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        raw_parts: list[str] = []
        outbox: list[str] = []
        stop_token = ""
        last_send = 0.0  # the first token goes out at once

        def flush() -> None:
            text = "".join(outbox)
            outbox.clear()
            if text:
                raw_parts.append(text)
                self._send(P.TokenPiece(req.req_id, text))

        n_gen = 0
        decode_s = 0.0  # time inside llama.cpp's decode for the generated tokens
        stop_reason = "length"
        ttft = None
        t_first = t_start
        snapshot_done = not (req.conv_key and req.use_cache)
        max_tokens = max(1, min(req.max_tokens, n_ctx - len(tokens)))
        try:
            self._set_abort(True)
            try:
                llm.eval(tokens[keep:])
            finally:
                self._set_abort(False)
            t_prompt = time.perf_counter()
            prompt_eval_s = t_prompt - t_start
            vocab = self._vocab
            while True:
                if self._cancelled():
                    stop_reason = "cancelled"
                    break
                if pick is not None:
                    tok = pick(internals.last_logits(lc, llm, n_vocab))
                else:
                    tok = internals.sample(llm, sampler)
                if grammar_on:
                    if checker.allows(tok):
                        internals.accept(grammar_sampler, tok)  # keep the full chain's grammar in step
                    else:
                        tok = internals.sample(llm, grammar_sampler)
                    checker.accept(tok)
                if not req.ignore_eos and (tok in stop_ids or lc.llama_vocab_is_eog(vocab, tok)):
                    outbox.append(decoder.decode(b"", final=True))  # pending bytes belong before the stop
                    stop_token = self._piece(tok)
                    stop_reason = "stop"
                    break
                piece = decoder.decode(self._piece_bytes(tok))
                outbox.append(piece)
                n_gen += 1
                if grammar_sampler is not None and not grammar_on:
                    trigger = req.grammar_trigger or ""
                    trigger_tail = (trigger_tail + piece)[-(len(trigger) + 64):]
                    if trigger in trigger_tail:
                        grammar_on = True  # from here on the reply follows the grammar
                now = time.perf_counter()
                if ttft is None:
                    t_first = now
                    ttft = t_first - t_start
                if now - last_send >= SEND_INTERVAL_S:
                    # Fast models produce tokens faster than anyone can read them: batching
                    # the pipe writes keeps the app's wake-ups from slowing the compute threads.
                    flush()
                    last_send = now
                if not snapshot_done:
                    # After the first token is on its way: the cache holds exactly the
                    # prompt now, which is what the next turn will start from.
                    snap = self._snapshot(tokens)
                    if snap is not None and req.conv_key:
                        self.states.put(req.conv_key, snap)
                    snapshot_done = True
                if n_gen >= max_tokens:
                    stop_reason = "length" if n_gen < n_ctx - len(tokens) else "context"
                    break
                t_decode = time.perf_counter()
                llm.eval([tok])
                decode_s += time.perf_counter() - t_decode
        except Exception as exc:  # noqa: BLE001 - an aborted or failed decode ends the request
            self._reset_live()
            if self._cancelled():
                stop_reason = "cancelled"
            else:
                flush()
                self._send(P.RequestFailed(req.req_id, f"Generation failed: {exc}"))
                return
        outbox.append(decoder.decode(b"", final=True))
        flush()
        if stop_token:
            raw_parts.append(stop_token)
        t_end = time.perf_counter()
        gen_s = t_end - t_first if n_gen > 1 else 0.0
        stats = {
            "prompt_tokens": len(tokens),
            "prompt_tokens_evaluated": len(tokens) - keep,
            "prompt_cache": source,
            "completion_tokens": n_gen,
            "ttft_ms": (ttft if ttft is not None else t_end - t_start) * 1000.0,
            "prompt_eval_s": locals().get("prompt_eval_s", 0.0),
            "gen_tok_per_s": ((n_gen - 1) / gen_s) if gen_s > 0 else 0.0,
            # Hearth's own time per generated token: sampling, detokenising, the pipe
            # (what the benchmark compares against llama-bench, which does none of that).
            "gen_overhead_ms": ((gen_s - decode_s) / (n_gen - 1) * 1000.0) if gen_s > 0 else 0.0,
            "total_s": t_end - t_start,
            "stop_reason": stop_reason,
            "raw": "".join(raw_parts),
            "n_ctx": n_ctx,
            "context_used": internals.cached_count(llm),
            "worker_rss_bytes": _rss_bytes(),
            "worker_peak_rss_bytes": _peak_rss_bytes(),
            "states_cached": len(self.states),
            "states_bytes": self.states.n_bytes,
        }
        self._send(P.GenerationDone(req.req_id, stats))

    # ---- states on disk --------------------------------------------------

    def _state_file(self, conv_key: str) -> Path:
        assert self.states_dir is not None
        name = hashlib.sha256(conv_key.encode()).hexdigest()[:32]
        return self.states_dir / f"{name}.state"

    def save_states(self, req: P.SaveStatesRequest) -> int:
        directory = Path(req.directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.states_dir = directory
        saved = 0
        for key in req.conv_keys:
            snap = self.states.latest_for(key)
            if snap is None or len(snap.data) > req.max_bytes_per_state:
                continue
            header = json.dumps(
                {"model": self.model_identity, "conv_key": key, "tokens": snap.tokens}
            ).encode()
            path = self._state_file(key)
            tmp = path.with_suffix(".tmp")
            with open(tmp, "wb") as f:
                f.write(_STATE_MAGIC + struct.pack("<Q", len(header)) + header + snap.data)
            os.replace(tmp, path)
            saved += 1
        return saved

    def _load_disk_state(self, conv_key: str, tokens: list[int]) -> _Snapshot | None:
        path = self._state_file(conv_key)
        if not path.is_file():
            return None
        try:
            with open(path, "rb") as f:
                blob = f.read()
            if not blob.startswith(_STATE_MAGIC):
                raise ValueError("bad magic")
            (hlen,) = struct.unpack_from("<Q", blob, len(_STATE_MAGIC))
            start = len(_STATE_MAGIC) + 8
            header = json.loads(blob[start : start + hlen])
            data = blob[start + hlen :]
            saved_tokens = [int(t) for t in header["tokens"]]
            ok = (
                header.get("model") == self.model_identity
                and header.get("conv_key") == conv_key
                and len(saved_tokens) <= len(tokens)
                and saved_tokens == tokens[: len(saved_tokens)]
                and data
            )
        except (OSError, ValueError, KeyError, struct.error) as exc:
            log.warning("discarding unreadable saved state %s: %s", path, exc)
            ok = False
        if not ok:
            log.info("discarding saved state %s: it does not match this model or conversation", path)
            path.unlink(missing_ok=True)
            return None
        snap = _Snapshot(saved_tokens, data)
        self.states.put(conv_key, snap)
        return snap

    # ---- misc ------------------------------------------------------------

    def count(self, req: P.CountRequest) -> None:
        if self.llm is None:
            self._send(P.RequestFailed(req.req_id, "No model is loaded."))
            return
        ids = self.tokenize(req.segments)
        self._send(P.CountResult(req.req_id, len(ids), ids))

    def embed(self, req: P.EmbedRequest) -> None:
        if self.llm is None:
            self._send(P.RequestFailed(req.req_id, "No model is loaded."))
            return
        try:
            vectors = self.llm.embed(req.texts, normalize=True)
        except Exception as exc:  # noqa: BLE001
            self._send(P.RequestFailed(req.req_id, f"Embedding failed: {exc}"))
            return
        if vectors and isinstance(vectors[0], float):
            vectors = [vectors]
        out = []
        for v in vectors:
            if v and isinstance(v[0], list):
                # A model without a pooling type gives one vector per token: mean-pool them.
                n = len(v)
                v = [sum(col) / n for col in zip(*v)]
                norm = sum(x * x for x in v) ** 0.5 or 1.0
                v = [x / norm for x in v]
            out.append([float(x) for x in v])
        self._send(P.EmbedResult(req.req_id, out))

    def stats(self, req: P.StatsRequest) -> None:
        self._send(
            P.StatsResult(
                req.req_id,
                {
                    "rss_bytes": _rss_bytes(),
                    "peak_rss_bytes": _peak_rss_bytes(),
                    "states_cached": len(self.states),
                    "states_bytes": self.states.n_bytes,
                    "states_budget_bytes": self.states.budget_bytes,
                    "states_max_entries": self.states.max_entries,
                },
            )
        )

    def serve(self) -> None:
        while True:
            try:
                req = self.conn.recv()
            except (EOFError, OSError):
                return  # the app went away
            if isinstance(req, P.ShutdownRequest):
                return
            if isinstance(req, P.LoadRequest):
                self.load(req)
            elif isinstance(req, P.GenerateRequest):
                self.generate(req)
            elif isinstance(req, P.CountRequest):
                self.count(req)
            elif isinstance(req, P.EmbedRequest):
                self.embed(req)
            elif isinstance(req, P.SaveStatesRequest):
                n = self.save_states(req)
                self._send(P.StatsResult(req.req_id, {"saved": n}))
            elif isinstance(req, P.StatsRequest):
                self.stats(req)


def _c_strlen() -> int | None:
    """The address of the C library's strlen, or None where it can't be found."""
    import ctypes.util

    try:
        if sys.platform == "win32":
            lib = ctypes.cdll.msvcrt
        else:
            name = ctypes.util.find_library("c")
            lib = ctypes.CDLL(name) if name else ctypes.CDLL(None)
        return ctypes.cast(lib.strlen, ctypes.c_void_p).value
    except (OSError, AttributeError):
        return None


_SPECIAL_SHAPE = re.compile(r"<\|[^<>|\s]{1,64}\|>")


def _plain_pieces(text: str) -> list[str]:
    """Split ``text`` so that no piece contains a whole ``<|...|>`` token text."""
    pieces: list[str] = []
    pos = 0
    for m in _SPECIAL_SHAPE.finditer(text):
        if m.start() > pos:
            pieces.append(text[pos:m.start()])
        pieces.append(m.group(0)[:-2])
        pieces.append("|>")
        pos = m.end()
    if pos < len(text):
        pieces.append(text[pos:])
    return pieces


def _explain_load_failure(path: str, exc: BaseException, log_tail: str) -> tuple[str, str]:
    name = os.path.basename(path)
    text = f"{exc}\n{log_tail}".lower()
    if "unknown model architecture" in text:
        arch = ""
        for line in log_tail.splitlines():
            if "unknown model architecture" in line:
                arch = line.split("unknown model architecture:")[-1].strip().strip("'")
        what = f" '{arch}'" if arch else ""
        return (
            f"{name}: this version of llama.cpp cannot run the model architecture{what}. "
            "Choose another model, or update Hearth.",
            "format",
        )
    if any(s in text for s in ("failed to allocate", "out of memory", "cudamalloc failed", "unable to allocate")):
        return (f"{name}: not enough memory to load this model with these settings.", "oom")
    if any(s in text for s in ("invalid magic", "not a gguf", "failed to read magic", "gguf_init_from_file")):
        return (f"{name} is not a valid GGUF model file (it may be damaged or incomplete).", "format")
    if any(s in text for s in ("truncated", "data is not within the file bounds", "failed to read")):
        return (f"{name} is incomplete or damaged (the file ends early). Download it again.", "format")
    return (f"{name} could not be loaded: {exc}", "other")


def main(conn: Connection, cancel_flag: Any, log_level: int = logging.WARNING) -> None:
    """Entry point of the worker process (multiprocessing target)."""
    logging.basicConfig(level=log_level, format="%(asctime)s worker %(levelname)s %(name)s: %(message)s")
    engine = Engine(conn, cancel_flag)
    try:
        engine.serve()
    finally:
        engine.close_model()
        try:
            conn.close()
        except OSError:
            pass
