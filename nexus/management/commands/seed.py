"""`manage.py seed`: idempotent first data for every app (superuser, providers, runtime settings);
`--demo` adds a demo user, templates and a sample conversation."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from accounts.seed import seed as seed_accounts
from chats.seed import seed as seed_chats
from llm.seed import seed as seed_llm
from nexus.lib import runtime
from nexus.services import runtime_settings_get


class Command(BaseCommand):
    help = (
        "Create what a fresh Nexus needs: the superuser from DJANGO_SUPERUSER_EMAIL and "
        "DJANGO_SUPERUSER_PASSWORD, a provider per configured credential (and the offline demo "
        "provider), and the runtime settings. Safe to re-run: nothing an operator edited is changed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--demo",
            action="store_true",
            help="Also add a demo user (demo@example.com), global templates and a sample conversation.",
        )

    def handle(self, *args: Any, demo: bool = False, **options: Any) -> None:
        for step in (seed_accounts, seed_llm, seed_chats):
            for line in step(demo=demo):
                self.stdout.write(line)
        runtime_settings_get()
        config = runtime.current()
        self.stdout.write(
            f"nexus: runtime settings: registration {'open' if config.registration_open else 'closed'}, "
            f"default model {config.default_model}, maintenance {'on' if config.maintenance_mode else 'off'} "
            "(change them in the admin or at /system/settings)."
        )
        self.stdout.write(self.style.SUCCESS("Seeding done."))
