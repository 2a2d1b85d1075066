"""Existing models get the capabilities of the catalog entry their upstream name is; demo models none.

The catalog is copied here as it stood, not imported: llm.catalog will change, and this
migration must do the same thing on every database it ever runs on. Models the catalog does
not know (Azure deployments, OpenAI-compatible servers) keep the fields' defaults.
"""

from django.db import migrations

ALL = ("vision", "tools", "structured_output", "reasoning")
CATALOG = {
    **dict.fromkeys(
        (
            "gpt-5.5",
            "gpt-5.4",
            "gpt-5.4-mini",
            "gpt-5.4-nano",
            "claude-opus-5-5",
            "claude-sonnet-5",
            "claude-haiku-4-5",
            "gemini-3.1-pro-preview",
            "gemini-3.8-flash",
            "gemini-3.5-flash-lite",
        ),
        ALL,
    ),
    "deepseek-v4-flash": ("tools", "structured_output", "reasoning"),
    "deepseek-v4-pro": ("tools", "structured_output", "reasoning"),
}
FIELDS = {
    "vision": "supports_vision",
    "tools": "supports_tools",
    "structured_output": "supports_structured_output",
    "reasoning": "supports_reasoning",
}


def flags(capabilities):
    return {field: capability in capabilities for capability, field in FIELDS.items()}


def from_catalog(apps, schema_editor):
    Model = apps.get_model("llm", "Model")
    for upstream_name, capabilities in CATALOG.items():
        Model.objects.filter(upstream_name=upstream_name).update(**flags(capabilities))
    # After the catalog: a demo provider's model is the demo, whatever its upstream name.
    Model.objects.filter(provider__kind="demo").update(**flags(()))


class Migration(migrations.Migration):
    dependencies = [
        ("llm", "0003_model_capabilities"),
    ]

    operations = [
        # Backwards there is nothing to undo: 0003's reversal drops the fields.
        migrations.RunPython(from_catalog, migrations.RunPython.noop),
    ]
