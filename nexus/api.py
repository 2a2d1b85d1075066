"""`/system/settings`: the runtime settings over HTTP, for admins.

GET answers the values in force and the environment's defaults; PATCH changes any of
them (null puts back the environment's value) and answers like GET. Changes are audited
and in force on every server process at once (nexus.services, nexus.lib.runtime).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from accounts.permissions import IsAdmin
from nexus import services
from nexus.lib import runtime
from nexus.lib.errors import ApiError


class SettingsValues(serializers.Serializer[Any]):
    registration_open = serializers.BooleanField()
    default_model = serializers.CharField()
    default_monthly_budget = serializers.DecimalField(max_digits=14, decimal_places=4)
    ai_calls_per_minute = serializers.IntegerField(help_text="0: no limit.")
    registrations_per_hour = serializers.IntegerField(help_text="Per client address; 0: no limit.")
    max_message_chars = serializers.IntegerField()
    maintenance_mode = serializers.BooleanField()
    maintenance_message = serializers.CharField(allow_blank=True)
    title_model = serializers.CharField(
        allow_blank=True, help_text="The model that titles new conversations; empty: their first words."
    )


class SettingsOutput(SettingsValues):
    defaults = SettingsValues(help_text="The environment's values, in force where no override is set.")
    overridden = serializers.ListField(
        child=serializers.CharField(), help_text="The settings an operator has set."
    )


class SettingsPatch(serializers.Serializer[Any]):
    registration_open = serializers.BooleanField(required=False, allow_null=True)
    default_model = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=128)
    default_monthly_budget = serializers.DecimalField(
        required=False, allow_null=True, max_digits=14, decimal_places=4, min_value=0
    )
    ai_calls_per_minute = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=1_000_000, help_text="0: no limit."
    )
    registrations_per_hour = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=1_000_000, help_text="0: no limit."
    )
    max_message_chars = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=10_000_000
    )
    maintenance_mode = serializers.BooleanField(required=False)
    maintenance_message = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=500
    )
    title_model = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=128,
        help_text="A model's name; empty or null: titles are first words.",
    )

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Send a JSON object of settings."]})
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Not a runtime setting."] for name in unknown})
        return super().to_internal_value(data)


def _payload() -> dict[str, Any]:
    stored = runtime.overrides()
    config = runtime.resolve(stored)
    defaults = runtime.environment_defaults()
    overridden = [
        name
        for name in runtime.FIELDS
        if name not in ("maintenance_mode", "maintenance_message") and getattr(stored, name) not in (None, "")
    ]
    return {**_values(config), "defaults": _values(defaults), "overridden": overridden}


def _values(config: runtime.RuntimeConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in runtime.FIELDS}


class RuntimeSettingsView(APIView):
    permission_classes = (IsAdmin,)
    admin_permissions = {
        "GET": ("nexus.view_runtimesettings",),
        "PATCH": ("nexus.change_runtimesettings",),
    }

    @extend_schema(
        operation_id="system_settings_get",
        summary="The runtime settings in force, and the environment's defaults (admins)",
        responses=SettingsOutput,
    )
    def get(self, request: Request) -> Response:
        return Response(SettingsOutput(_payload()).data)

    @extend_schema(
        operation_id="system_settings_update",
        summary="Change runtime settings; null puts back the environment's value (admins)",
        request=SettingsPatch,
        responses=SettingsOutput,
    )
    def patch(self, request: Request) -> Response:
        patch = SettingsPatch(data=request.data)
        patch.is_valid(raise_exception=True)
        if not isinstance(request.user, User):
            raise ApiError(status_code=401, code="not_authenticated")
        services.runtime_settings_update(
            actor=request.user, changes=dict(patch.validated_data), request=request
        )
        return Response(SettingsOutput(_payload()).data)
