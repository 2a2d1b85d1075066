"""Output shapes shared by several account views: users, API keys, audit events."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import ApiKey, AuditEvent, Role, User
from accounts.selectors import user_role

ROLE_HELP = "The role: `admin` or `user`."


@extend_schema_field(OpenApiTypes.STR)
class RoleField(serializers.ChoiceField):
    """A role name. The schema shows it as a string, not an enum: other apps' `role` fields
    (messages) are enums, and drf-spectacular cannot name two enums of one field name apart."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=Role.choices, help_text=ROLE_HELP, **kwargs)


class UserSerializer(serializers.ModelSerializer[User]):
    role = serializers.SerializerMethodField(help_text=ROLE_HELP)

    class Meta:
        model = User
        fields: tuple[str, ...] = ("id", "email", "nickname", "role", "created_at")
        read_only_fields = fields

    def get_role(self, user: User) -> str:
        return user_role(user)


class AdminUserSerializer(UserSerializer):
    """A user as the admin endpoints show one: with activation and last login."""

    class Meta(UserSerializer.Meta):
        fields = (*UserSerializer.Meta.fields, "is_active", "last_login")
        read_only_fields = fields


class ApiKeySerializer(serializers.ModelSerializer[ApiKey]):
    revoked = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiKey
        fields = (
            "id",
            "name",
            "prefix",
            "created_at",
            "last_used_at",
            "expires_at",
            "revoked",
            "allowed_models",
            "allowed_networks",
        )
        read_only_fields = fields


class ApiKeyCreatedSerializer(serializers.ModelSerializer[ApiKey]):
    """A new key with its secret, which is shown this once and never again."""

    key = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = (
            "id",
            "name",
            "prefix",
            "key",
            "created_at",
            "expires_at",
            "allowed_models",
            "allowed_networks",
        )
        read_only_fields = fields

    def get_key(self, api_key: ApiKey) -> str:
        return str(self.context["secret"])


class AuditEventSerializer(serializers.ModelSerializer[AuditEvent]):
    actor = serializers.IntegerField(source="actor_id", read_only=True, allow_null=True)
    actor_email = serializers.SerializerMethodField()

    class Meta:
        model = AuditEvent
        fields = (
            "id",
            "created_at",
            "actor",
            "actor_email",
            "action",
            "target",
            "ip",
            "user_agent",
            "metadata",
        )
        read_only_fields = fields

    def get_actor_email(self, event: AuditEvent) -> str | None:
        metadata: dict[str, Any] = event.metadata or {}
        email = metadata.get("actor_email")
        return str(email) if email else None
