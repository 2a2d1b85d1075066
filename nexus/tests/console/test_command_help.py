"""Every operator's command explains itself with --help."""

from __future__ import annotations

import pytest
from django.core.management import get_commands, load_command_class

COMMANDS = (
    "seed",
    "createapikey",
    "purge_conversations",
    "repair_streams",
    "check_providers",
    "usage_report",
    "release_stale_reservations",
    "flushexpiredtokens",
)


@pytest.mark.parametrize("name", COMMANDS)
def test_the_command_has_a_help_text(name):
    command = load_command_class(get_commands()[name], name)
    text = command.create_parser("manage.py", name).format_help()
    assert command.help and len(command.help) > 20
    assert "usage: manage.py" in text


@pytest.mark.parametrize(
    ("name", "option"), [("purge_conversations", "--dry-run"), ("repair_streams", "--dry-run")]
)
def test_commands_that_delete_or_change_rows_offer_a_dry_run(name, option):
    command = load_command_class(get_commands()[name], name)
    assert option in command.create_parser("manage.py", name).format_help()
