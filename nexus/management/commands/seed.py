"""`manage.py seed`: idempotent first data for every app (roles, superuser, providers)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from accounts.seed import seed as seed_accounts
from llm.seed import seed as seed_llm


class Command(BaseCommand):
    help = (
        "Create what a fresh Nexus needs: the superuser from DJANGO_SUPERUSER_EMAIL and "
        "DJANGO_SUPERUSER_PASSWORD, and a provider per configured credential. Safe to re-run: "
        "nothing an operator edited is changed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--demo", action="store_true", help="Also add a demo user and sample data.")

    def handle(self, *args: Any, demo: bool = False, **options: Any) -> None:
        for step in (seed_accounts, seed_llm):
            for line in step(demo=demo):
                self.stdout.write(line)
        self.stdout.write(self.style.SUCCESS("Seeding done."))
