"""API keys limited to some models and to client address ranges (empty lists: no limit)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_create_roles"),
    ]

    operations = [
        migrations.AddField(
            model_name="apikey",
            name="allowed_models",
            field=models.JSONField(
                blank=True, default=list, help_text="Model names this key may use; empty: every model."
            ),
        ),
        migrations.AddField(
            model_name="apikey",
            name="allowed_networks",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="Client address ranges (CIDR, IPv4 or IPv6) this key may be used from; empty: any.",
            ),
        ),
    ]
