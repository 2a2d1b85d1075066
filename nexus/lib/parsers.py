"""The one request parser: JSON, bounded in size and depth, strict about encoding.

DRF's own parser reads the request stream without Django's upload limit, so a client
could send any amount; this one reads at most MAX_REQUEST_BYTES (a view's own
`max_request_bytes`, where it sets one) and answers 413 past it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import APIException, ParseError


class RequestTooLarge(APIException):
    status_code = 413
    default_code = "request_too_large"
    default_detail = "The request body is too large."


# A body that is valid UTF-8 can hold a surrogate only through an escape.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _holds_lone_surrogate(data: Any) -> bool:
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


class JSONParser(parsers.JSONParser):
    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        if stream is None:
            return {}
        view = (parser_context or {}).get("view")
        limit = getattr(view, "max_request_bytes", None) or settings.MAX_REQUEST_BYTES
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise RequestTooLarge(f"The request body is larger than {limit} bytes.")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError("The request body is not valid UTF-8.") from None
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except RecursionError:
            raise ParseError("The JSON in the request body is nested too deeply.") from None
        except ValueError as exc:
            raise ParseError(f"The request body is not valid JSON: {exc}") from None
        if _SURROGATE_ESCAPE.search(text) and _holds_lone_surrogate(data):
            # JSON's \ud800 escapes make strings no database or encoder can hold.
            raise ParseError("The request body holds a lone surrogate (\\ud800-\\udfff), which is not text.")
        return data
