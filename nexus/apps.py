"""The project package as an app, for its management commands and templates."""

from django.apps import AppConfig


class NexusConfig(AppConfig):
    name = "nexus"
    verbose_name = "Nexus"

    def ready(self) -> None:
        from nexus import checks  # noqa: F401  # registers the deploy checks
