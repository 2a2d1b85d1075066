"""`manage.py repair_streams`: the turns of a server that died are saved or marked `failed`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from chats.recovery import turns_repair


class Command(BaseCommand):
    help = (
        "Repair the turns whose server process died (its alive mark lapsed): save the outcomes "
        "they journaled, and mark `failed` (`interrupted`) the replies still `streaming`, keeping "
        "the text their Redis buffer holds and charging for it. Safe while other processes serve: "
        "turns they run are left alone; each server process also does this by itself every "
        "third of STREAM_ALIVE_SECONDS. Run at every server start."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Only list what would be repaired.")

    def handle(self, *args: Any, dry_run: bool = False, **options: Any) -> None:
        repair = turns_repair(dry_run=dry_run)
        verb = "would be marked" if dry_run else "marked"
        count = len(repair.interrupted)
        self.stdout.write(f"{count} interrupted repl{'y' if count == 1 else 'ies'} {verb} failed.")
        for message_id in repair.interrupted:
            self.stdout.write(f"  message {message_id}")
        if repair.saved:
            verb = "would be saved" if dry_run else "saved"
            self.stdout.write(f"{len(repair.saved)} journaled outcome(s) of finished turns {verb}.")
