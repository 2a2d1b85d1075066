"""Existing conversations become single branches: each message follows the one before it.

Written before branches, a conversation is a line of messages in id order. Each message
of a conversation that has no parents yet is given the previous message of its
conversation as its parent (the first one stays a root), in one statement; the current
leaf stays empty, which means the newest message, the end of that line.
"""

from django.db import migrations


def link_conversations(apps, schema_editor):
    table = apps.get_model("chats", "Message")._meta.db_table
    schema_editor.execute(
        f"""
        UPDATE {table} SET parent_id = (
            SELECT MAX(earlier.id) FROM {table} AS earlier
            WHERE earlier.conversation_id = {table}.conversation_id AND earlier.id < {table}.id
        )
        WHERE parent_id IS NULL
          AND conversation_id NOT IN (
              SELECT linked.conversation_id FROM {table} AS linked WHERE linked.parent_id IS NOT NULL
          )
        """
    )


class Migration(migrations.Migration):
    dependencies = [
        ("chats", "0005_branches_and_files"),
    ]

    operations = [
        migrations.RunPython(link_conversations, migrations.RunPython.noop, elidable=True),
    ]
