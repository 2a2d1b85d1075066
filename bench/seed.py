"""Puts in the bench database what the load needs, and prints it as JSON.

    python -m bench.seed --upstream-port 8101 --users 50

The provider `bench-fake` (kind openai) points at the fake upstream on that port, with the
model `fake-model`; users `bench-N@bench.local` get an API key and a JWT access token each.
Run against the bench database only (bench.harness sets DATABASE_URL).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexus.settings")
django.setup()

from rest_framework_simplejwt.tokens import RefreshToken  # noqa: E402

from accounts.models import User  # noqa: E402
from accounts.services import api_key_create  # noqa: E402
from llm.crypto import encrypt  # noqa: E402
from llm.models import Model, Provider  # noqa: E402

MODEL = "fake-model"


def model_point_at(port: int) -> None:
    provider, _ = Provider.objects.update_or_create(
        name="bench-fake",
        defaults={
            "kind": "openai",
            "base_url": f"http://127.0.0.1:{port}/v1",
            "api_key_encrypted": encrypt("sk-fake-bench-0123456789abcdef"),
            "connect_timeout": 5.0,
            "first_token_timeout": 30.0,
            "idle_timeout": 30.0,
            "total_timeout": 120.0,
            "max_retries": 0,
        },
    )
    Model.objects.update_or_create(
        name=MODEL,
        defaults={
            "provider": provider,
            "upstream_name": MODEL,
            "context_window": 8192,
            "max_output_tokens": 512,
            "input_price_per_million": "0.15",
            "output_price_per_million": "0.60",
        },
    )


def users_with_credentials(count: int, prefix: str) -> list[dict[str, object]]:
    out = []
    for index in range(count):
        email = f"{prefix}-{index}@bench.local"
        user = User.objects.filter(email=email).first()
        if user is None:
            user = User.objects.create_user(email)  # no password: no hashing cost here
        _, secret = api_key_create(user=user, name="bench")
        out.append(
            {"user_id": user.pk, "api_key": secret, "jwt": str(RefreshToken.for_user(user).access_token)}
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--users", type=int, default=1)
    parser.add_argument("--prefix", default="bench")
    args = parser.parse_args()
    model_point_at(args.upstream_port)
    json.dump({"model": MODEL, "users": users_with_credentials(args.users, args.prefix)}, sys.stdout)


if __name__ == "__main__":
    main()
