"""Data of the billing app: the usage ledger, budgets, monthly counters and the daily rollup.

- `UsageRecord`: one row per AI call, whatever its outcome; copies of the model's and the
  provider's names and prices so history survives changes and deletes.
- `UserQuota`, `ApiKeyQuota`: an admin's overrides (budget, tokens, calls per minute).
  They live here, keyed one-to-one, because accounts must not import billing.
- `QuotaCounter`: used and reserved amounts of one user (or one API key) in one month; the
  atomic reservation is a conditional UPDATE of this row.
- `Reservation`: one open admission; deleting it is what makes settling and releasing
  happen exactly once.
- `DailyUsage`: per day, user, API key and model totals, kept up to date as records are
  written, so statistics never scan the ledger.
"""

from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import ApiKey, User
from billing.money import COST_PLACES
from llm.models import Model

# Costs carry money.COST_PLACES decimal places; budgets and prices as people write them.
COST_MAX_DIGITS = 24


class Outcome(models.TextChoices):
    COMPLETE = "complete"
    FAILED = "failed"
    STOPPED = "stopped"


class CallKind(models.TextChoices):
    CHAT = "chat"
    EMBEDDING = "embedding"
    # A conversation's title, written by a model after its first reply.
    TITLE = "title"


class UsageRecord(models.Model):
    """The ledger: one AI call, on any surface, and what it cost."""

    admission_id = models.UUIDField(unique=True, editable=False)
    kind = models.CharField(max_length=16, choices=CallKind.choices, default=CallKind.CHAT)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="usage_records")
    api_key = models.ForeignKey(
        ApiKey, on_delete=models.SET_NULL, null=True, blank=True, related_name="usage_records"
    )
    model = models.ForeignKey(Model, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    model_name = models.CharField(max_length=128)
    provider_name = models.CharField(max_length=64)
    input_tokens = models.PositiveIntegerField()
    output_tokens = models.PositiveIntegerField()
    tokens_estimated = models.BooleanField(
        default=False, help_text="The provider reported no usage; the tokens were counted by Nexus."
    )
    input_price_per_million = models.DecimalField(max_digits=12, decimal_places=6)
    output_price_per_million = models.DecimalField(max_digits=12, decimal_places=6)
    cost = models.DecimalField(max_digits=COST_MAX_DIGITS, decimal_places=COST_PLACES)
    cached = models.BooleanField(default=False)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    latency_ms = models.PositiveIntegerField()
    ttft_ms = models.PositiveIntegerField(null=True, blank=True, verbose_name="time to first token (ms)")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name = "usage record"
        indexes = (
            models.Index(fields=("user", "created_at"), name="billing_usage_user_time"),
            models.Index(fields=("api_key", "created_at"), name="billing_usage_key_time"),
            models.Index(fields=("model_name", "created_at"), name="billing_usage_model_time"),
            models.Index(fields=("created_at",), name="billing_usage_time"),
        )

    def __str__(self) -> str:
        return f"{self.model_name} for user {self.user_id} at {self.created_at:%Y-%m-%d %H:%M:%S}"

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class QuotaFields(models.Model):
    """Overrides an admin sets; null means the default."""

    monthly_budget = models.DecimalField(
        max_digits=14,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="Most this may spend per calendar month (UTC), in the price list's currency.",
    )
    monthly_tokens = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Most input plus output tokens per month; empty: no token limit."
    )
    calls_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="AI calls per minute; 0 means no limit."
    )

    class Meta:
        abstract = True


class UserQuota(QuotaFields):
    user = models.OneToOneField(User, on_delete=models.CASCADE, primary_key=True, related_name="quota")

    class Meta:
        verbose_name = "quota"

    def __str__(self) -> str:
        return f"Quota of {self.user_id}"


class ApiKeyQuota(QuotaFields):
    """A key's own limits, on top of its user's: a call must fit both."""

    api_key = models.OneToOneField(ApiKey, on_delete=models.CASCADE, primary_key=True, related_name="quota")

    class Meta:
        verbose_name = "API key quota"

    def __str__(self) -> str:
        return f"Quota of API key {self.api_key_id}"


class QuotaCounter(models.Model):
    """Spent (`used`) and held (`reserved`) amounts of a user, or of one API key, in a month.

    The user's row counts every call of the user, with a key or not; a key's row counts
    the calls made with that key.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    month = models.DateField(help_text="First day of the month (UTC).")
    used = models.DecimalField(max_digits=COST_MAX_DIGITS, decimal_places=COST_PLACES, default=0)
    reserved = models.DecimalField(max_digits=COST_MAX_DIGITS, decimal_places=COST_PLACES, default=0)
    tokens_used = models.BigIntegerField(default=0)
    tokens_reserved = models.BigIntegerField(default=0)

    class Meta:
        constraints = (
            models.UniqueConstraint(
                fields=("user", "month"), condition=Q(api_key__isnull=True), name="billing_counter_user_month"
            ),
            models.UniqueConstraint(
                fields=("api_key", "month"),
                condition=Q(api_key__isnull=False),
                name="billing_counter_key_month",
            ),
        )

    def __str__(self) -> str:
        owner = f"key {self.api_key_id}" if self.api_key_id else f"user {self.user_id}"
        return f"{owner}, {self.month:%Y-%m}"


class Reservation(models.Model):
    """An admitted call not yet settled or released; it exists only while the call runs."""

    id = models.UUIDField(primary_key=True, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    # SET_NULL: a key deleted mid-call must not take the user's reservation with it.
    api_key = models.ForeignKey(ApiKey, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    month = models.DateField()
    amount = models.DecimalField(max_digits=COST_MAX_DIGITS, decimal_places=COST_PLACES)
    tokens = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"{self.amount} for user {self.user_id}"


class DailyUsage(models.Model):
    """Totals of one day (UTC), user, API key and model, updated with every usage record."""

    day = models.DateField()
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    # A plain number, not a foreign key: the rollup keeps agreeing with the ledger after a
    # key is deleted, and 0 (calls made with a JWT) keeps the unique key free of NULLs.
    api_key_ref = models.PositiveBigIntegerField(default=0, help_text="The API key's id; 0 without a key.")
    model_name = models.CharField(max_length=128)
    provider_name = models.CharField(max_length=64)
    calls = models.PositiveIntegerField(default=0)
    calls_failed = models.PositiveIntegerField(default=0)
    calls_stopped = models.PositiveIntegerField(default=0)
    calls_cached = models.PositiveIntegerField(default=0)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(max_digits=COST_MAX_DIGITS, decimal_places=COST_PLACES, default=0)
    latency_ms_total = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name = "daily usage"
        verbose_name_plural = "daily usage"
        constraints = (
            models.UniqueConstraint(
                fields=("day", "user", "api_key_ref", "model_name"), name="billing_daily_usage_unique"
            ),
        )
        indexes = (models.Index(fields=("user", "day"), name="billing_daily_user_day"),)

    def __str__(self) -> str:
        return f"{self.day} user {self.user_id} {self.model_name}"


class UsageDashboard(UsageRecord):
    """No data of its own: the admin's usage dashboard, listed under Billing on the index."""

    class Meta:
        proxy = True
        verbose_name = "usage dashboard"
        verbose_name_plural = "usage dashboard"
