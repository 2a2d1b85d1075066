"""431 for a request whose header block is too large, instead of a dropped connection.

daphne 4.2.3 parses HTTP/1.1 with Twisted's `HTTPChannel` (twisted.web.http), a
`LineReceiver` that allows 16 KiB per line (`MAX_LENGTH`), 16 KiB for the request line and
all headers together (`totalHeadersSize`) and 500 headers (`maxHeaders`). Past them it
answers badly: one line over `MAX_LENGTH` (a 64 KB cookie or token) hits LineReceiver's
`lineLengthExceeded`, which closes the connection without a word; a block over
`totalHeadersSize` or too many headers get a bare "400 Bad Request". Clients then retry, or
report a network error, instead of being told what is wrong.

The limits stay as they are. Two HTTPChannel methods are wrapped, once at startup: a line that
would pass `totalHeadersSize`, or a header past `maxHeaders`, and `lineLengthExceeded` answer
`431 Request Header Fields Too Large` (414 for a request line that long) with a small JSON
body in the shared error shape, then close. The close is a lingering one, as nginx's: the
write side is shut and what the client is still sending is read and dropped for a moment, so
the client reads the answer instead of a reset.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from twisted.web import http as twisted_http

from nexus.lib.errors import error_body

# How long a refused connection keeps reading (and dropping) what its client still sends.
LINGER_SECONDS = 2.0


def _response(status: int, phrase: str, code: str, message: str) -> bytes:
    body = json.dumps(error_body(status, code=code, message=message)).encode()
    head = (
        f"HTTP/1.1 {status} {phrase}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode("ascii")
    return head + body


HEADERS_TOO_LARGE = _response(
    431,
    "Request Header Fields Too Large",
    "headers_too_large",
    "The request's headers are too large (at most 16 KiB in all, 500 fields).",
)
REQUEST_LINE_TOO_LONG = _response(
    414, "URI Too Long", "uri_too_long", "The request line is too long (at most 16 KiB)."
)


def _refuse(channel: Any, response: bytes) -> None:
    """Answers once, then closes without resetting the connection under the answer."""
    if getattr(channel, "_nexus_refused", False):
        return
    channel._nexus_refused = True
    channel.dataReceived = lambda data: None  # whatever else the client sends is dropped
    transport = channel.transport
    transport.write(response)
    if hasattr(transport, "loseWriteConnection"):
        # Imported here, not at the top: importing the reactor installs Twisted's default one
        # in a process where daphne has not installed its asyncio reactor yet.
        from twisted.internet import reactor

        transport.loseWriteConnection()
        reactor.callLater(LINGER_SECONDS, transport.loseConnection)  # type: ignore[arg-type]  # zope's interface stub lacks self
    else:
        transport.loseConnection()


def install_http_limits() -> None:
    """Wraps HTTPChannel's header-limit paths, once per process."""
    channel_class = twisted_http.HTTPChannel
    if getattr(channel_class, "_nexus_http_limits", False):
        return
    line_received = channel_class.lineReceived
    header_received = channel_class.headerReceived

    @functools.wraps(line_received)
    def lineReceived(self: Any, line: bytes) -> Any:
        if getattr(self, "_nexus_refused", False):
            return None  # lines that were already buffered when the answer went out
        if self._receivedHeaderSize + len(line) > self.totalHeadersSize:
            return _refuse(self, HEADERS_TOO_LARGE)
        return line_received(self, line)

    @functools.wraps(header_received)
    def headerReceived(self: Any, line: bytes) -> Any:
        if getattr(self, "_nexus_refused", False):
            return False
        if self._receivedHeaderCount >= self.maxHeaders:
            _refuse(self, HEADERS_TOO_LARGE)
            return False
        return header_received(self, line)

    def lineLengthExceeded(self: Any, line: bytes) -> None:
        # Name-mangled HTTPChannel state: true until the request line has been read.
        reading_request_line = bool(getattr(self, "_HTTPChannel__first_line", 0))
        _refuse(self, REQUEST_LINE_TOO_LONG if reading_request_line else HEADERS_TOO_LARGE)

    channel_class.lineReceived = lineReceived  # type: ignore[method-assign]
    channel_class.headerReceived = headerReceived  # type: ignore[method-assign]
    channel_class.lineLengthExceeded = lineLengthExceeded  # type: ignore[method-assign]
    channel_class._nexus_http_limits = True  # type: ignore[attr-defined]
