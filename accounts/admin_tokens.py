"""The console's pages of refresh tokens (simplejwt's token_blacklist): who holds one, until when.

simplejwt registers its own pages, which show each token's text, and a refresh token read there
signs in as its owner. These replace them with pages of ids, owners, jti and dates: enough to
see who is signed in and which tokens were revoked, nothing that signs anyone in.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from nexus.lib.admin import ReadOnlyAdmin

# Everything but `token`, the signed JWT itself.
_OUTSTANDING_FIELDS = ("id", "jti", "user", "created_at", "expires_at")


class _ReadOnly(ReadOnlyAdmin):
    actions = None


class OutstandingTokenAdmin(_ReadOnly):
    list_display = _OUTSTANDING_FIELDS
    list_select_related = ("user",)
    search_fields = ("jti", "user__email")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    fields = _OUTSTANDING_FIELDS
    readonly_fields = _OUTSTANDING_FIELDS

    def get_queryset(self, request: HttpRequest) -> QuerySet[OutstandingToken]:
        # The token text is not even read, so no page or template can show it by mistake.
        return super().get_queryset(request).select_related("user").defer("token")


class BlacklistedTokenAdmin(_ReadOnly):
    list_display = ("id", "token_jti", "token_user", "token_created_at", "token_expires_at", "blacklisted_at")
    list_select_related = ("token__user",)
    search_fields = ("token__jti", "token__user__email")
    ordering = ("-blacklisted_at",)
    fields = ("id", "token_jti", "token_user", "token_created_at", "token_expires_at", "blacklisted_at")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[BlacklistedToken]:
        return super().get_queryset(request).select_related("token__user").defer("token__token")

    @admin.display(description="jti", ordering="token__jti")
    def token_jti(self, blacklisted: BlacklistedToken) -> str:
        return blacklisted.token.jti

    @admin.display(description="user", ordering="token__user__email")
    def token_user(self, blacklisted: BlacklistedToken) -> str:
        return str(blacklisted.token.user or "—")

    @admin.display(description="created at", ordering="token__created_at")
    def token_created_at(self, blacklisted: BlacklistedToken) -> datetime | None:
        return blacklisted.token.created_at

    @admin.display(description="expires at", ordering="token__expires_at")
    def token_expires_at(self, blacklisted: BlacklistedToken) -> datetime:
        return blacklisted.token.expires_at


for model, model_admin in (
    (OutstandingToken, OutstandingTokenAdmin),
    (BlacklistedToken, BlacklistedTokenAdmin),
):
    # simplejwt's app comes first in INSTALLED_APPS, so its pages are registered by now.
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)
