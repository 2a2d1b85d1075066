"""The billing app; checks its settings at start, and drops the quota rows processes keep
when one changes."""

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save

from billing.money import default_monthly_budget


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        # A bad DEFAULT_MONTHLY_BUDGET stops Nexus at start, not at the first AI call.
        default_monthly_budget()
        from billing.selectors import quota_rows  # needs the models, loaded by now

        def quota_changed(sender: type, **kwargs: Any) -> None:
            quota_rows.invalidate()

        for name in ("UserQuota", "ApiKeyQuota"):
            model = self.get_model(name)
            post_save.connect(
                quota_changed, sender=model, weak=False, dispatch_uid=f"billing-quota-save-{name}"
            )
            post_delete.connect(
                quota_changed, sender=model, weak=False, dispatch_uid=f"billing-quota-del-{name}"
            )
