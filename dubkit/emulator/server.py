"""The HTTP side of the emulator: a standard-library server speaking SSE over HTTP/1.1."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from dubkit.emulator.answer import Answer, ChunkContext, build_answer, iter_chunks
from dubkit.emulator.config import EmulatorConfig, RequestRecord
from dubkit.emulator.decode import decode_media
from dubkit.emulator.limits import FaultDice, FaultDraw, Quota, fault_error
from dubkit.emulator.protocol import (
    MAX_INPUT_TOKENS,
    ApiError,
    ParsedRequest,
    bad,
    check_auth,
    parse_request,
)
from dubkit.emulator.translations import LocalEngine, synthetic

logger = logging.getLogger(__name__)

PATHS = ("/compatible-mode/v1/chat/completions", "/v1/chat/completions")
MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass(slots=True)
class _Exchange:
    """Mutable per-request state, frozen into a RequestRecord at the end."""

    time: float
    concurrency: int
    path: str
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: int = 0
    fault: str | None = None
    sha256: str | None = None
    target: str | None = None
    modalities: tuple[str, ...] = ()
    ok: bool = False
    model: str | None = None
    error_code: str | None = None
    input_ms: int = 0
    voice: str | None = None
    answer: Answer | None = None
    done: RequestRecord | None = None  # set when the exchange ends; the answer is then dropped

    def finish(self) -> RequestRecord:
        """Freeze the record and let the answer (its audio) go: a long-running emulator
        keeps a record per request, not every answer it ever gave."""
        self.done = self.record()
        self.answer = None
        return self.done

    def record(self) -> RequestRecord:
        if self.done is not None:
            return self.done
        usage = self.answer.usage if self.answer else {}
        return RequestRecord(
            time=self.time, status=self.status, fault=self.fault, concurrency=self.concurrency,
            audio_sha256=self.sha256, target_lang=self.target, modalities=self.modalities,
            ok=self.ok, path=self.path, model=self.model, request_id=self.request_id,
            error_code=self.error_code, input_ms=self.input_ms, voice=self.voice,
            output_ms=self.answer.output_ms if self.answer else 0,
            finish_reason=self.answer.finish_reason if self.answer else None,
            prompt_tokens=usage.get("prompt_tokens", 0),
            completion_tokens=usage.get("completion_tokens", 0),
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    emulator: Emulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log (never print) what escaped a handler, e.g. a client resetting the connection."""
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dubkit-emulator"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.emulator._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.emulator._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._send_json(404, {"error": {"code": "NotFound", "param": None, "type": "NotFound",
                                        "message": f"{self.path} not found; POST {PATHS[0]}"}})

    def do_POST(self) -> None:
        emu = self.server.emulator
        ex = emu._arrive(self.path.split("?", 1)[0])
        try:
            try:
                self._exchange(ex)
            except ApiError as e:
                self._send_error(ex, e)
        except OSError as e:  # the client went away (reset, broken pipe, timeout)
            logger.debug("client connection lost: %s", e)
            self.close_connection = True
        finally:
            emu._depart(ex)

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None or not length.strip().isdigit():
            self.close_connection = True
            raise ApiError(411, "invalid_parameter_error", "Content-Length is required.")
        n = int(length)
        if n > MAX_BODY_BYTES:
            self.close_connection = True
            raise ApiError(413, "invalid_parameter_error",
                           f"Request body of {n} bytes exceeds {MAX_BODY_BYTES}.")
        return self.rfile.read(n)

    def _exchange(self, ex: _Exchange) -> None:
        emu = self.server.emulator
        raw = self._read_body()
        if ex.path not in PATHS:
            raise ApiError(404, "NotFound", f"{ex.path} not found; POST {PATHS[0]}")
        if emu.config.latency_s and emu._stopping.wait(emu.config.latency_s):
            raise ApiError(503, "ModelUnavailable", "The emulator is shutting down.")
        check_auth(self.headers.get("Authorization"), emu.config.api_key)
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise bad(f"The request body is not valid JSON: {e}") from e
        if isinstance(body, dict):
            ex.model = body.get("model") if isinstance(body.get("model"), str) else None
        req = parse_request(body, emu.config.models)
        if req.voice in emu.config.unknown_voices:
            raise bad(f"audio.voice {req.voice!r} is not a supported voice.", "audio.voice")
        ex.target, ex.modalities, ex.voice = req.target.code, req.modalities, req.voice
        decoded = decode_media(req.media, req.kind)
        ex.sha256, ex.input_ms = decoded.sha256, decoded.duration_ms
        if decoded.prompt_tokens > MAX_INPUT_TOKENS:
            raise bad(f"Range of input length should be [1, {MAX_INPUT_TOKENS}] tokens, "
                      f"got {decoded.prompt_tokens}.")
        emu.quota.admit(time.monotonic(), decoded.prompt_tokens)
        if req.target.code in emu.config.down_targets:
            raise fault_error("503")
        draw = emu.dice.draw()
        ex.fault = draw.kind
        if draw.kind in ("429", "429_native", "500", "503"):
            raise fault_error(draw.kind)
        text, pcm = emu._translate(req, decoded)
        answer = build_answer(req, decoded, text, pcm)
        ex.answer = answer
        emu.quota.add_tokens(time.monotonic(), answer.usage["completion_tokens"])
        self._stream(ex, req, answer, draw)

    def _stream(self, ex: _Exchange, req: ParsedRequest, answer: Answer, draw: FaultDraw) -> None:
        emu = self.server.emulator
        ctx = ChunkContext(f"chatcmpl-{ex.uid}", f"audio_{ex.uid}", int(time.time()), req.model)
        ex.status = 200
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", ex.request_id)
        self.end_headers()
        rng = np.random.default_rng(int(ex.sha256[:8], 16) if ex.sha256 else 0)
        chunks = iter_chunks(answer, ctx, audio_chunk_bytes=emu.config.audio_chunk_bytes,
                             include_usage=req.include_usage, rng=rng)
        for sent, chunk in enumerate(chunks):
            if draw.kind is not None and sent == draw.after_chunks:
                self._strike(draw.kind, ex)
                return
            if sent and emu.config.chunk_interval_s and emu._stopping.wait(
                    emu.config.chunk_interval_s):
                self._abort()
                return
            self._write_event(json.dumps(chunk, ensure_ascii=False))
        if draw.kind is not None:  # the answer was shorter than the fault's delay
            self._strike(draw.kind, ex)
            return
        self._write_event("[DONE]")
        ex.ok = True  # set before the last byte, so a client that saw it sees the record
        try:
            self._write_chunk(b"")
        except OSError:
            ex.ok = False
            raise

    def _strike(self, kind: str, ex: _Exchange) -> None:
        """A mid-stream fault: dropped connection, error event, or stall."""
        emu = self.server.emulator
        if kind == "error_event":
            self._write_event(json.dumps({"error": {
                "code": "internal_error",
                "message": "An internal error occurred during generation, please retry.",
                "type": "internal_error",
            }, "request_id": ex.request_id}))
            self._write_chunk(b"")
            self.close_connection = True
            return
        if kind == "stall":
            emu._stopping.wait(emu.config.stall_s)
        self._abort()

    def _abort(self) -> None:
        """Close the connection without the terminating chunk."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode("ascii") + data + b"\r\n")
        self.wfile.flush()

    def _write_event(self, data: str) -> None:
        self._write_chunk(f"data: {data}\n\n".encode())

    def _send_error(self, ex: _Exchange, err: ApiError) -> None:
        ex.status, ex.error_code = err.status, err.code
        self._send_json(err.status, err.body(ex.request_id, f"chatcmpl-{ex.uid}"), ex.request_id)

    def _send_json(self, status: int, body: dict[str, Any], request_id: str = "") -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if request_id:
            self.send_header("x-request-id", request_id)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


class Emulator:
    """The qwen3-livetranslate-flash emulator, serving on loopback in a background thread.

    Use as a context manager, or :meth:`start` / :meth:`stop`.
    """

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.quota = Quota(self.config.rpm, self.config.tpm)
        self.dice = FaultDice(self.config.fault_rate, self.config.faults, self.config.seed)
        self._lock = threading.Lock()
        self._exchanges: list[_Exchange] = []
        self._in_flight = 0
        self._conns: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._local: LocalEngine | None = None

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> Emulator:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server((self.config.host, self.config.port), _Handler)
        server.emulator = self
        if self.config.engine == "local":  # the recognizer's model loads before the first request
            with self._lock:
                self._local = self._local or LocalEngine()
            self._local.warm()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05},
            name="dubkit-emulator", daemon=True,
        )
        self._thread.start()
        logger.info("emulator serving at %s (engine %s)", self.base_url, self.config.engine)
        return self

    def stop(self) -> None:
        """Stop serving; stalled or slow streams are cut. Returns within about a second."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if thread is not None:
            thread.join(timeout=1.0)
        if self._local is not None:
            self._local.close()
            self._local = None
        self._server = self._thread = None
        logger.info("emulator stopped")

    def wait(self) -> None:
        """Block until the server stops."""
        thread = self._thread
        while thread is not None and thread.is_alive():
            thread.join(timeout=0.5)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- public state ----------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        host = self.config.host if ":" not in self.config.host else f"[{self.config.host}]"
        return f"http://{host}:{self.port}/compatible-mode/v1"

    @property
    def records(self) -> list[RequestRecord]:
        """A snapshot, in arrival order; a request still in progress has status 0."""
        with self._lock:
            return [ex.record() for ex in self._exchanges]

    def reset_records(self) -> None:
        with self._lock:
            self._exchanges.clear()

    # -- handler hooks ---------------------------------------------------------------
    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)

    def _arrive(self, path: str) -> _Exchange:
        with self._lock:
            self._in_flight += 1
            ex = _Exchange(time=time.monotonic(), concurrency=self._in_flight, path=path)
            self._exchanges.append(ex)
            return ex

    def _depart(self, ex: _Exchange) -> None:
        with self._lock:
            record = ex.finish()
        with self._lock:
            self._in_flight -= 1
        logger.info(
            "POST %s -> %s%s target=%s in=%dms out=%dms ok=%s",
            record.path, record.status, f" fault={record.fault}" if record.fault else "",
            record.target_lang, record.input_ms, record.output_ms, record.ok,
        )

    def _translate(self, req: ParsedRequest, decoded: Any) -> tuple[str, np.ndarray]:
        if self.config.engine == "local":
            with self._lock:
                if self._local is None:
                    self._local = LocalEngine()
                engine = self._local
            return engine.translate(req, decoded)
        return synthetic(req, decoded, canned=self.config.canned)


def serve(config: EmulatorConfig, *, on_ready: Callable[[Emulator], None] | None = None) -> None:
    """Serve until interrupted (KeyboardInterrupt propagates after a clean stop).

    ``on_ready`` is called with the running emulator (e.g. to print its base URL).
    """
    with Emulator(config) as emu:
        if on_ready is not None:
            on_ready(emu)
        emu.wait()


__all__ = ["Emulator", "serve"]
