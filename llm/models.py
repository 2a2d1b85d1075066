"""The model catalog: providers (where and how to call), models (what clients ask for) and
aliases (other names clients ask for, each meaning one model)."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
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


# The provider kinds with an embeddings API; Anthropic and DeepSeek have none.
EMBEDDING_PROVIDER_KINDS = frozenset(
    {
        ProviderKind.OPENAI,
        ProviderKind.AZURE_OPENAI,
        ProviderKind.GEMINI,
        ProviderKind.OPENAI_COMPATIBLE,
        ProviderKind.DEMO,
    }
)


class ModelKind(models.TextChoices):
    CHAT = "chat", "Chat"
    EMBEDDING = "embedding", "Embedding"


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

    def clean(self) -> None:
        if (
            self.pk is not None
            and self.kind not in EMBEDDING_PROVIDER_KINDS
            and self.models.filter(kind=ModelKind.EMBEDDING).exists()
        ):
            label = ProviderKind(self.kind).label
            raise ValidationError(
                {"kind": f"{label} has no embeddings API, and this provider serves embedding models."}
            )


class Model(models.Model):
    """A model as clients name it (`name`, the public id), and where it is served."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="models")
    name = models.CharField(max_length=128, unique=True, help_text="The id clients send.")
    upstream_name = models.CharField(
        max_length=128, help_text="The provider's model name (the deployment for Azure)."
    )
    kind = models.CharField(
        max_length=16,
        choices=ModelKind.choices,
        default=ModelKind.CHAT,
        help_text=(
            "Chat: called on the chat surfaces. Embedding: turns text into vectors, called on "
            "/v1/embeddings only, and charged for its input tokens only."
        ),
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
            models.CheckConstraint(
                condition=~models.Q(kind="embedding") | models.Q(output_price_per_million=0),
                name="llm_embedding_model_no_output_price",
            ),
        )

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.kind == ModelKind.EMBEDDING:
            provider = Provider.objects.filter(pk=self.provider_id).first() if self.provider_id else None
            if provider is not None and provider.kind not in EMBEDDING_PROVIDER_KINDS:
                label = ProviderKind(provider.kind).label
                errors["kind"] = f"{label} has no embeddings API: put embedding models on another provider."
            if self.output_price_per_million:
                errors["output_price_per_million"] = (
                    "An embedding model writes no output tokens: its output price must be 0."
                )
        if self.name and ModelAlias.objects.filter(name=self.name).exists():
            errors["name"] = f"{self.name!r} is already an alias of a model: use another name."
        if errors:
            raise ValidationError(errors)

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

    def clean(self) -> None:
        model = Model.objects.filter(pk=self.model_id).first() if self.model_id else None
        fallback = Model.objects.filter(pk=self.fallback_id).first() if self.fallback_id else None
        if model is not None and fallback is not None and model.kind != fallback.kind:
            message = f"{fallback.name} is a {fallback.kind} model, and {model.name} a {model.kind} one."
            raise ValidationError({"fallback": message})


class ModelAlias(models.Model):
    """Another name for a model: a client asking for `name` (an app's built-in default, such
    as gpt-4o-mini) is served by `model`, as if it had asked for that model."""

    name = models.CharField(max_length=128, unique=True, help_text="The name clients send.")
    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="aliases")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ("name",)
        verbose_name_plural = "model aliases"

    def __str__(self) -> str:
        return f"{self.name} -> {self.model_id}"

    def clean(self) -> None:
        # A name is a model's or an alias's, never both: which would a client get?
        if self.name and Model.objects.filter(name=self.name).exists():
            raise ValidationError({"name": f"{self.name!r} is the name of a model: an alias needs its own."})
