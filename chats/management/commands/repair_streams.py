"""`manage.py repair_streams`: replies left `streaming` by a server that died become `failed`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from chats.recovery import streams_repair


class Command(BaseCommand):
    help = (
        "Mark `failed` the assistant replies still `streaming` whose turn no server process runs "
        "(their text is kept, rebuilt from the Redis buffer when there is one). Safe while other "
        "processes serve: turns they run are left alone. Run at every server start."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Only list what would be repaired.")

    def handle(self, *args: Any, dry_run: bool = False, **options: Any) -> None:
        repaired = streams_repair(dry_run=dry_run)
        verb = "would be marked" if dry_run else "marked"
        self.stdout.write(
            f"{len(repaired)} interrupted repl{'y' if len(repaired) == 1 else 'ies'} {verb} failed."
        )
        for message_id in repaired:
            self.stdout.write(f"  message {message_id}")
