"""The accounts app: after `migrate`, the admin role is granted the permissions of new
models; a change to a user or a key drops the credentials every process keeps."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.migrations.operations import CreateModel
from django.db.models.signals import post_migrate


def grant_new_model_permissions_to_admins(sender: AppConfig, plan: Any = None, **kwargs: Any) -> None:
    """The admin role holds every permission, including those of models created since 0003.

    Only models created by the migrations of this run are granted, so a permission an
    operator took away from the group stays away.
    """
    from django.contrib.auth.models import Group, Permission

    created = {
        (migration.app_label, operation.name_lower)
        for migration, backwards in plan or ()
        if not backwards and migration.app_label == sender.label
        for operation in migration.operations
        if isinstance(operation, CreateModel)
    }
    if not created:
        return
    admin = Group.objects.filter(name="admin").first()
    if admin is None:  # accounts is not migrated that far yet
        return
    for app_label, model in created:
        admin.permissions.add(
            *Permission.objects.filter(content_type__app_label=app_label, content_type__model=model)
        )


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        # Connected per sending app, after auth's own handler has created its permissions.
        post_migrate.connect(grant_new_model_permissions_to_admins, dispatch_uid="accounts_admin_perms")
        from accounts import schema  # noqa: F401  # registers the OpenAPI security schemes
        from accounts.selectors import api_keys, users  # need the models, loaded by now

        for kept in (api_keys, users):
            # A login's last_login stamp changes nothing authentication reads.
            kept.invalidate_on_change(
                self.get_model("User"), self.get_model("ApiKey"), unless_only={"last_login"}
            )
