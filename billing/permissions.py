"""Who may read everyone's usage: holders of the `billing.view_usagerecord` permission.

The admin's usage pages check the same permission, so the console and the API agree.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

VIEW_USAGE = "billing.view_usagerecord"


class CanViewAllUsage(BasePermission):
    message = "Reading everyone's usage needs the permission to view usage records."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm(VIEW_USAGE))
