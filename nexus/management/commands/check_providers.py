"""`manage.py check_providers`: one tiny call per enabled provider; latency or error."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from nexus.operations import providers_check


class Command(BaseCommand):
    help = (
        "Ask every enabled provider for a one-token reply (its first enabled model, never from the "
        "cache, no retries) and print the latency or the error. Exits with status 1 when any fails, "
        "so it can run as a monitoring check. The calls are real: they cost a token or two each."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        checks = providers_check()
        if not checks:
            self.stdout.write("No enabled provider.")
            return
        width = max(len(check.provider) for check in checks)
        model_width = max(len(check.model) for check in checks)
        for check in checks:
            name = f"{check.provider:<{width}}  {check.model:<{model_width}}"
            if check.ok and check.seconds is not None:
                self.stdout.write(f"{name}  {self.style.SUCCESS('ok')}     {check.seconds * 1000:.0f} ms")
            else:
                self.stdout.write(f"{name}  {self.style.ERROR('failed')} {check.error_code}: {check.error}")
        failed = sum(1 for check in checks if not check.ok)
        if failed:
            raise CommandError(f"{failed} of {len(checks)} providers failed.")
        self.stdout.write(f"All {len(checks)} providers answered.")
