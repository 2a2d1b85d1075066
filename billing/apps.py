"""The billing app; checks its settings at start, and drops the quota rows processes keep
when one changes."""

from django.apps import AppConfig

from billing.money import default_monthly_budget


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        # A bad DEFAULT_MONTHLY_BUDGET stops Nexus at start, not at the first AI call.
        default_monthly_budget()
        from billing.selectors import quota_rows  # needs the models, loaded by now

        quota_rows.invalidate_on_change(self.get_model("UserQuota"), self.get_model("ApiKeyQuota"))
