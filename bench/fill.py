"""Fills the bench database with conversations and messages, fast (PostgreSQL COPY).

    python -m bench.fill [--messages 1000000] [--per-conversation 20]

Two users are read by bench.reads: `reads-small@bench.local` with 10 conversations and
`reads-large@bench.local` with 10,000; the rest of the messages belong to 200 other users.
Does nothing when the database already holds that many messages of these users. Prints the
two users' JWTs as JSON. Run against the bench database only (bench.harness sets it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexus.settings")
django.setup()

from django.db import connection, transaction  # noqa: E402
from rest_framework_simplejwt.tokens import RefreshToken  # noqa: E402

from accounts.models import User  # noqa: E402
from chats.models import Conversation, Message  # noqa: E402

SMALL, LARGE = "reads-small@bench.local", "reads-large@bench.local"
FILLERS = 200
TEXT = (
    "This is a message of the benchmark's conversation history, about two hundred characters "
    "long, so that a page of history weighs what a real one does in bytes and in rows read."
)


def _user(email: str) -> User:
    user = User.objects.filter(email=email).first()
    return user or User.objects.create_user(email)


def fill(total_messages: int, per_conversation: int) -> None:
    small, large = _user(SMALL), _user(LARGE)
    fillers = [_user(f"reads-filler-{index}@bench.local") for index in range(FILLERS)]
    plan = [(small, 10), (large, 10_000)]
    rest = max(0, total_messages // per_conversation - 10_010)
    plan += [(user, rest // FILLERS + (1 if i < rest % FILLERS else 0)) for i, user in enumerate(fillers)]
    owners = [user.pk for user, _ in plan]
    have = Message.objects.filter(conversation__owner_id__in=owners).count()
    if have >= total_messages:
        print(f"-- {have} messages already there", file=sys.stderr)
        return
    started = time.monotonic()
    with transaction.atomic():
        Conversation.objects.filter(owner_id__in=owners).delete()
        base = datetime(2026, 1, 1, tzinfo=UTC)
        raw = connection.cursor().cursor
        columns = (
            "owner_id, title, model, system_prompt, parameters, pinned, archived, created_at, updated_at"
        )
        with raw.copy(f"COPY chats_conversation ({columns}) FROM STDIN") as copy:
            for user, count in plan:
                for index in range(count):
                    at = base + timedelta(minutes=index)
                    copy.write_row((user.pk, f"Conversation {index}", "", "", "{}", False, False, at, at))
        rows = raw.execute(
            "SELECT id, created_at FROM chats_conversation WHERE owner_id = ANY(%s) ORDER BY id", (owners,)
        ).fetchall()
        columns = (
            "conversation_id, role, content, status, model, input_tokens, output_tokens, error_code, "
            "created_at"
        )
        with raw.copy(f"COPY chats_message ({columns}) FROM STDIN") as copy:
            for conversation_id, at in rows:
                for index in range(per_conversation):
                    role = "user" if index % 2 == 0 else "assistant"
                    copy.write_row(
                        (conversation_id, role, TEXT, "complete", "", 0, 0, "", at + timedelta(seconds=index))
                    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE chats_conversation")
        cursor.execute("ANALYZE chats_message")
    count = Message.objects.filter(conversation__owner_id__in=owners).count()
    print(
        f"-- {count} messages in {len(rows)} conversations, {time.monotonic() - started:.0f} s",
        file=sys.stderr,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--per-conversation", type=int, default=20)
    args = parser.parse_args()
    fill(args.messages, args.per_conversation)
    json.dump(
        {
            name: str(RefreshToken.for_user(User.objects.get(email=email)).access_token)
            for name, email in (("small", SMALL), ("large", LARGE))
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
