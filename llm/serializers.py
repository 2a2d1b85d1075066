"""Shapes of the catalog API: what clients see of models, and what admins read and write.

API keys are write-only: an input field `api_key`, and on output only `has_api_key`.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from rest_framework import serializers

from llm.models import Model, Provider, ProviderKind
from llm.types import CAPABILITIES

# Kinds with no default endpoint: the operator must say where the server is.
KINDS_NEEDING_BASE_URL = (ProviderKind.AZURE_OPENAI, ProviderKind.OPENAI_COMPATIBLE)
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_PARAM_TYPES: dict[str, tuple[type, ...]] = {
    "temperature": (int, float),
    "top_p": (int, float),
    "max_tokens": (int,),
    "stop": (str, list),
}


class PricingOutput(serializers.Serializer):
    input_per_million = serializers.CharField(source="input_price_per_million")
    output_per_million = serializers.CharField(source="output_price_per_million")


class CapabilityList(serializers.ListField):
    """A model's capabilities by name, in CAPABILITIES' order: a set has none a client could rely on."""

    child = serializers.ChoiceField(choices=CAPABILITIES)

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", "What it can do beyond text.")
        super().__init__(read_only=True, **kwargs)

    def to_representation(self, data: Any) -> list[str]:
        return [capability for capability in CAPABILITIES if capability in data]


class ModelPublicOutput(serializers.Serializer):
    """A model as clients see it: its public id, who serves it, its limits, prices and capabilities."""

    id = serializers.CharField(source="name")
    kind = serializers.CharField(help_text="chat, or embedding: called on /v1/embeddings only.")
    provider = serializers.CharField(source="provider.name")
    context_window = serializers.IntegerField()
    max_output_tokens = serializers.IntegerField()
    pricing = PricingOutput(source="*")
    capabilities = CapabilityList()


class ModelListOutput(serializers.Serializer):
    results = ModelPublicOutput(many=True)


# --- Providers (admins) ----------------------------------------------------------------


class ProviderOutput(serializers.ModelSerializer):
    has_api_key = serializers.SerializerMethodField()
    # A URL or empty, which the model's URLField would document as a `uri` it is not.
    base_url = serializers.CharField(read_only=True, help_text="Empty: the SDK's default.")

    class Meta:
        model = Provider
        fields = (
            "id",
            "name",
            "kind",
            "base_url",
            "has_api_key",
            "api_version",
            "extra_headers",
            "connect_timeout",
            "first_token_timeout",
            "idle_timeout",
            "total_timeout",
            "max_retries",
            "enabled",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields

    def get_has_api_key(self, provider: Provider) -> bool:
        return bool(provider.api_key_encrypted)


class ProviderInput(serializers.ModelSerializer):
    """A provider to create or change; `api_key` is taken, never given back."""

    api_key = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=True,
        max_length=4096,
        help_text="Write-only. Empty clears it; leaving it out keeps the current one.",
    )
    extra_headers = serializers.DictField(child=serializers.CharField(max_length=4096), required=False)
    max_retries = serializers.IntegerField(min_value=0, max_value=10, required=False)

    class Meta:
        model = Provider
        fields = (
            "name",
            "kind",
            "base_url",
            "api_key",
            "api_version",
            "extra_headers",
            "connect_timeout",
            "first_token_timeout",
            "idle_timeout",
            "total_timeout",
            "max_retries",
            "enabled",
        )

    def validate_extra_headers(self, headers: dict[str, str]) -> dict[str, str]:
        bad = [name for name in headers if not _HEADER_NAME.match(name)]
        if bad:
            raise serializers.ValidationError(f"Not valid header names: {', '.join(sorted(bad))}.")
        return headers

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        kind = attrs.get("kind", getattr(self.instance, "kind", None))
        base_url = attrs.get("base_url", getattr(self.instance, "base_url", ""))
        if kind in KINDS_NEEDING_BASE_URL and not base_url:
            label = ProviderKind(kind).label
            raise serializers.ValidationError({"base_url": [f"{label} providers need a base URL."]})
        return attrs


# --- Models (admins) -------------------------------------------------------------------


class ModelOutput(serializers.ModelSerializer):
    fallbacks = serializers.SerializerMethodField(help_text="Names of the fallback models, in order.")
    aliases = serializers.SerializerMethodField(help_text="Other names clients may call it by.")
    capabilities = CapabilityList(help_text="The supports_* flags that are on, by name.")

    class Meta:
        model = Model
        fields = (
            "id",
            "name",
            "kind",
            "provider",
            "upstream_name",
            "display_name",
            "context_window",
            "max_output_tokens",
            "input_price_per_million",
            "output_price_per_million",
            "enabled",
            "default_params",
            "cache_enabled",
            "capabilities",
            "supports_vision",
            "supports_tools",
            "supports_structured_output",
            "supports_reasoning",
            "drop_params",
            "fallbacks",
            "aliases",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields

    def get_fallbacks(self, model: Model) -> list[str]:
        return [entry.fallback.name for entry in model.fallback_entries.all()]

    def get_aliases(self, model: Model) -> list[str]:
        return sorted(alias.name for alias in model.aliases.all())


class ModelInput(serializers.ModelSerializer):
    input_price_per_million = serializers.DecimalField(
        max_digits=12, decimal_places=6, min_value=Decimal("0"), required=False
    )
    output_price_per_million = serializers.DecimalField(
        max_digits=12, decimal_places=6, min_value=Decimal("0"), required=False
    )
    context_window = serializers.IntegerField(min_value=1, required=False)
    max_output_tokens = serializers.IntegerField(min_value=1, required=False)
    default_params = serializers.DictField(required=False)
    fallbacks = serializers.ListField(
        child=serializers.CharField(max_length=128),
        required=False,
        max_length=10,
        help_text="Names of other models to try, in order, when this one fails before its first token.",
    )
    aliases = serializers.ListField(
        child=serializers.CharField(max_length=128),
        required=False,
        max_length=20,
        help_text="Other names clients may call it by (replaces the list); none may be a model's name.",
    )

    class Meta:
        model = Model
        fields = (
            "name",
            "kind",
            "provider",
            "upstream_name",
            "display_name",
            "context_window",
            "max_output_tokens",
            "input_price_per_million",
            "output_price_per_million",
            "enabled",
            "default_params",
            "cache_enabled",
            "supports_vision",
            "supports_tools",
            "supports_structured_output",
            "supports_reasoning",
            "drop_params",
            "fallbacks",
            "aliases",
        )

    def validate_default_params(self, params: dict[str, Any]) -> dict[str, Any]:
        for name, types in _PARAM_TYPES.items():
            if name in params and (not isinstance(params[name], types) or isinstance(params[name], bool)):
                raise serializers.ValidationError(f"{name} has the wrong type.")
        return params

    def validate_fallbacks(self, names: list[str]) -> list[str]:
        if len(set(names)) != len(names):
            raise serializers.ValidationError("A model appears twice.")
        own = self.initial_data.get("name") or getattr(self.instance, "name", None)
        if own in names:
            raise serializers.ValidationError("A model cannot be its own fallback.")
        found = set(Model.objects.filter(name__in=names).values_list("name", flat=True))
        missing = [name for name in names if name not in found]
        if missing:
            raise serializers.ValidationError(f"No such models: {', '.join(missing)}.")
        return names
