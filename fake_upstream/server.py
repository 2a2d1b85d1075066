"""The fake upstream's HTTP/1.1 server, its knobs and its record of requests (see the package)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import json
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fake_upstream import embeddings_wire
from fake_upstream.anthropic_wire import AnthropicProtocol
from fake_upstream.gemini_wire import GeminiProtocol
from fake_upstream.openai_wire import OpenAIProtocol
from fake_upstream.protocols import Protocol

DEFAULT_REPLY = "Hello from the fake upstream! This reply streams one word at a time."
_MAX_HEADER_BYTES = 64 * 1024
_MAX_BODY_BYTES = 16 * 1024 * 1024
_STATUS_TEXT = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    529: "Site Overloaded",
}


@dataclass
class Knobs:
    """How the fake answers. Every field can be set by /_control or an x-fake-<name> header."""

    reply: str = DEFAULT_REPLY  # the reply text, streamed word by word
    tokens: int | None = None  # instead of `reply`: a reply of this many words
    token_delay: float = 0.0  # seconds between tokens
    first_token_delay: float = 0.0  # seconds between the response headers and the first token
    error_status: int | None = None  # answer with this HTTP status and the provider's error body
    error_message: str = ""  # the error's message (default: a provider-like sentence)
    context_length: bool = False  # with error_status 400: a context-length error
    fail_times: int | None = None  # only the first N requests (per model) fail; None: all of them
    cut_after: int | None = None  # close the connection after N tokens, mid-stream
    stream_error_after: int | None = None  # after N tokens, an "overloaded" error event ends the stream
    omit_usage: bool = False  # send no token usage
    finish_reason: str = "stop"  # "stop" or "length"
    api_key: str | None = None  # when set, any other key is refused (401, or Gemini's 400)
    retry_after: float | None = None  # a Retry-After header on errors
    # The reply's reasoning (thinking), streamed word by word before its text, in each wire
    # format's own way; it counts as output tokens.
    reasoning: str = ""
    # Tool calls the reply makes after its text: a list of {"name": ..., "arguments": "<JSON text>"}.
    # Set `reply` to "" for a reply that only calls tools; the finish reason becomes tool_calls.
    tool_calls: list[dict[str, Any]] | None = None
    # By default a reply stops at the request's token limit (finish reason length), as real
    # providers do; true: stream on past it, as some OpenAI-compatible servers do.
    ignore_max_tokens: bool = False

    @classmethod
    def names(cls) -> list[str]:
        return [knob.name for knob in dataclasses.fields(cls)]

    def updated(self, values: dict[str, Any]) -> Knobs:
        unknown = set(values) - set(self.names())
        if unknown:
            raise ValueError(f"unknown knobs: {', '.join(sorted(unknown))}")
        changes = {name: _coerce(name, value) for name, value in values.items()}
        return dataclasses.replace(self, **changes)

    def reply_tokens(self) -> list[str]:
        if self.tokens is not None:
            return [f"{' ' if index else ''}word{index + 1}" for index in range(self.tokens)]
        return re.findall(r"\s*\S+|\s+$", self.reply)

    def reasoning_tokens(self) -> list[str]:
        return re.findall(r"\s*\S+|\s+$", self.reasoning)


_NUMBERS = {"tokens", "fail_times", "cut_after", "stream_error_after", "error_status"}
_FLOATS = {"token_delay", "first_token_delay", "retry_after"}
_BOOLS = {"context_length", "omit_usage", "ignore_max_tokens"}
_JSON = {"tool_calls"}


def _coerce(name: str, value: Any) -> Any:
    """Knob values from JSON or from header strings, to their field's type."""
    if value is None or (isinstance(value, str) and value.lower() in ("", "none", "null")):
        if name in ("reply", "error_message", "finish_reason"):
            return ""
        return None
    if name in _NUMBERS:
        return int(value)
    if name in _FLOATS:
        return float(value)
    if name in _BOOLS:
        return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
    if name in _JSON:
        return json.loads(value) if isinstance(value, str) else value
    return str(value)


class BadRequest(Exception):
    pass


@dataclass
class Exchange:
    """One HTTP request on a connection, and how its answer went."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    record: dict[str, Any] = field(default_factory=dict)
    eof_watch: asyncio.Task[bytes] | None = None
    pushback: bytes = b""

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return {key: values[-1] for key, values in parse_qs(urlsplit(self.target).query).items()}

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            raise BadRequest("the body is not JSON") from None

    # --- answering ---

    async def send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        head = {"content-type": "application/json", "content-length": str(len(payload)), **(headers or {})}
        self.writer.write(_head(status, head) + payload)
        await self.writer.drain()
        self.record["status"] = status
        self.record["completed"] = True

    async def start_stream(self, content_type: str = "text/event-stream") -> None:
        head = {"content-type": content_type, "cache-control": "no-cache", "transfer-encoding": "chunked"}
        self.writer.write(_head(200, head))
        await self.writer.drain()
        self.record["status"] = 200
        self.eof_watch = asyncio.ensure_future(self.reader.read(1))

    def client_gone(self) -> bool:
        watch = self.eof_watch
        if watch is None or not watch.done() or watch.cancelled():
            return False
        if watch.exception() is None and watch.result():
            # A byte of the client's next request, not a close: keep it for the next parse.
            self.pushback += watch.result()
            self.eof_watch = asyncio.ensure_future(self.reader.read(1))
            return False
        if not self.record.get("completed"):
            self.record["closed_by_client"] = True
        return True

    async def pause(self, seconds: float) -> bool:
        """Sleeps; False when the client closed the connection meanwhile."""
        if seconds > 0:
            if self.eof_watch is not None:
                await asyncio.wait({self.eof_watch}, timeout=seconds)
            else:
                await asyncio.sleep(seconds)
        return not self.client_gone()

    async def send_chunk(self, data: str) -> bool:
        if self.client_gone():
            return False
        payload = data.encode()
        try:
            self.writer.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
            await self.writer.drain()
        except (ConnectionError, OSError):
            self.record["closed_by_client"] = True
            return False
        return True

    async def end_stream(self) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            self.writer.write(b"0\r\n\r\n")
            await self.writer.drain()
        self.record["completed"] = True
        await self.stop_watching()

    async def stop_watching(self) -> None:
        watch, self.eof_watch = self.eof_watch, None
        if watch is None:
            return
        if watch.done():
            self.eof_watch = watch
            self.client_gone()
            self.eof_watch = None
            return
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch

    def cut(self) -> None:
        """Drop the connection mid-reply, as a crashed upstream or a broken network would."""
        self.record["cut"] = True
        self.writer.close()


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_STATUS_TEXT.get(status, 'Status')}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class FakeUpstream:
    """The server's state: knobs, the requests received, and failure counters."""

    def __init__(self) -> None:
        self.knobs = Knobs()
        self.records: list[dict[str, Any]] = []
        self.failures: Counter[str] = Counter()
        self.ids = itertools.count(1)

    def reset(self) -> None:
        self.knobs = Knobs()
        self.records.clear()
        self.failures.clear()

    async def serve(self, host: str, port: int) -> asyncio.Server:
        return await asyncio.start_server(self.handle_connection, host, port, limit=_MAX_HEADER_BYTES)

    # --- HTTP/1.1 ---

    async def handle_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pushback = b""
        try:
            while True:
                exchange = await self.read_request(reader, writer, pushback)
                if exchange is None:
                    return
                await self.dispatch(exchange)
                pushback = exchange.pushback
                if exchange.record.get("cut") or exchange.record.get("closed_by_client"):
                    return
                if exchange.headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def read_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pushback: bytes
    ) -> Exchange | None:
        try:
            head = pushback + await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        except asyncio.LimitOverrunError:
            writer.write(_head(431, {"content-length": "0", "connection": "close"}))
            return None
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, _version = request_line.split(" ", 2)
        except ValueError:
            return None
        headers: dict[str, str] = {}
        for line in header_lines:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        else:
            length = int(headers.get("content-length", "0") or 0)
            if length > _MAX_BODY_BYTES:
                return None
            body = await reader.readexactly(length) if length else b""
        return Exchange(
            method=method, target=target, headers=headers, body=body, reader=reader, writer=writer
        )

    async def dispatch(self, exchange: Exchange) -> None:
        path = exchange.path
        try:
            if path == "/_control" and exchange.method == "POST":
                self.knobs = self.knobs.updated(exchange.json() or {})
                await exchange.send(200, {"knobs": dataclasses.asdict(self.knobs)})
            elif path == "/_reset" and exchange.method == "POST":
                self.reset()
                await exchange.send(200, {"knobs": dataclasses.asdict(self.knobs)})
            elif path == "/_requests" and exchange.method == "GET":
                await exchange.send(200, {"requests": self.records})
            elif path in ("/_health", "/health"):
                await exchange.send(200, {"status": "ok"})
            elif exchange.method == "POST" and path.endswith("/chat/completions"):
                await self.answer(exchange, OpenAIProtocol(exchange))
            elif exchange.method == "POST" and path.endswith("/embeddings"):
                await self.answer_embeddings(exchange, embeddings_wire.OpenAIEmbeddings(exchange))
            elif exchange.method == "POST" and re.search(r"/models/[^/]+:(batchE|e)mbedContents?$", path):
                await self.answer_embeddings(exchange, embeddings_wire.GeminiEmbeddings(exchange))
            elif exchange.method == "POST" and path.endswith("/v1/messages"):
                await self.answer(exchange, AnthropicProtocol(exchange))
            elif exchange.method == "POST" and re.search(r"/models/[^/]+:(stream)?[gG]enerateContent$", path):
                await self.answer(exchange, GeminiProtocol(exchange))
            else:
                await exchange.send(404, {"error": {"message": f"No route for {exchange.method} {path}"}})
        except (BadRequest, ValueError, TypeError) as exc:
            await exchange.send(400, {"error": {"message": str(exc), "type": "invalid_request_error"}})

    # --- one model call ---

    def _received(self, exchange: Exchange, protocol: Protocol) -> tuple[Knobs, dict[str, Any]]:
        """The knobs for this request (with its x-fake- headers), and its body, recorded."""
        overrides = {
            name[len("x-fake-") :].replace("-", "_"): value
            for name, value in exchange.headers.items()
            if name.startswith("x-fake-")
        }
        knobs = self.knobs.updated(overrides)
        body = exchange.json()
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        record = exchange.record
        record.update(
            id=next(self.ids),
            time=time.time(),
            protocol=protocol.name,
            method=exchange.method,
            path=exchange.path,
            query=exchange.query,
            headers=exchange.headers,
            body=body,
            model=protocol.model(body),
            stream=protocol.streaming(body),
            status=None,
            tokens_sent=0,
            completed=False,
            closed_by_client=False,
            cut=False,
        )
        self.records.append(record)
        return knobs, body

    async def _refused(self, protocol: Protocol, knobs: Knobs, record: dict[str, Any]) -> bool:
        """Answers with an error if the knobs say so (a wrong key, an error status); True if it did."""
        key = protocol.api_key()
        if knobs.api_key is not None and key != knobs.api_key:
            await protocol.send_error(*protocol.bad_key(key))
            return True
        if knobs.error_status is not None:
            self.failures[record["model"]] += 1
            if knobs.fail_times is None or self.failures[record["model"]] <= knobs.fail_times:
                extra = {"retry-after": f"{knobs.retry_after:g}"} if knobs.retry_after is not None else {}
                message = knobs.error_message or (
                    protocol.context_length_message()
                    if knobs.context_length
                    else _error_sentence(knobs.error_status)
                )
                await protocol.send_error(knobs.error_status, message, extra)
                return True
        return False

    async def answer_embeddings(
        self, exchange: Exchange, protocol: embeddings_wire.EmbeddingProtocol
    ) -> None:
        """One embeddings call: the knobs' errors and delay (first_token_delay), then the vectors."""
        knobs, body = self._received(exchange, protocol)
        record = exchange.record
        if await self._refused(protocol, knobs, record):
            return
        protocol.knobs = knobs
        inputs = protocol.inputs(body)
        dimensions = protocol.dimensions(body) or embeddings_wire.usual_dimensions(record["model"])
        vectors = [embeddings_wire.vector(item, dimensions) for item in inputs]
        usage = None if knobs.omit_usage else sum(embeddings_wire.tokens(item) for item in inputs)
        record["usage"] = None if usage is None else {"input_tokens": usage, "output_tokens": 0}
        if not await exchange.pause(knobs.first_token_delay):
            return
        await exchange.send(200, protocol.reply(body, vectors, usage))

    async def answer(self, exchange: Exchange, protocol: Protocol) -> None:
        knobs, body = self._received(exchange, protocol)
        record = exchange.record
        if await self._refused(protocol, knobs, record):
            return

        protocol.knobs = knobs
        tokens = knobs.reply_tokens()
        finish = knobs.finish_reason
        limit = protocol.max_tokens(body)
        if limit is not None and not knobs.ignore_max_tokens and len(tokens) > limit:
            tokens, finish = tokens[:limit], "length"
        elif knobs.tool_calls and finish == "stop":
            finish = "tool_calls"
        reasoning = knobs.reasoning_tokens()
        input_tokens = _count_input_tokens(body)
        output_tokens = (len(tokens) * protocol.choices(body)) + len(reasoning)
        usage = None if knobs.omit_usage else (input_tokens, output_tokens)
        record["usage"] = None if usage is None else {"input_tokens": usage[0], "output_tokens": usage[1]}
        if not record["stream"]:
            delay = knobs.first_token_delay + knobs.token_delay * (len(tokens) + len(reasoning))
            if not await exchange.pause(delay):
                return
            await exchange.send(200, protocol.complete(body, "".join(tokens), usage, finish))
            record["tokens_sent"] = len(tokens)
            return

        await exchange.start_stream()
        try:
            for event in protocol.opening(body, usage):
                if not await exchange.send_chunk(event):
                    return
            for index, token in enumerate(reasoning):
                delay = knobs.first_token_delay if index == 0 else knobs.token_delay
                if not await exchange.pause(delay):
                    return
                for event in protocol.reasoning_delta(body, token, index):
                    if not await exchange.send_chunk(event):
                        return
            for index, token in enumerate(tokens):
                if knobs.cut_after is not None and index >= knobs.cut_after:
                    exchange.cut()
                    return
                if knobs.stream_error_after is not None and index >= knobs.stream_error_after:
                    record["stream_error"] = True
                    await exchange.send_chunk(protocol.error_event())
                    await exchange.end_stream()
                    return
                delay = knobs.first_token_delay if index == 0 and not reasoning else knobs.token_delay
                if not await exchange.pause(delay):
                    return
                if not await exchange.send_chunk(protocol.delta(body, token, index, usage)):
                    return
                record["tokens_sent"] = index + 1
            if knobs.cut_after is not None and knobs.cut_after <= len(tokens):
                exchange.cut()
                return
            for index, call in enumerate(knobs.tool_calls or ()):
                for event in protocol.tool_call_events(
                    body, index, str(call["name"]), str(call["arguments"])
                ):
                    if not await exchange.send_chunk(event):
                        return
            for event in protocol.closing(body, usage, finish):
                if not await exchange.send_chunk(event):
                    return
            await exchange.end_stream()
        finally:
            await exchange.stop_watching()


def _error_sentence(status: int) -> str:
    return {
        400: "The request is not valid.",
        401: "Incorrect API key provided.",
        403: "You do not have access to this model.",
        404: "The model does not exist.",
        429: "Rate limit reached for requests. Please try again later.",
        500: "The server had an error while processing your request.",
        502: "Bad gateway.",
        503: "The engine is currently overloaded, please try again later.",
        504: "The upstream timed out.",
        529: "Overloaded.",
    }.get(status, f"Error {status}.")


def _count_input_tokens(body: dict[str, Any]) -> int:
    """A deterministic count the fake reports as input tokens: words of every text in the request."""
    words = 0

    def walk(value: Any) -> None:
        nonlocal words
        if isinstance(value, str):
            words += len(value.split())
        elif isinstance(value, dict):
            for key, item in value.items():
                if key in ("content", "text", "system", "parts", "contents", "messages", "systemInstruction"):
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(body)
    return words + 3


async def run(host: str, port: int) -> None:
    upstream = FakeUpstream()
    server = await upstream.serve(host, port)
    sockets = ", ".join(str(sock.getsockname()[:2]) for sock in server.sockets)
    print(f"fake upstream listening on {sockets}", file=sys.stderr, flush=True)  # noqa: T201
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fake_upstream", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args.host, args.port))


if __name__ == "__main__":
    main()
