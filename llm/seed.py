"""Seed data of the llm app: a provider per configured credential, and the demo provider.

The credentials are the variables the official SDKs read themselves:

    OPENAI_API_KEY (+ OPENAI_BASE_URL)
    AZURE_OPENAI_API_KEY + AZURE_OPENAI_ENDPOINT (+ OPENAI_API_VERSION, AZURE_OPENAI_DEPLOYMENTS)
    ANTHROPIC_API_KEY (+ ANTHROPIC_BASE_URL)
    GEMINI_API_KEY (+ GEMINI_BASE_URL)
    DEEPSEEK_API_KEY (+ DEEPSEEK_BASE_URL)
    OPENAI_COMPATIBLE_BASE_URL (+ OPENAI_COMPATIBLE_API_KEY, OPENAI_COMPATIBLE_MODELS)

AZURE_OPENAI_DEPLOYMENTS and OPENAI_COMPATIBLE_MODELS are comma-separated lists; an Azure
deployment may name its model (`chat=gpt-5.4`, `embed=text-embedding-3-small`) to take that
model's kind, limits, prices and capabilities. Models the catalog does not know get the
Model fields' defaults. OpenAI and Gemini come with their embedding models beside the chat
ones, and the demo provider with an offline embedding model.
Seeding only creates what is missing: a provider or model that exists, under its name, is
left exactly as an operator set it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from llm import catalog, services
from llm.models import CAPABILITY_FIELDS, Model, Provider
from llm.providers.openai_chat import DEFAULT_AZURE_API_VERSION
from nexus.lib.errors import ApiError


@dataclass
class PlannedProvider:
    name: str
    kind: str
    api_key: str = ""
    base_url: str = ""
    api_version: str = ""
    models: list[dict[str, Any]] = field(default_factory=list)


def _env(name: str) -> str:
    return os.environ.get(name, "").strip()


def _csv(name: str) -> list[str]:
    return [item.strip() for item in _env(name).split(",") if item.strip()]


def _from_catalog(
    entry: catalog.CatalogModel, *, name: str | None = None, upstream: str | None = None
) -> dict:
    return {
        "name": name or entry.name,
        "upstream_name": upstream or entry.name,
        "kind": entry.kind,
        "display_name": entry.display_name,
        "context_window": entry.context_window,
        "max_output_tokens": entry.max_output_tokens,
        "input_price_per_million": entry.input_price,
        "output_price_per_million": entry.output_price,
        **{field: capability in entry.capabilities for capability, field in CAPABILITY_FIELDS.items()},
    }


def planned_providers() -> list[PlannedProvider]:
    """The providers the environment describes, each with the models to offer."""
    planned: list[PlannedProvider] = []
    simple = (
        ("openai", "openai", "OPENAI_API_KEY", "OPENAI_BASE_URL"),
        ("anthropic", "anthropic", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"),
        ("gemini", "gemini", "GEMINI_API_KEY", "GEMINI_BASE_URL"),
        ("deepseek", "deepseek", "DEEPSEEK_API_KEY", "DEEPSEEK_BASE_URL"),
    )
    for name, kind, key_variable, url_variable in simple:
        if api_key := _env(key_variable):
            models = [_from_catalog(entry) for entry in catalog.CATALOG[kind]]
            planned.append(PlannedProvider(name, kind, api_key, _env(url_variable), models=models))

    if (api_key := _env("AZURE_OPENAI_API_KEY")) and (endpoint := _env("AZURE_OPENAI_ENDPOINT")):
        models = []
        for deployment in _csv("AZURE_OPENAI_DEPLOYMENTS"):
            deployment, _, model_name = deployment.partition("=")
            entry = catalog.find(model_name.strip() or deployment)
            fields = _from_catalog(entry) if entry else {"display_name": deployment}
            fields.update(name=f"azure/{deployment}", upstream_name=deployment)
            models.append(fields)
        version = _env("OPENAI_API_VERSION") or DEFAULT_AZURE_API_VERSION
        planned.append(PlannedProvider("azure-openai", "azure_openai", api_key, endpoint, version, models))

    if base_url := _env("OPENAI_COMPATIBLE_BASE_URL"):
        models = [{"name": name, "upstream_name": name} for name in _csv("OPENAI_COMPATIBLE_MODELS")]
        planned.append(
            PlannedProvider(
                "openai-compatible",
                "openai_compatible",
                _env("OPENAI_COMPATIBLE_API_KEY"),
                base_url,
                models=models,
            )
        )

    if settings.SEED_DEMO_PROVIDER:
        models = [_from_catalog(entry) for entry in catalog.DEMO_MODELS]
        planned.append(PlannedProvider("demo", "demo", models=models))
    return planned


def seed(*, demo: bool = False) -> Iterator[str]:
    planned = planned_providers()
    if not planned:
        yield "llm: no provider credentials set and SEED_DEMO_PROVIDER is off, no provider created."
    for plan in planned:
        provider = Provider.objects.filter(name=plan.name).first()
        if provider is None:
            try:
                provider = services.provider_create(
                    name=plan.name,
                    kind=plan.kind,
                    api_key=plan.api_key,
                    base_url=plan.base_url,
                    api_version=plan.api_version,
                )
            except ApiError as error:
                yield f"llm: provider {plan.name} not created: {error.message}"
                continue
            yield f"llm: provider {plan.name} ({plan.kind}) created."
        else:
            yield f"llm: provider {plan.name} exists, left as it is."
        yield from _seed_models(provider, plan)


def _seed_models(provider: Provider, plan: PlannedProvider) -> Iterator[str]:
    if not plan.models and not provider.models.exists():
        yield f"llm: provider {plan.name} has no models yet: add them in the admin."
        return
    existing = set(
        Model.objects.filter(name__in=[model["name"] for model in plan.models]).values_list("name", flat=True)
    )
    created = []
    for fields in plan.models:
        if fields["name"] in existing:
            continue
        try:
            services.model_create(provider=provider, **fields)
        except ApiError as error:
            yield f"llm: model {fields['name']} not created: {error.message}"
            continue
        created.append(fields["name"])
    if created:
        yield f"llm: models {', '.join(created)} created on {plan.name}."
