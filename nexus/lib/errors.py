"""The one error shape of every Nexus response, and the one application error type.

    {"error": {"type": "invalid_request_error", "code": "rate_limited",
               "message": "human sentence", "param": null, "fields": {...}}}

Services raise `ApiError` (or a subclass with its own status and code); DRF's exceptions
and Django's are rendered by the same functions, so a client sees one shape everywhere.
"""

from __future__ import annotations

import math
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

# OpenAI's error types, by status, so OpenAI clients read Nexus errors without surprise.
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
    502: "upstream_error",
    503: "service_unavailable_error",
    504: "upstream_error",
}

_DEFAULT_MESSAGES = {
    400: ("bad_request", "The request is not valid."),
    401: ("not_authenticated", "Authentication credentials were not provided or are not valid."),
    403: ("permission_denied", "You do not have permission to perform this action."),
    404: ("not_found", "Not found."),
    405: ("method_not_allowed", "This method is not allowed on this path."),
    413: ("request_too_large", "The request body is too large."),
    415: ("unsupported_media_type", "Send the request body as application/json."),
    429: ("rate_limited", "Too many requests."),
    500: ("server_error", "Something went wrong on our side. It has been logged."),
    503: ("service_unavailable", "The service is temporarily unavailable."),
}


class ApiError(exceptions.APIException):
    """An error a service raises for the client to see: status, code, message, details."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    default_code = "bad_request"
    default_detail = "The request is not valid."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        status_code: int | None = None,
        param: str | None = None,
        fields: dict[str, list[str]] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail=message or self.default_detail, code=code or self.default_code)
        if status_code is not None:
            self.status_code = status_code
        self.code = code or self.default_code
        self.message = str(message or self.default_detail)
        self.param = param
        self.fields = fields
        self.retry_after = retry_after


def error_type(status_code: int) -> str:
    return _TYPES.get(status_code, "api_error" if status_code >= 500 else "invalid_request_error")


def error_body(
    status_code: int,
    *,
    code: str | None = None,
    message: str | None = None,
    param: str | None = None,
    fields: dict[str, Any] | None = None,
) -> dict[str, Any]:
    default_code, default_message = _DEFAULT_MESSAGES.get(
        status_code, ("server_error" if status_code >= 500 else "bad_request", "The request failed.")
    )
    return {
        "error": {
            "type": error_type(status_code),
            "code": code or default_code,
            "message": message or default_message,
            "param": param,
            "fields": fields,
        }
    }


def error_response(status_code: int, **kwargs: Any) -> JsonResponse:
    """A plain Django response in the error shape, for code outside DRF."""
    response = JsonResponse(error_body(status_code, **kwargs), status=status_code)
    return response


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


def _flatten(detail: Any) -> Any:
    """DRF's ErrorDetail trees as plain lists of strings."""
    if isinstance(detail, dict):
        return {key: _flatten(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_flatten(item) for item in detail]
    return str(detail)


def _first_code(detail: Any) -> str | None:
    if isinstance(detail, dict):
        for value in detail.values():
            return _first_code(value)
    if isinstance(detail, list) and detail:
        return _first_code(detail[0])
    return getattr(detail, "code", None)


def _messages(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [message for item in value.values() for message in _messages(item)]
    if isinstance(value, list):
        return [message for item in value for message in _messages(item)]
    return [str(value)]


def _validation_body(detail: Any) -> dict[str, Any]:
    code = _first_code(detail) or "invalid"
    if not isinstance(detail, dict):
        return error_body(400, code=code, message=" ".join(_messages(detail)))
    fields = _flatten(detail)
    non_field = fields.pop("non_field_errors", None)
    parts = [" ".join(_messages(non_field))] if non_field else []
    parts += [f"{name}: {' '.join(_messages(errors))}" for name, errors in fields.items()]
    return error_body(
        400, code=code, message="; ".join(parts), param=next(iter(fields), None), fields=fields or None
    )


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, re-shaped. Exceptions DRF does not know propagate (and become 500)."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response

    if isinstance(exc, ApiError):
        body = error_body(
            exc.status_code, code=exc.code, message=exc.message, param=exc.param, fields=exc.fields
        )
        if exc.retry_after is not None:
            response["Retry-After"] = retry_after_header(exc.retry_after)
    elif isinstance(exc, exceptions.ValidationError):
        body = _validation_body(exc.detail)
    else:
        detail = exc.detail
        structured = isinstance(detail, list | dict)
        code = _first_code(detail) if structured else getattr(detail, "code", None)
        if isinstance(exc, exceptions.Throttled):
            code = "rate_limited"
        body = error_body(response.status_code, code=code, message=None if structured else str(detail))
    response.data = body
    return response
