"""`manage.py createapikey --email alice@example.com --name deploy-script`: a key, shown once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from accounts.models import User, normalize_email
from accounts.services import api_key_create


class Command(BaseCommand):
    help = (
        "Create an API key for a user and print it. The key is shown this once: Nexus keeps only "
        "its hash. The creation is recorded in the audit trail, as one the user made."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True, help="The email of the key's owner.")
        parser.add_argument("--name", required=True, help="What the key is for, e.g. 'ci-deploy'.")
        parser.add_argument(
            "--expires-in-days",
            type=int,
            default=None,
            help="Days until the key stops working (default: never).",
        )
        parser.add_argument(
            "--model",
            action="append",
            default=[],
            dest="models",
            help="A model the key may use; repeat for several (default: every model).",
        )
        parser.add_argument(
            "--network",
            action="append",
            default=[],
            dest="networks",
            help="A client address range (CIDR, IPv4 or IPv6) the key may be used from; repeat for "
            "several (default: any address).",
        )

    def handle(
        self,
        *args: Any,
        email: str,
        name: str,
        expires_in_days: int | None,
        models: list[str],
        networks: list[str],
        **options: Any,
    ) -> None:
        name = name.strip()
        if not name or len(name) > 100:
            raise CommandError("--name must be 1 to 100 characters.")
        if expires_in_days is not None and expires_in_days < 1:
            raise CommandError("--expires-in-days must be 1 or more.")
        user = User.objects.filter(email=normalize_email(email)).first()
        if user is None:
            raise CommandError(f"There is no user with the email {email!r}.")
        if not user.is_active:
            raise CommandError(f"{user.email} is deactivated: activate the account first.")
        expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
        try:
            key, secret = api_key_create(
                user=user, name=name, expires_at=expires_at, allowed_models=models, allowed_networks=networks
            )
        except ValidationError as exc:
            option = {"allowed_models": "--model", "allowed_networks": "--network"}
            faults = exc.detail.items() if isinstance(exc.detail, dict) else [("", exc.detail)]
            raise CommandError(
                "; ".join(
                    f"{option.get(field, field)}: {' '.join(map(str, errors))}" for field, errors in faults
                )
            ) from None
        self.stderr.write(
            f"API key {key.name!r} ({key.prefix}…) created for {user.email}"
            + (f", expiring {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else "")
            + ". Copy it now: it cannot be shown again."
        )
        # The secret alone on stdout, so that `$(manage.py createapikey ...)` captures just it.
        self.stdout.write(secret)
