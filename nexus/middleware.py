"""Project-wide middleware: request ids, request metrics and the access log, and the error
shape for everything DRF does not own.

Both work sync and async, so an ASGI request never pays for a thread hop here, and
neither reads a streaming response.
"""

from __future__ import annotations

import io
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.core.exceptions import BadRequest, PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.http import Http404, HttpRequest, HttpResponseBase, JsonResponse
from django.middleware import clickjacking, common, csrf, security
from django.utils.deprecation import MiddlewareMixin
from django.utils.functional import SimpleLazyObject, empty
from whitenoise.middleware import WhiteNoiseMiddleware

from nexus.lib import metrics, snapshot
from nexus.lib.database_health import pool_saturated
from nexus.lib.errors import error_body, error_response
from nexus.lib.logging import request_id_var

logger = logging.getLogger("nexus.errors")
access_logger = logging.getLogger("nexus.http")
_STATIC_PREFIX = "/" + str(settings.STATIC_URL).strip("/") + "/"

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Paths that serve HTML to people, where Django's own error pages are the right answer.
_HTML_PATHS = ("/admin/", "/admin", "/api/docs", "/static/", "/reset-password")

Handler = Callable[[HttpRequest], Any]


class HybridMiddleware:
    """Calls `before` and `after` around the next handler, in whichever mode it runs."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.is_async:
            return self._acall(request)
        self.before(request)
        return self.after(request, self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        self.before(request)
        return self.after(request, await self.get_response(request))

    def before(self, request: HttpRequest) -> None:
        pass

    def after(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        return response


class CacheSnapshotMiddleware(HybridMiddleware):
    """One round trip to the shared cache for the keys each request reads over and over
    (nexus.lib.snapshot: the runtime settings, the process caches' generations). Django turns
    every exception inside into a response, so `after` always ends the snapshot."""

    def before(self, request: HttpRequest) -> None:
        request._cache_snapshot = snapshot.begin()  # type: ignore[attr-defined]

    def after(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        snapshot.end(request._cache_snapshot)  # type: ignore[attr-defined]
        return response


class RequestIdMiddleware(HybridMiddleware):
    """Takes a well-formed X-Request-ID from the client or makes one; echoes it back."""

    def before(self, request: HttpRequest) -> None:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        request_id_var.set(request_id)

    def after(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        response["X-Request-ID"] = getattr(request, "request_id", request_id_var.get())
        return response


def _route(request: HttpRequest) -> str:
    """The URL pattern that answered (`chat/messages/<int:message_id>`), never the raw path:
    paths carry ids and share tokens, and one label per id would swamp the metrics."""
    match = getattr(request, "resolver_match", None)
    if match is not None and match.route is not None:
        return f"/{match.route}"
    if request.path.startswith(_STATIC_PREFIX):  # answered by WhiteNoise before any URL is resolved
        return f"{_STATIC_PREFIX}*"
    return "unmatched"


def _user_id(request: HttpRequest) -> int | None:
    """The signed-in user's id, without ever loading one (no query in the event loop)."""
    user = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject):
        user = user._wrapped  # type: ignore[attr-defined]  # Django's LazyObject internals
        if user is empty:
            return None
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return getattr(user, "pk", None)


class RequestMetricsMiddleware(HybridMiddleware):
    """Counts and times every request by route and status, and logs one line for it.

    The time is to the response's headers: a stream's own length is the AI call's, which
    the turn measures. The line names the route, not the path, and never a body.
    """

    def before(self, request: HttpRequest) -> None:
        request._nexus_started = time.monotonic()  # type: ignore[attr-defined]

    def after(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        seconds = time.monotonic() - getattr(request, "_nexus_started", time.monotonic())
        route = _route(request)
        metrics.http_request_observed(
            method=request.method or "", route=route, status=response.status_code, seconds=seconds
        )
        # A refusal the client caused (4xx) is routine; a 5xx a warning. Either way this is the
        # request's one line: Django's own django.request line for it (at ERROR for a 503, even
        # a deliberate one such as maintenance) is told it was logged already.
        response._has_been_logged = True  # type: ignore[attr-defined]  # read by django.utils.log.log_response
        access_logger.log(
            logging.WARNING if response.status_code >= 500 else logging.INFO,
            "%s %s %s",
            request.method,
            route,
            response.status_code,
            extra={
                "method": request.method,
                "route": route,
                "status": response.status_code,
                "duration_ms": round(seconds * 1000, 1),
                "user_id": _user_id(request),
            },
        )
        return response


def _is_html_path(request: HttpRequest) -> bool:
    return request.path.startswith(_HTML_PATHS)


class ErrorEnvelopeMiddleware(HybridMiddleware):
    """Every error outside the admin and the docs leaves in the shared error shape.

    DRF views already answer in it. This covers the rest: unknown paths, Django's own
    400/403/404/413 responses, and exceptions nothing else handled, which are logged
    with the request id and answered with a generic message.
    """

    def after(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if response.status_code < 400 or _is_html_path(request) or response.streaming:
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        replacement = JsonResponse(error_body(response.status_code), status=response.status_code)
        for header in ("Retry-After", "Allow", "WWW-Authenticate"):
            if header in response:
                replacement[header] = response[header]
        return replacement

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponseBase | None:
        if _is_html_path(request):
            return None
        if isinstance(exception, Http404):
            return error_response(404)
        if isinstance(exception, PermissionDenied):
            return error_response(403)
        if isinstance(exception, RequestDataTooBig):
            return error_response(413)
        if isinstance(exception, BadRequest | SuspiciousOperation):
            return error_response(400, message=str(exception) or None)
        if isinstance(exception, DatabaseOperationalError) and pool_saturated(exception):
            # Every pooled connection was in use for DATABASE_POOL_TIMEOUT: the database is
            # up and the server is full. The client should come back soon, not think it broken.
            logger.warning("Database pool saturated on %s %s", request.method, request.path)
            busy = error_response(503, code="busy", message="Nexus is busy right now. Try again in a moment.")
            busy["Retry-After"] = "1"
            return busy
        if isinstance(exception, DatabaseOperationalError | DatabaseInterfaceError):
            # PostgreSQL is down or restarting (the pool reconnects by itself): a dependency
            # is unavailable, which is a 503, not a bug of ours.
            logger.warning("Database unavailable on %s %s: %s", request.method, request.path, exception)
            return error_response(503, message="The database is unavailable right now. Try again shortly.")
        logger.exception(
            "Unhandled error on %s %s", request.method, request.path, extra={"path": request.path}
        )
        return error_response(500)


class ChunkedBodyMiddleware(HybridMiddleware):
    """A body sent without Content-Length (chunked, as proxies such as NextChat's server
    forward it) is given its length, so DRF reads it: DRF takes a request without
    Content-Length for one without a body.

    The server has received the whole body already. At most one byte past the largest
    body any endpoint takes is read, so the parser still answers 413 for a larger one.
    """

    def before(self, request: HttpRequest) -> None:
        if request.method not in ("POST", "PUT", "PATCH") or request.META.get("CONTENT_LENGTH"):
            return
        limit = max(settings.MAX_REQUEST_BYTES, settings.MAX_AI_REQUEST_BYTES)
        body = request.read(limit + 1)
        if body:
            # What HttpRequest.body itself keeps after reading, so every later reader gets it.
            request._body = body
            request._stream = io.BytesIO(body)
            request.META["CONTENT_LENGTH"] = str(len(body))


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise, able to run in async mode.

    WhiteNoise's own middleware is sync-only, which makes Django run every request's whole
    middleware chain in a worker thread. Here a request that is not for a static file
    passes straight through on the event loop; only serving a file touches a thread.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Handler) -> None:
        super().__init__(get_response)
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        return super().__call__(request)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        if self.autorefresh:  # development: files are looked up on disk
            static_file = await sync_to_async(self.find_file)(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is not None:
            return await sync_to_async(self.serve)(static_file, request)
        response: HttpResponseBase = await self.get_response(request)
        return response


# --- Django's middleware, without a thread crossing per hook on API requests ----------------


def _on_the_loop_for_api(base: type[MiddlewareMixin]) -> type[MiddlewareMixin]:
    """`base` (one of Django's sync-only middlewares) with its hooks called on the event loop
    for API requests, instead of in a thread each.

    Under ASGI, Django runs every hook of such a middleware through sync_to_async: the seven
    below cost an AI call thirteen crossings into a thread before and after its view. On API
    paths their hooks are plain computation (headers, cookies, lazy objects; nothing there
    reads a session or stores a message, since the API authenticates by token), so they run
    inline. On the pages people use (the admin, the docs, the reset form: _HTML_PATHS), where
    the session and the messages may read or write the database, Django's own way stands.
    """

    class OnTheLoop(base):  # type: ignore[valid-type,misc]
        def __init__(self, get_response: Any) -> None:
            super().__init__(get_response)
            if iscoroutinefunction(get_response) and hasattr(base, "process_view"):
                sync_view: Callable[..., HttpResponseBase | None] = getattr(self, "process_view")  # noqa: B009

                async def process_view(request: HttpRequest, *args: Any) -> HttpResponseBase | None:
                    if _is_html_path(request):
                        return await sync_to_async(sync_view, thread_sensitive=True)(request, *args)
                    return sync_view(request, *args)

                self.process_view = process_view  # what Django's handler calls, as it is

        async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
            if _is_html_path(request):
                return await super().__acall__(request)
            response = self.process_request(request) if hasattr(self, "process_request") else None
            response = response or await self.get_response(request)
            if hasattr(self, "process_response"):
                response = self.process_response(request, response)
            return response

    OnTheLoop.__name__ = OnTheLoop.__qualname__ = base.__name__
    OnTheLoop.__module__ = __name__
    OnTheLoop.__doc__ = base.__doc__
    return OnTheLoop


SecurityMiddleware = _on_the_loop_for_api(security.SecurityMiddleware)
SessionMiddleware = _on_the_loop_for_api(sessions.SessionMiddleware)
CommonMiddleware = _on_the_loop_for_api(common.CommonMiddleware)
CsrfViewMiddleware = _on_the_loop_for_api(csrf.CsrfViewMiddleware)
AuthenticationMiddleware = _on_the_loop_for_api(auth.AuthenticationMiddleware)
MessageMiddleware = _on_the_loop_for_api(messages.MessageMiddleware)
XFrameOptionsMiddleware = _on_the_loop_for_api(clickjacking.XFrameOptionsMiddleware)
