"""Who may call what: the admin role, and whether registration is open."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.models import ADMIN_PERMISSION
from nexus.lib import runtime


class IsAdmin(BasePermission):
    """The caller holds the admin role: an active staff member with `accounts.administer`.

    Roles are groups carrying Django permissions, and the Django admin checks the same ones,
    so taking a permission away from the `admin` group takes it from both. A view may ask for
    model permissions as well, per method: `admin_permissions = {"GET": ("accounts.view_user",)}`.
    """

    message = "This needs the admin role."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active and user.is_staff):
            return False
        needed = getattr(view, "admin_permissions", {}).get(request.method, ())
        return bool(user.has_perms((ADMIN_PERMISSION, *needed)))


class RegistrationOpen(BasePermission):
    """Closed by the runtime setting (default: REGISTRATION_OPEN): then 403, whatever was sent."""

    message = "Registration is closed on this server."
    code = "registration_closed"

    def has_permission(self, request: Request, view: Any) -> bool:
        return runtime.registration_open()
