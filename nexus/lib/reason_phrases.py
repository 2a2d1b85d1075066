"""Standard reason phrases in daphne's status lines.

daphne 4.2.3 sets the status of every response with Twisted's `Request.setResponseCode(status)`
(daphne/http_protocol.py), passing no phrase, so Twisted looks it up in its own table,
`twisted.web.http.RESPONSES`, and writes "Unknown Status" for any code missing there: 422 and
429 are missing, and some phrases it has are not the standard ones ("Gateway Time-out").
Clients and proxies that log or show the phrase then print "429 Unknown Status".

The ASGI message carries no phrase, so the table is the one place to fix: it is filled once,
at startup, from `http.HTTPStatus`. No daphne or Twisted code is replaced or wrapped.
"""

from __future__ import annotations

from http import HTTPStatus

from twisted.web import http as twisted_http

# Not in the RFCs, hence not in HTTPStatus: Anthropic's status for an overloaded API, which an
# Anthropic-compatible surface passes on as Anthropic's clients expect it.
NONSTANDARD_PHRASES = {529: "Overloaded"}


def reason_phrases() -> dict[int, bytes]:
    phrases = {status.value: status.phrase for status in HTTPStatus} | NONSTANDARD_PHRASES
    return {code: phrase.encode("ascii") for code, phrase in phrases.items()}


def install_reason_phrases() -> None:
    """Puts the standard phrases in the table Twisted's `setResponseCode` reads, in place."""
    twisted_http.RESPONSES.update(reason_phrases())
