"""The llm app: a change to the catalog drops the routes every process keeps."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class LlmConfig(AppConfig):
    name = "llm"
    verbose_name = "LLM"

    def ready(self) -> None:
        from llm.selectors import routes  # needs the models, loaded by now

        def catalog_changed(sender: type, **kwargs: Any) -> None:
            routes.invalidate()

        # Signals, so that every path that writes the catalog (admin, API, seed, shell) is
        # seen; services that write with queryset.update() call routes.invalidate() themselves.
        for name in ("Provider", "Model", "ModelFallback"):
            model = self.get_model(name)
            post_save.connect(
                catalog_changed, sender=model, weak=False, dispatch_uid=f"llm-routes-save-{name}"
            )
            post_delete.connect(
                catalog_changed, sender=model, weak=False, dispatch_uid=f"llm-routes-del-{name}"
            )
