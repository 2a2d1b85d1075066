"""The billing app; checks its settings at start."""

from django.apps import AppConfig

from billing.money import default_monthly_budget


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        # A bad DEFAULT_MONTHLY_BUDGET stops Nexus at start, not at the first AI call.
        default_monthly_budget()
