"""Account use cases: registration, login and logout, profile, passwords, roles, API keys, audit.

Every function here that changes something security-relevant records an AuditEvent. None
logs or records a password, a token or an API key: a key appears by its prefix only.

One module per sub-domain: `registration` (sign-up, roles, the admin's edits), `login` (API
and console sign-in, logout, bearer tokens), `second_factor`, `profile`, `passwords`,
`api_keys` and `audit`; callers import from the package, as from one module.
"""

from __future__ import annotations

from accounts.services.api_keys import (
    API_KEY_PREFIX,
    API_KEY_TOUCH_SECONDS,
    API_KEY_VISIBLE_CHARS,
    api_key_authenticate,
    api_key_create,
    api_key_digest,
    api_key_rename,
    api_key_revoke,
    api_key_update,
)
from accounts.services.audit import audit_event_record
from accounts.services.login import bearer_authenticate, console_login, user_login, user_logout
from accounts.services.passwords import (
    PASSWORD_RESET_PATH,
    password_change,
    password_reset_confirm,
    password_reset_link,
    password_reset_link_valid,
    password_reset_request,
)
from accounts.services.profile import user_delete, user_profile_update, user_remove
from accounts.services.registration import user_admin_update, user_register, user_role_assign
from accounts.services.second_factor import two_factor_confirm, two_factor_disable, two_factor_enrol_start

__all__ = [
    "API_KEY_PREFIX",
    "API_KEY_TOUCH_SECONDS",
    "API_KEY_VISIBLE_CHARS",
    "PASSWORD_RESET_PATH",
    "api_key_authenticate",
    "api_key_create",
    "api_key_digest",
    "api_key_rename",
    "api_key_revoke",
    "api_key_update",
    "audit_event_record",
    "bearer_authenticate",
    "console_login",
    "password_change",
    "password_reset_confirm",
    "password_reset_link",
    "password_reset_link_valid",
    "password_reset_request",
    "two_factor_confirm",
    "two_factor_disable",
    "two_factor_enrol_start",
    "user_admin_update",
    "user_delete",
    "user_login",
    "user_logout",
    "user_profile_update",
    "user_register",
    "user_remove",
    "user_role_assign",
]
