"""Seed data of the llm app: providers for the configured credentials, and the demo provider."""

from __future__ import annotations

from collections.abc import Iterator


def seed(*, demo: bool = False) -> Iterator[str]:
    yield "llm: nothing to seed yet."
