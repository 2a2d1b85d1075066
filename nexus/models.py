"""Runtime settings: the one row of values operators change while Nexus runs.

Why a singleton model and not django-constance: here an empty field means "the value of
the environment variable", read live from django.conf.settings, so the environment stays
the default and an operator's override is visible as such (and removable). Constance
keeps its defaults in CONSTANCE_CONFIG and stores a default in its backend the first time
it is read, after which a changed environment no longer counts. A model also gives typed,
validated fields that the admin and the API share, and the change and its audit event
are written in one transaction (nexus.services).

Reads go through nexus.lib.runtime, which caches the row in Redis: no query per request.
"""

from __future__ import annotations

from typing import Any

from django.core.validators import MinValueValidator
from django.db import models

SINGLETON_ID = 1


class RuntimeSettings(models.Model):
    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON_ID, editable=False)
    registration_open = models.BooleanField(
        null=True, blank=True, help_text="Whether POST /auth/register accepts new users."
    )
    default_model = models.CharField(
        max_length=128, blank=True, help_text="The model of a chat that names none."
    )
    default_monthly_budget = models.DecimalField(
        max_digits=14,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="A user's monthly budget, in the price list's currency, unless their quota says otherwise.",
    )
    ai_calls_per_minute = models.PositiveIntegerField(
        "AI calls per minute",
        null=True,
        blank=True,
        help_text="AI calls per user per minute; 0 for no limit.",
    )
    registrations_per_hour = models.PositiveIntegerField(
        "registrations per hour",
        null=True,
        blank=True,
        help_text="Sign-up attempts per client address per hour; 0 for no limit.",
    )
    max_message_chars = models.PositiveIntegerField(
        "longest message",
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="The longest chat message accepted, in characters.",
    )
    maintenance_mode = models.BooleanField(
        default=False, help_text="AI calls are refused with 503 and the message below; admins are not."
    )
    maintenance_message = models.CharField(
        max_length=500, blank=True, help_text="What callers are told while maintenance mode is on."
    )
    title_model = models.CharField(
        max_length=128,
        blank=True,
        help_text="The model that titles each new conversation after its first reply, charged to its "
        "user; empty: a conversation is titled with its first words.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "runtime settings"
        verbose_name_plural = "runtime settings"
        constraints = (
            models.CheckConstraint(condition=models.Q(id=SINGLETON_ID), name="nexus_runtime_singleton"),
        )

    def __str__(self) -> str:
        return "Runtime settings"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.id = SINGLETON_ID
        super().save(*args, **kwargs)
