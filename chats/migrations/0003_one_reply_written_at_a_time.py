"""One reply written at a time per conversation.

Conversations that already have several replies marked `streaming` (two turns that ran at
once before this rule) keep the newest as it is; the older ones are closed as `failed`,
as repair_streams would close them, so that the constraint can hold.
"""

from django.db import migrations, models
from django.db.models import Count, Max


def close_all_but_the_newest(apps, schema_editor):
    Message = apps.get_model("chats", "Message")
    doubled = (
        Message.objects.filter(status="streaming")
        .values("conversation_id")
        .annotate(replies=Count("id"), newest=Max("id"))
        .filter(replies__gt=1)
    )
    for row in doubled:
        Message.objects.filter(
            conversation_id=row["conversation_id"], status="streaming", id__lt=row["newest"]
        ).update(status="failed", error_code="interrupted")


class Migration(migrations.Migration):
    dependencies = [
        ("chats", "0002_conversation_list_index"),
    ]

    operations = [
        migrations.RunPython(close_all_but_the_newest, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="message",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status", "streaming")),
                fields=("conversation",),
                name="chats_msg_one_streaming_per_conversation",
            ),
        ),
    ]
