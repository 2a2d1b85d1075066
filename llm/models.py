"""The model catalog: providers (where and how to call) and models (what clients ask for)."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator, URLValidator
from django.db import models
from django.db.models import JSONField
from django.utils import timezone


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
