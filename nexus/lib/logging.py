"""Request ids in every log line, and the JSON log format.

The request id lives in a context variable, so it follows a request through sync and
async code (asgiref copies the context into the threads it runs sync code in).
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")

# Attributes every LogRecord has; anything else was passed with `extra=` and is logged.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime", "request_id"}
)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


# Extras under these names are never written, whoever logs them: texts people wrote and
# credentials stay out of the logs even when a log call passes them by mistake.
REDACTED_EXTRAS = frozenset(
    {
        "password",
        "token",
        "access",
        "refresh",
        "api_key",
        "secret",
        "authorization",
        "prompt",
        "content",
        "messages",
        "reply",
        "text",
    }
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and extras
    (those named in REDACTED_EXTRAS as "[redacted]")."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", request_id_var.get()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = "[redacted]" if key.lower() in REDACTED_EXTRAS else value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
