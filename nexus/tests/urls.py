"""A URL conf for the error-shape tests: the real one plus views that fail on purpose."""

from __future__ import annotations

from django.db import OperationalError
from django.urls import path
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from nexus.urls import urlpatterns as project_urlpatterns


class EchoView(APIView):
    permission_classes = (AllowAny,)

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=10)
        count = serializers.IntegerField(min_value=1)

    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(serializer.validated_data)


class PrivateView(APIView):
    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class BrokenView(APIView):
    permission_classes = (AllowAny,)

    def get(self, request: Request) -> Response:
        raise RuntimeError("secret internal detail")


def broken_plain_view(request):
    raise KeyError("another internal detail")


class DatabaseDownView(APIView):
    permission_classes = (AllowAny,)

    def get(self, request: Request) -> Response:
        raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")


urlpatterns = [
    path("test/echo", EchoView.as_view()),
    path("test/private", PrivateView.as_view()),
    path("test/broken", BrokenView.as_view()),
    path("test/broken-plain", broken_plain_view),
    path("test/database-down", DatabaseDownView.as_view()),
    *project_urlpatterns,
]
