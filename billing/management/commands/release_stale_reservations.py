"""Gives back budget held by AI calls whose process died before settling them.

A turn settles or releases its reservation in a `finally`; only a killed process leaves one
behind. Run this now and then (cron, a scheduler): `manage.py release_stale_reservations`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.services import reservations_release_stale


class Command(BaseCommand):
    help = "Release quota reservations older than --minutes (default 60) that were never settled."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--minutes",
            type=int,
            default=60,
            help="Age past which a reservation is stale; keep it above the longest possible turn.",
        )

    def handle(self, *args: Any, minutes: int, **options: Any) -> None:
        if minutes < 1:
            raise CommandError("--minutes must be 1 or more.")
        released = reservations_release_stale(older_than=timedelta(minutes=minutes))
        self.stdout.write(f"Released {released} stale reservation(s).")
