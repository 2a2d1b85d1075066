"""The llm app: a change to the catalog drops the routes every process keeps."""

from django.apps import AppConfig


class LlmConfig(AppConfig):
    name = "llm"
    verbose_name = "LLM"

    def ready(self) -> None:
        from llm.selectors import routes  # needs the models, loaded by now

        routes.invalidate_on_change(
            *(self.get_model(name) for name in ("Provider", "Model", "ModelFallback", "ModelAlias"))
        )
