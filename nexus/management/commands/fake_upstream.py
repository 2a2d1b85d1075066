"""`manage.py fake_upstream --port N`: the fake LLM provider server of the tests, benchmarks
and demos (the `fake_upstream` package, which nothing Nexus runs in production imports)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = (
        "Serve a fake LLM provider speaking the OpenAI, Azure OpenAI, Anthropic and Gemini wire "
        "formats, for tests, benchmarks and demos. POST /_control sets its knobs; GET /_requests "
        "shows what it received."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)

    def handle(self, *args: Any, host: str, port: int, **options: Any) -> None:
        from fake_upstream import run  # a development tool: loaded only when asked for

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run(host, port))
