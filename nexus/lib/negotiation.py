"""Content negotiation that never answers 406 Not Acceptable.

DRF refuses a request whose Accept header names nothing a renderer offers, before the view
runs. Every streaming client sends such a header (go-openai, httpx-sse, EventSource and
reqwest-eventsource all ask for `text/event-stream`), and the streaming views build their
`text/event-stream` responses themselves, without a renderer: the refusal only ever blocked
clients that would have been served. So when nothing matches, the view's first renderer
(JSON) is taken, and whatever the view answers, errors included, reads as usual.

An explicit format (`?format=json`, or a format suffix) still wins over Accept where a
renderer has it, as in DRF; one that no renderer has is ignored like an unknown Accept,
rather than turned into a misleading 404.
"""

from __future__ import annotations

from collections.abc import Iterable

from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request


class FallbackContentNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, with the first renderer where DRF would refuse."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        offered = list(renderers)
        try:
            selected: tuple[BaseRenderer, str] = super().select_renderer(request, offered, format_suffix)
        except exceptions.NotAcceptable as exc:
            # The renderers left after the format filter: an explicit ?format= keeps its choice.
            renderer = (exc.available_renderers or offered)[0]
            return renderer, renderer.media_type
        return selected

    def filter_renderers(self, renderers: Iterable[BaseRenderer], format: str) -> list[BaseRenderer]:
        offered = list(renderers)
        return [renderer for renderer in offered if renderer.format == format] or offered
