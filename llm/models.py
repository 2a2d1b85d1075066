"""The model catalog: providers (where and how to call) and models (what clients ask for)."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator, URLValidator
from django.db import models
from django.db.models import JSONField
from django.utils import timezone

from llm.types import Capability

# The boolean field of Model that holds each capability.
CAPABILITY_FIELDS: dict[Capability, str] = {
    "vision": "supports_vision",
    "tools": "supports_tools",
    "structured_output": "supports_structured_output",
    "reasoning": "supports_reasoning",
}


class ProviderKind(models.TextChoices):
    OPENAI = "openai", "OpenAI"
    AZURE_OPENAI = "azure_openai", "Azure OpenAI"
    ANTHROPIC = "anthropic", "Anthropic"
    GEMINI = "gemini", "Google Gemini"
    DEEPSEEK = "deepseek", "DeepSeek"
    OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible (Ollama, vLLM, OpenRouter, ...)"
    DEMO = "demo", "Demo (offline)"


class Provider(models.Model):
    name = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=32, choices=ProviderKind.choices)
    base_url = models.URLField(
        max_length=500,
        blank=True,
        validators=[URLValidator(schemes=("http", "https"))],
        help_text="Empty: the SDK's default.",
    )
    # Fernet-encrypted; write-only everywhere (see llm.crypto).
    api_key_encrypted = models.TextField(blank=True, editable=False)
    api_version = models.CharField(max_length=32, blank=True, help_text="Azure OpenAI only.")
    # JSONField by its own name: inside this class, `models` is also the reverse relation to Model.
    extra_headers = JSONField(default=dict, blank=True)
    connect_timeout = models.FloatField(default=10.0, validators=[MinValueValidator(0.1)])
    first_token_timeout = models.FloatField(default=60.0, validators=[MinValueValidator(0.1)])
    idle_timeout = models.FloatField(
        default=60.0, validators=[MinValueValidator(0.1)], help_text="Longest gap between chunks."
    )
    total_timeout = models.FloatField(default=600.0, validators=[MinValueValidator(0.1)])
    max_retries = models.PositiveSmallIntegerField(default=2)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class Model(models.Model):
    """A model as clients name it (`name`, the public id), and where it is served."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="models")
    name = models.CharField(max_length=128, unique=True, help_text="The id clients send.")
    upstream_name = models.CharField(
        max_length=128, help_text="The provider's model name (the deployment for Azure)."
    )
    display_name = models.CharField(max_length=128, blank=True)
    context_window = models.PositiveIntegerField(default=8192)
    max_output_tokens = models.PositiveIntegerField(default=4096)
    input_price_per_million = models.DecimalField(
        max_digits=12, decimal_places=6, default=Decimal("0"), validators=[MinValueValidator(Decimal("0"))]
    )
    output_price_per_million = models.DecimalField(
        max_digits=12, decimal_places=6, default=Decimal("0"), validators=[MinValueValidator(Decimal("0"))]
    )
    enabled = models.BooleanField(default=True)
    default_params = models.JSONField(default=dict, blank=True)
    cache_enabled = models.BooleanField(
        default=False, help_text="Replay identical requests at temperature 0 from the cache."
    )
    # What it can do beyond text. On by default but reasoning: a model added by hand is
    # most often a chat model that sees images, calls tools and writes JSON.
    supports_vision = models.BooleanField(
        "vision",
        default=True,
        help_text=(
            "Reads images in messages. Off: a request with an image gets a 400 naming the capability."
        ),
    )
    supports_tools = models.BooleanField(
        "tools",
        default=True,
        help_text=(
            "Calls functions (tools, tool_choice). "
            "Off: a request with tools gets a 400 naming the capability."
        ),
    )
    supports_structured_output = models.BooleanField(
        "structured output",
        default=True,
        help_text=(
            "Replies in JSON to a response_format (json_object, json_schema). "
            "Off: a request with one gets a 400 naming the capability."
        ),
    )
    supports_reasoning = models.BooleanField(
        "reasoning",
        default=False,
        help_text=(
            "Thinks before it answers and takes reasoning_effort. Off: reasoning_effort is a "
            "parameter it cannot honour, dropped or refused as drop_params says."
        ),
    )
    drop_params = models.BooleanField(
        "drop unsupported parameters",
        default=True,
        help_text=(
            "On: a parameter this provider kind cannot honour (seed on Anthropic, say) is left out of "
            "the upstream call and named in the reply's X-Nexus-Dropped-Params header. "
            "Off: such a request is refused with a 400 naming the parameter."
        ),
    )
    fallbacks: models.ManyToManyField[Model, ModelFallback] = models.ManyToManyField(
        "self", through="ModelFallback", symmetrical=False, related_name="+", blank=True
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name",)
        constraints = (
            models.CheckConstraint(
                condition=models.Q(input_price_per_million__gte=0, output_price_per_million__gte=0),
                name="llm_model_prices_not_negative",
            ),
        )

    def __str__(self) -> str:
        return self.name

    @property
    def capabilities(self) -> frozenset[Capability]:
        return frozenset(capability for capability, name in CAPABILITY_FIELDS.items() if getattr(self, name))


class ModelFallback(models.Model):
    """One entry of a model's ordered fallback list."""

    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="fallback_entries")
    fallback = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ("position", "id")
        constraints = (
            models.UniqueConstraint(fields=("model", "fallback"), name="llm_fallback_unique"),
            models.CheckConstraint(
                condition=~models.Q(model=models.F("fallback")), name="llm_fallback_not_self"
            ),
        )

    def __str__(self) -> str:
        return f"{self.model_id} -> {self.fallback_id} (#{self.position})"
