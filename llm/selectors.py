"""Reads of the model catalog: routes for callers, model lists for the API."""

from __future__ import annotations

import logging

from django.db.models import OuterRef, Q, QuerySet, Subquery

from llm import crypto
from llm.models import Model, ModelAlias, ModelFallback, Provider
from llm.types import ModelTarget, ProviderConfig, Route, UnknownModel
from nexus.lib.process_cache import ProcessCache

logger = logging.getLogger(__name__)

# Routes by model name, kept in each process; llm.apps drops them when the catalog changes.
routes: ProcessCache[str, Route] = ProcessCache("llm-routes", max_entries=1_000)


def provider_config(provider: Provider) -> ProviderConfig:
    """A snapshot of a provider row, its key decrypted, that async code can carry around."""
    try:
        api_key = crypto.decrypt(provider.api_key_encrypted)
    except crypto.UndecryptableKey as exc:
        logger.error("Provider %r: %s", provider.name, exc)
        api_key = ""
    return ProviderConfig(
        id=provider.pk,
        name=provider.name,
        kind=provider.kind,
        base_url=provider.base_url,
        api_key=api_key,
        api_version=provider.api_version,
        extra_headers={str(key): str(value) for key, value in (provider.extra_headers or {}).items()},
        connect_timeout=provider.connect_timeout,
        first_token_timeout=provider.first_token_timeout,
        idle_timeout=provider.idle_timeout,
        total_timeout=provider.total_timeout,
        max_retries=provider.max_retries,
    )


def model_target(model: Model) -> ModelTarget:
    return ModelTarget(
        id=model.pk,
        name=model.name,
        upstream_name=model.upstream_name,
        provider=provider_config(model.provider),
        context_window=model.context_window,
        max_output_tokens=model.max_output_tokens,
        input_price_per_million=model.input_price_per_million,
        output_price_per_million=model.output_price_per_million,
        default_params=dict(model.default_params or {}),
        cache_enabled=model.cache_enabled,
        capabilities=model.capabilities,
        drop_params=model.drop_params,
        kind=model.kind,
    )


def _usable(model: Model) -> bool:
    return model.enabled and model.provider.enabled


def route_get(*, name: str) -> Route:
    """The model clients call `name` (or that `name` is an alias of) and its enabled
    fallbacks, in order.

    From this process's memory while the catalog is unchanged, else in one query (two for an
    alias). Raises UnknownModel when the model does not exist, or it or its provider is
    disabled.
    """
    return routes.get(name, lambda: _route_load(name))


def _route_load(name: str) -> Route:
    try:
        return _model_route_load(name)
    except UnknownModel:
        aliased = ModelAlias.objects.filter(name=name).values_list("model__name", flat=True).first()
        if aliased is None:
            raise
    try:
        return _model_route_load(aliased)
    except UnknownModel:
        raise UnknownModel(name) from None


def _model_route_load(name: str) -> Route:
    entries = ModelFallback.objects.filter(model__name=name, fallback=OuterRef("pk")).order_by()
    rows = list(
        Model.objects.select_related("provider")
        .filter(Q(name=name) | Q(pk__in=ModelFallback.objects.filter(model__name=name).values("fallback_id")))
        .annotate(
            fallback_position=Subquery(entries.values("position")[:1]),
            fallback_entry=Subquery(entries.values("pk")[:1]),
        )
        .order_by()
    )
    primary = next((row for row in rows if row.name == name), None)
    if primary is None or not _usable(primary):
        raise UnknownModel(name)
    fallbacks = sorted(
        # A fallback of another kind could not take the request (the admin refuses one, too).
        (row for row in rows if row.name != name and _usable(row) and row.kind == primary.kind),
        key=lambda row: (row.fallback_position, row.fallback_entry),
    )
    return Route(primary=model_target(primary), fallbacks=tuple(model_target(row) for row in fallbacks))


def models_list_enabled() -> list[Model]:
    """The models clients may call: enabled, on an enabled provider, by name."""
    return list(models_enabled())


def models_enabled() -> QuerySet[Model]:
    return (
        Model.objects.filter(enabled=True, provider__enabled=True).select_related("provider").order_by("name")
    )


def aliases_enabled() -> list[ModelAlias]:
    """The aliases of the models clients may call, by name, each with its model and provider."""
    return list(
        ModelAlias.objects.filter(model__enabled=True, model__provider__enabled=True)
        .select_related("model__provider")
        .order_by("name")
    )


def model_enabled_get(*, name: str) -> Model | None:
    """The enabled model clients call `name`, itself or through an alias; None if there is none."""
    model = models_enabled().filter(name=name).first()
    if model is None:
        model = models_enabled().filter(aliases__name=name).first()
    return model
