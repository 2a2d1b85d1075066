"""HTTP views of the model catalog.

`GET /llm/models` lists the enabled models for any caller (JWT or API key). Everything
else reads or writes the catalog and takes Django's model permissions, the same ones the
admin site checks, with a JWT only: an API key cannot change the catalog.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.authentication import BaseAuthentication
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import SAFE_METHODS, DjangoModelPermissions
from rest_framework.request import Request
from rest_framework.response import Response

from llm import selectors, services
from llm.models import Model, ModelAlias, ModelFallback, Provider
from llm.serializers import (
    ModelInput,
    ModelListOutput,
    ModelOutput,
    ModelPublicOutput,
    ProviderInput,
    ProviderOutput,
)
from nexus.lib.auth import ai_authentication_classes


class CatalogPermissions(DjangoModelPermissions):
    """Django's model permissions, reading included (`llm.view_provider`, ...)."""

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }


def _models_with_fallbacks() -> QuerySet[Model]:
    entries = ModelFallback.objects.select_related("fallback").order_by("position", "id")
    return Model.objects.select_related("provider").prefetch_related(
        Prefetch("fallback_entries", entries), Prefetch("aliases", ModelAlias.objects.order_by("name"))
    )


class ModelListView(GenericAPIView[Model]):
    """Anyone signed in lists the enabled models; admins add models."""

    queryset = Model.objects.all()
    permission_classes = [DjangoModelPermissions]  # reading needs no permission, adding does

    def get_authenticators(self) -> list[BaseAuthentication]:
        request = getattr(self, "request", None)  # None while the OpenAPI schema is built
        if request is None or request.method in SAFE_METHODS:
            return [auth() for auth in ai_authentication_classes()]
        return super().get_authenticators()

    @extend_schema(
        operation_id="llm_models_list", summary="The models you can call", responses=ModelListOutput
    )
    def get(self, request: Request) -> Response:
        return Response({"results": ModelPublicOutput(selectors.models_list_enabled(), many=True).data})

    @extend_schema(
        operation_id="llm_models_create",
        summary="Add a model (admins)",
        request=ModelInput,
        responses={201: ModelOutput},
    )
    def post(self, request: Request) -> Response:
        data = ModelInput(data=request.data)
        data.is_valid(raise_exception=True)
        model = services.model_create(**data.validated_data)
        return Response(
            ModelOutput(_models_with_fallbacks().get(pk=model.pk)).data, status=status.HTTP_201_CREATED
        )


class ModelDetailView(GenericAPIView[Model]):
    queryset = Model.objects.all()
    permission_classes = [CatalogPermissions]

    def get_object(self) -> Model:
        model = get_object_or_404(_models_with_fallbacks(), pk=self.kwargs["pk"])
        self.check_object_permissions(self.request, model)
        return model

    @extend_schema(operation_id="llm_models_read", summary="A model, as admins see it", responses=ModelOutput)
    def get(self, request: Request, pk: int) -> Response:
        return Response(ModelOutput(self.get_object()).data)

    @extend_schema(
        operation_id="llm_models_update",
        summary="Change a model (admins)",
        request=ModelInput,
        responses=ModelOutput,
    )
    def patch(self, request: Request, pk: int) -> Response:
        model = self.get_object()
        data = ModelInput(model, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        services.model_update(model=model, **data.validated_data)
        return Response(ModelOutput(self.get_object()).data)

    @extend_schema(operation_id="llm_models_delete", summary="Delete a model (admins)", responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        services.model_delete(model=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProviderListView(GenericAPIView[Provider]):
    queryset = Provider.objects.order_by("name")
    permission_classes = [CatalogPermissions]
    serializer_class = ProviderOutput

    @extend_schema(
        operation_id="llm_providers_list",
        summary="The providers (admins)",
        responses=ProviderOutput(many=True),  # a page of them, not one
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ProviderOutput(page, many=True).data)

    @extend_schema(
        operation_id="llm_providers_create",
        summary="Add a provider (admins)",
        request=ProviderInput,
        responses={201: ProviderOutput},
    )
    def post(self, request: Request) -> Response:
        data = ProviderInput(data=request.data)
        data.is_valid(raise_exception=True)
        provider = services.provider_create(**data.validated_data)
        return Response(ProviderOutput(provider).data, status=status.HTTP_201_CREATED)


class ProviderDetailView(GenericAPIView[Provider]):
    queryset = Provider.objects.all()
    permission_classes = [CatalogPermissions]

    @extend_schema(operation_id="llm_providers_read", summary="A provider (admins)", responses=ProviderOutput)
    def get(self, request: Request, pk: int) -> Response:
        return Response(ProviderOutput(self.get_object()).data)

    @extend_schema(
        operation_id="llm_providers_update",
        summary="Change a provider (admins); its API key is write-only",
        request=ProviderInput,
        responses=ProviderOutput,
    )
    def patch(self, request: Request, pk: int) -> Response:
        provider = self.get_object()
        data = ProviderInput(provider, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        fields: dict[str, Any] = dict(data.validated_data)
        provider = services.provider_update(provider=provider, **fields)
        return Response(ProviderOutput(provider).data)

    @extend_schema(
        operation_id="llm_providers_delete",
        summary="Delete a provider and its models (admins)",
        responses={204: None},
    )
    def delete(self, request: Request, pk: int) -> Response:
        services.provider_delete(provider=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
