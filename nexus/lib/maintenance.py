"""Maintenance mode: while the runtime setting is on, AI calls answer 503 `maintenance`.

The turn calls `maintenance_check(user=...)` before anything else; admins pass, so they
can try things out before opening again.
"""

from __future__ import annotations

from typing import Any

from nexus.lib import runtime
from nexus.lib.errors import ApiError

# The permission of the admin role (accounts.models.ADMIN_PERMISSION); nexus.lib imports no app.
ADMIN_PERMISSION = "accounts.administer"


class UnderMaintenance(ApiError):
    status_code = 503
    default_code = "maintenance"
    default_detail = runtime.DEFAULT_MAINTENANCE_MESSAGE


def maintenance_check(*, user: Any) -> None:
    """Raises 503 `maintenance` with the operator's message while maintenance mode is on;
    admins (active staff with the admin permission) pass."""
    config = runtime.current()
    if not config.maintenance_mode:
        return
    if user is not None and user.is_active and user.is_staff and user.has_perm(ADMIN_PERMISSION):
        return
    raise UnderMaintenance(config.maintenance_message or runtime.DEFAULT_MAINTENANCE_MESSAGE)
