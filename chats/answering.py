"""Views that prepare in a thread and answer on the event loop.

An AI view's database work (authentication, validation, admission, the saved question) is
synchronous Django: it runs once in one of the process's database threads (nexus.lib.db_threads,
after waiting its turn on the loop while they are all busy). What it hands back may be a
`Pending`: the prepared work, which `answering` then starts and waits for on the event loop,
holding no thread while the provider answers. One crossing into a thread to prepare, none
back (no async_to_sync), and the finish's own one (chats.turn).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from asgiref.sync import AsyncToSync, sync_to_async
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from nexus.lib.db_threads import Busy, db_queue, in_thread


class Pending(HttpResponse):
    """What a DRF view hands `answering`: work prepared or admitted, to start and answer."""

    async def answer(self) -> HttpResponseBase:
        raise NotImplementedError

    def abandon(self) -> None:
        """The client left before `answer` was called (runs on the event loop): settle what
        was prepared, as the work's own end would."""


def answering(view: Callable[..., HttpResponseBase]) -> Callable[..., Any]:
    """An async view around a DRF view that may hand back a Pending to answer."""

    async def prepared(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if getattr(AsyncToSync.executors, "current", None) is not None:
            # A sync caller (a WSGI server, Django's test client) waits in its own thread for
            # this view: run it there, on that thread's connection and transaction.
            return await sync_to_async(view)(request, *args, **kwargs)
        try:
            async with db_queue():
                return await in_thread(view)(request, *args, **kwargs)
        except Busy as exc:  # no database thread freed in time
            return _refused(view, request, exc, *args, **kwargs)

    async def handler(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        future = asyncio.ensure_future(prepared(request, *args, **kwargs))
        try:
            response = await asyncio.shield(future)
        except asyncio.CancelledError:
            # The client left while the view prepared: settle it once it is ready.
            future.add_done_callback(_abandon_when_ready)
            raise
        if isinstance(response, Pending):
            return await response.answer()
        return response

    functools.update_wrapper(handler, view)  # keeps `cls` (for the schema) and `csrf_exempt`
    return handler


def _refused(view: Any, request: HttpRequest, exc: Exception, *args: Any, **kwargs: Any) -> HttpResponseBase:
    """The view's own answer to `exc`, in its surface's error shape, without running it."""
    instance = view.cls(**view.initkwargs)
    instance.setup(request, *args, **kwargs)
    drf_request = instance.initialize_request(request, *args, **kwargs)
    instance.headers = instance.default_response_headers
    response = instance.finalize_response(drf_request, instance.handle_exception(exc), *args, **kwargs)
    response.render()
    return response


def _abandon_when_ready(future: asyncio.Future[HttpResponseBase]) -> None:
    if not future.cancelled() and future.exception() is None:
        response = future.result()
        if isinstance(response, Pending):
            response.abandon()
