"""`manage.py purge_conversations --older-than 365d [--dry-run]`: delete old conversations."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from nexus.operations import conversations_purge, duration_parse


class Command(BaseCommand):
    help = (
        "Delete conversations (with their messages) that nobody has changed for longer than "
        "--older-than, e.g. 365d, 12w or 48h. Usage records are kept: they are the ledger. "
        "A conversation whose reply is still streaming is left alone. Recorded in the audit trail."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", required=True, help="Age since the last change: 365d, 12w, 48h.")
        parser.add_argument("--dry-run", action="store_true", help="Only count what would be deleted.")
        parser.add_argument("--batch-size", type=int, default=500, help="Conversations per transaction.")

    def handle(self, *args: Any, older_than: str, dry_run: bool, batch_size: int, **options: Any) -> None:
        try:
            age = duration_parse(older_than)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if batch_size < 1:
            raise CommandError("--batch-size must be 1 or more.")
        before = timezone.now() - age
        cutoff = f"last changed before {before:%Y-%m-%d %H:%M} UTC"

        def progress(done: int, total: int) -> None:
            self.stdout.write(f"  {done}/{total} deleted")

        count = conversations_purge(
            before=before,
            dry_run=dry_run,
            batch_size=batch_size,
            progress=progress,
            reason=f"manage.py purge_conversations --older-than {older_than}",
        )
        noun = "conversation" if count == 1 else "conversations"
        if dry_run:
            self.stdout.write(f"{count} {noun} {cutoff} would be deleted (dry run: nothing was deleted).")
        else:
            self.stdout.write(self.style.SUCCESS(f"{count} {noun} {cutoff} deleted."))
